//! The `http_server` inlet's TOML face.

use std::net::SocketAddr;
use std::time::Duration;

use databay_component::http::ByteSize;
use databay_component::{BuildContext, OptionError, Registry, Secret};
use serde::Deserialize;

use super::{HttpServerInlet, SAMPLE};

/// Options of `type = "http_server"` (inlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerInletOptions {
    /// `IP:port` to listen on (default `"127.0.0.1:9478"`: loopback only;
    /// `"0.0.0.0:9478"` for every interface, port 0 for any free port).
    #[serde(default = "default_address")]
    pub address: String,
    /// The path records are POSTed to (default `"/"`).
    #[serde(default = "slash")]
    pub path: String,
    /// A bearer token every request must carry (`Authorization: Bearer
    /// ...`); never shown. Default: none, every request is taken.
    #[serde(default)]
    pub token: Option<Secret<String>>,
    /// At most this many records held, received and not yet delivered
    /// (default 10000); past it a request is answered 503.
    #[serde(default = "ten_thousand")]
    pub max_records: usize,
    /// At most this many bytes of request bodies held (default `"64MiB"`);
    /// past it a request is answered 503.
    #[serde(default = "sixty_four_mib")]
    pub max_bytes: ByteSize,
    /// The largest request body taken (default `"10MiB"`); a larger one is
    /// answered 413.
    #[serde(default = "ten_mib")]
    pub max_body: ByteSize,
    /// The `Retry-After` a 503 carries (default `"1s"`, rounded up to whole
    /// seconds).
    #[serde(
        default = "one_second",
        deserialize_with = "databay_component::duration::deserialize"
    )]
    pub retry_after: Duration,
    /// How long a client may take to send its body (default `"30s"`); a
    /// slower one is answered 408.
    #[serde(
        default = "thirty_seconds",
        deserialize_with = "databay_component::duration::deserialize"
    )]
    pub request_timeout: Duration,
    /// When a sender is answered (default `"commit"`): `"commit"`, with
    /// `200` once the transfer carrying its records was committed (every
    /// outlet accepted them), so nothing answered `200` is ever lost;
    /// `"receipt"`, with `202` as soon as they are held, lost if the
    /// daemon stops before a transfer delivered them.
    #[serde(default)]
    pub ack: Ack,
    /// With `ack = "commit"`, how long a request waits for its commit
    /// (default `"60s"`); past it the request is answered 503 with
    /// `Retry-After`, and its records that no transfer has taken are
    /// dropped (the sender sends them again).
    #[serde(
        default = "sixty_seconds",
        deserialize_with = "databay_component::duration::deserialize"
    )]
    pub ack_timeout: Duration,
}

/// When an [`HttpServerInlet`] answers a sender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Ack {
    /// `200` once the transfer carrying the request's records was
    /// committed; `503` if it was not within `ack_timeout` or the inlet
    /// stops first (at least once, across crashes too).
    #[default]
    Commit,
    /// `202` as soon as the records are held (records held when the inlet
    /// stops are lost).
    Receipt,
}

/// The address listened on by default: loopback, next to the admin
/// endpoint's 9477.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:9478";

fn default_address() -> String {
    DEFAULT_ADDRESS.to_owned()
}

fn slash() -> String {
    "/".to_owned()
}

fn ten_thousand() -> usize {
    10_000
}

fn sixty_four_mib() -> ByteSize {
    ByteSize(64 << 20)
}

