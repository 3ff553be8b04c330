//! Fair shares of the HTTP front's bounds: who a request counts against (its [`Principal`]: the
//! token's name, or every client of a server without tokens as one), the rule that splits a
//! bound between principals ([`Quota`]), and the open `/mcp` requests each principal holds
//! ([`Streams`], one [`StreamSlot`] per request until its response has been sent).
//!
//! The rule keeps one principal from starving the others: it may hold at most its share, and
//! past the common bound only principals holding almost nothing may take the reserve, so a new
//! client's `initialize` is answered however busy the heavy ones are. Nothing here blocks or
//! waits: a request over its share is refused at once. The table holds one entry per principal
//! holding something (at most the token file's 1024 names and the tokenless one).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Who a request counts against: the name of the token it presented, or `None` when the
/// server has no tokens (all its clients share one principal).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal(pub Option<Arc<str>>);

impl Principal {
    /// The token's name, if any.
    pub fn token(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// How one bound is shared between principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// What all principals together may hold before only the reserve is left.
    pub bound: usize,
    /// The most one principal may hold.
    pub per_principal: usize,
    /// Held past `bound`, and only by principals holding fewer than `light`.
    pub reserve: usize,
    /// A principal holding fewer than this may take from the reserve.
    pub light: usize,
}

/// Why a quota refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The principal holds its whole share (HTTP 429).
    PrincipalFull,
    /// The common bound and the reserve are taken (HTTP 503).
    ServerFull,
}

impl Quota {
    /// Whether a principal holding `held`, with `total` held by all, may take one more.
    pub fn admits(&self, total: usize, held: usize) -> Result<(), Refusal> {
        if held >= self.per_principal {
            return Err(Refusal::PrincipalFull);
        }
        let within_bound = total < self.bound;
        let from_reserve = held < self.light && total < self.bound.saturating_add(self.reserve);
        if within_bound || from_reserve {
            Ok(())
        } else {
            Err(Refusal::ServerFull)
        }
    }

    /// The most all principals can hold together.
    pub const fn ceiling(&self) -> usize {
        self.bound + self.reserve
    }
}

/// The `/mcp` requests open now, by principal.
#[derive(Debug)]
pub struct Streams {
    quota: Quota,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_principal: HashMap<Principal, usize>,
}

/// One open request of a principal; dropping it gives the slot back.
#[derive(Debug)]
pub struct StreamSlot {
    streams: Arc<Streams>,
    principal: Principal,
}

impl Streams {
    /// No request open yet; `quota` splits them.
    pub fn new(quota: Quota) -> Arc<Self> {
        Arc::new(Self {
            quota,
            held: Mutex::new(Held::default()),
        })
    }

    /// Takes a slot for `principal`, or says why not.
    pub fn take(self: &Arc<Self>, principal: &Principal) -> Result<StreamSlot, Refusal> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = held.by_principal.get(principal).copied().unwrap_or(0);
        self.quota.admits(held.total, mine)?;
        held.total += 1;
        held.by_principal.insert(principal.clone(), mine + 1);
        Ok(StreamSlot {
            streams: Arc::clone(self),
            principal: principal.clone(),
        })
    }

    /// How many requests are open (all principals).
    pub fn open(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }

    fn give_back(&self, principal: &Principal) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.by_principal.get_mut(principal) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.by_principal.remove(principal);
            }
        }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.streams.give_back(&self.principal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: Quota = Quota {
        bound: 8,
        per_principal: 4,
        reserve: 2,
        light: 1,
    };

    fn named(n: &str) -> Principal {
        Principal(Some(Arc::from(n)))
    }

    #[test]
    fn a_principal_gets_its_share_and_no_more() {
        let streams = Streams::new(QUOTA);
        let a = named("a");
        let slots: Vec<_> = (0..4).map(|_| streams.take(&a).unwrap()).collect();
        assert_eq!(streams.take(&a).unwrap_err(), Refusal::PrincipalFull);
        // Another principal is untouched by the first one's share.
        let b = streams.take(&named("b")).unwrap();
        drop(slots);
        assert_eq!(streams.open(), 1);
        assert!(streams.take(&a).is_ok());
        drop(b);
    }

    #[test]
    fn past_the_bound_only_a_light_principal_takes_the_reserve() {
        let streams = Streams::new(QUOTA);
        let heavy: Vec<_> = ["a", "b"]
            .iter()
            .flat_map(|n| (0..4).map(|_| streams.take(&named(n)).unwrap()))
            .collect();
        assert_eq!(streams.open(), 8);
        // `c` holds nothing: it gets one from the reserve, then is no longer light.
        let c = streams.take(&named("c")).unwrap();
        assert_eq!(streams.take(&named("c")).unwrap_err(), Refusal::ServerFull);
        let d = streams.take(&named("d")).unwrap();
        assert_eq!(streams.take(&named("e")).unwrap_err(), Refusal::ServerFull);
        assert_eq!(streams.open(), QUOTA.ceiling());
        drop((heavy, c, d));
        assert_eq!(streams.open(), 0);
        assert!(streams.held.lock().unwrap().by_principal.is_empty());
    }

    #[test]
    fn the_tokenless_principal_is_one() {
        let streams = Streams::new(QUOTA);
        let none = Principal(None);
        let _slots: Vec<_> = (0..4).map(|_| streams.take(&none).unwrap()).collect();
        assert_eq!(streams.take(&none).unwrap_err(), Refusal::PrincipalFull);
        assert!(streams.take(&named("a")).is_ok());
    }
}
