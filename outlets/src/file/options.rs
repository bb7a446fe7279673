//! The `file` outlet's TOML face.

use std::path::PathBuf;

use databay_component::{BuildContext, OptionError, Registry};
use serde::Deserialize;

use super::{FileOutlet, SAMPLE};
use crate::FileMode;

/// Options of `type = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutletOptions {
    /// The default file; relative to the config file's directory.
    pub path: PathBuf,
    /// `"append"`/`"a"` (default) or `"truncate"`/`"w"`.
    pub mode: Option<String>,
    /// Only `"utf-8"` is supported (default).
    pub encoding: Option<String>,
}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "file",
        "Writes one line per record to a file.",
        SAMPLE,
        |o: FileOutletOptions, cx: &BuildContext| {
            let mode = parse_mode(o.mode.as_deref())?;
            let outlet = FileOutlet::new(cx.path("path", &o.path)?)
                .base_dir(&cx.base_dir)
                .file_mode(mode);
            Ok(match o.encoding {
                Some(e) => outlet.encoding(&e).map_err(OptionError::of("encoding"))?,
                None => outlet,
            })
        },
    );
}

/// The `mode` option of the file outlets.
pub(crate) fn parse_mode(mode: Option<&str>) -> Result<FileMode, OptionError> {
    Ok(mode
        .map(str::parse::<FileMode>)
        .transpose()
        .map_err(OptionError::of("mode"))?
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use databay_component::Kind;
    use databay_component::testing::assert_registered_documented;

    #[test]
    fn sample_and_readme_match_the_options() {
        let readme = include_str!("README.md");
        assert_registered_documented(super::register, Kind::Outlet, "file", readme);
    }
}
