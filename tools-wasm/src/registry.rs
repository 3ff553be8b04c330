//! The dispatch table: command name → entry point.
//!
//! `commands.toml` is the single list of commands; `build.rs` turns its names into
//! [`manifest::NAMES`]. A compile-time assertion below checks that [`TABLE`] has exactly those
//! names, so the module and the host's list cannot drift apart. The unit test next to it says
//! which name differs when they do.

use std::ffi::OsString;

/// An entry point: the full argument vector (with `argv[0]`) in, an exit code out.
pub type Run = fn(Vec<OsString>) -> i32;

/// One dispatchable command.
pub struct Entry {
    /// The name the host passes as `argv[0]`.
    pub name: &'static str,
    /// What runs.
    pub run: Run,
}

const fn e(name: &'static str, run: Run) -> Entry {
    Entry { name, run }
}

mod manifest {
    include!(concat!(env!("OUT_DIR"), "/manifest.rs"));
}

use crate::uutils as uu;

/// Every command of the module. Keep in the order of `commands.toml`.
pub const TABLE: &[Entry] = &[
    e("ls", crate::ls::main),
    e("cat", uu::cat),
    e("head", uu::head),
    e("tail", uu::tail),
    e("wc", uu::wc),
    e("sort", uu::sort),
    e("uniq", uu::uniq),
    e("cut", uu::cut),
    e("tr", uu::tr),
    e("tee", uu::tee),
    e("echo", uu::echo),
    e("printf", uu::printf),
    e("seq", uu::seq),
    e("nl", uu::nl),
    e("fold", uu::fold),
    e("fmt", uu::fmt),
    e("expand", uu::expand),
    e("unexpand", uu::unexpand),
    e("comm", uu::comm),
    e("join", uu::join),
    e("paste", uu::paste),
    e("tac", uu::tac),
    e("shuf", uu::shuf),
    e("tsort", uu::tsort),
    e("od", uu::od),
    e("numfmt", uu::numfmt),
    e("base64", uu::base64),
    e("base32", uu::base32),
    e("basenc", uu::basenc),
    e("basename", uu::basename),
    e("dirname", uu::dirname),
    e("realpath", uu::realpath),
    e("readlink", uu::readlink),
    e("pwd", uu::pwd),
    e("date", uu::date),
    e("sleep", uu::sleep),
    e("expr", uu::expr),
    e("test", uu::test),
    e("true", uu::true_),
    e("false", uu::false_),
    e("md5sum", uu::md5sum),
    e("sha1sum", uu::sha1sum),
    e("sha224sum", uu::sha224sum),
    e("sha256sum", uu::sha256sum),
    e("sha384sum", uu::sha384sum),
    e("sha512sum", uu::sha512sum),
    e("b2sum", uu::b2sum),
    e("cksum", uu::cksum),
    e("mkdir", uu::mkdir),
    e("touch", uu::touch),
    e("cp", uu::cp),
    e("mv", uu::mv),
    e("rm", uu::rm),
    e("rmdir", uu::rmdir),
    e("unlink", uu::unlink),
    e("ln", uu::ln),
    e("truncate", uu::truncate),
    e("split", uu::split),
    e("csplit", uu::csplit),
    e("mktemp", uu::mktemp),
    e("sed", uu::sed),
    e("grep", crate::grep::main),
    e("find", crate::find::main),
    e("diff", crate::diff::main),
    e("cmp", uu::cmp),
    e("jq", crate::jq::main),
    e("stat", crate::stat::main),
    e("du", crate::du::main),
    e("tree", crate::tree::main),
    e("yes", uu::yes),
    e("rev", crate::rev::main),
    e("egrep", crate::grep::egrep),
    e("fgrep", crate::grep::fgrep),
    e("gzip", crate::gzip::gzip),
    e("gunzip", crate::gzip::gunzip),
    e("zcat", crate::gzip::zcat),
    e("tar", crate::tar::main),
    e("xxd", crate::xxd::main),
    e("strings", crate::strings::main),
    e("column", crate::column::main),
    e("awk", crate::awk::main),
];

/// The entry for `name`, by exact match.
pub fn lookup(name: &str) -> Option<&'static Entry> {
    TABLE.iter().find(|entry| entry.name == name)
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// True when `table` and `names` hold the same names in the same order, each once.
const fn same_names(table: &[Entry], names: &[&str]) -> bool {
    if table.len() != names.len() {
        return false;
    }
    let mut i = 0;
    while i < table.len() {
        if !str_eq(table[i].name, names[i]) {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = assert!(
    same_names(TABLE, manifest::NAMES),
    "src/registry.rs TABLE and commands.toml list different commands (or a different order); \
     run `cargo test` natively to see which"
);

#[cfg(test)]
mod tests {
    use super::{TABLE, manifest};

    #[test]
    fn table_matches_commands_toml() {
        let table: Vec<&str> = TABLE.iter().map(|e| e.name).collect();
        for name in &table {
            assert!(
                manifest::NAMES.contains(name),
                "{name} is dispatched but not in commands.toml"
            );
        }
        for name in manifest::NAMES {
            assert!(
                table.contains(name),
                "{name} is in commands.toml but not dispatched"
            );
        }
        assert_eq!(table, manifest::NAMES, "same names, different order");
    }

    #[test]
    fn at_least_forty_commands() {
        assert!(TABLE.len() >= 40);
    }
}
