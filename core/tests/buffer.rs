//! Buffers inside links: misbehaving controllers and callbacks, huge
//! thresholds, outlet-level buffers behind groupers, and what happens to
//! held records when a push fails.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SPIN_LIMIT, join_panicked, ms, run};
use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{
    BoxError, Buffer, Link, Outlet, OutletHandle, Planner, Record, Update, async_trait,
};
use serde_json::json;

/// An outlet that fails its first `fail_first` pushes, then collects.
#[derive(Clone)]
struct Flaky {
    fail_first: Arc<AtomicUsize>,
    got: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Flaky {
    fn new(fail_first: usize) -> Self {
        Flaky {
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            got: Arc::default(),
        }
    }

    fn payloads(&self) -> Vec<serde_json::Value> {
        self.got.lock().unwrap().clone()
    }
}

#[async_trait]
impl Outlet for Flaky {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        let left = self.fail_first.load(Ordering::SeqCst);
        if left > 0 {
            self.fail_first.store(left - 1, Ordering::SeqCst);
            return Err("connection reset".into());
        }
        self.got
            .lock()
            .unwrap()
            .extend(records.iter().map(|r| r.payload.clone()));
        Ok(())
    }
}

/// A buffer whose time threshold is huge ("release on count only, in
/// practice") must not panic the transfer.
#[tokio::test]
async fn a_huge_buffer_time_threshold_does_not_panic() {
    let out = CollectOutlet::new();
    let link = Link::builder("patient")
        .inlet(StaticInlet::values([1]))
        .processor(
            Buffer::new()
                .time_threshold(Duration::MAX)
                .count_threshold(2),
        )
        .outlet(out.clone())
        .build()
        .unwrap();
    let joined = tokio::spawn(async move {
        link.transfer().await.unwrap();
        link.transfer().await.unwrap();
    })
    .await;
    assert_eq!(join_panicked(&joined), None);
    assert_eq!(out.len(), 2);
}

fn drop_empty_batches(batches: Vec<Vec<Record>>) -> Vec<Vec<Record>> {
    batches.into_iter().filter(|b| !b.is_empty()).collect()
}

/// A grouper that drops empty batches is a valid grouper by its contract
/// ("flattening the result should give back the same records"), yet then
/// a flush never reaches the outlets' processors: what an outlet-level
/// buffer holds is lost on graceful shutdown.
#[tokio::test(start_paused = true)]
async fn outlet_buffers_are_flushed_whatever_the_groupers_return() {
    let out = CollectOutlet::new();
    let outlet = OutletHandle::builder(out.clone())
        .processor(Buffer::new().count_threshold(100))
        .build();
    let link = Link::builder("g")
        .inlet(StaticInlet::values([1]))
        .grouper(drop_empty_batches)
        .outlet(outlet)
        .every(ms(100))
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(250)).await;
    assert!(out.is_empty());
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert_eq!(out.hook_counts(), (1, 1));
    assert_eq!(out.len(), 3, "the outlet buffer's records were lost");
}

/// Same cause, timer side: the outlet buffer's time threshold is never
/// served, and the link spins on the deadline it cannot reach.
#[tokio::test(start_paused = true)]
async fn outlet_buffer_timer_with_a_grouper_that_drops_empty_batches() {
    let calls = Arc::new(AtomicUsize::new(0));
    let out = CollectOutlet::new();
    let outlet = OutletHandle::builder(out.clone())
        .processor(Buffer::new().time_threshold(ms(300)))
        .build();
    let grouper = {
        let calls = calls.clone();
        move |batches: Vec<Vec<Record>>| {
            // Self-limiting: after SPIN_LIMIT calls it passes empty batches on.
            if calls.fetch_add(1, Ordering::SeqCst) + 1 < SPIN_LIMIT {
                drop_empty_batches(batches)
            } else {
                batches
            }
        }
    };
    let link = Link::builder("t")
        .inlet(StaticInlet::values([1]))
        .grouper(grouper)
        .outlet(outlet)
        .every(Duration::from_secs(10))
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(500)).await;
    let n = calls.load(Ordering::SeqCst);
    planner.shutdown(true);
    task.await.unwrap().unwrap();
    assert!(n < 10, "the grouper ran {n} times in 500 ms");
}

