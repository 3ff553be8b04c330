//! awk's built-in functions: string (length substr index split sub gsub match sprintf tolower
//! toupper), math (int sqrt exp log sin cos atan2 rand srand) and I/O (close fflush).
//! Positions and lengths count characters.
//!
//! Must not: start processes (`system()` never gets here: the parser refuses it).

use super::ast::{self, Builtin, Expr, LValue};
use super::error::AwkError;
use super::fields::{FieldSep, next_boundary};
use super::format;
use super::interp::{Ex, Interp};
use super::value::Value;

impl Interp<'_> {
    pub fn builtin(&mut self, b: Builtin, args: &[Expr]) -> Ex<Value> {
        let convfmt = self.convfmt();
        let num = |me: &mut Self, i: usize| -> Ex<f64> {
            Ok(match args.get(i) {
                Some(e) => me.eval(e)?.num(),
                None => 0.0,
            })
        };
        let string = |me: &mut Self, i: usize| -> Ex<String> {
            Ok(match args.get(i) {
                Some(e) => me.eval(e)?.string(&convfmt),
                None => String::new(),
            })
        };
        Ok(match b {
            Builtin::Length => match args.first() {
                None => Value::Num(self.record.text().chars().count() as f64),
                Some(Expr::LValue(LValue::Var(v)))
                    if matches!(self.cell(*v), super::interp::Cell::Arr(_)) =>
                {
                    Value::Num(self.array(*v)?.borrow().len() as f64)
                }
                Some(_) => Value::Num(string(self, 0)?.chars().count() as f64),
            },
            Builtin::Substr => {
                let s = string(self, 0)?;
                let m = num(self, 1)?;
                let n = if args.len() > 2 {
                    Some(num(self, 2)?)
                } else {
                    None
                };
                Value::Str(substr(&s, m, n))
            }
            Builtin::Index => {
                let s = string(self, 0)?;
                let t = string(self, 1)?;
                Value::Num(s.find(&t).map_or(0, |i| s[..i].chars().count() + 1) as f64)
            }
            Builtin::Split => self.split(args)?,
            Builtin::Sub | Builtin::Gsub => self.substitute(args, b == Builtin::Gsub)?,
            Builtin::Match => {
                let s = string(self, 0)?;
                let re = self.regex_of(&args[1])?;
                let (start, len) = match re.find_at(&s, 0) {
                    Some((a, e)) => (s[..a].chars().count() + 1, s[a..e].chars().count() as f64),
                    None => (0, -1.0),
                };
                self.set_gnum(ast::RSTART, start as f64);
                self.set_gnum(ast::RLENGTH, len);
                Value::Num(start as f64)
            }
            Builtin::Sprintf => Value::Str(self.sprintf(args)?),
            Builtin::Tolower => Value::Str(string(self, 0)?.to_ascii_lowercase()),
            Builtin::Toupper => Value::Str(string(self, 0)?.to_ascii_uppercase()),
            Builtin::Int => Value::Num(num(self, 0)?.trunc()),
            Builtin::Sqrt => Value::Num(num(self, 0)?.sqrt()),
            Builtin::Exp => Value::Num(num(self, 0)?.exp()),
            Builtin::Log => Value::Num(num(self, 0)?.ln()),
            Builtin::Sin => Value::Num(num(self, 0)?.sin()),
            Builtin::Cos => Value::Num(num(self, 0)?.cos()),
            Builtin::Atan2 => {
                let y = num(self, 0)?;
                Value::Num(y.atan2(num(self, 1)?))
            }
            Builtin::Rand => Value::Num(self.rand()),
            Builtin::Srand => {
                let seed = match args.first() {
                    Some(_) => num(self, 0)?,
                    None => std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs() as f64),
                };
                Value::Num(self.srand(seed))
            }
            Builtin::Close => {
                let name = string(self, 0)?;
                Value::Num(self.out.close(&name))
            }
            Builtin::Fflush => {
                let name = if args.is_empty() {
                    None
                } else {
                    Some(string(self, 0)?)
                };
                Value::Num(self.out.flush(name.as_deref()))
            }
        })
    }

    /// sprintf / printf: the first argument is the format.
    pub fn sprintf(&mut self, args: &[Expr]) -> Ex<String> {
        let convfmt = self.convfmt();
        let mut values = Vec::with_capacity(args.len());
        for a in args {
            values.push(self.eval(a)?);
        }
        let fmt = values
            .first()
            .map(|v| v.string(&convfmt))
            .unwrap_or_default();
        Ok(
            format::sprintf(&fmt, values.get(1..).unwrap_or(&[]), &convfmt)
                .map_err(|e| AwkError::Runtime(e.to_string()))?,
        )
    }

    fn split(&mut self, args: &[Expr]) -> Ex<Value> {
        let convfmt = self.convfmt();
        let s = self.eval(&args[0])?.string(&convfmt);
        let Expr::LValue(LValue::Var(arr)) = &args[1] else {
            return Err(AwkError::Runtime("split: second argument is not an array".into()).into());
        };
        let sep = match args.get(2) {
            None => {
                let fs = self.gstr(ast::FS);
                FieldSep::from_fs(&fs, false, &mut self.regexes)?
            }
            Some(Expr::Regex(r)) => FieldSep::Regex(self.regexes.get(r)?),
            Some(e) => {
                let fs = self.eval(e)?.string(&convfmt);
                FieldSep::from_fs(&fs, false, &mut self.regexes)?
            }
        };
        let parts = sep.split(&s);
        let a = self.array(*arr)?;
        let mut a = a.borrow_mut();
        a.clear();
        let n = parts.len();
        for (i, p) in parts.into_iter().enumerate() {
            a.insert((i + 1).to_string(), Value::from_input(p));
        }
        Ok(Value::Num(n as f64))
    }

    /// sub and gsub: the number of replacements made.
    fn substitute(&mut self, args: &[Expr], global: bool) -> Ex<Value> {
        let convfmt = self.convfmt();
        let re = self.regex_of(&args[0])?;
        let repl = self.eval(&args[1])?.string(&convfmt);
        let target = match args.get(2) {
            Some(Expr::LValue(lv)) => lv.clone(),
            Some(Expr::Group(inner)) => match inner.as_ref() {
                Expr::LValue(lv) => lv.clone(),
                _ => return Err(AwkError::Runtime("sub: target is not assignable".into()).into()),
            },
            Some(_) => return Err(AwkError::Runtime("sub: target is not assignable".into()).into()),
            None => LValue::Field(Box::new(Expr::Num(0.0))),
        };
        let s = self.get(&target)?.string(&convfmt);
        let mut out = String::with_capacity(s.len());
        let mut pos = 0;
        let mut count = 0;
        let mut last_nonempty_end = None;
        while pos <= s.len() {
            let Some((a, b)) = re.find_at(&s, pos) else {
                break;
            };
            if a == b && last_nonempty_end == Some(a) {
                // No empty match right after a match.
                let next = next_boundary(&s, a);
                out.push_str(&s[pos..next.min(s.len())]);
                pos = next;
                last_nonempty_end = None;
                continue;
            }
            out.push_str(&s[pos..a]);
            expand(&repl, &s[a..b], &mut out);
            count += 1;
            if a == b {
                let next = next_boundary(&s, a);
                out.push_str(&s[a..next.min(s.len())]);
                pos = next;
            } else {
                pos = b;
                last_nonempty_end = Some(b);
            }
            if !global {
                break;
            }
        }
        if count == 0 {
            return Ok(Value::Num(0.0));
        }
        if pos < s.len() {
            out.push_str(&s[pos..]);
        }
        self.assign(&target, Value::Str(out))?;
        Ok(Value::Num(f64::from(count)))
    }

    pub fn rand(&mut self) -> f64 {
        // xorshift64*: rand() is uniform in [0, 1), reproducible after srand(seed).
        let mut x = self.rand_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rand_state = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Seeds rand(); the previous seed.
    pub fn srand(&mut self, seed: f64) -> f64 {
        let prev = self.seed;
        self.seed = seed;
        self.rand_state = (seed.to_bits() ^ 0x9E37_79B9_7F4A_7C15) | 1;
        prev
    }
}

