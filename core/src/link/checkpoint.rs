//! Restoring a link's checkpoint when it starts, and writing one after a
//! committed transfer (see [`crate::checkpoint`]).

use std::sync::atomic::Ordering;

use super::{Link, Pipeline};
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
            if !checkpoint.processors.is_empty() {
                let mut pipeline = inner.pipeline.lock().await;
                self.restore_processors(&mut pipeline, &checkpoint.processors, "restore")?;
            }
            inner
                .next_index
                .fetch_max(checkpoint.next_index, Ordering::SeqCst);
            tracing::info!(
                link = %inner.name,
                next_index = checkpoint.next_index,
                inlets = checkpoint.inlets.len(),
                outlets = checkpoint.outlets.len(),
                processors = checkpoint.processors.len(),
                "resuming from the link's checkpoint"
            );
        }
        // What a failed transfer rolls the processors back to: their state
        // as restored (or at the start, with nothing saved yet).
        let processors = {
            let pipeline = inner.pipeline.lock().await;
            self.processor_snapshots(&pipeline)
        };
        *lock(&inner.committed_processors) = processors;
        *lock(&inner.checkpoint) = checkpoint;
        self.claim_transactional_outlet(store.as_ref()).await;
        inner.restored.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Puts each processor named in `states` back at its state; a name the
    /// link no longer has is dropped (logged), a processor that refuses
    /// its state fails (`phase` names when, for the error).
    pub(super) fn restore_processors(
        &self,
        pipeline: &mut Pipeline,
        states: &std::collections::BTreeMap<String, serde_json::Value>,
        phase: &str,
    ) -> Result<(), NodeError> {
        let keys = stage_keys(pipeline);
        for (key, state) in states {
            let Some(i) = keys.iter().position(|k| k == key) else {
                tracing::info!(
                    link = %self.inner.name,
                    processor = %key,
                    "the checkpoint holds the state of a processor the link no longer has; dropped"
                );
                continue;
            };
            let stage = &mut pipeline.processors[i];
            let state = state.clone();
            crate::node::guarded_sync(|| stage.processor.restore(state))
                .map_err(|f| self.hook_error(NodeKind::Processor, key, phase, f))?;
        }
        Ok(())
    }

    /// After a failed transfer of a link with a state store: puts each
    /// stateful processor back to its state in the last checkpoint, so
    /// that what it took in or released during the transfer (a buffer's
    /// records) is neither lost nor counted twice when the inlets read the
    /// same records again. The state is the one taken after the last
    /// committed transfer, even if saving that checkpoint failed. A
    /// processor that refuses is logged and counted.
    pub(super) fn roll_back_processors(&self, pipeline: &mut Pipeline) {
        let inner = &*self.inner;
        let Some(saved) = lock(&inner.committed_processors).clone() else {
            return;
        };
        for (key, stage) in stage_keys(pipeline)
            .into_iter()
            .zip(&mut pipeline.processors)
        {
            let Some(state) = saved.get(&key) else {
                continue;
            };
            let state = state.clone();
            if let Err(failure) = crate::node::guarded_sync(|| stage.processor.restore(state)) {
                let e = self.hook_error(NodeKind::Processor, &key, "rollback", failure);
                tracing::error!(link = %inner.name, "{e}; it keeps the failed transfer's state");
                inner.counters.errors.fetch_add(1, Ordering::Relaxed);
                inner.counters.set_last_error(e.to_string());
            }
        }
    }

    /// Each stateful processor's snapshot, by key; `None` if one failed
    /// (logged and counted: a checkpoint without it would lose its state).
    pub(super) fn processor_snapshots(
        &self,
        pipeline: &Pipeline,
    ) -> Option<std::collections::BTreeMap<String, serde_json::Value>> {
        let inner = &*self.inner;
        inner.store.get()?;
        let mut states = std::collections::BTreeMap::new();
        for (key, stage) in stage_keys(pipeline).into_iter().zip(&pipeline.processors) {
            match crate::node::guarded_sync(|| stage.processor.snapshot()) {
                Ok(Some(state)) => {
                    states.insert(key, state);
                }
                Ok(None) => {}
                Err(failure) => {
                    let e = self.hook_error(NodeKind::Processor, &key, "checkpoint", failure);
                    tracing::error!(link = %inner.name, "{e}; no checkpoint written");
                    inner.counters.errors.fetch_add(1, Ordering::Relaxed);
                    inner.counters.set_last_error(e.to_string());
                    return None;
                }
            }
        }
        Some(states)
    }

    /// After a committed transfer whose index was `index`: writes a new
    /// checkpoint (with the processors' states, from
    /// [`processor_snapshots`](Link::processor_snapshots)) if something in
    /// it changed or the index lease ran out. A store that fails is logged
    /// and counted; the transfer stays delivered, and the next commit tries
    /// again.
    pub(super) async fn write_checkpoint(
        &self,
        index: u64,
        processors: std::collections::BTreeMap<String, serde_json::Value>,
        due: bool,
    ) {
        let inner = &*self.inner;
        if inner.store.get().is_none() {
            return;
        }
        *lock(&inner.committed_processors) = Some(processors.clone());
        let (next, changed) = self.next_checkpoint(index, processors).await;
        if !due {
            // Saved by the next transfer due, or at shutdown.
            if changed {
                *lock(&inner.checkpoint_owed) = Some(next);
            }
            return;
        }
        *lock(&inner.checkpoint_owed) = None;
        if changed {
            self.save_checkpoint(next).await;
        }
    }

    /// At most one checkpoint is saved in this while
    /// ([`LinkBuilder::checkpoint_every`](crate::LinkBuilder::checkpoint_every);
    /// zero: after every committed transfer).
    pub fn checkpoint_every(&self) -> std::time::Duration {
        self.inner.checkpoint_every
    }

    /// Whether the transfer starting now saves its checkpoint (if it
    /// commits): the link has a store, and its
    /// [`checkpoint_every`](crate::LinkBuilder::checkpoint_every) passed
    /// since the last one was saved.
    pub(super) fn checkpoint_due(&self) -> bool {
        let inner = &*self.inner;
        if inner.store.get().is_none() {
            return false;
        }
        if inner.checkpoint_every.is_zero() {
            return true;
        }
        lock(&inner.checkpoint_saved_at).is_none_or(|at| {
            crate::clock::now().saturating_duration_since(at) >= inner.checkpoint_every
        })
    }

    /// At shutdown: saves the checkpoint a committed transfer left unsaved
    /// ([`checkpoint_every`](crate::LinkBuilder::checkpoint_every)), once
    /// every outlet that defers its sync has synced. Not while a transfer
    /// runs (one abandoned after the grace): it would save its own.
    pub(super) async fn save_owed_checkpoint(&self, errors: &mut Vec<NodeError>) {
        let inner = &*self.inner;
        let Ok(_pipeline) = inner.pipeline.try_lock() else {
            return;
        };
        let Some(owed) = lock(&inner.checkpoint_owed).take() else {
            return;
        };
        for outlet in self.outlets() {
            if let Err(f) = outlet.sync(inner.outlet_timeout).await {
                let e = self.hook_error(NodeKind::Outlet, outlet.name(), "sync", f);
                tracing::error!(
                    link = %inner.name,
                    "{e}; the last checkpoint is not saved (a restart reads again what came after the one before)"
                );
                errors.push(e);
                return;
            }
        }
        self.save_checkpoint(owed).await;
    }

    /// The checkpoint after the committed transfer `index`, and whether it
    /// must be saved: something in it changed since the last one, or the
    /// index lease ran out.
    pub(super) async fn next_checkpoint(
        &self,
        index: u64,
        processors: std::collections::BTreeMap<String, serde_json::Value>,
    ) -> (Checkpoint, bool) {
        let inner = &*self.inner;
        let mut next = Checkpoint::new(0);
        next.processors = processors;
        next.inlets = self.inlet_states().await;
        next.outlets = self.outlet_states().await;
        let last = lock(&inner.checkpoint);
        let (lease, changed) = match &*last {
            Some(last) if index < last.next_index => (
                last.next_index,
                last.inlets != next.inlets
                    || last.outlets != next.outlets
                    || last.processors != next.processors,
            ),
            _ => (index + 1 + INDEX_LEASE, true),
        };
        next.next_index = lease;
        (next, changed)
    }

    /// Saves `next` in the link's store. A store that fails is logged and
    /// counted; the next committed transfer tries again.
    pub(super) async fn save_checkpoint(&self, next: Checkpoint) {
        let inner = &*self.inner;
        let Some(store) = inner.store.get() else {
            return;
        };
        match store.save(&inner.name, &next).await {
            Ok(()) => {
                *lock(&inner.checkpoint) = Some(next);
                *lock(&inner.checkpoint_saved_at) = Some(crate::clock::now());
            }
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

/// Each processor's key in a checkpoint: its name, `name#2` for the second
/// of the same name, and so on.
fn stage_keys(pipeline: &Pipeline) -> Vec<String> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    pipeline
        .processors
        .iter()
        .map(|stage| {
            let n = seen.entry(stage.name.as_str()).or_insert(0);
            *n += 1;
            if *n == 1 {
                stage.name.clone()
            } else {
                format!("{}#{n}", stage.name)
            }
        })
        .collect()
}
