//! Builds the line matcher for grep from its patterns and flags.
//!
//! `-G` and `-E` patterns are translated from POSIX syntax; `-F` uses the literal matcher;
//! `-P` is passed through (Rust regex syntax). `-w`, `-x` and `-i` are grep-regex settings. An
//! empty pattern list (`-f /empty/file`) matches nothing, as in GNU grep.

use super::args::{Config, Dialect};
use crate::pattern::regex::{Syntax, translate};
use grep_regex::{RegexMatcher, RegexMatcherBuilder};

/// A pattern that can never match (used when no patterns were given).
const NEVER: &str = r"[^\s\S]";

/// Compiles `config.patterns` into one matcher.
pub fn build(config: &Config) -> Result<RegexMatcher, String> {
    let mut builder = RegexMatcherBuilder::new();
    builder
        .case_insensitive(config.ignore_case)
        .word(config.word)
        .whole_line(config.line)
        .line_terminator(Some(if config.null_data { b'\0' } else { b'\n' }));
    if config.patterns.is_empty() {
        return builder.build(NEVER).map_err(|e| e.to_string());
    }
    let patterns: Vec<String> = match config.dialect {
        Dialect::Fixed => {
            builder.fixed_strings(true);
            config.patterns.clone()
        }
        Dialect::Perl => config.patterns.clone(),
        Dialect::Basic | Dialect::Extended => {
            let syntax = if config.dialect == Dialect::Basic {
                Syntax::Basic
            } else {
                Syntax::Extended
            };
            config
                .patterns
                .iter()
                .map(|p| translate(p, syntax))
                .collect::<Result<_, _>>()?
        }
    };
    builder.build_many(&patterns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::build;
    use crate::grep::args::parse;
    use grep_matcher::Matcher;
    use std::ffi::OsString;

    fn matches(args: &[&str], line: &str) -> bool {
        let mut v = vec![OsString::from("grep")];
        v.extend(args.iter().map(OsString::from));
        let cfg = parse(v).unwrap_or_else(|c| panic!("exit {c}"));
        build(&cfg).unwrap().is_match(line.as_bytes()).unwrap()
    }

    #[test]
    fn dialects() {
        assert!(matches(&["a+"], "a+"));
        assert!(!matches(&["a+"], "aa"));
        assert!(matches(&["-E", "a+"], "aa"));
        assert!(matches(&["-F", "a.c"], "xa.cx"));
        assert!(!matches(&["-F", "a.c"], "abc"));
        assert!(matches(&["-P", r"\d+"], "x12"));
    }

    #[test]
    fn flags() {
        assert!(matches(&["-i", "HELLO"], "hello"));
        assert!(matches(&["-w", "foo"], "a foo b"));
        assert!(!matches(&["-w", "foo"], "foobar"));
        assert!(matches(&["-x", "foo"], "foo"));
        assert!(!matches(&["-x", "foo"], "foo bar"));
        assert!(matches(&["-e", "x", "-e", "y"], "y"));
        assert!(matches(&["-e", ""], "anything"));
    }

    #[test]
    fn no_patterns_match_nothing() {
        let cfg = crate::grep::args::Config {
            patterns: vec![],
            ..test_config()
        };
        assert!(!build(&cfg).unwrap().is_match(b"abc").unwrap());
    }

    fn test_config() -> crate::grep::args::Config {
        let v = ["grep", "x"].iter().map(OsString::from).collect();
        parse(v).unwrap_or_else(|c| panic!("exit {c}"))
    }
}
