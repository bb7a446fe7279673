//! [`FileOutlet`]: writes each record's payload as one line of a text file,
//! as Databay's intermediate `FileOutlet` example does, with per-record
//! target file and mode taken from metadata.
//!
#![doc = include_str!("README.md")]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use databay_core::{BoxError, Outlet, Record, Rejected, Update, async_trait};
use serde_json::Value;

use crate::common::{FileIoError, json_kind, open_for_write};
use crate::file_mode::{FileMode, ParseFileModeError};

/// A documented config table for this outlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

pub(crate) mod options;
pub use options::FileOutletOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// Writes one line per record to a file: the payload as compact JSON, or a
/// string payload as the raw string (Databay writes `str(payload)`).
///
/// Each record goes to the file named by its [`FILEPATH`](Self::FILEPATH)
/// metadata, or to the default path, in the mode named by its
/// [`FILE_MODE`](Self::FILE_MODE) metadata, or the default mode. Each file
/// is opened once per push and truncated at most once per push, before the
/// batch's first line, so a batch never erases its own records. `push`
/// returns `Ok` once every line is synced to disk. The
/// [module documentation](self) details the format, options and errors.
///
/// ```
/// use databay_core::{Outlet, Record, Update};
/// use databay_outlets::{FileMode, FileOutlet};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let dir = tempfile::tempdir().unwrap();
/// let mut outlet = FileOutlet::new(dir.path().join("out.txt")).file_mode(FileMode::Append);
/// let records = [
///     Record::new(1),
///     Record::new("cat").with_meta(FileOutlet::FILEPATH, dir.path().join("cats.txt").to_str().unwrap()),
/// ];
/// outlet.push(&records, &Update::new(["demo"], 0)).await.unwrap();
/// assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), "1\n");
/// assert_eq!(std::fs::read_to_string(dir.path().join("cats.txt")).unwrap(), "cat\n");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutlet {
    default_filepath: PathBuf,
    default_file_mode: FileMode,
    base_dir: Option<PathBuf>,
    committed: crate::common::CommittedLengths,
    /// What pushes wrote since the last sync.
    unsynced: crate::common::Transient<crate::common::Unsynced>,
}

