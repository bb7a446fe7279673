//! [`FileInlet`]: reads a file line by line (held open, optionally as NDJSON,
//! optionally following appends like `tail -f`) or whole on every transfer.
//! The counterpart of Databay's `FileInlet`, plus batching, JSON parsing,
//! end-of-input reporting and follow mode.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::Utf8Error;

use databay_core::{BoxError, Inlet, Pull, Record, Update, async_trait};
use serde_json::Value;
use tokio::fs::File;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, BufReader};

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod ahead;
mod options;
mod position;
pub(crate) use ahead::{Ahead, ReadAhead};
pub(crate) use options::register;
pub use options::{FileInletOptions, FileReadMode};
pub use position::FilePosition;
use position::{FNV_START, HEAD, fnv};
#[cfg(test)]
mod tests;

/// Read buffer for line mode. Larger than tokio's 8 KiB default because each
/// refill of a `tokio::fs::File` is a trip to the blocking pool, which on a
/// machine with an idle core wakes it: 256 KiB read 1 000 000 NDJSON lines
/// in small batches a tenth faster than 64 KiB (README, Performance).
const READ_BUFFER: usize = 256 * 1024;

/// A UTF-8 byte order mark, which some editors put at the start of a file.
/// It is not content, and `serde_json` rejects it, so it is stripped.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How a [`FileInlet`] reads its file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum FileInletMode {
    /// Lines, a few per transfer, from a file opened once in `on_start` and
    /// held open until `on_shutdown` (Databay's `LINE` mode).
    #[default]
    Line,
    /// The whole contents as one record per transfer; the file is opened
    /// afresh on each pull, so every transfer sees its current contents
    /// (Databay's `FILE` mode).
    File,
}

/// What went wrong reading a [`FileInlet`]'s file. Every variant names the
/// file, and where there is one, the 1-based line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileInletError {
    /// The file could not be opened (it is missing, or not readable).
    #[error("cannot open `{}`: {source}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Reading the whole file failed (file mode).
    #[error("cannot read `{}`: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Reading or seeking failed at a line (line mode).
    #[error("cannot read `{}` at line {line}: {source}", .path.display())]
    ReadLine {
        /// The file.
        path: PathBuf,
        /// The 1-based line being read.
        line: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// A line (or, in file mode, the file) is not valid UTF-8.
    #[error("`{}` line {line} is not valid UTF-8: {source}", .path.display())]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// The 1-based line holding the invalid bytes.
        line: u64,
        /// Where the invalid bytes are, within the line (line mode) or the
        /// file (file mode).
        source: Utf8Error,
    },
    /// A line (or, in file mode, the file) is not valid JSON.
    #[error("invalid JSON in `{}` at line {line}, column {column}: {message}", .path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The 1-based line in the file.
        line: u64,
        /// The 1-based column in that line.
        column: u64,
        /// What `serde_json` objected to, without its own position (which
        /// counts from the start of the parsed text, not of the file).
        message: String,
        /// The parser's error.
        source: serde_json::Error,
    },
}

