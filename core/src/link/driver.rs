//! The link's timer task: sleeps until the next tick, inlet retry or
//! processor wake-up, runs the transfer that is due, skips and counts ticks
//! that a running transfer overlaps, and honours pause, resume and stop.

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use super::Link;
use super::pull::Pulls;
use crate::error::TransferError;
use crate::processor::Trigger;
use crate::schedule::Ticker;
use crate::sync::lock;

/// Something a link's driver tells the planner.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    Failed(TransferError),
    Finished(String),
    /// A link left the planner (its end may be what finishes the rest).
    Removed,
}

impl Link {
    /// Pauses scheduled transfers (forced transfers still run).
    pub fn pause(&self) {
        self.inner.control.paused.store(true, Ordering::SeqCst);
        self.inner.control.wake.notify_one();
    }

    /// Resumes scheduled transfers; the schedule restarts from now.
    pub fn resume(&self) {
        self.inner.control.paused.store(false, Ordering::SeqCst);
        self.inner.control.wake.notify_one();
    }

    pub(crate) fn set_planner_paused(&self, paused: bool) {
        self.inner
            .control
            .planner_paused
            .store(paused, Ordering::SeqCst);
        self.inner.control.wake.notify_one();
    }

    /// Whether scheduled transfers are paused (by the link or its planner).
    pub fn is_paused(&self) -> bool {
        let c = &self.inner.control;
        c.paused.load(Ordering::SeqCst) || c.planner_paused.load(Ordering::SeqCst)
    }

    pub(crate) fn request_stop(&self) {
        self.inner.control.stop.store(true, Ordering::SeqCst);
        self.inner.control.wake.notify_one();
    }

    /// Marks the link as driven by a timer task about to be spawned (before
    /// the spawn, so a stop requested right after is not lost).
    pub(crate) fn prepare_drive(&self) {
        let c = &self.inner.control;
        c.stop.store(false, Ordering::SeqCst);
        c.driving.store(true, Ordering::SeqCst);
    }

    pub(crate) fn end_drive(&self) {
        self.inner.control.driving.store(false, Ordering::SeqCst);
        self.set_next_tick(None);
    }

