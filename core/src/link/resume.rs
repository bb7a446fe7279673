//! A link's resume state, its inlets' and its outlets': read it between
//! transfers, put it back before the link starts.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Link;
use crate::error::{NodeError, NodeKind};
use crate::sync::lock;

impl Link {
    /// The resume state of every inlet that keeps one
    /// ([`Inlet::snapshot`]), by inlet name: where each would carry on
    /// after what the link has committed. Waits for a running transfer to
    /// end, so the states belong together.
    ///
    /// [`Inlet::snapshot`]: crate::Inlet::snapshot
    pub async fn inlet_snapshots(&self) -> BTreeMap<String, Value> {
        let _pipeline = self.inner.pipeline.lock().await;
        self.inlet_states().await
    }

    /// [`inlet_snapshots`](Link::inlet_snapshots) for a caller that holds
    /// the pipeline already (the end of a transfer).
    pub(super) async fn inlet_states(&self) -> BTreeMap<String, Value> {
        let mut states = BTreeMap::new();
        for handle in self.inlets() {
            if let Some(state) = handle.snapshot().await {
                states.insert(handle.name().to_owned(), state);
            }
        }
        states
    }

    /// [`outlet_snapshots`](Link::outlet_snapshots) for a caller that holds
    /// the pipeline already.
    pub(super) async fn outlet_states(&self) -> BTreeMap<String, Value> {
        let mut states = BTreeMap::new();
        for handle in self.outlets() {
            if let Some(state) = handle.snapshot().await {
                states.insert(handle.name().to_owned(), state);
            }
        }
        states
    }

    /// Puts each inlet named in `states` back at its state
    /// ([`Inlet::restore`]), before the link starts. A name that is no
    /// inlet of the link is an error, and so is an inlet that refuses its
    /// state; inlets not named start afresh.
    ///
    /// [`Inlet::restore`]: crate::Inlet::restore
    pub async fn restore_inlets(&self, states: BTreeMap<String, Value>) -> Result<(), NodeError> {
        let _pipeline = self.inner.pipeline.lock().await;
        for (name, state) in states {
            let handle = lock(&self.inner.inlets)
                .iter()
                .find(|s| s.handle.name() == name)
                .map(|s| s.handle.clone());
            let Some(handle) = handle else {
                return Err(self.hook_error(
                    NodeKind::Inlet,
                    &name,
                    "restore",
                    crate::error::Failure::Error("the link has no inlet of this name".into()),
                ));
            };
            handle
                .restore(state)
                .await
                .map_err(|f| self.hook_error(NodeKind::Inlet, &name, "restore", f))?;
        }
        Ok(())
    }
}

impl Link {
    /// The resume state of every outlet that keeps one
    /// ([`Outlet::snapshot`]), by outlet name, read between transfers.
    ///
    /// [`Outlet::snapshot`]: crate::Outlet::snapshot
    pub async fn outlet_snapshots(&self) -> BTreeMap<String, Value> {
        let _pipeline = self.inner.pipeline.lock().await;
        self.outlet_states().await
    }

    /// Puts each outlet named in `states` back at its state
    /// ([`Outlet::restore`]), before the link starts; as
    /// [`restore_inlets`](Link::restore_inlets).
    ///
    /// [`Outlet::restore`]: crate::Outlet::restore
    pub async fn restore_outlets(&self, states: BTreeMap<String, Value>) -> Result<(), NodeError> {
        let _pipeline = self.inner.pipeline.lock().await;
        for (name, state) in states {
            let handle = self.outlets().into_iter().find(|h| h.name() == name);
            let Some(handle) = handle else {
                return Err(self.hook_error(
                    NodeKind::Outlet,
                    &name,
                    "restore",
                    crate::error::Failure::Error("the link has no outlet of this name".into()),
                ));
            };
            handle
                .restore(state)
                .await
                .map_err(|f| self.hook_error(NodeKind::Outlet, &name, "restore", f))?;
        }
        Ok(())
    }
}
