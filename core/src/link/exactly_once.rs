//! Exactly once into the outlet whose database holds the link's
//! checkpoints (see [`crate::transaction`]): claiming it at the first
//! start, committing a transfer's records with its checkpoint, and reading
//! the checkpoint back after a commit whose outcome is unknown.

use std::sync::atomic::Ordering;

use super::{Link, Pipeline, Role};
use crate::checkpoint::StateStore;
use crate::error::{Failure, NodeError, NodeKind};
use crate::outlet::OutletHandle;
use crate::sync::lock;
use crate::update::Update;

impl Link {
    /// The outlet that commits this link's checkpoints, if one does.
    pub(super) fn transactional_outlet(&self) -> Option<OutletHandle> {
        lock(&self.inner.exactly_once).clone()
    }

    /// The name of the outlet whose records this link writes exactly once,
    /// with its checkpoint in the same transaction; `None` if none does.
    pub fn exactly_once_outlet(&self) -> Option<String> {
        lock(&self.inner.exactly_once)
            .as_ref()
            .map(|h| h.name().to_owned())
    }

    /// At the first start: the first outlet (not the dead-letter one)
    /// writing into the database that holds `store` commits the link's
    /// checkpoints from now on.
    pub(super) async fn claim_transactional_outlet(&self, store: &dyn StateStore) {
        let inner = &*self.inner;
        let Some(location) = store.location() else {
            return;
        };
        let candidates: Vec<OutletHandle> = lock(&inner.outlets)
            .iter()
            .filter(|o| o.role != Role::DeadLetter)
            .map(|o| o.handle.clone())
            .collect();
        for handle in candidates {
            let Some(at) = handle.transaction_location().await else {
                continue;
            };
            if at != location {
                tracing::info!(
                    link = %inner.name,
                    outlet = %handle.name(),
                    "outlet `{}` writes to {at} and the checkpoints are in {location}: \
                     its records are written at least once",
                    handle.name()
                );
                continue;
            }
            if !handle.claim_transactions(&inner.name) {
                tracing::info!(
                    link = %inner.name,
                    outlet = %handle.name(),
                    "outlet `{}` commits another link's checkpoints: \
                     this link's records are written at least once",
                    handle.name()
                );
                continue;
            }
            tracing::info!(
                link = %inner.name,
                outlet = %handle.name(),
                "exactly once into outlet `{}`: its records and the link's checkpoint \
                 commit in one transaction",
                handle.name()
            );
            *lock(&inner.exactly_once) = Some(handle);
            return;
        }
    }

    /// Once started, a link that commits its checkpoints through an
    /// outlet and has none saved yet saves its starting state: what
    /// [`Link::resync`] goes back to if its first commit's outcome is
    /// unknown and it did not happen.
    pub(super) async fn save_initial_checkpoint(&self) {
        let inner = &*self.inner;
        if lock(&inner.exactly_once).is_none() || lock(&inner.checkpoint).is_some() {
            return;
        }
        let processors = lock(&inner.committed_processors)
            .clone()
            .unwrap_or_default();
        let index = inner.next_index.load(Ordering::SeqCst);
        let (start, _) = self.next_checkpoint(index, processors).await;
        self.save_checkpoint(start).await;
    }

    /// Commits a transfer whose records every outlet accepted: the inlets
    /// that keep resume state commit (in memory), then `outlet` commits the
    /// records it holds with the new checkpoint, then the inlets that let
    /// go of data at its source commit. If `outlet` held nothing (no
    /// records for it), the checkpoint is saved in the store as usual. A
    /// failed commit rolls those inlets back and makes the link read its
    /// checkpoint back before its next transfer ([`Link::resync`]).
    pub(super) async fn commit_with_outlet(
        &self,
        outlet: &OutletHandle,
        update: &Update,
        processors: std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<(), NodeError> {
        let inner = &*self.inner;
        let (stateful, letting_go) = self.take_unsettled_split().await;
        self.settle_these(update, true, stateful).await;
        let (next, changed) = self
            .next_checkpoint(update.index(), processors.clone())
            .await;
        match outlet
            .commit_held(update, &inner.name, &next, inner.outlet_timeout)
            .await
        {
            Ok(true) => {
                *lock(&inner.committed_processors) = Some(processors);
                *lock(&inner.checkpoint) = Some(next);
            }
            Ok(false) => {
                *lock(&inner.committed_processors) = Some(processors);
                if changed {
                    self.save_checkpoint(next).await;
                }
            }
            Err(failure) => {
                self.settle_these(update, false, letting_go).await;
                inner.resync.store(true, Ordering::SeqCst);
                let failure = Failure::Error(
                    format!(
                        "committing the transfer's records with the link's checkpoint: {failure}; \
                         the link reads its checkpoint back before it goes on"
                    )
                    .into(),
                );
                return Err(self.node_error(update, NodeKind::Outlet, outlet.name(), failure));
            }
        }
        self.settle_these(update, true, letting_go).await;
        Ok(())
    }

    /// After a commit whose outcome is unknown: puts the inlets, outlets
    /// and processors back at the checkpoint the store holds, whichever
    /// one that is (the commit's, if it happened, or the one before).
    /// Until it succeeds every transfer fails with its error, and no input
    /// is read: nothing is lost or repeated meanwhile.
    pub(super) async fn resync(&self, pipeline: &mut Pipeline) -> Result<(), NodeError> {
        let inner = &*self.inner;
        let Some(store) = inner.store.get() else {
            inner.resync.store(false, Ordering::SeqCst);
            return Ok(());
        };
        let fail = |kind: NodeKind, node: &str, failure: Failure| {
            self.hook_error(kind, node, "resync", failure)
        };
        let checkpoint = store
            .load(&inner.name)
            .await
            .map_err(|e| fail(NodeKind::StateStore, "checkpoint", Failure::Error(e)))?;
        for handle in self.inlets() {
            if handle.snapshot().await.is_none() {
                continue;
            }
            let state = checkpoint
                .as_ref()
                .and_then(|c| c.inlets.get(handle.name()));
            let Some(state) = state else {
                return Err(fail(
                    NodeKind::Inlet,
                    handle.name(),
                    Failure::Error(
                        "whether the last transfer was committed is unknown, and the store \
                         holds no position for this inlet to go back to (its starting \
                         checkpoint could not be saved); restart the daemon to resume from \
                         the store"
                            .into(),
                    ),
                ));
            };
            handle
                .restore(state.clone())
                .await
                .map_err(|f| fail(NodeKind::Inlet, handle.name(), f))?;
        }
        if let Some(checkpoint) = &checkpoint {
            for handle in self.outlets() {
                if let Some(state) = checkpoint.outlets.get(handle.name()) {
                    handle
                        .restore(state.clone())
                        .await
                        .map_err(|f| fail(NodeKind::Outlet, handle.name(), f))?;
                }
            }
            self.restore_processors(pipeline, &checkpoint.processors, "resync")?;
            inner
                .next_index
                .fetch_max(checkpoint.next_index, Ordering::SeqCst);
        }
        *lock(&inner.committed_processors) = self.processor_snapshots(pipeline);
        tracing::info!(
            link = %inner.name,
            "read the link's checkpoint back from the store after an uncertain commit; going on from it"
        );
        *lock(&inner.checkpoint) = checkpoint;
        inner.resync.store(false, Ordering::SeqCst);
        Ok(())
    }
}
