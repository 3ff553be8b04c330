//! find's command line: `[-H|-L|-P] [starting-point...] [expression]` into a [`Command`].
//!
//! Precedence as GNU find: `( )`, then `!`/`-not`, then `-a` (also implicit), then `-o`, then
//! `,`. Global options (`-maxdepth`, `-depth`, ...) may appear anywhere and are true. Primaries
//! that need what WASI lacks (processes, modes, owners, inodes) or that would write files are
//! refused with a reason, never silently ignored.

use super::expr::{Cmp, Expr, TimeField};
use super::printf::Format;
use crate::pattern::glob::Glob;
use crate::pattern::regex::{Syntax, translate};
use std::path::PathBuf;

/// How symbolic links are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// `-P` (default): never follow.
    Never,
    /// `-H`: follow starting points only.
    CommandLine,
    /// `-L`/`-follow`: follow everywhere.
    Always,
}

/// Everything the walk needs.
#[derive(Debug)]
pub struct Command {
    pub roots: Vec<PathBuf>,
    pub expr: Expr,
    pub follow: Follow,
    pub max_depth: Option<usize>,
    pub min_depth: usize,
    pub depth_first: bool,
}

/// Why a primary is refused.
fn refusal(token: &str) -> Option<&'static str> {
    Some(match token {
        "-exec" | "-execdir" | "-ok" | "-okdir" => {
            "cannot run commands: there are no processes under WASI"
        }
        "-delete" | "-fprint" | "-fprint0" | "-fprintf" | "-fls" => {
            "this find does not change or write files"
        }
        "-ls" => "would print modes, owners and link counts, which WASI does not have; use -printf",
        "-perm" => "file modes are not available under WASI",
        "-user" | "-group" | "-uid" | "-gid" | "-nouser" | "-nogroup" => {
            "owners and groups are not available under WASI"
        }
        "-readable" | "-writable" | "-executable" => {
            "access permissions are not available under WASI"
        }
        "-links" => "link counts are not available under WASI",
        "-inum" | "-samefile" => "inode numbers are not available under WASI",
        "-ctime" | "-cmin" | "-cnewer" | "-used" => {
            "status-change times are not available under WASI"
        }
        "-context" | "-fstype" | "-daystart" | "-anewer" | "-xtype" => "not supported by this find",
        t if t.starts_with("-newer") && t.len() == 8 && t != "-newermm" => {
            "not supported by this find (use -newer)"
        }
        _ => return None,
    })
}

struct Parser<'a> {
    tokens: &'a [String],
    pos: usize,
    cmd: Command,
    regex_syntax: Syntax,
}

/// Parses the arguments after `argv[0]`.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut follow = Follow::Never;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "-H" => follow = Follow::CommandLine,
            "-L" => follow = Follow::Always,
            "-P" => follow = Follow::Never,
            "-D" => i += 1,
            s if s.starts_with("-O") && s.len() > 2 => {}
            "--" => {
                i += 1;
                break;
            }
            _ => break,
        }
        i += 1;
    }
    let mut roots = Vec::new();
    while let Some(a) = args.get(i) {
        if is_expression_start(a) {
            break;
        }
        roots.push(PathBuf::from(a));
        i += 1;
    }
    if roots.is_empty() {
        roots.push(PathBuf::from("."));
    }
    let mut p = Parser {
        tokens: &args[i..],
        pos: 0,
        cmd: Command {
            roots,
            expr: Expr::Const(true),
            follow,
            max_depth: None,
            min_depth: 0,
            depth_first: false,
        },
        regex_syntax: Syntax::Emacs,
    };
    let expr = if p.tokens.is_empty() {
        Expr::Const(true)
    } else {
        p.comma()?
    };
    if let Some(t) = p.peek() {
        return Err(if t == ")" {
            "invalid expression; you have too many ')'".into()
        } else {
            format!("unexpected `{t}'")
        });
    }
    let expr = if expr.has_action() {
        expr
    } else {
        Expr::And(Box::new(expr), Box::new(Expr::Print))
    };
    let mut cmd = p.cmd;
    cmd.expr = expr;
    Ok(cmd)
}

