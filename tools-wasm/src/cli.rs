//! Helpers shared by the hand-written front ends (grep, find, diff, jq, stat, du, tree): clap
//! parsing with GNU exit codes, error printing, and a buffered stdout that remembers whether a
//! write failed.
//!
//! Nothing here knows about a particular command.

use std::ffi::OsString;
use std::io::{self, Write};

/// Parses `args` (with `argv[0]`) with `cmd`.
///
/// `--help` and `--version` print to stdout and give `Err(0)`; a usage error prints clap's
/// message to stderr and gives `Err(trouble)`, the command's "trouble" exit code.
pub fn parse(
    cmd: clap::Command,
    args: Vec<OsString>,
    trouble: i32,
) -> Result<clap::ArgMatches, i32> {
    let name = cmd.get_name().to_owned();
    match cmd.try_get_matches_from(args) {
        Ok(m) => Ok(m),
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = write!(io::stdout(), "{}", e.render());
                    Err(0)
                }
                _ => {
                    let text = e.render().to_string();
                    let text = text
                        .trim_end()
                        .strip_prefix("error: ")
                        .unwrap_or(text.trim_end());
                    eprintln!("{name}: {text}");
                    Err(trouble)
                }
            }
        }
    }
}

/// A clap command preset for GNU-style tools: no colours, `--help` and `--version` only as long
/// options (so `-h` and `-V` stay free), long options abbreviable.
pub fn command(name: &'static str, about: &'static str) -> clap::Command {
    clap::Command::new(name)
        .about(about)
        .version(env!("CARGO_PKG_VERSION"))
        .color(clap::ColorChoice::Never)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .infer_long_args(true)
        .arg(
            clap::Arg::new("help")
                .long("help")
                .action(clap::ArgAction::Help)
                .help("Print help"),
        )
        .arg(
            clap::Arg::new("version")
                .long("version")
                .action(clap::ArgAction::Version)
                .help("Print version"),
        )
}

/// A flag (`ArgAction::SetTrue`).
pub fn flag(id: &'static str) -> clap::Arg {
    clap::Arg::new(id).action(clap::ArgAction::SetTrue)
}

/// An option taking one value, repeatable (last wins unless read with `get_many`).
pub fn opt(id: &'static str) -> clap::Arg {
    clap::Arg::new(id)
        .action(clap::ArgAction::Append)
        .num_args(1)
        .value_parser(clap::value_parser!(OsString))
}

/// The last value of a repeatable option as a string.
pub fn last_str(m: &clap::ArgMatches, id: &str) -> Option<String> {
    m.get_many::<OsString>(id)
        .and_then(|mut v| v.next_back())
        .map(|s| s.to_string_lossy().into_owned())
}

/// Every value of a repeatable option.
pub fn all_os(m: &clap::ArgMatches, id: &str) -> Vec<OsString> {
    m.get_many::<OsString>(id)
        .map(|v| v.cloned().collect())
        .unwrap_or_default()
}

/// Stdout behind a buffer that records the first write error, so a front end can tell "could
/// not write the output" (stop, report once) from "could not read an input" (report, go on).
pub struct Out {
    inner: io::BufWriter<io::Stdout>,
    /// The first write error: its kind and its message.
    failed: Option<(io::ErrorKind, String)>,
}

impl Out {
    /// A buffered stdout.
    pub fn new() -> Self {
        Out {
            inner: io::BufWriter::with_capacity(64 * 1024, io::stdout()),
            failed: None,
        }
    }

    /// The kind of the first failed write, if any.
    pub fn failed(&self) -> Option<io::ErrorKind> {
        self.failed.as_ref().map(|(kind, _)| *kind)
    }

    fn record(&mut self, e: &io::Error) {
        self.failed.get_or_insert_with(|| (e.kind(), io_message(e)));
    }

    fn replay(&self) -> Option<io::Error> {
        self.failed
            .as_ref()
            .map(|(kind, msg)| io::Error::new(*kind, msg.clone()))
    }

    /// Flushes; reports a failure as `NAME: write error: ...` and returns false.
    pub fn finish(&mut self, name: &str) -> bool {
        if let Err(e) = self.flush() {
            self.record(&e);
        }
        match &self.failed {
            Some((_, message)) => {
                eprintln!("{name}: write error: {message}");
                false
            }
            None => true,
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(e) = self.replay() {
            return Err(e);
        }
        self.inner.write(buf).inspect_err(|e| self.record(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.replay() {
            return Err(e);
        }
        self.inner.flush().inspect_err(|e| self.record(e))
    }
}

/// Prints `NAME: MESSAGE` on stderr.
pub fn error(name: &str, message: impl std::fmt::Display) {
    eprintln!("{name}: {message}");
}

/// An `io::Error` without Rust's " (os error N)" suffix, as GNU tools print it.
pub fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// `path: message` for an I/O error, the form every GNU tool uses.
pub fn io_error(name: &str, path: &std::path::Path, e: &io::Error) {
    eprintln!("{name}: {}: {}", path.display(), io_message(e));
}

#[cfg(test)]
mod tests {
    use super::io_message;
    use std::io;

    #[test]
    fn os_error_suffix_is_dropped() {
        let e = io::Error::from_raw_os_error(2);
        assert!(!io_message(&e).contains("os error"));
        assert_eq!(io_message(&io::Error::other("plain")), "plain");
    }
}
