//! File plumbing shared by the file-writing outlets: errors that name the
//! path, opening with parent-directory creation, and durable syncing.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// An IO failure on a named file or directory.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} `{}`: {source}", path.display())]
pub struct FileIoError {
    /// What was being done: `open`, `write`, `sync`, ...
    pub action: &'static str,
    /// The file or directory concerned.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl FileIoError {
    pub(crate) fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        FileIoError {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The file a record's path metadata names: a relative path resolves
/// against `base` (the config file's directory, as `path` options do) when
/// the outlet was given one, else against the working directory.
pub(crate) fn metadata_path<'a>(base: Option<&Path>, path: &'a str) -> std::borrow::Cow<'a, Path> {
    let path = Path::new(path);
    match base {
        Some(base) if path.is_relative() => std::borrow::Cow::Owned(base.join(path)),
        _ => std::borrow::Cow::Borrowed(path),
    }
}

/// A key under which two spellings of one file meet (`out.csv`,
/// `./out.csv`, `d/../out.csv`), so a batch opens, truncates and heads each
/// file once. Lexical: `.` dropped, `..` folded into its parent.
pub(crate) fn file_key(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut key = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                let folded =
                    matches!(key.components().next_back(), Some(Component::Normal(_))) && key.pop();
                if !folded {
                    key.push("..");
                }
            }
            other => key.push(other),
        }
    }
    key
}

/// Opens `path` for writing, creating it and its missing parent directories.
/// `truncate` empties an existing file, otherwise writes go to its end.
///
/// Returns the file and whether this call created it: a created file's
/// directory entry must be synced too before the write counts as durable.
pub(crate) fn open_for_write(path: &Path, truncate: bool) -> Result<(File, bool), FileIoError> {
    let created = !path.exists();
    if created && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .map_err(|e| FileIoError::new("create the directory", parent, e))?;
    }
    let mut options = OpenOptions::new();
    options.create(true);
    if truncate {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    let file = options
        .open(path)
        .map_err(|e| FileIoError::new("open", path, e))?;
    Ok((file, created))
}

/// Whether a push of `records` opens and writes its files in place, on
/// the pushing task, rather than on tokio's blocking pool: a small push,
/// whose writes (to the page cache: the sync is deferred, see
/// [`Unsynced`]) take microseconds, less than the trip to another thread
/// and back, which on a machine with idle cores wakes one of them.
pub(crate) fn in_place(records: &[databay_core::Record]) -> bool {
    records.len() < databay_core::compute::HEAVY_BATCH
}

/// What an outlet keeps about its files from one push to the next (what
/// is left to sync, how a file was left), not one of its settings: a copy
/// of the outlet starts without it, and it takes no part in comparing
/// outlets.
#[derive(Debug, Default)]
pub(crate) struct Transient<T>(pub(crate) T);

impl<T: Default> Clone for Transient<T> {
    fn clone(&self) -> Self {
        Transient(T::default())
    }
}

impl<T> PartialEq for Transient<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for Transient<T> {}

/// Files written and not yet synced, for an outlet that defers its sync
/// ([`databay_core::Outlet::defers_sync`]): a handle on each path, and
/// whether a push since the last sync created the file (its directory
/// entry is synced too).
#[derive(Debug, Default)]
pub(crate) struct Unsynced {
    files: std::collections::HashMap<PathBuf, (File, bool)>,
}

impl Unsynced {
    /// Notes `file`, just written at `path` (`created` by that write).
    pub(crate) fn note(&mut self, path: PathBuf, file: File, created: bool) {
        let entry = self.files.entry(path).or_insert((file, created));
        entry.1 |= created;
    }

    /// Syncs every file noted since the last sync, off the async workers;
    /// those a failure left unsynced stay noted.
    pub(crate) async fn sync(&mut self) -> Result<(), FileIoError> {
        if self.files.is_empty() {
            return Ok(());
        }
        let mut files = std::mem::take(&mut self.files);
        let synced = tokio::task::spawn_blocking(move || {
            let mut result = Ok(());
            // Synced files leave the map; after a failure the rest stay.
            files.retain(|path, (file, created)| {
                result.is_err() || {
                    result = sync(file, path, *created);
                    result.is_err()
                }
            });
            (files, result)
        })
        .await;
        match synced {
            Ok((left, result)) => {
                self.files = left;
                result
            }
            Err(e) => Err(FileIoError::new(
                "sync",
                Path::new("the files written"),
                io::Error::other(e.to_string()),
            )),
        }
    }
}

