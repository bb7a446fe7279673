//! One transfer: pull, run the processors in order, group, then push each
//! batch to every outlet concurrently, and account for what happened.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tracing::Instrument;

use super::health::{Verdict, error_key, repeats_note};
use super::parts;
use super::pull::Pulls;
use super::{Link, Pipeline, ProcessorGauges, TransferReport};
use crate::error::{Failure, NodeError, NodeKind, TransferError};
use crate::node::guarded;
use crate::outlet::OutletHandle;
use crate::processor::{Context, Trigger};
use crate::reject::RejectedRecord;
use crate::sync::lock;
use crate::update::Update;

/// Holds a flag up for as long as it lives.
struct Flag<'a>(&'a AtomicBool);

impl<'a> Flag<'a> {
    fn raise(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::SeqCst);
        Flag(flag)
    }
}

impl Drop for Flag<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// What the stages of a transfer that did not fail produced.
struct Staged {
    records_in: usize,
    records_out: usize,
    ignored: Vec<NodeError>,
    rejected: Vec<RejectedRecord>,
    dead_lettered: usize,
}

impl Link {
    /// Runs one transfer now: pull, process, group, push. Waits for a
    /// running transfer of this link to end first (transfers never overlap).
    pub async fn transfer(&self) -> Result<TransferReport, TransferError> {
        let pipeline = self.inner.pipeline.lock().await;
        self.run(pipeline, Trigger::Transfer, None, Pulls::Due)
            .await
    }

