//! Restoring a link's checkpoint when it starts, and writing one after a
//! committed transfer (see [`crate::checkpoint`]).

use std::sync::atomic::Ordering;

use super::Link;
use crate::checkpoint::{Checkpoint, INDEX_LEASE};
use crate::error::{Failure, NodeError, NodeKind};
use crate::sync::lock;

impl Link {
    /// Keeps the link's checkpoints in `store`, as
    /// [`LinkBuilder::state_store`](crate::LinkBuilder::state_store) does,
    /// for a link built elsewhere (a config loader). Takes effect at the
    /// link's first start; returns `false` (and changes nothing) if the link
    /// already has a store.
    pub fn use_state_store(
        &self,
        store: std::sync::Arc<dyn crate::checkpoint::StateStore>,
    ) -> bool {
        self.inner.store.set(store).is_ok()
    }

    /// Puts the inlets, outlets and transfer index back where the last
    /// checkpoint left them: once, at the link's first start. A checkpoint
    /// that cannot be read, or a node that refuses its state, fails the
    /// start (the link is not silently started from scratch).
    pub(super) async fn restore_checkpoint(&self) -> Result<(), NodeError> {
        let inner = &*self.inner;
        let Some(store) = inner.store.get() else {
            return Ok(());
        };
        if inner.restored.load(Ordering::SeqCst) {
            return Ok(());
        }
        let fail = |node: &str, kind: NodeKind, failure: Failure| {
            self.hook_error(kind, node, "restore", failure)
        };
        let checkpoint = store
            .load(&inner.name)
            .await
            .map_err(|e| fail("checkpoint", NodeKind::StateStore, Failure::Error(e)))?;
        if let Some(checkpoint) = &checkpoint {
            for (name, state) in &checkpoint.inlets {
                let handle = self.inlets().into_iter().find(|h| h.name() == name);
                match handle {
                    Some(h) => h
                        .restore(state.clone())
                        .await
                        .map_err(|f| fail(name, NodeKind::Inlet, f))?,
                    // A node removed from the config since: its state is
                    // dropped with it.
                    None => tracing::info!(
                        link = %inner.name,
                        inlet = %name,
                        "the checkpoint holds the state of an inlet the link no longer has; dropped"
                    ),
                }
            }
            for (name, state) in &checkpoint.outlets {
                let handle = self.outlets().into_iter().find(|h| h.name() == name);
                match handle {
                    Some(h) => h
                        .restore(state.clone())
                        .await
                        .map_err(|f| fail(name, NodeKind::Outlet, f))?,
                    None => tracing::info!(
                        link = %inner.name,
                        outlet = %name,
                        "the checkpoint holds the state of an outlet the link no longer has; dropped"
                    ),
                }
            }
            inner
                .next_index
                .fetch_max(checkpoint.next_index, Ordering::SeqCst);
            tracing::info!(
                link = %inner.name,
                next_index = checkpoint.next_index,
                inlets = checkpoint.inlets.len(),
                outlets = checkpoint.outlets.len(),
                "resuming from the link's checkpoint"
            );
        }
        *lock(&inner.checkpoint) = checkpoint;
        inner.restored.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// After a committed transfer whose index was `index`: writes a new
    /// checkpoint if a node's state changed or the index lease ran out. A
    /// store that fails is logged and counted; the transfer stays
    /// delivered, and the next commit tries again.
    pub(super) async fn write_checkpoint(&self, index: u64) {
        let inner = &*self.inner;
        let Some(store) = inner.store.get() else {
            return;
        };
        let mut next = Checkpoint::new(0);
        for handle in self.inlets() {
            if let Some(state) = handle.snapshot().await {
                next.inlets.insert(handle.name().to_owned(), state);
            }
        }
        for handle in self.outlets() {
            if let Some(state) = handle.snapshot().await {
                next.outlets.insert(handle.name().to_owned(), state);
            }
        }
        let lease = {
            let last = lock(&inner.checkpoint);
            match &*last {
                Some(last)
                    if index < last.next_index
                        && last.inlets == next.inlets
                        && last.outlets == next.outlets =>
                {
                    return;
                }
                Some(last) if index < last.next_index => last.next_index,
                _ => index + 1 + INDEX_LEASE,
            }
        };
        next.next_index = lease;
        match store.save(&inner.name, &next).await {
            Ok(()) => *lock(&inner.checkpoint) = Some(next),
            Err(e) => {
                let e = self.hook_error(
                    NodeKind::StateStore,
                    "checkpoint",
                    "checkpoint",
                    Failure::Error(e),
                );
                tracing::error!(link = %inner.name, "{e}; the next committed transfer tries again");
                inner.counters.errors.fetch_add(1, Ordering::Relaxed);
                inner.counters.set_last_error(e.to_string());
            }
        }
    }
}
