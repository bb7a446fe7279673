//! [`CsvOutlet`]: writes each record's object payload as one row of a CSV
//! file, keeping one header per file.
//!
#![doc = include_str!("README.md")]

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use databay_core::{BoxError, Outlet, Record, Rejected, Update, async_trait};
use serde_json::{Map, Value};

use crate::common::{FileIoError, in_place, json_kind, open_for_write};
use crate::file_mode::FileMode;

/// A documented config table for this outlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::CsvOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// Writes records as rows of CSV files, one header per file.
///
/// Every payload must be a JSON object; its keys are the columns. A record
/// goes to the file named by its [`CSV_FILE`](Self::CSV_FILE) metadata, or
/// to the default path. A new, empty or truncated file gets a header first;
/// appending follows the header the file already has, and a key it lacks is
/// handled as [`ExtraColumns`] says. A push is checked whole before any file
/// is written, and returns `Ok` once every row is synced to disk. The
/// [module documentation](self) details the format, options and errors.
///
/// ```
/// use databay_core::{Outlet, Record, Update};
/// use databay_outlets::CsvOutlet;
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("people.csv");
/// let mut outlet = CsvOutlet::new(&path);
/// let records = [
///     Record::new(json!({"name": "Ann", "age": 31})),
///     Record::new(json!({"name": "Bo, Jr.", "tags": ["x"]})),
/// ];
/// outlet.push(&records, &Update::new(["demo"], 0)).await.unwrap();
/// assert_eq!(
///     std::fs::read_to_string(&path).unwrap(),
///     "name,age,tags\nAnn,31,\n\"Bo, Jr.\",,\"[\"\"x\"\"]\"\n"
/// );
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOutlet {
    default_filepath: PathBuf,
    default_file_mode: FileMode,
    base_dir: Option<PathBuf>,
    extra_columns: ExtraColumns,
    columns: Option<Vec<String>>,
    committed: crate::common::CommittedLengths,
    /// What pushes wrote since the last sync.
    unsynced: crate::common::Transient<crate::common::Unsynced>,
    /// How the last push left each file.
    last_written: crate::common::Transient<LastWritten>,
}

/// What [`CsvOutlet`] does with a record key that is not a column of the
/// header of the file it appends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExtraColumns {
    /// Fail the push, naming the record, the column and the file (`"error"`,
    /// the default). Nothing is lost silently.
    #[default]
    Error,
    /// Leave the value out of the row and log a warning (`"ignore"`).
    Ignore,
}

/// A string that is not an [`ExtraColumns`] policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown extra_columns policy `{0}`: expected \"error\" or \"ignore\"")]
pub struct ParseExtraColumnsError(pub String);

impl FromStr for ExtraColumns {
    type Err = ParseExtraColumnsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "error" => Ok(ExtraColumns::Error),
            "ignore" => Ok(ExtraColumns::Ignore),
            other => Err(ParseExtraColumnsError(other.to_owned())),
        }
    }
}

impl fmt::Display for ExtraColumns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExtraColumns::Error => "error",
            ExtraColumns::Ignore => "ignore",
        })
    }
}

