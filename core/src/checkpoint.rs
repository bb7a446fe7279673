//! Checkpoints: what a link resumes from after a restart, and the
//! [`StateStore`] that keeps them.
//!
//! A link with a store ([`LinkBuilder::state_store`]) restores its last
//! [`Checkpoint`] when it starts, before it pulls: each inlet's and
//! outlet's resume state ([`Inlet::restore`], [`Outlet::restore`]), each
//! stateful processor's state ([`Processor::restore`]: operators, what
//! buffers hold) and its transfer index, so [`Update`](crate::Update)'s `tag.index` stays unique
//! across restarts. After every committed transfer (every outlet accepted
//! every record) it writes a new checkpoint when anything in it changed.
//! A transfer that failed writes nothing: after a crash the link resumes
//! from the last committed transfer, and reads again what came after it
//! (at least once).
//!
//! The transfer index is written ahead in leases of [`INDEX_LEASE`]: a
//! link whose nodes keep no state writes once per lease rather than after
//! every transfer, and a restart begins at the end of the lease, so no
//! index is used twice (some are skipped).
//!
//! [`LinkBuilder::state_store`]: crate::LinkBuilder::state_store
//! [`Inlet::restore`]: crate::Inlet::restore
//! [`Outlet::restore`]: crate::Outlet::restore
//! [`Processor::restore`]: crate::Processor::restore

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::BoxError;

/// The checkpoint format this version writes; a store holding a newer one
/// is refused rather than misread.
pub const CHECKPOINT_VERSION: u32 = 1;

/// How many transfer indexes one checkpoint reserves ahead.
pub const INDEX_LEASE: u64 = 1_000;

/// What one link resumes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The format ([`CHECKPOINT_VERSION`]).
    pub version: u32,
    /// The first transfer index a resumed link may use.
    pub next_index: u64,
    /// Each inlet's resume state, by inlet name.
    #[serde(default)]
    pub inlets: BTreeMap<String, Value>,
    /// Each outlet's resume state, by outlet name.
    #[serde(default)]
    pub outlets: BTreeMap<String, Value>,
    /// Each stateful processor's state (operators' keys and windows, what
    /// a buffer holds), by processor name (`name#2` for the second of a
    /// name).
    #[serde(default)]
    pub processors: BTreeMap<String, Value>,
}

impl Checkpoint {
    /// An empty checkpoint of this version.
    pub fn new(next_index: u64) -> Self {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            next_index,
            inlets: BTreeMap::new(),
            outlets: BTreeMap::new(),
            processors: BTreeMap::new(),
        }
    }

    /// The checkpoint as the bytes a store keeps (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a checkpoint back, refusing one that is not a checkpoint or is
    /// of a newer format, with what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not a checkpoint ({e})"))?;
        let version = value.get("version").and_then(Value::as_u64);
        match version {
            Some(v) if v > u64::from(CHECKPOINT_VERSION) => {
                return Err(format!(
                    "written by a newer databay (checkpoint format {v}; this one reads up to \
                     {CHECKPOINT_VERSION})"
                ));
            }
            Some(_) => {}
            None => return Err("not a checkpoint (no `version`)".to_owned()),
        }
        serde_json::from_value(value).map_err(|e| format!("not a checkpoint ({e})"))
    }
}

/// Where links keep their checkpoints. [`save`](StateStore::save) returns
/// only once the checkpoint is durable (fsync'd, or committed in a
/// database): the link counts on it to survive a crash.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// The last checkpoint saved for `link`, if any. A store that cannot
    /// read it (corrupt, foreign, newer) returns an error saying so: the
    /// link must not silently start from scratch.
    async fn load(&self, link: &str) -> Result<Option<Checkpoint>, BoxError>;

    /// Saves `checkpoint` as `link`'s latest, durably.
    async fn save(&self, link: &str, checkpoint: &Checkpoint) -> Result<(), BoxError>;

    /// Forgets `link`'s checkpoint (its next start begins afresh).
    async fn remove(&self, link: &str) -> Result<(), BoxError>;

    /// Where the store is, for an outlet that can write checkpoints in its
    /// own transactions ([`TransactionalOutlet`]): a database's address as
    /// both spell it. The default, `None`, says no outlet can.
    ///
    /// [`TransactionalOutlet`]: crate::transaction::TransactionalOutlet
    fn location(&self) -> Option<String> {
        None
    }
}

/// A [`StateStore`] in memory, for tests and for an in-process restart:
/// nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    checkpoints: Mutex<HashMap<String, Vec<u8>>>,
    saves: std::sync::atomic::AtomicUsize,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many checkpoints were saved, in all.
    pub fn saves(&self) -> usize {
        self.saves.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Puts raw bytes in the place of `link`'s checkpoint (to test how a
    /// link meets a corrupt one).
    pub fn put_raw(&self, link: &str, bytes: Vec<u8>) {
        crate::sync::lock(&self.checkpoints).insert(link.to_owned(), bytes);
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn load(&self, link: &str) -> Result<Option<Checkpoint>, BoxError> {
        let bytes = crate::sync::lock(&self.checkpoints).get(link).cloned();
        match bytes {
            None => Ok(None),
            Some(bytes) => Checkpoint::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| format!("the checkpoint of link `{link}` is unreadable: {e}").into()),
        }
    }

    async fn save(&self, link: &str, checkpoint: &Checkpoint) -> Result<(), BoxError> {
        crate::sync::lock(&self.checkpoints).insert(link.to_owned(), checkpoint.to_bytes());
        self.saves.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    async fn remove(&self, link: &str) -> Result<(), BoxError> {
        crate::sync::lock(&self.checkpoints).remove(link);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_checkpoint_round_trips_and_a_newer_or_foreign_one_is_refused() {
        let mut c = Checkpoint::new(7);
        c.inlets.insert("file".into(), json!({"offset": 10}));
        assert_eq!(Checkpoint::from_bytes(&c.to_bytes()).unwrap(), c);
        let newer = br#"{"version": 99, "next_index": 0}"#;
        assert!(
            Checkpoint::from_bytes(newer)
                .unwrap_err()
                .contains("newer databay")
        );
        let foreign = br#"{"hello": "world"}"#;
        assert!(
            Checkpoint::from_bytes(foreign)
                .unwrap_err()
                .contains("no `version`")
        );
        assert!(
            Checkpoint::from_bytes(b"\x00\x01garbage")
                .unwrap_err()
                .contains("not a checkpoint")
        );
    }
}
