//! [`DirInlet`]: every file matching a glob as a partition of its own,
//! read line by line with its own resume state (Bytewax's `DirSource`).

use std::path::{Path, PathBuf};

use databay_core::source::{FixedPartitionedSource, PartitionedInlet, StatefulPartition};
use databay_core::{BoxError, Inlet, Pull, Update, async_trait};
use serde_json::Value;

use crate::file::{Ahead, FilePosition, LineOptions, LineReader, ReadAhead, open_lines_at};

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::DirInletOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// Reads every file whose path matches a glob (`logs/*.ndjson`,
/// `data/**/*.csv`), each as a partition of its own: pulled concurrently
/// with the others (at most [`concurrency`](DirInlet::concurrency) at once),
/// line by line as the [`file`](crate::FileInlet) inlet's line mode does,
/// each with its own position.
///
/// - **New files** matching the glob are picked up on every pull
///   ([`discover`](DirInlet::discover), on by default); without it the
///   files are listed once, and the inlet ends when all have been read.
/// - **Finished files** (read to their end, without `follow`) are closed
///   and remembered: the inlet's resume state keeps their final position,
///   so a restart does not read them again.
/// - **Resume state**: a JSON object of file path to its
///   [`FilePosition`] after the last committed line, which
///   [`restore`](Inlet::restore) takes back. A file whose first bytes no
///   longer match its position (rotated, replaced) is read from its start.
/// - A failed transfer rebuilds the files it read from their committed
///   positions: their lines are read again, none is lost.
///
/// ```
/// use databay_core::{Inlet, Update};
/// use databay_inlets::DirInlet;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), databay_core::BoxError> {
/// # let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("a.ndjson"), "{\"n\": 1}\n{\"n\": 2}\n")?;
/// std::fs::write(dir.path().join("b.ndjson"), "{\"n\": 3}\n")?;
///
/// let mut inlet = DirInlet::new(dir.path().join("*.ndjson")).json(true).lines_per_transfer(10);
/// let update = Update::new(["logs"], 0);
/// let pull = inlet.pull(&update).await?;
/// assert_eq!(pull.records().len(), 3); // both files, in path order
/// inlet.commit(&update).await?;
/// let state = inlet.snapshot().unwrap();
/// assert_eq!(state.as_object().unwrap().len(), 2); // one position per file
/// # Ok(()) }
/// ```
pub struct DirInlet {
    source: DirSource,
    discover: bool,
    concurrency: usize,
    /// Built on first use, from the settings above.
    inner: Option<PartitionedInlet<DirSource>>,
}

/// The glob and how each file is read: the [`FixedPartitionedSource`]
/// behind [`DirInlet`], one partition per matching file, keyed by its path.
#[derive(Debug, Clone)]
pub struct DirSource {
    pattern: PathBuf,
    lines_per_transfer: usize,
    json: bool,
    follow: bool,
}

impl DirInlet {
    /// Reads the files matching `pattern` (a glob: `*`, `?`, `[...]`, and
    /// `**` for any depth of directories), one line per file per transfer,
    /// as text, picking up new files.
    pub fn new(pattern: impl Into<PathBuf>) -> Self {
        DirInlet {
            source: DirSource {
                pattern: pattern.into(),
                lines_per_transfer: 1,
                json: false,
                follow: false,
            },
            discover: true,
            concurrency: 0,
            inner: None,
        }
    }

    /// At most this many lines per file per transfer (default 1; 0 is
    /// taken as 1).
    pub fn lines_per_transfer(mut self, lines: usize) -> Self {
        self.source.lines_per_transfer = lines.max(1);
        self
    }

    /// Parses each line as JSON (NDJSON; default `false`: the payload is
    /// the line as a JSON string). Blank lines are skipped.
    pub fn json(mut self, json: bool) -> Self {
        self.source.json = json;
        self
    }

    /// Keeps reading lines appended to each file, like `tail -f` (default
    /// `false`: a file ends at its end).
    pub fn follow(mut self, follow: bool) -> Self {
        self.source.follow = follow;
        self
    }

    /// Lists the glob again on every pull to pick up new files (default
    /// `true`). Without it the inlet ends once the files it found first
    /// have all been read (and none is followed).
    pub fn discover(mut self, on: bool) -> Self {
        self.discover = on;
        self
    }

    /// Reads at most `limit` files at once (0, the default: all that are
    /// due). The daemon sets the link's `inlet_concurrency`.
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit;
        self
    }

    /// The glob.
    pub fn pattern(&self) -> &Path {
        &self.source.pattern
    }

    /// The files read so far, in path order.
    pub fn files(&self) -> Vec<&str> {
        self.inner
            .as_ref()
            .map(|i| i.partitions())
            .unwrap_or_default()
    }

    fn inner(&mut self) -> &mut PartitionedInlet<DirSource> {
        let (source, discover, concurrency) = (
            &self.source,
            self.discover || self.source.follow,
            self.concurrency,
        );
        self.inner.get_or_insert_with(|| {
            PartitionedInlet::new(source.clone())
                .discover(discover)
                .concurrency(concurrency)
        })
    }
}

