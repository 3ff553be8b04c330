//! MCP over stdio: the bounds on a client line ([`scan`]), line framing and the stdout writer
//! ([`framing`]), what a line is ([`head`]), the requests in flight ([`window`]), the gate that
//! refuses, holds or passes each line (`inbound`) and audits what it refuses
//! (`protocol_audit`), the rmcp transport ([`transport`]), the rmcp handler ([`handler`]), the
//! process's stdin/stdout as async streams ([`stdio`]) and [`serve`] (in `session`), which wires
//! them together and stops every running command when the client goes away. [`http`] serves
//! the same handler over streamable HTTP instead (`serve --listen`).
//!
//! Without the `runtime` feature only [`scan`], [`head`] and [`framing`] are built (the fuzz
//! targets use them).

pub mod framing;
#[cfg(feature = "runtime")]
pub mod handler;
pub mod head;
#[cfg(feature = "runtime")]
pub mod http;
#[cfg(feature = "runtime")]
mod inbound;
#[cfg(feature = "runtime")]
mod protocol_audit;
pub mod scan;
#[cfg(feature = "runtime")]
mod session;
#[cfg(feature = "runtime")]
pub mod stdio;
#[cfg(feature = "runtime")]
pub mod transport;
#[cfg(feature = "runtime")]
pub mod window;

#[cfg(feature = "runtime")]
pub use session::serve;
