//! The awk interpreter's state and its statement level: variables (globals, function frames,
//! arrays shared by reference), the main input loop over ARGV with BEGIN, rules, ranges and
//! END, and the execution of statements. Expressions are in `eval`, built-ins in `builtins`.
//!
//! Must not: recurse without bound: user function calls stop at [`MAX_CALL_DEPTH`].

use super::ast::{self, Pattern, Program, Stmt, Var};
use super::error::AwkError;
use super::fields::{FieldSep, Record};
use super::io::{Outputs, RecordReader, RecordSep, open_input};
use super::regex::Cache;
use super::value::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Deepest user-function recursion.
pub const MAX_CALL_DEPTH: usize = 400;

/// How many evaluations and statements may be in progress at once (each is a frame on the
/// guest's 1 MiB stack, a few hundred bytes): past it the program stops with an error instead of
/// overflowing the stack. Deep recursion with deep expressions reaches it before
/// [`MAX_CALL_DEPTH`].
pub const MAX_NESTING: usize = 2500;

pub type Array = Rc<RefCell<BTreeMap<String, Value>>>;

/// A variable's storage.
#[derive(Clone, Default)]
pub enum Cell {
    #[default]
    Uninit,
    Val(Value),
    Arr(Array),
}

/// Non-local control flow, errors included.
pub enum Jump {
    Next,
    NextFile,
    Exit,
    Return(Value),
    Break,
    Continue,
    Error(AwkError),
}

impl From<AwkError> for Jump {
    fn from(e: AwkError) -> Jump {
        Jump::Error(e)
    }
}

pub type Ex<T> = Result<T, Jump>;

pub struct Interp<'p> {
    pub prog: &'p Program,
    pub globals: Vec<Cell>,
    pub frames: Vec<Vec<Cell>>,
    pub record: Record,
    /// FS as it was when the current record was read (splitting is lazy).
    pub record_fs: String,
    pub regexes: Cache,
    pub out: Outputs,
    pub rand_state: u64,
    pub seed: f64,
    pub exit_code: i32,
    /// Evaluations and statements in progress (bounded by [`MAX_NESTING`]).
    nesting: usize,
    range_on: Vec<bool>,
    /// Main input: the next ARGV index and the current reader.
    next_arg: usize,
    main: Option<RecordReader>,
    used_file_operand: bool,
}

impl<'p> Interp<'p> {
    pub fn new(prog: &'p Program, operands: &[String], assigns: Vec<(String, String)>) -> Self {
        let mut globals = vec![Cell::Uninit; prog.globals.len()];
        let s = |v: &str| Cell::Val(Value::Str(v.to_owned()));
        globals[ast::FS] = s(" ");
        globals[ast::OFS] = s(" ");
        globals[ast::ORS] = s("\n");
        globals[ast::RS] = s("\n");
        globals[ast::SUBSEP] = s("\x1c");
        globals[ast::CONVFMT] = s("%.6g");
        globals[ast::OFMT] = s("%.6g");
        for g in [ast::NR, ast::NF, ast::FNR, ast::RSTART, ast::RLENGTH] {
            globals[g] = Cell::Val(Value::Num(0.0));
        }
        globals[ast::FILENAME] = s("");
        let env: BTreeMap<String, Value> = std::env::vars_os()
            .map(|(k, v)| {
                let v = v.to_string_lossy().into_owned();
                (k.to_string_lossy().into_owned(), Value::from_input(v))
            })
            .collect();
        globals[ast::ENVIRON] = Cell::Arr(Rc::new(RefCell::new(env)));
        let mut argv = BTreeMap::new();
        argv.insert("0".to_owned(), Value::Str("awk".into()));
        for (i, a) in operands.iter().enumerate() {
            argv.insert((i + 1).to_string(), Value::from_input(a.clone()));
        }
        globals[ast::ARGV] = Cell::Arr(Rc::new(RefCell::new(argv)));
        globals[ast::ARGC] = Cell::Val(Value::Num((operands.len() + 1) as f64));
        let mut me = Interp {
            prog,
            globals,
            frames: Vec::new(),
            record: Record::default(),
            record_fs: " ".into(),
            regexes: Cache::default(),
            out: Outputs::default(),
            rand_state: 0,
            seed: 0.0,
            exit_code: 0,
            nesting: 0,
            range_on: vec![false; prog.rules.len()],
            next_arg: 1,
            main: None,
            used_file_operand: false,
        };
        me.srand(0.0);
        for (name, value) in assigns {
            me.assign_named(&name, value);
        }
        me
    }

