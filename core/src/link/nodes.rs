//! Adding and removing a link's inlets and outlets, also while it runs:
//! a node joining a started link is started first, one leaving it is shut
//! down.

use super::{InletSlot, Link, OutletSlot};
use crate::error::{NodeError, NodeKind};
use crate::inlet::InletHandle;
use crate::outlet::OutletHandle;
use crate::sync::lock;

impl Link {
    /// Adds an inlet; if the link is running, the inlet is started first.
    pub async fn add_inlet(&self, inlet: impl Into<InletHandle>) -> Result<(), NodeError> {
        let inlet = inlet.into();
        let started = self.inner.started.lock().await;
        if *started {
            inlet
                .start()
                .await
                .map_err(|f| self.hook_error(NodeKind::Inlet, inlet.name(), "on_start", f))?;
        }
        lock(&self.inner.inlets).push(InletSlot::new(inlet));
        self.inner.control.wake.notify_one();
        Ok(())
    }

    /// Removes an inlet (matched by instance); if the link is running, the
    /// inlet is shut down (when no other link uses it). Returns whether it
    /// was there.
    pub async fn remove_inlet(&self, inlet: &InletHandle) -> Result<bool, NodeError> {
        let started = self.inner.started.lock().await;
        let removed = {
            let mut slots = lock(&self.inner.inlets);
            let before = slots.len();
            slots.retain(|s| !s.handle.same_as(inlet));
            before != slots.len()
        };
        if removed && *started {
            inlet
                .shutdown()
                .await
                .map_err(|f| self.hook_error(NodeKind::Inlet, inlet.name(), "on_shutdown", f))?;
        }
        Ok(removed)
    }

    /// Adds an outlet; if the link is running, the outlet is started first.
    pub async fn add_outlet(&self, outlet: impl Into<OutletHandle>) -> Result<(), NodeError> {
        let outlet = outlet.into();
        let started = self.inner.started.lock().await;
        if *started {
            outlet
                .start()
                .await
                .map_err(|f| self.hook_error(NodeKind::Outlet, outlet.name(), "on_start", f))?;
        }
        lock(&self.inner.outlets).push(OutletSlot::new(outlet, super::Role::Fanout));
        self.inner.control.wake.notify_one();
        Ok(())
    }

    /// Removes an outlet (matched by instance), shutting it down if the link
    /// is running. Returns whether it was there.
    pub async fn remove_outlet(&self, outlet: &OutletHandle) -> Result<bool, NodeError> {
        let started = self.inner.started.lock().await;
        let removed = {
            let mut outlets = lock(&self.inner.outlets);
            let before = outlets.len();
            outlets.retain(|o| !o.handle.same_as(outlet));
            before != outlets.len()
        };
        if removed && *started {
            outlet
                .shutdown()
                .await
                .map_err(|f| self.hook_error(NodeKind::Outlet, outlet.name(), "on_shutdown", f))?;
        }
        Ok(removed)
    }
}
