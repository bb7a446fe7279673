//! The `dir` inlet's TOML face.

use std::path::PathBuf;

use databay_component::{BuildContext, OptionError, Registry};
use serde::Deserialize;

use super::{DirInlet, SAMPLE};

/// Options of `type = "dir"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirInletOptions {
    /// A glob of the files to read (`*`, `?`, `[...]`, `**`); relative to
    /// the config file's directory.
    pub path: PathBuf,
    /// At most this many lines per file per transfer (default 1, at least 1).
    #[serde(default = "one")]
    pub lines_per_transfer: usize,
    /// Parse each line as JSON (default false).
    #[serde(default)]
    pub json: bool,
    /// Keep reading lines appended to each file (default false).
    #[serde(default)]
    pub follow: bool,
    /// Pick up new files matching the glob on every transfer (default true).
    #[serde(default = "yes")]
    pub discover: bool,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "dir",
        "Reads every file matching a glob, line by line, each file a partition with its own resume state.",
        SAMPLE,
        |o: DirInletOptions, cx: &BuildContext| {
            if o.lines_per_transfer == 0 {
                return Err(OptionError::new("lines_per_transfer", "must be at least 1").into());
            }
            let path = cx.path("path", &o.path)?;
            let text = path.to_string_lossy();
            if let Err(e) = glob::Pattern::new(&text) {
                return Err(OptionError::new("path", format!("not a valid glob: {e}")).into());
            }
            Ok(DirInlet::new(path)
                .lines_per_transfer(o.lines_per_transfer)
                .json(o.json)
                .follow(o.follow)
                .discover(o.discover)
                .concurrency(cx.inlet_concurrency()))
        },
    );
    registry.resume_state(
        "dir",
        "per file (finished ones included), the byte offset and line after the last committed \
         line, device and inode, and a fingerprint of the first 256 bytes",
    );
}

#[cfg(test)]
mod tests {
    use databay_component::Kind;
    use databay_component::testing::assert_registered_documented;

    #[test]
    fn sample_and_readme_match_the_options() {
        let readme = include_str!("README.md");
        assert_registered_documented(super::register, Kind::Inlet, "dir", readme);
    }
}
