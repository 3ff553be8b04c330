//! The exit policy, in one place: exit codes stay in `0..=125`, stdout is flushed before the
//! process ends, and a panic becomes a one-line message plus an exit code instead of a trap.
//!
//! wasmtime refuses exit codes of 126 and above ("invalid exit status"), so [`clamp`] maps every
//! such code (and every negative one) to 125. With `panic = "abort"` a panic would end in a wasm
//! trap; the hook installed by [`install_panic_hook`] exits cleanly before the abort happens.

use std::io::Write;

/// Exit code for "the command could not be run at all": unknown name, bad `PWD`, internal error.
pub const CANNOT_RUN: i32 = 125;

/// Exit code after a failed write to stdout (like GNU's "write error").
pub const WRITE_ERROR: i32 = 1;

/// Maps any code outside `0..=125` to 125, which wasmtime accepts.
pub fn clamp(code: i32) -> i32 {
    if (0..=CANNOT_RUN).contains(&code) {
        code
    } else {
        CANNOT_RUN
    }
}

/// Flushes stdout and stderr (errors ignored: there is nowhere left to report them) and exits.
pub fn exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(clamp(code))
}

/// Replaces the default panic hook: print `NAME: ...` once and exit, so no panic reaches the
/// abort (a trap under wasmtime). A failed write to stdout (broken pipe, EIO, the host's output
/// limit) is reported as a write error with [`WRITE_ERROR`]; anything else is an internal error
/// with [`CANNOT_RUN`].
pub fn install_panic_hook(name: String) {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let mut err = std::io::stderr().lock();
        if message.starts_with("failed printing to stdout") {
            let _ = writeln!(
                err,
                "{name}: write error{}",
                message.trim_start_matches("failed printing to stdout")
            );
            drop(err);
            exit(WRITE_ERROR);
        }
        match info.location() {
            Some(at) => {
                let _ = writeln!(
                    err,
                    "{name}: internal error: {message} (at {}:{})",
                    at.file(),
                    at.line()
                );
            }
            None => {
                let _ = writeln!(err, "{name}: internal error: {message}");
            }
        }
        drop(err);
        exit(CANNOT_RUN);
    }));
}

#[cfg(test)]
mod tests {
    use super::clamp;

    #[test]
    fn codes_above_125_become_125() {
        assert_eq!(clamp(0), 0);
        assert_eq!(clamp(1), 1);
        assert_eq!(clamp(125), 125);
        assert_eq!(clamp(126), 125);
        assert_eq!(clamp(127), 125);
        assert_eq!(clamp(255), 125);
        assert_eq!(clamp(-1), 125);
    }
}
