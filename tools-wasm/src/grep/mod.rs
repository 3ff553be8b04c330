//! `grep`: a GNU grep front end over ripgrep's library crates.
//!
//! [`args`] turns the command line into a [`args::Config`], [`matcher`] builds one
//! `grep_regex::RegexMatcher` from the patterns (translating POSIX syntax with
//! [`crate::pattern::regex`]), and [`search`] walks the operands and prints in GNU's format ([`only`] prints `-o`).
//!
//! Exit status as GNU: 0 when a line is selected, 1 when none is, 2 on trouble (even with
//! matches, except under `-q`).

mod args;
mod matcher;
mod only;
mod search;

use std::ffi::OsString;

/// Entry point.
pub fn main(args: Vec<OsString>) -> i32 {
    let config = match args::parse(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let matcher = match matcher::build(&config) {
        Ok(m) => m,
        Err(e) => {
            crate::cli::error("grep", e);
            return 2;
        }
    };
    search::run(&config, &matcher)
}