fn ten_mib() -> ByteSize {
    ByteSize(10 << 20)
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn sixty_seconds() -> Duration {
    Duration::from_secs(60)
}

impl Default for HttpServerInletOptions {
    fn default() -> Self {
        HttpServerInletOptions {
            address: default_address(),
            path: slash(),
            token: None,
            max_records: ten_thousand(),
            max_bytes: sixty_four_mib(),
            max_body: ten_mib(),
            retry_after: one_second(),
            request_timeout: thirty_seconds(),
            ack: Ack::default(),
            ack_timeout: sixty_seconds(),
        }
    }
}

impl HttpServerInletOptions {
    /// The inlet these options describe (not listening yet: `on_start`
    /// binds the address). Errors name the option at fault.
    pub fn build(self) -> Result<HttpServerInlet, OptionError> {
        let address: SocketAddr = self.address.parse().map_err(|_| {
            OptionError::new(
                "address",
                format!(
                    "`{}` is not an IP:port address, such as \"{DEFAULT_ADDRESS}\" or \"[::1]:9478\"",
                    self.address
                ),
            )
        })?;
        if !self.path.starts_with('/') || self.path.contains(['?', '#', '{', '}', '*']) {
            return Err(OptionError::new(
                "path",
                format!(
                    "`{}` is not a plain path: it must start with `/` and hold no `?`, `#`, `{{}}` or `*`",
                    self.path
                ),
            ));
        }
        if let Some(token) = &self.token
            && (token.expose().is_empty() || token.expose().chars().any(char::is_whitespace))
        {
            return Err(OptionError::new(
                "token",
                "must be a non-empty token without spaces (a client sends `Authorization: Bearer TOKEN`)",
            ));
        }
        if self.max_records == 0 {
            return Err(OptionError::new("max_records", "must be at least 1"));
        }
        if self.max_body.0 == 0 {
            return Err(OptionError::new("max_body", "must be at least 1 byte"));
        }
        if self.max_bytes < self.max_body {
            return Err(OptionError::new(
                "max_bytes",
                format!(
                    "{} is less than `max_body` ({}): a body of that size could never be held",
                    self.max_bytes, self.max_body
                ),
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(OptionError::new("request_timeout", "must be more than 0s"));
        }
        if self.ack_timeout.is_zero() {
            return Err(OptionError::new("ack_timeout", "must be more than 0s"));
        }
        Ok(HttpServerInlet::new(address, self))
    }
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "http_server",
        "Receives POSTed JSON or NDJSON (webhooks) and emits it on the next transfer.",
        SAMPLE,
        |o: HttpServerInletOptions, _: &BuildContext| Ok(o.build()?),
    );
}

#[cfg(test)]
mod tests {
    use databay_component::Kind;
    use databay_component::testing::{assert_registered_documented, build};

    use super::*;

    #[test]
    fn sample_and_readme_match_the_options() {
        let readme = include_str!("README.md");
        assert_registered_documented(super::register, Kind::Inlet, "http_server", readme);
    }

    #[test]
    fn bad_options_name_the_option() {
        let mut registry = Registry::new();
        register(&mut registry);
        let err = |options: &str| {
            build(registry.inlet_type("http_server"), options)
                .map(drop)
                .unwrap_err()
        };
        for (options, want) in [
            ("address = \"localhost\"", "option `address`"),
            ("address = \"127.0.0.1:70000\"", "option `address`"),
            ("path = \"hooks\"", "option `path`"),
            ("path = \"/a?b\"", "option `path`"),
            ("token = \"\"", "option `token`"),
            ("max_records = 0", "option `max_records`"),
            ("max_body = 0", "option `max_body`"),
            ("max_bytes = \"1MiB\"", "option `max_bytes`"),
            ("request_timeout = \"0s\"", "option `request_timeout`"),
            ("ack_timeout = \"0s\"", "option `ack_timeout`"),
            ("ack = \"never\"", "expected `commit` or `receipt`"),
            ("tokn = \"x\"", "tokn"),
        ] {
            let e = err(options);
            assert!(e.contains(want), "{options}: {e}");
        }
    }

    #[test]
    fn the_token_is_never_shown() {
        let options = HttpServerInletOptions {
            token: Some(Secret::new("s3cret-t0ken".into())),
            ..HttpServerInletOptions::default()
        };
        assert!(!format!("{options:?}").contains("s3cret"));
        let inlet = options.build().unwrap();
        assert!(!format!("{inlet:?}").contains("s3cret"), "{inlet:?}");
    }
}
