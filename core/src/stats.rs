//! Per-link counters and histograms, updated lock-free on the transfer path
//! and read as a [`LinkStats`] snapshot (admin endpoint, metrics, tests).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::sync::lock;

/// Upper bounds (seconds) of the duration and lateness histogram buckets.
pub const HISTOGRAM_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A fixed-bucket histogram of durations, Prometheus style.
#[derive(Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; HISTOGRAM_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = HISTOGRAM_BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(HISTOGRAM_BOUNDS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_nanos
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        HistogramSnapshot {
            count: counts.iter().sum(),
            sum_seconds: self.sum_nanos.load(Relaxed) as f64 / 1e9,
            buckets: counts,
        }
    }
}

/// A histogram read at one moment. `buckets[i]` counts observations up to
/// `HISTOGRAM_BOUNDS[i]` (not cumulative); the last bucket is `+Inf`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct HistogramSnapshot {
    /// Observations.
    pub count: u64,
    /// Sum of all observations, in seconds.
    pub sum_seconds: f64,
    /// Per-bucket counts.
    pub buckets: Vec<u64>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) transfers_ok: AtomicU64,
    pub(crate) transfers_failed: AtomicU64,
    pub(crate) ticks_skipped: AtomicU64,
    pub(crate) records_in: AtomicU64,
    pub(crate) records_out: AtomicU64,
    pub(crate) records_dropped: AtomicU64,
    pub(crate) records_failed: AtomicU64,
    pub(crate) records_rejected: AtomicU64,
    pub(crate) records_dead_lettered: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) last_success_ms: AtomicU64,
    pub(crate) duration: Histogram,
    pub(crate) lateness: Histogram,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn set_last_error(&self, message: String) {
        *lock(&self.last_error) = Some(message);
    }

    pub(crate) fn mark_success(&self) {
        let ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        self.last_success_ms.store(ms, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LinkStats {
        let ms = self.last_success_ms.load(Relaxed);
        LinkStats {
            transfers_ok: self.transfers_ok.load(Relaxed),
            transfers_failed: self.transfers_failed.load(Relaxed),
            ticks_skipped: self.ticks_skipped.load(Relaxed),
            records_in: self.records_in.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
            records_dropped: self.records_dropped.load(Relaxed),
            records_failed: self.records_failed.load(Relaxed),
            records_rejected: self.records_rejected.load(Relaxed),
            records_dead_lettered: self.records_dead_lettered.load(Relaxed),
            errors: self.errors.load(Relaxed),
            consecutive_failures: 0,
            backoff_until: None,
            last_success: (ms > 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
            last_error: lock(&self.last_error).clone(),
            duration: self.duration.snapshot(),
            lateness: self.lateness.snapshot(),
        }
    }
}

/// A link's counters at one moment.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Transfers that completed (errors ignored under `ignore_exceptions` included).
    pub transfers_ok: u64,
    /// Transfers that failed.
    pub transfers_failed: u64,
    /// Scheduled ticks skipped because the previous transfer was still running.
    pub ticks_skipped: u64,
    /// Records pulled from inlets.
    pub records_in: u64,
    /// Records accepted by outlets (each outlet counts its own).
    pub records_out: u64,
    /// Records dropped because the processor handling them failed while
    /// the link ignores exceptions.
    pub records_dropped: u64,
    /// Records an outlet did not accept: its push failed, or the transfer
    /// failed before the batch was pushed to it (each outlet counts its
    /// own, as `records_out` does).
    pub records_failed: u64,
    /// Records an outlet refused one by one while writing the rest of
    /// their batch (see [`Rejected`](crate::Rejected)).
    pub records_rejected: u64,
    /// Records the dead-letter outlet took: rejected by an outlet, or in a
    /// batch whose push failed for good (see [`crate::routing`]).
    pub records_dead_lettered: u64,
    /// Node errors, ignored or not.
    pub errors: u64,
    /// Failed transfers (or starts) since the last success.
    pub consecutive_failures: u64,
    /// Until when the link backs off after failures, if it does.
    pub backoff_until: Option<SystemTime>,
    /// When a transfer last completed.
    pub last_success: Option<SystemTime>,
    /// The last error's message.
    pub last_error: Option<String>,
    /// Transfer durations.
    pub duration: HistogramSnapshot,
    /// How late scheduled transfers started relative to their tick.
    pub lateness: HistogramSnapshot,
}
