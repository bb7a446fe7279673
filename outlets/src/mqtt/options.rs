//! The `mqtt` outlet's TOML face.

use std::time::Duration;

use databay_component::broker::{Format, Template};
use databay_component::mqtt::{self, ConnectionOptions, TlsOptions};
use databay_component::{BuildContext, OptionError, Registry, Secret, duration};
use serde::Deserialize;

use super::{MqttOutlet, SAMPLE};

/// Options of `type = "mqtt"` (outlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttOutletOptions {
    /// Broker host (default `127.0.0.1`).
    pub host: Option<String>,
    /// Broker port (default 1883, 8883 with `tls`).
    pub port: Option<u16>,
    /// The client ID (default `databay-<link>-out-<process id>`).
    pub client_id: Option<String>,
    /// User name.
    pub username: Option<String>,
    /// Password (needs `username`).
    pub password: Option<Secret<String>>,
    /// TLS (rustls): `{ ca_file, cert_file, key_file }`; present means required.
    pub tls: Option<TlsOptions>,
    /// Keep-alive interval (default 30s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub keep_alive: Option<Duration>,
    /// How long connecting, and waiting for acknowledgements, may take (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    /// The topic: fixed, or a template with `{/pointer}` and `{meta:key}`.
    pub topic: String,
    /// 0 (at most once) or 1 (at least once, acknowledged; default).
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// Publish retained messages (default false).
    #[serde(default)]
    pub retain: bool,
    /// `json` (default) or `text`.
    #[serde(default)]
    pub format: Format,
}

fn default_qos() -> u8 {
    1
}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "mqtt",
        "Publishes each record as an MQTT message at QoS 0 (written) or 1 (acknowledged), the topic from a template.",
        SAMPLE,
        |o: MqttOutletOptions, cx: &BuildContext| {
            let connector = ConnectionOptions {
                host: o.host,
                port: o.port,
                client_id: o.client_id,
                username: o.username,
                password: o.password,
                clean_session: Some(true),
                keep_alive: o.keep_alive,
                tls: o.tls.map(|t| t.resolve(cx)).transpose()?,
                timeout: o.timeout,
            }
            .connector(&format!("databay-{}-out-{}", cx.link, std::process::id()))?;
            let topic = Template::parse(&o.topic).map_err(OptionError::of("topic"))?;
            let outlet = MqttOutlet::new(connector, topic)
                .qos(mqtt::qos(o.qos)?)
                .retain(o.retain)
                .format(o.format);
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
        assert_registered_documented(super::register, Kind::Outlet, "mqtt", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.outlet_type("mqtt"), options).err()
        };
        for (options, want) in [
            ("topic = \"a/#\"", "option `topic`: `a/#` has a wildcard"),
            ("topic = \"\"", "option `topic`: must not be empty"),
            ("topic = \"a\"\nqos = 2", "option `qos`: 2 (exactly once)"),
            (
                "topic = \"a\"\ntls = { ca_file = \"/nonexistent/ca.pem\" }",
                "option `tls.ca_file`",
            ),
            ("topic = \"a\"\nqos = 7", "option `qos`: 7 is not"),
            (
                "topic = \"a\"\npassword = \"s3cret\"",
                "option `password`: needs `username`",
            ),
            ("topic = \"a\"\ntimeout = \"0s\"", "option `timeout`"),
        ] {
            let e = build(options).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.starts_with(want), "{options}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(build("topic = \"sensors/{/room}\"\nqos = 0"), None);
    }
}
