//! Tests of two house rules on the library's own source text: no `Result<_, String>` (errors
//! are typed), and no file of more than [`MAX_CODE_LINES`] lines of non-test code (one job per
//! file). They read every `.rs` file under `host/src` that is built outside tests, with
//! comments, literals and `#[cfg(test)]` items removed by [`crate::layers`]' scanner. Test-only:
//! nothing here is built into runbox.

use crate::layers::{src_dir, strip_comments_and_literals, strip_test_items};
use std::path::{Path, PathBuf};

/// The most lines of code (not blank, not comments, not tests) a library file may have.
const MAX_CODE_LINES: usize = 450;

/// Every library source file, with its text as the rules see it: comments, literals and
/// test-gated items gone; files declared by a test-gated `mod NAME;` left out.
fn library_sources() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let src = src_dir();
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let (_, test_only) = strip_test_items(&strip_comments_and_literals(&lib));
    let mut tops: Vec<PathBuf> = std::fs::read_dir(&src)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    tops.sort();
    for p in tops {
        let stem = stem(&p);
        if test_only.contains(&stem) || stem == "main" {
            continue;
        }
        if p.extension().is_some_and(|x| x == "rs") {
            read(&p, &mut out);
        } else if p.join("mod.rs").exists() && !p.with_extension("rs").exists() {
            read(&p.join("mod.rs"), &mut out);
        }
    }
    out
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_owned()
}

/// `path` and, when it has them, its child module files (`X.rs` → `X/*.rs`, `X/mod.rs` →
/// `X/*.rs`), except those its test-gated `mod NAME;` lines declare.
fn read(path: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let (text, test_files) = strip_test_items(&strip_comments_and_literals(&text));
    out.push((path.to_path_buf(), text));
    if stem(path) == "lib" {
        return;
    }
    let dir = if stem(path) == "mod" {
        path.parent().map(Path::to_path_buf)
    } else {
        path.parent().map(|p| p.join(stem(path)))
    };
    let Some(Ok(entries)) = dir.map(std::fs::read_dir) else {
        return;
    };
    let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    children.sort();
    for child in children {
        let s = stem(&child);
        if s == "mod" || test_files.contains(&s) {
            continue;
        }
        if child.extension().is_some_and(|e| e == "rs") {
            read(&child, out);
        } else if child.is_dir() && !child.with_extension("rs").exists() {
            read(&child.join("mod.rs"), out);
        }
    }
}

/// The error types of every `Result<T, E>` written in `text` whose `E` is `String`.
fn string_errors(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("Result<") {
        let args = &rest[at + "Result<".len()..];
        let mut depth = 0usize;
        let mut comma = None;
        let mut end = args.len();
        for (i, c) in args.char_indices() {
            match c {
                '<' | '(' | '[' => depth += 1,
                '>' | ')' | ']' if depth == 0 => {
                    end = i;
                    break;
                }
                '>' | ')' | ']' => depth -= 1,
                ',' if depth == 0 && comma.is_none() => comma = Some(i),
                _ => {}
            }
        }
        if let Some(c) = comma {
            let err = args[c + 1..end].trim();
            if err == "String" || err == "std::string::String" {
                found.push(format!("Result<{}>", args[..end].trim()));
            }
        }
        rest = &rest[at + "Result<".len()..];
    }
    found
}

fn code_lines(text: &str) -> usize {
    text.lines().filter(|l| !l.trim().is_empty()).count()
}

#[test]
fn the_scanner_finds_string_errors_and_only_them() {
    assert_eq!(
        string_errors("fn f() -> Result<Vec<(u8, String)>, String> {}"),
        ["Result<Vec<(u8, String)>, String>"]
    );
    assert!(string_errors("fn f() -> Result<String, MyError> {}").is_empty());
    assert!(string_errors("type R<T> = Result<T, HashMap<String, String>>;").is_empty());
    assert_eq!(code_lines("a\n\n  \nb\n"), 2);
}

#[test]
fn library_errors_are_typed() {
    let sources = library_sources();
    assert!(
        sources.len() > 50,
        "the walk found only {} files",
        sources.len()
    );
    let offenders: Vec<String> = sources
        .iter()
        .flat_map(|(p, text)| {
            string_errors(text)
                .into_iter()
                .map(move |r| format!("{}: {r}", p.display()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "Result<_, String> in library code (use a typed error):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn library_files_keep_to_one_job_in_at_most_450_code_lines() {
    let mut over: Vec<String> = library_sources()
        .iter()
        .filter(|(_, text)| code_lines(text) > MAX_CODE_LINES)
        .map(|(p, text)| format!("{}: {} lines", p.display(), code_lines(text)))
        .collect();
    over.sort();
    assert!(
        over.is_empty(),
        "files over {MAX_CODE_LINES} lines of non-test code (split them by job):\n{}",
        over.join("\n")
    );
}
