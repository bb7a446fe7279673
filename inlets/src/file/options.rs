//! The `file` inlet's TOML face.

use std::path::PathBuf;

use databay_component::{BuildContext, OptionError, Registry};
use serde::Deserialize;

use super::{FileInlet, FileInletMode, SAMPLE};

/// `mode` as TOML spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileReadMode {
    /// `"line"`: lines from a file held open (the default).
    #[default]
    Line,
    /// `"file"`: the whole file as one record per transfer.
    File,
}

/// Options of `type = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInletOptions {
    /// The file; relative to the config file's directory.
    pub path: PathBuf,
    /// `"line"` (default) or `"file"`.
    #[serde(default)]
    pub mode: FileReadMode,
    /// Line mode: at most this many lines per transfer (default 1, at least 1).
    #[serde(default = "one")]
    pub lines_per_transfer: usize,
    /// Parse each line (or the whole file) as JSON (default false).
    #[serde(default)]
    pub json: bool,
    /// Line mode: wait for appended lines at end of file (default false).
    #[serde(default)]
    pub follow: bool,
}

fn one() -> usize {
    1
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "file",
        "Reads a file line by line (optionally NDJSON, optionally following) or whole.",
        SAMPLE,
        |o: FileInletOptions, cx: &BuildContext| {
            let mode = match o.mode {
                FileReadMode::Line => FileInletMode::Line,
                FileReadMode::File => FileInletMode::File,
            };
            if o.lines_per_transfer == 0 {
                return Err(OptionError::new("lines_per_transfer", "must be at least 1").into());
            }
            let path = cx.path("path", &o.path)?;
            if !path.exists() {
                cx.warn(
                    "path",
                    format!(
                        "`{}` does not exist (yet): until it does, the link is `failed` and its \
                         start is retried with backoff",
                        path.display()
                    ),
                );
            }
            Ok(FileInlet::new(path)
                .mode(mode)
                .lines_per_transfer(o.lines_per_transfer)
                .json(o.json)
                .follow(o.follow))
        },
    );
    registry.resume_state(
        "file",
        "line mode: the byte offset and line after the last committed line, device and inode, \
         and a fingerprint of the first 256 bytes",
    );
}

#[cfg(test)]
mod tests {
    use databay_component::Kind;
    use databay_component::testing::assert_registered_documented;

    #[test]
    fn sample_and_readme_match_the_options() {
        let readme = include_str!("README.md");
        assert_registered_documented(super::register, Kind::Inlet, "file", readme);
    }
}
