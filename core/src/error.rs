//! Errors as values: every failure names the link, the update and the node.

use std::fmt;
use std::time::Duration;

/// The error type plugin code returns: anything that is an error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of node of a link failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeKind {
    /// An inlet.
    Inlet,
    /// An outlet.
    Outlet,
    /// A link-level processor.
    Processor,
    /// A processor owned by an outlet.
    OutletProcessor,
    /// A grouper.
    Grouper,
    /// The link's state store (loading or saving a checkpoint).
    StateStore,
    /// The link's dead-letter outlet ([`crate::routing`]).
    DeadLetter,
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeKind::Inlet => "inlet",
            NodeKind::Outlet => "outlet",
            NodeKind::Processor => "processor",
            NodeKind::OutletProcessor => "outlet processor",
            NodeKind::Grouper => "grouper",
            NodeKind::StateStore => "state store",
            NodeKind::DeadLetter => "dead-letter outlet",
        })
    }
}

/// How a node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The node returned an error.
    #[error("{0}")]
    Error(#[source] BoxError),
    /// The node panicked; the panic was caught.
    #[error("panicked: {0}")]
    Panic(String),
    /// The node did not finish within its timeout.
    #[error("timed out after {}", humanize(*.0))]
    Timeout(Duration),
}

/// The failure of one node during one transfer (or a start/shutdown hook).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub struct NodeError {
    /// Name of the link.
    pub link: String,
    /// The update (`tag.index`), or the phase (`on_start`) outside a transfer.
    pub update: String,
    /// What kind of node failed.
    pub kind: NodeKind,
    /// The node's name.
    pub node: String,
    /// What went wrong.
    #[source]
    pub failure: Failure,
}

impl NodeError {
    /// The failure of `node` (a `kind`) of `link` during `update`, the
    /// transfer's `tag.index` or a hook's phase (`on_start`, `on_shutdown`).
    pub fn new(
        link: impl Into<String>,
        update: impl Into<String>,
        kind: NodeKind,
        node: impl Into<String>,
        failure: Failure,
    ) -> Self {
        NodeError {
            link: link.into(),
            update: update.into(),
            kind,
            node: node.into(),
            failure,
        }
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hooks are named by their phase; a transfer's update always ends
        // in its index, so a link called `on_call` is not mistaken for one.
        if matches!(
            self.update.as_str(),
            "on_start" | "on_shutdown" | "restore" | "checkpoint"
        ) {
            // A lifecycle hook, not a transfer.
            write!(
                f,
                "link `{}`, {} `{}`, {}: {}",
                self.link, self.kind, self.node, self.update, self.failure
            )
        } else {
            write!(
                f,
                "link `{}`, update {}, {} `{}`: {}",
                self.link, self.update, self.kind, self.node, self.failure
            )
        }
    }
}

/// A transfer that failed: the errors that were not ignored. Nothing was
/// committed for it.
#[derive(Debug)]
#[non_exhaustive]
pub struct TransferError {
    /// Name of the link.
    pub link: String,
    /// The failed update.
    pub update: String,
    /// Every node error of the transfer, in the order they happened.
    pub errors: Vec<NodeError>,
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transfer {} of link `{}` failed", self.update, self.link)?;
        if let Some(first) = self.errors.first() {
            write!(f, ": {} `{}`: {}", first.kind, first.node, first.failure)?;
        }
        if self.errors.len() > 1 {
            write!(f, " (and {} more)", self.errors.len() - 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for TransferError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.errors
            .first()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Errors of the planner and of link management.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlannerError {
    /// A link failed and neither it nor the planner ignores exceptions; the
    /// planner shut down gracefully.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// An `on_start` or `on_shutdown` hook failed.
    #[error(transparent)]
    Hook(#[from] NodeError),
    /// A link with this name is already governed by the planner.
    #[error("a link named `{0}` is already in the planner")]
    DuplicateLink(String),
    /// No link with this name is governed by the planner.
    #[error("no link named `{0}` in the planner")]
    MissingLink(String),
    /// `start` was called on a planner that is already running.
    #[error("the planner is already running")]
    AlreadyRunning,
}

/// Formats a duration the way configs spell them (`500ms`, `5s`, `1m 30s`).
pub(crate) fn humanize(d: Duration) -> String {
    if d.subsec_nanos() == 0 && d.as_secs() > 0 {
        let s = d.as_secs();
        match (s / 3600, (s % 3600) / 60, s % 60) {
            (0, 0, s) => format!("{s}s"),
            (0, m, 0) => format!("{m}m"),
            (0, m, s) => format!("{m}m {s}s"),
            (h, 0, 0) => format!("{h}h"),
            _ => format!("{s}s"),
        }
    } else if d.subsec_nanos().is_multiple_of(1_000_000) && d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{d:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_error_names_link_update_and_node() {
        let e = NodeError {
            link: "http_to_mongo".into(),
            update: "http_to_mongo.3".into(),
            kind: NodeKind::Inlet,
            node: "HttpInlet".into(),
            failure: Failure::Timeout(Duration::from_secs(5)),
        };
        assert_eq!(
            e.to_string(),
            "link `http_to_mongo`, update http_to_mongo.3, inlet `HttpInlet`: timed out after 5s"
        );
    }

    #[test]
    fn humanize_durations() {
        assert_eq!(humanize(Duration::from_millis(250)), "250ms");
        assert_eq!(humanize(Duration::from_secs(90)), "1m 30s");
        assert_eq!(humanize(Duration::from_secs(7200)), "2h");
    }
}