/// Why a [`CsvOutlet`] push failed.
#[derive(Debug, thiserror::Error)]
pub enum CsvOutletError {
    /// A payload is not a JSON object, so it has no columns.
    #[error(
        "record {index} for `{}`: payload must be a JSON object to become a CSV row, found {found}",
        path.display()
    )]
    NotAnObject {
        /// Index of the record in the pushed batch, from 0.
        index: usize,
        /// The file the record was bound for.
        path: PathBuf,
        /// What the payload was (`a number`, `an array`, ...).
        found: &'static str,
    },
    /// A record's `CsvOutlet.CSV_FILE` metadata is not a string.
    #[error(
        "record {index}: metadata `{}` must be a string, found {found}",
        CsvOutlet::CSV_FILE
    )]
    Metadata {
        /// Index of the record in the pushed batch, from 0.
        index: usize,
        /// What was found instead.
        found: &'static str,
    },
    /// A record has a key the file's header does not, under
    /// [`ExtraColumns::Error`].
    #[error(
        "record {index}: column `{column}` is not in the header of `{}` ({}); \
         the record was not written (set extra_columns = \"ignore\" to drop such values)",
        path.display(),
        header.join(",")
    )]
    UnknownColumn {
        /// Index of the record in the pushed batch, from 0.
        index: usize,
        /// The key that has no column.
        column: String,
        /// The file appended to.
        path: PathBuf,
        /// The file's header.
        header: Vec<String>,
    },
    /// The file appended to has a header other than the `columns` option.
    #[error(
        "`{}` has the header {} but the outlet's columns are {}: nothing was written to it \
         (write to a new file, or make `columns` match the header)",
        path.display(),
        header.join(","),
        columns.join(",")
    )]
    HeaderMismatch {
        /// The file appended to.
        path: PathBuf,
        /// The file's header.
        header: Vec<String>,
        /// The configured columns.
        columns: Vec<String>,
    },
    /// The first row of an existing file could not be read as a header.
    #[error("cannot read the CSV header of `{}`: {source}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// The CSV reader's error (invalid UTF-8, IO).
        #[source]
        source: csv::Error,
    },
    /// Encoding rows in memory failed.
    #[error("cannot encode CSV rows for `{}`: {source}", path.display())]
    Encode {
        /// The file the rows were for.
        path: PathBuf,
        /// The CSV writer's error.
        #[source]
        source: csv::Error,
    },
    /// Creating, opening, reading, writing or syncing a file failed.
    #[error(transparent)]
    Io(#[from] FileIoError),
    /// A blocking file task panicked or was cancelled.
    #[error("CsvOutlet file task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The records of one push bound for one file.
struct Group<'a> {
    path: std::borrow::Cow<'a, Path>,
    rows: Vec<(usize, &'a Map<String, Value>)>,
}

/// What an append-mode push found at a path before writing.
enum Existing {
    /// No such file yet.
    Absent,
    /// The file, opened for appending.
    Open {
        file: File,
        /// Its first row; `None` when it has no rows.
        header: Option<Vec<String>>,
        /// It has content whose last byte is not a line break: the first
        /// row must start on a new line.
        needs_newline: bool,
    },
}

/// The encoded rows of one file, ready for the blocking writer.
struct Encoded {
    path: PathBuf,
    file: Option<File>,
    truncate: bool,
    /// The bytes to write, in order: the header and the first rows, then
    /// the rows encoded in parts, each part as it was encoded.
    bytes: Vec<Vec<u8>>,
    /// The file's header once they are written.
    header: Option<Vec<String>>,
}

/// What this outlet last wrote to a file: the file's length and identity
/// after the write, and its header. A push that finds the file as it was
/// left takes the header from here instead of reading it again.
#[derive(Debug, Default)]
struct LastWritten {
    files: HashMap<PathBuf, LeftAs>,
}

/// How a push left a file: its length, identity (device, inode) and
/// header.
type LeftAs = (u64, Option<(u64, u64)>, Vec<String>);

/// The device and inode of an open file, where the platform has them.
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

impl CsvOutlet {
    /// Metadata key: the CSV file a record is written to (a string path).
    pub const CSV_FILE: &'static str = "CsvOutlet.CSV_FILE";

    /// Writes records without `CSV_FILE` metadata to `default_filepath`,
    /// appending, with [`ExtraColumns::Error`].
    pub fn new(default_filepath: impl Into<PathBuf>) -> Self {
        CsvOutlet {
            default_filepath: default_filepath.into(),
            default_file_mode: FileMode::Append,
            base_dir: None,
            extra_columns: ExtraColumns::Error,
            columns: None,
            committed: Default::default(),
            unsynced: Default::default(),
            last_written: Default::default(),
        }
    }

    /// Append to files or replace them on every push (default
    /// [`FileMode::Append`]).
    pub fn file_mode(mut self, mode: FileMode) -> Self {
        self.default_file_mode = mode;
        self
    }

    /// What to do with keys the header of an existing file lacks (default
    /// [`ExtraColumns::Error`]).
    pub fn extra_columns(mut self, policy: ExtraColumns) -> Self {
        self.extra_columns = policy;
        self
    }

    /// Writes exactly these columns, in this order: a new file's header is
    /// `columns`, a record's other keys are left out, a missing key is an
    /// empty cell. Appending to a file whose header differs fails the push.
    /// Without it, a new file's columns are the records' keys in order of
    /// first appearance.
    pub fn columns<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Resolves a relative path in a record's `CSV_FILE` metadata against
    /// `dir` (the config file's directory, as the daemon does for `path`
    /// options) instead of the working directory.
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// Where records without `CSV_FILE` metadata go.
    pub fn default_filepath(&self) -> &Path {
        &self.default_filepath
    }

    /// The file mode of every push.
    pub fn default_file_mode(&self) -> FileMode {
        self.default_file_mode
    }

    /// Groups the batch by target file (in order of first appearance);
    /// a record that cannot be a row (its payload is not an object, its
    /// `CSV_FILE` is not a string) is rejected.
    fn group<'a>(&'a self, records: &'a [Record], rejected: &mut Rejected) -> Vec<Group<'a>> {
        let mut groups: Vec<Group<'a>> = Vec::new();
        let mut by_path: HashMap<PathBuf, usize> = HashMap::new();
        let mut last: Option<(std::borrow::Cow<'a, Path>, usize)> = None;
        for (index, record) in records.iter().enumerate() {
            let path = match record.meta(CsvOutlet::CSV_FILE) {
                None => std::borrow::Cow::Borrowed(self.default_filepath.as_path()),
                Some(Value::String(p)) => crate::common::metadata_path(self.base_dir.as_deref(), p),
                Some(other) => {
                    let found = json_kind(other);
                    rejected.reject(index, CsvOutletError::Metadata { index, found });
                    continue;
                }
            };
            let Value::Object(map) = &record.payload else {
                let error = CsvOutletError::NotAnObject {
                    index,
                    path: path.to_path_buf(),
                    found: json_kind(&record.payload),
                };
                rejected.reject(index, error);
                continue;
            };
            // Runs of records share a file; skip the hash lookup for them.
            let slot = match last {
                Some((ref p, slot)) if *p == path => slot,
                _ => *by_path
                    .entry(crate::common::file_key(&path))
                    .or_insert_with(|| {
                        groups.push(Group {
                            path: path.clone(),
                            rows: Vec::new(),
                        });
                        groups.len() - 1
                    }),
            };
            last = Some((path, slot));
            groups[slot].rows.push((index, map));
        }
        groups
    }

    /// Encodes one file's rows; a row that cannot be written under the
    /// file's header is rejected, the others are encoded.
    fn encode(
        &self,
        group: &Group<'_>,
        existing: Existing,
        rejected: &mut Rejected,
    ) -> Result<Encoded, CsvOutletError> {
        let path = &*group.path;
        let truncate = self.default_file_mode == FileMode::Truncate;
        let (file, header, needs_newline) = match existing {
            Existing::Absent => (None, None, false),
            Existing::Open {
                file,
                header,
                needs_newline,
            } => (Some(file), header, needs_newline),
        };
        let mut bytes = Vec::new();
        if needs_newline {
            bytes.push(b'\n');
        }
        let mut writer = csv::WriterBuilder::new().from_writer(bytes);
        let encode_error = |source| CsvOutletError::Encode {
            path: path.to_path_buf(),
            source,
        };
        let columns: Vec<&str> = match (&header, &self.columns) {
            (Some(header), Some(wanted)) if header != wanted => {
                return Err(CsvOutletError::HeaderMismatch {
                    path: path.to_path_buf(),
                    header: header.clone(),
                    columns: wanted.clone(),
                });
            }
            (Some(header), _) => header.iter().map(String::as_str).collect(),
            (None, Some(wanted)) => {
                writer.write_record(wanted).map_err(encode_error)?;
                wanted.iter().map(String::as_str).collect()
            }
            (None, None) => {
                let columns = union_of_keys(&group.rows);
                if columns.is_empty() {
                    // A header with no column would be written as one
                    // empty-named column and refuse every later row.
                    for &(index, _) in &group.rows {
                        let error = CsvOutletError::NotAnObject {
                            index,
                            path: path.to_path_buf(),
                            found: "an empty object (no column to start the file's header with)",
                        };
                        rejected.reject(index, error);
                    }
                    return Ok(Encoded {
                        path: path.to_path_buf(),
                        file: None,
                        truncate,
                        bytes: Vec::new(),
                        header: None,
                    });
                }
                writer.write_record(&columns).map_err(encode_error)?;
                columns
            }
        };
        let (ignored, parts) = encode_in_parts(
            &mut writer,
            path,
            &columns,
            &group.rows,
            rejected,
            |index, column| match self.extra_columns {
                _ if self.columns.is_some() => Ok(()),
                ExtraColumns::Ignore => Ok(()),
                ExtraColumns::Error => Err(CsvOutletError::UnknownColumn {
                    index,
                    column: column.to_owned(),
                    path: path.to_path_buf(),
                    header: columns.iter().map(|c| (*c).to_owned()).collect(),
                }),
            },
        )?;
        // With `columns`, leaving the other keys out is what was asked for.
        if !ignored.is_empty() && self.columns.is_none() {
            let mut names: Vec<&str> = ignored.into_iter().collect();
            names.sort_unstable();
            tracing::warn!(
                path = %path.display(),
                columns = %names.join(","),
                "CsvOutlet left out values whose columns are not in the file's header"
            );
        }
        let head = encoded_bytes(writer, path)?;
        let mut bytes = Vec::with_capacity(1 + parts.len());
        bytes.push(head);
        bytes.extend(parts);
        Ok(Encoded {
            path: path.to_path_buf(),
            file,
            truncate,
            bytes,
            header: Some(columns.iter().map(|c| (*c).to_owned()).collect()),
        })
    }
}

/// Every key of `rows`, in order of first appearance.
fn union_of_keys<'a>(rows: &[(usize, &'a Map<String, Value>)]) -> Vec<&'a str> {
    let mut columns: Vec<&'a str> = Vec::new();
    let mut seen: HashSet<&'a str> = HashSet::new();
    let mut previous: Option<&Map<String, Value>> = None;
    for (_, map) in rows {
        // Records of a batch usually share their keys: comparing with the
        // previous record is cheaper than hashing every key again.
        if previous.is_some_and(|p| same_keys(p, map)) {
            continue;
        }
        previous = Some(map);
        for key in map.keys() {
            if seen.insert(key.as_str()) {
                columns.push(key.as_str());
            }
        }
    }
    columns
}

