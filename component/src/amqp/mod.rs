//! What the `amqp` inlet and outlet share, kept once: the connection
//! options (`url`, or `username`/`password` completing it), connecting
//! with a timeout, and errors that name the server and virtual host,
//! never the password.
//!
//! `amqps://` URLs connect over TLS on rustls with ring (the daemon's one
//! TLS stack), trusting the system's roots.
//!
//! ```
//! use databay_component::amqp::ConnectionOptions;
//! use databay_component::Secret;
//!
//! let options = ConnectionOptions {
//!     url: Some(Secret::new("amqp://app:hunter2@mq.internal:5672/shop".into())),
//!     ..ConnectionOptions::default()
//! };
//! let connector = options.connector().unwrap();
//! assert_eq!(connector.target(), "mq.internal:5672/shop");
//! assert!(!format!("{connector:?}").contains("hunter2"));
//! ```

pub mod testing;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

use crate::{OptionError, Secret};

/// How long connecting, and waiting for one confirmation, may take when
/// `timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection options every AMQP component takes.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    /// `amqp://user:password@host:port/vhost` (default
    /// `amqp://127.0.0.1:5672/%2f`, user `guest`).
    pub url: Option<Secret<String>>,
    /// User name (overrides the URL's).
    pub username: Option<String>,
    /// Password (overrides the URL's).
    pub password: Option<Secret<String>>,
    /// The connection name the broker shows (default `databay`).
    pub name: Option<String>,
    /// How long connecting, and each confirmation, may take (default 10 s).
    pub timeout: Option<Duration>,
}

impl ConnectionOptions {
    /// Checks the options and prepares a [`Connector`]; every error names
    /// the option at fault.
    pub fn connector(self) -> Result<Connector, OptionError> {
        let url = self
            .url
            .clone()
            .unwrap_or_else(|| Secret::new("amqp://127.0.0.1:5672/%2f".into()));
        let mut uri = AMQPUri::from_str(url.expose()).map_err(|e| {
            OptionError::new(
                "url",
                scrub(
                    format!("not an AMQP URL (`amqp://user:password@host:5672/vhost`): {e}"),
                    &[url.expose()],
                ),
            )
        })?;
        if let Some(user) = &self.username {
            uri.authority.userinfo.username = user.clone();
        }
        if let Some(password) = &self.password {
            uri.authority.userinfo.password = password.expose().clone();
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(OptionError::new("timeout", "must be more than 0s"));
        }
        let vhost = if uri.vhost.is_empty() {
            "/"
        } else {
            &uri.vhost
        };
        Ok(Connector {
            target: format!(
                "{}:{}{}{vhost}",
                uri.authority.host,
                uri.authority.port,
                if vhost.starts_with('/') { "" } else { "/" }
            ),
            user: uri.authority.userinfo.username.clone(),
            password: uri.authority.userinfo.password.clone(),
            name: self.name.unwrap_or_else(|| "databay".into()),
            uri,
            timeout,
        })
    }
}

/// `text` with every secret replaced by `***`.
fn scrub(mut text: String, secrets: &[&str]) -> String {
    for secret in secrets {
        if !secret.is_empty() {
            text = text.replace(secret, "***");
        }
    }
    text
}

/// Connects to one AMQP broker; cheap to clone.
#[derive(Clone)]
pub struct Connector {
    uri: AMQPUri,
    target: String,
    user: String,
    password: String,
    name: String,
    timeout: Duration,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.target)
            .field("user", &self.user)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// The broker as errors name it: `host:port/vhost`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The connect and confirmation timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn scrub(&self, text: String) -> String {
        // A short password (`guest`) is still the password.
        scrub(text, &[&self.password])
    }

    /// Connects, within the timeout.
    pub async fn connect(&self) -> Result<Connection, AmqpError> {
        let properties =
            ConnectionProperties::default().with_connection_name(self.name.clone().into());
        let connecting = Connection::connect_uri(self.uri.clone(), properties);
        match tokio::time::timeout(self.timeout, connecting).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(AmqpError::Connect {
                target: self.target.clone(),
                user: self.user.clone(),
                message: self.scrub(describe(&e)),
            }),
            Err(_) => Err(AmqpError::Connect {
                target: self.target.clone(),
                user: self.user.clone(),
                message: format!(
                    "no answer within {}",
                    humantime::format_duration(self.timeout)
                ),
            }),
        }
    }

    /// An [`AmqpError::Operation`] about this broker.
    pub fn error(&self, what: impl Into<String>, message: impl fmt::Display) -> AmqpError {
        AmqpError::Operation {
            target: self.target.clone(),
            what: what.into(),
            message: self.scrub(message.to_string()),
        }
    }
}

/// What went wrong talking to an AMQP broker. Each names the broker
/// (`host:port/vhost`), never the password.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AmqpError {
    /// The broker could not be reached, or refused the login.
    #[error("cannot connect to AMQP broker at {target} as `{user}`: {message}")]
    Connect {
        /// `host:port/vhost`.
        target: String,
        /// The user name.
        user: String,
        /// The client's error.
        message: String,
    },
    /// A channel operation failed.
    #[error("AMQP broker at {target}: {what}: {message}")]
    Operation {
        /// `host:port/vhost`.
        target: String,
        /// What was being done (`publishing to exchange ""`).
        what: String,
        /// The client's or the broker's error.
        message: String,
    },
}

/// An error in one line, with its cause chain.
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let shown = e.to_string();
        if !text.contains(&shown) {
            text.push_str(&format!(": {shown}"));
        }
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> ConnectionOptions {
        ConnectionOptions {
            url: Some(Secret::new(u.to_owned())),
            ..ConnectionOptions::default()
        }
    }

    #[test]
    fn urls_name_the_broker_and_vhost_without_the_password() {
        let c = url("amqp://app:s3cret@mq:5673/shop").connector().unwrap();
        assert_eq!(c.target(), "mq:5673/shop");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.scrub("bad s3cret".into()), "bad ***");
        let c = ConnectionOptions::default().connector().unwrap();
        assert_eq!(c.target(), "127.0.0.1:5672/");
    }

    #[test]
    fn bad_urls_are_option_errors_without_the_password() {
        let e = url("amqp://u:s3cret@h:notaport/").connector().unwrap_err();
        assert_eq!(e.option, "url");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = ConnectionOptions {
            timeout: Some(Duration::ZERO),
            ..ConnectionOptions::default()
        }
        .connector()
        .unwrap_err();
        assert_eq!(e.option, "timeout");
    }
}