/// Why a [`FileOutlet`] push or setting failed.
#[derive(Debug, thiserror::Error)]
pub enum FileOutletError {
    /// A record's metadata value is not a string.
    #[error("record {index}: metadata `{key}` must be a string, found {found}")]
    Metadata {
        /// Index of the record in the pushed batch, from 0.
        index: usize,
        /// The metadata key.
        key: &'static str,
        /// What was found instead (`a number`, `null`, ...).
        found: &'static str,
    },
    /// A record's `FileOutlet.FILE_MODE` is not a known mode.
    #[error("record {index}: metadata `{}`: {source}", FileOutlet::FILE_MODE)]
    Mode {
        /// Index of the record in the pushed batch, from 0.
        index: usize,
        /// The parse error, naming the bad mode.
        #[source]
        source: ParseFileModeError,
    },
    /// An encoding other than UTF-8 was asked for.
    #[error("unsupported encoding `{0}`: FileOutlet writes utf-8 only")]
    Encoding(String),
    /// Creating, opening, writing or syncing a file failed.
    #[error(transparent)]
    Io(#[from] FileIoError),
    /// The blocking task that writes the files panicked or was cancelled.
    #[error("FileOutlet writer task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The lines one push writes to one file.
struct Target {
    path: PathBuf,
    truncate: bool,
    lines: Vec<u8>,
}

impl FileOutlet {
    /// Metadata key: the file a record is written to (a string path).
    pub const FILEPATH: &'static str = "FileOutlet.FILEPATH";
    /// Metadata key: the mode a record is written in, `"a"` or `"w"`.
    pub const FILE_MODE: &'static str = "FileOutlet.FILE_MODE";

    /// Writes records without `FILEPATH` metadata to `default_filepath`,
    /// appending.
    pub fn new(default_filepath: impl Into<PathBuf>) -> Self {
        FileOutlet {
            default_filepath: default_filepath.into(),
            default_file_mode: FileMode::Append,
            base_dir: None,
            committed: Default::default(),
            unsynced: Default::default(),
        }
    }

    /// The mode for records without `FILE_MODE` metadata (default
    /// [`FileMode::Append`]).
    pub fn file_mode(mut self, mode: FileMode) -> Self {
        self.default_file_mode = mode;
        self
    }

    /// Checks Databay's `default_encoding` option. Files are always written
    /// as UTF-8 (JSON text and Rust strings are UTF-8), so only `utf-8` and
    /// its spellings (`utf8`, `UTF-8`, ...) are accepted; anything else is
    /// an error rather than silently written as UTF-8.
    pub fn encoding(self, encoding: &str) -> Result<Self, FileOutletError> {
        let normalized = encoding.trim().to_ascii_lowercase().replace(['-', '_'], "");
        if normalized == "utf8" {
            Ok(self)
        } else {
            Err(FileOutletError::Encoding(encoding.to_owned()))
        }
    }

    /// Resolves a relative path in a record's `FILEPATH` metadata against
    /// `dir` (the config file's directory, as the daemon does for `path`
    /// options) instead of the working directory.
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// Where records without `FILEPATH` metadata go.
    pub fn default_filepath(&self) -> &Path {
        &self.default_filepath
    }

    /// The mode for records without `FILE_MODE` metadata.
    pub fn default_file_mode(&self) -> FileMode {
        self.default_file_mode
    }

    /// Renders the batch into one buffer of lines per target file, in the
    /// order files are first named; a record with bad metadata is rejected.
    fn render(
        &self,
        records: &[Record],
        rejected: &mut Rejected,
    ) -> Result<Vec<Target>, FileOutletError> {
        let mut targets: Vec<Target> = Vec::new();
        let mut by_path: HashMap<PathBuf, usize> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            let path = match record.meta(Self::FILEPATH) {
                None => std::borrow::Cow::Borrowed(self.default_filepath.as_path()),
                Some(Value::String(p)) => crate::common::metadata_path(self.base_dir.as_deref(), p),
                Some(other) => {
                    let found = json_kind(other);
                    let key = Self::FILEPATH;
                    rejected.reject(index, FileOutletError::Metadata { index, key, found });
                    continue;
                }
            };
            let mode = match record.meta(Self::FILE_MODE) {
                None => self.default_file_mode,
                Some(Value::String(m)) => match m.parse() {
                    Ok(mode) => mode,
                    Err(source) => {
                        rejected.reject(index, FileOutletError::Mode { index, source });
                        continue;
                    }
                },
                Some(other) => {
                    let found = json_kind(other);
                    let key = Self::FILE_MODE;
                    rejected.reject(index, FileOutletError::Metadata { index, key, found });
                    continue;
                }
            };
            let slot = *by_path
                .entry(crate::common::file_key(&path))
                .or_insert_with(|| {
                    targets.push(Target {
                        path: path.to_path_buf(),
                        truncate: false,
                        lines: Vec::new(),
                    });
                    targets.len() - 1
                });
            let target = &mut targets[slot];
            target.truncate |= mode == FileMode::Truncate;
            match &record.payload {
                Value::String(s) => target.lines.extend_from_slice(s.as_bytes()),
                // Writing a `Value` into a `Vec` cannot fail: the map keys
                // are strings and the writer is infallible.
                other => {
                    if let Err(e) = serde_json::to_writer(&mut target.lines, other) {
                        return Err(FileIoError::new("render a line for", &path, e.into()).into());
                    }
                }
            }
            target.lines.push(b'\n');
        }
        Ok(targets)
    }
}

/// What [`write_targets`] did: the bytes the targets written so far hold,
/// each one's path, whether it was truncated and its length, the files to
/// sync (path, file, whether the write created it), and how it ended.
struct Wrote {
    bytes: u64,
    written: crate::common::Written,
    to_sync: Vec<(PathBuf, std::fs::File, bool)>,
    result: Result<(), FileIoError>,
}

/// Writes each target in turn, leaving the sync to the caller; says what
/// it wrote also when a later target fails.
fn write_targets(targets: Vec<Target>) -> Wrote {
    let mut wrote = Wrote {
        bytes: 0,
        written: Vec::with_capacity(targets.len()),
        to_sync: Vec::with_capacity(targets.len()),
        result: Ok(()),
    };
    for target in targets {
        let path = target.path.as_path();
        let result = open_for_write(path, target.truncate).and_then(|(mut file, created)| {
            file.write_all(&target.lines)
                .map_err(|e| FileIoError::new("write", path, e))?;
            let len = file
                .metadata()
                .map_err(|e| FileIoError::new("read the length of", path, e))?
                .len();
            Ok((file, created, len))
        });
        match result {
            Ok((file, created, len)) => {
                wrote.bytes += target.lines.len() as u64;
                wrote
                    .written
                    .push((target.path.clone(), target.truncate, len));
                wrote.to_sync.push((target.path, file, created));
            }
            Err(e) => {
                wrote.result = Err(e);
                break;
            }
        }
    }
    wrote
}

#[async_trait]
impl Outlet for FileOutlet {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut rejected = Rejected::new();
        let targets = self.render(records, &mut rejected)?;
        let wrote = if crate::common::in_place(records) {
            write_targets(targets)
        } else {
            tokio::task::spawn_blocking(move || write_targets(targets))
                .await
                .map_err(FileOutletError::from)?
        };
        databay_core::bytes::add(wrote.bytes);
        // What was written before a failure is kept (once synced): its
        // length counts.
        for (path, file, created) in wrote.to_sync {
            self.unsynced.0.note(path, file, created);
        }
        self.committed.update(wrote.written);
        wrote.result.map_err(FileOutletError::from)?;
        rejected.into_result()
    }

    /// The lines are synced to disk by [`sync`](Outlet::sync), which the
    /// link calls before it relies on them.
    fn defers_sync(&self) -> bool {
        true
    }

    async fn sync(&mut self) -> Result<(), BoxError> {
        Ok(self
            .unsynced
            .0
            .sync()
            .await
            .map_err(FileOutletError::from)?)
    }

    /// `{"files": {path: length}}`: each appended file's length after the
    /// last push.
    fn snapshot(&self) -> Option<Value> {
        self.committed.snapshot()
    }

    /// Cuts each file back to its length in `state`: what was written after
    /// the last checkpoint is written again by the resumed link, once.
    async fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        self.committed.restore(state)
    }

    /// Notes the default file's length as of now: what a crash cuts back
    /// to if it comes before the first checkpoint after a push.
    async fn on_start(&mut self) -> Result<(), BoxError> {
        if self.default_file_mode == FileMode::Append {
            self.committed.starting(&self.default_filepath);
        }
        Ok(())
    }
}
