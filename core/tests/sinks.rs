//! Partitioned outlets: routing by key, each partition's resume state
//! (a file partition's committed length, which a restore uses to cut a
//! torn tail), failures naming the partition, dynamic workers.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use databay_core::sink::{
    DynamicOutlet, DynamicSink, FixedPartitionedSink, PartitionedOutlet, StatefulSinkPartition,
    StatelessSinkPartition, hash_key,
};
use databay_core::testing::StaticInlet;
use databay_core::{BoxError, Link, OutletHandle, Record, Update, async_trait};
use serde_json::{Value, json};

/// Appends each record as a JSON line to `dir/<part>.ndjson`; its state is
/// the file's length after the last write.
struct FileSink {
    dir: PathBuf,
    parts: usize,
    fail: Arc<Mutex<Option<String>>>,
}

struct FilePart {
    name: String,
    path: PathBuf,
    len: u64,
    fail: Arc<Mutex<Option<String>>>,
}

#[async_trait]
impl StatefulSinkPartition for FilePart {
    async fn write_batch(&mut self, records: &[&Record]) -> Result<(), BoxError> {
        if self.fail.lock().unwrap().as_deref() == Some(&self.name) {
            return Err("disk full".into());
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        for r in records {
            writeln!(file, "{}", r.payload)?;
        }
        file.sync_data()?;
        self.len = file.metadata()?.len();
        Ok(())
    }

    fn snapshot(&self) -> Value {
        json!(self.len)
    }
}

#[async_trait]
impl FixedPartitionedSink for FileSink {
    type Partition = FilePart;

    async fn list_parts(&self) -> Result<Vec<String>, BoxError> {
        Ok((0..self.parts).map(|i| format!("part-{i}")).collect())
    }

    fn part_fn(&self, record: &Record) -> usize {
        hash_key(record.payload["user"].as_str().unwrap_or(""))
    }

    async fn build_part(&self, part: &str, resume: Option<Value>) -> Result<FilePart, BoxError> {
        let path = self.dir.join(format!("{part}.ndjson"));
        let len = match resume {
            // Cut whatever was written after the committed length: a torn
            // tail from a crash mid-write, or records the restore repeats.
            Some(state) => {
                let len = state.as_u64().ok_or("state is not a length")?;
                let file = std::fs::OpenOptions::new().write(true).open(&path)?;
                if file.metadata()?.len() > len {
                    file.set_len(len)?;
                }
                len
            }
            None => 0,
        };
        Ok(FilePart {
            name: part.to_owned(),
            path,
            len,
            fail: self.fail.clone(),
        })
    }
}

fn orders(range: std::ops::Range<u32>) -> Vec<Value> {
    range
        .map(|n| json!({"user": format!("u{}", n % 5), "n": n}))
        .collect()
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn records_go_to_their_keys_partition_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink {
        dir: dir.path().into(),
        parts: 3,
        fail: Arc::default(),
    };
    let link = Link::builder("parts")
        .inlet(StaticInlet::values(orders(0..30)))
        .outlet(PartitionedOutlet::new(sink))
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    let mut all = 0;
    for part in 0..3 {
        let got = lines(&dir.path().join(format!("part-{part}.ndjson")));
        all += got.len();
        for pair in got.windows(2) {
            assert!(pair[0]["n"].as_u64() < pair[1]["n"].as_u64(), "in order");
        }
        for r in &got {
            let user = r["user"].as_str().unwrap();
            assert_eq!(hash_key(user) % 3, part, "{user} in its partition");
        }
    }
    assert_eq!(all, 30);
}

/// The partition's snapshot is its committed length; restoring it cuts
/// what was written after (a torn tail), and writing carries on.
#[tokio::test]
async fn a_restore_cuts_the_torn_tail_after_the_committed_length() {
    let dir = tempfile::tempdir().unwrap();
    let sink = || FileSink {
        dir: dir.path().into(),
        parts: 1,
        fail: Arc::default(),
    };
    let out = OutletHandle::builder(PartitionedOutlet::new(sink()))
        .name("files")
        .build();
    let link = Link::builder("torn")
        .inlet(StaticInlet::values(orders(0..3)))
        .outlet(out)
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    let states = link.outlet_snapshots().await;
    let path = dir.path().join("part-0.ndjson");
    let committed = std::fs::metadata(&path).unwrap().len();
    assert_eq!(states["files"], json!({"part-0": committed}));
    // A crash mid-write leaves half a line.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"user\":\"u9\",\"n\"")
        .unwrap();

    let again = Link::builder("torn")
        .inlet(StaticInlet::values(orders(3..5)))
        .outlet(
            OutletHandle::builder(PartitionedOutlet::new(sink()))
                .name("files")
                .build(),
        )
        .build()
        .unwrap();
    again.restore_outlets(states).await.unwrap();
    again.transfer().await.unwrap();
    assert_eq!(lines(&path), orders(0..5), "the torn tail is gone");
}

#[tokio::test]
async fn a_failing_partition_fails_the_push_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let fail = Arc::new(Mutex::new(Some("part-1".to_owned())));
    let sink = FileSink {
        dir: dir.path().into(),
        parts: 2,
        fail: fail.clone(),
    };
    let mut outlet = PartitionedOutlet::new(sink);
    let records: Vec<Record> = orders(0..10).into_iter().map(Record::new).collect();
    let e = databay_core::Outlet::push(&mut outlet, &records, &Update::new(["f"], 0))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("partition `part-1`: disk full"), "{e}");
    assert!(!e.contains("part-0"), "{e}");
}

#[derive(Clone, Default)]
struct Workers(Arc<Mutex<BTreeMap<usize, Vec<Value>>>>);

struct Worker(usize, Workers);

#[async_trait]
impl StatelessSinkPartition for Worker {
    async fn write_batch(&mut self, records: &[&Record]) -> Result<(), BoxError> {
        let mut seen = self.1.0.lock().unwrap();
        let mine = seen.entry(self.0).or_default();
        mine.extend(records.iter().map(|r| r.payload.clone()));
        Ok(())
    }
}

#[async_trait]
impl DynamicSink for Workers {
    type Partition = Worker;
    async fn build(&self, index: usize, count: usize) -> Result<Worker, BoxError> {
        assert_eq!(count, 3);
        Ok(Worker(index, self.clone()))
    }
}

#[tokio::test]
async fn dynamic_workers_each_write_a_share_of_the_batch() {
    let workers = Workers::default();
    let link = Link::builder("dyn")
        .inlet(StaticInlet::values(0..10))
        .outlet(DynamicOutlet::new(workers.clone()).workers(3))
        .build()
        .unwrap();
    link.transfer().await.unwrap();
    let seen = workers.0.lock().unwrap();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let all: Vec<Value> = seen.values().flatten().cloned().collect();
    assert_eq!(all, (0..10).map(|n| json!(n)).collect::<Vec<_>>());
}
