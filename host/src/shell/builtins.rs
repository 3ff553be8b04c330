//! The interpreter's own commands: `cd`, `pwd`, `echo`, `read`, `test`/`[`, `true`, `false`,
//! `:`, `exit`, `return`, `break`, `continue`, `export`, `local`, `unset`, `set`, `shift`,
//! `command -v`, `wait`. They change the shell's state or are cheaper than a guest; all other
//! names go to the allowlist.
//!
//! Built-ins read and write only the shell's streams and, for `cd` and `test`, the workspace
//! through its capability. This module must not start commands (except `command NAME`, which
//! goes the same way as any command).

use super::exec::{Abort, Flow, Res};
use super::io;
use super::state::{State, is_name};
use super::{Ctx, Host, ShellError};

/// The names the interpreter runs itself.
pub const BUILTINS: &[&str] = &[
    "cd", "pwd", "echo", "read", "test", "[", "true", "false", ":", "exit", "return", "break",
    "continue", "export", "local", "unset", "set", "shift", "command", "wait",
];

/// Whether `name` is one of [`BUILTINS`].
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

async fn out<H: Host>(_ctx: &Ctx<'_, H>, st: &State, text: &str) -> Res<()> {
    st.io
        .stdout
        .write_all(text.as_bytes())
        .await
        .map_err(|_| Abort::Exit(super::SIGPIPE_STATUS))
}

fn number(arg: Option<&String>, default: i32) -> Option<i32> {
    match arg {
        None => Some(default),
        Some(a) => a.parse::<i64>().ok().map(|n| (n & 0xff) as i32),
    }
}

/// Runs built-in `argv[0]`.
///
/// # Errors
/// `exit` (as [`Abort::Exit`]), or a stop of the script.
pub async fn run<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, argv: &[String]) -> Res<Flow> {
    let args = &argv[1..];
    let mut status = 0;
    match argv[0].as_str() {
        "true" | ":" | "wait" => {}
        "false" => status = 1,
        "echo" => {
            let (mut newline, mut escapes) = (true, false);
            let mut i = 0;
            while let Some(a) = args.get(i) {
                let flags = a
                    .strip_prefix('-')
                    .filter(|f| !f.is_empty() && f.chars().all(|c| matches!(c, 'n' | 'e' | 'E')));
                let Some(flags) = flags else { break };
                for c in flags.chars() {
                    match c {
                        'n' => newline = false,
                        'e' => escapes = true,
                        _ => escapes = false,
                    }
                }
                i += 1;
            }
            let mut text = args[i..].join(" ");
            if escapes {
                if let Some(cut) = text.find("\\c") {
                    text.truncate(cut);
                    newline = false;
                }
                text = echo_escapes(&text);
            }
            if newline {
                text.push('\n');
            }
            out(ctx, st, &text).await?;
        }
        "pwd" => {
            let text = format!("{}\n", st.guest_cwd());
            out(ctx, st, &text).await?;
        }
        "cd" => status = cd(ctx, st, args).await?,
        "exit" => {
            let code = number(args.first(), st.status).unwrap_or(2);
            return Err(Abort::Exit(code));
        }
        "return" => {
            st.status = number(args.first(), st.status).unwrap_or(2);
            return Ok(Flow::Return);
        }
        "break" | "continue" => {
            let n = args
                .first()
                .and_then(|a| a.parse::<u32>().ok())
                .unwrap_or(1)
                .max(1);
            st.status = 0;
            return Ok(if argv[0] == "break" {
                Flow::Break(n)
            } else {
                Flow::Continue(n)
            });
        }
        "export" | "local" => {
            for a in args.iter().filter(|a| !a.starts_with('-')) {
                let (name, value) = match a.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_owned())),
                    None => (a.as_str(), None),
                };
                if !is_name(name) {
                    st.complain(&format!("{}: `{a}': not a valid identifier", argv[0]))
                        .await;
                    status = 1;
                    continue;
                }
                if argv[0] == "local" {
                    st.set_local(name, value, &ctx.bounds)?;
                } else {
                    if let Some(v) = value {
                        st.set(name, v, &ctx.bounds)?;
                    }
                    st.export(name, &ctx.bounds)?;
                }
            }
        }
        "unset" => {
            for a in args.iter().filter(|a| !a.starts_with('-')) {
                if args.iter().any(|f| f == "-f") {
                    st.functions.remove(a);
                } else {
                    st.unset(a);
                }
            }
        }
        "shift" => {
            let n = number(args.first(), 1).unwrap_or(1).max(0) as usize;
            if n > st.positional.len() {
                status = 1;
            } else {
                st.positional.drain(..n);
            }
        }
        "set" => status = set(st, args).await,
        "test" | "[" => {
            let mut a: Vec<String> = args.to_vec();
            if argv[0] == "[" {
                if a.last().map(String::as_str) != Some("]") {
                    st.complain("[: missing `]'").await;
                    st.status = 2;
                    return Ok(Flow::Normal);
                }
                a.pop();
            }
            status = super::test_expr::test_command(ctx, st, &a).await;
        }
        "read" => status = read(ctx, st, args).await?,
        "command" => {
            let v = args.first().is_some_and(|a| a == "-v" || a == "-V");
            if v {
                status = 1;
                for name in &args[1..] {
                    if is_builtin(name) || st.functions.contains_key(name) || ctx.host.allows(name)
                    {
                        out(ctx, st, &format!("{name}\n")).await?;
                        status = 0;
                    }
                }
            } else if !args.is_empty() {
                return super::simple::run_command_word(ctx, st, args.to_vec()).await;
            }
        }
        other => {
            return Err(ShellError::Internal(format!("{other} is not a built-in")).into());
        }
    }
    st.status = status;
    Ok(Flow::Normal)
}