fn same_keys(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len() && a.keys().eq(b.keys())
}

/// What `writer` encoded for the file at `path`.
fn encoded_bytes(writer: csv::Writer<Vec<u8>>, path: &Path) -> Result<Vec<u8>, CsvOutletError> {
    writer.into_inner().map_err(|e| CsvOutletError::Encode {
        path: path.to_path_buf(),
        source: csv::Error::from(e.into_error()),
    })
}

/// Rows per part when a file's rows are encoded in parts.
const ENCODE_PART: usize = 512;

/// [`encode_rows`] in parts, each into its own bytes (on several cores
/// inside heavy work: [`databay_core::compute::split`]), concatenated in
/// order: the same bytes, rejects and left-out keys as encoding the rows
/// one after the other. A few rows go to `writer`; more come back as the
/// parts' bytes, to write in order after what `writer` holds.
fn encode_in_parts<'a>(
    writer: &mut csv::Writer<Vec<u8>>,
    path: &Path,
    columns: &[&str],
    rows: &[(usize, &'a Map<String, Value>)],
    rejected: &mut Rejected,
    on_unknown: impl Fn(usize, &str) -> Result<(), CsvOutletError> + Sync,
) -> Result<(HashSet<&'a str>, Vec<Vec<u8>>), CsvOutletError> {
    if rows.len() <= ENCODE_PART {
        let ignored = encode_rows(writer, path, columns, rows, rejected, on_unknown)?;
        return Ok((ignored, Vec::new()));
    }
    let parts = databay_core::compute::split(rows.chunks(ENCODE_PART).collect(), |part| {
        let mut part_writer = csv::WriterBuilder::new().from_writer(Vec::new());
        let mut part_rejected = Rejected::new();
        let ignored = encode_rows(
            &mut part_writer,
            path,
            columns,
            part,
            &mut part_rejected,
            &on_unknown,
        )?;
        let bytes = encoded_bytes(part_writer, path)?;
        Ok::<_, CsvOutletError>((bytes, part_rejected, ignored))
    });
    let mut ignored = HashSet::new();
    let mut encoded = Vec::with_capacity(parts.len());
    for part in parts {
        let (bytes, part_rejected, part_ignored) = part?;
        encoded.push(bytes);
        for reject in part_rejected.into_rejects() {
            rejected.reject(reject.index, reject.error);
        }
        ignored.extend(part_ignored);
    }
    Ok((ignored, encoded))
}

/// Encodes `rows` under `columns`. A key with no column is passed to
/// `on_unknown`, which rejects its row or lets it leave the value out;
/// returns the keys that were left out.
fn encode_rows<'a, W: Write>(
    writer: &mut csv::Writer<W>,
    path: &Path,
    columns: &[&str],
    rows: &[(usize, &'a Map<String, Value>)],
    rejected: &mut Rejected,
    on_unknown: impl Fn(usize, &str) -> Result<(), CsvOutletError>,
) -> Result<HashSet<&'a str>, CsvOutletError> {
    // Only the first of duplicate header names counts a key as placed.
    let counted: Vec<bool> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| !columns[..i].contains(c))
        .collect();
    let mut ignored = HashSet::new();
    // Reused across rows so a row allocates nothing once they are warm.
    let mut row = csv::ByteRecord::with_capacity(256, columns.len());
    let mut scratch = Vec::with_capacity(64);
    'rows: for &(index, map) in rows {
        row.clear();
        let in_column_order =
            map.len() == columns.len() && map.keys().zip(columns).all(|(k, c)| k == c);
        if in_column_order {
            for value in map.values() {
                push_cell(&mut row, &mut scratch, Some(value));
            }
        } else {
            let mut placed = 0;
            for (column, &counts) in columns.iter().zip(&counted) {
                let value = map.get(*column);
                placed += usize::from(counts && value.is_some());
                push_cell(&mut row, &mut scratch, value);
            }
            if placed < map.len() {
                for key in map.keys().filter(|k| !columns.contains(&k.as_str())) {
                    if let Err(error) = on_unknown(index, key) {
                        rejected.reject(index, error);
                        continue 'rows;
                    }
                    ignored.insert(key.as_str());
                }
            }
        }
        writer
            .write_byte_record(&row)
            .map_err(|source| CsvOutletError::Encode {
                path: path.to_path_buf(),
                source,
            })?;
    }
    Ok(ignored)
}

