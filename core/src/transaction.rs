//! Exactly once into a database: an outlet whose database also holds the
//! link's checkpoints writes a transfer's records and the checkpoint in one
//! transaction.
//!
//! An outlet opts in by returning itself from
//! [`Outlet::transactional`](crate::Outlet::transactional). When a link
//! with a [`StateStore`](crate::checkpoint::StateStore) starts, it looks
//! for an outlet whose [`location`](TransactionalOutlet::location) is the
//! store's ([`StateStore::location`](crate::checkpoint::StateStore::location))
//! and claims it. From then on, each transfer:
//!
//! 1. [`hold`](TransactionalOutlet::hold)s the outlet: its pushes for that
//!    transfer write into one transaction left open;
//! 2. pushes as usual (to every outlet, dead letters included);
//! 3. if everything was accepted, [`commit`](TransactionalOutlet::commit)s
//!    the transaction with the link's new checkpoint in it; otherwise
//!    [`abort`](TransactionalOutlet::abort)s it.
//!
//! A crash before the commit loses the transaction and the checkpoint
//! together: the restarted link reads the same records again and writes
//! them once. A commit whose outcome is unknown (the connection dropped
//! while committing) makes the link read its checkpoint back from the store
//! before its next transfer, so it carries on from whichever state the
//! database holds. Other outlets of the link keep their own guarantee (at
//! least once, or exactly once for file outlets).

use async_trait::async_trait;

use crate::checkpoint::Checkpoint;
use crate::error::BoxError;
use crate::update::Update;

/// An outlet that can commit a transfer's records together with the
/// link's checkpoint. See the [module](self).
#[async_trait]
pub trait TransactionalOutlet: Send {
    /// Where the outlet writes, spelled as the
    /// [`StateStore::location`](crate::checkpoint::StateStore::location) of
    /// a store in the same database would be (`None`: nowhere a store can
    /// be).
    fn location(&self) -> Option<String>;

    /// Pushes made for `update` from now on write into one transaction
    /// that stays open until [`commit`](Self::commit) or
    /// [`abort`](Self::abort). Pushes for other updates (another link
    /// sharing the outlet) are written on their own, as usual. A push
    /// that fails after an earlier one of the same transaction wrote into
    /// it must fail for good ([`Permanent`](crate::Permanent)): retrying it
    /// alone would lose what the transaction held.
    fn hold(&mut self, update: &Update);

    /// Writes `checkpoint` as `link`'s and commits the transaction held
    /// for `update`, durably. Returns `false`, having written nothing, if
    /// no push for `update` opened one: the link then saves its checkpoint
    /// in its store as usual. An error means the records and the
    /// checkpoint were not written, or that it cannot be told whether they
    /// were.
    async fn commit(
        &mut self,
        update: &Update,
        link: &str,
        checkpoint: &Checkpoint,
    ) -> Result<bool, BoxError>;

    /// Drops the transaction held for `update`, if any: none of its
    /// records are written.
    async fn abort(&mut self, update: &Update);
}
