//! The awk parser, program and statement level: items (BEGIN, END, pattern-action rules,
//! functions), statements, print/printf with their redirections, and name resolution. The
//! expression grammar is in `parse_expr`.
//!
//! Must not: recurse without bound: every nesting goes through [`Parser::nested`], which stops
//! at [`MAX_DEPTH`] with an error, so a hostile program cannot exhaust the stack. Pipes and
//! `system()` are refused here, before anything runs.

use super::ast::{Expr, Func, LValue, Pattern, Program, Rule, SPECIALS, Var};
use super::error::AwkError;
use super::lexer::{Tok, Token};
use std::collections::HashMap;

/// The deepest nesting of statements and expressions accepted.
pub const MAX_DEPTH: usize = 150;

pub struct Parser {
    toks: Vec<Token>,
    pub(super) pos: usize,
    depth: usize,
    globals: HashMap<String, usize>,
    pub(super) prog: Program,
    funcs: HashMap<String, usize>,
    /// The function being parsed: its index and parameter names.
    current: Option<(usize, Vec<String>)>,
    /// (caller, its parameter, callee, argument position): bare parameters passed on, for
    /// inferring which parameters are arrays.
    passes: Vec<(usize, usize, usize, usize)>,
    /// While parsing print's arguments, an unparenthesised `>` is a redirection.
    pub(super) no_gt: bool,
}

type R<T> = Result<T, AwkError>;

/// Parses a whole program.
pub fn parse(toks: Vec<Token>) -> R<Program> {
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        globals: HashMap::new(),
        prog: Program::default(),
        funcs: HashMap::new(),
        current: None,
        passes: Vec::new(),
        no_gt: false,
    };
    for (i, name) in SPECIALS.iter().enumerate() {
        p.globals.insert((*name).to_owned(), i);
        p.prog.globals.push((*name).to_owned());
    }
    p.program()?;
    p.finish()
}

impl Parser {
    pub(super) fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    pub(super) fn peek_at(&self, k: usize) -> &Tok {
        self.toks
            .get(self.pos + k)
            .or(self.toks.last())
            .map_or(&Tok::Eof, |t| &t.tok)
    }

