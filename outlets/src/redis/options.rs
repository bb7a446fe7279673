//! The `redis` outlet's TOML face.

use std::time::Duration;

use databay_component::broker::{Format, Template};
use databay_component::redis::{ConnectionOptions, TlsOptions};
use databay_component::{BuildContext, OptionError, Registry, Secret, duration};
use serde::Deserialize;

use super::{RedisOutlet, RedisWrite, SAMPLE};

/// Options of `type = "redis"` (outlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisOutletOptions {
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
    /// `list` (RPUSH), `stream` (XADD) or `publish` (PUBLISH).
    pub mode: RedisWrite,
    /// The key or channel: fixed, or a template with `{/pointer}` and `{meta:key}`.
    pub key: String,
    /// `json` (default) or `text`.
    #[serde(default)]
    pub format: Format,
    /// Stream only: the entry field holding the message (default `payload`).
    pub field: Option<String>,
    /// Stream only: trim to about this many entries (`MAXLEN ~`).
    pub maxlen: Option<u64>,
}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "redis",
        "Writes each record to Redis: RPUSH to a list, XADD to a stream or PUBLISH on a channel, one pipeline per push.",
        SAMPLE,
        |o: RedisOutletOptions, cx: &BuildContext| {
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
            let key = Template::parse(&o.key).map_err(OptionError::of("key"))?;
            if o.mode != RedisWrite::Stream && o.field.is_some() {
                return Err(OptionError::new(
                    "field",
                    "names the stream entry's field: only with mode = \"stream\"",
                )
                .into());
            }
            let mut outlet = RedisOutlet::new(connector, o.mode, key).format(o.format);
            if let Some(field) = o.field {
                outlet = outlet.field(field);
            }
            if let Some(maxlen) = o.maxlen {
                outlet = outlet.maxlen(maxlen);
            }
            outlet.check()?;
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
        assert_registered_documented(super::register, Kind::Outlet, "redis", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.outlet_type("redis"), options).err()
        };
        for (options, want) in [
            (
                "mode = \"list\"\nkey = \"a{/b\"",
                "option `key`: `{` at byte 1",
            ),
            (
                "mode = \"list\"\nkey = \"\"",
                "option `key`: must not be empty",
            ),
            (
                "mode = \"list\"\nkey = \"k\"\nmaxlen = 10",
                "option `maxlen`: trims a stream",
            ),
            (
                "mode = \"publish\"\nkey = \"k\"\nfield = \"f\"",
                "option `field`",
            ),
            (
                "mode = \"stream\"\nkey = \"k\"\nmaxlen = 0",
                "option `maxlen`: must be at least 1",
            ),
            (
                "mode = \"list\"\nkey = \"k\"\nurl = \"rediss://u:s3cret@h/#insecure\"",
                "option `url`: asks for TLS without checking",
            ),
            ("mode = \"queue\"\nkey = \"k\"", "unknown variant `queue`"),
        ] {
            let e = build(options).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.contains(want), "{options}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(build("mode = \"stream\"\nkey = \"events:{/kind}\""), None);
    }
}
