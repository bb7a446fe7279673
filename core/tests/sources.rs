//! Partitioned, dynamic and polling sources: concurrency, each partition's
//! own `next_awake` and end, resume state (the off-by-one), recovery after
//! a failed transfer and after an abort, and restore equivalence.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ms, run};
use databay_core::source::{
    DynamicInlet, DynamicSource, FixedPartitionedSource, PartitionedInlet, Polled, Poller,
    PollingInlet, StatefulPartition, StatelessPartition,
};
use databay_core::testing::{CollectOutlet, TestingSource};
use databay_core::{
    BoxError, Inlet, InletHandle, Link, Outlet, Planner, Pull, Record, Update, async_trait,
};
use serde_json::{Value, json};

/// Partitions named by their behaviour: each emits `part:n` for n from its
/// resume state up to `len`, sleeping `work` per batch, asking to be woken
/// `every` after each batch when set.
#[derive(Clone)]
struct Parts {
    specs: Vec<(&'static str, usize, Option<Duration>)>,
    work: Duration,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl Parts {
    fn new(specs: Vec<(&'static str, usize, Option<Duration>)>) -> Self {
        Parts {
            specs,
            work: Duration::ZERO,
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
        }
    }
}

struct Part {
    name: &'static str,
    next: usize,
    len: usize,
    every: Option<Duration>,
    awake: Option<Instant>,
    work: Duration,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

#[async_trait]
impl StatefulPartition for Part {
    async fn next_batch(&mut self) -> Result<Pull, BoxError> {
        if self.next >= self.len {
            // Resumed at its end (its last state was taken as it ended).
            return Ok(Pull::exhausted());
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.work).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let item = format!("{}:{}", self.name, self.next);
        self.next += 1;
        self.awake = self
            .every
            .map(|d| tokio::time::Instant::now().into_std() + d);
        Ok(if self.next >= self.len {
            Pull::Exhausted(vec![Record::new(item)])
        } else {
            Pull::value(item)
        })
    }

    fn next_awake(&self) -> Option<Instant> {
        self.awake
    }

    fn snapshot(&self) -> Value {
        json!(self.next)
    }
}

#[async_trait]
impl FixedPartitionedSource for Parts {
    type Partition = Part;

    async fn list_parts(&self) -> Result<Vec<String>, BoxError> {
        Ok(self.specs.iter().map(|s| s.0.to_owned()).collect())
    }

    async fn build_part(&self, part: &str, resume: Option<Value>) -> Result<Part, BoxError> {
        let (name, len, every) = *self
            .specs
            .iter()
            .find(|s| s.0 == part)
            .ok_or("no such part")?;
        Ok(Part {
            name,
            next: resume.and_then(|v| v.as_u64()).unwrap_or(0) as usize,
            len,
            every,
            awake: None,
            work: self.work,
            in_flight: self.in_flight.clone(),
            max_in_flight: self.max_in_flight.clone(),
        })
    }
}

fn payloads(pull: &Pull) -> Vec<Value> {
    pull.records().iter().map(|r| r.payload.clone()).collect()
}

fn update(i: u64) -> Update {
    Update::new(["t"], i)
}

#[tokio::test(start_paused = true)]
async fn partitions_are_pulled_concurrently_within_the_limit() {
    let mut source = Parts::new(vec![("a", 10, None), ("b", 10, None), ("c", 10, None)]);
    source.work = ms(100);
    let max = source.max_in_flight.clone();
    let mut inlet = PartitionedInlet::new(source.clone());
    let start = tokio::time::Instant::now();
    let pull = inlet.pull(&update(0)).await.unwrap();
    assert_eq!(payloads(&pull), [json!("a:0"), json!("b:0"), json!("c:0")]);
    assert_eq!(start.elapsed(), ms(100), "all three at once");
    assert_eq!(max.load(Ordering::SeqCst), 3);

    let mut source = source.clone();
    source.max_in_flight = Arc::default();
    let max = source.max_in_flight.clone();
    let mut inlet = PartitionedInlet::new(source).concurrency(2);
    let start = tokio::time::Instant::now();
    inlet.pull(&update(0)).await.unwrap();
    assert_eq!(start.elapsed(), ms(200), "two, then one");
    assert_eq!(max.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn each_partition_waits_for_its_own_next_awake() {
    let source = Parts::new(vec![("fast", 100, None), ("slow", 100, Some(ms(250)))]);
    let mut inlet = PartitionedInlet::new(source);
    let first = inlet.pull(&update(0)).await.unwrap();
    assert_eq!(payloads(&first), [json!("fast:0"), json!("slow:0")]);
    assert!(
        inlet.wake_at().is_some(),
        "the slow partition asks to be woken"
    );
    tokio::time::sleep(ms(100)).await;
    let second = inlet.pull(&update(1)).await.unwrap();
    assert_eq!(payloads(&second), [json!("fast:1")], "slow is not due yet");
    tokio::time::sleep(ms(200)).await;
    let third = inlet.pull(&update(2)).await.unwrap();
    assert_eq!(payloads(&third), [json!("fast:2"), json!("slow:1")]);
}

/// The link wakes for a partition's `next_awake` although its schedule is
/// an hour.
#[tokio::test(start_paused = true)]
async fn a_partitions_next_awake_wakes_the_link_between_ticks() {
    let source = Parts::new(vec![("ticker", 1_000, Some(ms(100)))]);
    let out = CollectOutlet::new();
    let link = Link::builder("woken")
        .inlet(PartitionedInlet::new(source))
        .outlet(out.clone())
        .every(Duration::from_secs(3600))
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(1_050)).await;
    let got = out.len();
    // The immediate transfer, then one every 100 ms.
    assert!((10..=12).contains(&got), "{got} records in 1.05 s");
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn one_partition_ending_does_not_end_the_others() {
    let source = Parts::new(vec![("short", 1, None), ("long", 3, None)]);
    let mut inlet = PartitionedInlet::new(source);
    let first = inlet.pull(&update(0)).await.unwrap();
    assert!(matches!(first, Pull::Records(_)), "long goes on");
    assert_eq!(payloads(&first), [json!("short:0"), json!("long:0")]);
    let second = inlet.pull(&update(1)).await.unwrap();
    assert_eq!(payloads(&second), [json!("long:1")]);
    let third = inlet.pull(&update(2)).await.unwrap();
    assert!(matches!(third, Pull::Exhausted(_)), "both have ended");
    assert_eq!(payloads(&third), [json!("long:2")]);
}

/// The reference's warning: a snapshot is the position *after* the last
/// item handed out. Resuming from it gives the next item, not the last.
#[tokio::test]
async fn a_snapshot_resumes_after_the_last_item_not_at_it() {
    let source = TestingSource::new(0..10).batch_size(3);
    let mut partition = source.build_part("testing", None).await.unwrap();
    let first = partition.next_batch().await.unwrap();
    assert_eq!(payloads(&first), [json!(0), json!(1), json!(2)]);
    let state = partition.snapshot();
    assert_eq!(state, json!(3));
    let mut resumed = source.build_part("testing", Some(state)).await.unwrap();
    let next = resumed.next_batch().await.unwrap();
    assert_eq!(payloads(&next)[0], json!(3), "no repeat of item 2");

    // Through the adapter: the inlet's snapshot is the committed one.
    let mut inlet = PartitionedInlet::new(source.clone());
    inlet.pull(&update(0)).await.unwrap();
    assert_eq!(inlet.snapshot(), Some(json!({})), "nothing committed yet");
    inlet.commit(&update(0)).await.unwrap();
    assert_eq!(inlet.snapshot(), Some(json!({"testing": 3})));
    inlet.pull(&update(1)).await.unwrap();
    assert_eq!(
        inlet.snapshot(),
        Some(json!({"testing": 3})),
        "the uncommitted batch is not in it"
    );
}

/// An outlet failing its first `n` pushes, then collecting.
#[derive(Clone)]
struct FlakyOutlet {
    failures: Arc<Mutex<usize>>,
    inner: CollectOutlet,
}

#[async_trait]
impl Outlet for FlakyOutlet {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
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

/// A failed transfer rebuilds the partitions it pulled from their committed
/// state: the next transfer reads the same items again, none is lost.
#[tokio::test]
async fn a_failed_transfer_reads_its_items_again() {
    let out = CollectOutlet::new();
    let flaky = FlakyOutlet {
        failures: Arc::new(Mutex::new(0)),
        inner: out.clone(),
    };
    let link = Link::builder("again")
        .inlet(PartitionedInlet::new(
            TestingSource::new(0..6).batch_size(2),
        ))
        .outlet(flaky.clone())
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    *flaky.failures.lock().unwrap() = 2;
    assert!(link.transfer().await.is_err());
    assert!(link.transfer().await.is_err());
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(out.payloads(), (0..6).map(|n| json!(n)).collect::<Vec<_>>());
}

/// Bytewax's `AbortExecution`: the testing source fails at a chosen item;
/// the link carries on from the last commit, delivering every item once.
#[tokio::test]
async fn an_abort_mid_stream_loses_and_repeats_nothing() {
    let source = TestingSource::new(0..10).batch_size(3).abort_before(7);
    let out = CollectOutlet::new();
    let link = Link::builder("abort")
        .inlet(PartitionedInlet::new(source.clone()))
        .outlet(out.clone())
        .build()
        .unwrap();
    let mut failures = 0;
    for _ in 0..10 {
        if link.transfer().await.is_err() {
            failures += 1;
        }
    }
    assert!(source.aborted());
    assert_eq!(failures, 1);
    assert_eq!(
        out.payloads(),
        (0..10).map(|n| json!(n)).collect::<Vec<_>>()
    );
}

/// Restore equivalence: cut a run at any transfer, snapshot, build a new
/// inlet from the snapshot, and the records after the cut are those an
/// uninterrupted run gives from there.
#[tokio::test]
async fn restoring_a_snapshot_continues_with_the_next_item() {
    let make = || Parts::new(vec![("a", 7, None), ("b", 4, None), ("c", 9, None)]);
    let whole = {
        let out = CollectOutlet::new();
        let link = Link::builder("whole")
            .inlet(PartitionedInlet::new(make()))
            .outlet(out.clone())
            .build()
            .unwrap();
        for _ in 0..12 {
            link.transfer().await.unwrap();
        }
        out.payloads()
    };
    assert_eq!(whole.len(), 20);
    let mut seed = 0x9e37_79b9_u32;
    for _ in 0..8 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let cut = 1 + (seed % 8) as usize;
        let out = CollectOutlet::new();
        let first = Link::builder("first")
            .inlet(
                InletHandle::builder(PartitionedInlet::new(make()))
                    .name("parts")
                    .build(),
            )
            .outlet(out.clone())
            .build()
            .unwrap();
        for _ in 0..cut {
            first.transfer().await.unwrap();
        }
        let states = first.inlet_snapshots().await;
        // The snapshot survives a trip through JSON text, as a checkpoint.
        let text = serde_json::to_string(&states).unwrap();
        let states: BTreeMap<String, Value> = serde_json::from_str(&text).unwrap();
        drop(first);
        let second = Link::builder("second")
            .inlet(
                InletHandle::builder(PartitionedInlet::new(make()))
                    .name("parts")
                    .build(),
            )
            .outlet(out.clone())
            .build()
            .unwrap();
        second.restore_inlets(states).await.unwrap();
        for _ in 0..12 {
            second.transfer().await.unwrap();
        }
        assert_eq!(out.payloads(), whole, "cut after {cut} transfers");
    }
}

#[tokio::test]
async fn a_bad_resume_state_is_refused_with_its_reason() {
    let link = Link::builder("bad")
        .inlet(
            InletHandle::builder(PartitionedInlet::new(TestingSource::new(0..3)))
                .name("src")
                .build(),
        )
        .build()
        .unwrap();
    let e = link
        .restore_inlets(BTreeMap::from([("src".to_owned(), json!([1]))]))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("src") && e.contains("an array"), "{e}");
    let e = link
        .restore_inlets(BTreeMap::from([("nope".to_owned(), json!({}))]))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope") && e.contains("no inlet"), "{e}");
    // A state the partition cannot use fails the pull, naming it.
    link.restore_inlets(BTreeMap::from([("src".to_owned(), json!({"testing": 99}))]))
        .await
        .unwrap();
    let e = link.transfer().await.unwrap_err().to_string();
    assert!(e.contains("partition `testing`") && e.contains("99"), "{e}");
}

struct Strided;

struct Stride {
    next: u64,
    step: u64,
}

#[async_trait]
impl StatelessPartition for Stride {
    async fn next_batch(&mut self) -> Result<Pull, BoxError> {
        let item = self.next;
        self.next += self.step;
        Ok(if item >= 10 {
            Pull::exhausted()
        } else {
            Pull::value(item)
        })
    }
}

#[async_trait]
impl DynamicSource for Strided {
    type Partition = Stride;
    async fn build(&self, index: usize, count: usize) -> Result<Stride, BoxError> {
        Ok(Stride {
            next: index as u64,
            step: count as u64,
        })
    }
}

#[tokio::test]
async fn dynamic_workers_split_the_work_and_keep_no_state() {
    let out = CollectOutlet::new();
    let inlet = DynamicInlet::new(Strided).workers(3);
    assert_eq!(inlet.snapshot(), None);
    let link = Link::builder("dyn")
        .inlet(inlet)
        .outlet(out.clone())
        .build()
        .unwrap();
    for _ in 0..5 {
        link.transfer().await.unwrap();
    }
    let mut got: Vec<u64> = out.payloads().iter().filter_map(Value::as_u64).collect();
    got.sort_unstable();
    assert_eq!(got, (0..10).collect::<Vec<_>>(), "each number once");
    assert!(link.inlet_snapshots().await.is_empty());
}

struct Flappy {
    polls: Arc<AtomicUsize>,
}

#[async_trait]
impl Poller for Flappy {
    async fn next_item(&mut self) -> Result<Polled, BoxError> {
        let n = self.polls.fetch_add(1, Ordering::SeqCst);
        Ok(if n.is_multiple_of(3) {
            Polled::Retry(ms(50))
        } else {
            Polled::Item(json!(n))
        })
    }
}

/// `Retry` polls sooner than the interval; in between, pulls do not poll.
#[tokio::test(start_paused = true)]
async fn the_polling_helper_retries_sooner_and_otherwise_keeps_its_interval() {
    let polls = Arc::new(AtomicUsize::new(0));
    let mut inlet = PollingInlet::new(
        Flappy {
            polls: polls.clone(),
        },
        Duration::from_secs(1),
    );
    assert!(matches!(
        inlet.pull(&update(0)).await.unwrap(),
        Pull::Nothing
    ));
    assert_eq!(polls.load(Ordering::SeqCst), 1);
    let wake = inlet.wake_at().unwrap();
    let now = tokio::time::Instant::now().into_std();
    assert_eq!(wake - now, ms(50), "retry after 50 ms");
    inlet.pull(&update(1)).await.unwrap();
    assert_eq!(polls.load(Ordering::SeqCst), 1, "not before the retry");
    tokio::time::sleep(ms(50)).await;
    assert_eq!(payloads(&inlet.pull(&update(2)).await.unwrap()), [json!(1)]);
    // Back on the grid of the first poll: at 1 s, not 50 ms + 1 s.
    let now = tokio::time::Instant::now().into_std();
    assert_eq!(inlet.wake_at().unwrap() - now, ms(950));
    tokio::time::sleep(ms(949)).await;
    inlet.pull(&update(3)).await.unwrap();
    assert_eq!(polls.load(Ordering::SeqCst), 2, "the interval holds");
    tokio::time::sleep(ms(1)).await;
    assert_eq!(payloads(&inlet.pull(&update(4)).await.unwrap()), [json!(2)]);
}

/// In a link: an hourly link's polling inlet is polled on its own
/// interval.
#[tokio::test(start_paused = true)]
async fn a_polling_inlet_wakes_its_link_on_its_interval() {
    let polls = Arc::new(AtomicUsize::new(0));
    let out = CollectOutlet::new();
    let link = Link::builder("polled")
        .inlet(PollingInlet::new(
            Flappy {
                polls: polls.clone(),
            },
            ms(200),
        ))
        .outlet(out.clone())
        .every(Duration::from_secs(3600))
        .build()
        .unwrap();
    let planner = Planner::new([link]).unwrap();
    let task = run(&planner);
    tokio::time::sleep(ms(1_010)).await;
    // 0 ms: retry at 50; 50: item; then on the grid: 200, 400 (retry),
    // 450, 600, 800 (retry), 850, 1000: nine polls, six items.
    let n = polls.load(Ordering::SeqCst);
    assert!((8..=10).contains(&n), "{n} polls");
    assert!((5..=7).contains(&out.len()), "{} items", out.len());
    planner.shutdown(true);
    task.await.unwrap().unwrap();
}

/// Partitions `a` and `b`, three items each; `b`'s next batch panics while
/// `armed` is set (once: the flag is shared with the partition built again).
struct Panicky {
    armed: Arc<std::sync::atomic::AtomicBool>,
}

struct PanickyPart {
    key: String,
    next: u64,
    armed: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl StatefulPartition for PanickyPart {
    async fn next_batch(&mut self) -> Result<Pull, BoxError> {
        if self.key == "b" && self.armed.swap(false, Ordering::SeqCst) {
            panic!("partition b blew up");
        }
        if self.next >= 3 {
            return Ok(Pull::exhausted());
        }
        let item = format!("{}:{}", self.key, self.next);
        self.next += 1;
        Ok(if self.next >= 3 {
            Pull::Exhausted(vec![Record::new(item)])
        } else {
            Pull::value(item)
        })
    }

    fn snapshot(&self) -> Value {
        json!(self.next)
    }
}

#[async_trait]
impl FixedPartitionedSource for Panicky {
    type Partition = PanickyPart;
    async fn list_parts(&self) -> Result<Vec<String>, BoxError> {
        Ok(vec!["a".into(), "b".into()])
    }
    async fn build_part(&self, part: &str, resume: Option<Value>) -> Result<PanickyPart, BoxError> {
        Ok(PanickyPart {
            key: part.to_owned(),
            next: resume.and_then(|v| v.as_u64()).unwrap_or(0),
            armed: self.armed.clone(),
        })
    }
}

/// Partitions are pulled on tasks of their own: one that panics fails the
/// pull with an error naming it and the panic, and the rollback builds it
/// again from its committed state, so every item is still delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_partition_fails_the_pull_and_is_built_again() {
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let out = CollectOutlet::new();
    let link = Link::builder("panicky")
        .inlet(PartitionedInlet::new(Panicky {
            armed: armed.clone(),
        }))
        .outlet(out.clone())
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    armed.store(true, Ordering::SeqCst);
    let e = link.transfer().await.unwrap_err().to_string();
    assert!(
        e.contains("partition `b`") && e.contains("panicked: partition b blew up"),
        "{e}"
    );
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    let mut got: Vec<String> = out
        .payloads()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    got.sort();
    assert_eq!(got, ["a:0", "a:1", "a:2", "b:0", "b:1", "b:2"]);
}

/// A worker of a dynamic source that panics is not left out for good: it is
/// built again (from its start: it keeps no state) and goes on producing.
#[tokio::test]
async fn a_panicking_dynamic_worker_is_built_again() {
    struct Once(Arc<std::sync::atomic::AtomicBool>);
    struct Worker(Arc<std::sync::atomic::AtomicBool>);
    #[async_trait]
    impl StatelessPartition for Worker {
        async fn next_batch(&mut self) -> Result<Pull, BoxError> {
            if self.0.swap(false, Ordering::SeqCst) {
                panic!("worker blew up");
            }
            Ok(Pull::value("tick"))
        }
    }
    #[async_trait]
    impl DynamicSource for Once {
        type Partition = Worker;
        async fn build(&self, _index: usize, _count: usize) -> Result<Worker, BoxError> {
            Ok(Worker(self.0.clone()))
        }
    }
    let out = CollectOutlet::new();
    let link = Link::builder("dyn-panic")
        .inlet(DynamicInlet::new(Once(Arc::new(
            std::sync::atomic::AtomicBool::new(true),
        ))))
        .outlet(out.clone())
        .build()
        .unwrap();
    let e = link.transfer().await.unwrap_err().to_string();
    assert!(e.contains("panicked: worker blew up"), "{e}");
    link.transfer().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(out.payloads(), [json!("tick"), json!("tick")]);
}
