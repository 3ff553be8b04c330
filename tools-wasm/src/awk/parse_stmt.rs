//! The awk parser, statement level: blocks, `if`/`while`/`do`/`for` (and `for (k in a)`),
//! simple statements (`next`, `exit`, `return`, `delete`, ...) and print/printf with their
//! redirections. Program items and name resolution are in `parser`, expressions in
//! `parse_expr`.
//!
//! Must not: nest without `Parser::nested` (the depth limit), or accept `print | cmd`.

use super::ast::{Expr, LValue, Redirect, Stmt};
use super::error::AwkError;
use super::lexer::Tok;
use super::parser::Parser;

type R<T> = Result<T, AwkError>;

impl Parser {
    /// `{ statements }`.
    pub(super) fn block(&mut self) -> R<Vec<Stmt>> {
        self.expect_op("{")?;
        self.nested(|p| {
            let mut body = Vec::new();
            p.skip_terminators();
            while !p.is_op("}") {
                if matches!(p.peek(), Tok::Eof) {
                    return Err(p.error("missing `}'"));
                }
                body.push(p.stmt()?);
                p.skip_terminators();
            }
            p.pos += 1;
            Ok(body)
        })
    }

    /// One statement, with its terminator.
    fn stmt(&mut self) -> R<Stmt> {
        self.nested(Self::stmt_inner)
    }

    fn stmt_inner(&mut self) -> R<Stmt> {
        if self.is_op("{") {
            return Ok(Stmt::Block(self.block()?));
        }
        if self.eat_op(";") {
            return Ok(Stmt::Block(Vec::new()));
        }
        let kw = match self.peek() {
            Tok::Keyword(k) => Some(*k),
            _ => None,
        };
        match kw {
            Some("if") => {
                self.pos += 1;
                let cond = self.paren_cond()?;
                let then = self.stmt()?;
                let save = self.pos;
                self.skip_terminators();
                if self.is_kw("else") {
                    self.pos += 1;
                    self.skip_newlines();
                    let other = self.stmt()?;
                    return Ok(Stmt::If(cond, Box::new(then), Some(Box::new(other))));
                }
                self.pos = save;
                Ok(Stmt::If(cond, Box::new(then), None))
            }
            Some("while") => {
                self.pos += 1;
                let cond = self.paren_cond()?;
                if self.eat_op(";") {
                    return Ok(Stmt::While(cond, Box::new(Stmt::Block(Vec::new()))));
                }
                Ok(Stmt::While(cond, Box::new(self.stmt()?)))
            }
            Some("do") => {
                self.pos += 1;
                self.skip_newlines();
                let body = self.stmt()?;
                self.skip_terminators();
                if !self.is_kw("while") {
                    return Err(self.error("expected `while' after `do'"));
                }
                self.pos += 1;
                let cond = self.paren_cond()?;
                self.end_simple()?;
                Ok(Stmt::Do(Box::new(body), cond))
            }
            Some("for") => self.for_stmt(),
            _ => {
                let s = self.simple_stmt()?;
                self.end_simple()?;
                Ok(s)
            }
        }
    }

    fn paren_cond(&mut self) -> R<Expr> {
        self.expect_op("(")?;
        let e = self.expr()?;
        self.expect_op(")")?;
        self.skip_newlines();
        Ok(e)
    }

    /// A simple statement ends at `;`, a newline, or before `}`.
    fn end_simple(&mut self) -> R<()> {
        if self.eat_op(";") || matches!(self.peek(), Tok::Newline) {
            if matches!(self.peek(), Tok::Newline) {
                self.pos += 1;
            }
            return Ok(());
        }
        if self.is_op("}") || matches!(self.peek(), Tok::Eof) {
            return Ok(());
        }
        Err(self.error("syntax error"))
    }

