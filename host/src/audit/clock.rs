//! Where the audit log gets the time from: a [`Clock`], so tests can fake days.
//!
//! Only the audit log's wall-clock decisions go through it: record times, the UTC day that names
//! a file, and retention ages. Durations of commands are measured with `Instant` and never faked.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use time::{Duration, OffsetDateTime};

/// A source of the current UTC time.
pub trait Clock: Send + Sync + Debug {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until moved, for tests of rotation and retention.
#[derive(Debug, Clone)]
pub struct FakeClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl FakeClock {
    /// A clock showing `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `t` as RFC 3339 UTC with exactly six fractional digits (`2026-11-27T20:00:00.123456Z`).
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&fmt)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Parses an RFC 3339 time as written in records (any offset accepted, returned in UTC).
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.to_offset(time::UtcOffset::UTC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn fake_clock_moves_only_when_told() {
        let c = FakeClock::new(datetime!(2026-01-01 23:59:59 UTC));
        assert_eq!(c.now(), datetime!(2026-01-01 23:59:59 UTC));
        c.advance(Duration::seconds(2));
        assert_eq!(c.now(), datetime!(2026-01-02 00:00:01 UTC));
    }

    #[test]
    fn times_have_microseconds_and_parse_back() {
        let t = datetime!(2026-11-27 20:00:00.1234567 UTC);
        let s = format_time(t);
        assert_eq!(s, "2026-11-27T20:00:00.123456Z");
        assert_eq!(
            parse_time(&s),
            Some(datetime!(2026-11-27 20:00:00.123456 UTC))
        );
        let real = format_time(SystemClock.now());
        assert_eq!(real.len(), s.len(), "{real}");
    }
}
