//! The server's stdin and stdout as async streams for the MCP channel.
//!
//! tokio's `stdin()` and `stdout()` perform every read and write on a blocking-pool thread: a
//! thread hand-off per message in each direction (about 60 µs of a ~600 µs `echo` round trip
//! was the stdout write alone, measured with per-stage timestamps). MCP clients start servers
//! with pipes, and a pipe can be registered with tokio's reactor in non-blocking mode instead.
//! So when stdin or stdout is a pipe it is used that way; anything else (a file, a terminal)
//! keeps tokio's thread-backed handle. stdout also keeps it when it is the same pipe as stderr
//! (`2>&1`): non-blocking mode is a property of the shared pipe, and the log writer on stderr
//! expects blocking writes.

use std::os::fd::{AsFd, BorrowedFd};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

/// The channel's input.
pub type Input = Box<dyn AsyncRead + Unpin + Send>;
/// The channel's output.
pub type Output = Box<dyn AsyncWrite + Unpin + Send>;

/// stdin, reactor-driven when it is a pipe. Must be called inside the tokio runtime.
pub fn input() -> Input {
    let stdin = std::io::stdin();
    match dup(stdin.as_fd()).and_then(pipe::Receiver::from_file) {
        Ok(rx) => Box::new(rx),
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

/// stdout, reactor-driven when it is a pipe not shared with stderr. Must be called inside the
/// tokio runtime.
pub fn output() -> Output {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    if same_file(stdout.as_fd(), stderr.as_fd()) {
        return Box::new(tokio::io::stdout());
    }
    match dup(stdout.as_fd()).and_then(pipe::Sender::from_file) {
        Ok(tx) => Box::new(tx),
        Err(_) => Box::new(tokio::io::stdout()),
    }
}

fn dup(fd: BorrowedFd<'_>) -> std::io::Result<std::fs::File> {
    Ok(std::fs::File::from(fd.try_clone_to_owned()?))
}

/// Whether two descriptors name the same file (device and inode); an error counts as the same,
/// which keeps the conservative choice.
fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    match (nix::sys::stat::fstat(a), nix::sys::stat::fstat(b)) {
        (Ok(x), Ok(y)) => x.st_dev == y.st_dev && x.st_ino == y.st_ino,
        _ => true,
    }
}
