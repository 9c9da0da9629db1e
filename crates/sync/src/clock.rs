//! The clock a worker reads to decide whether a config's full run is due, and the push
//! subscriptions' renewal whether a subscription is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

/// The system clock by default. An [adjustable](Clock::adjustable) one runs ahead of it by
/// what it was [advanced](Clock::advance), so a test makes a config's full run due without
/// waiting out its `full_sync_interval`, or a subscription due for renewal without waiting out
/// its weeks. Only those choices read it: leases, run times, next run times and the expiry asked
/// of a source stay on the system clock.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds ahead of the system clock; `None` for the system clock itself.
    ahead: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// A clock that reads the system clock until it is advanced.
    pub fn adjustable() -> Clock {
        Clock { ahead: Some(Arc::default()) }
    }

    /// Moves an adjustable clock (and every clone of it) forward by `by`.
    ///
    /// # Panics
    ///
    /// On the system clock, which only time moves.
    pub fn advance(&self, by: Duration) {
        let ahead = self.ahead.as_ref().expect("only an adjustable clock is advanced");
        let by = u64::try_from(by.as_millis()).expect("an advance fits in u64 milliseconds");
        ahead.fetch_add(by, Ordering::Relaxed);
    }

    pub fn now(&self) -> OffsetDateTime {
        let now = ctxsync_core::now();
        match &self.ahead {
            None => now,
            Some(ahead) => now + Duration::from_millis(ahead.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_runs_ahead_by_its_advances_in_every_clone() {
        let clock = Clock::adjustable();
        let clone = clock.clone();
        clock.advance(Duration::from_secs(3600));
        clock.advance(Duration::from_secs(60));
        let ahead = clone.now() - ctxsync_core::now();
        assert!(ahead > time::Duration::seconds(3659) && ahead <= time::Duration::seconds(3660), "{ahead}");
    }

    #[test]
    #[should_panic(expected = "only an adjustable clock")]
    fn the_system_clock_is_not_advanced() {
        Clock::default().advance(Duration::from_secs(1));
    }
}