    /// `name=value` from -v or an operand: a numeric string, escapes already processed.
    pub fn assign_named(&mut self, name: &str, value: String) {
        if let Some(g) = self.prog.globals.iter().position(|n| n == name)
            && !matches!(self.globals[g], Cell::Arr(_))
        {
            self.globals[g] = Cell::Val(Value::from_input(value));
        }
    }

    pub fn gstr(&self, g: usize) -> String {
        match &self.globals[g] {
            Cell::Val(v) => v.string(&self.convfmt()),
            _ => String::new(),
        }
    }

    pub fn convfmt(&self) -> String {
        match &self.globals[ast::CONVFMT] {
            Cell::Val(v) => v.string("%.6g"),
            _ => "%.6g".into(),
        }
    }

    pub fn gnum(&self, g: usize) -> f64 {
        match &self.globals[g] {
            Cell::Val(v) => v.num(),
            _ => 0.0,
        }
    }

    pub fn set_gnum(&mut self, g: usize, n: f64) {
        self.globals[g] = Cell::Val(Value::Num(n));
    }

    /// The storage of `v` in the current frame or globals.
    pub fn cell(&mut self, v: Var) -> &mut Cell {
        match v {
            Var::Global(g) => &mut self.globals[g],
            Var::Local(i) => {
                let frame = self.frames.last_mut();
                match frame.and_then(|f| f.get_mut(i)) {
                    Some(c) => c,
                    // Unreachable by construction (locals exist only inside a call); a
                    // harmless stand-in rather than a panic.
                    None => &mut self.globals[ast::RLENGTH],
                }
            }
        }
    }

    /// `v` as an array, created when still uninitialised.
    pub fn array(&mut self, v: Var) -> Ex<Array> {
        let cell = self.cell(v);
        match cell {
            Cell::Arr(a) => Ok(Rc::clone(a)),
            Cell::Uninit => {
                let a: Array = Rc::default();
                *cell = Cell::Arr(Rc::clone(&a));
                Ok(a)
            }
            Cell::Val(_) => {
                Err(AwkError::Runtime("attempt to use a scalar as an array".into()).into())
            }
        }
    }

    /// Makes sure `$0` is split by the FS it was read with.
    pub fn split_record(&mut self) -> Ex<()> {
        if !self.record.is_split() {
            let paragraph = self.gstr(ast::RS).is_empty();
            let fs = self.record_fs.clone();
            let sep = FieldSep::from_fs(&fs, paragraph, &mut self.regexes)?;
            self.record.ensure_split(&sep);
        }
        Ok(())
    }

    /// A new `$0` from input or assignment.
    pub fn set_record(&mut self, text: String) {
        self.record.set_text(text);
        self.record_fs = self.gstr(ast::FS);
    }

    pub fn record_sep(&mut self) -> Ex<RecordSep> {
        let rs = self.gstr(ast::RS);
        let mut chars = rs.chars();
        Ok(match (chars.next(), chars.next()) {
            (None, _) => RecordSep::Paragraph,
            (Some(c), None) => RecordSep::Char(c),
            _ => RecordSep::Regex(self.regexes.get(&rs)?),
        })
    }

