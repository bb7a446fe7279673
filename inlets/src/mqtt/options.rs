//! The `mqtt` inlet's TOML face.

use std::time::Duration;

use databay_component::broker::Format;
use databay_component::mqtt::{self, ConnectionOptions, TlsOptions};
use databay_component::{BuildContext, Registry, Secret, duration};
use serde::Deserialize;

use super::{MqttInlet, SAMPLE};

/// Options of `type = "mqtt"` (inlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttInletOptions {
    /// Broker host (default `127.0.0.1`).
    pub host: Option<String>,
    /// Broker port (default 1883, 8883 with `tls`).
    pub port: Option<u16>,
    /// The client ID, the broker's key to the session (default `databay-<link>`).
    pub client_id: Option<String>,
    /// User name.
    pub username: Option<String>,
    /// Password (needs `username`).
    pub password: Option<Secret<String>>,
    /// Whether the broker forgets the session, and what it holds, on disconnect (default false).
    #[serde(default)]
    pub clean_session: bool,
    /// TLS (rustls): `{ ca_file, cert_file, key_file }`; present means required.
    pub tls: Option<TlsOptions>,
    /// Keep-alive interval (default 30s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub keep_alive: Option<Duration>,
    /// How long connecting may take (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    /// The topic filter subscribed to (`+` and `#` allowed).
    pub topic: String,
    /// 0 or 1 (default; acknowledged after commit).
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// `json` (default) or `text`.
    #[serde(default)]
    pub format: Format,
    /// The most messages one pull takes (default 100).
    pub batch_size: Option<usize>,
    /// The most QoS 0 messages waiting between transfers (default 10000).
    pub buffer: Option<usize>,
}

fn default_qos() -> u8 {
    1
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "mqtt",
        "Takes the MQTT messages of a subscription; at QoS 1 each is acknowledged only after its transfer was committed.",
        SAMPLE,
        |o: MqttInletOptions, cx: &BuildContext| {
            let connector = ConnectionOptions {
                host: o.host,
                port: o.port,
                client_id: o.client_id,
                username: o.username,
                password: o.password,
                clean_session: Some(o.clean_session),
                keep_alive: o.keep_alive,
                tls: o.tls.map(|t| t.resolve(cx)).transpose()?,
                timeout: o.timeout,
            }
            .connector(&format!("databay-{}", cx.link))?;
            let mut inlet = MqttInlet::new(connector, o.topic)
                .qos(mqtt::qos(o.qos)?)
                .format(o.format);
            if let Some(n) = o.batch_size {
                inlet = inlet.batch_size(n);
            }
            if let Some(n) = o.buffer {
                inlet = inlet.buffer(n);
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
        assert_registered_documented(super::register, Kind::Inlet, "mqtt", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.inlet_type("mqtt"), options).err()
        };
        for (options, want) in [
            ("topic = \"\"", "option `topic`: must not be empty"),
            (
                "topic = \"a/#/b\"",
                "option `topic`: `a/#/b` is no topic filter",
            ),
            (
                "topic = \"a+/b\"",
                "option `topic`: `a+/b` is no topic filter",
            ),
            ("topic = \"a\"\nqos = 2", "option `qos`: 2 (exactly once)"),
            (
                "topic = \"a\"\ntls = { ca_file = \"/nonexistent/ca.pem\" }",
                "option `tls.ca_file`",
            ),
            ("topic = \"a\"\nbatch_size = 0", "option `batch_size`"),
            ("topic = \"a\"\nbuffer = 0", "option `buffer`"),
            (
                "topic = \"a\"\npassword = \"s3cret\"",
                "option `password`: needs `username`",
            ),
        ] {
            let e = build(options).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.starts_with(want), "{options}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(build("topic = \"sensors/+/temperature\""), None);
        assert_eq!(build("topic = \"#\"\nqos = 0"), None);
    }
}
