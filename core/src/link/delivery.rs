//! Pushing a transfer's batches: each record to every fan-out outlet (or
//! to the one it is routed to), what outlets reject or fail to take handed
//! to the dead-letter outlet, and the accounting of what each outlet got
//! (see [`crate::routing`]).

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::join_all;
use tracing::Instrument;

use super::{Link, OutletSlot, Role};
use crate::error::{Failure, NodeError, NodeKind};
use crate::outlet::{Delivered, DeliveryError};
use crate::processor::Context;
use crate::record::Record;
use crate::reject::RejectedRecord;
use crate::routing::{dead_letter, route_of};
use crate::sync::lock;
use crate::update::Update;

/// How many rejects of one push are logged one by one; the rest are
/// summed up in one line.
const LOGGED_REJECTS: usize = 10;

/// What the pushes of one transfer did.
#[derive(Default)]
pub(super) struct Pushed {
    pub(super) records_out: usize,
    pub(super) rejected: Vec<RejectedRecord>,
    pub(super) dead_lettered: usize,
}

/// Logs the records one push refused, each with its position.
fn log_rejects(outlet: &str, batch: usize, rejected: &[RejectedRecord]) {
    for r in rejected.iter().take(LOGGED_REJECTS) {
        tracing::warn!(
            outlet,
            batch,
            record = r.index,
            "outlet `{outlet}` rejected record {} of batch {batch}: {} (the rest of the batch was written)",
            r.index,
            r.error
        );
    }
    if rejected.len() > LOGGED_REJECTS {
        tracing::warn!(
            outlet,
            batch,
            records_rejected = rejected.len(),
            "outlet `{outlet}` rejected {} more records of batch {batch}",
            rejected.len() - LOGGED_REJECTS
        );
    }
}

/// One push to one outlet, in a span naming it.
async fn deliver(
    slot: &OutletSlot,
    batch: &[Record],
    cx: &Context<'_>,
    timeout: Option<Duration>,
    durable: bool,
) -> Result<Delivered, DeliveryError> {
    let span = tracing::info_span!("outlet", component = %slot.handle.name());
    let delivering = slot.handle.deliver_as(batch, cx, timeout, durable);
    let (result, bytes) = crate::bytes::metered(delivering.instrument(span)).await;
    slot.counters.add_bytes(bytes);
    result
}

/// Which outlet gets which records of one batch.
struct Plan<'a> {
    /// Slot index and its records, in batch order.
    targets: Vec<(usize, Cow<'a, [Record]>)>,
    /// Records routed nowhere the link can send them, and why.
    unroutable: Vec<(Record, String)>,
}

fn plan<'a>(batch: &'a [Record], outlets: &[OutletSlot]) -> Plan<'a> {
    let fanout = outlets
        .iter()
        .enumerate()
        .filter(|(_, o)| o.role == Role::Fanout)
        .map(|(i, _)| i);
    // The common case: nothing routed, every fan-out outlet gets the batch
    // as it is, with no copy.
    if !batch.iter().any(|r| route_of(r).is_some()) {
        return Plan {
            targets: fanout.map(|i| (i, Cow::Borrowed(batch))).collect(),
            unroutable: Vec::new(),
        };
    }
    let fanout: Vec<usize> = fanout.collect();
    let mut per_slot: Vec<Vec<Record>> = vec![Vec::new(); outlets.len()];
    let mut unroutable = Vec::new();
    for record in batch {
        match route_of(record) {
            None => {
                for &i in &fanout {
                    per_slot[i].push(record.clone());
                }
            }
            Some(Ok(name)) => {
                let to = outlets
                    .iter()
                    .position(|o| o.role != Role::DeadLetter && o.handle.name() == name);
                match to {
                    Some(i) => per_slot[i].push(record.clone()),
                    None => unroutable.push((
                        record.clone(),
                        format!("routed to outlet `{name}`, which the link does not have"),
                    )),
                }
            }
            Some(Err(why)) => unroutable.push((record.clone(), why)),
        }
    }
    let targets = per_slot
        .into_iter()
        .enumerate()
        // A fan-out outlet is still called with nothing when it has
        // processors of its own (buffers run on every transfer).
        .filter(|(i, records)| {
            !records.is_empty() || (fanout.contains(i) && outlets[*i].handle.has_processors())
        })
        .map(|(i, records)| (i, Cow::Owned(records)))
        .collect();
    Plan {
        targets,
        unroutable,
    }
}

