//! Turns a script's text into brush-parser's syntax tree, within bounds: the script's size,
//! how deeply its brackets nest (brush-parser's parsers recurse once per level, so an
//! unbounded nesting would overflow the stack and abort the server), and on a thread of its
//! own with a stack sized for the deepest nesting allowed.
//!
//! This module must not judge what the script runs (that is [`super::check`]) nor run it.

use super::ShellError;
use brush_parser::ast::Program;
use brush_parser::{ParserOptions, SourcePosition};

/// Most bytes a script may have.
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;

/// Deepest nesting of brackets, braces, parentheses, backquotes and compound keywords.
pub const MAX_NESTING: usize = 100;

/// Deepest nesting of parentheses and square brackets. brush-parser backtracks between a
/// subshell, an arithmetic command and a process substitution at each unclosed `(`, and
/// between arithmetic forms at `$((` and `$[`, so a script it rejects costs about twice as much
/// per level (found by fuzzing: 26 unclosed levels, 60 bytes, took minutes); at this depth the
/// worst case measured is a few milliseconds (six `$((` in a here-document, expanded later).
pub const MAX_PAREN_NESTING: usize = 12;

/// The stack of the parsing thread: the deepest nesting allowed parses in a small part of it.
const PARSER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// The options runbox parses with: bash's, without extended globs (bash's default is off).
pub fn options() -> ParserOptions {
    ParserOptions {
        enable_extended_globbing: false,
        ..ParserOptions::default()
    }
}

/// Parses `script` into a program.
///
/// # Errors
/// [`ShellError::Syntax`] for a script brush-parser rejects (with its line and column),
/// [`ShellError::Bounds`] for one too long or too deeply nested.
pub fn parse(script: &str) -> Result<Program, ShellError> {
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(ShellError::Bounds(format!(
            "the script is {} bytes; the limit is {MAX_SCRIPT_BYTES}",
            script.len()
        )));
    }
    if script.contains('\0') {
        return Err(ShellError::Syntax("the script contains a NUL byte".into()));
    }
    let (depth, parens) = nesting(script);
    if depth > MAX_NESTING {
        return Err(ShellError::Bounds(format!(
            "the script nests {depth} levels deep; the limit is {MAX_NESTING}"
        )));
    }
    if parens > MAX_PAREN_NESTING {
        return Err(ShellError::Bounds(format!(
            "the script nests parentheses {parens} deep; the limit is {MAX_PAREN_NESTING}"
        )));
    }
    let text = script.to_owned();
    let parsed = std::thread::Builder::new()
        .name("runbox-shell-parse".into())
        .stack_size(PARSER_STACK_BYTES)
        .spawn(move || {
            let mut parser = brush_parser::Parser::new(text.as_bytes(), &options());
            let program = parser.parse_program().map_err(|e| e.to_string())?;
            // A `[[ ]]` of thousands of `!`/`&&` is a tree that deep: measured (and, if too
            // deep, dropped) here, on this thread's stack, never on a runtime worker's (found by
            // review: 3,000 `!` overflowed one).
            let depth = deepest_test(&program);
            if depth > MAX_NESTING {
                return Err(format!(
                    "{DEEP_TEST} ({depth} levels; the limit is {MAX_NESTING})"
                ));
            }
            Ok(program)
        })
        .map_err(|e| ShellError::Internal(format!("cannot start the parser thread: {e}")))?
        .join()
        // brush-parser's tokenizer can panic on malformed input (found by fuzzing: an
        // unterminated `$((` inside `${v:…}` in a here-document); the thread contains it and
        // the script is refused as one the parser cannot read.
        .map_err(|_| ShellError::Syntax("the parser could not read this script".into()))?;
    parsed.map_err(|e| {
        if e.starts_with(DEEP_TEST) {
            ShellError::Bounds(e)
        } else {
            ShellError::Syntax(e)
        }
    })
}

const DEEP_TEST: &str = "a [[ ]] expression nests too deep";

/// The deepest `[[ ]]` expression in `p` (0 without one).
fn deepest_test(p: &Program) -> usize {
    use brush_parser::ast::{
        AndOr, Command, CompoundCommand as CC, CompoundList, ExtendedTestExpr as X,
    };
    fn expr(e: &X) -> usize {
        match e {
            X::And(a, b) | X::Or(a, b) => 1 + expr(a).max(expr(b)),
            X::Not(a) | X::Parenthesized(a) => 1 + expr(a),
            X::UnaryTest(..) | X::BinaryTest(..) => 1,
        }
    }
    fn list(l: &CompoundList) -> usize {
        let mut d = 0;
        for item in &l.0 {
            let pipes =
                std::iter::once(&item.0.first).chain(item.0.additional.iter().map(|ao| match ao {
                    AndOr::And(p) | AndOr::Or(p) => p,
                }));
            for p in pipes {
                for c in &p.seq {
                    d = d.max(command(c));
                }
            }
        }
        d
    }
    fn command(c: &Command) -> usize {
        match c {
            Command::ExtendedTest(t, _) => expr(&t.expr),
            Command::Compound(cc, _) => compound(cc),
            Command::Function(f) => compound(&f.body.0),
            Command::Simple(_) => 0,
        }
    }
    fn compound(cc: &CC) -> usize {
        match cc {
            CC::BraceGroup(b) => list(&b.list),
            CC::Subshell(s) => list(&s.list),
            CC::ForClause(f) => list(&f.body.list),
            CC::ArithmeticForClause(f) => list(&f.body.list),
            CC::CaseClause(c) => c
                .cases
                .iter()
                .filter_map(|i| i.cmd.as_ref())
                .map(list)
                .max()
                .unwrap_or(0),
            CC::IfClause(i) => {
                let mut d = list(&i.condition).max(list(&i.then));
                for e in i.elses.iter().flatten() {
                    d = d
                        .max(e.condition.as_ref().map_or(0, list))
                        .max(list(&e.body));
                }
                d
            }
            CC::WhileClause(w) | CC::UntilClause(w) => list(&w.0).max(list(&w.1.list)),
            CC::Arithmetic(_) | CC::Coprocess(_) => 0,
        }
    }
    p.complete_commands.iter().map(list).max().unwrap_or(0)
}

