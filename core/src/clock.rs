//! The engine's monotonic clock. It reads tokio's clock so that tests can
//! pause and advance time (`tokio::time::pause`) and see schedules, buffers
//! and timers follow; outside tests it is `std::time::Instant::now()`.

use std::time::{Duration, Instant};

/// The current instant on the engine's clock.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// How far ahead "never" is: later than any deadline worth waiting for, yet
/// safe to add to any instant.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `at + d`, saturating at "never" instead of overflowing on huge durations
/// (`every = "500000000000y"` is valid humantime).
pub(crate) fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d.min(FAR))
        .or_else(|| at.checked_add(FAR))
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_saturates_instead_of_overflowing() {
        let t = Instant::now();
        assert_eq!(after(t, Duration::from_secs(1)), t + Duration::from_secs(1));
        assert_eq!(after(t, Duration::MAX), t + FAR);
    }
}