    /// The link's timer: transfers on schedule until stopped or finished.
    pub(crate) async fn drive(self, immediate: bool, events: mpsc::UnboundedSender<LinkEvent>) {
        let inner = &*self.inner;
        let c = &inner.control;
        // A link whose start failed tries again after its backoff; the
        // other links of the planner run meanwhile.
        while self.is_start_failed() {
            if c.stop.load(Ordering::SeqCst) {
                self.set_next_tick(None);
                c.driving.store(false, Ordering::SeqCst);
                return;
            }
            let at = self.start_retry_at();
            self.set_next_tick(Some(at));
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => {}
                _ = c.wake.notified() => continue,
            }
            if let Err(e) = Box::pin(self.start()).await {
                self.start_failed(&e);
            }
        }
        let mut ticker = Ticker::new(inner.schedule.clone());
        let mut was_paused = self.is_paused();
        ticker.restart(crate::clock::now());
        if immediate && !was_paused {
            self.scheduled(
                Trigger::Transfer,
                Some(crate::clock::now()),
                Pulls::Due,
                &events,
            )
            .await;
            self.count_skipped(ticker.catch_up(crate::clock::now()));
        }
        let mut jitter = ticker.draw_jitter();
        loop {
            if c.stop.load(Ordering::SeqCst) {
                break;
            }
            if self.is_exhausted() {
                // Finite input ended: emit what the processors hold, then stop.
                self.scheduled(Trigger::Flush, None, Pulls::None, &events)
                    .await;
                c.finished.store(true, Ordering::SeqCst);
                let _ = events.send(LinkEvent::Finished(inner.name.clone()));
                break;
            }
            let paused = self.is_paused();
            if paused {
                was_paused = true;
                self.set_next_tick(None);
                c.wake.notified().await;
                continue;
            }
            if was_paused {
                was_paused = false;
                ticker.restart(crate::clock::now());
                jitter = ticker.draw_jitter();
            }
            let tick = ticker.deadline(jitter);
            // After failures the link backs off: ticks before the end of
            // the wait are held back (not overrun, so not counted as
            // skipped); the first tick after it runs.
            let held = lock(&inner.health)
                .until()
                .filter(|until| tick.is_some_and(|t| t < *until));
            if let Some(until) = held {
                self.set_next_tick(Some(until));
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => {}
                    _ = c.wake.notified() => continue,
                }
                ticker.catch_up(crate::clock::now());
                jitter = ticker.draw_jitter();
                continue;
            }
            self.set_next_tick(tick);
            let deadline = match (tick, self.pending_wakeup()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match deadline {
                None => {
                    c.wake.notified().await;
                    continue;
                }
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(d.into()) => {}
                        _ = c.wake.notified() => continue,
                    }
                }
            }
            let now = crate::clock::now();
            match tick {
                Some(t) if now >= t => {
                    inner
                        .counters
                        .lateness
                        .observe(now.saturating_duration_since(t));
                    self.scheduled(Trigger::Transfer, Some(t), Pulls::Due, &events)
                        .await;
                    self.count_skipped(ticker.advance(crate::clock::now()));
                    jitter = ticker.draw_jitter();
                }
                _ if self.retry_due(now) => {
                    self.scheduled(Trigger::Transfer, None, Pulls::Retries, &events)
                        .await;
                }
                _ => {
                    self.scheduled(Trigger::Timer, None, Pulls::None, &events)
                        .await;
                }
            }
        }
        self.set_next_tick(None);
        c.driving.store(false, Ordering::SeqCst);
    }

    /// A transfer started by the timer. If a forced transfer holds the link,
    /// the tick is skipped and counted rather than queued.
    async fn scheduled(
        &self,
        trigger: Trigger,
        scheduled: Option<Instant>,
        pulls: Pulls,
        events: &mpsc::UnboundedSender<LinkEvent>,
    ) {
        let pipeline = match self.inner.pipeline.try_lock() {
            Ok(pipeline) => pipeline,
            Err(_) if trigger == Trigger::Transfer && scheduled.is_some() => {
                self.inner
                    .counters
                    .ticks_skipped
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
            // Timer and flush work must not be lost: wait for the lock.
            Err(_) => self.inner.pipeline.lock().await,
        };
        // Boxed: a transfer's state is kilobytes, and a timer task holds
        // its largest state for as long as it lives, idle or not. With
        // 100 000 links that was most of the daemon's memory.
        if let Err(e) = Box::pin(self.run(pipeline, trigger, scheduled, pulls)).await {
            let _ = events.send(LinkEvent::Failed(e));
        }
    }

    /// The earliest processor wake-up or inlet retry.
    fn pending_wakeup(&self) -> Option<Instant> {
        let retry = lock(&self.inner.inlets)
            .iter()
            .filter(|s| !s.exhausted)
            .filter_map(|s| s.retry_at.or(s.wake_at))
            .min();
        let processors = *lock(&self.inner.processor_wakeup);
        match (retry, processors) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn set_next_tick(&self, deadline: Option<Instant>) {
        let wall =
            deadline.map(|d| SystemTime::now() + d.saturating_duration_since(crate::clock::now()));
        *lock(&self.inner.next_tick) = wall;
    }

    fn count_skipped(&self, skipped: u64) {
        if skipped > 0 {
            self.inner
                .counters
                .ticks_skipped
                .fetch_add(skipped, Ordering::Relaxed);
            tracing::warn!(link = %self.inner.name, skipped, "transfer overran its interval; skipped ticks");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::Link;
    use crate::testing::{CollectOutlet, StaticInlet};

    /// A timer task lives as long as its link, and with tens of thousands
    /// of links their sizes add up: the state of a transfer (kilobytes) is
    /// allocated only while one runs.
    #[test]
    fn an_idle_timer_task_holds_no_transfer_state() {
        let link = Link::builder("small")
            .inlet(StaticInlet::values([1]))
            .outlet(CollectOutlet::new())
            .every(Duration::from_secs(1))
            .build()
            .unwrap();
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        let transfer = std::mem::size_of_val(&link.transfer());
        let driver = std::mem::size_of_val(&link.clone().drive(true, events));
        assert!(
            driver < 1024 && driver < transfer / 2,
            "the timer task is {driver} bytes, a transfer {transfer}"
        );
    }
}
