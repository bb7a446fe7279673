//! The `csv` outlet's TOML face.

use std::path::PathBuf;

use databay_component::{BuildContext, OptionError, Registry};
use serde::Deserialize;

use super::{CsvOutlet, ExtraColumns, SAMPLE};
use crate::file::options::parse_mode;

/// Options of `type = "csv"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// The default file; relative to the config file's directory.
    pub path: PathBuf,
    /// `"append"`/`"a"` (default) or `"truncate"`/`"w"`.
    pub mode: Option<String>,
    /// A key missing from the file's header: `"error"` (default) or `"ignore"`.
    pub extra_columns: Option<String>,
    /// The columns to write, in order; other keys are left out. Default:
    /// the records' keys in order of first appearance.
    pub columns: Option<Vec<String>>,
}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "csv",
        "Writes object payloads as CSV rows, with one header per file.",
        SAMPLE,
        |o: CsvOptions, cx: &BuildContext| {
            let extra = o
                .extra_columns
                .as_deref()
                .map(str::parse::<ExtraColumns>)
                .transpose()
                .map_err(OptionError::of("extra_columns"))?
                .unwrap_or_default();
            let mut outlet = CsvOutlet::new(cx.path("path", &o.path)?)
                .base_dir(&cx.base_dir)
                .file_mode(parse_mode(o.mode.as_deref())?)
                .extra_columns(extra);
            if let Some(columns) = o.columns {
                if columns.is_empty() {
                    return Err(OptionError::new("columns", "must name at least one column").into());
                }
                if let Some(twice) = columns
                    .iter()
                    .enumerate()
                    .find_map(|(i, c)| columns[..i].contains(c).then_some(c))
                {
                    return Err(
                        OptionError::new("columns", format!("names `{twice}` twice")).into(),
                    );
                }
                outlet = outlet.columns(columns);
            }
            Ok(outlet)
        },
    );
}

#[cfg(test)]
mod tests {
    use databay_component::Kind;
    use databay_component::testing::assert_registered_documented;

    #[test]
    fn sample_and_readme_match_the_options() {
        let readme = include_str!("README.md");
        assert_registered_documented(super::register, Kind::Outlet, "csv", readme);
    }
}
