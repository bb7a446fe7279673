//! Acknowledging after commit: the link calls `Inlet::commit` once every
//! outlet accepted a pull's records, `Inlet::rollback` otherwise, so an
//! inlet over a queue redelivers what a failed transfer lost.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use common::{Behaviour, BrokenOutlet, Probe};
use databay_core::testing::CollectOutlet;
use databay_core::{BoxError, Inlet, InletHandle, Link, Pull, Update, async_trait, processor};
use serde_json::{Value, json};

/// What a [`Queue`] saw and holds, shared with the test.
#[derive(Default)]
struct QueueLog {
    /// Waiting messages.
    ready: VecDeque<Value>,
    /// Messages pulled and not yet settled, with the update that took them.
    pending: Vec<(String, Vec<Value>)>,
    /// Acknowledged messages, in order.
    acked: Vec<Value>,
    /// "pull 3", "commit 3", "rollback 3", by update index.
    events: Vec<String>,
}

/// An in-memory queue with acknowledgements, as a broker inlet would use
/// one: a pull takes up to two messages; commit acknowledges them,
/// rollback puts them back in front.
#[derive(Clone, Default)]
struct Queue {
    log: Arc<Mutex<QueueLog>>,
    fail_commit: bool,
}

impl Queue {
    fn with(messages: impl IntoIterator<Item = Value>) -> Self {
        let queue = Queue::default();
        queue.log().ready.extend(messages);
        queue
    }

    fn log(&self) -> std::sync::MutexGuard<'_, QueueLog> {
        self.log.lock().unwrap()
    }

    fn events(&self) -> Vec<String> {
        self.log().events.clone()
    }

    fn acked(&self) -> Vec<Value> {
        self.log().acked.clone()
    }

    fn take(&self, update: &Update) -> Vec<Value> {
        let mut log = self.log();
        let key = update.to_string();
        let pos = log.pending.iter().position(|(k, _)| *k == key);
        pos.map(|i| log.pending.remove(i).1).unwrap_or_default()
    }
}

#[async_trait]
impl Inlet for Queue {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        let mut log = self.log();
        log.events.push(format!("pull {}", update.index()));
        let n = log.ready.len().min(2);
        let taken: Vec<Value> = log.ready.drain(..n).collect();
        log.pending.push((update.to_string(), taken.clone()));
        Ok(Pull::values(taken))
    }

    async fn commit(&mut self, update: &Update) -> Result<(), BoxError> {
        let taken = self.take(update);
        let mut log = self.log();
        log.events.push(format!("commit {}", update.index()));
        if self.fail_commit {
            return Err("the broker went away".into());
        }
        log.acked.extend(taken);
        Ok(())
    }

    async fn rollback(&mut self, update: &Update) -> Result<(), BoxError> {
        let taken = self.take(update);
        let mut log = self.log();
        log.events.push(format!("rollback {}", update.index()));
        for value in taken.into_iter().rev() {
            log.ready.push_front(value);
        }
        Ok(())
    }
}

/// An outlet failing its first `n` pushes, then collecting.
#[derive(Clone)]
struct FlakyOutlet {
    failures: Arc<Mutex<usize>>,
    inner: CollectOutlet,
}

#[async_trait]
impl databay_core::Outlet for FlakyOutlet {
    async fn push(
        &mut self,
        records: &[databay_core::Record],
        update: &Update,
    ) -> Result<(), BoxError> {
        {
            let mut left = self.failures.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err("connection reset".into());
            }
        }
        self.inner.push(records, update).await
    }
}

fn link(name: &str, inlet: impl Into<InletHandle>) -> databay_core::LinkBuilder {
    Link::builder(name).inlet(inlet)
}

#[tokio::test]
async fn a_delivered_transfer_is_committed() {
    let queue = Queue::with([json!(1), json!(2), json!(3)]);
    let out = CollectOutlet::new();
    let link = link("ack", queue.clone())
        .outlet(out.clone())
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    assert_eq!(queue.events(), ["pull 0", "commit 0"]);
    assert_eq!(queue.acked(), [json!(1), json!(2)]);
    link.transfer().await.unwrap();
    assert_eq!(queue.acked(), [json!(1), json!(2), json!(3)]);
    assert_eq!(out.payloads(), [json!(1), json!(2), json!(3)]);
}

#[tokio::test]
async fn a_failed_push_rolls_back_and_the_messages_come_back() {
    let queue = Queue::with([json!("a"), json!("b"), json!("c")]);
    let out = FlakyOutlet {
        failures: Arc::new(Mutex::new(1)),
        inner: CollectOutlet::new(),
    };
    let link = link("nack", queue.clone())
        .outlet(out.clone())
        .build()
        .unwrap();
    assert!(link.transfer().await.is_err());
    assert_eq!(queue.events(), ["pull 0", "rollback 0"]);
    assert!(queue.acked().is_empty());
    link.transfer().await.unwrap();
    assert_eq!(
        queue.events(),
        ["pull 0", "rollback 0", "pull 1", "commit 1"]
    );
    assert_eq!(queue.acked(), [json!("a"), json!("b")]);
    assert_eq!(out.inner.payloads(), [json!("a"), json!("b")]);
}

