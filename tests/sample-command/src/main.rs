//! `linecount FILE...`: prints the number of lines in each file, like `wc -l`, or counts stdin
//! when no file is given. A sample of a command an operator compiles to wasm32-wasip1 and drops
//! into runbox's tools directory.

use std::io::{BufRead, BufReader, Read};
use std::process::ExitCode;

fn count(reader: impl Read) -> std::io::Result<usize> {
    let mut n = 0;
    for line in BufReader::new(reader).lines() {
        line?;
        n += 1;
    }
    Ok(n)
}

fn main() -> ExitCode {
    // runbox passes the request's working directory as PWD (the workspace is the guest's /).
    if let Ok(pwd) = std::env::var("PWD")
        && let Err(e) = std::env::set_current_dir(&pwd)
    {
        eprintln!("linecount: cannot enter {pwd}: {e}");
        return ExitCode::from(2);
    }
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        return match count(std::io::stdin()) {
            Ok(n) => {
                println!("{n}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("linecount: stdin: {e}");
                ExitCode::from(1)
            }
        };
    }
    let mut status = ExitCode::SUCCESS;
    for f in &files {
        match std::fs::File::open(f).and_then(count) {
            Ok(n) => println!("{n} {f}"),
            Err(e) => {
                eprintln!("linecount: {f}: {e}");
                status = ExitCode::from(1);
            }
        }
    }
    status
}
