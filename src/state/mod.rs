//! The state stores: links' checkpoints in one redb file under
//! `[daemon] state_dir` (embedded, the default choice), or in PostgreSQL
//! with `[daemon] state_url` ([`PgStore`]).
//!
//! redb is a pure-Rust, crash-safe B-tree store (copy-on-write pages, a
//! commit is one fsync'd write of the root): no C library to build, one
//! file, and a torn write leaves the last committed transaction. Saves are
//! group-committed: one writer thread gathers the checkpoints that arrive
//! while the previous commit is in flight and commits them together, so
//! ten thousand links checkpointing at once cost a few fsyncs, not ten
//! thousand. A save returns only once its commit is durable.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use databay_core::checkpoint::{Checkpoint, StateStore};
use databay_core::{BoxError, async_trait};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;

/// Link name to checkpoint (JSON).
const CHECKPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");

/// A stored checkpoint, or why it cannot be read.
pub type Stored = Result<Checkpoint, String>;

/// The file under `state_dir`.
pub const STATE_FILE: &str = "databay.redb";

enum Write {
    Save(String, Vec<u8>),
    Remove(String),
}

type Reply = tokio::sync::oneshot::Sender<Result<(), String>>;

/// Checkpoints in `state_dir/databay.redb`.
pub struct RedbStore {
    path: PathBuf,
    db: Arc<Database>,
    /// `None` once dropped: the writer then ends.
    writes: Option<mpsc::Sender<(Write, Reply)>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RedbStore {
    /// Waits for the writer to finish what it was given, so the file is
    /// closed (and its lock released) when the store is gone.
    fn drop(&mut self) {
        self.writes = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish()
    }
}

impl RedbStore {
    /// Opens (or creates) the store in `dir`, creating the directory. A
    /// file that is not a redb database (or is damaged beyond what redb
    /// repairs) is an error naming it: it is never replaced by a new one.
    pub fn open(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the state directory `{}`: {e}", dir.display()))?;
        let path = dir.join(STATE_FILE);
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => format!(
                "cannot open the state store `{}`: another databay process is using it",
                path.display()
            ),
            e => format!(
                "cannot open the state store `{}`: {e} (it is left as it is: move it away to \
                 start every link afresh)",
                path.display()
            ),
        })?;
        let db = Arc::new(db);
        let (writes, queue) = mpsc::channel::<(Write, Reply)>();
        let writer = db.clone();
        let shown = path.display().to_string();
        let writer = std::thread::Builder::new()
            .name("databay-state".into())
            .spawn(move || write_loop(&writer, &queue, &shown))
            .map_err(|e| format!("cannot start the state store's writer: {e}"))?;
        Ok(RedbStore {
            path,
            db,
            writes: Some(writes),
            writer: Some(writer),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every link that has a checkpoint, with it (in name order).
    pub fn all(&self) -> Result<Vec<(String, Stored)>, String> {
        let read = self.db.begin_read().map_err(|e| self.failed("read", e))?;
        let table = match read.open_table(CHECKPOINTS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.failed("read", e)),
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.failed("read", e))? {
            let (k, v) = entry.map_err(|e| self.failed("read", e))?;
            out.push((k.value().to_owned(), Checkpoint::from_bytes(v.value())));
        }
        Ok(out)
    }

    /// Deletes `link`'s checkpoint now, before any link runs (start-up).
    pub fn forget(&self, link: &str) -> Result<(), String> {
        let (reply, _) = tokio::sync::oneshot::channel();
        commit(&self.db, &[(Write::Remove(link.to_owned()), reply)])
            .map_err(|e| format!("state store `{}`: {e}", self.path.display()))
    }

    async fn write(&self, write: Write) -> Result<(), BoxError> {
        let (reply, done) = tokio::sync::oneshot::channel();
        self.writes
            .as_ref()
            .ok_or("the state store is closed")?
            .send((write, reply))
            .map_err(|_| "the state store's writer has stopped")?;
        done.await
            .map_err(|_| "the state store's writer has stopped")?
            .map_err(Into::into)
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> String {
        format!("state store `{}`: cannot {what}: {e}", self.path.display())
    }
}

/// Commits what arrives, gathering every write queued while the previous
/// commit ran into one transaction.
fn write_loop(db: &Database, queue: &mpsc::Receiver<(Write, Reply)>, path: &str) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while let Ok(more) = queue.try_recv() {
            batch.push(more);
            if batch.len() >= 10_000 {
                break;
            }
        }
        let result = commit(db, &batch).map_err(|e| format!("state store `{path}`: {e}"));
        for (_, reply) in batch {
            let _ = reply.send(result.clone());
        }
    }
}

