//! Reloading the bearer token file on SIGHUP (`serve --listen` with `--auth-token-file`): the
//! file is read and checked again ([`TokenFile::reload`], which refuses a file leading into the
//! workspace); new tokens replace the old ones at once, and a file that cannot be used leaves
//! the old ones in force. Either way stderr says so and a `reload` record names the file,
//! whether the new contents apply, and the names (never the tokens) in force, with the reason
//! in `error` when they do not.
//!
//! The file is read on a thread of its own, never on the runtime's: whatever the file system
//! does (a FIFO is refused at once, but a hung network mount is not), requests, `/healthz` and
//! SIGTERM are served meanwhile. One reload runs at a time; SIGHUPs sent meanwhile are one
//! more reload after it.
//!
//! This must never log or record a token, and never leave the server without tokens.

use super::auth::Tokens;
use super::token_file::TokenFile;
use crate::audit::record::{AuditRecord, ErrorInfo, MAX_ARGS_RECORDED, ReloadInfo, Stage, Text};
use crate::service::Service;
use crate::workspace::Workspace;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The policy key the file comes from, as named in records.
const KEY: &str = "http.auth_token_file";

/// Watches SIGHUP from now on (so a signal sent once this returns is never the default's
/// termination) and gives the task that reloads `file` on each one until `shutdown` fires.
pub fn reload_on_sighup(
    file: Arc<TokenFile>,
    service: Arc<Service>,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let hangups = signal(SignalKind::hangup());
    async move {
        let mut hangups = match hangups {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot watch SIGHUP, the token file will not be reloaded: {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                got = hangups.recv() => if got.is_none() { return },
            }
            let (done, record) = tokio::sync::oneshot::channel();
            let (reading, of) = (Arc::clone(&file), Arc::clone(&service));
            let spawned = std::thread::Builder::new()
                .name("runbox-token-reload".to_owned())
                .spawn(move || {
                    let _ = done.send(reload_now(&reading, Some(of.workspace())));
                });
            if let Err(e) = spawned {
                tracing::error!("SIGHUP: cannot start the reload ({e}); the old tokens stay");
                continue;
            }
            let record = tokio::select! {
                () = shutdown.cancelled() => return,
                r = record => match r {
                    Ok(r) => r,
                    Err(_) => continue,
                },
            };
            let _ = service.record(record).await;
        }
    }
}

/// Reloads once (refusing a file leading into `workspace`) and describes the outcome as a
/// `reload` record (also on stderr). It blocks on the file system: call it off the runtime.
pub fn reload_now(file: &TokenFile, workspace: Option<&Workspace>) -> AuditRecord {
    let mut record = AuditRecord::new(Stage::Reload);
    let (applied, tokens) = match file.reload(workspace) {
        Ok(tokens) => {
            tracing::info!(
                tokens = tokens.len(),
                file = %file.path().display(),
                "SIGHUP: bearer tokens reloaded"
            );
            (true, tokens)
        }
        Err(e) => {
            tracing::error!("SIGHUP: the token file was not reloaded, the old tokens stay: {e}");
            record.error = Some(ErrorInfo {
                code: "INVALID_ARGUMENT".to_owned(),
                // The whole reason and fix (longer than most values, and never a token).
                message: Text::of_up_to(&e.to_string(), 1024),
            });
            (false, file.current())
        }
    };
    record.reload = Some(describe(file, applied, &tokens));
    record
}

fn describe(file: &TokenFile, applied: bool, tokens: &Tokens) -> ReloadInfo {
    ReloadInfo {
        key: KEY.to_owned(),
        path: Text::of(&file.path().display().to_string()),
        applied,
        tokens: tokens.len() as u64,
        names: tokens
            .names()
            .take(MAX_ARGS_RECORDED)
            .map(Text::of)
            .collect(),
    }
}