fn push_cell(row: &mut csv::ByteRecord, scratch: &mut Vec<u8>, value: Option<&Value>) {
    match value {
        None | Some(Value::Null) => row.push_field(b""),
        Some(Value::String(s)) => row.push_field(s.as_bytes()),
        Some(other) => {
            scratch.clear();
            // Serializing a `Value` into a `Vec` cannot fail: its map keys
            // are strings and the writer is infallible. Were it to fail,
            // the cell would hold what was written so far.
            let _ = serde_json::to_writer(&mut *scratch, other);
            row.push_field(scratch);
        }
    }
}

/// Opens an existing file for appending and reads its header; `Absent` if
/// there is no file. `last`: what this outlet last wrote to it (length,
/// identity, header); if the file is as that write left it, its header is
/// that one and it ends with a line break.
fn inspect(path: &Path, last: Option<LeftAs>) -> Result<Existing, CsvOutletError> {
    let file = match OpenOptions::new().read(true).append(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(e) => return Err(FileIoError::new("open", path, e).into()),
    };
    let metadata = file
        .metadata()
        .map_err(|e| FileIoError::new("read the metadata of", path, e))?;
    let len = metadata.len();
    if let Some((last_len, last_identity, header)) = last
        && last_len == len
        && len > 0
        && last_identity.is_some()
        && last_identity == identity(&metadata)
    {
        return Ok(Existing::Open {
            file,
            header: Some(header),
            needs_newline: false,
        });
    }
    if len == 0 {
        return Ok(Existing::Open {
            file,
            header: None,
            needs_newline: false,
        });
    }
    let header = {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&file);
        let mut first = csv::StringRecord::new();
        let found = reader
            .read_record(&mut first)
            .map_err(|source| CsvOutletError::Header {
                path: path.to_path_buf(),
                source,
            })?;
        // The reader strips the UTF-8 byte order mark spreadsheet programs
        // put at the start of a file, so it is not part of the first name.
        found.then(|| first.iter().map(str::to_owned).collect())
    };
    let mut last = [0u8; 1];
    (&file)
        .seek(SeekFrom::End(-1))
        .and_then(|_| (&file).read_exact(&mut last))
        .map_err(|e| FileIoError::new("read", path, e))?;
    Ok(Existing::Open {
        file,
        header,
        needs_newline: last[0] != b'\n',
    })
}

