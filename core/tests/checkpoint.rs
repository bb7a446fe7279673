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
