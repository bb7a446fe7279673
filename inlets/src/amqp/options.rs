//! The `amqp` inlet's TOML face.

use std::time::Duration;

use databay_component::amqp::ConnectionOptions;
use databay_component::broker::Format;
use databay_component::{BuildContext, OptionError, Registry, Secret, duration};
use serde::Deserialize;

use super::{AmqpInlet, SAMPLE};

/// Options of `type = "amqp"` (inlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpInletOptions {
    /// `amqp://user:password@host:port/vhost` (`amqps://` for TLS).
    pub url: Option<Secret<String>>,
    /// User name (overrides the URL's).
    pub username: Option<String>,
    /// Password (overrides the URL's).
    pub password: Option<Secret<String>>,
    /// The connection name the broker shows (default `databay`).
    pub connection_name: Option<String>,
    /// How long connecting may take (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    /// The queue consumed (it must exist).
    pub queue: String,
    /// The consumer tag (default `databay-<link>`).
    pub consumer_tag: Option<String>,
    /// `json` (default) or `text`.
    #[serde(default)]
    pub format: Format,
    /// The most messages one pull takes (default 100).
    pub batch_size: Option<usize>,
    /// The most unacknowledged messages sent ahead (default twice `batch_size`).
    pub prefetch: Option<u16>,
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "amqp",
        "Consumes an AMQP queue (RabbitMQ) with a prefetch window; messages acknowledged after commit, requeued on rollback.",
        SAMPLE,
        |o: AmqpInletOptions, cx: &BuildContext| {
            let connector = ConnectionOptions {
                url: o.url,
                username: o.username,
                password: o.password,
                name: o.connection_name,
                timeout: o.timeout,
            }
            .connector()?;
            let tag = o
                .consumer_tag
                .unwrap_or_else(|| format!("databay-{}", cx.link));
            let batch_size = o.batch_size.unwrap_or(AmqpInlet::DEFAULT_BATCH_SIZE);
            let prefetch = match o.prefetch {
                Some(n) => n,
                None => u16::try_from(batch_size.saturating_mul(2)).map_err(|_| {
                    OptionError::new(
                        "batch_size",
                        "is more than AMQP's prefetch window can hold (65535): give `prefetch` and a smaller batch",
                    )
                })?,
            };
            let inlet = AmqpInlet::new(connector, o.queue, tag)
                .format(o.format)
                .batch_size(batch_size)
                .prefetch(prefetch);
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
        assert_registered_documented(super::register, Kind::Inlet, "amqp", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.inlet_type("amqp"), options).err()
        };
        for (options, want) in [
            ("queue = \"\"", "option `queue`: must not be empty"),
            ("queue = \"q\"\nbatch_size = 0", "option `batch_size`"),
            (
                "queue = \"q\"\nbatch_size = 50\nprefetch = 10",
                "option `prefetch`: 10 is less than batch_size 50",
            ),
            (
                "queue = \"q\"\nbatch_size = 40000",
                "option `batch_size`: is more than",
            ),
            (
                "queue = \"q\"\nurl = \"amqp://u:s3cret@h:x/\"",
                "option `url`: not an AMQP URL",
            ),
        ] {
            let e = build(options).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.starts_with(want), "{options}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(build("queue = \"orders\""), None);
    }
}