/// A file a push just wrote, as the outlet takes note of it.
struct WrittenFile {
    path: PathBuf,
    /// It was truncated first.
    truncate: bool,
    /// Its length and identity after the write (see [`LastWritten`]).
    len: u64,
    identity: Option<(u64, u64)>,
    /// Its header now.
    header: Option<Vec<String>>,
    /// The open file and whether the write created it, to be synced (see
    /// [`crate::common::Unsynced`]).
    file: File,
    created: bool,
}

/// Writes each target, leaving the sync to the caller; says what it
/// wrote.
fn write_encoded(encoded: Vec<Encoded>) -> Result<Vec<WrittenFile>, FileIoError> {
    let mut written = Vec::with_capacity(encoded.len());
    for target in encoded {
        if target.bytes.iter().all(Vec::is_empty) && target.file.is_none() {
            // Every row bound for a new file was rejected.
            continue;
        }
        let path = target.path.as_path();
        let (mut file, created) = match target.file {
            Some(file) => (file, false),
            None => open_for_write(path, target.truncate)?,
        };
        for bytes in &target.bytes {
            file.write_all(bytes)
                .map_err(|e| FileIoError::new("write", path, e))?;
        }
        let metadata = file
            .metadata()
            .map_err(|e| FileIoError::new("read the length of", path, e))?;
        written.push(WrittenFile {
            path: target.path,
            truncate: target.truncate,
            len: metadata.len(),
            identity: identity(&metadata),
            header: target.header,
            file,
            created,
        });
    }
    Ok(written)
}

