//! Entry points for the commands that come straight from uutils crates (coreutils `uu_*`, `sed`)
//! and from the uutils diffutils library (`cmp`).
//!
//! Each wrapper initialises uucore's localisation for its name (the messages live in Fluent
//! files compiled into uucore) and calls the crate's `uumain`. `cp`, `mkdir`, `test`, `sort` and
//! `sed` first pass their arguments through [`guards`], which refuses what WASI cannot do (or
//! the crate does not do) instead of letting the crate silently pretend or crash.

use crate::exit::CANNOT_RUN;
use crate::guards;
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
    /// `yes` (ends when the reader of its output goes away: the host stops a guest writing to
    /// a broken pipe, as SIGPIPE stops GNU's).
    yes => "yes", uu_yes;
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

/// `test`, refusing the unary tests that need modes or owners (see [`guards::test`]).
pub fn test(args: Vec<OsString>) -> i32 {
    if let Some(op) = guards::test(&args) {
        eprintln!("test: {op}: file modes and owners are not available under WASI");
        return 2;
    }
    run("test", || uu_test::uumain(args.into_iter()))
}

/// `mkdir`, refusing `-m`/`--mode` (uu_mkdir ignores it under WASI; see [`guards::mkdir`]).
pub fn mkdir(args: Vec<OsString>) -> i32 {
    if let Some(why) = guards::mkdir(&args) {
        eprintln!("mkdir: {why}");
        return 1;
    }
    run("mkdir", || uu_mkdir::uumain(args.into_iter()))
}

/// `sed` from the uutils sed crate, refusing `-z` (it ignores it; see [`guards::sed`]).
pub fn sed(args: Vec<OsString>) -> i32 {
    if let Some(why) = guards::sed(&args) {
        eprintln!("sed: {why}");
        return 1;
    }
    run("sed", || ::sed::sed::uumain(args.into_iter()))
}

/// `sort`, refusing `-c`/`-m` (uu_sort runs them on a thread; see [`guards::sort`]).
pub fn sort(args: Vec<OsString>) -> i32 {
    if let Some(why) = guards::sort(&args) {
        eprintln!("sort: {why}");
        return 2;
    }
    run("sort", || uu_sort::uumain(args.into_iter()))
}

/// `cp`, refusing to preserve attributes WASI does not have (see [`guards::cp`]).
pub fn cp(args: Vec<OsString>) -> i32 {
    if let Some(why) = guards::cp(&args) {
        eprintln!("cp: {why}");
        return 1;
    }
    run("cp", || uu_cp::uumain(args.into_iter()))
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
