//! Checkpoints: a link with a state store resumes its inlets, outlets and
//! transfer index after a restart; a failed transfer writes nothing; an
//! unreadable checkpoint stops the start rather than starting afresh.

use std::sync::Arc;

use databay_core::checkpoint::{Checkpoint, INDEX_LEASE, MemoryStore, StateStore};
use databay_core::source::PartitionedInlet;
use databay_core::testing::{CollectOutlet, TestingSource};
use databay_core::{BoxError, InletHandle, Link, Outlet, Record, Update, async_trait};
use serde_json::{Value, json};

fn link(store: &Arc<MemoryStore>, source: TestingSource, out: impl Outlet) -> Link {
    Link::builder("resumable")
        .inlet(
            InletHandle::builder(PartitionedInlet::new(source))
                .name("numbers")
                .build(),
        )
        .outlet(out)
        .state_store(store.clone())
        .build()
        .unwrap()
}

/// The index of each update an outlet saw.
#[derive(Clone, Default)]
struct Indexes {
    seen: Arc<std::sync::Mutex<Vec<u64>>>,
    inner: CollectOutlet,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl Outlet for Indexes {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("down".into());
        }
        self.seen.lock().unwrap().push(update.index());
        self.inner.push(records, update).await
    }
}

#[tokio::test]
async fn a_restarted_link_resumes_after_the_last_committed_transfer() {
    let store = Arc::new(MemoryStore::new());
    let source = || TestingSource::new(0..10).batch_size(3);
    let out = Indexes::default();
    let first = link(&store, source(), out.clone());
    first.start().await.unwrap();
    first.transfer().await.unwrap();
    first.transfer().await.unwrap();
    // The third transfer fails: its records must come again after the
    // restart, and it writes no checkpoint.
    out.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(first.transfer().await.is_err());
    let saved = store.load("resumable").await.unwrap().unwrap();
    assert_eq!(saved.inlets["numbers"], json!({"testing": 6}));
    drop(first); // a crash: no shutdown

    out.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let second = link(&store, source(), out.clone());
    second.start().await.unwrap();
    for _ in 0..3 {
        second.transfer().await.unwrap();
    }
    assert_eq!(
        out.inner.payloads(),
        (0..10).map(|n| json!(n)).collect::<Vec<Value>>(),
        "every record once"
    );
    let seen = out.seen.lock().unwrap().clone();
    assert_eq!(&seen[..2], [0, 1]);
    assert!(
        seen[2..].iter().all(|i| *i > INDEX_LEASE),
        "indexes after the restart are past the lease, none used twice: {seen:?}"
    );
}

#[tokio::test]
async fn an_unchanged_state_is_not_written_again_until_the_lease_runs_out() {
    let store = Arc::new(MemoryStore::new());
    let out = CollectOutlet::new();
    // Exhausted after one transfer: later transfers change nothing.
    let l = link(&store, TestingSource::new(0..1), out);
    l.start().await.unwrap();
    for _ in 0..20 {
        l.transfer().await.unwrap();
    }
    assert_eq!(store.saves(), 1, "one checkpoint for twenty transfers");
}

#[tokio::test]
async fn an_unreadable_checkpoint_stops_the_start_and_says_why() {
    let store = Arc::new(MemoryStore::new());
    store.put_raw(
        "resumable",
        b"{\"version\": 99, \"next_index\": 5}".to_vec(),
    );
    let l = link(&store, TestingSource::new(0..3), CollectOutlet::new());
    let e = l.start().await.unwrap_err().to_string();
    assert!(
        e.contains("resumable") && e.contains("newer databay"),
        "{e}"
    );
    // A state an inlet refuses also stops the start, naming the inlet.
    let mut bad = Checkpoint::new(0);
    bad.inlets.insert("numbers".into(), json!("not an object"));
    store.save("resumable", &bad).await.unwrap();
    let l = link(&store, TestingSource::new(0..3), CollectOutlet::new());
    let e = l.start().await.unwrap_err().to_string();
    assert!(e.contains("numbers") && e.contains("restore"), "{e}");
}