#[async_trait]
impl Outlet for CsvOutlet {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut rejected = Rejected::new();
        let groups = self.group(records, &mut rejected);
        let existing: Vec<Existing> = match self.default_file_mode {
            // Truncated files start over: nothing to read.
            FileMode::Truncate => groups.iter().map(|_| Existing::Absent).collect(),
            FileMode::Append => {
                let paths: Vec<_> = groups
                    .iter()
                    .map(|g| {
                        let last = self.last_written.0.files.get(&*g.path).cloned();
                        (g.path.to_path_buf(), last)
                    })
                    .collect();
                let inspect_all = move || {
                    paths
                        .into_iter()
                        .map(|(p, last)| inspect(&p, last))
                        .collect::<Result<Vec<_>, _>>()
                };
                if in_place(records) {
                    inspect_all()?
                } else {
                    tokio::task::spawn_blocking(inspect_all)
                        .await
                        .map_err(CsvOutletError::from)??
                }
            }
        };
        let encode = || {
            groups
                .iter()
                .zip(existing)
                .map(|(group, existing)| self.encode(group, existing, &mut rejected))
                .collect::<Result<Vec<_>, _>>()
        };
        // Encoding a large batch is heavy work: off the threads that drive
        // the other links' timers (databay_core::compute).
        let encoded = if records.len() >= databay_core::compute::HEAVY_BATCH {
            databay_core::compute::run(encode).await?
        } else {
            encode()?
        };
        let files = if in_place(records) {
            write_encoded(encoded)?
        } else {
            tokio::task::spawn_blocking(move || write_encoded(encoded))
                .await
                .map_err(CsvOutletError::from)?
                .map_err(CsvOutletError::from)?
        };
        let mut written = Vec::with_capacity(files.len());
        for f in files {
            match f.header {
                Some(header) => {
                    let left = (f.len, f.identity, header);
                    self.last_written.0.files.insert(f.path.clone(), left);
                }
                None => {
                    self.last_written.0.files.remove(&f.path);
                }
            }
            written.push((f.path.clone(), f.truncate, f.len));
            self.unsynced.0.note(f.path, f.file, f.created);
        }
        self.committed.update(written);
        rejected.into_result()
    }

    /// The rows are synced to disk by [`sync`](Outlet::sync), which the
    /// link calls before it relies on them.
    fn defers_sync(&self) -> bool {
        true
    }

    async fn sync(&mut self) -> Result<(), BoxError> {
        Ok(self.unsynced.0.sync().await.map_err(CsvOutletError::from)?)
    }

    /// `{"files": {path: length}}`: each appended file's length after the
    /// last push.
    fn snapshot(&self) -> Option<Value> {
        self.committed.snapshot()
    }

    /// Cuts each file back to its length in `state`: rows written after the
    /// last checkpoint are written again by the resumed link, once.
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