/// Reads a file: in [`Line`](FileInletMode::Line) mode a few lines per
/// transfer from a file held open, in [`File`](FileInletMode::File) mode
/// the whole file per transfer.
///
/// Payloads are JSON strings (the line without its `\n` or `\r\n`, or the
/// whole contents), or with [`json(true)`](FileInlet::json) the parsed JSON
/// values. The inlet adds no metadata of its own; the framework adds
/// `__inlet__` and the inlet's global metadata.
///
/// Line mode:
///
/// - Each pull reads up to [`lines_per_transfer`](FileInlet::lines_per_transfer)
///   lines (default 1), never the whole file into memory.
/// - Without [`follow`](FileInlet::follow), the end of the file ends the
///   input: the pull that reaches it returns [`Pull::Exhausted`] with the
///   last lines (a final line without a newline included), so a finite link
///   can finish.
/// - With `follow(true)` the end of the file returns what was read, or
///   [`Pull::Nothing`], and later pulls pick up appended lines. A last line
///   without its newline is taken to be still being written and is left
///   for a later pull. A file truncated below the read position (log
///   rotation by `copytruncate`) is read again from its start. Like
///   `tail -f`, the inlet follows the open file, not the name: a file
///   replaced by rename is not seen.
/// - A pull is all or nothing: if any line of it fails (invalid JSON or
///   UTF-8, an I/O error), the pull returns the error and the read position
///   goes back to where the pull started. No line is skipped: the same line
///   fails again until the file is fixed in place, and then it is read.
/// - In JSON mode blank lines are skipped (they still count in line
///   numbers); in text mode they are records with an empty string.
///
/// ```
/// use databay_core::{Inlet, Pull, Update};
/// use databay_inlets::FileInlet;
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), databay_core::BoxError> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("events.ndjson");
/// std::fs::write(&path, "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 3}\n")?;
///
/// let mut inlet = FileInlet::new(&path).lines_per_transfer(2).json(true);
/// inlet.on_start().await?;
/// let update = Update::new(["events"], 0);
///
/// let first = inlet.pull(&update).await?;
/// assert!(matches!(first, Pull::Records(_)));
/// assert_eq!(first.records()[1].payload, json!({"id": 2}));
///
/// // The file ends within the second pull: those are the last records.
/// let last = inlet.pull(&update).await?;
/// assert!(matches!(last, Pull::Exhausted(_)));
/// assert_eq!(last.records()[0].payload, json!({"id": 3}));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FileInlet {
    path: PathBuf,
    mode: FileInletMode,
    lines_per_transfer: usize,
    json: bool,
    follow: bool,
    /// The open file in line mode, between `on_start` and `on_shutdown`.
    reader: Option<LineReader>,
    /// Line mode: where to start when the file is opened
    /// ([`Inlet::restore`]).
    resume: Option<FilePosition>,
    /// Line mode: the position after the last committed line; what a
    /// rollback goes back to and what a snapshot holds.
    committed: Option<FilePosition>,
    /// Line mode: the position after the last line handed out (the reader
    /// may be past it, reading ahead).
    delivered: Option<FilePosition>,
    /// Line mode, large batches of a finite file: the next batch, read and
    /// parsed in a task of its own while the link processes the last one.
    /// The reader is in the task until it ends.
    ahead: Option<ReadAhead>,
    /// A batch read ahead that has come in and waits for its pull to hand
    /// it out: kept here, not in a pull's locals, so that a pull cut off
    /// (a timeout) loses nothing.
    landed: Option<Result<(Pull, u64), FileInletError>>,
    /// A rollback began and has not ended (it was cut off while waiting
    /// for a batch read ahead): the next call finishes it first.
    rolling_back: bool,
}

