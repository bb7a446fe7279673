//! Outlets that defer their sync (`Outlet::defers_sync`): the link syncs
//! them before anything relies on their records (a checkpoint, an inlet
//! letting go of the records at their source), at least once a second
//! while it pushes, and when they shut down; otherwise a push is not
//! synced on its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use databay_core::checkpoint::{Checkpoint, MemoryStore, StateStore};
use databay_core::source::PartitionedInlet;
use databay_core::testing::{StaticInlet, TestingSource};
use databay_core::{
    BoxError, InletHandle, Link, Outlet, OutletHandle, Record, RetryPolicy, SYNC_AT_LEAST_EVERY,
    Update, async_trait,
};

type Events = Arc<Mutex<Vec<String>>>;

/// Writes nothing anywhere: notes each push (`push N`, by update index),
/// sync and shutdown in `events`.
#[derive(Clone, Default)]
struct Deferring {
    events: Events,
    fail_sync: bool,
    /// Each push notes itself, then fails (as one that wrote part of its
    /// batch).
    fail_push: bool,
}

#[async_trait]
impl Outlet for Deferring {
    async fn push(&mut self, _records: &[Record], update: &Update) -> Result<(), BoxError> {
        let event = format!("push {}", update.index());
        self.events.lock().unwrap().push(event);
        if self.fail_push {
            return Err("the disk is full".into());
        }
        Ok(())
    }

    fn defers_sync(&self) -> bool {
        true
    }

    async fn sync(&mut self) -> Result<(), BoxError> {
        self.events.lock().unwrap().push("sync".into());
        if self.fail_sync {
            return Err("the disk went away".into());
        }
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        self.events.lock().unwrap().push("shutdown".into());
        Ok(())
    }
}

/// A [`MemoryStore`] that notes each save in `events`.
struct Noting {
    inner: MemoryStore,
    events: Events,
}

#[async_trait]
impl StateStore for Noting {
    async fn load(&self, link: &str) -> Result<Option<Checkpoint>, BoxError> {
        self.inner.load(link).await
    }

    async fn save(&self, link: &str, checkpoint: &Checkpoint) -> Result<(), BoxError> {
        self.events.lock().unwrap().push("checkpoint".into());
        self.inner.save(link, checkpoint).await
    }

    async fn remove(&self, link: &str) -> Result<(), BoxError> {
        self.inner.remove(link).await
    }
}

/// An empty store noting its saves in `outlet`'s events.
fn noting(outlet: &Deferring) -> Arc<Noting> {
    Arc::new(Noting {
        inner: MemoryStore::new(),
        events: outlet.events.clone(),
    })
}

/// An inlet that keeps resume state: three records, one a pull.
fn resumable() -> InletHandle {
    InletHandle::builder(PartitionedInlet::new(
        TestingSource::new([1, 2, 3]).batch_size(1),
    ))
    .name("numbers")
    .build()
}

fn events(events: &Events) -> Vec<String> {
    events.lock().unwrap().clone()
}

/// A started link called `name` from `inlet` to `outlet`, without a
/// store.
async fn started(
    name: &str,
    inlet: impl Into<InletHandle>,
    outlet: impl Into<OutletHandle>,
) -> Link {
    let link = Link::builder(name)
        .inlet(inlet)
        .outlet(outlet)
        .build()
        .unwrap();
    link.start().await.unwrap();
    link
}

async fn transfers(link: &Link, n: usize) {
    for _ in 0..n {
        link.transfer().await.expect("the transfer succeeds");
    }
}

#[tokio::test]
async fn without_a_checkpoint_the_pushes_are_synced_when_the_outlet_stops() {
    let outlet = Deferring::default();
    let link = started("deferred", resumable(), outlet.clone()).await;
    transfers(&link, 3).await;
    assert_eq!(events(&outlet.events), ["push 0", "push 1", "push 2"]);
    assert!(link.shutdown().await.is_empty());
    assert_eq!(
        events(&outlet.events),
        ["push 0", "push 1", "push 2", "sync", "shutdown"]
    );
}

#[tokio::test]
async fn with_a_checkpoint_each_push_is_synced_before_it() {
    let outlet = Deferring::default();
    let store = noting(&outlet);
    let link = Link::builder("checkpointed")
        .inlet(resumable())
        .outlet(outlet.clone())
        .state_store(store)
        .build()
        .unwrap();
    link.start().await.unwrap();
    outlet.events.lock().unwrap().clear();
    transfers(&link, 2).await;
    assert_eq!(
        events(&outlet.events),
        [
            "push 0",
            "sync",
            "checkpoint",
            "push 1",
            "sync",
            "checkpoint"
        ]
    );
    // Nothing written since: nothing to sync at shutdown.
    assert!(link.shutdown().await.is_empty());
    assert_eq!(events(&outlet.events).last().unwrap(), "shutdown");
    assert_eq!(
        events(&outlet.events)
            .iter()
            .filter(|e| *e == "sync")
            .count(),
        2
    );
}

