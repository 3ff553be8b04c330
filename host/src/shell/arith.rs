//! Arithmetic (`$(( ))`, `(( ))`, `for (( ))`, `let`-free): brush-parser's expression tree
//! evaluated on 64-bit integers with bash's wrapping, its errors (division by zero, a negative
//! exponent) and its variables (a variable holding a name is followed, a bounded number of
//! times).
//!
//! The text is expanded before it gets here; its nesting is checked before parsing, since the
//! text may come from a variable. This module must not run commands.

use super::ShellError;
use brush_parser::ast::{
    ArithmeticExpr as E, ArithmeticTarget, BinaryOperator as B, UnaryAssignmentOperator as UA,
    UnaryOperator as U,
};

/// Longest arithmetic text (after expansion) evaluated.
pub const MAX_TEXT_BYTES: usize = 4096;

/// Most operator characters and opening parentheses an expression may have. brush-parser's
/// arithmetic grammar, and the evaluator, recurse about once for each (found by review: 30,000
/// `1+`, 5,000 nested `?:` or 3,000 `!` overflowed a runtime worker's stack); real expressions
/// have a handful.
pub const MAX_OPERATORS: usize = 128;

/// The operator characters and opening parentheses of `text`, each a level the parser may
/// recurse.
fn weight(text: &str) -> usize {
    text.chars()
        .filter(|c| "+-*/%<>=!&|^~?:,([".contains(*c))
        .count()
}

/// How many times a variable's value may name another variable.
const MAX_INDIRECTION: usize = 16;

/// Where arithmetic reads and writes variables.
pub trait Vars {
    /// A variable's value.
    fn get(&self, name: &str) -> Option<String>;
    /// Sets a variable.
    ///
    /// # Errors
    /// The state's bounds.
    fn set(&mut self, name: &str, value: i64) -> Result<(), ShellError>;
}

/// Parses and evaluates `text`.
///
/// # Errors
/// A syntax error, a division by zero, a negative exponent, nesting past the bound.
pub fn eval_text(text: &str, vars: &mut dyn Vars) -> Result<i64, ShellError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ShellError::Bounds(format!(
            "an arithmetic expression of {} bytes; the limit is {MAX_TEXT_BYTES}",
            text.len()
        )));
    }
    let operators = weight(text);
    if operators > MAX_OPERATORS {
        return Err(ShellError::Bounds(format!(
            "an arithmetic expression has {operators} operators and parentheses; the limit is {MAX_OPERATORS}"
        )));
    }
    let expr = super::parse::contained("expression", || brush_parser::arithmetic::parse(text))?
        .map_err(|_| arith_error(text, "syntax error in expression"))?;
    eval(&expr, vars)
}

fn arith_error(text: &str, what: &str) -> ShellError {
    ShellError::Syntax(format!("{}: {what}", text.trim()))
}

/// A variable's numeric value: a number, empty (0), or the name of another variable.
fn value_of(name: &str, vars: &dyn Vars) -> Result<i64, ShellError> {
    let mut name = name.to_owned();
    for _ in 0..MAX_INDIRECTION {
        let Some(v) = vars.get(&name) else {
            return Ok(0);
        };
        let v = v.trim();
        if v.is_empty() {
            return Ok(0);
        }
        if let Some(n) = parse_number(v) {
            return Ok(n);
        }
        if super::state::is_name(v) {
            name = v.to_owned();
            continue;
        }
        return Err(arith_error(v, "syntax error: operand expected"));
    }
    Err(arith_error(&name, "expression recursion level exceeded"))
}

/// A bash integer literal: decimal, `0x` hex, `0` octal, `BASE#digits`.
pub fn parse_number(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let n = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()? as i64
    } else if let Some((base, digits)) = s.split_once('#') {
        let base: u32 = base.parse().ok()?;
        if !(2..=36).contains(&base) {
            return None;
        }
        u64::from_str_radix(digits, base).ok()? as i64
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()? as i64
    } else {
        if !s.bytes().all(|b| b.is_ascii_digit()) || s.is_empty() {
            return None;
        }
        s.parse::<u64>().ok()? as i64
    };
    Some(if neg { n.wrapping_neg() } else { n })
}

fn target_name(t: &ArithmeticTarget) -> Result<&str, ShellError> {
    match t {
        ArithmeticTarget::Variable(n) => Ok(n),
        ArithmeticTarget::ArrayElement(n, _) => Err(ShellError::Construct {
            construct: format!("{n}[..]"),
            offset: None,
            why: "arrays are not supported",
        }),
    }
}

fn binary(op: &B, a: i64, b: i64) -> Result<i64, ShellError> {
    Ok(match op {
        B::Power => {
            if b < 0 {
                return Err(ShellError::Syntax("exponent less than 0".into()));
            }
            let mut r: i64 = 1;
            let mut base = a;
            let mut e = b as u64;
            while e > 0 {
                if e & 1 == 1 {
                    r = r.wrapping_mul(base);
                }
                base = base.wrapping_mul(base);
                e >>= 1;
            }
            r
        }
        B::Multiply => a.wrapping_mul(b),
        B::Divide | B::Modulo => {
            if b == 0 {
                return Err(ShellError::Syntax("division by 0".into()));
            }
            if matches!(op, B::Divide) {
                a.wrapping_div(b)
            } else {
                a.wrapping_rem(b)
            }
        }
        B::Comma => b,
        B::Add => a.wrapping_add(b),
        B::Subtract => a.wrapping_sub(b),
        B::ShiftLeft => a.wrapping_shl(b as u32),
        B::ShiftRight => a.wrapping_shr(b as u32),
        B::LessThan => i64::from(a < b),
        B::LessThanOrEqualTo => i64::from(a <= b),
        B::GreaterThan => i64::from(a > b),
        B::GreaterThanOrEqualTo => i64::from(a >= b),
        B::Equals => i64::from(a == b),
        B::NotEquals => i64::from(a != b),
        B::BitwiseAnd => a & b,
        B::BitwiseXor => a ^ b,
        B::BitwiseOr => a | b,
        B::LogicalAnd => i64::from(a != 0 && b != 0),
        B::LogicalOr => i64::from(a != 0 || b != 0),
    })
}

