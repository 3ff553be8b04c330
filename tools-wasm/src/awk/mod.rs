//! `awk`: a POSIX awk written for runbox (no crate was faithful enough: see docs/commands.md).
//!
//! The command line (`-F fs`, `-v var=value`, `-f progfile`, `--`, program text, operands) is
//! read here; then the program is tokenized ([`lexer`]), parsed ([`parser`], [`parse_stmt`],
//! [`parse_expr`]) into an [`ast`], and run by the interpreter ([`interp`], [`eval`],
//! [`builtins`], [`print`]) over [`fields`] and [`io`], with [`value`], [`format`] and
//! [`regex`] below.
//!
//! Must not: start processes. `system()`, `print | cmd` and `cmd | getline` are refused when the
//! program is parsed, before anything runs, with exit status 2. Files are whatever the guest
//! can open: the workspace only.

mod ast;
mod builtins;
mod error;
mod eval;
mod fields;
mod format;
mod interp;
mod io;
mod lexer;
mod parse_expr;
mod parse_stmt;
mod parser;
mod print;
mod regex;
mod value;

#[cfg(test)]
mod tests;

use error::AwkError;
use std::ffi::OsString;

/// The entry point.
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("awk: {e}");
            e.exit_code()
        }
    }
}

/// What the command line asks for.
#[derive(Default, Debug)]
struct Invocation {
    fs: Option<String>,
    assigns: Vec<(String, String)>,
    progfiles: Vec<String>,
    rest: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Invocation, AwkError> {
    let mut inv = Invocation::default();
    let mut i = 0;
    let value = |i: &mut usize, inline: &str, opt: &str| -> Result<String, AwkError> {
        if !inline.is_empty() {
            return Ok(inline.to_owned());
        }
        *i += 1;
        args.get(*i)
            .cloned()
            .ok_or_else(|| AwkError::Usage(format!("option requires an argument -- {opt}")))
    };
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        if let Some(v) = a.strip_prefix("-F") {
            let fs = value(&mut i, v, "F")?;
            inv.fs = Some(if fs == "t" {
                "\t".into()
            } else {
                unescape(&fs)
            });
        } else if let Some(v) = a.strip_prefix("-v") {
            let assign = value(&mut i, v, "v")?;
            let (name, val) = operand_assignment(&assign).ok_or_else(|| {
                AwkError::Usage(format!(
                    "`{assign}' argument to `-v' not in `var=value' form"
                ))
            })?;
            inv.assigns.push((name, val));
        } else if let Some(v) = a.strip_prefix("-f") {
            inv.progfiles.push(value(&mut i, v, "f")?);
        } else if a == "--help" || a == "--usage" {
            return Err(AwkError::Usage(
                "usage: awk [-F fs][-v var=value][prog | -f progfile ...][file ...]".into(),
            ));
        } else {
            return Err(AwkError::Usage(format!(
                "unknown option {a}; usage: awk [-F fs][-v var=value][prog | -f progfile ...][file ...]"
            )));
        }
        i += 1;
    }
    inv.rest = args[i.min(args.len())..].to_vec();
    Ok(inv)
}

fn run(args: &[String]) -> Result<i32, AwkError> {
    let mut inv = parse_args(args)?;
    let source = if inv.progfiles.is_empty() {
        if inv.rest.is_empty() {
            return Err(AwkError::Usage(
                "no program text; usage: awk [-F fs][-v var=value][prog | -f progfile ...][file ...]"
                    .into(),
            ));
        }
        inv.rest.remove(0)
    } else {
        let mut text = String::new();
        for f in &inv.progfiles {
            let body = std::fs::read(f).map_err(|e| {
                AwkError::io(format!("can't open source file `{f}' for reading"), &e)
            })?;
            text.push_str(&String::from_utf8_lossy(&body));
            text.push('\n');
        }
        text
    };
    let tokens = lexer::tokenize(&source)?;
    let program = parser::parse(tokens)?;
    let mut assigns = inv.assigns;
    if let Some(fs) = inv.fs {
        assigns.insert(0, ("FS".into(), fs));
    }
    let mut interp = interp::Interp::new(&program, &inv.rest, assigns);
    interp.run()
}

/// `name=value` (an operand or a `-v` argument) with the value's escapes processed.
pub(crate) fn operand_assignment(arg: &str) -> Option<(String, String)> {
    let (name, value) = arg.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    Some((name.to_owned(), unescape(value)))
}

/// Processes awk's string escapes (`\t`, `\n`, `\\`, octal...).
fn unescape(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            i = lexer::escape(&chars, i + 1, &mut out);
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}