impl FileInlet {
    /// Reads `path` in line mode, one line per transfer, as text, ending at
    /// the end of the file. Nothing is opened until `on_start`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileInlet {
            path: path.into(),
            mode: FileInletMode::Line,
            lines_per_transfer: 1,
            json: false,
            follow: false,
            reader: None,
            resume: None,
            committed: None,
            delivered: None,
            ahead: None,
            landed: None,
            rolling_back: false,
        }
    }

    /// Reads the whole of `path` on every transfer, as text: shorthand for
    /// `FileInlet::new(path).mode(FileInletMode::File)`.
    pub fn whole_file(path: impl Into<PathBuf>) -> Self {
        Self::new(path).mode(FileInletMode::File)
    }

    /// How the file is read (default [`FileInletMode::Line`]).
    pub fn mode(mut self, mode: FileInletMode) -> Self {
        self.mode = mode;
        self
    }

    /// Line mode: at most this many lines per transfer (default 1; 0 is
    /// taken as 1). In JSON mode skipped blank lines do not count. Ignored
    /// in file mode.
    pub fn lines_per_transfer(mut self, lines: usize) -> Self {
        self.lines_per_transfer = lines.max(1);
        self
    }

    /// Parses each line (line mode, NDJSON) or the whole file (file mode)
    /// as JSON, and makes the parsed value the payload (default `false`:
    /// the payload is the text as a JSON string).
    pub fn json(mut self, json: bool) -> Self {
        self.json = json;
        self
    }

    /// Line mode: keep reading lines appended after the end of the file,
    /// like `tail -f`, instead of reporting the input exhausted there
    /// (default `false`). Ignored in file mode.
    pub fn follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configured mode.
    pub fn read_mode(&self) -> FileInletMode {
        self.mode
    }

    /// Line mode: how many lines have been delivered since the file was
    /// opened, which is also the number of the last delivered line (blank
    /// lines skipped in JSON mode count too). 0 before `on_start`.
    pub fn lines_read(&self) -> u64 {
        if self.reader.is_none() && self.ahead.is_none() {
            return 0;
        }
        self.delivered.as_ref().map_or(0, |p| p.line)
    }

    async fn pull_lines(&mut self) -> Result<Pull, FileInletError> {
        if self.rolling_back {
            self.finish_rollback().await?;
        }
        self.land_ahead().await?;
        if self.landed.is_some() {
            // Lines read ahead count only from the file still under the
            // name; from a replaced one they are read again below.
            let replaced = match &self.reader {
                Some(reader) => self.replaced(reader).await,
                None => false,
            };
            if let (false, Some(read)) = (replaced, self.landed.take()) {
                let (pull, bytes) = read?;
                return Ok(self.deliver(pull, bytes));
            }
            self.landed = None;
            if let (Some(reader), Some(delivered)) = (&mut self.reader, &self.delivered) {
                reader.rewind(delivered);
            }
        }
        // A pull without `on_start` (a link transferring before it was
        // started) opens the file itself rather than failing.
        let reader = match self.reader.take() {
            Some(reader) => match self.reopen_if_replaced(reader).await {
                Ok(reader) => reader,
                Err((kept, e)) => {
                    self.reader = Some(kept);
                    return Err(e);
                }
            },
            None => self.open().await?,
        };
        let reader = self.reader.insert(reader);
        let options = LineOptions {
            path: &self.path,
            max: self.lines_per_transfer,
            json: self.json,
            follow: self.follow,
        };
        let (pull, bytes) = reader.read_counted(&options, false).await?;
        Ok(self.deliver(pull, bytes))
    }

    /// Hands out a batch the reader just read, and starts reading the next
    /// one ahead when that is worth it: a large batch of a file that is
    /// not followed and not at its end.
    fn deliver(&mut self, pull: Pull, bytes: u64) -> Pull {
        let options = LineOptions {
            path: &self.path,
            max: self.lines_per_transfer,
            json: self.json,
            follow: self.follow,
        };
        let delivered =
            ReadAhead::hand_out(&pull, bytes, &options, &mut self.reader, &mut self.ahead);
        if delivered.is_some() {
            self.delivered = delivered;
        }
        pull
    }

    /// Waits for the batch being read ahead, if any, takes the reader back
    /// and keeps what it read in `landed`. Cut off while waiting, it leaves
    /// the batch being read ahead where it was.
    async fn land_ahead(&mut self) -> Result<(), FileInletError> {
        let Some(ahead) = self.ahead.as_mut() else {
            return Ok(());
        };
        let landed = ahead.land().await;
        self.ahead = None;
        match landed {
            Some(Ahead { reader, read }) => {
                self.reader = Some(reader);
                self.landed = Some(read);
                Ok(())
            }
            // The task was cancelled or failed, and the reader with it:
            // open the file again after the last committed line (what
            // follows is read again: at least once), and, if it cannot be
            // opened now, have the next open start there.
            None => {
                self.resume.clone_from(&self.committed);
                let reader = open_lines_at(&self.path, self.committed.as_ref()).await?;
                self.resume = None;
                self.delivered.clone_from(&self.committed);
                self.reader = Some(reader);
                Ok(())
            }
        }
    }

    /// The rest of a rollback, after the batch read ahead (if any) came in:
    /// drops it, and goes back to the last commit, or, in a file replaced
    /// since, to the lines handed out.
    async fn finish_rollback(&mut self) -> Result<(), FileInletError> {
        self.land_ahead().await?;
        self.landed = None;
        if let (Some(reader), Some(committed)) = (&mut self.reader, &self.committed)
            && reader.identity.map(|i| i.0) == committed.dev
            && reader.identity.map(|i| i.1) == committed.ino
        {
            reader.rewind(committed);
            self.delivered = Some(committed.clone());
        } else if let (Some(reader), Some(delivered)) = (&mut self.reader, &self.delivered) {
            reader.rewind(delivered);
        }
        self.rolling_back = false;
        Ok(())
    }

    /// Whether the name now points at another file than `reader`'s. While
    /// the name is missing, it does not.
    async fn replaced(&self, reader: &LineReader) -> bool {
        match tokio::fs::metadata(&self.path).await {
            Ok(now) => reader.identity.is_some() && reader.identity != identity(&now),
            Err(_) => false,
        }
    }

    /// A file replaced under its name (`sed -i`, an editor's save, log
    /// rotation by rename) is noticed by its changed identity, as
    /// `tail -F` does, and opened again: when following, from its first
    /// line (a rotated log starts anew); otherwise after the lines already
    /// delivered, so a finite input fixed by rewriting it carries on where
    /// it stopped. While the name is missing, the old file is read on.
    ///
    /// If the new file cannot be opened or read, the error comes back with
    /// the old reader, which stays where it was.
    async fn reopen_if_replaced(
        &self,
        reader: LineReader,
    ) -> Result<LineReader, (LineReader, FileInletError)> {
        if !self.replaced(&reader).await {
            return Ok(reader);
        }
        let mut fresh = match open_lines(&self.path).await {
            Ok(fresh) => fresh,
            Err(e) => return Err((reader, e)),
        };
        if !self.follow
            && let Err(e) = fresh.skip_lines(reader.line, &self.path).await
        {
            return Err((reader, e));
        }
        Ok(fresh)
    }

    /// Opens the file at the resume state, if any, and takes that as the
    /// committed position.
    async fn open(&mut self) -> Result<LineReader, FileInletError> {
        let reader = open_lines_at(&self.path, self.resume.as_ref()).await?;
        self.resume = None;
        self.committed = Some(reader.position());
        self.delivered = Some(reader.position());
        Ok(reader)
    }

    async fn pull_whole_file(&self) -> Result<Pull, FileInletError> {
        let path = &self.path;
        let mut file = File::open(path)
            .await
            .map_err(|source| FileInletError::Open {
                path: path.clone(),
                source,
            })?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .await
            .map_err(|source| FileInletError::Read {
                path: path.clone(),
                source,
            })?;
        databay_core::bytes::add(bytes.len() as u64);
        if bytes.starts_with(BOM) {
            bytes.drain(..BOM.len());
        }
        // Converted in place: a large file is not copied to become a string.
        let text = String::from_utf8(bytes).map_err(|e| {
            let source = e.utf8_error();
            FileInletError::Utf8 {
                path: path.clone(),
                line: line_of(e.as_bytes(), source.valid_up_to()),
                source,
            }
        })?;
        let payload = if self.json {
            serde_json::from_str(&text).map_err(|e| {
                // The error's own line is the file's line here; its column
                // is counted within that line.
                let bad_line = text.lines().nth(e.line().saturating_sub(1)).unwrap_or("");
                json_error(path, e.line() as u64, bad_line, e)
            })?
        } else {
            Value::String(text)
        };
        Ok(Pull::Records(vec![Record::new(payload)]))
    }
}

