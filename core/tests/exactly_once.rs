//! Exactly once into an outlet whose database holds the link's
//! checkpoints: the records and the checkpoint commit together, an aborted
//! transfer writes neither, and a commit whose outcome is unknown makes the
//! link read its checkpoint back, so nothing is lost or written twice
//! whichever way the commit went.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use databay_core::checkpoint::{Checkpoint, StateStore};
use databay_core::source::PartitionedInlet;
use databay_core::testing::TestingSource;
use databay_core::transaction::TransactionalOutlet;
use databay_core::{BoxError, InletHandle, Link, Outlet, Record, Update, async_trait};
use serde_json::{Value, json};

/// How the next commit goes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Commit {
    Works,
    /// Fails before anything is written.
    FailsBefore,
    /// Is written, then the answer is lost (the connection dropped while
    /// committing): the link is told it failed.
    FailsAfter,
}

/// A database in memory: committed rows and checkpoints.
#[derive(Default)]
struct Data {
    rows: Vec<Value>,
    checkpoints: HashMap<String, Vec<u8>>,
    commits: usize,
}

#[derive(Clone)]
struct Db {
    data: Arc<Mutex<Data>>,
    location: String,
}

impl Db {
    fn new(location: &str) -> Db {
        Db {
            data: Arc::default(),
            location: location.to_owned(),
        }
    }

    fn rows(&self) -> Vec<Value> {
        self.data.lock().unwrap().rows.clone()
    }

    fn commits(&self) -> usize {
        self.data.lock().unwrap().commits
    }
}

#[async_trait]
impl StateStore for Db {
    async fn load(&self, link: &str) -> Result<Option<Checkpoint>, BoxError> {
        let bytes = self.data.lock().unwrap().checkpoints.get(link).cloned();
        Ok(bytes.map(|b| Checkpoint::from_bytes(&b)).transpose()?)
    }

    async fn save(&self, link: &str, checkpoint: &Checkpoint) -> Result<(), BoxError> {
        let mut data = self.data.lock().unwrap();
        data.checkpoints
            .insert(link.to_owned(), checkpoint.to_bytes());
        Ok(())
    }

    async fn remove(&self, link: &str) -> Result<(), BoxError> {
        self.data.lock().unwrap().checkpoints.remove(link);
        Ok(())
    }

    fn location(&self) -> Option<String> {
        Some(self.location.clone())
    }
}

/// An outlet writing rows into a [`Db`], in one transaction per held
/// transfer.
struct DbOutlet {
    db: Db,
    held: Option<(u64, Vec<Value>)>,
    next: Arc<Mutex<Commit>>,
}

impl DbOutlet {
    fn new(db: &Db) -> (DbOutlet, Arc<Mutex<Commit>>) {
        let next = Arc::new(Mutex::new(Commit::Works));
        let outlet = DbOutlet {
            db: db.clone(),
            held: None,
            next: next.clone(),
        };
        (outlet, next)
    }
}

#[async_trait]
impl Outlet for DbOutlet {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        let values = records.iter().map(|r| r.payload.clone());
        match &mut self.held {
            Some((index, rows)) if *index == update.index() => rows.extend(values),
            _ => self.db.data.lock().unwrap().rows.extend(values),
        }
        Ok(())
    }

    fn transactional(&mut self) -> Option<&mut dyn TransactionalOutlet> {
        Some(self)
    }
}

#[async_trait]
impl TransactionalOutlet for DbOutlet {
    fn location(&self) -> Option<String> {
        Some(self.db.location.clone())
    }

    fn hold(&mut self, update: &Update) {
        self.held = Some((update.index(), Vec::new()));
    }

    async fn commit(
        &mut self,
        update: &Update,
        link: &str,
        checkpoint: &Checkpoint,
    ) -> Result<bool, BoxError> {
        let Some((index, rows)) = self.held.take() else {
            return Ok(false);
        };
        if index != update.index() || rows.is_empty() {
            return Ok(false);
        }
        let how = std::mem::replace(&mut *self.next.lock().unwrap(), Commit::Works);
        if how == Commit::FailsBefore {
            return Err("the connection dropped before the commit".into());
        }
        {
            let mut data = self.db.data.lock().unwrap();
            data.rows.extend(rows);
            data.checkpoints
                .insert(link.to_owned(), checkpoint.to_bytes());
            data.commits += 1;
        }
        if how == Commit::FailsAfter {
            return Err("the connection dropped while committing".into());
        }
        Ok(true)
    }

    async fn abort(&mut self, _update: &Update) {
        self.held = None;
    }
}

fn link(name: &str, db: &Db, outlet: DbOutlet, values: std::ops::Range<i64>) -> Link {
    Link::builder(name)
        .inlet(
            InletHandle::builder(PartitionedInlet::new(
                TestingSource::new(values).batch_size(3),
            ))
            .name("numbers")
            .build(),
        )
        .outlet(outlet)
        .state_store(Arc::new(db.clone()))
        .build()
        .unwrap()
}