/// A panicking `on_reset` runs after the buffer took its records out for
/// release: they are dropped during unwinding. Every record must end up
/// either delivered or counted in `records_dropped`.
#[tokio::test]
async fn a_panicking_on_reset_does_not_lose_records_silently() {
    let out = CollectOutlet::new();
    let link = Link::builder("reset")
        .inlet(StaticInlet::values([1]))
        .processor(
            Buffer::new()
                .count_threshold(3)
                .on_reset(|| panic!("reset hook failed")),
        )
        .outlet(out.clone())
        .ignore_exceptions(true)
        .build()
        .unwrap();
    for _ in 0..3 {
        link.transfer().await.unwrap();
    }
    // The panic is contained by the buffer (logged); the release goes on.
    let stats = link.stats();
    assert_eq!(stats.errors, 0);
    assert_eq!(out.len(), 3);
    assert_eq!(
        out.len() as u64 + stats.records_dropped,
        3,
        "delivered {}, counted dropped {}",
        out.len(),
        stats.records_dropped
    );
}

/// A panicking custom controller: the records stay in the buffer (which
/// stays usable) and are released later, yet the failed call counted them
/// as dropped.
#[tokio::test]
async fn a_panicking_controller_does_not_count_kept_records_as_dropped() {
    let first = Arc::new(AtomicBool::new(true));
    let buffer = {
        let first = first.clone();
        Buffer::new()
            .custom_controller(move |_| {
                if first.swap(false, Ordering::SeqCst) {
                    panic!("controller failed");
                }
                false
            })
            .count_threshold(2)
    };
    let out = CollectOutlet::new();
    let link = Link::builder("ctl")
        .inlet(StaticInlet::values([1]))
        .processor(buffer.clone())
        .outlet(out.clone())
        .ignore_exceptions(true)
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    // Either the record is kept (and not counted as dropped) or dropped
    // (and counted); today it is kept, delivered, and counted as dropped.
    let dropped = link.stats().records_dropped;
    assert_eq!(
        out.len() as u64 + dropped,
        2,
        "delivered {}, counted as dropped {dropped}",
        out.len()
    );
}

/// After a controller panic the buffer (its lock poisoned) stays usable.
#[tokio::test]
async fn a_buffer_stays_usable_after_a_controller_panic() {
    let first = Arc::new(AtomicBool::new(true));
    let buffer = {
        let first = first.clone();
        Buffer::new()
            .custom_controller(move |_| {
                if first.swap(false, Ordering::SeqCst) {
                    panic!("controller failed");
                }
                false
            })
            .count_threshold(3)
    };
    let out = CollectOutlet::new();
    let link = Link::builder("ctl")
        .inlet(StaticInlet::values([1]))
        .processor(buffer.clone())
        .outlet(out.clone())
        .build()
        .unwrap();
    // The buffer contains its controller's panic (logged): the transfer
    // goes on and the record stays held.
    link.transfer().await.unwrap();
    assert_eq!(buffer.len(), 1);
    link.transfer().await.unwrap();
    assert_eq!(buffer.len(), 2);
    link.transfer().await.unwrap();
    assert_eq!(out.len(), 3);
    assert!(buffer.is_empty());
    assert!(format!("{buffer:?}").contains("held: 0"), "{buffer:?}");
}

/// DESIGN.md: "Failed pushes are retried with backoff; what still fails
/// goes to an optional dead-letter outlet or fails the transfer (nothing
/// committed, re-pulled later)", and "records held in Buffers" are
/// checkpointed. With a state store, a failed transfer puts the buffer
/// back where the last committed transfer left it: the record it had held
/// is held again, the one it took in is read again by the inlet, and every
/// record arrives exactly once.
#[tokio::test]
async fn a_failed_push_does_not_lose_buffered_records() {
    use databay_core::checkpoint::MemoryStore;
    use databay_core::source::PartitionedInlet;
    use databay_core::testing::TestingSource;
    let outlet = Flaky::new(1);
    let link = Link::builder("flaky")
        .inlet(PartitionedInlet::new(TestingSource::new(1..5)))
        .processor(Buffer::new().count_threshold(2))
        .outlet(outlet.clone())
        .state_store(std::sync::Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap(); // holds 1
    // Releases 1 and 2; the push fails: 1 is held again, 2 is read again.
    assert!(link.transfer().await.is_err());
    link.transfer().await.unwrap(); // releases 1 and 2
    link.transfer().await.unwrap(); // holds 3
    link.transfer().await.unwrap(); // releases 3 and 4
    let mut got = outlet.payloads();
    got.sort_by_key(|v| v.as_u64());
    assert_eq!(got, [json!(1), json!(2), json!(3), json!(4)]);
}
