//! The `redis` inlet's TOML face.

use std::time::Duration;

use databay_component::broker::Format;
use databay_component::redis::{ConnectionOptions, TlsOptions};
use databay_component::{BuildContext, OptionError, Registry, Secret, duration};
use serde::Deserialize;

use super::{RedisInlet, RedisRead, SAMPLE};

/// `mode` of the `redis` inlet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `LPOP`.
    List,
    /// `XREADGROUP` / `XACK`.
    Stream,
}

/// Options of `type = "redis"` (inlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisInletOptions {
    /// `redis://[user:password@]host:port[/db]` (`rediss://` for TLS); instead of the separate options.
    pub url: Option<Secret<String>>,
    /// Server host (default `127.0.0.1`).
    pub host: Option<String>,
    /// Server port (default 6379).
    pub port: Option<u16>,
    /// ACL user name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret<String>>,
    /// Database number (default 0).
    pub db: Option<i64>,
    /// TLS (rustls): `{ ca_file, cert_file, key_file }`; present means required.
    pub tls: Option<TlsOptions>,
    /// How long connecting, and each reply, may take (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    /// `list` (LPOP) or `stream` (XREADGROUP, XACK after commit).
    pub mode: Mode,
    /// The list or stream key.
    pub key: String,
    /// `json` (default) or `text`.
    #[serde(default)]
    pub format: Format,
    /// The most messages one pull takes (default 100).
    pub batch_size: Option<usize>,
    /// Stream only: the consumer group (default `databay`).
    pub group: Option<String>,
    /// Stream only: this reader's name in the group (default `databay`).
    pub consumer: Option<String>,
    /// Stream only: where a new group starts, `$` (default) or `0`.
    pub start_id: Option<String>,
    /// Stream only: the entry field holding the message (default `payload`).
    pub field: Option<String>,
    /// Stream only: how long a pull waits for a new entry (default 0s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub block: Option<Duration>,
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "redis",
        "Takes messages from Redis: pops a list, or reads a stream through a consumer group, acknowledged after commit.",
        SAMPLE,
        |o: RedisInletOptions, cx: &BuildContext| {
            let connector = ConnectionOptions {
                url: o.url,
                host: o.host,
                port: o.port,
                username: o.username,
                password: o.password,
                db: o.db,
                tls: o.tls.map(|t| t.resolve(cx)).transpose()?,
                timeout: o.timeout,
            }
            .connector()?;
            let read = match o.mode {
                Mode::List => {
                    for (name, given) in [
                        ("group", o.group.is_some()),
                        ("consumer", o.consumer.is_some()),
                        ("start_id", o.start_id.is_some()),
                        ("field", o.field.is_some()),
                        ("block", o.block.is_some()),
                    ] {
                        if given {
                            return Err(OptionError::new(
                                name,
                                "is for streams: only with mode = \"stream\"",
                            )
                            .into());
                        }
                    }
                    RedisRead::List
                }
                Mode::Stream => RedisRead::Stream {
                    group: o.group.unwrap_or_else(|| "databay".into()),
                    consumer: o.consumer.unwrap_or_else(|| "databay".into()),
                    start_id: o.start_id.unwrap_or_else(|| "$".into()),
                },
            };
            let mut inlet = RedisInlet::new(connector, read, o.key).format(o.format);
            if let Some(n) = o.batch_size {
                inlet = inlet.batch_size(n);
            }
            if let Some(field) = o.field {
                inlet = inlet.field(field);
            }
            if let Some(block) = o.block {
                inlet = inlet.block(block);
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
        assert_registered_documented(super::register, Kind::Inlet, "redis", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.inlet_type("redis"), options).err()
        };
        for (options, want) in [
            (
                "mode = \"list\"\nkey = \"\"",
                "option `key`: must not be empty",
            ),
            (
                "mode = \"list\"\nkey = \"k\"\ngroup = \"g\"",
                "option `group`: is for streams",
            ),
            (
                "mode = \"stream\"\nkey = \"k\"\nbatch_size = 0",
                "option `batch_size`: must be at least 1",
            ),
            (
                "mode = \"stream\"\nkey = \"k\"\nconsumer = \"\"",
                "option `consumer`: must not be empty",
            ),
            (
                "mode = \"list\"\nkey = \"k\"\nurl = \"redis://u:s3cret@h\"\nport = 1",
                "option `port`: give either",
            ),
        ] {
            let e = build(options).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.starts_with(want), "{options}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(build("mode = \"stream\"\nkey = \"events\""), None);
    }
}