#[async_trait]
impl Inlet for FileInlet {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        let pull = match self.mode {
            FileInletMode::Line => self.pull_lines().await?,
            FileInletMode::File => self.pull_whole_file().await?,
        };
        Ok(pull)
    }

    /// Line mode: opens the file (from its first line, or at the restored
    /// position), failing if it cannot be opened. File mode: nothing; the
    /// file is opened per pull.
    async fn on_start(&mut self) -> Result<(), BoxError> {
        if self.mode == FileInletMode::Line {
            let reader = self.open().await?;
            self.reader = Some(reader);
        }
        Ok(())
    }

    /// Line mode: the lines of the pull were delivered; a snapshot now
    /// resumes after them.
    async fn commit(&mut self, _update: &Update) -> Result<(), BoxError> {
        if self.reader.is_some() || self.ahead.is_some() {
            self.committed.clone_from(&self.delivered);
        }
        Ok(())
    }

    /// Line mode: the lines of the pull were not delivered: the next pull
    /// reads them again (at least once). If the file was replaced since
    /// the commit, the new file carries on where it is.
    async fn rollback(&mut self, _update: &Update) -> Result<(), BoxError> {
        // Decided before any wait: a rollback cut off midway is finished
        // by the next call. What was read ahead is read again.
        self.rolling_back = true;
        Ok(self.finish_rollback().await?)
    }

    /// Line mode: a [`FilePosition`] (offset, line, device and inode, and
    /// the fingerprint of the first bytes) after the last committed line;
    /// before the first commit, the position it started from (the file's
    /// start, unless it resumed), so that the first transfer's checkpoint
    /// already holds where the inlet is. File mode keeps no state.
    fn snapshot(&self) -> Option<Value> {
        match self.mode {
            FileInletMode::Line => Some(
                self.committed
                    .as_ref()
                    .or(self.resume.as_ref())
                    .map_or_else(|| FilePosition::start().to_value(), FilePosition::to_value),
            ),
            FileInletMode::File => None,
        }
    }

    /// Line mode: resumes at a [`FilePosition`] when the file is opened;
    /// a file that does not hold that position (rotated, replaced, shorter)
    /// is read from its start.
    async fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        if self.mode == FileInletMode::File {
            return Err("a file inlet in file mode keeps no resume state".into());
        }
        let pos = FilePosition::from_value(state)?;
        // The batch read ahead belongs to the position left behind.
        self.land_ahead().await?;
        self.landed = None;
        self.rolling_back = false;
        self.resume = Some(pos);
        if self.reader.is_some() {
            let reader = self.open().await?;
            self.reader = Some(reader);
        }
        Ok(())
    }

    /// Closes the file.
    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        // A batch being read ahead is dropped with its task.
        self.ahead = None;
        self.landed = None;
        self.rolling_back = false;
        self.reader = None;
        Ok(())
    }
}

