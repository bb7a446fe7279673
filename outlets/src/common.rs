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