    pub(super) fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(0, |t| t.line)
    }

    pub(super) fn advance(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    pub(super) fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    pub(super) fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Keyword(k) if *k == kw)
    }

    pub(super) fn eat_op(&mut self, op: &str) -> bool {
        let yes = self.is_op(op);
        if yes {
            self.pos += 1;
        }
        yes
    }

    pub(super) fn expect_op(&mut self, op: &str) -> R<()> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{op}'")))
        }
    }

    pub(super) fn error(&self, what: &str) -> AwkError {
        let near = match self.peek() {
            Tok::Newline => "end of line".to_owned(),
            Tok::Eof => "end of program".to_owned(),
            Tok::Number(n) => n.to_string(),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Regex(s) => format!("/{s}/"),
            Tok::Name(s) | Tok::FuncName(s) | Tok::Builtin(s) => s.clone(),
            Tok::Keyword(k) | Tok::Op(k) => (*k).to_owned(),
        };
        AwkError::Syntax {
            line: self.line(),
            message: format!("{what} near {near}"),
        }
    }

    pub(super) fn skip_newlines(&mut self) {
        while matches!(self.peek(), Tok::Newline) {
            self.pos += 1;
        }
    }

    pub(super) fn skip_terminators(&mut self) {
        while matches!(self.peek(), Tok::Newline) || self.is_op(";") {
            self.pos += 1;
        }
    }

    /// Runs `f` one nesting level deeper, refusing past [`MAX_DEPTH`].
    pub(super) fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        if self.depth >= MAX_DEPTH {
            return Err(AwkError::TooDeep(self.line()));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// One level deeper without a closure (for chains, which leave with [`Self::leave_raw`]).
    pub(super) fn enter_raw(&mut self) -> R<()> {
        if self.depth >= MAX_DEPTH {
            return Err(AwkError::TooDeep(self.line()));
        }
        self.depth += 1;
        Ok(())
    }

    pub(super) fn leave_raw(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// A variable name as a slot: a parameter of the current function, else a global.
    pub(super) fn var(&mut self, name: &str) -> Var {
        if let Some((_, params)) = &self.current
            && let Some(i) = params.iter().position(|p| p == name)
        {
            return Var::Local(i);
        }
        if let Some(&g) = self.globals.get(name) {
            return Var::Global(g);
        }
        let g = self.prog.globals.len();
        self.prog.globals.push(name.to_owned());
        self.globals.insert(name.to_owned(), g);
        Var::Global(g)
    }

    /// Notes that `v` is used as an array (for parameters: the function takes an array there).
    pub(super) fn used_as_array(&mut self, v: Var) {
        if let (Var::Local(i), Some((f, _))) = (v, &self.current)
            && let Some(slot) = self.prog.funcs[*f].array_params.get_mut(i)
        {
            *slot = true;
        }
    }

    /// Notes a call's arguments that are bare parameters of the current function.
    pub(super) fn note_call(&mut self, callee: usize, args: &[Expr]) {
        if let Some((f, _)) = &self.current {
            for (k, a) in args.iter().enumerate() {
                if let Expr::LValue(LValue::Var(Var::Local(i))) = a {
                    self.passes.push((*f, *i, callee, k));
                }
            }
        }
    }

    /// The index of function `name`, created on first mention.
    pub(super) fn func_index(&mut self, name: &str) -> usize {
        if let Some(&i) = self.funcs.get(name) {
            return i;
        }
        let i = self.prog.funcs.len();
        self.prog.funcs.push(Func {
            name: name.to_owned(),
            ..Func::default()
        });
        self.funcs.insert(name.to_owned(), i);
        i
    }

    fn program(&mut self) -> R<()> {
        self.skip_terminators();
        while !matches!(self.peek(), Tok::Eof) {
            self.item()?;
            self.skip_terminators();
        }
        Ok(())
    }

    fn item(&mut self) -> R<()> {
        if self.is_kw("function") {
            return self.function();
        }
        if self.is_kw("BEGIN") || self.is_kw("END") {
            let begin = self.is_kw("BEGIN");
            self.pos += 1;
            self.skip_newlines();
            if !self.is_op("{") {
                return Err(self.error("BEGIN and END need an action"));
            }
            let body = self.block()?;
            if begin {
                self.prog.begin.extend(body);
            } else {
                self.prog.end.extend(body);
            }
            return Ok(());
        }
        let pattern = if self.is_op("{") {
            Pattern::All
        } else {
            let first = self.expr()?;
            if self.eat_op(",") {
                self.skip_newlines();
                Pattern::Range(first, self.expr()?)
            } else {
                Pattern::Expr(first)
            }
        };
        let action = if self.is_op("{") {
            Some(self.block()?)
        } else {
            None
        };
        self.prog.rules.push(Rule { pattern, action });
        Ok(())
    }

    fn function(&mut self) -> R<()> {
        self.pos += 1;
        let name = match self.advance() {
            Tok::Name(n) | Tok::FuncName(n) => n,
            _ => return Err(self.error("expected a function name")),
        };
        if SPECIALS.contains(&name.as_str()) || self.globals.contains_key(&name) {
            return Err(self.error("function name is already a variable"));
        }
        let f = self.func_index(&name);
        if self.prog.funcs[f].defined {
            return Err(self.error(&format!("function `{name}' defined twice")));
        }
        self.expect_op("(")?;
        let mut params = Vec::new();
        while !self.is_op(")") {
            match self.advance() {
                Tok::Name(n) if !params.contains(&n) => params.push(n),
                _ => return Err(self.error("bad parameter list")),
            }
            if !self.eat_op(",") {
                break;
            }
            self.skip_newlines();
        }
        self.expect_op(")")?;
        self.skip_newlines();
        self.prog.funcs[f].params = params.len();
        self.prog.funcs[f].array_params = vec![false; params.len()];
        self.prog.funcs[f].defined = true;
        self.current = Some((f, params));
        let body = self.block()?;
        self.current = None;
        self.prog.funcs[f].body = body;
        Ok(())
    }

    fn finish(mut self) -> R<Program> {
        if let Some(f) = self.prog.funcs.iter().find(|f| !f.defined) {
            return Err(AwkError::Syntax {
                line: 0,
                message: format!("function `{}' called but never defined", f.name),
            });
        }
        // A parameter passed on bare to an array parameter is an array parameter too.
        let mut changed = true;
        while changed {
            changed = false;
            for &(caller, param, callee, arg) in &self.passes {
                let wants = self.prog.funcs[callee]
                    .array_params
                    .get(arg)
                    .copied()
                    .unwrap_or(false);
                if let Some(slot) = self.prog.funcs[caller].array_params.get_mut(param)
                    && wants
                    && !*slot
                {
                    *slot = true;
                    changed = true;
                }
            }
        }
        Ok(self.prog)
    }
}
