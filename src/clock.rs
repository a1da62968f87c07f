//! The time the server goes by, and the one format the API and the database
//! use for it: RFC 3339 UTC with milliseconds, fixed width, so text order is
//! time order.
//!
//! Everything that decides by the calendar (token and session expiry, order
//! holds, reset links, lockouts, reconciliation windows) asks a [`Clock`]
//! held in the application state, never the system directly, so a test
//! moves time forward instead of sleeping through it. Durations that only
//! measure (timeouts, latency) use `Instant` and are not affected.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

/// The wall clock, plus an offset that only [`advance`](Clock::advance)
/// changes. Clones share the offset.
#[derive(Clone, Default, Debug)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system's clock, unmoved.
    pub fn system() -> Self {
        Self::default()
    }

    /// The current instant.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// The current instant, formatted for storage and for the wire.
    pub fn stamp(&self) -> String {
        format(self.now())
    }

    /// The instant `ahead` from now, formatted like [`stamp`](Self::stamp).
    pub fn stamp_in(&self, ahead: std::time::Duration) -> String {
        format(self.now() + ahead)
    }

    /// The instant `behind` before now, formatted like [`stamp`](Self::stamp).
    pub fn stamp_ago(&self, behind: std::time::Duration) -> String {
        format(self.now() - behind)
    }

    /// Seconds since the Unix epoch.
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Moves this clock and every clone of it forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// Formats an instant for storage and for the wire.
pub fn format(at: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Parses any RFC 3339 time, for query parameters.
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fixed_width_utc() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(format(t), "2023-11-14T22:13:20.000Z");
        assert_eq!(parse("2023-11-14T22:13:20.000Z"), Some(t));
    }

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.unix();
        clock.advance(std::time::Duration::from_secs(3_600));
        assert!(other.unix() >= before + 3_600);
    }
}