async fn cd<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, args: &[String]) -> Res<i32> {
    let target = match args
        .iter()
        .find(|a| !a.starts_with('-') || a.as_str() == "-")
    {
        None => st.get("HOME").unwrap_or("/").to_owned(),
        Some(d) if d == "-" => st.get("OLDPWD").unwrap_or("").to_owned(),
        Some(d) => d.clone(),
    };
    let rel = io::resolve(&st.cwd, &target)?;
    match ctx.host.workspace().resolve_dir(&rel) {
        Ok(dir) => {
            let old = st.guest_cwd();
            st.cwd = dir.relative;
            st.set("OLDPWD", old, &ctx.bounds)?;
            st.sync_pwd();
            if args.first().is_some_and(|a| a == "-") {
                let line = format!("{}\n", st.guest_cwd());
                let _ = st.io.stdout.write_all(line.as_bytes()).await;
            }
            Ok(0)
        }
        Err(e) if e.code == crate::error::ErrorCode::PathOutsideWorkspace => {
            Err(ShellError::Outside(target).into())
        }
        Err(_) => {
            let why = if ctx
                .host
                .workspace()
                .root()
                .metadata(if rel.is_empty() { "." } else { &rel })
                .is_ok()
            {
                "Not a directory"
            } else {
                "No such file or directory"
            };
            st.complain(&format!("cd: {target}: {why}")).await;
            Ok(1)
        }
    }
}

async fn set(st: &mut State, args: &[String]) -> i32 {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" {
            st.positional = args[i + 1..].to_vec();
            return 0;
        }
        let (on, flags) = match (a.strip_prefix('-'), a.strip_prefix('+')) {
            (Some(f), _) => (true, f),
            (_, Some(f)) => (false, f),
            _ => {
                st.positional = args[i..].to_vec();
                return 0;
            }
        };
        for c in flags.chars() {
            match c {
                'e' => st.options.errexit = on,
                'u' => st.options.nounset = on,
                'f' => st.options.noglob = on,
                'x' | 'v' | 'h' | 'B' | 'C' | 'H' | 'P' | 'T' => {}
                'o' => {
                    i += 1;
                    match args.get(i).map(String::as_str) {
                        Some("pipefail") => st.options.pipefail = on,
                        Some("errexit") => st.options.errexit = on,
                        Some("nounset") => st.options.nounset = on,
                        Some("noglob") => st.options.noglob = on,
                        Some("xtrace" | "verbose" | "noclobber") => {}
                        Some(o) => {
                            st.complain(&format!("set: {o}: invalid option name")).await;
                            return 2;
                        }
                        None => return 0,
                    }
                }
                other => {
                    st.complain(&format!("set: -{other}: invalid option")).await;
                    return 2;
                }
            }
        }
        i += 1;
    }
    0
}