    /// Runs one transfer, timer wake-up or flush on the held pipeline and
    /// records its outcome in the link's counters.
    pub(super) async fn run(
        &self,
        mut pipeline: tokio::sync::MutexGuard<'_, Pipeline>,
        trigger: Trigger,
        scheduled: Option<Instant>,
        pulls: Pulls,
    ) -> Result<TransferReport, TransferError> {
        let inner = &*self.inner;
        let started = crate::clock::now();
        let failed_before = inner.counters.records_failed.load(Ordering::Relaxed);
        let index = inner.next_index.fetch_add(1, Ordering::Relaxed);
        let update = Update::for_link(inner.tags.clone(), index, scheduled);
        let span = tracing::info_span!("transfer", update = %update);
        // Reset even if this future is dropped midway (a cancelled transfer).
        let _transferring = Flag::raise(&inner.control.transferring);
        let held = self.transactional_outlet();
        // Decided once: the pushes are synced for the checkpoint it saves.
        let checkpoint_due = held.is_some() || self.checkpoint_due();
        let outcome = if inner.resync.load(Ordering::SeqCst) {
            self.resync(&mut pipeline).await.map_err(|e| vec![e])
        } else {
            Ok(())
        };
        if let (Ok(()), Some(outlet)) = (&outcome, &held) {
            outlet.hold(&update).await;
        }
        let mut outcome = match outcome {
            Ok(()) => {
                self.run_stages(&mut pipeline, &update, trigger, pulls, checkpoint_due)
                    .instrument(span.clone())
                    .await
            }
            Err(errors) => Err(errors),
        };
        // Broker inlets acknowledge only what every outlet accepted.
        let committed = outcome.is_ok()
            && inner.counters.records_failed.load(Ordering::Relaxed) == failed_before;
        let snapshots = if committed {
            self.processor_snapshots(&pipeline)
        } else {
            None
        };
        match (committed, snapshots, &held) {
            (true, Some(processors), Some(outlet)) => {
                let committing = self.commit_with_outlet(outlet, &update, processors);
                if let Err(e) = committing.instrument(span.clone()).await {
                    self.roll_back_processors(&mut pipeline);
                    outcome = Err(vec![e]);
                }
            }
            (true, Some(processors), None) => {
                let checkpoint = self.write_checkpoint(index, processors, checkpoint_due);
                self.settle_around(&update, checkpoint)
                    .instrument(span.clone())
                    .await;
            }
            // Without a store, or a processor's state could not be taken
            // (logged): delivered, with no checkpoint.
            (true, None, None) => self.settle(&update, true).instrument(span.clone()).await,
            (committed, _, held) => {
                if let Some(outlet) = held {
                    outlet.abort_held(&update).await;
                }
                self.settle(&update, false).instrument(span.clone()).await;
                self.roll_back_processors(&mut pipeline);
                if committed {
                    // The records wait in the outlet's transaction, which
                    // cannot commit without a checkpoint.
                    let e = self.hook_error(
                        NodeKind::StateStore,
                        "checkpoint",
                        &update.to_string(),
                        crate::error::Failure::Error(
                            "a processor's state could not be taken (see the log), so the \
                             transfer's records and checkpoint were not committed"
                                .into(),
                        ),
                    );
                    outcome = Err(vec![e]);
                }
            }
        }
        // The pipeline may have changed what its processors wait for.
        let from_processors = self.note_processors(&pipeline);
        self.note_wakeup(from_processors, Some(started)).await;
        drop(pipeline);
        drop(_transferring);

        let duration = started.elapsed();
        let c = &inner.counters;
        c.duration.observe(duration);
        match outcome {
            Ok(Staged {
                records_in,
                records_out,
                ignored,
                rejected,
                dead_lettered,
            }) => {
                c.transfers_ok.fetch_add(1, Ordering::Relaxed);
                c.records_in.fetch_add(records_in as u64, Ordering::Relaxed);
                c.records_out
                    .fetch_add(records_out as u64, Ordering::Relaxed);
                if let Some(last) = ignored.last() {
                    c.errors.fetch_add(ignored.len() as u64, Ordering::Relaxed);
                    c.set_last_error(last.to_string());
                }
                let undelivered = c.records_failed.load(Ordering::Relaxed) - failed_before;
                if undelivered > 0 {
                    tracing::warn!(
                        parent: &span,
                        link = %inner.name,
                        update = %update,
                        records_not_delivered = undelivered,
                        "{undelivered} records not delivered to an outlet (its error was ignored)"
                    );
                }
                c.mark_success();
                let (failures, repeats) = lock(&inner.health).succeeded();
                if failures > 0 {
                    // The timer may be waiting out the backoff: back to
                    // the schedule.
                    inner.control.wake.notify_one();
                    tracing::info!(
                        parent: &span,
                        link = %inner.name,
                        failures,
                        "link `{}` recovered after {failures} failed attempt{}{}",
                        inner.name,
                        if failures == 1 { "" } else { "s" },
                        repeats_note(repeats)
                    );
                }
                Ok(TransferReport {
                    update,
                    records_in,
                    records_out,
                    rejected,
                    dead_lettered,
                    ignored,
                    duration,
                })
            }
            Err(errors) => {
                c.transfers_failed.fetch_add(1, Ordering::Relaxed);
                let undelivered = c.records_failed.load(Ordering::Relaxed) - failed_before;
                c.errors.fetch_add(errors.len() as u64, Ordering::Relaxed);
                let error = TransferError {
                    link: inner.name.clone(),
                    update: update.to_string(),
                    errors,
                };
                c.set_last_error(error.to_string());
                let (delay, verdict) = lock(&inner.health).failed(
                    &inner.backoff,
                    error_key(&error.errors),
                    crate::clock::now(),
                );
                let backoff = if delay.is_zero() {
                    String::new()
                } else {
                    format!("; backing off {}", crate::error::humanize(delay))
                };
                let undelivered = if undelivered > 0 {
                    format!(" ({undelivered} records not delivered)")
                } else {
                    String::new()
                };
                match verdict {
                    Verdict::Log { repeats } => tracing::error!(
                        parent: &span,
                        link = %inner.name,
                        update = %update,
                        "{error}{undelivered}{backoff}{}",
                        repeats_note(repeats)
                    ),
                    Verdict::Suppress => tracing::debug!(
                        parent: &span,
                        link = %inner.name,
                        update = %update,
                        "{error}{undelivered}{backoff} (a repeat, not logged at error level)"
                    ),
                }
                Err(error)
            }
        }
    }

