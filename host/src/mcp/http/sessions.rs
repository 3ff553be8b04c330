//! Which principal opened each MCP session, and the share of open sessions each may hold: a
//! session answers only its principal (another token's session looks like no session at all),
//! and a new one is admitted under the [`SESSIONS`](super::SESSIONS) quota.
//!
//! Sessions are admitted one at a time ([`Owners::admit`] holds a lock until the new session is
//! recorded or abandoned), so concurrent `initialize`s cannot pass a bound together. A session
//! rmcp opened for an `initialize` whose client went away before the answer has no owner: it
//! serves no one and is closed at the next admission, so it cannot hold a place in the bound.
//! The table is pruned of closed sessions at each admission, so it holds at most the open
//! sessions and the one being opened.

use super::shares::{Principal, Quota, Refusal};
use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use std::collections::HashMap;
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
        let open: Vec<Arc<str>> = {
            let sessions = self.sessions.sessions.read().await;
            sessions.keys().cloned().collect()
        };
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        let (owned, orphans): (Vec<_>, Vec<_>) = open
            .into_iter()
            .partition(|id| owners.contains_key(id.as_ref()));
        for id in orphans {
            tracing::debug!("closing a session opened for a client that went away");
            let sessions = Arc::clone(&self.sessions);
            tokio::spawn(async move { sessions.close_session(&id).await });
        }
        owners.retain(|id, _| owned.iter().any(|o| o.as_ref() == id.as_str()));
        let mine = owners.values().filter(|p| *p == principal).count();
        self.quota.admits(owned.len(), mine)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: Quota = Quota {
        bound: 1,
        per_principal: 1,
        reserve: 0,
        light: 0,
    };

    #[tokio::test]
    async fn an_owned_session_counts_and_answers_only_its_principal() {
        let manager = Arc::new(LocalSessionManager::default());
        let owners = Owners::new(Arc::clone(&manager), ONE);
        let alice = Principal(Some(Arc::from("alice")));
        let opening = owners.admit(&alice).await.unwrap();
        let (id, _transport) = manager.create_session().await.unwrap();
        opening.opened(id.to_string());
        assert!(owners.owned_by(id.as_bytes(), &alice));
        assert!(!owners.owned_by(id.as_bytes(), &Principal(None)));
        assert!(!owners.owned_by(b"unknown", &alice));
        assert!(matches!(
            owners.admit(&alice).await,
            Err(Refusal::PrincipalFull)
        ));
    }

    #[tokio::test]
    async fn a_session_without_an_owner_is_closed_and_not_counted() {
        let manager = Arc::new(LocalSessionManager::default());
        // Opened as for an `initialize` whose client went away before `opened`.
        let (_id, _transport) = manager.create_session().await.unwrap();
        let owners = Owners::new(Arc::clone(&manager), ONE);
        assert!(
            owners.admit(&Principal(None)).await.is_ok(),
            "the orphan took the place"
        );
        for _ in 0..1000 {
            if owners.open().await == 0 {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the orphan session was not closed");
    }
}