/// Operator state and what a buffer holds are in the checkpoint: after a
/// crash the running counts go on from where they were, and the held
/// records come out of the new buffer.
#[tokio::test]
async fn operator_state_and_buffered_records_survive_a_restart() {
    use databay_core::Buffer;
    use databay_core::stateful::{key_text, stateful_map};

    let store = Arc::new(MemoryStore::new());
    let build = |out: &CollectOutlet| {
        let counts = stateful_map(
            |r: &Record| key_text(r.payload.get("user")),
            |count: Option<u64>, event: Value| {
                let count = count.unwrap_or(0) + 1;
                (Some(count), json!({"user": event["user"], "count": count}))
            },
        );
        Link::builder("counts")
            .inlet(
                InletHandle::builder(PartitionedInlet::new(
                    TestingSource::new(["a", "b", "a", "a", "b", "a"].map(|u| json!({"user": u})))
                        .batch_size(2),
                ))
                .name("events")
                .build(),
            )
            .processor(counts)
            .processor(Buffer::new().count_threshold(4))
            .outlet(out.clone())
            .state_store(store.clone())
            .build()
            .unwrap()
    };
    let out = CollectOutlet::new();
    let first = build(&out);
    first.start().await.unwrap();
    first.transfer().await.unwrap(); // a:1 b:1, held
    assert!(out.is_empty());
    let saved = store.load("counts").await.unwrap().unwrap();
    assert_eq!(saved.processors.len(), 2, "{saved:?}");
    drop(first); // a crash: the buffer's two records live only in the checkpoint

    let second = build(&out);
    second.start().await.unwrap();
    second.transfer().await.unwrap(); // a:2 a:3 -> four held: released
    second.transfer().await.unwrap(); // b:2 a:4, held
    second.flush().await.unwrap();
    let got: Vec<String> = out
        .payloads()
        .iter()
        .map(|p| format!("{}{}", p["user"].as_str().unwrap(), p["count"]))
        .collect();
    assert_eq!(got, ["a1", "b1", "a2", "a3", "b2", "a4"]);
}

/// What happened, in order, across the inlets and the store.
#[derive(Clone, Default)]
struct Events(Arc<std::sync::Mutex<Vec<&'static str>>>);

impl Events {
    fn push(&self, e: &'static str) {
        self.0.lock().unwrap().push(e);
    }
    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// An inlet with resume state (its commit moves a position in memory) or
/// without (its commit lets go of the data at the source, as a broker's
/// acknowledgement does).
struct Settling {
    events: Events,
    stateful: bool,
    n: u64,
}

#[async_trait]
impl databay_core::Inlet for Settling {
    async fn pull(&mut self, _: &Update) -> Result<databay_core::Pull, BoxError> {
        self.n += 1;
        Ok(databay_core::Pull::value(self.n))
    }
    async fn commit(&mut self, _: &Update) -> Result<(), BoxError> {
        self.events
            .push(if self.stateful { "position" } else { "ack" });
        Ok(())
    }
    fn snapshot(&self) -> Option<Value> {
        self.stateful.then(|| json!(self.n))
    }
    async fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        self.n = state.as_u64().unwrap_or(0);
        Ok(())
    }
}

/// A store that notes each save among the events.
struct Noting(MemoryStore, Events);

#[async_trait]
impl StateStore for Noting {
    async fn load(&self, link: &str) -> Result<Option<Checkpoint>, BoxError> {
        self.0.load(link).await
    }
    async fn save(&self, link: &str, checkpoint: &Checkpoint) -> Result<(), BoxError> {
        self.1.push("save");
        self.0.save(link, checkpoint).await
    }
    async fn remove(&self, link: &str) -> Result<(), BoxError> {
        self.0.remove(link).await
    }
}

/// A committed transfer settles its inlets around the checkpoint: an inlet
/// with resume state commits before it (the checkpoint saves its new
/// position), one that lets go of its data at the source only after it is
/// saved, so that a crash in between sends that data again instead of
/// losing what a restored outlet cuts back.
#[tokio::test]
async fn acknowledging_inlets_commit_only_after_the_checkpoint_is_saved() {
    let events = Events::default();
    let store = Arc::new(Noting(MemoryStore::new(), events.clone()));
    let link = Link::builder("ordered")
        .inlet(
            InletHandle::builder(Settling {
                events: events.clone(),
                stateful: false,
                n: 0,
            })
            .name("queue")
            .build(),
        )
        .inlet(
            InletHandle::builder(Settling {
                events: events.clone(),
                stateful: true,
                n: 0,
            })
            .name("file")
            .build(),
        )
        .outlet(CollectOutlet::new())
        .state_store(store.clone())
        .build()
        .unwrap();
    link.start().await.unwrap();
    link.transfer().await.unwrap();
    assert_eq!(events.take(), ["position", "save", "ack"]);
    let saved = store.load("ordered").await.unwrap().unwrap();
    assert_eq!(
        saved.inlets["file"],
        json!(1),
        "the position after the pull"
    );
}