    async fn with_outlet_wakeups(&self, mut wakeup: Option<Instant>) -> Option<Instant> {
        // Runs after every transfer: most links have no outlet processors,
        // and then this collects (and allocates) nothing.
        let with_processors: Vec<OutletHandle> = lock(&self.inner.outlets)
            .iter()
            .filter(|o| o.handle.has_processors())
            .map(|o| o.handle.clone())
            .collect();
        for outlet in &with_processors {
            if let Some(w) = outlet.next_wakeup().await {
                wakeup = Some(wakeup.map_or(w, |c| c.min(w)));
            }
        }
        wakeup
    }

    /// Handles one node error: under `ignore_exceptions` it is logged and
    /// kept for the report; otherwise it ends the transfer.
    pub(super) fn on_error(&self, error: NodeError, errors: &mut Vec<NodeError>) -> Result<(), ()> {
        if self.inner.ignore_exceptions {
            let verdict =
                lock(&self.inner.ignored_log).check(error_key([&error]), crate::clock::now());
            match verdict {
                Verdict::Log { repeats } => {
                    tracing::warn!("{error} (ignored){}", repeats_note(repeats));
                }
                Verdict::Suppress => tracing::debug!("{error} (ignored; a repeat)"),
            }
            errors.push(error);
            Ok(())
        } else {
            errors.push(error);
            Err(())
        }
    }

    /// Takes note of what the processors now hold (their gauges) and
    /// returns the earliest wake-up they ask for.
    pub(super) fn note_processors(&self, pipeline: &Pipeline) -> Option<Instant> {
        let from_processors = pipeline
            .processors
            .iter()
            .filter_map(|s| s.processor.next_wakeup())
            .min();
        let gauges: Vec<ProcessorGauges> = pipeline
            .processors
            .iter()
            .enumerate()
            .filter_map(|(index, s)| {
                let gauges = s.processor.gauges();
                (!gauges.is_empty()).then(|| ProcessorGauges {
                    name: s.name.clone(),
                    index,
                    gauges,
                })
            })
            .collect();
        if !gauges.is_empty() {
            *lock(&self.inner.processor_gauges) = gauges;
        }
        from_processors
    }

    /// Stores the link's earliest wake-up (its processors' and its
    /// outlets'), waking the timer task when it moved earlier. A wake-up at
    /// or before `since` (the start of a run) was due while it ran and had
    /// its chance: asking again for the past would spin the timer.
    pub(super) async fn note_wakeup(
        &self,
        from_processors: Option<Instant>,
        since: Option<Instant>,
    ) {
        let inner = &*self.inner;
        let wakeup = self
            .with_outlet_wakeups(from_processors)
            .await
            .filter(|w| since.is_none_or(|since| *w > since));
        let earlier = {
            let mut stored = lock(&inner.processor_wakeup);
            let earlier = wakeup.is_some_and(|w| stored.is_none_or(|s| w < s));
            *stored = wakeup;
            earlier
        };
        if earlier {
            // The timer task may be asleep until a later tick (this was a
            // forced transfer): wake it to re-plan.
            inner.control.wake.notify_one();
        }
    }

