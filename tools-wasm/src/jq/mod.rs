//! `jq`: the jq language via jaq (`jaq-core`, `jaq-std`, `jaq-json`) behind jq's command line.
//!
//! [`args`] parses the command line; [`run`] compiles the filter, feeds it the inputs and
//! prints the results. Exit codes as jq: 0 ok, 1 with `-e` when the last output was false or
//! null, 2 usage or input errors, 3 compile errors, 4 with `-e` when there was no output, 5
//! runtime errors; `halt_error(N)` exits N (clamped to 125 like every code).

mod args;
mod run;

use std::ffi::OsString;

/// Entry point.
pub fn main(argv: Vec<OsString>) -> i32 {
    match args::parse(&argv[1.min(argv.len())..]) {
        Ok(a) => run::run(&a),
        Err(args::Early::Print(text)) => {
            print!("{text}");
            0
        }
        Err(args::Early::Usage(text)) => {
            eprintln!("jq: {}", text.trim_end());
            2
        }
    }
}