/// Evaluates a parsed expression.
///
/// # Errors
/// As [`eval_text`].
pub fn eval(e: &E, vars: &mut dyn Vars) -> Result<i64, ShellError> {
    Ok(match e {
        E::Literal(n) => *n,
        E::Reference(t) => value_of(target_name(t)?, vars)?,
        E::UnaryOp(op, x) => {
            let v = eval(x, vars)?;
            match op {
                U::UnaryPlus => v,
                U::UnaryMinus => v.wrapping_neg(),
                U::BitwiseNot => !v,
                U::LogicalNot => i64::from(v == 0),
            }
        }
        E::BinaryOp(B::LogicalAnd, a, b) => i64::from(eval(a, vars)? != 0 && eval(b, vars)? != 0),
        E::BinaryOp(B::LogicalOr, a, b) => i64::from(eval(a, vars)? != 0 || eval(b, vars)? != 0),
        E::BinaryOp(op, a, b) => {
            let x = eval(a, vars)?;
            let y = eval(b, vars)?;
            binary(op, x, y)?
        }
        E::Conditional(c, a, b) => {
            if eval(c, vars)? != 0 {
                eval(a, vars)?
            } else {
                eval(b, vars)?
            }
        }
        E::Assignment(t, x) => {
            let v = eval(x, vars)?;
            vars.set(target_name(t)?, v)?;
            v
        }
        E::BinaryAssignment(op, t, x) => {
            let name = target_name(t)?;
            let old = value_of(name, vars)?;
            let y = eval(x, vars)?;
            let v = binary(op, old, y)?;
            vars.set(name, v)?;
            v
        }
        E::UnaryAssignment(op, t) => {
            let name = target_name(t)?;
            let old = value_of(name, vars)?;
            let (new, result) = match op {
                UA::PrefixIncrement => (old.wrapping_add(1), old.wrapping_add(1)),
                UA::PrefixDecrement => (old.wrapping_sub(1), old.wrapping_sub(1)),
                UA::PostfixIncrement => (old.wrapping_add(1), old),
                UA::PostfixDecrement => (old.wrapping_sub(1), old),
            };
            vars.set(name, new)?;
            result
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<String, String>);
    impl Vars for Map {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
        fn set(&mut self, name: &str, value: i64) -> Result<(), ShellError> {
            self.0.insert(name.into(), value.to_string());
            Ok(())
        }
    }

    /// The longest expressions allowed, of the shapes that nest without parentheses, evaluate
    /// on a stack a quarter of a runtime worker's (found by review: 30,000 `1+` and 5,000
    /// nested `?:` overflowed a worker's stack).
    #[test]
    fn the_longest_expressions_fit_a_small_stack() {
        let n = MAX_OPERATORS;
        let shapes = [
            format!("{}1", "1+".repeat(n)),
            format!("{}1{}", "1?".repeat(n / 2), ":1".repeat(n / 2)),
            format!("{}1", "1**".repeat(n / 2)),
            format!("{}1", "x=".repeat(n)),
            format!("{}1", "1,".repeat(n)),
            format!("{}1", "!".repeat(n)),
            format!("{}1{}", "(".repeat(n), ")".repeat(n)),
            format!("{}1{}", "(1+".repeat(n / 2), ")".repeat(n / 2)),
        ];
        for text in &shapes {
            assert!(weight(text) <= MAX_OPERATORS, "{text}");
        }
        std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                for text in shapes {
                    let mut m = Map(HashMap::new());
                    let _ = eval_text(&text, &mut m);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn arithmetic_as_bash() {
        let mut m = Map(HashMap::new());
        m.0.insert("x".into(), "5".into());
        m.0.insert("y".into(), "x".into());
        assert_eq!(eval_text("1 + 2 * 3", &mut m).unwrap(), 7);
        assert_eq!(eval_text("x * 2", &mut m).unwrap(), 10);
        assert_eq!(eval_text("y + 1", &mut m).unwrap(), 6);
        assert_eq!(eval_text("x++", &mut m).unwrap(), 5);
        assert_eq!(m.0["x"], "6");
        assert_eq!(eval_text("2 ** 10", &mut m).unwrap(), 1024);
        assert_eq!(eval_text("7 % 3 == 1 ? 10 : 20", &mut m).unwrap(), 10);
        assert_eq!(eval_text("0x10 + 010 + 2#11", &mut m).unwrap(), 27);
        assert_eq!(eval_text("unset_var + 1", &mut m).unwrap(), 1);
        assert!(eval_text("1 / 0", &mut m).is_err());
        assert!(eval_text("1 +", &mut m).is_err());
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(matches!(
            eval_text(&deep, &mut m),
            Err(ShellError::Bounds(_))
        ));
    }
}
