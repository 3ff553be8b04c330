//! `grep`: a GNU grep front end over ripgrep's library crates.
//!
//! [`args`] turns the command line into a [`args::Config`], [`matcher`] builds one
//! `grep_regex::RegexMatcher` from the patterns (translating POSIX syntax with
//! [`crate::pattern::regex`]), and [`search`] walks the operands and prints in GNU's format ([`only`] prints `-o`).
//!
//! [`egrep`] and [`fgrep`] are GNU's wrapper scripts (`exec grep -E "$@"`, `exec grep -F "$@"`):
//! messages name `grep`, as theirs do.
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

/// `egrep`: `grep -E` with the same operands, as GNU's wrapper script.
pub fn egrep(args: Vec<OsString>) -> i32 {
    main(wrapper_args("-E", args))
}

/// `fgrep`: `grep -F` with the same operands, as GNU's wrapper script.
pub fn fgrep(args: Vec<OsString>) -> i32 {
    main(wrapper_args("-F", args))
}

/// `grep FLAG ARGS...` from `WRAPPER ARGS...`: the wrapper's own name is replaced by `grep`.
fn wrapper_args(flag: &str, args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len() + 1);
    out.push(OsString::from("grep"));
    out.push(OsString::from(flag));
    out.extend(args.into_iter().skip(1));
    out
}

#[cfg(test)]
mod wrapper_tests {
    use super::wrapper_args;
    use std::ffi::OsString;

    #[test]
    fn wrapper_becomes_grep_with_its_flag_first() {
        let args = ["egrep", "-i", "a|b", "f"].map(OsString::from).to_vec();
        let got = wrapper_args("-E", args);
        assert_eq!(
            got,
            ["grep", "-E", "-i", "a|b", "f"]
                .map(OsString::from)
                .to_vec()
        );
    }
}
