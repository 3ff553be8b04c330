//! Expression evaluation: arithmetic, comparison, matching, concatenation, lvalues (variables,
//! fields, array elements, with NF and `$0` kept consistent), user function calls (arrays by
//! reference, scalars by value) and the `getline` forms.
//!
//! Must not: recurse deeper than the parser allowed (expressions) or than
//! `interp::MAX_CALL_DEPTH` (calls).

use super::ast::{self, BinOp, CmpOp, Expr, LValue, Var};
use super::error::AwkError;
use super::interp::{Cell, Ex, Interp, Jump, MAX_CALL_DEPTH};
use super::io::{RecordReader, open_input};
use super::value::{Value, compare};
use std::cmp::Ordering;

impl Interp<'_> {
    pub fn eval(&mut self, e: &Expr) -> Ex<Value> {
        self.nested(|me| me.eval_inner(e))
    }

    fn eval_inner(&mut self, e: &Expr) -> Ex<Value> {
        Ok(match e {
            Expr::Num(n) => Value::Num(*n),
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Regex(r) => {
                let re = self.regexes.get(r)?;
                Value::Num(f64::from(u8::from(re.is_match(self.record.text()))))
            }
            Expr::Group(inner) => self.eval(inner)?,
            Expr::LValue(lv) => self.get(lv)?,
            Expr::Assign(lv, op, rhs) => {
                let r = self.eval(rhs)?;
                let v = match op {
                    None => match r {
                        Value::Uninit => Value::Uninit,
                        other => other,
                    },
                    Some(op) => {
                        let cur = self.get(lv)?.num();
                        Value::Num(arith(*op, cur, r.num())?)
                    }
                };
                self.assign(lv, v.clone())?;
                v
            }
            Expr::Cond(c, a, b) => {
                if self.eval(c)?.truthy() {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            Expr::And(a, b) => bool_value(self.eval(a)?.truthy() && self.eval(b)?.truthy()),
            Expr::Or(a, b) => bool_value(self.eval(a)?.truthy() || self.eval(b)?.truthy()),
            Expr::Not(a) => bool_value(!self.eval(a)?.truthy()),
            Expr::Neg(a) => Value::Num(-self.eval(a)?.num()),
            Expr::Plus(a) => Value::Num(self.eval(a)?.num()),
            Expr::Binary(op, a, b) => {
                let x = self.eval(a)?.num();
                let y = self.eval(b)?.num();
                Value::Num(arith(*op, x, y)?)
            }
            Expr::Cmp(op, a, b) => {
                let x = self.eval(a)?;
                let y = self.eval(b)?;
                let ord = compare(&x, &y, &self.convfmt());
                bool_value(match op {
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                    CmpOp::Eq => ord == Ordering::Equal,
                    CmpOp::Ne => ord != Ordering::Equal,
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Ge => ord != Ordering::Less,
                })
            }
            Expr::Match(want, a, b) => {
                let s = self.eval(a)?.string(&self.convfmt());
                let re = self.regex_of(b)?;
                bool_value(re.is_match(&s) == *want)
            }
            Expr::Concat(a, b) => {
                let mut s = self.eval(a)?.string(&self.convfmt());
                s.push_str(&self.eval(b)?.string(&self.convfmt()));
                Value::Str(s)
            }
            Expr::Incr { pre, delta, target } => {
                let old = self.get(target)?.num();
                self.assign(target, Value::Num(old + delta))?;
                Value::Num(if *pre { old + delta } else { old })
            }
            Expr::In(subs, arr) => {
                let k = self.subscript(subs)?;
                let a = self.array(*arr)?;
                bool_value(a.borrow().contains_key(&k))
            }
            Expr::Call(f, args) => self.call(*f, args)?,
            Expr::Builtin(b, args) => self.builtin(*b, args)?,
            Expr::Getline(target, file) => self.getline(target.as_deref(), file.as_deref())?,
        })
    }

    /// The regex an operand of `~` (or of match, split, sub, gsub) stands for: a literal's
    /// text, or any other value's string.
    pub fn regex_of(&mut self, e: &Expr) -> Ex<std::rc::Rc<super::regex::AwkRegex>> {
        let src = match e {
            Expr::Regex(r) => r.clone(),
            other => self.eval(other)?.string(&self.convfmt()),
        };
        Ok(self.regexes.get(&src)?)
    }

    /// An array subscript: the values joined by SUBSEP.
    pub fn subscript(&mut self, subs: &[Expr]) -> Ex<String> {
        let convfmt = self.convfmt();
        let mut key = String::new();
        for (i, s) in subs.iter().enumerate() {
            if i > 0 {
                key.push_str(&self.gstr(ast::SUBSEP));
            }
            key.push_str(&self.eval(s)?.string(&convfmt));
        }
        Ok(key)
    }

    fn field_index(&mut self, e: &Expr) -> Ex<usize> {
        let n = self.eval(e)?.num();
        if n < 0.0 || n.is_nan() {
            return Err(AwkError::Runtime(format!("attempt to access field {n}")).into());
        }
        Ok(n as usize)
    }

    pub fn get(&mut self, lv: &LValue) -> Ex<Value> {
        match lv {
            LValue::Var(Var::Global(ast::NF)) => {
                self.split_record()?;
                Ok(Value::Num(self.record.nf() as f64))
            }
            LValue::Var(v) => match self.cell(*v) {
                Cell::Uninit => Ok(Value::Uninit),
                Cell::Val(x) => Ok(x.clone()),
                Cell::Arr(_) => Err(AwkError::Runtime(
                    "attempt to use an array in a scalar context".into(),
                )
                .into()),
            },
            LValue::Field(e) => {
                let i = self.field_index(e)?;
                if i == 0 {
                    return Ok(Value::from_input(self.record.text().to_owned()));
                }
                self.split_record()?;
                Ok(match self.record.field(i) {
                    Some(f) => Value::from_input(f.to_owned()),
                    None => Value::Uninit,
                })
            }
            LValue::Index(arr, subs) => {
                let k = self.subscript(subs)?;
                let a = self.array(*arr)?;
                let mut a = a.borrow_mut();
                Ok(a.entry(k).or_default().clone())
            }
        }
    }

    pub fn assign(&mut self, lv: &LValue, v: Value) -> Ex<()> {
        match lv {
            LValue::Var(Var::Global(ast::NF)) => {
                self.split_record()?;
                let n = v.num();
                let n = if n.is_finite() && n >= 0.0 {
                    n as usize
                } else {
                    0
                };
                let ofs = self.gstr(ast::OFS);
                self.record.set_nf(n, &ofs)?;
                Ok(())
            }
            LValue::Var(var) => {
                let cell = self.cell(*var);
                if matches!(cell, Cell::Arr(_)) {
                    return Err(AwkError::Runtime(
                        "attempt to use an array in a scalar context".into(),
                    )
                    .into());
                }
                *cell = Cell::Val(v);
                Ok(())
            }
            LValue::Field(e) => {
                let i = self.field_index(e)?;
                let s = v.string(&self.convfmt());
                if i == 0 {
                    self.set_record(s);
                } else {
                    self.split_record()?;
                    let ofs = self.gstr(ast::OFS);
                    self.record.set_field(i, s, &ofs)?;
                }
                Ok(())
            }
            LValue::Index(arr, subs) => {
                let k = self.subscript(subs)?;
                let a = self.array(*arr)?;
                a.borrow_mut().insert(k, v);
                Ok(())
            }
        }
    }

    fn call(&mut self, f: usize, args: &[Expr]) -> Ex<Value> {
        let prog = self.prog;
        let func = &prog.funcs[f];
        if args.len() > func.params {
            return Err(AwkError::Runtime(format!(
                "function `{}' called with more arguments than declared",
                func.name
            ))
            .into());
        }
        if self.frames.len() >= MAX_CALL_DEPTH {
            return Err(AwkError::CallDepth(MAX_CALL_DEPTH).into());
        }
        let mut frame = Vec::with_capacity(func.params);
        for (i, a) in args.iter().enumerate() {
            let wants_array = func.array_params.get(i).copied().unwrap_or(false);
            let cell = match a {
                Expr::LValue(LValue::Var(v)) if *v != Var::Global(ast::NF) => {
                    match self.cell(*v).clone() {
                        Cell::Arr(arr) => Cell::Arr(arr),
                        Cell::Uninit if wants_array => Cell::Arr(self.array(*v)?),
                        Cell::Uninit => Cell::Uninit,
                        Cell::Val(x) => Cell::Val(x),
                    }
                }
                other => Cell::Val(self.eval(other)?),
            };
            frame.push(cell);
        }
        frame.resize(func.params, Cell::Uninit);
        self.frames.push(frame);
        let r = self.exec_block(&func.body);
        self.frames.pop();
        match r {
            Ok(()) => Ok(Value::Uninit),
            Err(Jump::Return(v)) => Ok(v),
            Err(Jump::Break | Jump::Continue) => Ok(Value::Uninit),
            Err(other) => Err(other),
        }
    }

    fn getline(&mut self, target: Option<&LValue>, file: Option<&Expr>) -> Ex<Value> {
        let Some(file) = file else {
            // From the main input: NR and FNR count it.
            let Some(rec) = self.next_main_record()? else {
                return Ok(Value::Num(0.0));
            };
            match target {
                Some(lv) => self.assign(lv, Value::from_input(rec))?,
                None => self.set_record(rec),
            }
            return Ok(Value::Num(1.0));
        };
        let name = self.eval(file)?.string(&self.convfmt());
        let sep = self.record_sep()?;
        if !self.out.inputs.contains_key(&name) {
            if self.out.inputs.len() >= super::io::MAX_OPEN {
                return Ok(Value::Num(-1.0));
            }
            match open_input(&name) {
                Ok(r) => {
                    self.out.inputs.insert(name.clone(), RecordReader::new(r));
                }
                Err(_) => return Ok(Value::Num(-1.0)),
            }
        }
        let rec = match self.out.inputs.get_mut(&name) {
            Some(r) => r.next_record(&sep),
            None => Ok(None),
        };
        match rec {
            Ok(Some(rec)) => {
                match target {
                    Some(lv) => self.assign(lv, Value::from_input(rec))?,
                    // POSIX: `getline < file` sets $0 and NF, not NR.
                    None => self.set_record(rec),
                }
                Ok(Value::Num(1.0))
            }
            Ok(None) => Ok(Value::Num(0.0)),
            Err(_) => Ok(Value::Num(-1.0)),
        }
    }
}

fn bool_value(b: bool) -> Value {
    Value::Num(if b { 1.0 } else { 0.0 })
}

fn arith(op: BinOp, x: f64, y: f64) -> Result<f64, AwkError> {
    Ok(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => {
            if y == 0.0 {
                return Err(AwkError::Runtime("division by zero attempted".into()));
            }
            x / y
        }
        BinOp::Mod => {
            if y == 0.0 {
                return Err(AwkError::Runtime(
                    "division by zero attempted in `%'".into(),
                ));
            }
            x % y
        }
        BinOp::Pow => x.powf(y),
    })
}
