//! Argument guards for uutils commands that would otherwise pretend or crash: under WASI, uu_cp
//! fails late on `-p`, uu_mkdir ignores `-m`, uu_test answers "false" to `-x` or `-O`, uu_sort
//! panics on `-c`/`-m` (no threads), and uutils sed ignores `-z`. Each guard returns why the
//! command must not run, or `None`. Pure functions of the argument vector.

use std::ffi::OsString;

/// Why `cp` must not run with these arguments: `-p`, `-a`/`--archive` and `--preserve` of
/// anything but timestamps or links ask for modes and owners, which WASI cannot read or set.
pub fn cp(args: &[OsString]) -> Option<String> {
    const REFUSAL: &str = "cannot preserve mode or ownership: WASI has neither \
                           (use -r, or --preserve=timestamps)";
    for arg in args.iter().skip(1) {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (key, value) = match long.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (long, None),
            };
            if key.len() >= 2 && "archive".starts_with(key) {
                return Some(format!("--archive: {REFUSAL}"));
            }
            if key.len() >= 2 && "preserve".starts_with(key) {
                let value = value.unwrap_or("mode,ownership,timestamps");
                if value.split(',').any(|a| a != "timestamps" && a != "links") {
                    return Some(format!("--preserve={value}: {REFUSAL}"));
                }
            }
        } else if let Some(cluster) = arg.strip_prefix('-') {
            for c in cluster.chars() {
                match c {
                    'p' | 'a' => return Some(format!("-{c}: {REFUSAL}")),
                    // These take a value: the rest of the cluster is that value.
                    'S' | 't' => break,
                    _ => {}
                }
            }
        }
    }
    None
}

/// Why `mkdir` must not run: `-m`/`--mode` asks for modes WASI cannot set (uu_mkdir would
/// create the directory and ignore the mode).
pub fn mkdir(args: &[OsString]) -> Option<String> {
    const WHY: &str = "cannot set a mode: WASI has no file modes (drop -m)";
    for arg in args.iter().skip(1) {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let key = long.split_once('=').map_or(long, |(k, _)| k);
            if !key.is_empty() && "mode".starts_with(key) {
                return Some(format!("--mode: {WHY}"));
            }
        } else if arg.len() > 1 && arg.starts_with('-') && arg[1..].contains('m') {
            return Some(format!("-m: {WHY}"));
        }
    }
    None
}

/// A unary operator whose answer WASI cannot give (uu_test would say "false"): `-x` (no mode
/// bits), `-u -g -k` (no set-id or sticky bits), `-O -G` (no owners). Only tokens in operator
/// position count: followed by an operand and not part of a string comparison.
pub fn test(args: &[OsString]) -> Option<String> {
    const OPS: &[&str] = &["-x", "-u", "-g", "-k", "-O", "-G"];
    const BINARY: &[&str] = &["=", "==", "!="];
    let args: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.to_str().unwrap_or(""))
        .collect();
    let args = match args.last() {
        Some(&"]") => &args[..args.len() - 1],
        _ => &args[..],
    };
    (0..args.len().saturating_sub(1)).find_map(|i| {
        let op = args[i];
        let before = i.checked_sub(1).map(|j| args[j]);
        let operator = OPS.contains(&op)
            && !before.is_some_and(|b| BINARY.contains(&b))
            && !BINARY.contains(&args[i + 1]);
        operator.then(|| op.to_owned())
    })
}

/// Whether `key` (a long option as typed, without `--`) is `name` or an abbreviation of it at
/// least `min` characters long (clap's `infer_long_args`).
fn abbreviates(key: &str, name: &str, min: usize) -> bool {
    key.len() >= min && name.starts_with(key)
}

/// Scans the options of `args` (up to `--`) for one that `refused` names: `refused(long, short)`
/// gets each long option's name or each short option's letter. `short_values` take a value (the
/// rest of the cluster or the next argument); so do the long options in `long_values` typed
/// without `=`.
fn find_option(
    args: &[OsString],
    short_values: &str,
    long_values: &[&str],
    refused: impl Fn(Option<&str>, Option<char>) -> bool,
) -> Option<String> {
    let mut skip_next = false;
    for arg in args.iter().skip(1) {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let key = long.split_once('=').map_or(long, |(k, _)| k);
            if refused(Some(key), None) {
                return Some(format!("--{key}"));
            }
            skip_next = !long.contains('=') && long_values.iter().any(|v| abbreviates(key, v, 1));
        } else if let Some(cluster) = arg.strip_prefix('-') {
            for (i, c) in cluster.char_indices() {
                if refused(None, Some(c)) {
                    return Some(format!("-{c}"));
                }
                if short_values.contains(c) {
                    skip_next = i + c.len_utf8() == cluster.len();
                    break;
                }
            }
        }
    }
    None
}

/// Why `sort` must not run: uu_sort checks (`-c`, `-C`, `--check`) and merges (`-m`,
/// `--merge`) on a second thread, and spawning it panics under WASI.
pub fn sort(args: &[OsString]) -> Option<String> {
    const LONG_VALUES: &[&str] = &[
        "key",
        "field-separator",
        "output",
        "temporary-directory",
        "buffer-size",
        "parallel",
        "batch-size",
        "compress-program",
        "files0-from",
        "random-source",
        "sort",
    ];
    find_option(args, "ktoTS", LONG_VALUES, |long, short| {
        match (long, short) {
            (Some(key), _) => abbreviates(key, "check", 2) || abbreviates(key, "merge", 2),
            (_, Some(c)) => matches!(c, 'c' | 'C' | 'm'),
            _ => false,
        }
    })
    .map(|opt| {
        format!(
            "{opt}: not available: this sort checks and merges on a second thread, and WASI has \
             no threads (sort the input instead, or compare it with the sorted output)"
        )
    })
}