    /// The next record of the main input (ARGV files in turn, or standard input), with NR,
    /// FNR and FILENAME updated. `None` at the end of all input.
    pub fn next_main_record(&mut self) -> Ex<Option<String>> {
        loop {
            if self.main.is_some() {
                let sep = self.record_sep()?;
                let rec = match &mut self.main {
                    Some(r) => r.next_record(&sep),
                    None => Ok(None),
                };
                match rec {
                    Ok(Some(r)) => {
                        self.set_gnum(ast::NR, self.gnum(ast::NR) + 1.0);
                        self.set_gnum(ast::FNR, self.gnum(ast::FNR) + 1.0);
                        return Ok(Some(r));
                    }
                    Ok(None) => self.main = None,
                    Err(e) => {
                        let name = self.gstr(ast::FILENAME);
                        return Err(AwkError::io(name, &e).into());
                    }
                }
            }
            if !self.open_next_operand()? {
                return Ok(None);
            }
        }
    }

    /// Opens the next input operand (handling `var=value` operands on the way); false when
    /// there are no more.
    fn open_next_operand(&mut self) -> Ex<bool> {
        let argc = self.gnum(ast::ARGC).max(0.0) as usize;
        while self.next_arg < argc {
            let i = self.next_arg;
            self.next_arg += 1;
            let arg = match &self.globals[ast::ARGV] {
                Cell::Arr(a) => a.borrow().get(&i.to_string()).map(|v| v.string("%.6g")),
                _ => None,
            };
            let Some(arg) = arg.filter(|a| !a.is_empty()) else {
                continue;
            };
            if let Some((name, value)) = super::operand_assignment(&arg) {
                self.assign_named(&name, value);
                continue;
            }
            self.used_file_operand = true;
            let reader = open_input(&arg)
                .map_err(|e| AwkError::io(format!("cannot open \"{arg}\" for reading"), &e))?;
            self.main = Some(RecordReader::new(reader));
            self.globals[ast::FILENAME] = Cell::Val(Value::Str(arg));
            self.set_gnum(ast::FNR, 0.0);
            return Ok(true);
        }
        if !self.used_file_operand {
            self.used_file_operand = true;
            self.main = Some(RecordReader::new(Box::new(std::io::stdin())));
            return Ok(true);
        }
        Ok(false)
    }

    /// Runs the whole program; the exit status.
    pub fn run(&mut self) -> Result<i32, AwkError> {
        let prog = self.prog;
        let mut exiting = false;
        match self.exec_block(&prog.begin) {
            Ok(()) => {}
            Err(Jump::Exit) => exiting = true,
            Err(Jump::Error(e)) => return Err(e),
            Err(_) => {}
        }
        if !exiting && (!prog.rules.is_empty() || !prog.end.is_empty()) {
            match self.main_loop() {
                Ok(()) => {}
                Err(Jump::Exit) => {}
                Err(Jump::Error(e)) => return Err(e),
                Err(_) => {}
            }
        }
        match self.exec_block(&prog.end) {
            Ok(()) | Err(Jump::Exit) => {}
            Err(Jump::Error(e)) => return Err(e),
            Err(_) => {}
        }
        self.out.finish()?;
        Ok(self.exit_code)
    }