impl Link {
    /// Whether this transfer's pushes must be durable when they return:
    /// when an outlet defers its sync ([`crate::Outlet::defers_sync`])
    /// and the transfer saves a checkpoint (`checkpoint_due`: it says they
    /// are kept) or an
    /// inlet it pulled keeps no resume state (its commit lets go of the
    /// records at their source: a broker's acknowledgement, a webhook's
    /// answer). Otherwise nothing relies on them before the outlet's next
    /// sync: at most [`crate::SYNC_AT_LEAST_EVERY`] later, or when it shuts
    /// down.
    async fn pushes_must_be_durable(&self, outlets: &[OutletSlot], checkpoint_due: bool) -> bool {
        let inner = &*self.inner;
        if !outlets.iter().any(|o| o.handle.defers_sync()) {
            return false;
        }
        if checkpoint_due {
            return true;
        }
        // Each inlet's snapshot is taken once, until it shows resume state:
        // a large one (a `dir` inlet's every file) is not built per push.
        let unknown: Vec<_> = lock(&inner.inlets)
            .iter()
            .filter(|s| s.unsettled.is_some() && !s.keeps_state)
            .map(|s| s.handle.clone())
            .collect();
        for inlet in unknown {
            if inlet.snapshot().await.is_none() {
                return true;
            }
            if let Some(slot) = lock(&inner.inlets)
                .iter_mut()
                .find(|s| s.handle.same_as(&inlet))
            {
                slot.keeps_state = true;
            }
        }
        false
    }

