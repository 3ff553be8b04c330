//! MCP over stdio: the framing front ([`framing`]), the rmcp handler ([`handler`]), the process's
//! stdin/stdout as async streams ([`stdio`]) and [`serve`] (in `session`), which wires them
//! together and stops every running command when the client goes away.
//!
//! Without the `runtime` feature only [`framing`] is built (the fuzz targets use it).

pub mod framing;
#[cfg(feature = "runtime")]
pub mod handler;
#[cfg(feature = "runtime")]
mod session;
#[cfg(feature = "runtime")]
pub mod stdio;

#[cfg(feature = "runtime")]
pub use session::serve;
