//! The `nats` inlet's TOML face.

use std::time::Duration;

use databay_component::broker::Format;
use databay_component::nats::{ConnectionOptions, TlsOptions};
use databay_component::{BuildContext, OptionError, Registry, Secret, duration};
use serde::Deserialize;

use super::{NatsInlet, NatsRead, SAMPLE};

/// `mode` of the `nats` inlet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A core subscription.
    Core,
    /// A JetStream durable pull consumer.
    JetStream,
}

/// Options of `type = "nats"` (inlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsInletOptions {
    /// `nats://[user:password@]host:port`, several separated by commas.
    pub url: Option<Secret<String>>,
    /// User name (with `password`).
    pub user: Option<String>,
    /// Password of `user`.
    pub password: Option<Secret<String>>,
    /// An authentication token.
    pub token: Option<Secret<String>>,
    /// TLS (rustls): `{ ca_file, cert_file, key_file }`; present means required.
    pub tls: Option<TlsOptions>,
    /// The client name the server shows (default `databay`).
    pub client_name: Option<String>,
    /// How long connecting, and each JetStream request, may take (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    /// `core` (default) or `jetstream`.
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// Core: the subject subscribed to (wildcards allowed); JetStream: a filter.
    #[serde(default)]
    pub subject: String,
    /// `json` (default) or `text`.
    #[serde(default)]
    pub format: Format,
    /// The most messages one pull takes (default 100).
    pub batch_size: Option<usize>,
    /// Core only: a queue group sharing the messages among its members.
    pub queue_group: Option<String>,
    /// Core only: the most messages waiting between transfers (default 10000).
    pub buffer: Option<usize>,
    /// JetStream only: the stream.
    pub stream: Option<String>,
    /// JetStream only: the durable consumer (default `databay`).
    pub durable: Option<String>,
    /// JetStream only: redelivery after this long without an acknowledgement (default 30s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub ack_wait: Option<Duration>,
}

fn default_mode() -> Mode {
    Mode::Core
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "nats",
        "Takes NATS messages: a core subscription buffered between transfers, or a JetStream durable consumer acknowledged after commit.",
        SAMPLE,
        |o: NatsInletOptions, cx: &BuildContext| {
            let connector = ConnectionOptions {
                url: o.url,
                user: o.user,
                password: o.password,
                token: o.token,
                tls: o.tls.map(|t| t.resolve(cx)).transpose()?,
                name: o.client_name,
                timeout: o.timeout,
            }
            .connector()?;
            let only = |mode: &str, given: &[(&str, bool)]| -> Result<(), OptionError> {
                match given.iter().find(|(_, g)| *g) {
                    Some((name, _)) => Err(OptionError::new(
                        *name,
                        format!("only with mode = \"{mode}\""),
                    )),
                    None => Ok(()),
                }
            };
            let read = match o.mode {
                Mode::Core => {
                    only(
                        "jetstream",
                        &[
                            ("stream", o.stream.is_some()),
                            ("durable", o.durable.is_some()),
                            ("ack_wait", o.ack_wait.is_some()),
                        ],
                    )?;
                    NatsRead::Subscribe {
                        queue_group: o.queue_group,
                        buffer: o.buffer.unwrap_or(NatsInlet::DEFAULT_BUFFER),
                    }
                }
                Mode::JetStream => {
                    only(
                        "core",
                        &[
                            ("queue_group", o.queue_group.is_some()),
                            ("buffer", o.buffer.is_some()),
                        ],
                    )?;
                    NatsRead::JetStream {
                        stream: o.stream.ok_or_else(|| {
                            OptionError::new("stream", "is required with mode = \"jetstream\"")
                        })?,
                        durable: o.durable.unwrap_or_else(|| "databay".into()),
                        ack_wait: o.ack_wait.unwrap_or(Duration::from_secs(30)),
                    }
                }
            };
            let mut inlet = NatsInlet::new(connector, read, o.subject).format(o.format);
            if let Some(n) = o.batch_size {
                inlet = inlet.batch_size(n);
            }
            inlet.check()?;
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
        assert_registered_documented(super::register, Kind::Inlet, "nats", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.inlet_type("nats"), options).err()
        };
        for (options, want) in [
            ("", "option `subject`: must not be empty"),
            (
                "subject = \"a\"\nbuffer = 0",
                "option `buffer`: must be at least 1",
            ),
            (
                "subject = \"a\"\nstream = \"s\"",
                "option `stream`: only with mode = \"jetstream\"",
            ),
            ("mode = \"jetstream\"", "option `stream`: is required"),
            (
                "mode = \"jetstream\"\nstream = \"a.b\"",
                "option `stream`: `a.b` is no name",
            ),
            (
                "mode = \"jetstream\"\nstream = \"s\"\nqueue_group = \"q\"",
                "option `queue_group`: only with mode = \"core\"",
            ),
            (
                "mode = \"jetstream\"\nstream = \"s\"\nack_wait = \"0s\"",
                "option `ack_wait`: must be more than 0s",
            ),
            (
                "subject = \"a\"\nurl = \"nats://u:s3cret@h:4222\"\nuser = \"u\"",
                "option `password`",
            ),
        ] {
            let e = build(options).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.starts_with(want), "{options}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(
            build("subject = \"orders.>\"\nqueue_group = \"workers\""),
            None
        );
        assert_eq!(build("mode = \"jetstream\"\nstream = \"ORDERS\""), None);
    }
}
