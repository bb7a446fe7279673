//! The `exec` outlet's TOML face.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use databay_component::exec::{CommandLine, CommandSpec};
use databay_component::{BuildContext, OptionError, Registry, Secret};
use serde::Deserialize;

use super::{ExecOutlet, SAMPLE};

/// Options of `type = "exec"` (outlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecOutletOptions {
    /// The program and its arguments, `["python3", "-u", "sink.py"]`;
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
    /// Wait for the command to acknowledge each batch (default true);
    /// false is fire-and-forget and not durable.
    #[serde(default = "yes")]
    pub ack: bool,
    /// How long to wait for an acknowledgement (and for the command to read
    /// a batch, and on shutdown to exit) (default "30s").
    #[serde(
        default = "thirty_seconds",
        deserialize_with = "databay_component::duration::deserialize"
    )]
    pub ack_timeout: Duration,
    /// Write `{"payload": ..., "metadata": {...}}` per record instead of
    /// the payload alone (default false).
    #[serde(default)]
    pub metadata: bool,
}

fn yes() -> bool {
    true
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "exec",
        "Writes records as JSON lines to a long-running command's stdin, waiting for it to acknowledge each batch.",
        SAMPLE,
        |o: ExecOutletOptions, cx: &BuildContext| {
            let command = CommandSpec::from_options(cx, o.command, o.shell, o.env, o.working_dir)?;
            if o.ack_timeout.is_zero() {
                return Err(OptionError::new("ack_timeout", "must be more than 0s").into());
            }
            Ok(ExecOutlet::new(command)
                .ack(o.ack)
                .ack_timeout(o.ack_timeout)
                .metadata(o.metadata))
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
        assert_registered_documented(super::register, Kind::Outlet, "exec", readme);
    }
}