#[tokio::test]
async fn an_ignored_push_error_is_not_a_commit() {
    // One outlet took the records, the other did not: under
    // ignore_exceptions the transfer succeeds, but is not committed.
    let queue = Queue::with([json!(1)]);
    let good = CollectOutlet::new();
    let link = link("ignored", queue.clone())
        .outlet(good.clone())
        .outlet(BrokenOutlet { panic: false })
        .ignore_exceptions(true)
        .build()
        .unwrap();
    let report = link.transfer().await.unwrap();
    assert_eq!(report.ignored.len(), 1);
    assert_eq!(queue.events(), ["pull 0", "rollback 0"]);
    assert!(queue.acked().is_empty());
    assert_eq!(queue.log().ready, [json!(1)]);
}

#[tokio::test]
async fn another_inlets_failure_rolls_back_this_one() {
    let queue = Queue::with([json!(1)]);
    let (broken, _) = Probe::with(Behaviour::Fail, std::time::Duration::ZERO);
    let link = link("other", queue.clone())
        .inlet(broken)
        .outlet(CollectOutlet::new())
        .build()
        .unwrap();
    assert!(link.transfer().await.is_err());
    assert_eq!(queue.events(), ["pull 0", "rollback 0"]);
}

#[tokio::test]
async fn a_processor_failure_rolls_back() {
    let queue = Queue::with([json!(1), json!(2)]);
    let link = link("proc", queue.clone())
        .processor(processor::fallible(|_| Err("bad record".into())))
        .outlet(CollectOutlet::new())
        .build()
        .unwrap();
    assert!(link.transfer().await.is_err());
    assert_eq!(queue.events(), ["pull 0", "rollback 0"]);
    assert_eq!(queue.log().ready, [json!(1), json!(2)]);
}

#[tokio::test]
async fn a_failed_commit_is_counted_and_the_transfer_stands() {
    let queue = Queue {
        fail_commit: true,
        ..Queue::with([json!(1)])
    };
    let out = CollectOutlet::new();
    let link = link("commit_fails", queue.clone())
        .outlet(out.clone())
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    assert_eq!(out.payloads(), [json!(1)]);
    let stats = link.stats();
    assert_eq!((stats.transfers_ok, stats.errors), (1, 1));
    let last = stats.last_error.unwrap_or_default();
    assert!(
        last.contains("commit") && last.contains("the broker went away"),
        "{last}"
    );
}

#[tokio::test]
async fn timer_wakeups_and_flushes_settle_nothing() {
    let queue = Queue::with([json!(1)]);
    let link = link("flush", queue.clone())
        .outlet(CollectOutlet::new())
        .build()
        .unwrap();
    link.flush().await.unwrap();
    assert!(queue.events().is_empty(), "{:?}", queue.events());
}

#[tokio::test]
async fn a_shared_instance_is_settled_per_link() {
    let queue = Queue::with([json!(1), json!(2), json!(3), json!(4)]);
    let shared = InletHandle::new(queue.clone());
    let good = link("good", shared.clone())
        .outlet(CollectOutlet::new())
        .build()
        .unwrap();
    let bad = link("bad", shared)
        .outlet(BrokenOutlet { panic: false })
        .build()
        .unwrap();
    good.transfer().await.unwrap();
    assert!(bad.transfer().await.is_err());
    assert_eq!(queue.acked(), [json!(1), json!(2)]);
    assert_eq!(queue.log().ready, [json!(3), json!(4)]);
}

/// The end of a finite input counts only once its transfer commits: when
/// the push of the last records fails, the inlet is rolled back and pulled
/// again, and those records are delivered by the next transfer instead of
/// being lost with the inlet marked ended.
#[tokio::test]
async fn the_last_records_of_a_finite_input_are_read_again_after_a_failed_push() {
    use databay_core::source::PartitionedInlet;
    use databay_core::testing::TestingSource;
    let out = FlakyOutlet {
        failures: Arc::new(Mutex::new(0)),
        inner: CollectOutlet::new(),
    };
    let link = link(
        "last",
        PartitionedInlet::new(TestingSource::new(0..4).batch_size(2)),
    )
    .outlet(out.clone())
    .build()
    .unwrap();
    link.transfer().await.unwrap();
    *out.failures.lock().unwrap() = 1;
    assert!(
        link.transfer().await.is_err(),
        "the last batch's push fails"
    );
    assert!(
        !link.is_exhausted(),
        "not ended: its last records were not delivered"
    );
    link.transfer().await.unwrap();
    assert!(link.is_exhausted());
    assert_eq!(
        out.inner.payloads(),
        [json!(0), json!(1), json!(2), json!(3)]
    );
}