/// Why `sed` must not run: uutils sed 0.3.0 accepts `-z`/`--null-data` and ignores it (input
/// would still be split at newlines).
pub fn sed(args: &[OsString]) -> Option<String> {
    find_option(
        args,
        "efli",
        &["expression", "script-file", "length"],
        |long, short| match (long, short) {
            (Some(key), _) => abbreviates(key, "null-data", 1),
            (_, Some(c)) => c == 'z',
            _ => false,
        },
    )
    .map(|opt| format!("{opt}: NUL-separated data is not supported by this sed"))
}

#[cfg(test)]
mod tests {
    use super::{cp, mkdir};
    use std::ffi::OsString;

    fn refused(args: &[&str]) -> bool {
        let mut v = vec![OsString::from("cp")];
        v.extend(args.iter().map(OsString::from));
        cp(&v).is_some()
    }

    #[test]
    fn cp_refuses_mode_and_owner_preservation() {
        assert!(refused(&["-p", "a", "b"]));
        assert!(refused(&["-rp", "a", "b"]));
        assert!(refused(&["-a", "a", "b"]));
        assert!(refused(&["--archive", "a", "b"]));
        assert!(refused(&["--arch", "a", "b"]));
        assert!(refused(&["--preserve", "a", "b"]));
        assert!(refused(&["--preserve=mode", "a", "b"]));
        assert!(refused(&["--preserve=all", "a", "b"]));
    }

    #[test]
    fn test_refuses_mode_questions_only() {
        let t = |args: &[&str]| {
            let mut v = vec![OsString::from("test")];
            v.extend(args.iter().map(OsString::from));
            super::test(&v).is_some()
        };
        assert!(t(&["-x", "f"]));
        assert!(t(&["!", "-O", "f"]));
        assert!(t(&["-f", "a", "-a", "-x", "b"]));
        assert!(!t(&["-x"]));
        assert!(!t(&["-x", "=", "-x"]));
        assert!(!t(&["a", "!=", "-x"]));
        assert!(!t(&["-f", "f"]));
        assert!(!t(&["-r", "f"]));
    }

    #[test]
    fn mkdir_refuses_modes() {
        let m = |args: &[&str]| {
            let mut v = vec![OsString::from("mkdir")];
            v.extend(args.iter().map(OsString::from));
            mkdir(&v).is_some()
        };
        assert!(m(&["-m", "700", "d"]));
        assert!(m(&["-pm755", "d"]));
        assert!(m(&["--mode=700", "d"]));
        assert!(m(&["--mo", "700", "d"]));
        assert!(!m(&["-p", "a/b"]));
        assert!(!m(&["--", "-m"]));
    }

    fn os(name: &str, args: &[&str]) -> Vec<OsString> {
        std::iter::once(name)
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn sort_refuses_check_and_merge_only() {
        let s = |args: &[&str]| super::sort(&os("sort", args)).is_some();
        assert!(s(&["-c", "f"]));
        assert!(s(&["-nC", "f"]));
        assert!(s(&["-m", "a", "b"]));
        assert!(s(&["--check=quiet", "f"]));
        assert!(s(&["--merge", "a"]));
        assert!(s(&["--che", "f"]));
        assert!(s(&["-rk2", "-m", "f"]));
        assert!(!s(&["-n", "-r", "f"]));
        assert!(!s(&["-t", "c", "f"]));
        assert!(!s(&["-tc", "f"]));
        assert!(!s(&["-k", "1", "-o", "-m", "f"]));
        assert!(!s(&["--key", "-m", "f"]));
        assert!(!s(&["--month-sort", "f"]));
        assert!(!s(&["--", "-c"]));
    }

    #[test]
    fn sed_refuses_null_data_only() {
        let s = |args: &[&str]| super::sed(&os("sed", args)).is_some();
        assert!(s(&["-z", "p"]));
        assert!(s(&["-nz", "p"]));
        assert!(s(&["--null-data", "p"]));
        assert!(s(&["--null", "p"]));
        assert!(s(&["-e", "p", "-z"]));
        assert!(!s(&["-e", "-z"]));
        assert!(!s(&["-ez"]));
        assert!(!s(&["-i.z", "p", "f"]));
        assert!(!s(&["-n", "s/a/z/", "f"]));
        assert!(!s(&["--", "-z"]));
    }

    #[test]
    fn cp_allows_the_rest() {
        assert!(!refused(&["-r", "a", "b"]));
        assert!(!refused(&["--preserve=timestamps", "a", "b"]));
        assert!(!refused(&["--parents", "a", "b"]));
        assert!(!refused(&["-S", ".pa", "a", "b"]));
        assert!(!refused(&["-t", "pa", "a"]));
        assert!(!refused(&["--", "-p"]));
        assert!(!refused(&["--no-preserve=mode", "a", "b"]));
    }
}