/// Which file a path names: device and inode (Unix); `None` elsewhere,
/// where a replaced file is not noticed.
fn identity(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((metadata.dev(), metadata.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

/// Opens `path` for line mode, positioned at its first line.
async fn open_lines(path: &Path) -> Result<LineReader, FileInletError> {
    let file = File::open(path)
        .await
        .map_err(|source| FileInletError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let identity = file.metadata().await.ok().as_ref().and_then(identity);
    Ok(LineReader {
        identity,
        reader: BufReader::with_capacity(READ_BUFFER, file),
        offset: 0,
        line: 0,
        needs_seek: false,
        buf: Vec::new(),
        head_len: 0,
        head: FNV_START,
    })
}

/// Opens `path` for line mode at `resume`, if given and still valid for
/// the file there (see [`FilePosition`]); otherwise at its first line.
pub(crate) async fn open_lines_at(
    path: &Path,
    resume: Option<&FilePosition>,
) -> Result<LineReader, FileInletError> {
    let mut reader = open_lines(path).await?;
    let Some(pos) = resume else {
        return Ok(reader);
    };
    if reader.holds(pos).await {
        reader.offset = pos.offset;
        reader.line = pos.line;
        reader.head_len = pos.head_len;
        reader.head = pos.head_hash().unwrap_or(FNV_START);
    } else {
        tracing::info!(
            path = %path.display(),
            "the file is not the one its resume state was taken from (its first bytes differ, \
             or it is shorter): reading it from its start"
        );
    }
    reader.needs_seek = true;
    Ok(reader)
}

/// Line-mode options for one pull.
pub(crate) struct LineOptions<'a> {
    pub(crate) path: &'a Path,
    pub(crate) max: usize,
    pub(crate) json: bool,
    pub(crate) follow: bool,
}

/// Why a batch of lines stopped.
enum BatchEnd {
    /// It holds as many lines as asked for.
    Full,
    /// The end of the file (or, when following, of its complete lines).
    EndOfFile,
}

/// An open file in line mode and the position of its next unread line.
#[derive(Debug)]
pub(crate) struct LineReader {
    /// The open file's device and inode, to notice a replaced file.
    identity: Option<(u64, u64)>,
    reader: BufReader<File>,
    /// Byte offset of the start of the next line to deliver.
    offset: u64,
    /// Lines delivered (or skipped as blank) so far: the next is `line + 1`.
    line: u64,
    /// The underlying file position is not at `offset` (a pull failed or
    /// stopped at a partial line): seek before reading.
    needs_seek: bool,
    /// Reused for each line to avoid an allocation per line.
    buf: Vec<u8>,
    /// How many of the file's first bytes `head` covers (up to [`HEAD`]).
    head_len: u64,
    /// FNV-1a hash of the file's first `head_len` bytes: its fingerprint.
    head: u64,
}

impl LineReader {
    /// The position after the last line handed out.
    pub(crate) fn position(&self) -> FilePosition {
        FilePosition {
            offset: self.offset,
            line: self.line,
            dev: self.identity.map(|i| i.0),
            ino: self.identity.map(|i| i.1),
            head_len: self.head_len,
            head: format!("{:016x}", self.head),
        }
    }

    /// Goes back to `pos` (a position of this same file) for the next read.
    fn rewind(&mut self, pos: &FilePosition) {
        self.offset = pos.offset;
        self.line = pos.line;
        self.head_len = pos.head_len;
        self.head = pos.head_hash().unwrap_or(FNV_START);
        self.needs_seek = true;
    }

    /// Whether the open file starts with the bytes `pos` was fingerprinted
    /// from and is at least as long as its offset.
    async fn holds(&mut self, pos: &FilePosition) -> bool {
        let long_enough = matches!(
            self.reader.get_ref().metadata().await,
            Ok(meta) if meta.len() >= pos.offset
        );
        if !long_enough || pos.head_len > HEAD {
            return false;
        }
        let mut head = vec![0u8; pos.head_len as usize];
        let read = self.reader.read_exact(&mut head).await.is_ok();
        read && Some(fnv(FNV_START, &head)) == pos.head_hash()
    }

    /// Adds a line read at `start` to the fingerprint while the first
    /// [`HEAD`] bytes are not all in it.
    fn fingerprint(&mut self, start: u64) {
        if start == self.head_len && self.head_len < HEAD {
            let take = (HEAD - self.head_len).min(self.buf.len() as u64) as usize;
            self.head = fnv(self.head, &self.buf[..take]);
            self.head_len += take as u64;
        }
    }

    /// Starts over from the first byte (the file was truncated).
    fn restart(&mut self) {
        self.offset = 0;
        self.line = 0;
        self.head_len = 0;
        self.head = FNV_START;
        self.needs_seek = true;
    }

    /// Passes over the first `lines` lines (already delivered from the
    /// file this one replaced); a shorter file is passed over whole.
    async fn skip_lines(&mut self, lines: u64, path: &Path) -> Result<(), FileInletError> {
        while self.line < lines {
            self.buf.clear();
            let read = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .await
                .map_err(|source| self.read_error(path, source))?;
            if read == 0 {
                break;
            }
            self.fingerprint(self.offset);
            self.offset += read as u64;
            self.line += 1;
        }
        Ok(())
    }

    /// Reads the next batch; returns it and the bytes of its lines, to be
    /// counted ([`databay_core::bytes::add`]) by the pull that hands it
    /// out. `ahead`: the batch is read ahead of its pull, in a task of its
    /// own.
    pub(crate) async fn read_counted(
        &mut self,
        options: &LineOptions<'_>,
        ahead: bool,
    ) -> Result<(Pull, u64), FileInletError> {
        if options.follow && self.reader.buffer().is_empty() && self.no_longer_a_line_end().await {
            // Truncated and regrown past our position since the last pull
            // (copytruncate, then more writes): start over from the top
            // rather than emit the tail of someone else's line.
            self.restart();
        }
        if self.needs_seek {
            self.reader
                .seek(SeekFrom::Start(self.offset))
                .await
                .map_err(|source| self.read_error(options.path, source))?;
            self.needs_seek = false;
        }
        let (offset, line) = (self.offset, self.line);
        let mut records = Vec::with_capacity(options.max.min(1024));
        // Parsing a large batch is heavy work: off the threads that drive
        // the other links' timers (databay_core::compute).
        let filled = if ahead {
            databay_core::compute::run_ahead(self.fill(options, &mut records)).await
        } else if options.max >= databay_core::compute::HEAVY_BATCH {
            databay_core::compute::run_async(self.fill(options, &mut records)).await
        } else {
            self.fill(options, &mut records).await
        };
        // The lines read; a partial last line left for later is counted
        // when it is.
        let end = match filled {
            Ok(end) => end,
            Err(e) => {
                // All or nothing: go back to where this pull started so the
                // failing line (and those before it) are read again.
                self.offset = offset;
                self.line = line;
                self.needs_seek = true;
                return Err(e);
            }
        };
        let bytes = self.offset - offset;
        let pull = match (end, options.follow) {
            (BatchEnd::Full, true) => Pull::Records(records),
            // Report the end with the last lines rather than one pull later.
            (BatchEnd::Full, false) if self.at_end().await => Pull::Exhausted(records),
            (BatchEnd::Full, false) => Pull::Records(records),
            (BatchEnd::EndOfFile, false) => Pull::Exhausted(records),
            (BatchEnd::EndOfFile, true) => {
                self.restart_if_truncated().await;
                if records.is_empty() {
                    Pull::Nothing
                } else {
                    Pull::Records(records)
                }
            }
        };
        Ok((pull, bytes))
    }

    /// Reads up to `options.max` records into `records`.
    async fn fill(
        &mut self,
        options: &LineOptions<'_>,
        records: &mut Vec<Record>,
    ) -> Result<BatchEnd, FileInletError> {
        let path = options.path;
        while records.len() < options.max {
            self.buf.clear();
            let read = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .await
                .map_err(|source| self.read_error(path, source))?;
            if read == 0 {
                return Ok(BatchEnd::EndOfFile);
            }
            if options.follow && self.buf.last() != Some(&b'\n') {
                // A writer is still appending this line: leave it for a
                // later pull, which reads it again from its start.
                self.needs_seek = true;
                return Ok(BatchEnd::EndOfFile);
            }
            self.fingerprint(self.offset);
            self.offset += read as u64;
            self.line += 1;
            let line = self.line;

            let mut bytes = self.buf.as_slice();
            bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
            bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            if line == 1 {
                bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
            }
            let text = std::str::from_utf8(bytes).map_err(|source| FileInletError::Utf8 {
                path: path.to_path_buf(),
                line,
                source,
            })?;
            if options.json {
                if text.trim().is_empty() {
                    continue;
                }
                let value: Value =
                    serde_json::from_str(text).map_err(|e| json_error(path, line, text, e))?;
                records.push(Record::new(value));
            } else {
                records.push(Record::new(Value::String(text.to_owned())));
            }
        }
        Ok(BatchEnd::Full)
    }

    /// Whether nothing is left to read. An error here is left for the next
    /// pull to report, where it fails a pull that has delivered nothing.
    async fn at_end(&mut self) -> bool {
        matches!(self.reader.fill_buf().await, Ok(rest) if rest.is_empty())
    }

    /// Whether the byte before the read position, which ended a line when
    /// it was read, no longer is a line end: the file was rewritten.
    #[cfg(unix)]
    async fn no_longer_a_line_end(&mut self) -> bool {
        let Some(at) = self.offset.checked_sub(1) else {
            return false;
        };
        let Ok(file) = self.reader.get_ref().try_clone().await else {
            return false;
        };
        let file = file.into_std().await;
        tokio::task::spawn_blocking(move || {
            let mut byte = [0u8; 1];
            matches!(std::os::unix::fs::FileExt::read_at(&file, &mut byte, at), Ok(1) if byte[0] != b'\n')
        })
        .await
        .unwrap_or(false)
    }

    #[cfg(not(unix))]
    async fn no_longer_a_line_end(&mut self) -> bool {
        false
    }

    /// Follow mode at the end of the file: if the file is now shorter than
    /// the read position it was truncated (rotated in place), so start
    /// again from its beginning rather than wait for it to regrow.
    async fn restart_if_truncated(&mut self) {
        if let Ok(meta) = self.reader.get_ref().metadata().await
            && meta.len() < self.offset
        {
            self.restart();
        }
    }

    fn read_error(&self, path: &Path, source: io::Error) -> FileInletError {
        FileInletError::ReadLine {
            path: path.to_path_buf(),
            line: self.line + 1,
            source,
        }
    }
}

/// A JSON error located at `line` of the file. `serde_json` appends its own
/// position (relative to the parsed text) to its message; that part is
/// replaced by the position in the file.
fn json_error(path: &Path, line: u64, text: &str, source: serde_json::Error) -> FileInletError {
    let full = source.to_string();
    let suffix = format!(" at line {} column {}", source.line(), source.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    FileInletError::Json {
        path: path.to_path_buf(),
        line,
        column: char_column(text, source.column()),
        message,
        source,
    }
}

/// serde_json counts columns in bytes; people count characters.
fn char_column(text: &str, byte_column: usize) -> u64 {
    let mut end = byte_column.saturating_sub(1).min(text.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].chars().count() as u64 + 1
}

/// The 1-based line holding byte `index` of `text`.
fn line_of(text: &[u8], index: usize) -> u64 {
    let before = text.get(..index).unwrap_or(text);
    before.iter().filter(|&&b| b == b'\n').count() as u64 + 1
}