fn numbers(range: std::ops::Range<i64>) -> Vec<Value> {
    range.map(|n| json!(n)).collect()
}

#[tokio::test]
async fn the_outlet_in_the_stores_database_commits_the_checkpoint() {
    let db = Db::new("mem://one");
    let (outlet, _) = DbOutlet::new(&db);
    let l = link("claims", &db, outlet, 0..6);
    l.start().await.unwrap();
    assert_eq!(l.exactly_once_outlet().as_deref(), Some("DbOutlet"));
    l.transfer().await.unwrap();
    l.transfer().await.unwrap();
    assert_eq!(db.rows(), numbers(0..6));
    assert_eq!(db.commits(), 2, "each transfer is one commit");
    let saved = db.load("claims").await.unwrap().unwrap();
    assert_eq!(saved.inlets["numbers"], json!({"testing": 6}));
    // Exhausted: nothing to write, nothing committed, the link goes on.
    l.transfer().await.unwrap();
    assert_eq!(db.commits(), 2);
    assert!(l.shutdown().await.is_empty());
}

#[tokio::test]
async fn an_outlet_elsewhere_is_not_claimed() {
    let db = Db::new("mem://store");
    let elsewhere = Db::new("mem://elsewhere");
    let (outlet, _) = DbOutlet::new(&elsewhere);
    let l = link("elsewhere", &db, outlet, 0..3);
    l.start().await.unwrap();
    assert_eq!(l.exactly_once_outlet(), None);
    l.transfer().await.unwrap();
    assert_eq!(elsewhere.rows(), numbers(0..3));
    assert_eq!(elsewhere.commits(), 0, "written at least once, uncommitted");
    // The checkpoint went to the store as usual.
    let saved = db.load("elsewhere").await.unwrap().unwrap();
    assert_eq!(saved.inlets["numbers"], json!({"testing": 3}));
}

#[tokio::test]
async fn a_commit_that_failed_is_read_again_and_written_once() {
    let db = Db::new("mem://before");
    let (outlet, next) = DbOutlet::new(&db);
    let l = link("before", &db, outlet, 0..9);
    l.start().await.unwrap();
    l.transfer().await.unwrap();
    *next.lock().unwrap() = Commit::FailsBefore;
    let e = l.transfer().await.unwrap_err().to_string();
    assert!(e.contains("dropped before the commit"), "{e}");
    assert!(e.contains("checkpoint"), "{e}");
    assert_eq!(db.rows(), numbers(0..3));
    l.transfer().await.unwrap();
    l.transfer().await.unwrap();
    assert_eq!(db.rows(), numbers(0..9), "every record once, in order");
}

#[tokio::test]
async fn a_commit_that_happened_but_said_it_failed_is_not_written_twice() {
    let db = Db::new("mem://after");
    let (outlet, next) = DbOutlet::new(&db);
    let l = link("after", &db, outlet, 0..9);
    l.start().await.unwrap();
    l.transfer().await.unwrap();
    *next.lock().unwrap() = Commit::FailsAfter;
    l.transfer().await.unwrap_err();
    assert_eq!(db.rows(), numbers(0..6));
    // The link reads back the checkpoint the commit wrote and goes on
    // after it.
    l.transfer().await.unwrap();
    l.transfer().await.unwrap();
    assert_eq!(db.rows(), numbers(0..9), "every record once, in order");
}

#[tokio::test]
async fn a_crash_before_the_commit_loses_records_and_checkpoint_together() {
    let db = Db::new("mem://crash");
    let (outlet, next) = DbOutlet::new(&db);
    let first = link("crash", &db, outlet, 0..9);
    first.start().await.unwrap();
    first.transfer().await.unwrap();
    // The process dies mid-commit: as far as the database goes, the
    // transaction never was.
    *next.lock().unwrap() = Commit::FailsBefore;
    first.transfer().await.unwrap_err();
    drop(first);
    let (outlet, _) = DbOutlet::new(&db);
    let second = link("crash", &db, outlet, 0..9);
    second.start().await.unwrap();
    for _ in 0..4 {
        second.transfer().await.unwrap();
    }
    assert_eq!(db.rows(), numbers(0..9), "every record once, in order");
}

/// The first commit's outcome unknown, either way: the link goes back to
/// the starting checkpoint it saved, or on from the one the commit wrote.
#[tokio::test]
async fn the_first_commit_failing_either_way_loses_and_repeats_nothing() {
    for how in [Commit::FailsBefore, Commit::FailsAfter] {
        let db = Db::new("mem://first");
        let (outlet, next) = DbOutlet::new(&db);
        let l = link("first", &db, outlet, 0..6);
        l.start().await.unwrap();
        let start = db.load("first").await.unwrap();
        assert!(start.is_some(), "a starting checkpoint is saved");
        *next.lock().unwrap() = how;
        l.transfer().await.unwrap_err();
        for _ in 0..3 {
            l.transfer().await.unwrap();
        }
        assert_eq!(db.rows(), numbers(0..6), "{how:?}: every record once");
    }
}
