//! Unit tests of the awk front end: refusals of processes, the depth limit, and command-line
//! reading. Whole programs are covered by the differential test against gawk.
//!
//! Must not: run programs that print (stdout is the test harness's).

use super::error::AwkError;
use super::{lexer, operand_assignment, parse_args, parser};

fn parse(src: &str) -> Result<super::ast::Program, AwkError> {
    parser::parse(lexer::tokenize(src)?)
}

#[test]
fn processes_are_refused_at_parse_time() {
    for src in [
        "BEGIN { system(\"id\") }",
        "BEGIN { x = system(\"id\") + 1 }",
        "BEGIN { print \"x\" | \"sh\" }",
        "BEGIN { printf \"%s\", 1 | \"cat\" }",
        "BEGIN { \"date\" | getline d }",
        "{ \"ls\" | getline }",
    ] {
        match parse(src) {
            Err(e @ AwkError::Refused(_)) => {
                assert_eq!(e.exit_code(), 2);
                assert!(e.to_string().contains("not supported in runbox"), "{e}");
            }
            other => panic!("{src}: {other:?}"),
        }
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = |open: &str, close: &str, n: usize| {
        format!("BEGIN {{ x = {}1{} }}", open.repeat(n), close.repeat(n))
    };
    for src in [
        deep("(", ")", 100_000),
        deep("-", "", 100_000),
        deep("!", "", 100_000),
        deep("$", "", 100_000),
        deep("a[", "]", 100_000),
        format!("BEGIN {{ x = 1{} }}", "+1".repeat(100_000)),
        format!("BEGIN {{ x = 1{} }}", " 1".repeat(100_000)),
        format!("BEGIN {{ x = 2{} }}", "^2".repeat(100_000)),
        format!("BEGIN {{ x {} 1 }}", "= y".repeat(100_000)),
        format!("BEGIN {{ {} }}", "if (1) ".repeat(100_000)),
        format!("BEGIN {}{}", "{".repeat(100_000), "}".repeat(100_000)),
    ] {
        assert!(
            matches!(parse(&src), Err(AwkError::TooDeep(_))),
            "{}",
            &src[..40]
        );
    }
    // Ordinary programs are far from the limit.
    assert!(parse(&deep("(", ")", 40)).is_ok());
    assert!(parse(&format!("BEGIN {{ x = 1{} }}", " \",\" $1".repeat(40))).is_ok());
}

#[test]
fn syntax_errors_name_the_line() {
    let e = parse("BEGIN {\n print (\n}").err();
    assert!(matches!(e, Some(AwkError::Syntax { line: 2, .. })), "{e:?}");
    assert!(matches!(
        parse("BEGIN { f(1) }"),
        Err(AwkError::Syntax { .. })
    ));
    assert!(parse("function f(a) { return a } BEGIN { print f(1) }").is_ok());
}

#[test]
fn array_parameters_are_inferred_through_calls() {
    let p = parse("function g(b) { b[1] = 1 } function f(a) { g(a) } BEGIN { f(x) }")
        .unwrap_or_default();
    assert_eq!(p.funcs.len(), 2);
    assert!(p.funcs.iter().all(|f| f.array_params == [true]));
}

#[test]
fn command_line() {
    let args: Vec<String> = ["-F:", "-v", "x=a\\tb", "-f", "p.awk", "--", "in.txt"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let inv = parse_args(&args).unwrap_or_default();
    assert_eq!(inv.fs.as_deref(), Some(":"));
    assert_eq!(inv.assigns, [("x".to_owned(), "a\tb".to_owned())]);
    assert_eq!(inv.progfiles, ["p.awk"]);
    assert_eq!(inv.rest, ["in.txt"]);
    assert!(parse_args(&["-q".to_owned()]).is_err());
    assert_eq!(operand_assignment("n=1"), Some(("n".into(), "1".into())));
    assert_eq!(operand_assignment("1n=1"), None);
    assert_eq!(operand_assignment("a/b=1"), None);
}

#[test]
fn runaway_recursion_stops_with_an_error() {
    let e = super::run(&["function f(n) { return f(n + 1) } BEGIN { f(1) }".to_owned()]).err();
    assert!(matches!(e, Some(AwkError::CallDepth(_))), "{e:?}");
    // Each level deep in expressions or statements: the stack budget is reached first.
    for prog in [
        format!(
            "function f(n) {{ return {}f(n + 1){} }} BEGIN {{ f(1) }}",
            "(".repeat(12),
            ")".repeat(12)
        ),
        format!(
            "function f(n) {{ {} return f(n + 1) }} BEGIN {{ f(1) }}",
            "if (1) ".repeat(12)
        ),
    ] {
        let e = super::run(std::slice::from_ref(&prog)).err();
        assert!(matches!(e, Some(AwkError::Nesting(_))), "{prog}: {e:?}");
        assert_eq!(e.map(|e| e.exit_code()), Some(2));
    }
}
