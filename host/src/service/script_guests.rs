//! The bound on the guest instances one `shell` script holds at once: at most
//! [`MAX_STAGES`], and a script that already holds some waits at most [`GUEST_WAIT`] for
//! another, so no script can wedge the server's shared pool. This module must not run anything;
//! it only takes and gives back permits of the pool it is handed.

use super::check::MAX_STAGES;
use crate::error::{ErrorCode, RunError};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many guest instances a script's WASI commands hold at once.
///
/// The server's pool is shared by every call, and a script's pipeline stages take their
/// instances one by one as they start, so two rules keep a script from wedging WASI for
/// everyone (found by review: a 9-stage pipeline held the pool's 8 instances, its 9th stage
/// waited for one while the 8th waited on a full pipe, and every other call's WASI commands
/// timed out): a script holds at most [`MAX_STAGES`] at once (one more is `SCRIPT_LIMIT`), and
/// one that already holds some waits at most [`GUEST_WAIT`] for another, since what it holds may
/// be what the others wait for.
#[derive(Default)]
pub(super) struct GuestUse {
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// How long a script that already holds guest instances waits for one more.
const GUEST_WAIT: Duration = Duration::from_secs(2);

/// A guest instance a script's command holds, given back when dropped.
pub(super) struct HeldGuest {
    _permit: tokio::sync::OwnedSemaphorePermit,
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for HeldGuest {
    fn drop(&mut self) {
        self.held.fetch_sub(1, Ordering::AcqRel);
    }
}

impl GuestUse {
    pub(super) async fn take(
        &self,
        pool: &std::sync::Arc<tokio::sync::Semaphore>,
        cancel: &CancellationToken,
    ) -> Result<HeldGuest, RunError> {
        let before = self.held.fetch_add(1, Ordering::AcqRel);
        let undo = || {
            self.held.fetch_sub(1, Ordering::AcqRel);
        };
        if before >= MAX_STAGES {
            undo();
            return Err(RunError::new(
                ErrorCode::ScriptLimit,
                format!("the script runs more than {MAX_STAGES} built-in commands at once (a pipeline of more stages)"),
            )
            .with_hint("split the pipeline, or write an intermediate result to a workspace file"));
        }
        let acquire = std::sync::Arc::clone(pool).acquire_owned();
        let waited = if before == 0 {
            tokio::select! {
                p = acquire => p.ok(),
                () = cancel.cancelled() => None,
            }
        } else {
            tokio::select! {
                p = tokio::time::timeout(GUEST_WAIT, acquire) => match p {
                    Ok(p) => p.ok(),
                    Err(_) => {
                        undo();
                        return Err(RunError::new(
                            ErrorCode::ScriptLimit,
                            format!("no guest instance was free for {} s while the script held {before}: the server's pool is shared with other calls", GUEST_WAIT.as_secs()),
                        )
                        .with_hint("retry, or run fewer commands at once"));
                    }
                },
                () = cancel.cancelled() => None,
            }
        };
        match waited {
            Some(permit) => Ok(HeldGuest {
                _permit: permit,
                held: std::sync::Arc::clone(&self.held),
            }),
            None => {
                undo();
                Err(RunError::new(
                    ErrorCode::Cancelled,
                    "the script was stopped while a command waited for a guest instance",
                ))
            }
        }
    }
}