    fn main_loop(&mut self) -> Ex<()> {
        let prog = self.prog;
        while let Some(rec) = self.next_main_record()? {
            self.set_record(rec);
            for (i, rule) in prog.rules.iter().enumerate() {
                let hit = match &rule.pattern {
                    Pattern::All => true,
                    Pattern::Expr(e) => self.eval(e)?.truthy(),
                    Pattern::Range(a, b) => {
                        if self.range_on[i] {
                            if self.eval(b)?.truthy() {
                                self.range_on[i] = false;
                            }
                            true
                        } else if self.eval(a)?.truthy() {
                            self.range_on[i] = !self.eval(b)?.truthy();
                            true
                        } else {
                            false
                        }
                    }
                };
                if !hit {
                    continue;
                }
                let r = match &rule.action {
                    Some(body) => self.exec_block(body),
                    None => self.print_record(),
                };
                match r {
                    Ok(()) => {}
                    Err(Jump::Next) => break,
                    Err(Jump::NextFile) => {
                        self.main = None;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    pub fn exec_block(&mut self, body: &[Stmt]) -> Ex<()> {
        for s in body {
            self.exec(s)?;
        }
        Ok(())
    }

    /// Runs `f` one level deeper in the evaluation, refusing past [`MAX_NESTING`].
    pub fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Ex<T>) -> Ex<T> {
        if self.nesting >= MAX_NESTING {
            return Err(AwkError::Nesting(MAX_NESTING).into());
        }
        self.nesting += 1;
        let r = f(self);
        self.nesting -= 1;
        r
    }

    fn exec(&mut self, s: &Stmt) -> Ex<()> {
        self.nested(|me| me.exec_inner(s))
    }

    fn exec_inner(&mut self, s: &Stmt) -> Ex<()> {
        match s {
            Stmt::Expr(e) => {
                self.eval(e)?;
            }
            Stmt::Print(args, dest) => self.print(args, dest.as_ref())?,
            Stmt::Printf(args, dest) => self.printf(args, dest.as_ref())?,
            Stmt::If(c, a, b) => {
                if self.eval(c)?.truthy() {
                    self.exec(a)?;
                } else if let Some(b) = b {
                    self.exec(b)?;
                }
            }
            Stmt::While(c, body) => {
                while self.eval(c)?.truthy() {
                    match self.exec(body) {
                        Err(Jump::Break) => break,
                        Err(Jump::Continue) | Ok(()) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Stmt::Do(body, c) => loop {
                match self.exec(body) {
                    Err(Jump::Break) => break,
                    Err(Jump::Continue) | Ok(()) => {}
                    Err(e) => return Err(e),
                }
                if !self.eval(c)?.truthy() {
                    break;
                }
            },
            Stmt::For(init, cond, step, body) => {
                if let Some(i) = init {
                    self.exec(i)?;
                }
                loop {
                    if let Some(c) = cond
                        && !self.eval(c)?.truthy()
                    {
                        break;
                    }
                    match self.exec(body) {
                        Err(Jump::Break) => break,
                        Err(Jump::Continue) | Ok(()) => {}
                        Err(e) => return Err(e),
                    }
                    if let Some(s) = step {
                        self.exec(s)?;
                    }
                }
            }
            Stmt::ForIn(key, arr, body) => {
                let a = self.array(*arr)?;
                let keys: Vec<String> = a.borrow().keys().cloned().collect();
                for k in keys {
                    if !a.borrow().contains_key(&k) {
                        continue;
                    }
                    self.assign(key, Value::from_input(k))?;
                    match self.exec(body) {
                        Err(Jump::Break) => break,
                        Err(Jump::Continue) | Ok(()) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Stmt::Block(b) => self.exec_block(b)?,
            Stmt::Next => return Err(Jump::Next),
            Stmt::NextFile => return Err(Jump::NextFile),
            Stmt::Break => return Err(Jump::Break),
            Stmt::Continue => return Err(Jump::Continue),
            Stmt::Exit(e) => {
                if let Some(e) = e {
                    self.exit_code = (self.eval(e)?.num() as i64 & 0xff) as i32;
                }
                return Err(Jump::Exit);
            }
            Stmt::Return(e) => {
                let v = match e {
                    Some(e) => self.eval(e)?,
                    None => Value::Uninit,
                };
                return Err(Jump::Return(v));
            }
            Stmt::Delete(arr, subs) => {
                let a = self.array(*arr)?;
                match subs {
                    None => a.borrow_mut().clear(),
                    Some(subs) => {
                        let k = self.subscript(subs)?;
                        a.borrow_mut().remove(&k);
                    }
                }
            }
        }
        Ok(())
    }
}
