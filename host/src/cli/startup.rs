//! What `serve` and `exec` settle before anything runs: the policy with serve's own flags
//! applied, the audit mirror's descriptor taken (before runbox opens any of its own), where
//! stdout may carry the mirror, the bearer tokens for HTTP, and why a start is refused
//! ([`StartupError`]). It must not start the service nor serve anything.

use super::ServeArgs;
use crate::audit::mirror::{Mirror, MirrorError};
use crate::policy::{ConfigError, Policy};
use crate::service::StartError;
use std::sync::Arc;

/// Why `serve` or `exec` could not start.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartupError {
    #[error(transparent)]
    Policy(#[from] ConfigError),
    #[error(
        "refusing to run as root: run runbox as an unprivileged user (in a container, set USER), \
         or pass --allow-root (policy: allow_root = true) if you accept the risk"
    )]
    Root,
    #[error(transparent)]
    Service(#[from] StartError),
    #[error(transparent)]
    Tokens(#[from] crate::mcp::http::token_file::TokenFileError),
    #[error(
        "refusing to listen on {0} without bearer tokens: anyone who can reach it could run \
         commands; pass --auth-token-file FILE (policy: http.auth_token_file), or listen on \
         127.0.0.1"
    )]
    OpenListener(std::net::SocketAddr),
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error(
        "audit.mirror = \"stdout\" is refused for {mode}: stdout carries {what}; serve with \
         --listen, or mirror to a descriptor (fd:N)"
    )]
    StdoutTaken {
        mode: &'static str,
        what: &'static str,
    },
}

/// The policy with `--listen`, `--auth-token-file` and `--audit-mirror` applied and checked.
pub(super) fn serve_policy(args: &ServeArgs) -> Result<Policy, StartupError> {
    let mut policy = super::load_policy(&args.policy)?;
    if let Some(listen) = &args.listen {
        policy.http.listen = Some(crate::policy::http::parse_listen("--listen", listen)?);
    }
    if let Some(file) = &args.auth_token_file {
        policy.http.auth_token_file = Some(file.clone());
    }
    if let Some(mirror) = &args.audit_mirror {
        policy.audit.mirror = Some(crate::policy::AuditMirror::parse("--audit-mirror", mirror)?);
    }
    if policy.http.listen.is_none() {
        mirror_allowed(&policy, "serve without --listen")?;
    }
    Ok(policy)
}

/// Takes the audit mirror's descriptor. This must come before anything of runbox's own opens
/// a descriptor (the async runtime, the workspace, the cache), so that `fd:N` can only name a
/// descriptor runbox inherited, never one of its own.
pub(super) fn take_mirror(policy: &Policy) -> Result<Option<Mirror>, StartupError> {
    policy
        .audit
        .mirror
        .map(Mirror::start)
        .transpose()
        .map_err(StartupError::from)
}

/// Refuses `audit.mirror = "stdout"` where stdout is already spoken for (`mode` says by what).
pub(super) fn mirror_allowed(policy: &Policy, mode: &'static str) -> Result<(), StartupError> {
    match policy.audit.mirror {
        Some(crate::policy::AuditMirror::Stdout) => Err(StartupError::StdoutTaken {
            mode,
            what: if mode == "exec" {
                "the command's output"
            } else {
                "the MCP messages"
            },
        }),
        _ => Ok(()),
    }
}

/// The bearer tokens for serving on `addr`: read and checked when a token file is set; none is
/// allowed only on a loopback address.
pub(super) fn http_tokens(
    policy: &Policy,
    addr: std::net::SocketAddr,
) -> Result<Option<Arc<crate::mcp::http::token_file::TokenFile>>, StartupError> {
    match &policy.http.auth_token_file {
        Some(file) => Ok(Some(Arc::new(
            crate::mcp::http::token_file::TokenFile::load(file)?,
        ))),
        None if crate::policy::http::is_loopback(addr.ip()) => Ok(None),
        None => Err(StartupError::OpenListener(addr)),
    }
}