    /// Takes note of a processor's failure on a batch of `held` records:
    /// `Err` if it fails the transfer; otherwise (`ignore_exceptions`) the
    /// batch is dropped and counted, never passed on unprocessed.
    fn processor_failed(
        &self,
        update: &Update,
        name: &str,
        failure: Failure,
        held: usize,
        errors: &mut Vec<NodeError>,
    ) -> Result<(), ()> {
        let e = self.node_error(update, NodeKind::Processor, name, failure);
        self.on_error(e, errors)?;
        self.inner
            .counters
            .records_dropped
            .fetch_add(held as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The stages of one transfer. Returns what they produced, or every
    /// error when the transfer fails.
    async fn run_stages(
        &self,
        pipeline: &mut Pipeline,
        update: &Update,
        trigger: Trigger,
        pulls: Pulls,
        checkpoint_due: bool,
    ) -> Result<Staged, Vec<NodeError>> {
        let inner = &*self.inner;
        let mut errors = Vec::new();
        tracing::debug!("transfer");

        let mut records = match pulls {
            Pulls::None => Vec::new(),
            _ => self.pull(update, pulls, &mut errors).await,
        };
        if !errors.is_empty() && !inner.ignore_exceptions {
            // What the other inlets produced goes down with the transfer.
            inner
                .counters
                .records_dropped
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            return Err(errors);
        }
        let records_in = records.len();

        let cx = Context::new(update, trigger);
        // A flush passes processors that carry over to a replacement what
        // the others release, as a timer call: their stream goes on.
        let spared = match trigger {
            Trigger::Flush => lock(&inner.spared).clone(),
            _ => Vec::new(),
        };
        let carried = Context {
            trigger: Trigger::Timer,
            ..cx
        };
        // A large batch is heavy work: off the threads that drive the
        // other links' timers and I/O (see `compute`).
        let heavy = records.len() >= crate::compute::HEAVY_BATCH && !pipeline.processors.is_empty();
        let cx_of = |name: &String| {
            if spared.contains(name) { &carried } else { &cx }
        };
        let stages = async {
            let mut next = 0;
            while next < pipeline.processors.len() {
                // A large batch goes through a run of stateless stages in
                // parts, on several cores (see `parts`).
                let run = if records.len() >= parts::PARTED {
                    pipeline.processors[next..]
                        .iter()
                        .map_while(|s| s.processor.stateless().map(|p| (p, cx_of(&s.name))))
                        .collect()
                } else {
                    Vec::new()
                };
                if !run.is_empty() {
                    let stages = run.len();
                    // A batch a stateful stage released on a timer or a
                    // flush is heavy work too (in place if already so).
                    let batch = std::mem::take(&mut records);
                    match crate::compute::run(|| parts::run(&run, batch)).await {
                        Ok(out) => {
                            records = out;
                            next += stages;
                        }
                        Err(failed) => {
                            let name = &pipeline.processors[next + failed.stage].name;
                            self.processor_failed(
                                update,
                                name,
                                failed.failure,
                                failed.held,
                                &mut errors,
                            )?;
                            next += failed.stage + 1;
                        }
                    }
                    continue;
                }
                let stage = &mut pipeline.processors[next];
                next += 1;
                let held = records.len();
                let cx = cx_of(&stage.name);
                match guarded(stage.processor.process(records, cx), None).await {
                    Ok(out) => records = out,
                    Err(failure) => {
                        self.processor_failed(update, &stage.name, failure, held, &mut errors)?;
                        records = Vec::new();
                    }
                }
            }
            Ok::<_, ()>(records)
        };
        let processed = if heavy {
            crate::compute::run_async(stages).await
        } else {
            stages.await
        };
        let Ok(records) = processed else {
            return Err(errors);
        };

        let mut batches = vec![records];
        for g in pipeline.groupers.iter_mut() {
            let input = std::mem::take(&mut batches);
            let held: usize = input.iter().map(Vec::len).sum();
            match crate::node::guarded_sync(|| g.grouper.group(input)) {
                Ok(out) => batches = out,
                Err(failure) => {
                    let e = self.node_error(update, NodeKind::Grouper, &g.name, failure);
                    if self.on_error(e, &mut errors).is_err() {
                        return Err(errors);
                    }
                    inner
                        .counters
                        .records_dropped
                        .fetch_add(held as u64, Ordering::Relaxed);
                }
            }
        }

        let any_outlet_processors = lock(&inner.outlets)
            .iter()
            .any(|o| o.handle.has_processors());
        if batches.is_empty() && any_outlet_processors {
            // Outlets' own processors (buffers) must still run on timers and
            // flushes even when a grouper left no batch at all.
            batches.push(Vec::new());
        }
        let Ok(pushed) = self
            .push_batches(&batches, update, &cx, checkpoint_due, &mut errors)
            .await
        else {
            return Err(errors);
        };
        // Freeing half a million records is heavy work too.
        if batches.iter().map(Vec::len).sum::<usize>() >= crate::compute::HEAVY_BATCH {
            crate::compute::run(move || drop(batches)).await;
        }
        let records_out = pushed.records_out;
        tracing::debug!(records_in, records_out, "done");
        Ok(Staged {
            records_in,
            records_out,
            ignored: errors,
            rejected: pushed.rejected,
            dead_lettered: pushed.dead_lettered,
        })
    }
}