/// `read [-r] [-d DELIM] [-p PROMPT] [NAME…]`: one line (or up to DELIM) from stdin, split
/// on `IFS` into the names, the last taking the rest.
async fn read<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, args: &[String]) -> Res<i32> {
    let mut raw = false;
    let mut delim = b'\n';
    let mut names = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "-r" => raw = true,
            "-d" => {
                i += 1;
                delim = args.get(i).and_then(|d| d.bytes().next()).unwrap_or(0);
            }
            "-p" => i += 1,
            "-s" => {}
            "-a" | "-n" | "-N" | "-t" | "-u" | "-e" | "-i" => {
                return Err(ShellError::Construct {
                    construct: format!("read {a}"),
                    offset: None,
                    why: "this option of read is not supported",
                }
                .into());
            }
            "-rs" | "-sr" => raw = true,
            _ => names.push(a.clone()),
        }
        i += 1;
    }
    let mut line = Vec::new();
    let mut found_delim = false;
    let mut byte = [0u8; 1];
    loop {
        let n = tokio::select! {
            n = st.io.stdin.read(&mut byte) => n,
            () = ctx.cancel.cancelled() => {
                return Err(ShellError::Stopped(crate::error::RunError::new(
                    crate::error::ErrorCode::Cancelled,
                    "the script was stopped",
                )).into());
            }
        };
        if n == 0 {
            break;
        }
        if !raw && byte[0] == b'\\' {
            let n = st.io.stdin.read(&mut byte).await;
            if n == 0 {
                break;
            }
            if byte[0] != b'\n' {
                line.push(b'\\');
                line.push(byte[0]);
            }
            continue;
        }
        if byte[0] == delim {
            found_delim = true;
            break;
        }
        line.push(byte[0]);
        if line.len() > ctx.bounds.max_value_bytes {
            return Err(ShellError::Bounds(format!(
                "read took a line longer than {} bytes",
                ctx.bounds.max_value_bytes
            ))
            .into());
        }
    }
    let text = String::from_utf8_lossy(&line).into_owned();
    if names.is_empty() {
        let v = if raw { text } else { unescape(&text) };
        st.set("REPLY", v, &ctx.bounds)?;
    } else {
        let ifs = st.get("IFS").unwrap_or(" \t\n").to_owned();
        let values = split_read(&text, &ifs, names.len(), raw);
        for (name, v) in names.iter().zip(values) {
            if !is_name(name) {
                st.complain(&format!("read: `{name}': not a valid identifier"))
                    .await;
                return Ok(1);
            }
            st.set(name, v, &ctx.bounds)?;
        }
    }
    Ok(if found_delim { 0 } else { 1 })
}

/// `echo -e`'s escapes: those of `$'…'`, except that octal is `\0NNN` (up to three digits
/// after the zero) and `\1`…`\7` are not escapes.
fn echo_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&super::expand::ansi_c(&rest[..i]));
        let after = &rest[i + 1..];
        if let Some(oct) = after.strip_prefix('0') {
            let digits = oct
                .bytes()
                .take(3)
                .take_while(|b| (b'0'..=b'7').contains(b))
                .count();
            let v = u32::from_str_radix(&oct[..digits], 8).unwrap_or(0);
            out.extend(char::from_u32(v));
            rest = &oct[digits..];
        } else if after.starts_with(|c: char| ('1'..='7').contains(&c)) {
            out.push('\\');
            rest = after;
        } else {
            let n = after.chars().next().map_or(0, char::len_utf8);
            // Hex takes up to two more digits.
            let extra = after.strip_prefix('x').map_or(0, |hex| {
                hex.bytes()
                    .take(2)
                    .take_while(u8::is_ascii_hexdigit)
                    .count()
            });
            let end = (n + extra).min(after.len());
            out.push_str(&super::expand::ansi_c(&rest[i..i + 1 + end]));
            rest = &after[end..];
        }
    }
    out.push_str(&super::expand::ansi_c(rest));
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits a line read into `n` values as bash's `read` does.
fn split_read(text: &str, ifs: &str, n: usize, raw: bool) -> Vec<String> {
    let is_ws = |c: char| ifs.contains(c) && c.is_whitespace();
    let is_sep = |c: char| ifs.contains(c);
    let mut values = Vec::with_capacity(n);
    let mut rest = text.trim_start_matches(is_ws);
    while values.len() + 1 < n {
        if rest.is_empty() {
            break;
        }
        let end = rest.find(is_sep).unwrap_or(rest.len());
        values.push(rest[..end].to_owned());
        rest = &rest[end..];
        // Skip one delimiter with the blanks around it.
        rest = rest.trim_start_matches(is_ws);
        if let Some(c) = rest.chars().next()
            && is_sep(c)
            && !is_ws(c)
        {
            rest = rest[c.len_utf8()..].trim_start_matches(is_ws);
        }
    }
    values.push(rest.trim_end_matches(is_ws).to_owned());
    let values: Vec<String> = if raw {
        values
    } else {
        values.into_iter().map(|v| unescape(&v)).collect()
    };
    let mut values = values;
    values.resize(n, String::new());
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_escapes_as_bash() {
        assert_eq!(
            echo_escapes(r"x\ny \x41 \0101 \101 \t"),
            "x\ny A A \\101 \t"
        );
    }

    #[test]
    fn read_splits_as_bash() {
        assert_eq!(split_read("  a  b c  ", " \t\n", 2, true), ["a", "b c"]);
        assert_eq!(split_read("a:b:c", ":", 2, true), ["a", "b:c"]);
        assert_eq!(split_read("a", " \t\n", 3, true), ["a", "", ""]);
        assert_eq!(split_read("  x  ", "", 1, true), ["  x  "]);
    }
}
