//! The `runbox` binary: parse the command line, set up logging to stderr, hand over to
//! [`runbox::cli`]. stdout belongs to the MCP channel and is never written here.

use std::process::ExitCode;

fn main() -> ExitCode {
    runbox::cli::main()
}
