//! Entry points for the commands that come straight from uutils crates (coreutils `uu_*`, `sed`)
//! and from the uutils diffutils library (`cmp`).
//!
//! Each wrapper initialises uucore's localisation for its name (the messages live in Fluent
//! files compiled into uucore) and calls the crate's `uumain`. Only `cp` looks at its arguments
//! first: it refuses to preserve modes or owners, which WASI cannot read or set.

use crate::exit::CANNOT_RUN;
use std::ffi::OsString;

/// Sets up uucore's messages for `name`, then runs `uumain`.
fn run(name: &str, uumain: impl FnOnce() -> i32) -> i32 {
    if let Err(e) = uucore::locale::setup_localization(name) {
        eprintln!("{name}: cannot load messages: {e}");
        return CANNOT_RUN;
    }
    uumain()
}

macro_rules! uutils {
    ($($(#[$doc:meta])* $fn_name:ident => $name:literal, $krate:ident;)*) => {$(
        $(#[$doc])*
        pub fn $fn_name(args: Vec<OsString>) -> i32 {
            run($name, || $krate::uumain(args.into_iter()))
        }
    )*};
}

uutils! {
    /// `cat`.
    cat => "cat", uu_cat;
    /// `head`.
    head => "head", uu_head;
    /// `tail` (`-f` cannot follow under WASI).
    tail => "tail", uu_tail;
    /// `wc`.
    wc => "wc", uu_wc;
    /// `sort`.
    sort => "sort", uu_sort;
    /// `uniq`.
    uniq => "uniq", uu_uniq;
    /// `cut`.
    cut => "cut", uu_cut;
    /// `tr`.
    tr => "tr", uu_tr;
    /// `tee`.
    tee => "tee", uu_tee;
    /// `echo`.
    echo => "echo", uu_echo;
    /// `printf`.
    printf => "printf", uu_printf;
    /// `seq`.
    seq => "seq", uu_seq;
    /// `nl`.
    nl => "nl", uu_nl;
    /// `fold`.
    fold => "fold", uu_fold;
    /// `fmt`.
    fmt => "fmt", uu_fmt;
    /// `expand`.
    expand => "expand", uu_expand;
    /// `unexpand`.
    unexpand => "unexpand", uu_unexpand;
    /// `comm`.
    comm => "comm", uu_comm;
    /// `join`.
    join => "join", uu_join;
    /// `paste`.
    paste => "paste", uu_paste;
    /// `tac`.
    tac => "tac", uu_tac;
    /// `shuf`.
    shuf => "shuf", uu_shuf;
    /// `tsort`.
    tsort => "tsort", uu_tsort;
    /// `od`.
    od => "od", uu_od;
    /// `numfmt`.
    numfmt => "numfmt", uu_numfmt;
    /// `base64`.
    base64 => "base64", uu_base64;
    /// `base32`.
    base32 => "base32", uu_base32;
    /// `basenc`.
    basenc => "basenc", uu_basenc;
    /// `basename`.
    basename => "basename", uu_basename;
    /// `dirname`.
    dirname => "dirname", uu_dirname;
    /// `realpath` (paths as the guest sees them, under `/`).
    realpath => "realpath", uu_realpath;
    /// `readlink`.
    readlink => "readlink", uu_readlink;
    /// `pwd` (the guest's view: the workspace is `/`).
    pwd => "pwd", uu_pwd;
    /// `date`.
    date => "date", uu_date;
    /// `sleep`.
    sleep => "sleep", uu_sleep;
    /// `expr`.
    expr => "expr", uu_expr;
    /// `test`.
    test => "test", uu_test;
    /// `true`.
    true_ => "true", uu_true;
    /// `false`.
    false_ => "false", uu_false;
    /// `md5sum`.
    md5sum => "md5sum", uu_md5sum;
    /// `sha1sum`.
    sha1sum => "sha1sum", uu_sha1sum;
    /// `sha224sum`.
    sha224sum => "sha224sum", uu_sha224sum;
    /// `sha256sum`.
    sha256sum => "sha256sum", uu_sha256sum;
    /// `sha384sum`.
    sha384sum => "sha384sum", uu_sha384sum;
    /// `sha512sum`.
    sha512sum => "sha512sum", uu_sha512sum;
    /// `b2sum`.
    b2sum => "b2sum", uu_b2sum;
    /// `cksum`.
    cksum => "cksum", uu_cksum;
    /// `mkdir`.
    mkdir => "mkdir", uu_mkdir;
    /// `touch`.
    touch => "touch", uu_touch;
    /// `mv`.
    mv => "mv", uu_mv;
    /// `rm`.
    rm => "rm", uu_rm;
    /// `rmdir`.
    rmdir => "rmdir", uu_rmdir;
    /// `unlink`.
    unlink => "unlink", uu_unlink;
    /// `ln`.
    ln => "ln", uu_ln;
    /// `truncate`.
    truncate => "truncate", uu_truncate;
    /// `split`.
    split => "split", uu_split;
    /// `csplit`.
    csplit => "csplit", uu_csplit;
    /// `mktemp`.
    mktemp => "mktemp", uu_mktemp;
}

/// `sed` from the uutils sed crate.
pub fn sed(args: Vec<OsString>) -> i32 {
    run("sed", || ::sed::sed::uumain(args.into_iter()))
}

/// `cp`, refusing to preserve attributes WASI does not have (see [`cp_refusal`]).
pub fn cp(args: Vec<OsString>) -> i32 {
    if let Some(why) = cp_refusal(&args) {
        eprintln!("cp: {why}");
        return 1;
    }
    run("cp", || uu_cp::uumain(args.into_iter()))
}

/// Why `cp` must not run with these arguments: `-p`, `-a`/`--archive` and `--preserve` of
/// anything but timestamps or links ask for modes and owners, which WASI cannot read or set.
fn cp_refusal(args: &[OsString]) -> Option<String> {
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

/// `cmp` from the uutils diffutils library (exit 0 same, 1 different, 2 trouble).
pub fn cmp(args: Vec<OsString>) -> i32 {
    use diffutilslib::cmp::{Cmp, cmp, parse_params};
    let params = match parse_params(args.into_iter().peekable()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    match cmp(&params) {
        Ok(Cmp::Equal) => 0,
        Ok(Cmp::Different) => 1,
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cp_refusal;
    use std::ffi::OsString;

    fn refused(args: &[&str]) -> bool {
        let mut v = vec![OsString::from("cp")];
        v.extend(args.iter().map(OsString::from));
        cp_refusal(&v).is_some()
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
