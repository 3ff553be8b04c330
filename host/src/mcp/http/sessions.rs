//! Which principal opened each MCP session, and the share of open sessions each may hold: a
//! session answers only its principal (another token's session looks like no session at all),
//! and a new one is admitted under the [`SESSIONS`](super::SESSIONS) quota.
//!
//! Sessions are admitted one at a time ([`Owners::admit`] holds a lock until the new session is
//! recorded or abandoned), so concurrent `initialize`s cannot pass a bound together and no
//! session is ever open without its owner on record. The table is pruned of closed sessions at
//! each admission, so it holds at most the open sessions and the one being opened.

use super::shares::{Principal, Quota, Refusal};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

/// The owners of the open sessions.
pub struct Owners {
    sessions: Arc<LocalSessionManager>,
    quota: Quota,
    owners: Mutex<HashMap<String, Principal>>,
    opening: tokio::sync::Mutex<()>,
}

/// The right to open one session for a principal, held while rmcp creates it.
pub struct Opening<'a> {
    owners: &'a Owners,
    principal: Principal,
    _one_at_a_time: tokio::sync::MutexGuard<'a, ()>,
}

impl Owners {
    /// Owners of the sessions of `sessions`, sharing them by `quota`.
    pub fn new(sessions: Arc<LocalSessionManager>, quota: Quota) -> Self {
        Self {
            sessions,
            quota,
            owners: Mutex::new(HashMap::new()),
            opening: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether session `id` was opened by `principal` (an unknown id is nobody's).
    pub fn owned_by(&self, id: &[u8], principal: &Principal) -> bool {
        let owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        owners.get(String::from_utf8_lossy(id).as_ref()) == Some(principal)
    }

    /// Admits one more session for `principal`, or says why not; the session must be created
    /// (and [`Opening::opened`] called) while the returned value is held.
    pub async fn admit(&self, principal: &Principal) -> Result<Opening<'_>, Refusal> {
        let lock = self.opening.lock().await;
        let open: HashSet<String> = {
            let sessions = self.sessions.sessions.read().await;
            sessions.keys().map(|k| k.to_string()).collect()
        };
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        owners.retain(|id, _| open.contains(id));
        let mine = owners.values().filter(|p| *p == principal).count();
        self.quota.admits(open.len(), mine)?;
        Ok(Opening {
            owners: self,
            principal: principal.clone(),
            _one_at_a_time: lock,
        })
    }

    /// Sessions open now (created and not yet closed or expired).
    pub async fn open(&self) -> usize {
        self.sessions.sessions.read().await.len()
    }
}

impl Opening<'_> {
    /// Records that the session `id` was opened.
    pub fn opened(self, id: String) {
        let mut owners = self
            .owners
            .owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        owners.insert(id, self.principal);
    }
}
