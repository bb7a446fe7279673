//! Starting and shutting down a link's nodes, flushing what its processors
//! hold, and the state these leave the link in.

use std::sync::atomic::Ordering;

use super::health::{Verdict, error_key, repeats_note};
use super::pull::Pulls;
use super::{Link, LinkState, TransferReport};
use crate::error::{NodeError, NodeKind, TransferError};
use crate::processor::Trigger;
use crate::sync::lock;

impl Link {
    /// Where the link is in its life.
    pub fn state(&self) -> LinkState {
        let c = &self.inner.control;
        if c.finished.load(Ordering::SeqCst) {
            LinkState::Finished
        } else if c.start_failed.load(Ordering::SeqCst) && c.driving.load(Ordering::SeqCst) {
            LinkState::Failed
        } else if c.transferring.load(Ordering::SeqCst) {
            LinkState::Transferring
        } else if !c.driving.load(Ordering::SeqCst) {
            LinkState::Idle
        } else if self.is_paused() {
            LinkState::Paused
        } else {
            LinkState::Scheduled
        }
    }

    /// Starts every inlet and outlet (each instance once, however many links
    /// share it). On failure the nodes already started are shut down again.
    pub async fn start(&self) -> Result<(), NodeError> {
        let mut started = self.inner.started.lock().await;
        if *started {
            return Ok(());
        }
        self.restore_checkpoint().await?;
        let inlets = self.inlets();
        let outlets = self.outlets();
        for (i, inlet) in inlets.iter().enumerate() {
            if let Err(f) = inlet.start().await {
                for prior in &inlets[..i] {
                    let _ = prior.shutdown().await;
                }
                return Err(self.hook_error(NodeKind::Inlet, inlet.name(), "on_start", f));
            }
        }
        for (i, outlet) in outlets.iter().enumerate() {
            if let Err(f) = outlet.start().await {
                for prior in &outlets[..i] {
                    let _ = prior.shutdown().await;
                }
                for inlet in &inlets {
                    let _ = inlet.shutdown().await;
                }
                return Err(self.hook_error(NodeKind::Outlet, outlet.name(), "on_start", f));
            }
        }
        self.save_initial_checkpoint().await;
        *started = true;
        self.inner.control.finished.store(false, Ordering::SeqCst);
        if self
            .inner
            .control
            .start_failed
            .swap(false, Ordering::SeqCst)
        {
            let (failures, repeats) = lock(&self.inner.health).succeeded();
            tracing::info!(
                link = %self.inner.name,
                "link `{}` started after {failures} failed attempt{}{}",
                self.inner.name,
                if failures == 1 { "" } else { "s" },
                repeats_note(repeats)
            );
        }
        Ok(())
    }

    /// Records that starting failed with `error`: counted, logged (repeats
    /// left out), and the link waits its backoff before trying again
    /// (state [`LinkState::Failed`] meanwhile).
    pub(crate) fn start_failed(&self, error: &NodeError) {
        let inner = &*self.inner;
        inner.control.start_failed.store(true, Ordering::SeqCst);
        inner.counters.errors.fetch_add(1, Ordering::Relaxed);
        inner.counters.set_last_error(error.to_string());
        let (delay, verdict) =
            lock(&inner.health).failed(&inner.backoff, error_key([error]), crate::clock::now());
        // Without a backoff, a failed start is tried again a second later.
        let delay = if delay.is_zero() {
            std::time::Duration::from_secs(1)
        } else {
            delay
        };
        match verdict {
            Verdict::Log { repeats } => tracing::error!(
                link = %inner.name,
                "{error}; the link does not run, trying again in {}{}",
                crate::error::humanize(delay),
                repeats_note(repeats)
            ),
            Verdict::Suppress => tracing::debug!(link = %inner.name, "{error} (a repeat)"),
        }
    }

    /// When a link whose start failed tries again.
    pub(crate) fn start_retry_at(&self) -> std::time::Instant {
        lock(&self.inner.health)
            .until()
            .unwrap_or_else(|| crate::clock::now() + std::time::Duration::from_secs(1))
    }

    /// Whether the link waits to try its start again.
    pub(crate) fn is_start_failed(&self) -> bool {
        self.inner.control.start_failed.load(Ordering::SeqCst)
    }

    /// Shuts down every inlet and outlet this link started (each instance
    /// once, after its last user stops). Every node is shut down even if an
    /// earlier one fails; the errors are returned.
    pub async fn shutdown(&self) -> Vec<NodeError> {
        let mut started = self.inner.started.lock().await;
        if !*started {
            return Vec::new();
        }
        *started = false;
        let mut errors = Vec::new();
        self.save_owed_checkpoint(&mut errors).await;
        for inlet in self.inlets() {
            if let Err(f) = inlet.shutdown().await {
                errors.push(self.hook_error(NodeKind::Inlet, inlet.name(), "on_shutdown", f));
            }
        }
        for outlet in self.outlets() {
            if let Err(f) = outlet.shutdown().await {
                errors.push(self.hook_error(NodeKind::Outlet, outlet.name(), "on_shutdown", f));
            }
        }
        errors
    }

    /// Releases everything the processors hold (buffers, windows) and pushes
    /// it, without pulling. Graceful shutdown does this.
    pub async fn flush(&self) -> Result<TransferReport, TransferError> {
        let pipeline = self.inner.pipeline.lock().await;
        self.run(pipeline, Trigger::Flush, None, Pulls::None).await
    }

    /// Whether a flush could release anything: some processor (of the link
    /// or of an outlet) may hold records.
    pub(crate) fn may_hold_records(&self) -> bool {
        self.inner.has_processors.load(Ordering::Relaxed)
            || lock(&self.inner.outlets)
                .iter()
                .any(|o| o.handle.has_processors())
    }
}
