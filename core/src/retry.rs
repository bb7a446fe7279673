//! Retrying a failed push: [`RetryPolicy`] (attempts, exponential backoff
//! with jitter, a maximum delay, an overall deadline) and [`Permanent`],
//! which an outlet wraps around an error that retrying cannot fix.

use std::time::Duration;

use crate::error::BoxError;

/// How an outlet's failed push is tried again: up to `attempts` tries in
/// all, waiting `initial`, then twice that, and so on up to `max_delay`
/// (each wait drawn between half and all of it, so that many links
/// retrying at once spread out), and never past `deadline` from the first
/// try. Timeouts and errors are retried; [`Permanent`] errors, panics and
/// per-record rejects are not. The default tries once.
///
/// ```
/// use databay_core::RetryPolicy;
/// use std::time::Duration;
///
/// let policy = RetryPolicy::new(5)
///     .initial(Duration::from_millis(100))
///     .max_delay(Duration::from_secs(2))
///     .deadline(Duration::from_secs(10));
/// assert_eq!(policy.attempts(), 5);
/// // The first retry waits 50..100 ms, the next 100..200 ms.
/// let first = policy.delay(2);
/// assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
/// let second = policy.delay(3);
/// assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    attempts: u32,
    initial: Duration,
    max_delay: Duration,
    deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new(1)
    }
}

impl RetryPolicy {
    /// Up to `attempts` tries in all (0 is taken as 1), 100 ms apart at
    /// first, doubling up to 10 s, with no deadline.
    pub fn new(attempts: u32) -> Self {
        RetryPolicy {
            attempts: attempts.max(1),
            initial: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            deadline: None,
        }
    }

    /// The first wait (default 100 ms).
    pub fn initial(mut self, delay: Duration) -> Self {
        self.initial = delay;
        self
    }

    /// The longest wait (default 10 s).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// No try starts later than this after the first.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Tries in all.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The overall deadline, if any.
    pub fn deadline_after(&self) -> Option<Duration> {
        self.deadline
    }

    /// The wait before try `attempt` (2 for the first retry): the
    /// exponential delay capped at `max_delay`, drawn between half and all
    /// of it.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(32);
        let full = self
            .initial
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max_delay);
        let half = full / 2;
        let spread = full.saturating_sub(half);
        half + spread.mul_f64(fastrand::f64())
    }
}

/// An error that retrying cannot fix (a record the target refuses, bad
/// credentials): an outlet returns `Err(Permanent::new(e).into())`, and the
/// push fails at once whatever its [`RetryPolicy`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Permanent(#[source] pub BoxError);

impl Permanent {
    /// Marks `error` permanent.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Permanent(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter() {
        let p = RetryPolicy::new(10)
            .initial(Duration::from_millis(100))
            .max_delay(Duration::from_millis(500));
        for _ in 0..100 {
            let d2 = p.delay(2);
            assert!(d2 >= Duration::from_millis(50) && d2 <= Duration::from_millis(100));
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(100) && d3 <= Duration::from_millis(200));
            let d9 = p.delay(9);
            assert!(d9 >= Duration::from_millis(250) && d9 <= Duration::from_millis(500));
        }
        assert_eq!(RetryPolicy::new(0).attempts(), 1);
        assert!(RetryPolicy::new(3).delay(u32::MAX) <= Duration::from_secs(10));
    }
}
