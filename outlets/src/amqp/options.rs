//! The `amqp` outlet's TOML face.

use std::time::Duration;

use databay_component::amqp::ConnectionOptions;
use databay_component::broker::{Format, Template};
use databay_component::{BuildContext, OptionError, Registry, Secret, duration};
use serde::Deserialize;

use super::{AmqpOutlet, SAMPLE};

/// Options of `type = "amqp"` (outlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpOutletOptions {
    /// `amqp://user:password@host:port/vhost` (`amqps://` for TLS).
    pub url: Option<Secret<String>>,
    /// User name (overrides the URL's).
    pub username: Option<String>,
    /// Password (overrides the URL's).
    pub password: Option<Secret<String>>,
    /// The connection name the broker shows (default `databay`).
    pub connection_name: Option<String>,
    /// How long connecting, and each confirmation, may take (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    /// The exchange (default `""`, the default exchange: the routing key names the queue).
    #[serde(default)]
    pub exchange: String,
    /// The routing key: fixed, or a template with `{/pointer}` and `{meta:key}`.
    pub routing_key: String,
    /// `json` (default) or `text`.
    #[serde(default)]
    pub format: Format,
    /// Persistent messages (default true).
    #[serde(default = "yes")]
    pub persistent: bool,
    /// A message no queue takes fails the push (default true).
    #[serde(default = "yes")]
    pub mandatory: bool,
}

fn yes() -> bool {
    true
}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "amqp",
        "Publishes each record as an AMQP message to an exchange (RabbitMQ), every message confirmed by the broker.",
        SAMPLE,
        |o: AmqpOutletOptions, _: &BuildContext| {
            let connector = ConnectionOptions {
                url: o.url,
                username: o.username,
                password: o.password,
                name: o.connection_name,
                timeout: o.timeout,
            }
            .connector()?;
            let key = Template::parse(&o.routing_key).map_err(OptionError::of("routing_key"))?;
            let outlet = AmqpOutlet::new(connector, o.exchange, key)
                .format(o.format)
                .persistent(o.persistent)
                .mandatory(o.mandatory);
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
        assert_registered_documented(super::register, Kind::Outlet, "amqp", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.outlet_type("amqp"), options).err()
        };
        let long = "k".repeat(300);
        for (options, want) in [
            (
                "routing_key = \"\"".to_owned(),
                "option `routing_key`: must not be empty",
            ),
            (
                "routing_key = \"a.{/b\"".to_owned(),
                "option `routing_key`: `{` at byte 2",
            ),
            (
                format!("routing_key = \"{long}\""),
                "option `routing_key`: is longer",
            ),
            (
                "routing_key = \"a\"\nurl = \"amqp://u:s3cret@h:x/\"".to_owned(),
                "option `url`: not an AMQP URL",
            ),
            (
                "routing_key = \"a\"\ntimeout = \"0s\"".to_owned(),
                "option `timeout`",
            ),
        ] {
            let e = build(&options).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.starts_with(want), "{options}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(
            build("exchange = \"events\"\nrouting_key = \"orders.{/region}\""),
            None
        );
    }
}
