//! Which principal opened each MCP session, and the share of open sessions each may hold: a
//! session answers only its owner — the principal, and the token value it presented (another
//! token's session, or a new value under the same name, finds no session at all) — and a new
//! one is admitted under the [`SESSIONS`](super::SESSIONS) quota. When the tokens change, the
//! sessions of the values no longer among them are closed ([`Owners::revoke`]), which ends
//! their event streams; their running calls are stopped at once by the session's [`CallStop`]
//! (rmcp alone lets a closed session's call run on for seconds), which a `DELETE` fires too
//! ([`Owners::closed`]).
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
use tokio_util::sync::CancellationToken;

/// Fires when the calls of a request must stop: its session was closed (`DELETE`, or its token
/// value removed), or its token value was removed. Put in the request's extensions; the handler
/// stops a running call when it fires.
#[derive(Debug, Clone)]
pub struct CallStop(pub CancellationToken);

/// The stops of the token values in use, one per value, fired when a reload removes the value:
/// the calls of its sessions and its sessionless calls stop with it. At most one entry per
/// token in force.
#[derive(Debug, Default)]
pub struct HolderStops {
    stops: Mutex<HashMap<TokenDigest, CancellationToken>>,
}

impl HolderStops {
    /// The stop of the value `digest`, when the tokens in force (`current`, read under the
    /// lock, so a reload either comes before and this is `None`, or after and fires it) still
    /// hold it.
    pub fn of(
        &self,
        digest: &TokenDigest,
        current: impl FnOnce() -> Arc<Tokens>,
    ) -> Option<CancellationToken> {
        let mut stops = self.stops.lock().unwrap_or_else(PoisonError::into_inner);
        if !current().holds(digest) {
            return None;
        }
        Some(stops.entry(*digest).or_default().clone())
    }

    /// Fires and forgets the stops of the values `tokens` no longer hold.
    pub fn revoke(&self, tokens: &Tokens) {
        let mut stops = self.stops.lock().unwrap_or_else(PoisonError::into_inner);
        stops.retain(|digest, stop| {
            let kept = tokens.holds(digest);
            if !kept {
                stop.cancel();
            }
            kept
        });
    }
}

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
    owners: Mutex<HashMap<String, (Owner, CancellationToken)>>,
    opening: tokio::sync::Mutex<()>,
}

/// The right to open one session for an owner, held while rmcp creates it.
pub struct Opening<'a> {
    owners: &'a Owners,
    owner: Owner,
    stop: CancellationToken,
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

    /// The stop of session `id` when it was opened by `owner`; `None` for another owner's
    /// session or an unknown id (nobody's).
    pub fn owned_by(&self, id: &[u8], owner: &Owner) -> Option<CallStop> {
        let owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        match owners.get(String::from_utf8_lossy(id).as_ref()) {
            Some((o, stop)) if o == owner => Some(CallStop(stop.clone())),
            _ => None,
        }
    }

    /// Session `id` was closed by its client (`DELETE`): its running calls stop.
    pub fn closed(&self, id: &[u8]) {
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, stop)) = owners.remove(String::from_utf8_lossy(id).as_ref()) {
            stop.cancel();
        }
    }

    /// Closes every session whose token value is not among `tokens`; returns how many.
    pub async fn revoke(&self, tokens: &Tokens) -> usize {
        let gone: Vec<String> = {
            let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
            let gone: Vec<String> = owners
                .iter()
                .filter(|(_, (o, _))| o.digest.is_some_and(|d| !tokens.holds(&d)))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &gone {
                if let Some((_, stop)) = owners.remove(id) {
                    stop.cancel();
                }
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
    /// (and [`Opening::opened`] called) while the returned value is held. The session's calls
    /// stop when it closes or when `holder` fires (its token value removed).
    pub async fn admit(
        &self,
        owner: &Owner,
        holder: Option<&CancellationToken>,
    ) -> Result<Opening<'_>, Refusal> {
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
            .filter(|(o, _)| o.principal == owner.principal)
            .count();
        self.quota.admits(owned.len(), mine)?;
        Ok(Opening {
            owners: self,
            owner: owner.clone(),
            stop: holder.map_or_else(CancellationToken::new, CancellationToken::child_token),
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
        owners.insert(id, (self.owner, self.stop));
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
        let holder = CancellationToken::new();
        let opening = owners.admit(&alice, Some(&holder)).await.unwrap();
        let (id, _transport) = manager.create_session().await.unwrap();
        opening.opened(id.to_string());
        let stop = owners.owned_by(id.as_bytes(), &alice).expect("alice's");
        assert!(owners.owned_by(id.as_bytes(), &owner(None, 0)).is_none());
        assert!(
            owners
                .owned_by(id.as_bytes(), &owner(Some("alice"), 2))
                .is_none(),
            "a new value under the same name"
        );
        assert!(owners.owned_by(b"unknown", &alice).is_none());
        assert!(matches!(
            owners.admit(&owner(Some("alice"), 2), None).await,
            Err(Refusal::PrincipalFull)
        ));
        // The holder's value removed: the session's calls stop.
        assert!(!stop.0.is_cancelled());
        holder.cancel();
        assert!(stop.0.is_cancelled());
        // DELETE: the session is forgotten, its calls stop.
        let opening = owners.admit(&owner(None, 0), None).await;
        assert!(opening.is_err(), "the bound of one is taken");
        owners.closed(id.as_bytes());
        assert!(owners.owned_by(id.as_bytes(), &alice).is_none());
    }

    #[test]
    fn a_removed_values_stop_fires_and_a_value_no_longer_held_gets_none() {
        let stops = HolderStops::default();
        let old = Arc::new(Tokens::parse("a:aaaaaaaaaaaaaaaa1\nb:bbbbbbbbbbbbbbbb2").unwrap());
        let a = crate::wasi::cache::sha256(b"aaaaaaaaaaaaaaaa1");
        let b = crate::wasi::cache::sha256(b"bbbbbbbbbbbbbbbb2");
        let a_stop = stops.of(&a, || Arc::clone(&old)).unwrap();
        let b_stop = stops.of(&b, || Arc::clone(&old)).unwrap();
        let new = Arc::new(Tokens::parse("b:bbbbbbbbbbbbbbbb2").unwrap());
        stops.revoke(&new);
        assert!(a_stop.is_cancelled());
        assert!(!b_stop.is_cancelled());
        assert!(stops.of(&a, || Arc::clone(&new)).is_none(), "a is gone");
        assert!(!stops.of(&b, || Arc::clone(&new)).unwrap().is_cancelled());
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
            let opening = owners.admit(&who, None).await.unwrap();
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
            .0
            .digest = Some(b_digest);
        let a_stop = owners.owned_by(ids[0].0.as_bytes(), &ids[0].1).unwrap();
        assert_eq!(owners.revoke(&tokens).await, 1);
        assert!(a_stop.0.is_cancelled(), "a's running calls stop");
        assert_eq!(owners.open().await, 1);
        assert!(owners.owned_by(ids[0].0.as_bytes(), &ids[0].1).is_none());
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
            owners.admit(&owner(None, 0), None).await.is_ok(),
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