/// Makes what was written to `file` durable: its data, and the directory
/// entry when the file was just created (otherwise a crash could lose the
/// whole file even though its data blocks were synced).
pub(crate) fn sync(file: &File, path: &Path, created: bool) -> Result<(), FileIoError> {
    file.sync_data()
        .map_err(|e| FileIoError::new("sync", path, e))?;
    if created {
        sync_parent_dir(path)?;
    }
    Ok(())
}

#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> Result<(), FileIoError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| FileIoError::new("sync the directory", parent, e))
}

#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> Result<(), FileIoError> {
    // Directories cannot be opened for syncing here; the file system
    // persists directory entries with the file's metadata.
    Ok(())
}

/// What kind of JSON value `value` is, for error messages.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Tests: the same file as `path`, spelled differently (`dir/sub/../name`).
#[cfg(test)]
pub(crate) fn other_spelling(path: &Path) -> std::path::PathBuf {
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    dir.join("sub").join("..").join(path.file_name().unwrap())
}

/// The files a push wrote: each one's path, whether it was truncated, and
/// its length after the write.
pub(crate) type Written = Vec<(PathBuf, bool, u64)>;

/// What a file-writing outlet has durably written to each file it appends
/// to: its length after the last push. That is the outlet's resume state:
/// restored after a crash, each file is cut back to it, so the lines of a
/// push whose transfer was not checkpointed (a torn write, or lines the
/// resumed inlet will deliver again) do not appear twice.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct CommittedLengths {
    lengths: std::collections::BTreeMap<String, u64>,
}

impl CommittedLengths {
    /// After a push: `written` holds each file written, whether it was
    /// truncated (rewritten whole, so not cut back), and its length.
    pub(crate) fn update(&mut self, written: Written) {
        for (path, truncated, len) in written {
            let key = path.to_string_lossy().into_owned();
            if truncated {
                self.lengths.remove(&key);
            } else {
                self.lengths.insert(key, len);
            }
        }
    }

    /// At start: `path` (the default file, appended to) is as long as it
    /// is now (0 if missing), unless a restored checkpoint said otherwise.
    /// The first checkpoint then holds the file's length, so a crash after
    /// the first push and before the checkpoint that follows it cuts that
    /// push off too.
    pub(crate) fn starting(&mut self, path: &Path) {
        let len = fs::metadata(path).map_or(0, |m| m.len());
        self.lengths
            .entry(path.to_string_lossy().into_owned())
            .or_insert(len);
    }

    /// `{"files": {path: length}}`, or `None` before any append.
    pub(crate) fn snapshot(&self) -> Option<Value> {
        if self.lengths.is_empty() {
            return None;
        }
        Some(serde_json::json!({ "files": self.lengths }))
    }

    /// Cuts each file back to its committed length; a file that is now
    /// shorter (truncated, rotated) or gone is left as it is.
    pub(crate) fn restore(&mut self, state: Value) -> Result<(), databay_core::BoxError> {
        let files = state
            .get("files")
            .and_then(Value::as_object)
            .ok_or("resume state must be {\"files\": {path: length}}")?;
        let mut lengths = std::collections::BTreeMap::new();
        for (path, len) in files {
            let len = len
                .as_u64()
                .ok_or_else(|| format!("resume state: the length of `{path}` is not a number"))?;
            lengths.insert(path.clone(), len);
        }
        for (path, len) in &lengths {
            let Ok(file) = OpenOptions::new().write(true).open(path) else {
                continue;
            };
            let now = file
                .metadata()
                .map_err(|e| FileIoError::new("read the length of", Path::new(path), e))?
                .len();
            if now > *len {
                file.set_len(*len)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| {
                        FileIoError::new("cut the uncommitted tail of", Path::new(path), e)
                    })?;
                tracing::info!(
                    path = %path,
                    bytes = now - len,
                    "cut what was written after the last checkpoint; the resumed link writes it again"
                );
            }
        }
        self.lengths = lengths;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unsynced_files_are_noted_once_each_and_synced_all_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("new/a.csv");
        let b = dir.path().join("b.csv");
        let mut unsynced = Unsynced::default();
        for (path, truncate) in [(&a, false), (&b, false), (&a, false)] {
            let (mut file, created) = open_for_write(path, truncate).unwrap();
            std::io::Write::write_all(&mut file, b"x\n").unwrap();
            unsynced.note(path.clone(), file, created);
        }
        // `a` twice: once, still marked as created by the first write (its
        // directory entry is synced too).
        assert_eq!(unsynced.files.len(), 2);
        assert!(unsynced.files[&a].1);
        assert!(unsynced.files[&b].1);
        unsynced.sync().await.unwrap();
        assert!(unsynced.files.is_empty());
        assert_eq!(fs::read_to_string(&a).unwrap(), "x\nx\n");
        // Nothing left: a second sync has nothing to do.
        unsynced.sync().await.unwrap();
    }
}
