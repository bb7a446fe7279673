//! A failing link backs off, and the same error is not logged on every
//! tick.
//!
//! After a failed transfer (or a failed start) a link waits before its
//! next try: `initial`, doubled on each failure in a row, capped at `max`,
//! and reset by the first success. Scheduled ticks that fall inside the
//! wait are not run (and not counted as skipped: nothing overran); the
//! first tick after it runs as usual. A forced transfer is never held back.
//!
//! An error whose text (without the update, which changes every transfer)
//! repeats the previous one is logged once per [`REPEAT_WINDOW`]; the line
//! that ends a run of repeats says how many were not logged.

use std::time::{Duration, Instant, SystemTime};

use crate::error::NodeError;

/// How long repeats of one error stay out of the log.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(60);

/// How a link waits after failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackoffPolicy {
    /// The wait after the first failure; zero turns backing off off.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl BackoffPolicy {
    /// Waits `initial` after the first failure, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        BackoffPolicy {
            initial,
            max: max.max(initial),
        }
    }

    /// Never waits: a failing link keeps its schedule.
    pub fn none() -> Self {
        Self::new(Duration::ZERO, Duration::ZERO)
    }

    /// The wait after `failures` failures in a row (from 1).
    pub fn delay(&self, failures: u32) -> Duration {
        if self.initial.is_zero() || failures == 0 {
            return Duration::ZERO;
        }
        let doublings = (failures - 1).min(31);
        self.initial
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// What the log should do with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Log it; `repeats` earlier occurrences of the previous error were
    /// not logged.
    Log { repeats: u64 },
    /// A repeat inside the window: leave it out.
    Suppress,
}

/// The log's memory of the last error it wrote, to leave out repeats.
#[derive(Debug, Default)]
pub(crate) struct Repeats {
    /// The last logged error's text and when it was logged.
    last: Option<(String, Instant)>,
    count: u64,
}

impl Repeats {
    /// Whether to log the error whose text is `key`, at `now`.
    pub(crate) fn check(&mut self, key: String, now: Instant) -> Verdict {
        match &self.last {
            Some((last, at)) if *last == key && now.duration_since(*at) < REPEAT_WINDOW => {
                self.count += 1;
                Verdict::Suppress
            }
            _ => {
                self.last = Some((key, now));
                Verdict::Log {
                    repeats: std::mem::take(&mut self.count),
                }
            }
        }
    }

    /// Forgets the last error; returns how many of its repeats were not
    /// logged.
    pub(crate) fn reset(&mut self) -> u64 {
        self.last = None;
        std::mem::take(&mut self.count)
    }
}

/// A link's failures in a row, its backoff, and the log's memory of its
/// last error.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failures: u32,
    until: Option<Instant>,
    until_wall: Option<SystemTime>,
    repeats: Repeats,
}

impl Health {
    /// Records a failure at `now`: returns the wait before the next try
    /// and what to do with the error's log line (`key` is its text without
    /// the update).
    pub(crate) fn failed(
        &mut self,
        policy: &BackoffPolicy,
        key: String,
        now: Instant,
    ) -> (Duration, Verdict) {
        self.failures = self.failures.saturating_add(1);
        let delay = policy.delay(self.failures);
        self.until = (!delay.is_zero()).then(|| now + delay);
        self.until_wall = self.until.map(|_| SystemTime::now() + delay);
        (delay, self.repeats.check(key, now))
    }

    /// Records a success: returns how many failures in a row it ends and
    /// how many repeats of the last error were not logged.
    pub(crate) fn succeeded(&mut self) -> (u32, u64) {
        let failures = std::mem::take(&mut self.failures);
        self.until = None;
        self.until_wall = None;
        (failures, self.repeats.reset())
    }

    /// Failures in a row.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Until when the link waits, if it does.
    pub(crate) fn until(&self) -> Option<Instant> {
        self.until
    }

    /// The same on the wall clock.
    pub(crate) fn until_wall(&self) -> Option<SystemTime> {
        self.until_wall
    }
}

/// The text of `errors` without the update they happened in: equal for
/// the same failure in two transfers.
pub(crate) fn error_key<'a>(errors: impl IntoIterator<Item = &'a NodeError>) -> String {
    let mut key = String::new();
    for e in errors {
        key.push_str(&format!("{:?} {} {}\n", e.kind, e.node, e.failure));
    }
    key
}

/// The end of a log line reporting repeats, or nothing.
pub(crate) fn repeats_note(repeats: u64) -> String {
    match repeats {
        0 => String::new(),
        n => format!(
            " (the previous error repeated {n} more time{} and was not logged each time)",
            if n == 1 { "" } else { "s" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_up_to_the_cap_and_zero_turns_it_off() {
        let p = BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        let delays: Vec<u64> = (1..=6).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(10));
        let off = BackoffPolicy {
            initial: Duration::ZERO,
            max: Duration::from_secs(10),
        };
        assert_eq!(off.delay(5), Duration::ZERO);
    }

    #[test]
    fn repeats_are_suppressed_inside_the_window_and_counted() {
        let p = BackoffPolicy::default();
        let mut h = Health::default();
        let t0 = Instant::now();
        assert_eq!(h.failed(&p, "a".into(), t0).1, Verdict::Log { repeats: 0 });
        assert_eq!(h.failed(&p, "a".into(), t0).1, Verdict::Suppress);
        assert_eq!(h.failed(&p, "a".into(), t0).1, Verdict::Suppress);
        // Another error is logged, with the count of the previous one.
        assert_eq!(h.failed(&p, "b".into(), t0).1, Verdict::Log { repeats: 2 });
        // The same error after the window is logged again.
        let later = t0 + REPEAT_WINDOW;
        assert_eq!(
            h.failed(&p, "b".into(), later).1,
            Verdict::Log { repeats: 0 }
        );
        assert_eq!(h.failures(), 5);
        assert_eq!(h.succeeded(), (5, 0));
        assert_eq!((h.failures(), h.until()), (0, None));
    }
}
