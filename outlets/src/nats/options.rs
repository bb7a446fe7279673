//! The `nats` outlet's TOML face.

use std::time::Duration;

use databay_component::broker::{Format, Template};
use databay_component::nats::{ConnectionOptions, TlsOptions};
use databay_component::{BuildContext, OptionError, Registry, Secret, duration};
use serde::Deserialize;

use super::{NatsOutlet, NatsPublish, SAMPLE};

/// Options of `type = "nats"` (outlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsOutletOptions {
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
    /// How long connecting, and each JetStream acknowledgement, may take (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    /// `core` (default) or `jetstream`.
    #[serde(default = "default_mode")]
    pub mode: NatsPublish,
    /// The subject: fixed, or a template with `{/pointer}` and `{meta:key}`.
    pub subject: String,
    /// `json` (default) or `text`.
    #[serde(default)]
    pub format: Format,
}

fn default_mode() -> NatsPublish {
    NatsPublish::Core
}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "nats",
        "Publishes each record as a NATS message, on core NATS (flushed) or JetStream (acknowledged).",
        SAMPLE,
        |o: NatsOutletOptions, cx: &BuildContext| {
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
            let subject = Template::parse(&o.subject).map_err(OptionError::of("subject"))?;
            let outlet = NatsOutlet::new(connector, o.mode, subject).format(o.format);
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
        assert_registered_documented(super::register, Kind::Outlet, "nats", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.outlet_type("nats"), options).err()
        };
        for (options, want) in [
            (
                "subject = \"a.*\"",
                "option `subject`: `a.*` is not a subject",
            ),
            (
                "subject = \"a b\"",
                "option `subject`: `a b` contains whitespace",
            ),
            ("subject = \"a.{/b\"", "option `subject`: `{` at byte 2"),
            (
                "subject = \"a\"\ntls = { ca_file = \"/nonexistent/ca.pem\" }",
                "option `tls.ca_file`",
            ),
            (
                "subject = \"a\"\nuser = \"u\"",
                "option `password`: `user` and `password` go together",
            ),
            (
                "subject = \"a\"\nurl = \"nats://u:s3cret@h:4222\"\ntoken = \"t0k3n\"\nuser = \"u\"\npassword = \"p\"",
                "option `token`",
            ),
            (
                "subject = \"a\"\nmode = \"stream\"",
                "unknown variant `stream`",
            ),
        ] {
            let e = build(options).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.contains(want), "{options}: {e}");
            assert!(!e.contains("s3cret") && !e.contains("t0k3n"), "{e}");
        }
        assert_eq!(
            build("subject = \"orders.{/region}\"\nmode = \"jetstream\""),
            None
        );
    }
}
