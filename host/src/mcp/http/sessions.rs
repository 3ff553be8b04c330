//! Which principal opened each MCP session, and the share of open sessions each may hold: a
//! session answers only its owner — the principal, and the token value it presented (another
//! token's session, or a new value under the same name, finds no session at all) — and a new
//! one is admitted under the [`SESSIONS`](super::SESSIONS) quota. When the tokens change, the
//! sessions of the values no longer among them are closed ([`Owners::revoke`]), which ends
//! their event streams and cancels their running calls.
//!
//! Sessions are admitted one at a time ([`Owners::admit`] holds a lock until the new session is
//! recorded or abandoned), so concurrent `initialize`s cannot pass a bound together. A session
//! rmcp opened for an `initialize` whose client went away before the answer has no owner: it
//! serves no one and is closed at the next admission, so it cannot hold a place in the bound.
//! The table is pruned of closed sessions at each admission, so it holds at most the open
//! sessions and the one being opened.

use super::auth::{TokenDigest, Tokens};
use super::shares::{Principal, Quota, Refusal};
use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Who opened a session: the principal its share counts against, and the digest of the token
/// value it presented (`None` on a server without tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The principal (the token's name).
    pub principal: Principal,
    /// The token value's digest.
    pub digest: Option<TokenDigest>,
}

/// The owners of the open sessions.
pub struct Owners {
    sessions: Arc<LocalSessionManager>,
    quota: Quota,
    owners: Mutex<HashMap<String, Owner>>,
    opening: tokio::sync::Mutex<()>,
}

/// The right to open one session for an owner, held while rmcp creates it.
pub struct Opening<'a> {
    owners: &'a Owners,
    owner: Owner,
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

    /// Whether session `id` was opened by `owner` (an unknown id is nobody's).
    pub fn owned_by(&self, id: &[u8], owner: &Owner) -> bool {
        let owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        owners.get(String::from_utf8_lossy(id).as_ref()) == Some(owner)
    }

    /// Closes every session whose token value is not among `tokens`; returns how many.
    pub async fn revoke(&self, tokens: &Tokens) -> usize {
        let gone: Vec<String> = {
            let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
            let gone: Vec<String> = owners
                .iter()
                .filter(|(_, o)| o.digest.is_some_and(|d| !tokens.holds(&d)))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &gone {
                owners.remove(id);
            }
            gone
        };
        for id in &gone {
            if let Err(e) = self.sessions.close_session(&Arc::from(id.as_str())).await {
                tracing::debug!("closing a session of a removed token: {e}");
            }
        }
        gone.len()
    }

    /// Admits one more session for `owner`, or says why not; the session must be created
    /// (and [`Opening::opened`] called) while the returned value is held.
    pub async fn admit(&self, owner: &Owner) -> Result<Opening<'_>, Refusal> {
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
        let mine = owners
            .values()
            .filter(|o| o.principal == owner.principal)
            .count();
        self.quota.admits(owned.len(), mine)?;
        Ok(Opening {
            owners: self,
            owner: owner.clone(),
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
        owners.insert(id, self.owner);
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

    fn owner(name: Option<&str>, value: u8) -> Owner {
        Owner {
            principal: Principal(name.map(Arc::from)),
            digest: name.map(|_| [value; 32]),
        }
    }

    #[tokio::test]
    async fn an_owned_session_counts_and_answers_only_its_owner() {
        let manager = Arc::new(LocalSessionManager::default());
        let owners = Owners::new(Arc::clone(&manager), ONE);
        let alice = owner(Some("alice"), 1);
        let opening = owners.admit(&alice).await.unwrap();
        let (id, _transport) = manager.create_session().await.unwrap();
        opening.opened(id.to_string());
        assert!(owners.owned_by(id.as_bytes(), &alice));
        assert!(!owners.owned_by(id.as_bytes(), &owner(None, 0)));
        assert!(
            !owners.owned_by(id.as_bytes(), &owner(Some("alice"), 2)),
            "a new value under the same name"
        );
        assert!(!owners.owned_by(b"unknown", &alice));
        assert!(matches!(
            owners.admit(&owner(Some("alice"), 2)).await,
            Err(Refusal::PrincipalFull)
        ));
    }

    #[tokio::test]
    async fn the_sessions_of_a_removed_token_value_are_closed() {
        let manager = Arc::new(LocalSessionManager::default());
        let two = Quota {
            bound: 4,
            per_principal: 4,
            reserve: 0,
            light: 0,
        };
        let owners = Owners::new(Arc::clone(&manager), two);
        let mut ids = Vec::new();
        for who in [owner(Some("a"), 1), owner(Some("b"), 2)] {
            let opening = owners.admit(&who).await.unwrap();
            let (id, transport) = manager.create_session().await.unwrap();
            opening.opened(id.to_string());
            ids.push((id, who, transport));
        }
        // The file now holds b's value only (under any name): a's session goes.
        let tokens = Tokens::parse("x:aaaaaaaaaaaaaaaa1").unwrap();
        let b_digest = crate::wasi::cache::sha256(b"aaaaaaaaaaaaaaaa1");
        let (b_id, _, _) = &ids[1];
        owners
            .owners
            .lock()
            .unwrap()
            .get_mut(b_id.as_ref())
            .unwrap()
            .digest = Some(b_digest);
        assert_eq!(owners.revoke(&tokens).await, 1);
        assert_eq!(owners.open().await, 1);
        assert!(!owners.owned_by(ids[0].0.as_bytes(), &ids[0].1));
        assert!(manager.sessions.read().await.contains_key(b_id));
        assert_eq!(owners.revoke(&tokens).await, 0, "nothing more to close");
    }

    #[tokio::test]
    async fn a_session_without_an_owner_is_closed_and_not_counted() {
        let manager = Arc::new(LocalSessionManager::default());
        // Opened as for an `initialize` whose client went away before `opened`.
        let (_id, _transport) = manager.create_session().await.unwrap();
        let owners = Owners::new(Arc::clone(&manager), ONE);
        assert!(
            owners.admit(&owner(None, 0)).await.is_ok(),
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