/// How deeply `script` nests, in all and in parentheses alone: every opening bracket, brace,
/// parenthesis or compound keyword counts one level, every closing one ends one; a backquote
/// toggles a level. Quoting is not looked at, so this is an upper bound of what the parser
/// will meet (a quoted bracket counts too), which is the safe direction.
fn nesting(script: &str) -> (usize, usize) {
    let mut depth: usize = 0;
    let mut deepest = 0;
    let mut parens: usize = 0;
    let mut deepest_parens = 0;
    let mut in_backquote = false;
    for word in script.split(|c: char| c.is_whitespace() || c == ';') {
        match word {
            "if" | "case" | "for" | "while" | "until" | "select" | "do" => depth += 1,
            "fi" | "esac" | "done" => depth = depth.saturating_sub(1),
            _ => {}
        }
        deepest = deepest.max(depth);
        for c in word.chars() {
            match c {
                '(' | '[' => {
                    depth += 1;
                    parens += 1;
                    deepest_parens = deepest_parens.max(parens);
                }
                ')' | ']' => {
                    depth = depth.saturating_sub(1);
                    parens = parens.saturating_sub(1);
                }
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                '`' => {
                    if in_backquote {
                        depth = depth.saturating_sub(1);
                    } else {
                        depth += 1;
                    }
                    in_backquote = !in_backquote;
                }
                _ => {}
            }
            deepest = deepest.max(depth);
        }
    }
    (deepest, deepest_parens)
}

/// Runs one of brush-parser's functions, its panic contained: brush-parser is written for an
/// interactive shell and can panic on malformed input (found by fuzzing, in its tokenizer and
/// brace grammar); runbox answers such input as one it cannot read.
///
/// # Errors
/// [`ShellError::Syntax`] when it panicked.
pub fn contained<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, ShellError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| ShellError::Syntax(format!("the parser could not read this {what}")))
}

/// The byte offset in `script` of brush-parser's character position `pos`.
pub fn byte_offset(script: &str, pos: &SourcePosition) -> usize {
    script
        .char_indices()
        .nth(pos.index)
        .map_or(script.len(), |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_script_parses() {
        let p = parse("grep -rn TODO src | sort | head -20").unwrap();
        assert_eq!(p.complete_commands.len(), 1);
    }

    #[test]
    fn deep_nesting_is_refused_before_the_parser_sees_it() {
        let deep = format!("{}true{}", "(".repeat(5000), ")".repeat(5000));
        assert!(matches!(parse(&deep), Err(ShellError::Bounds(_))));
        let ifs = "if true; then ".repeat(200) + &"fi; ".repeat(200);
        assert!(matches!(parse(&ifs), Err(ShellError::Bounds(_))));
        let ok = format!("{}true{}", "{ ".repeat(50), "; }".repeat(50));
        assert!(parse(&ok).is_ok());
        let parens = format!("{}true{}", "(".repeat(12), ")".repeat(12));
        assert!(parse(&parens).is_ok());
    }

    #[test]
    fn unclosed_legacy_arithmetic_is_bounded_too() {
        assert!(matches!(
            parse(&"echo $[".repeat(20)),
            Err(ShellError::Bounds(_))
        ));
        assert!(parse("[[ -f a ]] && [ -d b ] && echo $(( (1+2) * [3] ))").is_ok());
    }

    #[test]
    fn unclosed_parentheses_are_refused_before_the_parser_backtracks_on_them() {
        // Found by fuzzing: brush-parser took minutes on this 60-byte script.
        let slow = "cat <((((((( ((@(((((((((((((((((|xEOF\n$t a.3<s]F";
        let started = std::time::Instant::now();
        assert!(matches!(parse(slow), Err(ShellError::Bounds(_))));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let worst = "( ".repeat(MAX_PAREN_NESTING);
        let started = std::time::Instant::now();
        assert!(parse(&worst).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_deep_double_bracket_test_is_refused_and_dropped_on_the_parser_thread() {
        let deep = format!("[[ {}a ]]", "! ".repeat(20_000));
        assert!(matches!(parse(&deep), Err(ShellError::Bounds(_))));
        let chain = format!("[[ a{} ]]", " && a".repeat(10_000));
        assert!(matches!(parse(&chain), Err(ShellError::Bounds(_))));
        assert!(parse("[[ ! ! a && b || c ]]").is_ok());
    }

    #[test]
    fn a_panic_of_the_parser_is_a_syntax_error() {
        let script = "cat<<E \u{e}$((,a)(b) ]${v:$((,a)(-d}\nE\n";
        assert!(matches!(parse(script), Err(ShellError::Syntax(_))));
    }

    #[test]
    fn syntax_errors_and_long_scripts_are_typed() {
        assert!(matches!(parse("if then fi"), Err(ShellError::Syntax(_))));
        assert!(matches!(
            parse(&"x".repeat(MAX_SCRIPT_BYTES + 1)),
            Err(ShellError::Bounds(_))
        ));
    }
}