fn commit(db: &Database, batch: &[(Write, Reply)]) -> Result<(), String> {
    let txn = db
        .begin_write()
        .map_err(|e| format!("cannot begin a write: {e}"))?;
    {
        let mut table = txn
            .open_table(CHECKPOINTS)
            .map_err(|e| format!("cannot open the checkpoints: {e}"))?;
        for (write, _) in batch {
            match write {
                Write::Save(link, bytes) => table
                    .insert(link.as_str(), bytes.as_slice())
                    .map(drop)
                    .map_err(|e| format!("cannot write the checkpoint of `{link}`: {e}"))?,
                Write::Remove(link) => table
                    .remove(link.as_str())
                    .map(drop)
                    .map_err(|e| format!("cannot remove the checkpoint of `{link}`: {e}"))?,
            }
        }
    }
    txn.commit()
        .map_err(|e| format!("cannot commit (is the disk full?): {e}"))
}

#[async_trait]
impl StateStore for RedbStore {
    async fn load(&self, link: &str) -> Result<Option<Checkpoint>, BoxError> {
        let db = self.db.clone();
        let key = link.to_owned();
        let bytes = tokio::task::spawn_blocking(move || -> Result<Option<Vec<u8>>, String> {
            let read = db.begin_read().map_err(|e| e.to_string())?;
            let table = match read.open_table(CHECKPOINTS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
            let value = table.get(key.as_str()).map_err(|e| e.to_string())?;
            Ok(value.map(|v| v.value().to_vec()))
        })
        .await
        .map_err(|e| self.failed("read", e))?
        .map_err(|e| self.failed("read", e))?;
        match bytes {
            None => Ok(None),
            Some(bytes) => Checkpoint::from_bytes(&bytes).map(Some).map_err(|e| {
                format!(
                    "state store `{}`: the checkpoint of link `{link}` is unreadable: {e} \
                     (`databay state reset CONFIG --link {link}` starts it afresh)",
                    self.path.display()
                )
                .into()
            }),
        }
    }

    async fn save(&self, link: &str, checkpoint: &Checkpoint) -> Result<(), BoxError> {
        self.write(Write::Save(link.to_owned(), checkpoint.to_bytes()))
            .await
    }

    async fn remove(&self, link: &str) -> Result<(), BoxError> {
        self.write(Write::Remove(link.to_owned())).await
    }
}

/// The store a config names: `state_dir` or `state_url`.
pub enum AnyStore {
    /// `[daemon] state_dir`.
    Redb(RedbStore),
    /// `[daemon] state_url`.
    #[cfg(feature = "postgres")]
    Postgres(Box<PgStore>),
}

impl AnyStore {
    /// Opens the store `[daemon]` names, if it names one.
    pub async fn open(daemon: &crate::config::DaemonSettings) -> Result<Option<Self>, String> {
        match (&daemon.state_dir, &daemon.state_url) {
            (Some(dir), _) => RedbStore::open(dir).map(|s| Some(AnyStore::Redb(s))),
            #[cfg(feature = "postgres")]
            (None, Some(url)) => PgStore::open(url)
                .await
                .map(|s| Some(AnyStore::Postgres(Box::new(s)))),
            #[cfg(not(feature = "postgres"))]
            (None, Some(_)) => Err(
                "`[daemon] state_url`: this build has no PostgreSQL support (the `postgres` feature)"
                    .to_owned(),
            ),
            (None, None) => Ok(None),
        }
    }

    /// Where it is, for messages.
    pub fn describe(&self) -> String {
        match self {
            AnyStore::Redb(s) => s.path().display().to_string(),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.target(),
        }
    }

    /// Every link that has a checkpoint, with it (in name order).
    pub async fn all(&self) -> Result<Vec<(String, Stored)>, String> {
        match self {
            AnyStore::Redb(s) => s.all(),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.all().await,
        }
    }