    fn for_stmt(&mut self) -> R<Stmt> {
        self.pos += 1;
        self.expect_op("(")?;
        // for (k in arr)
        if let (Tok::Name(k), Tok::Keyword("in"), Tok::Name(a), Tok::Op(")")) = (
            self.peek().clone(),
            self.peek_at(1).clone(),
            self.peek_at(2).clone(),
            self.peek_at(3).clone(),
        ) {
            self.pos += 4;
            self.skip_newlines();
            let key = LValue::Var(self.var(&k));
            let arr = self.var(&a);
            self.used_as_array(arr);
            let body = self.stmt()?;
            return Ok(Stmt::ForIn(key, arr, Box::new(body)));
        }
        let init = if self.is_op(";") {
            None
        } else {
            Some(Box::new(self.simple_stmt()?))
        };
        self.expect_op(";")?;
        self.skip_newlines();
        let cond = if self.is_op(";") {
            None
        } else {
            Some(self.expr()?)
        };
        self.expect_op(";")?;
        self.skip_newlines();
        let step = if self.is_op(")") {
            None
        } else {
            Some(Box::new(self.simple_stmt()?))
        };
        self.expect_op(")")?;
        if self.eat_op(";") {
            return Ok(Stmt::For(
                init,
                cond,
                step,
                Box::new(Stmt::Block(Vec::new())),
            ));
        }
        self.skip_newlines();
        let body = self.stmt()?;
        Ok(Stmt::For(init, cond, step, Box::new(body)))
    }

    fn simple_stmt(&mut self) -> R<Stmt> {
        let kw = match self.peek() {
            Tok::Keyword(k) => Some(*k),
            _ => None,
        };
        let simple = |p: &mut Self, s: Stmt| {
            p.pos += 1;
            Ok(s)
        };
        match kw {
            Some("print") | Some("printf") => self.print(kw == Some("printf")),
            Some("next") => simple(self, Stmt::Next),
            Some("nextfile") => simple(self, Stmt::NextFile),
            Some("break") => simple(self, Stmt::Break),
            Some("continue") => simple(self, Stmt::Continue),
            Some("exit") | Some("return") => {
                self.pos += 1;
                let value = if self.ends_statement() {
                    None
                } else {
                    Some(self.expr()?)
                };
                Ok(if kw == Some("exit") {
                    Stmt::Exit(value)
                } else {
                    Stmt::Return(value)
                })
            }
            Some("delete") => {
                self.pos += 1;
                let Tok::Name(name) = self.advance() else {
                    return Err(self.error("delete needs an array name"));
                };
                let arr = self.var(&name);
                self.used_as_array(arr);
                if self.eat_op("[") {
                    let subs = self.expr_list()?;
                    self.expect_op("]")?;
                    Ok(Stmt::Delete(arr, Some(subs)))
                } else {
                    Ok(Stmt::Delete(arr, None))
                }
            }
            _ => Ok(Stmt::Expr(self.expr()?)),
        }
    }

    pub(super) fn ends_statement(&self) -> bool {
        matches!(self.peek(), Tok::Newline | Tok::Eof) || self.is_op(";") || self.is_op("}")
    }

    fn print(&mut self, printf: bool) -> R<Stmt> {
        self.pos += 1;
        let mut args = Vec::new();
        let ends = |p: &Self| p.ends_statement() || p.is_op(">") || p.is_op(">>") || p.is_op("|");
        if !ends(self) {
            // `print (a, b) > f`: a parenthesised list is the argument list.
            let save = self.pos;
            let mut grouped = None;
            if self.is_op("(") {
                self.pos += 1;
                let list = self.expr_list();
                if let Ok(list) = list
                    && self.eat_op(")")
                    && ends(self)
                {
                    grouped = Some(list);
                }
            }
            match grouped {
                Some(list) => args = list,
                None => {
                    self.pos = save;
                    let old = std::mem::replace(&mut self.no_gt, true);
                    let list = self.expr_list();
                    self.no_gt = old;
                    args = list?;
                }
            }
        }
        if self.is_op("|") {
            return Err(AwkError::Refused("print to a command (`print | cmd')"));
        }
        let redirect = if self.eat_op(">") {
            Some(Redirect::Truncate)
        } else if self.eat_op(">>") {
            Some(Redirect::Append)
        } else {
            None
        };
        let dest = match redirect {
            Some(r) => {
                let old = std::mem::replace(&mut self.no_gt, true);
                let target = self.concat();
                self.no_gt = old;
                Some((r, target?))
            }
            None => None,
        };
        if printf && args.is_empty() {
            return Err(self.error("printf needs a format"));
        }
        Ok(if printf {
            Stmt::Printf(args, dest)
        } else {
            Stmt::Print(args, dest)
        })
    }
}
