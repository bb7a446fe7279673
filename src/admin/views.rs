//! The JSON views of links and their components that `/links` answers.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use databay_core::{Link, LinkState};
use serde::Serialize;

use crate::config::LinkSummary;

/// One link as `/links` shows it.
#[derive(Debug, Serialize)]
pub(super) struct LinkView {
    name: String,
    tags: Vec<String>,
    schedule: String,
    state: LinkState,
    paused: bool,
    next_transfer: Option<String>,
    last_success: Option<String>,
    last_error: Option<String>,
    /// Failed transfers (or starts) in a row; 0 when the last one worked.
    consecutive_failures: u64,
    /// Until when the link waits after failures before trying again.
    backoff_until: Option<String>,
    counters: CountersView,
    components: Vec<databay_core::NodeStats>,
    /// Live keys, open windows and the like, per stateful processor.
    processors: Vec<databay_core::ProcessorGauges>,
    /// The outlet whose records commit with the link's checkpoint, in one
    /// transaction (exactly once); `null` if none does.
    exactly_once: Option<String>,
    summary: Option<ShapeView>,
}

#[derive(Debug, Serialize)]
struct CountersView {
    transfers_ok: u64,
    transfers_failed: u64,
    ticks_skipped: u64,
    records_in: u64,
    records_out: u64,
    records_dropped: u64,
    records_failed: u64,
    records_rejected: u64,
    records_dead_lettered: u64,
    errors: u64,
}

/// The component types of a configured link (no options: nothing secret).
#[derive(Debug, Serialize)]
struct ShapeView {
    inlets: Vec<String>,
    processors: Vec<String>,
    groupers: Vec<String>,
    outlets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_letter: Option<String>,
}

impl LinkView {
    pub(super) fn new(link: &Link, summary: Option<&LinkSummary>) -> Self {
        let stats = link.stats();
        LinkView {
            name: link.name().to_owned(),
            tags: link.tags().to_vec(),
            schedule: link.schedule().to_string(),
            state: link.state(),
            paused: link.is_paused(),
            next_transfer: link.next_transfer().and_then(rfc3339),
            last_success: stats.last_success.and_then(rfc3339),
            consecutive_failures: stats.consecutive_failures,
            backoff_until: stats.backoff_until.and_then(rfc3339),
            counters: CountersView {
                transfers_ok: stats.transfers_ok,
                transfers_failed: stats.transfers_failed,
                ticks_skipped: stats.ticks_skipped,
                records_in: stats.records_in,
                records_out: stats.records_out,
                records_dropped: stats.records_dropped,
                records_failed: stats.records_failed,
                records_rejected: stats.records_rejected,
                records_dead_lettered: stats.records_dead_lettered,
                errors: stats.errors,
            },
            last_error: stats
                .last_error
                .map(|e| crate::scrub::scrub(&e).into_owned()),
            components: link.node_stats(),
            processors: link.processor_gauges(),
            exactly_once: link.exactly_once_outlet(),
            summary: summary.map(|s| ShapeView {
                inlets: s.inlets.clone(),
                processors: s.processors.clone(),
                groupers: s.groupers.clone(),
                outlets: s.outlets.clone(),
                dead_letter: s.dead_letter.clone(),
            }),
        }
    }
}

/// What `POST /links/{name}/transfer` answers.
#[derive(Debug, Serialize)]
pub(super) struct TransferView {
    pub(super) update: String,
    pub(super) records_in: usize,
    pub(super) records_out: usize,
    pub(super) ignored_errors: Vec<String>,
    pub(super) duration_ms: u64,
}

/// RFC 3339 with milliseconds, or `None` for a time RFC 3339 cannot show
/// (before 1970 or after 9999), which humantime would panic or fail on.
pub(super) fn rfc3339(t: SystemTime) -> Option<String> {
    const YEAR_10000: u64 = 253_402_300_800;
    let since_epoch = t.duration_since(UNIX_EPOCH).ok()?;
    if since_epoch.as_secs() >= YEAR_10000 {
        return None;
    }
    let mut text = String::new();
    write!(text, "{}", humantime::format_rfc3339_millis(t)).ok()?;
    Some(text)
}