/// A replacement with `&` as the matched text, `\&` a literal `&` and `\\` a backslash.
fn expand(repl: &str, matched: &str, out: &mut String) {
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('&' | '\\')) => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '&' => out.push_str(matched),
            other => out.push(other),
        }
    }
}

/// substr as gawk does it: positions and lengths truncated, a start before 1 taken as 1 (the
/// length is not shortened), the result clipped to the string.
fn substr(s: &str, m: f64, n: Option<f64>) -> String {
    let len = s.chars().count() as f64;
    let start = if m.is_nan() { 1.0 } else { m.trunc().max(1.0) };
    let end = match n {
        Some(n) if n.is_nan() => return String::new(),
        Some(n) => start + n.trunc(),
        None => f64::INFINITY,
    };
    let end = end.min(len + 1.0);
    if end <= start {
        return String::new();
    }
    s.chars()
        .skip(start as usize - 1)
        .take((end - start) as usize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{expand, substr};

    #[test]
    fn substr_truncates_and_clips() {
        assert_eq!(substr("hello", 2.0, Some(3.0)), "ell");
        assert_eq!(substr("hello", 0.0, Some(3.0)), "hel");
        assert_eq!(substr("hello", 1.5, Some(2.3)), "he");
        assert_eq!(substr("hello", 10.0, None), "");
        assert_eq!(substr("hello", 2.0, Some(-1.0)), "");
    }

    #[test]
    fn replacement_escapes() {
        let mut s = String::new();
        expand(r"[&]\&\\", "x", &mut s);
        assert_eq!(s, r"[x]&\");
    }
}
