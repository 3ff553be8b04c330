//! Argument guards for uutils commands that would otherwise pretend: under WASI, uu_cp fails
//! late on `-p`, uu_mkdir ignores `-m`, and uu_test answers "false" to `-x` or `-O`. Each guard
//! returns why the command must not run, or `None`. Pure functions of the argument vector.

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