fn is_expression_start(a: &str) -> bool {
    (a.starts_with('-') && a.len() > 1) || a == "(" || a == "!" || a == ")" || a == ","
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> Option<&str> {
        let t = self.tokens.get(self.pos).map(String::as_str);
        self.pos += 1;
        t
    }

    fn arg(&mut self, primary: &str) -> Result<String, String> {
        self.next()
            .map(str::to_owned)
            .ok_or(format!("missing argument to `{primary}'"))
    }

    fn comma(&mut self) -> Result<Expr, String> {
        let mut left = self.or()?;
        while self.peek() == Some(",") {
            self.pos += 1;
            let right = self.or()?;
            left = Expr::Comma(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while matches!(self.peek(), Some("-o" | "-or")) {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            match self.peek() {
                None | Some(")" | "," | "-o" | "-or") => return Ok(left),
                Some("-a" | "-and") => self.pos += 1,
                Some(_) => {}
            }
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some("!" | "-not") => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some("(") => {
                self.pos += 1;
                if self.peek() == Some(")") {
                    return Err("invalid expression; empty parentheses are not allowed.".into());
                }
                let e = self.comma()?;
                if self.next() != Some(")") {
                    return Err("invalid expression; I was expecting to find a ')' somewhere but did not see one.".into());
                }
                Ok(e)
            }
            None => Err("invalid expression; expected an expression".into()),
            Some(_) => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self.next().unwrap_or_default().to_owned();
        let t = token.as_str();
        if let Some(why) = refusal(t) {
            return Err(format!("{t}: {why}"));
        }
        let glob = |p: &mut Self, fold: bool| -> Result<Glob, String> {
            Glob::new(&p.arg(t)?, false, fold)
        };
        Ok(match t {
            "-maxdepth" | "-mindepth" => {
                let v = self.arg(t)?;
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("invalid argument `{v}' to `{t}'"))?;
                if t == "-maxdepth" {
                    self.cmd.max_depth = Some(n);
                } else {
                    self.cmd.min_depth = n;
                }
                Expr::Const(true)
            }
            "-depth" | "-d" => {
                self.cmd.depth_first = true;
                Expr::Const(true)
            }
            "-follow" => {
                self.cmd.follow = Follow::Always;
                Expr::Const(true)
            }
            "-xdev"
            | "-mount"
            | "-noleaf"
            | "-ignore_readdir_race"
            | "-noignore_readdir_race"
            | "-warn"
            | "-nowarn" => Expr::Const(true),
            "-regextype" => {
                let v = self.arg(t)?;
                self.regex_syntax = match v.as_str() {
                    "emacs" | "findutils-default" => Syntax::Emacs,
                    "posix-basic" | "grep" | "sed" | "ed" => Syntax::Basic,
                    "posix-extended" | "posix-egrep" | "egrep" | "awk" | "posix-awk"
                    | "gnu-awk" => Syntax::Extended,
                    _ => return Err(format!("Unknown regular expression type `{v}'")),
                };
                Expr::Const(true)
            }
            "-true" => Expr::Const(true),
            "-false" => Expr::Const(false),
            "-name" => Expr::Name(glob(self, false)?),
            "-iname" => Expr::Name(glob(self, true)?),
            "-path" | "-wholename" => Expr::Path(glob(self, false)?),
            "-ipath" | "-iwholename" => Expr::Path(glob(self, true)?),
            "-lname" => Expr::LinkName(glob(self, false)?),
            "-ilname" => Expr::LinkName(glob(self, true)?),
            "-regex" | "-iregex" => {
                let v = self.arg(t)?;
                let body = translate(&v, self.regex_syntax)?;
                let re = regex::RegexBuilder::new(&format!("^(?:{body})$"))
                    .case_insensitive(t == "-iregex")
                    .build()
                    .map_err(|e| format!("invalid regular expression `{v}': {e}"))?;
                Expr::Regex(re)
            }
            "-type" => {
                let v = self.arg(t)?;
                let letters: Vec<char> = v.split(',').filter_map(|s| s.chars().next()).collect();
                let valid = !v.is_empty()
                    && v.split(',')
                        .all(|s| s.chars().count() == 1 && "fdlpsbcD".contains(s));
                if !valid {
                    return Err(format!("invalid argument `{v}' to `-type'"));
                }
                Expr::Type(letters)
            }
            "-size" => {
                let v = self.arg(t)?;
                let (cmp, rest) = sign(&v);
                let (digits, unit) = match rest.char_indices().last() {
                    Some((i, c)) if c.is_ascii_alphabetic() => (&rest[..i], c),
                    _ => (rest, 'b'),
                };
                let unit = match unit {
                    'c' => 1,
                    'w' => 2,
                    'b' => 512,
                    'k' => 1024,
                    'M' => 1024 * 1024,
                    'G' => 1024 * 1024 * 1024,
                    _ => return Err(format!("invalid -size type `{unit}'")),
                };
                let n = digits
                    .parse()
                    .map_err(|_| format!("invalid argument `{v}' to `-size'"))?;
                Expr::Size { cmp, n, unit }
            }
            "-empty" => Expr::Empty,
            "-newer" | "-newermm" => {
                let f = self.arg(t)?;
                let md = std::fs::metadata(&f)
                    .map_err(|e| format!("'{f}': {}", crate::cli::io_message(&e)))?;
                Expr::Newer(md.modified().map_err(|e| e.to_string())?)
            }
            "-mtime" | "-atime" | "-mmin" | "-amin" => {
                let v = self.arg(t)?;
                let (cmp, rest) = sign(&v);
                let n = rest
                    .parse()
                    .map_err(|_| format!("invalid argument `{v}' to `{t}'"))?;
                let field = if t.starts_with("-m") {
                    TimeField::Modify
                } else {
                    TimeField::Access
                };
                let unit = if t.ends_with("min") { 60 } else { 86_400 };
                Expr::Age {
                    field,
                    cmp,
                    n,
                    unit,
                }
            }
            "-prune" => Expr::Prune,
            "-quit" => Expr::Quit,
            "-print" => Expr::Print,
            "-print0" => Expr::Print0,
            "-printf" => Expr::Printf(Format::parse(&self.arg(t)?)?),
            _ if t.starts_with('-') => return Err(format!("unknown predicate `{t}'")),
            _ => return Err(format!("paths must precede expression: `{t}'")),
        })
    }
}

fn sign(v: &str) -> (Cmp, &str) {
    if let Some(r) = v.strip_prefix('+') {
        (Cmp::More, r)
    } else if let Some(r) = v.strip_prefix('-') {
        (Cmp::Less, r)
    } else {
        (Cmp::Exact, v)
    }
}

#[cfg(test)]
mod tests {
    use super::{Follow, parse};
    use crate::find::expr::Expr;

    fn p(args: &[&str]) -> Result<super::Command, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn roots_and_default_print() {
        let c = p(&["a", "b", "-name", "*.rs"]).unwrap();
        assert_eq!(c.roots.len(), 2);
        assert!(matches!(c.expr, Expr::And(_, ref b) if matches!(**b, Expr::Print)));
        let c = p(&[]).unwrap();
        assert_eq!(c.roots[0].to_str(), Some("."));
    }

    #[test]
    fn precedence() {
        // a -o b c  ==  a -o (b -a c)
        let c = p(&["-name", "a", "-o", "-name", "b", "-type", "f", "-print"]).unwrap();
        assert!(matches!(c.expr, Expr::Or(_, ref r) if matches!(**r, Expr::And(..))));
        let c = p(&["!", "(", "-name", "a", ")", "-print0"]).unwrap();
        assert!(matches!(c.expr, Expr::And(ref l, _) if matches!(**l, Expr::Not(_))));
    }

    #[test]
    fn options() {
        let c = p(&["-L", ".", "-maxdepth", "2", "-mindepth", "1", "-depth"]).unwrap();
        assert_eq!(c.follow, Follow::Always);
        assert_eq!(
            (c.max_depth, c.min_depth, c.depth_first),
            (Some(2), 1, true)
        );
    }

    #[test]
    fn refusals_and_errors() {
        assert!(
            p(&["-exec", "rm", "{}", ";"])
                .unwrap_err()
                .contains("no processes")
        );
        assert!(p(&["-delete"]).is_err());
        assert!(p(&["-perm", "644"]).unwrap_err().contains("modes"));
        assert!(p(&["-fprintf", "x", "%p"]).is_err());
        assert!(p(&["-bogus"]).unwrap_err().contains("unknown predicate"));
        assert!(p(&["-name"]).unwrap_err().contains("missing argument"));
        assert!(
            p(&["-name", "a", "b"])
                .unwrap_err()
                .contains("paths must precede")
        );
        assert!(p(&["(", "-name", "a"]).is_err());
        assert!(p(&["-type", "q"]).is_err());
    }
}