#[tokio::test]
async fn an_inlet_without_resume_state_has_each_push_synced() {
    // Its commit lets go of the records at their source (a broker's
    // acknowledgement): they must be kept by then.
    let outlet = Deferring::default();
    let link = started("letting-go", StaticInlet::values([1, 2]), outlet.clone()).await;
    transfers(&link, 2).await;
    assert_eq!(events(&outlet.events), ["push 0", "sync", "push 1", "sync"]);
}

#[tokio::test(start_paused = true)]
async fn deferred_pushes_wait_at_most_a_second_for_their_sync() {
    let outlet = Deferring::default();
    let link = started("deferred", resumable(), outlet.clone()).await;
    transfers(&link, 2).await;
    assert_eq!(events(&outlet.events), ["push 0", "push 1"]);
    tokio::time::advance(SYNC_AT_LEAST_EVERY + Duration::from_millis(1)).await;
    transfers(&link, 1).await;
    assert_eq!(
        events(&outlet.events),
        ["push 0", "push 1", "push 2", "sync"]
    );
}

#[tokio::test]
async fn a_failed_sync_fails_the_delivery_without_pushing_again() {
    let outlet = Deferring {
        fail_sync: true,
        ..Deferring::default()
    };
    let handle = OutletHandle::builder(outlet.clone())
        .name("disk")
        .retry(RetryPolicy::new(3).initial(Duration::from_millis(1)))
        .build();
    let link = started("failing", StaticInlet::values([1]), handle).await;
    let error = link.transfer().await.expect_err("the sync failed");
    assert!(error.to_string().contains("the disk went away"), "{error}");
    // Written once: trying the push again would write the records twice.
    assert_eq!(events(&outlet.events), ["push 0", "sync"]);
}

#[tokio::test]
async fn a_failed_sync_at_shutdown_is_reported() {
    let outlet = Deferring {
        fail_sync: true,
        ..Deferring::default()
    };
    let link = started("deferred", resumable(), outlet.clone()).await;
    transfers(&link, 1).await;
    let errors = link.shutdown().await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].to_string().contains("the disk went away"),
        "{}",
        errors[0]
    );
    // The hook still ran.
    assert_eq!(events(&outlet.events), ["push 0", "sync", "shutdown"]);
}

/// A link over five records, one a pull, checkpointing in `store` at most
/// once in 10 s.
fn every_ten_seconds(outlet: &Deferring, store: Arc<Noting>) -> Link {
    Link::builder("seldom")
        .inlet(
            InletHandle::builder(PartitionedInlet::new(
                TestingSource::new([1, 2, 3, 4, 5]).batch_size(1),
            ))
            .name("numbers")
            .build(),
        )
        .outlet(outlet.clone())
        .state_store(store)
        .checkpoint_every(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn checkpoint_every_saves_one_in_its_while_and_the_last_at_shutdown() {
    let outlet = Deferring::default();
    let store = noting(&outlet);
    let link = every_ten_seconds(&outlet, store.clone());
    link.start().await.unwrap();
    outlet.events.lock().unwrap().clear();
    transfers(&link, 3).await;
    // The first is due (none saved yet); the two after it within 10 s are
    // neither synced nor checkpointed.
    assert_eq!(
        events(&outlet.events),
        ["push 0", "sync", "checkpoint", "push 1", "push 2"]
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    transfers(&link, 2).await;
    assert_eq!(
        events(&outlet.events)[5..],
        ["push 3", "sync", "checkpoint", "push 4"]
    );
    assert!(link.shutdown().await.is_empty());
    assert_eq!(
        events(&outlet.events)[9..],
        ["sync", "checkpoint", "shutdown"]
    );

    // Resumed from that last checkpoint: nothing is read again.
    let again = Deferring::default();
    let resumed = every_ten_seconds(&again, store);
    resumed.start().await.unwrap();
    let report = resumed.transfer().await.unwrap();
    assert_eq!(report.records_in, 0);
    assert!(!events(&again.events).iter().any(|e| e.starts_with("push")));
}

#[tokio::test(start_paused = true)]
async fn without_the_checkpoint_at_shutdown_a_restart_reads_again_what_came_after_the_last() {
    // What the owed checkpoint is for: a link that stops without shutting
    // down (a crash) resumes from the last one saved, at least once.
    let outlet = Deferring::default();
    let store = noting(&outlet);
    let link = every_ten_seconds(&outlet, store.clone());
    link.start().await.unwrap();
    transfers(&link, 3).await;
    drop(link);
    let again = Deferring::default();
    let resumed = every_ten_seconds(&again, store);
    resumed.start().await.unwrap();
    let report = resumed.transfer().await.unwrap();
    assert_eq!(report.records_in, 1, "the second record is read again");
}

#[tokio::test]
async fn what_a_failed_push_wrote_is_synced_at_shutdown_too() {
    let outlet = Deferring {
        fail_push: true,
        ..Deferring::default()
    };
    let link = started("failing", resumable(), outlet.clone()).await;
    link.transfer().await.expect_err("the push failed");
    assert!(link.shutdown().await.is_empty());
    let events = events(&outlet.events);
    assert_eq!(events.last().unwrap(), "shutdown");
    assert!(events.iter().any(|e| e == "sync"), "{events:?}");
}