    /// Deletes `link`'s checkpoint now.
    pub async fn forget(&self, link: &str) -> Result<(), String> {
        match self {
            AnyStore::Redb(s) => s.forget(link),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.forget(link).await,
        }
    }

    /// The store, for links.
    pub fn shared(self) -> Arc<dyn StateStore> {
        match self {
            AnyStore::Redb(s) => Arc::new(s),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => Arc::new(*s),
        }
    }
}

/// `databay state list|show|reset CONFIG`.
pub(crate) async fn command(
    action: crate::cli::StateAction,
    registry: databay_component::Registry,
) -> std::process::ExitCode {
    use crate::cli::StateAction;
    use std::process::ExitCode;
    let path = match &action {
        StateAction::List { config }
        | StateAction::Show { config, .. }
        | StateAction::Reset { config, .. } => config.clone(),
    };
    let config = match crate::config::Config::load(&path, &registry) {
        Ok(c) => c,
        Err(errors) => return crate::cli::config_failed(&errors),
    };
    crate::scrub::add_secrets(&config.secrets);
    let store = match AnyStore::open(&config.daemon).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            eprintln!(
                "error: {} sets no `[daemon] state_dir` or `state_url`: its links keep no checkpoints",
                path.display()
            );
            return ExitCode::from(crate::cli::EXIT_USAGE);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let known = |name: &str| config.links.iter().any(|l| l.summary.name == name);
    match action {
        StateAction::List { .. } => {
            let all = match store.all().await {
                Ok(all) => all,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if all.is_empty() {
                println!("no checkpoints in {}", store.describe());
            }
            for (name, checkpoint) in all {
                let gone = if known(&name) {
                    ""
                } else {
                    " (no such link in the config)"
                };
                match checkpoint {
                    Ok(c) => println!(
                        "{name}: next index {}; inlets with state: [{}]; outlets with state: [{}]{gone}",
                        c.next_index,
                        c.inlets.keys().cloned().collect::<Vec<_>>().join(", "),
                        c.outlets.keys().cloned().collect::<Vec<_>>().join(", "),
                    ),
                    Err(e) => println!("{name}: unreadable: {e}{gone}"),
                }
            }
            ExitCode::SUCCESS
        }
        StateAction::Show { link, .. } => match store.shared().load(&link).await {
            Ok(Some(c)) => {
                println!("{}", serde_json::to_string_pretty(&c).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Ok(None) => {
                eprintln!("error: no checkpoint for link `{link}`: it starts afresh");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        StateAction::Reset { link, .. } => {
            let names: Vec<String> = match link {
                Some(name) => vec![name],
                None => match store.all().await {
                    Ok(all) => all.into_iter().map(|(n, _)| n).collect(),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            };
            for name in &names {
                if let Err(e) = store.forget(name).await {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
                println!("reset `{name}`: it starts afresh");
            }
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn checkpoints_survive_reopening_and_group_commits_keep_every_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(dir.path()).unwrap());
        let mut saves = Vec::new();
        for i in 0..50u64 {
            let store = store.clone();
            saves.push(tokio::spawn(async move {
                let mut c = Checkpoint::new(i);
                c.inlets.insert("in".into(), json!({"offset": i}));
                store.save(&format!("link{i}"), &c).await
            }));
        }
        for s in saves {
            s.await.unwrap().unwrap();
        }
        store.remove("link7").await.unwrap();
        drop(store);
        let store = RedbStore::open(dir.path()).unwrap();
        assert_eq!(store.all().unwrap().len(), 49);
        let c = store.load("link3").await.unwrap().unwrap();
        assert_eq!(c.next_index, 3);
        assert_eq!(c.inlets["in"], json!({"offset": 3}));
        assert!(store.load("link7").await.unwrap().is_none());
        assert!(store.load("nope").await.unwrap().is_none());
    }

    #[test]
    fn a_file_that_is_not_a_store_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        std::fs::write(&path, b"not a database at all, but someone's data").unwrap();
        let e = RedbStore::open(dir.path()).unwrap_err();
        assert!(
            e.contains("cannot open the state store") && e.contains(STATE_FILE),
            "{e}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"not a database at all, but someone's data"
        );
    }
}
