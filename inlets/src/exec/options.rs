//! The `exec` inlet's TOML face.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use databay_component::exec::{CommandLine, CommandSpec};
use databay_component::{BuildContext, OptionError, Registry, Secret};
use serde::Deserialize;

use super::{ExecInlet, ExecMode, LineFormat, SAMPLE};

/// `mode` as TOML spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecRunMode {
    /// `"scheduled"`: run the command once per transfer (the default).
    #[default]
    Scheduled,
    /// `"streaming"`: keep one process running; each transfer takes what
    /// it printed since the last.
    Streaming,
}

/// `format` as TOML spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecLineFormat {
    /// `"json"`: one JSON value per line (the default).
    #[default]
    Json,
    /// `"text"`: each line as a string.
    Text,
}

/// Options of `type = "exec"` (inlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecInletOptions {
    /// The program and its arguments, `["python3", "-u", "script.py"]`;
    /// with `shell = true`, one string run by `sh -c`.
    pub command: CommandLine,
    /// Run `command` (one string) through `sh -c` (default false).
    #[serde(default)]
    pub shell: bool,
    /// Variables added to the environment the command inherits.
    #[serde(default)]
    pub env: BTreeMap<String, Secret<String>>,
    /// The command's working directory, relative to the config file's
    /// directory (default: that directory).
    pub working_dir: Option<PathBuf>,
    /// `"scheduled"` (default) or `"streaming"`.
    #[serde(default)]
    pub mode: ExecRunMode,
    /// `"json"` (default) or `"text"`.
    #[serde(default)]
    pub format: ExecLineFormat,
    /// Scheduled mode: the longest one run may take before it is killed
    /// (default: only the link's inlet `timeout`).
    #[serde(
        default,
        deserialize_with = "databay_component::duration::deserialize_opt"
    )]
    pub run_timeout: Option<Duration>,
    /// Streaming mode: at most this many records per transfer (default 10000).
    #[serde(default = "ten_thousand")]
    pub max_lines: usize,
    /// Streaming mode: at most this many lines held between transfers;
    /// beyond them the command waits (default 10000).
    #[serde(default = "ten_thousand")]
    pub buffer_lines: usize,
}

fn ten_thousand() -> usize {
    10_000
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "exec",
        "Runs a command and reads JSON lines (or text) from its stdout, per transfer or streaming.",
        SAMPLE,
        |o: ExecInletOptions, cx: &BuildContext| {
            let command = CommandSpec::from_options(cx, o.command, o.shell, o.env, o.working_dir)?;
            let mode = match o.mode {
                ExecRunMode::Scheduled => ExecMode::Scheduled,
                ExecRunMode::Streaming => ExecMode::Streaming,
            };
            let format = match o.format {
                ExecLineFormat::Json => LineFormat::Json,
                ExecLineFormat::Text => LineFormat::Text,
            };
            for (option, value) in [("max_lines", o.max_lines), ("buffer_lines", o.buffer_lines)] {
                if value == 0 {
                    return Err(OptionError::new(option, "must be at least 1").into());
                }
            }
            let mut inlet = ExecInlet::new(command)
                .mode(mode)
                .format(format)
                .max_lines(o.max_lines)
                .buffer_lines(o.buffer_lines);
            if let Some(limit) = o.run_timeout {
                if mode == ExecMode::Streaming {
                    return Err(OptionError::new(
                        "run_timeout",
                        "applies to `mode = \"scheduled\"` only: a streaming command runs until shutdown",
                    )
                    .into());
                }
                inlet = inlet.timeout(limit);
            }
            Ok(inlet)
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
        assert_registered_documented(super::register, Kind::Inlet, "exec", readme);
    }
}