    /// Pushes every batch to its outlets, then the dead letters (if any)
    /// to the dead-letter outlet. `Err` when the transfer fails (the
    /// errors are in `errors`).
    pub(super) async fn push_batches(
        &self,
        batches: &[Vec<Record>],
        update: &Update,
        cx: &Context<'_>,
        checkpoint_due: bool,
        errors: &mut Vec<NodeError>,
    ) -> Result<Pushed, ()> {
        let inner = &*self.inner;
        let outlets: Vec<OutletSlot> = lock(&inner.outlets).clone();
        let any_outlet_processors = outlets.iter().any(|o| o.handle.has_processors());
        let dead_letters = outlets.iter().position(|o| o.role == Role::DeadLetter);
        let fanout = outlets.iter().filter(|o| o.role == Role::Fanout).count() as u64;
        let timeout = inner.outlet_timeout;
        let durable = self.pushes_must_be_durable(&outlets, checkpoint_due).await;
        let mut pushed = Pushed::default();
        let mut dead: Vec<Record> = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            if batch.is_empty() && !any_outlet_processors {
                continue;
            }
            let plan = plan(batch, &outlets);
            for (record, why) in &plan.unroutable {
                inner
                    .counters
                    .records_rejected
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(batch = b, "a record of batch {b} was not delivered: {why}");
                if dead_letters.is_some() {
                    dead.push(dead_letter(record, why, "", update, 0));
                }
            }
            let results = match plan.targets.as_slice() {
                [(i, records)] => vec![deliver(&outlets[*i], records, cx, timeout, durable).await],
                targets => {
                    join_all(
                        targets.iter().map(|(i, records)| {
                            deliver(&outlets[*i], records, cx, timeout, durable)
                        }),
                    )
                    .await
                }
            };
            let mut failed = false;
            for ((i, records), result) in plan.targets.iter().zip(results) {
                let slot = &outlets[*i];
                slot.counters
                    .record(result.as_ref().map_or(0, |d| d.written), result.is_err());
                match result {
                    Ok(delivered) => {
                        pushed.records_out += delivered.written;
                        if delivered.rejected.is_empty() {
                            continue;
                        }
                        let n = delivered.rejected.len() as u64;
                        slot.counters.rejected.fetch_add(n, Ordering::Relaxed);
                        inner
                            .counters
                            .records_rejected
                            .fetch_add(n, Ordering::Relaxed);
                        log_rejects(slot.handle.name(), b, &delivered.rejected);
                        if dead_letters.is_some() {
                            slot.counters.dead_lettered.fetch_add(n, Ordering::Relaxed);
                            dead.extend(delivered.rejected.iter().map(|r| {
                                dead_letter(
                                    &r.record,
                                    &r.error.to_string(),
                                    slot.handle.name(),
                                    update,
                                    delivered.attempts,
                                )
                            }));
                        }
                        pushed.rejected.extend(delivered.rejected);
                    }
                    Err(d) if dead_letters.is_some() => {
                        // Handed over instead of failing the transfer; if
                        // the dead-letter outlet fails too, it fails then.
                        let why = d.failure.to_string();
                        let n = records.len();
                        slot.counters
                            .dead_lettered
                            .fetch_add(n as u64, Ordering::Relaxed);
                        let e = self.node_error(update, d.kind, &d.node, d.failure);
                        tracing::warn!(
                            outlet = %d.node,
                            records = n,
                            "{e}; its {n} records go to the dead-letter outlet"
                        );
                        inner.counters.errors.fetch_add(1, Ordering::Relaxed);
                        inner.counters.set_last_error(e.to_string());
                        dead.extend(
                            records
                                .iter()
                                .map(|r| dead_letter(r, &why, &d.node, update, d.attempts)),
                        );
                    }
                    Err(d) => {
                        // Whatever the policy, this outlet did not get
                        // these records: say so in the counters.
                        let n = records.len() as u64;
                        slot.counters.failed.fetch_add(n, Ordering::Relaxed);
                        inner
                            .counters
                            .records_failed
                            .fetch_add(n, Ordering::Relaxed);
                        if d.kind == NodeKind::OutletProcessor && inner.ignore_exceptions {
                            // That outlet's copy of the batch is gone.
                            inner
                                .counters
                                .records_dropped
                                .fetch_add(n, Ordering::Relaxed);
                        }
                        let e = self.node_error(update, d.kind, &d.node, d.failure);
                        failed |= self.on_error(e, errors).is_err();
                    }
                }
            }
            if failed {
                // The batches after this one reach no outlet at all.
                let rest: u64 = batches[b + 1..].iter().map(|x| x.len() as u64).sum();
                if rest > 0 {
                    for slot in outlets.iter().filter(|o| o.role == Role::Fanout) {
                        slot.counters.failed.fetch_add(rest, Ordering::Relaxed);
                    }
                    inner
                        .counters
                        .records_failed
                        .fetch_add(rest * fanout, Ordering::Relaxed);
                }
                return Err(());
            }
        }
        if let (Some(i), false) = (dead_letters, dead.is_empty()) {
            pushed.dead_lettered = self
                .push_dead_letters(&outlets[i], &dead, update, cx, errors)
                .await?;
        }
        Ok(pushed)
    }

    /// Pushes the dead letters; what the dead-letter outlet does not take
    /// fails the transfer (nothing is committed: at least once).
    async fn push_dead_letters(
        &self,
        slot: &OutletSlot,
        dead: &[Record],
        update: &Update,
        cx: &Context<'_>,
        errors: &mut Vec<NodeError>,
    ) -> Result<usize, ()> {
        let inner = &*self.inner;
        let result = deliver(slot, dead, cx, inner.outlet_timeout, true).await;
        slot.counters
            .record(result.as_ref().map_or(0, |d| d.written), result.is_err());
        let (written, failure) = match result {
            Ok(d) if d.rejected.is_empty() => (d.written, None),
            Ok(d) => {
                let first = &d.rejected[0];
                let why = format!(
                    "rejected {} of {} dead letters (record {}: {})",
                    d.rejected.len(),
                    dead.len(),
                    first.index,
                    first.error
                );
                (
                    d.written,
                    Some((d.rejected.len(), Failure::Error(why.into()))),
                )
            }
            Err(d) => (0, Some((dead.len(), d.failure))),
        };
        inner
            .counters
            .records_dead_lettered
            .fetch_add(written as u64, Ordering::Relaxed);
        let Some((lost, failure)) = failure else {
            tracing::info!(
                records = written,
                "{written} records went to the dead-letter outlet `{}`",
                slot.handle.name()
            );
            return Ok(written);
        };
        slot.counters
            .failed
            .fetch_add(lost as u64, Ordering::Relaxed);
        inner
            .counters
            .records_failed
            .fetch_add(lost as u64, Ordering::Relaxed);
        let e = self.node_error(update, NodeKind::DeadLetter, slot.handle.name(), failure);
        match self.on_error(e, errors) {
            Ok(()) => Ok(written),
            Err(()) => Err(()),
        }
    }
}
