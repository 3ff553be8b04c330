//! The awk parser, expression level: precedence climbing from `?:` down to primaries, with
//! awk's concatenation by juxtaposition, `getline` forms, `(i, j) in arr` and calls.
//!
//! Must not: recurse without going through `Parser::nested` (the depth limit), or accept
//! `cmd | getline` or `system()` (refused with a clear error).

use super::ast::{BinOp, Builtin, CmpOp, Expr, LValue};
use super::error::AwkError;
use super::lexer::Tok;
use super::parser::Parser;

type R<T> = Result<T, AwkError>;

/// Builds a binary node from its two operands.
type Make = fn(Expr, Expr) -> Expr;

impl Parser {
    /// A full expression (assignment included).
    pub(super) fn expr(&mut self) -> R<Expr> {
        self.nested(Self::ternary)
    }

    /// `e, e, ...` (newlines allowed after commas).
    pub(super) fn expr_list(&mut self) -> R<Vec<Expr>> {
        let mut list = vec![self.expr()?];
        while self.eat_op(",") {
            self.skip_newlines();
            list.push(self.expr()?);
        }
        Ok(list)
    }

    fn ternary(&mut self) -> R<Expr> {
        let cond = self.or()?;
        if let Some(op) = self.assign_op()
            && let Some(lv) = as_lvalue(&cond)
        {
            self.pos += 1;
            self.skip_newlines();
            let rhs = self.expr()?;
            return Ok(Expr::Assign(Box::new(lv), op, Box::new(rhs)));
        }
        if !self.eat_op("?") {
            return Ok(cond);
        }
        self.skip_newlines();
        let a = self.expr()?;
        self.skip_newlines();
        self.expect_op(":")?;
        self.skip_newlines();
        let b = self.expr()?;
        Ok(Expr::Cond(Box::new(cond), Box::new(a), Box::new(b)))
    }

    /// The assignment operator at the cursor: `Some(None)` for `=`.
    fn assign_op(&self) -> Option<Option<BinOp>> {
        let Tok::Op(op) = self.peek() else {
            return None;
        };
        Some(match *op {
            "=" => None,
            "+=" => Some(BinOp::Add),
            "-=" => Some(BinOp::Sub),
            "*=" => Some(BinOp::Mul),
            "/=" => Some(BinOp::Div),
            "%=" => Some(BinOp::Mod),
            "^=" => Some(BinOp::Pow),
            _ => return None,
        })
    }

