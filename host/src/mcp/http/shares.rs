//! Fair shares of the HTTP front's bounds: who a request counts against (its [`Principal`]: the
//! token's name, or every client of a server without tokens as one), the rule that splits a
//! bound between principals ([`Quota`]), and the open `/mcp` requests each principal holds
//! ([`Streams`], one [`StreamSlot`] per request until its response has been sent), and the bytes
//! of request bodies each holds ([`BodyBytes`], a [`BodyLease`] grown as a body arrives and
//! held with the request's slot): counts alone let 64 requests of a 30 MB body each hold
//! gigabytes.
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
    body: Option<BodyLease>,
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
            body: None,
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

impl StreamSlot {
    /// Holds the bytes of the request's body for as long as the slot.
    pub fn hold_body(&mut self, lease: BodyLease) {
        self.body = Some(lease);
    }
}

/// The bytes of request bodies held: at most `each` by one principal (past it: 429) and `total`
/// by all (past it: 503).
#[derive(Debug)]
pub struct BodyBytes {
    /// The most one principal may hold.
    pub each: usize,
    /// The most all principals together may hold.
    pub total: usize,
    held: Mutex<Held>,
}

/// The bytes of one request's body, given back when dropped.
#[derive(Debug)]
pub struct BodyLease {
    budget: Arc<BodyBytes>,
    principal: Principal,
    bytes: usize,
}

impl BodyBytes {
    /// A budget of `each` bytes per principal and `total` in all.
    pub fn new(each: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            each,
            total,
            held: Mutex::new(Held::default()),
        })
    }

    /// An empty lease for a body of `principal`'s.
    pub fn lease(self: &Arc<Self>, principal: &Principal) -> BodyLease {
        BodyLease {
            budget: Arc::clone(self),
            principal: principal.clone(),
            bytes: 0,
        }
    }

    /// Bytes held by all now.
    pub fn held(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl BodyLease {
    /// Takes `more` bytes, or says whose bound they would cross (nothing is taken then).
    pub fn grow(&mut self, more: usize) -> Result<(), Refusal> {
        let budget = &self.budget;
        let mut held = budget.held.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = held.by_principal.get(&self.principal).copied().unwrap_or(0);
        if mine.saturating_add(more) > budget.each {
            return Err(Refusal::PrincipalFull);
        }
        if held.total.saturating_add(more) > budget.total {
            return Err(Refusal::ServerFull);
        }
        held.total += more;
        held.by_principal
            .insert(self.principal.clone(), mine + more);
        self.bytes += more;
        Ok(())
    }
}

impl Drop for BodyLease {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let mut held = self
            .budget
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        held.total = held.total.saturating_sub(self.bytes);
        if let Some(n) = held.by_principal.get_mut(&self.principal) {
            *n = n.saturating_sub(self.bytes);
            if *n == 0 {
                held.by_principal.remove(&self.principal);
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

    #[test]
    fn body_bytes_are_bounded_per_principal_and_in_all_and_given_back() {
        let budget = BodyBytes::new(100, 150);
        let mut a1 = budget.lease(&named("a"));
        a1.grow(60).unwrap();
        let mut a2 = budget.lease(&named("a"));
        assert_eq!(a2.grow(41), Err(Refusal::PrincipalFull));
        a2.grow(40).unwrap();
        let mut b = budget.lease(&named("b"));
        assert_eq!(b.grow(51), Err(Refusal::ServerFull));
        b.grow(50).unwrap();
        assert_eq!(budget.held(), 150);
        drop(a1);
        assert_eq!(budget.held(), 90);
        let mut a3 = budget.lease(&named("a"));
        a3.grow(60).unwrap();
        drop((a2, a3, b));
        assert_eq!(budget.held(), 0);
        assert!(budget.held.lock().unwrap().by_principal.is_empty());
    }
}
