//! End-to-end tests of the hand-written commands, run natively: the test binary starts the
//! native build of `runbox-tools` with the command name as `argv[0]` (the multicall dispatch)
//! in a fresh directory per test, and checks stdout, stderr and the exit code.
//!
//! The WASI build runs the same code; what differs under WASI (no modes, owners, link counts)
//! is covered by the unit tests and by running the module under wasmtime.

#![cfg(unix)]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Output of one run.
struct Run {
    out: String,
    err: String,
    code: i32,
}

/// Runs `name args...` in `dir` with `stdin`.
fn run(dir: &Path, name: &str, args: &[&str], stdin: &str) -> Run {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_runbox-tools"))
        .arg0(name)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PWD", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runbox-tools");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let o = child.wait_with_output().expect("wait");
    Run {
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
        code: o.status.code().unwrap_or(-1),
    }
}

/// A fresh directory with `files` (path, contents); directories are created as needed.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    dir
}

#[test]
fn unknown_name_exits_125() {
    let d = tree(&[]);
    let r = run(d.path(), "nosuch", &[], "");
    assert_eq!(r.code, 125);
    assert!(r.err.contains("unknown command"));
}

#[test]
fn bad_pwd_exits_125() {
    let d = tree(&[]);
    let o = Command::new(env!("CARGO_BIN_EXE_runbox-tools"))
        .arg0("true")
        .env("PWD", d.path().join("missing"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(125));
}

#[test]
fn grep_gnu_format_and_status() {
    let d = tree(&[("a.txt", "hello\nworld\n"), ("sub/b.md", "hello there\n")]);
    let r = run(d.path(), "grep", &["-rn", "hello"], "");
    assert_eq!(r.out, "a.txt:1:hello\nsub/b.md:1:hello there\n");
    assert_eq!(r.code, 0);
    let r = run(d.path(), "grep", &["-c", "o", "a.txt", "sub/b.md"], "");
    assert_eq!(r.out, "a.txt:2\nsub/b.md:1\n");
    let r = run(d.path(), "grep", &["zzz", "a.txt"], "");
    assert_eq!((r.out.as_str(), r.code), ("", 1));
    let r = run(d.path(), "grep", &["x", "missing"], "");
    assert_eq!(r.code, 2);
    assert_eq!(r.err, "grep: missing: No such file or directory\n");
    let r = run(d.path(), "grep", &["-q", "hello", "missing", "a.txt"], "");
    assert_eq!(r.code, 0);
    // --include selects files; a directory operand is searched whatever its name (found by the
    // differential test: `grep -r --include=*.md hello sub` printed nothing).
    let r = run(
        d.path(),
        "grep",
        &["-r", "--include=*.md", "hello", "sub"],
        "",
    );
    assert_eq!((r.out.as_str(), r.code), ("sub/b.md:hello there\n", 0));
    let r = run(d.path(), "grep", &["--include=*.md", "hello", "a.txt"], "");
    assert_eq!((r.out.as_str(), r.code), ("", 1));
    let r = run(
        d.path(),
        "grep",
        &["-r", "--exclude-dir=sub", "hello", "sub"],
        "",
    );
    assert_eq!((r.out.as_str(), r.code), ("", 1));
}

#[test]
fn grep_context_and_only_matching() {
    let d = tree(&[("t", "a\nb\nc\nd\ne\nf\ng\nb\n")]);
    let r = run(d.path(), "grep", &["-n", "-C1", "b", "t"], "");
    assert_eq!(r.out, "1-a\n2:b\n3-c\n--\n7-g\n8:b\n");
    let r = run(d.path(), "grep", &["-o", "", "t"], "");
    assert_eq!((r.out.as_str(), r.code), ("", 0));
    let r = run(d.path(), "grep", &["-e", "a", "-e", "g", "-o", "t"], "");
    assert_eq!(r.out, "a\ng\n");
}

#[test]
fn grep_basic_regex_and_binary_files() {
    let d = tree(&[("t", "a+b\naab\n"), ("bin", "abc\0def\nabc\n")]);
    assert_eq!(run(d.path(), "grep", &["a+b", "t"], "").out, "a+b\n");
    assert_eq!(run(d.path(), "grep", &["a\\+b", "t"], "").out, "aab\n");
    let r = run(d.path(), "grep", &["abc", "bin"], "");
    assert_eq!(
        (r.out.as_str(), r.err.as_str(), r.code),
        ("", "grep: bin: binary file matches\n", 0)
    );
    let r = run(d.path(), "grep", &["\\(a\\)\\1", "t"], "");
    assert_eq!(r.code, 2);
    let r = run(d.path(), "grep", &["-H", "a"], "xa\n");
    assert_eq!(r.out, "(standard input):xa\n");
}

#[test]
fn find_expressions() {
    let d = tree(&[("a/x.txt", "1"), ("a/y.rs", ""), ("b/z.txt", "22")]);
    let r = run(d.path(), "find", &[".", "-name", "*.txt"], "");
    assert_eq!(r.out, "./a/x.txt\n./b/z.txt\n");
    let r = run(d.path(), "find", &["a", "-empty"], "");
    assert_eq!(r.out, "a/y.rs\n");
    let r = run(
        d.path(),
        "find",
        &[".", "-path", "./a", "-prune", "-o", "-type", "f", "-print"],
        "",
    );
    assert_eq!(r.out, "./b/z.txt\n");
    let r = run(d.path(), "find", &["b", "-printf", "%f %s %y\\n"], "");
    assert_eq!(
        r.out,
        "b 4096 d\nz.txt 2 f\n".replace(
            "4096",
            &std::fs::metadata(d.path().join("b"))
                .expect("md")
                .len()
                .to_string()
        )
    );
    let r = run(d.path(), "find", &["a", "-exec", "rm", "{}", ";"], "");
    assert_eq!(r.code, 1);
    assert!(r.err.contains("no processes"));
    let r = run(d.path(), "find", &["a", "-perm", "644"], "");
    assert_eq!(r.code, 1);
}

#[test]
fn diff_formats_and_directories() {
    let d = tree(&[
        ("a/f", "1\n2\n3\n"),
        ("b/f", "1\nX\n3\n"),
        ("a/only", "x\n"),
        ("a/s/g", "s\n"),
        ("b/s/g", "s\n"),
    ]);
    let r = run(d.path(), "diff", &["a/f", "b/f"], "");
    assert_eq!((r.out.as_str(), r.code), ("2c2\n< 2\n---\n> X\n", 1));
    let r = run(
        d.path(),
        "diff",
        &["-u", "--label", "A", "--label", "B", "a/f", "b/f"],
        "",
    );
    assert_eq!(r.out, "--- A\n+++ B\n@@ -1,3 +1,3 @@\n 1\n-2\n+X\n 3\n");
    let r = run(d.path(), "diff", &["-r", "a", "b"], "");
    assert_eq!(
        r.out,
        "diff -r a/f b/f\n2c2\n< 2\n---\n> X\nOnly in a: only\n"
    );
    let r = run(d.path(), "diff", &["-rN", "a", "b"], "");
    assert!(
        r.out.contains("diff -rN a/only b/only\n1d0\n< x\n"),
        "{}",
        r.out
    );
    let r = run(d.path(), "diff", &["a/s/g", "b/s/g"], "");
    assert_eq!((r.out.as_str(), r.code), ("", 0));
    // GNU's ed script: last hunk first, the first file's line numbers.
    let e = tree(&[("x", "1\n2\n3\n4\n"), ("y", "1\nB\n3\n4\n5\n")]);
    let r = run(e.path(), "diff", &["-e", "x", "y"], "");
    assert_eq!((r.out.as_str(), r.code), ("4a\n5\n.\n2c\nB\n.\n", 1));
    // `-c` headers carry ctime-style times.
    let r = run(e.path(), "diff", &["-c", "x", "y"], "");
    let first = r.out.lines().next().unwrap_or_default().to_owned();
    assert!(
        first.starts_with("*** x\t") && first.len() == "*** x\tTue Jan  2 03:04:05 2024".len(),
        "{first}"
    );
    let r = run(d.path(), "diff", &["-w", "a/f", "b/f"], "");
    assert_eq!(r.code, 2);
    let r = run(d.path(), "diff", &["a/f", "nope"], "");
    assert_eq!(
        (r.err.as_str(), r.code),
        ("diff: nope: No such file or directory\n", 2)
    );
}

#[test]
fn jq_options_and_exit_codes() {
    let d = tree(&[("j.json", r#"{"a":1,"b":[1,2],"s":"x"}"#)]);
    assert_eq!(
        run(d.path(), "jq", &["-c", ".b", "j.json"], "").out,
        "[1,2]\n"
    );
    assert_eq!(run(d.path(), "jq", &["-r", ".s", "j.json"], "").out, "x\n");
    assert_eq!(
        run(d.path(), "jq", &["."], "{\"k\":[1]}").out,
        "{\n  \"k\": [\n    1\n  ]\n}\n"
    );
    assert_eq!(
        run(d.path(), "jq", &["-n", "--arg", "v", "7", "$v"], "").out,
        "\"7\"\n"
    );
    assert_eq!(run(d.path(), "jq", &["-s", "add"], "1 2 3").out, "6\n");
    assert_eq!(
        run(d.path(), "jq", &["-rn", "[1,\"a\"]|@csv"], "").out,
        "1,\"a\"\n"
    );
    assert_eq!(run(d.path(), "jq", &[".["], "{}").code, 3);
    assert_eq!(run(d.path(), "jq", &[".a[]", "j.json"], "").code, 5);
    // An error ends the outputs for that input (jq), the next input still runs.
    let r = run(
        d.path(),
        "jq",
        &["-c", ".[] | .x"],
        "[1, {\"x\": 2}]\n[{\"x\": 3}]",
    );
    assert_eq!((r.out.as_str(), r.code), ("3\n", 5));
    assert_eq!(run(d.path(), "jq", &["-e", ".z", "j.json"], "").code, 1);
    assert_eq!(
        run(d.path(), "jq", &["-n", "halt_error(200)"], "").code,
        125
    );
}

#[test]
fn stat_du_tree() {
    let d = tree(&[("d/a", "12345"), ("d/s/b", "x")]);
    let r = run(d.path(), "stat", &["-c", "%n %s %F %a %U %h %i", "d/a"], "");
    assert_eq!(r.out, "d/a 5 regular file ? ? ? ?\n");
    let r = run(d.path(), "du", &["-b", "-s", "d/a"], "");
    assert_eq!(r.out, "5\td/a\n");
    let r = run(d.path(), "tree", &["d"], "");
    assert_eq!(
        r.out,
        "d\n|-- a\n`-- s\n    `-- b\n\n2 directories, 2 files\n"
    );
    let r = run(d.path(), "tree", &["--charset=utf-8", "-F", "d/s"], "");
    assert_eq!(r.out, "d/s/\n└── b\n\n1 directory, 1 file\n");
    let r = run(d.path(), "tree", &["d/a", "nope"], "");
    assert_eq!(
        (r.out.as_str(), r.code),
        (
            "d/a  [error opening dir]\nnope  [error opening dir]\n\n0 directories, 1 file\n",
            2
        )
    );
    let r = run(d.path(), "tree", &["-p", "d"], "");
    assert_eq!(r.code, 1);
    // -l follows links but lists a directory once: a link back up is not entered (it looped).
    std::os::unix::fs::symlink("..", d.path().join("d/s/up")).expect("symlink");
    let r = run(d.path(), "tree", &["-l", "d/s"], "");
    assert_eq!(
        r.out,
        "d/s\n|-- b\n`-- up -> ..\n    |-- a\n    `-- s\n        |-- b\n        \
         `-- up -> ..  [recursive, not followed]\n\n4 directories, 3 files\n"
    );
}

#[test]
fn guarded_uutils_commands() {
    let d = tree(&[("f", "x")]);
    let r = run(d.path(), "cp", &["-p", "f", "g"], "");
    assert_eq!(r.code, 1);
    assert!(!d.path().join("g").exists());
    let r = run(d.path(), "mkdir", &["-m", "700", "m"], "");
    assert_eq!(r.code, 1);
    assert!(!d.path().join("m").exists());
    assert_eq!(run(d.path(), "test", &["-x", "f"], "").code, 2);
    assert_eq!(run(d.path(), "test", &["-f", "f"], "").code, 0);
    assert_eq!(run(d.path(), "cp", &["f", "g"], "").code, 0);
    assert_eq!(
        std::fs::read_to_string(d.path().join("g")).expect("copied"),
        "x"
    );
}

#[test]
fn ls_long_format_is_honest() {
    let d = tree(&[("f", "abc")]);
    let r = run(d.path(), "ls", &["-l", "f"], "");
    assert!(r.out.starts_with("-????????? ? ? ? 3 "), "{}", r.out);
    assert!(r.out.ends_with(" f\n"));
    let r = run(d.path(), "ls", &["-s"], "");
    assert_eq!(r.code, 2);
    assert_eq!(run(d.path(), "ls", &[], "").out, "f\n");
}

/// `ls`'s one-name-per-line path (src/ls/short.rs) prints byte for byte what uu_ls prints:
/// each command line is run as it is and with `--color=never`, an option that leaves the
/// output alone but sends the command line to uu_ls. Names that sort differently by bytes and by
/// collation, a name that is not UTF-8, a newline in a name, hidden entries, symlinks to a
/// directory and to nothing, and operands that are not directories.
#[test]
fn ls_short_listing_prints_what_uu_ls_prints() {
    use std::os::unix::ffi::OsStrExt;
    let d = tree(&[
        ("a/x", ""),
        ("a/b/y", ""),
        ("a/b/c/z", ""),
        ("a/.hidden/w", ""),
        (".dot", ""),
        ("d/Zed", ""),
        ("d/apple", ""),
        ("d/_under", ""),
        ("d/sp ace", ""),
        ("d/\u{e9}t\u{e9}", ""),
        ("d/Eclair", ""),
        ("d/e\u{301}cole", ""),
        ("e/new\nline", ""),
        ("e/-dash", ""),
    ]);
    std::fs::write(
        d.path()
            .join("e")
            .join(std::ffi::OsStr::from_bytes(b"\xe9t\xe9")),
        "",
    )
    .unwrap();
    std::fs::create_dir(d.path().join("empty")).unwrap();
    std::os::unix::fs::symlink("a", d.path().join("to-a")).unwrap();
    std::os::unix::fs::symlink("nowhere", d.path().join("dangling")).unwrap();
    let run_bytes = |locale: &str, args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_runbox-tools"))
            .arg0("ls")
            .args(args)
            .current_dir(d.path())
            .env_clear()
            .env("PWD", d.path())
            .env("LC_ALL", locale)
            .output()
            .unwrap();
        (o.stdout, o.stderr, o.status.code())
    };
    let lines: &[&[&str]] = &[
        &[],
        &["-1"],
        &["-a"],
        &["-A"],
        &["-r"],
        &["-R"],
        &["-aR"],
        &["-AR"],
        &["-rR"],
        &["-R", "."],
        &["-R", "a", "d", "e"],
        &["-R", "./a/"],
        &["-R", "to-a"],
        &["-a", "-A", "d"],
        &["-A", "-a", "d"],
        &["d", "e", "empty"],
        &["-R", "a", "nope"],
        &["-R", "dangling", "a"],
        &["-1", "d", "d/apple"],
    ];
    for locale in ["C", "C.UTF-8", "en_US.UTF-8"] {
        for args in lines {
            let fast = run_bytes(locale, args);
            let mut slow_args = vec!["--color=never"];
            slow_args.extend_from_slice(args);
            let slow = run_bytes(locale, &slow_args);
            assert_eq!(
                fast,
                slow,
                "LC_ALL={locale} ls {}:\n{}\n---\n{}",
                args.join(" "),
                String::from_utf8_lossy(&fast.0),
                String::from_utf8_lossy(&slow.0)
            );
        }
    }
}
