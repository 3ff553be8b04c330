//! MCP over stdio: the framing front ([`framing`]), the bound on unanswered calls ([`window`]),
//! the rmcp handler ([`handler`]), the process's stdin/stdout as async streams ([`stdio`]) and
//! [`serve`] (in `session`), which wires them together and stops every running command when the
//! client goes away.
//!
//! What a client line is, judged without building it: its bounds ([`scan`]) and its JSON-RPC
//! head ([`head`]).
//!
//! Without the `runtime` feature only [`framing`], [`scan`], [`head`] and [`window`] are built
//! (the fuzz targets use the framing).

pub mod framing;
#[cfg(feature = "runtime")]
pub mod handler;
pub mod head;
pub mod scan;
#[cfg(feature = "runtime")]
mod session;
#[cfg(feature = "runtime")]
pub mod stdio;
pub mod window;

#[cfg(feature = "runtime")]
pub use session::serve;