#[async_trait]
impl Inlet for DirInlet {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        self.inner().pull(update).await
    }

    async fn commit(&mut self, update: &Update) -> Result<(), BoxError> {
        self.inner().commit(update).await
    }

    async fn rollback(&mut self, update: &Update) -> Result<(), BoxError> {
        self.inner().rollback(update).await
    }

    fn wake_at(&self) -> Option<std::time::Instant> {
        self.inner.as_ref().and_then(|i| i.wake_at())
    }

    /// File path to [`FilePosition`], for every file read (finished ones
    /// included).
    fn snapshot(&self) -> Option<Value> {
        match &self.inner {
            Some(inner) => inner.snapshot(),
            None => Some(Value::Object(Default::default())),
        }
    }

    async fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        self.inner().restore(state).await
    }
}

/// One file of a [`DirSource`].
pub struct DirPartition {
    path: PathBuf,
    /// `None` while it is reading ahead, or once that read was lost.
    reader: Option<LineReader>,
    /// A large batch of a file that is not followed is followed by the
    /// next one, read ahead as the `file` inlet does.
    ahead: Option<ReadAhead>,
    /// The position after the lines handed out: what a snapshot holds.
    delivered: FilePosition,
    lines_per_transfer: usize,
    json: bool,
    follow: bool,
}

impl DirPartition {
    fn new(path: PathBuf, reader: LineReader, source: &DirSource) -> Self {
        DirPartition {
            path,
            delivered: reader.position(),
            reader: Some(reader),
            ahead: None,
            lines_per_transfer: source.lines_per_transfer,
            json: source.json,
            follow: source.follow,
        }
    }

    /// The error of a pull after the read-ahead task was lost with the
    /// reader.
    fn cut_off(&self) -> BoxError {
        format!(
            "reading `{}` ahead was cut off; it is read again from the last commit",
            self.path.display()
        )
        .into()
    }

    /// Hands out a batch the reader just read, and reads on ahead when
    /// that is worth it.
    fn deliver(&mut self, pull: Pull, bytes: u64) -> Pull {
        let options = LineOptions {
            path: &self.path,
            max: self.lines_per_transfer,
            json: self.json,
            follow: self.follow,
        };
        if let Some(delivered) =
            ReadAhead::hand_out(&pull, bytes, &options, &mut self.reader, &mut self.ahead)
        {
            self.delivered = delivered;
        }
        pull
    }
}

#[async_trait]
impl StatefulPartition for DirPartition {
    async fn next_batch(&mut self) -> Result<Pull, BoxError> {
        if let Some(ahead) = self.ahead.as_mut() {
            // Cut off while waiting, the batch read ahead stays in `ahead`.
            let landed = ahead.land().await;
            self.ahead = None;
            let Some(Ahead { reader, read }) = landed else {
                // The read-ahead task and its reader are gone: the failed
                // pull has the partition built again from its last commit.
                return Err(self.cut_off());
            };
            self.reader = Some(reader);
            let (pull, bytes) = read?;
            return Ok(self.deliver(pull, bytes));
        }
        let Some(reader) = self.reader.as_mut() else {
            return Err(self.cut_off());
        };
        let options = LineOptions {
            path: &self.path,
            max: self.lines_per_transfer,
            json: self.json,
            follow: self.follow,
        };
        let (pull, bytes) = reader.read_counted(&options, false).await?;
        Ok(self.deliver(pull, bytes))
    }

    fn snapshot(&self) -> Value {
        self.delivered.to_value()
    }
}

#[async_trait]
impl FixedPartitionedSource for DirSource {
    type Partition = DirPartition;

    /// The regular files matching the glob, in path order.
    async fn list_parts(&self) -> Result<Vec<String>, BoxError> {
        let pattern = self.pattern.to_string_lossy().into_owned();
        let listed = tokio::task::spawn_blocking(move || -> Result<Vec<String>, String> {
            let paths = glob::glob(&pattern).map_err(|e| format!("bad glob `{pattern}`: {e}"))?;
            let mut files = Vec::new();
            for entry in paths {
                // An entry that cannot be read (a directory without
                // permission) is left out, as `ls` would; the files that
                // can be read are still read.
                let Ok(path) = entry else { continue };
                if path.is_file() {
                    files.push(path.to_string_lossy().into_owned());
                }
            }
            files.sort();
            Ok(files)
        })
        .await
        .map_err(|e| format!("listing the files failed: {e}"))??;
        Ok(listed)
    }

    async fn build_part(
        &self,
        part: &str,
        resume: Option<Value>,
    ) -> Result<DirPartition, BoxError> {
        let resume = resume.map(FilePosition::from_value).transpose()?;
        let path = PathBuf::from(part);
        let reader = open_lines_at(&path, resume.as_ref()).await?;
        Ok(DirPartition::new(path, reader, self))
    }
}