    /// A left-associative chain: each link is one level deeper, so a long chain counts
    /// against the depth limit like nesting does (evaluating it recurses as deep).
    fn chain(
        &mut self,
        next: fn(&mut Self) -> R<Expr>,
        op: fn(&Self) -> Option<Make>,
        newline_after: bool,
    ) -> R<Expr> {
        let mut left = next(self)?;
        let mut links = 0;
        let result = loop {
            let Some(make) = op(self) else {
                break Ok(left);
            };
            self.pos += 1;
            if newline_after {
                self.skip_newlines();
            }
            // Each link holds one more level until the chain ends.
            if let Err(e) = self.enter_raw() {
                break Err(e);
            }
            links += 1;
            let right = match next(self) {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            left = make(left, right);
        };
        for _ in 0..links {
            self.leave_raw();
        }
        result
    }

    fn or(&mut self) -> R<Expr> {
        self.chain(
            Self::and,
            |p| {
                p.is_op("||")
                    .then_some(|a, b| Expr::Or(Box::new(a), Box::new(b)))
            },
            true,
        )
    }

    fn and(&mut self) -> R<Expr> {
        self.chain(
            Self::in_expr,
            |p| {
                p.is_op("&&")
                    .then_some(|a, b| Expr::And(Box::new(a), Box::new(b)))
            },
            true,
        )
    }

    fn in_expr(&mut self) -> R<Expr> {
        let mut left = self.matching()?;
        while self.is_kw("in") {
            self.pos += 1;
            let Tok::Name(name) = self.advance() else {
                return Err(self.error("`in' needs an array name"));
            };
            let arr = self.var(&name);
            self.used_as_array(arr);
            left = Expr::In(vec![left], arr);
        }
        Ok(left)
    }

    fn matching(&mut self) -> R<Expr> {
        self.chain(
            Self::comparison,
            |p| {
                if p.is_op("~") {
                    Some(|a, b| Expr::Match(true, Box::new(a), Box::new(b)))
                } else if p.is_op("!~") {
                    Some(|a, b| Expr::Match(false, Box::new(a), Box::new(b)))
                } else {
                    None
                }
            },
            false,
        )
    }

    fn comparison(&mut self) -> R<Expr> {
        let left = self.concat()?;
        let op = match self.peek() {
            Tok::Op("<") => CmpOp::Lt,
            Tok::Op("<=") => CmpOp::Le,
            Tok::Op("==") => CmpOp::Eq,
            Tok::Op("!=") => CmpOp::Ne,
            Tok::Op(">") if !self.no_gt => CmpOp::Gt,
            Tok::Op(">=") => CmpOp::Ge,
            Tok::Op("|") if matches!(self.peek_at(1), Tok::Keyword("getline")) => {
                return Err(AwkError::Refused(
                    "reading from a command (`cmd | getline')",
                ));
            }
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.concat()?;
        Ok(Expr::Cmp(op, Box::new(left), Box::new(right)))
    }

    /// Concatenation by juxtaposition, kept flat-ish: each link counts one level.
    pub(super) fn concat(&mut self) -> R<Expr> {
        let mut left = self.additive()?;
        let mut links = 0;
        let result = loop {
            if !self.starts_operand() {
                break Ok(left);
            }
            // Each link holds one more level until the chain ends.
            if let Err(e) = self.enter_raw() {
                break Err(e);
            }
            links += 1;
            match self.additive() {
                Ok(right) => left = Expr::Concat(Box::new(left), Box::new(right)),
                Err(e) => break Err(e),
            }
        };
        for _ in 0..links {
            self.leave_raw();
        }
        result
    }

    /// Whether the cursor can start an operand of a concatenation.
    fn starts_operand(&self) -> bool {
        match self.peek() {
            Tok::Number(_)
            | Tok::Str(_)
            | Tok::Regex(_)
            | Tok::Name(_)
            | Tok::FuncName(_)
            | Tok::Builtin(_) => true,
            // Not `-`, `+` or `!`: after an operand those are binary (or ambiguous).
            Tok::Op(op) => matches!(*op, "$" | "(" | "++" | "--"),
            Tok::Keyword(_) | Tok::Newline | Tok::Eof => false,
        }
    }

    fn additive(&mut self) -> R<Expr> {
        self.chain(
            Self::multiplicative,
            |p| match p.peek() {
                Tok::Op("+") => Some(|a, b| Expr::Binary(BinOp::Add, Box::new(a), Box::new(b))),
                Tok::Op("-") => Some(|a, b| Expr::Binary(BinOp::Sub, Box::new(a), Box::new(b))),
                _ => None,
            },
            false,
        )
    }

    fn multiplicative(&mut self) -> R<Expr> {
        self.chain(
            Self::unary,
            |p| match p.peek() {
                Tok::Op("*") => Some(|a, b| Expr::Binary(BinOp::Mul, Box::new(a), Box::new(b))),
                Tok::Op("/") => Some(|a, b| Expr::Binary(BinOp::Div, Box::new(a), Box::new(b))),
                Tok::Op("%") => Some(|a, b| Expr::Binary(BinOp::Mod, Box::new(a), Box::new(b))),
                _ => None,
            },
            false,
        )
    }

    fn unary(&mut self) -> R<Expr> {
        let make: fn(Box<Expr>) -> Expr = match self.peek() {
            Tok::Op("!") => Expr::Not,
            Tok::Op("-") => Expr::Neg,
            Tok::Op("+") => Expr::Plus,
            _ => return self.power(),
        };
        self.pos += 1;
        let operand = self.nested(Self::unary)?;
        Ok(make(Box::new(operand)))
    }

    fn power(&mut self) -> R<Expr> {
        let base = self.postfix()?;
        if self.eat_op("^") {
            // Right-associative, and the exponent may carry a sign: 2^-1, 2^3^2.
            let exp = self.nested(Self::unary)?;
            return Ok(Expr::Binary(BinOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> R<Expr> {
        let e = self.primary()?;
        if let Some(lv) = as_lvalue(&e) {
            for (op, delta) in [("++", 1.0), ("--", -1.0)] {
                if self.eat_op(op) {
                    return Ok(Expr::Incr {
                        pre: false,
                        delta,
                        target: Box::new(lv),
                    });
                }
            }
        }
        Ok(e)
    }

    fn primary(&mut self) -> R<Expr> {
        let tok = self.advance();
        match tok {
            Tok::Number(n) => Ok(Expr::Num(n)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Regex(s) => Ok(Expr::Regex(s)),
            Tok::Op("$") => {
                let e = self.nested(|p| {
                    if p.is_op("++")
                        || p.is_op("--")
                        || p.is_op("-")
                        || p.is_op("!")
                        || p.is_op("+")
                    {
                        p.unary_or_incr()
                    } else {
                        p.primary()
                    }
                })?;
                Ok(Expr::LValue(LValue::Field(Box::new(e))))
            }
            Tok::Op("++") | Tok::Op("--") => {
                self.pos -= 1;
                self.unary_or_incr()
            }
            Tok::Op("-") | Tok::Op("+") | Tok::Op("!") => {
                self.pos -= 1;
                self.nested(Self::unary)
            }
            Tok::Op("(") => self.nested(|p| {
                let old = std::mem::replace(&mut p.no_gt, false);
                let list = p.expr_list();
                p.no_gt = old;
                let list = list?;
                p.expect_op(")")?;
                if list.len() > 1 {
                    if !p.is_kw("in") {
                        return Err(p.error("a parenthesised list must be followed by `in'"));
                    }
                    p.pos += 1;
                    let Tok::Name(name) = p.advance() else {
                        return Err(p.error("`in' needs an array name"));
                    };
                    let arr = p.var(&name);
                    p.used_as_array(arr);
                    return Ok(Expr::In(list, arr));
                }
                let mut list = list;
                Ok(Expr::Group(Box::new(list.remove(0))))
            }),
            Tok::Name(name) => {
                let v = self.var(&name);
                if self.eat_op("[") {
                    self.used_as_array(v);
                    let subs = self.nested(Self::expr_list)?;
                    self.expect_op("]")?;
                    return Ok(Expr::LValue(LValue::Index(v, subs)));
                }
                Ok(Expr::LValue(LValue::Var(v)))
            }
            Tok::FuncName(name) => {
                let f = self.func_index(&name);
                self.expect_op("(")?;
                let args = self.call_args()?;
                self.note_call(f, &args);
                Ok(Expr::Call(f, args))
            }
            Tok::Builtin(name) => self.builtin(&name),
            Tok::Keyword("getline") => self.getline(),
            _ => {
                self.pos -= 1;
                Err(self.error("syntax error"))
            }
        }
    }

    fn unary_or_incr(&mut self) -> R<Expr> {
        for (op, delta) in [("++", 1.0), ("--", -1.0)] {
            if self.eat_op(op) {
                let target = self.nested(Self::primary)?;
                let Some(lv) = as_lvalue(&target) else {
                    return Err(self.error(&format!("`{op}' needs a variable")));
                };
                return Ok(Expr::Incr {
                    pre: true,
                    delta,
                    target: Box::new(lv),
                });
            }
        }
        self.nested(Self::unary)
    }

    fn call_args(&mut self) -> R<Vec<Expr>> {
        self.skip_newlines();
        if self.eat_op(")") {
            return Ok(Vec::new());
        }
        let old = std::mem::replace(&mut self.no_gt, false);
        let args = self.expr_list();
        self.no_gt = old;
        let args = args?;
        self.skip_newlines();
        self.expect_op(")")?;
        Ok(args)
    }

    fn builtin(&mut self, name: &str) -> R<Expr> {
        let b = match name {
            "length" => Builtin::Length,
            "substr" => Builtin::Substr,
            "index" => Builtin::Index,
            "split" => Builtin::Split,
            "sub" => Builtin::Sub,
            "gsub" => Builtin::Gsub,
            "match" => Builtin::Match,
            "sprintf" => Builtin::Sprintf,
            "tolower" => Builtin::Tolower,
            "toupper" => Builtin::Toupper,
            "int" => Builtin::Int,
            "sqrt" => Builtin::Sqrt,
            "exp" => Builtin::Exp,
            "log" => Builtin::Log,
            "sin" => Builtin::Sin,
            "cos" => Builtin::Cos,
            "atan2" => Builtin::Atan2,
            "rand" => Builtin::Rand,
            "srand" => Builtin::Srand,
            "close" => Builtin::Close,
            "fflush" => Builtin::Fflush,
            _ => return Err(AwkError::Refused("system()")),
        };
        if !self.is_op("(") {
            if b == Builtin::Length {
                return Ok(Expr::Builtin(b, Vec::new()));
            }
            return Err(self.error(&format!("`{name}' needs arguments in parentheses")));
        }
        self.pos += 1;
        let args = self.call_args()?;
        let (min, max) = match b {
            Builtin::Length => (0, 1),
            Builtin::Substr => (2, 3),
            Builtin::Split | Builtin::Sub | Builtin::Gsub => (2, 3),
            Builtin::Index | Builtin::Match | Builtin::Atan2 => (2, 2),
            Builtin::Sprintf => (1, usize::MAX),
            Builtin::Rand => (0, 0),
            Builtin::Srand | Builtin::Fflush => (0, 1),
            _ => (1, 1),
        };
        if args.len() < min || args.len() > max {
            return Err(self.error(&format!("{name}: wrong number of arguments")));
        }
        match (b, args.get(1), args.get(2)) {
            (Builtin::Split, Some(Expr::LValue(LValue::Var(v))), _) => self.used_as_array(*v),
            (Builtin::Split, _, _) => {
                return Err(self.error("split: second argument must be an array name"));
            }
            (Builtin::Sub | Builtin::Gsub, _, Some(t)) if as_lvalue(t).is_none() => {
                return Err(self.error(&format!("{name}: third argument must be assignable")));
            }
            _ => {}
        }
        Ok(Expr::Builtin(b, args))
    }

    /// `getline [lvalue] [< file]` (the `getline` keyword already read).
    fn getline(&mut self) -> R<Expr> {
        let target = if matches!(self.peek(), Tok::Name(_)) || self.is_op("$") {
            let e = self.nested(Self::primary)?;
            Some(Box::new(
                as_lvalue(&e).ok_or_else(|| self.error("getline needs a variable"))?,
            ))
        } else {
            None
        };
        let file = if self.eat_op("<") {
            Some(Box::new(self.nested(Self::primary)?))
        } else {
            None
        };
        Ok(Expr::Getline(target, file))
    }
}

/// The assignable form of `e`, if it has one (parentheses around a variable included).
fn as_lvalue(e: &Expr) -> Option<LValue> {
    match e {
        Expr::LValue(lv) => Some(lv.clone()),
        Expr::Group(inner) => as_lvalue(inner),
        _ => None,
    }
}
