//! Registers every built-in component type, mapping each one's TOML
//! options (documented in the `sample.toml` beside its code) onto its
//! constructor.

use std::path::PathBuf;

use databay_core::BoxError;
use databay_inlets::{FileInlet, FileInletMode, NullInlet, RandomIntInlet};
use databay_outlets::{CsvOutlet, ExtraColumns, FileMode, FileOutlet, NullOutlet, PrintOutlet};
use serde::Deserialize;

use crate::{BuildContext, OptionError, Registry};

/// An option table that accepts no keys (beyond `type` and `name`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RandomIntOptions {
    #[serde(default)]
    min: i64,
    #[serde(default = "hundred")]
    max: i64,
    seed: Option<u64>,
}

fn hundred() -> i64 {
    databay_inlets::random_int::DEFAULT_MAX
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum FileReadMode {
    #[default]
    Line,
    File,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileInletOptions {
    path: PathBuf,
    #[serde(default)]
    mode: FileReadMode,
    #[serde(default = "one")]
    lines_per_transfer: usize,
    #[serde(default)]
    json: bool,
    #[serde(default)]
    follow: bool,
}

fn one() -> usize {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrintOptions {
    #[serde(default)]
    only_payload: bool,
    #[serde(default)]
    skip_update: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOutletOptions {
    path: PathBuf,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvOptions {
    path: PathBuf,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    extra_columns: Option<String>,
}

/// A `path` option that is not empty (an empty one would name the
/// config's own directory).
fn path(path: &std::path::Path, cx: &BuildContext) -> Result<PathBuf, BoxError> {
    if path.as_os_str().is_empty() {
        return Err(OptionError::new("path", "must not be empty").into());
    }
    Ok(cx.resolve(path))
}

fn file_mode(mode: Option<&str>) -> Result<FileMode, BoxError> {
    Ok(mode
        .map(str::parse::<FileMode>)
        .transpose()?
        .unwrap_or_default())
}

pub(crate) fn register(registry: &mut Registry) {
    registry
        .inlet(
            "null",
            "Produces nothing (a no-op inlet).",
            databay_inlets::null::SAMPLE,
            |_: NoOptions, _: &BuildContext| Ok(NullInlet::new()),
        )
        .inlet(
            "random_int",
            "One random integer in [min, max] per transfer.",
            databay_inlets::random_int::SAMPLE,
            |o: RandomIntOptions, _: &BuildContext| {
                let inlet = RandomIntInlet::new(o.min, o.max)?;
                Ok(match o.seed {
                    Some(seed) => inlet.seed(seed),
                    None => inlet,
                })
            },
        )
        .inlet(
            "file",
            "Reads a file line by line (optionally NDJSON, optionally following) or whole.",
            databay_inlets::file::SAMPLE,
            |o: FileInletOptions, cx: &BuildContext| {
                let mode = match o.mode {
                    FileReadMode::Line => FileInletMode::Line,
                    FileReadMode::File => FileInletMode::File,
                };
                if o.lines_per_transfer == 0 {
                    return Err(OptionError::new("lines_per_transfer", "must be at least 1").into());
                }
                Ok(FileInlet::new(path(&o.path, cx)?)
                    .mode(mode)
                    .lines_per_transfer(o.lines_per_transfer)
                    .json(o.json)
                    .follow(o.follow))
            },
        )
        .outlet(
            "null",
            "Accepts every record and discards it.",
            databay_outlets::null::SAMPLE,
            |_: NoOptions, _: &BuildContext| Ok(NullOutlet::new()),
        )
        .outlet(
            "print",
            "Prints every record to standard output.",
            databay_outlets::print::SAMPLE,
            |o: PrintOptions, _: &BuildContext| {
                Ok(PrintOutlet::new()
                    .only_payload(o.only_payload)
                    .skip_update(o.skip_update))
            },
        )
        .outlet(
            "file",
            "Writes one line per record to a file.",
            databay_outlets::file::SAMPLE,
            |o: FileOutletOptions, cx: &BuildContext| {
                let outlet =
                    FileOutlet::new(path(&o.path, cx)?).file_mode(file_mode(o.mode.as_deref())?);
                Ok(match o.encoding {
                    Some(e) => outlet.encoding(&e)?,
                    None => outlet,
                })
            },
        )
        .outlet(
            "csv",
            "Writes object payloads as CSV rows, with one header per file.",
            databay_outlets::csv::SAMPLE,
            |o: CsvOptions, cx: &BuildContext| {
                let extra = o
                    .extra_columns
                    .as_deref()
                    .map(str::parse::<ExtraColumns>)
                    .transpose()?
                    .unwrap_or_default();
                Ok(CsvOutlet::new(path(&o.path, cx)?)
                    .file_mode(file_mode(o.mode.as_deref())?)
                    .extra_columns(extra))
            },
        );
    crate::processors::register(registry);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;
    use crate::config::Config;
    use std::path::Path;

    /// Every sample parses, names its own type, and loads as part of a link.
    #[test]
    fn every_sample_loads_and_validates() {
        let registry = Registry::with_builtins();
        let components = registry.components();
        assert!(components.len() >= 7);
        for c in components {
            let table: toml::Table = toml::from_str(&c.sample)
                .unwrap_or_else(|e| panic!("{} {}: sample does not parse: {e}", c.kind, c.name));
            assert_eq!(
                table.get("type").and_then(|t| t.as_str()),
                Some(c.name.as_str()),
                "{} {}: sample's type",
                c.kind,
                c.name
            );
            let indented = c.sample.clone();
            let text = match c.kind {
                Kind::Inlet => format!(
                    "[[link]]\nname = \"l\"\nevery = \"1s\"\n[[link.inlet]]\n{indented}\n[[link.outlet]]\ntype = \"null\"\n"
                ),
                Kind::Outlet => format!(
                    "[[link]]\nname = \"l\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"null\"\n[[link.outlet]]\n{indented}\n"
                ),
                Kind::Processor => format!(
                    "[[link]]\nname = \"l\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"null\"\n[[link.processor]]\n{indented}\n[[link.outlet]]\ntype = \"null\"\n"
                ),
                Kind::Grouper => format!(
                    "[[link]]\nname = \"l\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"null\"\n[[link.grouper]]\n{indented}\n[[link.outlet]]\ntype = \"null\"\n"
                ),
            };
            if let Err(e) = Config::parse(Path::new("sample.toml"), &text, &registry, &|_| None) {
                panic!("{} {}: sample does not validate:\n{e}", c.kind, c.name);
            }
        }
    }
}
