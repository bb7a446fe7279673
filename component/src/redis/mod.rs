//! What the `redis` inlet and outlet share, kept once: the connection
//! options (`url`, or `host`/`port`/`username`/`password`/`db`),
//! connecting with a timeout, and errors that name the server, never the
//! password.
//!
//! TLS runs on rustls with ring, the daemon's one TLS stack: a
//! `rediss://` URL or a `tls` table asks for it. The server is checked
//! against the system's roots, or against `tls.ca_file` alone when given;
//! `tls.cert_file`/`tls.key_file` add a client certificate.
//!
//! ```
//! use databay_component::redis::ConnectionOptions;
//! use databay_component::Secret;
//!
//! let options = ConnectionOptions {
//!     url: Some(Secret::new("redis://app:hunter2@cache.internal:6380/2".into())),
//!     ..ConnectionOptions::default()
//! };
//! let connector = options.connector().unwrap();
//! assert_eq!(connector.target(), "cache.internal:6380/2");
//! assert!(!format!("{connector:?}").contains("hunter2"));
//! ```

pub mod testing;

use std::fmt;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, ConnectionAddr, IntoConnectionInfo,
    TlsCertificates,
};

pub use crate::broker::TlsOptions;
use crate::{OptionError, Secret};

/// How long connecting, and waiting for one reply, may take when
/// `timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection options every Redis component takes. Either `url`
/// (`redis://[user:password@]host:port[/db]`) or the separate fields;
/// `password` may also complete a URL that has none.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: Option<Secret<String>>,
    /// Server host (default `127.0.0.1`).
    pub host: Option<String>,
    /// Server port (default 6379).
    pub port: Option<u16>,
    /// ACL user name (Redis 6+).
    pub username: Option<String>,
    /// Password (`AUTH`).
    pub password: Option<Secret<String>>,
    /// Database number (default 0).
    pub db: Option<i64>,
    /// TLS settings; present means TLS is required.
    pub tls: Option<TlsOptions>,
    /// How long connecting, and each reply, may take (default 10 s).
    pub timeout: Option<Duration>,
}

impl ConnectionOptions {
    /// Checks the options and prepares a [`Connector`]; every error names
    /// the option at fault.
    pub fn connector(self) -> Result<Connector, OptionError> {
        let info = match &self.url {
            Some(url) => {
                for (name, given) in [
                    ("host", self.host.is_some()),
                    ("port", self.port.is_some()),
                    ("username", self.username.is_some()),
                    ("db", self.db.is_some()),
                ] {
                    if given {
                        return Err(OptionError::new(
                            name,
                            "give either `url` or the separate connection options, not both",
                        ));
                    }
                }
                url.expose().as_str().into_connection_info().map_err(|e| {
                    OptionError::new(
                        "url",
                        scrub(
                            &format!("not a valid Redis URL (`redis://host:port/db`): {e}"),
                            url.expose(),
                        ),
                    )
                })?
            }
            None => {
                let host = self.host.clone().unwrap_or_else(|| "127.0.0.1".into());
                if host.is_empty() {
                    return Err(OptionError::new("host", "must not be empty"));
                }
                let info = ConnectionAddr::Tcp(host, self.port.unwrap_or(6379))
                    .into_connection_info()
                    .map_err(OptionError::of("host"))?;
                let mut redis = info.redis_settings().clone();
                if let Some(db) = self.db {
                    if db < 0 {
                        return Err(OptionError::new("db", "must be 0 or more"));
                    }
                    redis = redis.set_db(db);
                }
                if let Some(user) = &self.username {
                    redis = redis.set_username(user);
                }
                info.set_redis_settings(redis)
            }
        };
        let info = match &self.password {
            Some(password) => {
                let redis = info
                    .redis_settings()
                    .clone()
                    .set_password(password.expose());
                info.set_redis_settings(redis)
            }
            None => info,
        };
        // A `tls` table turns a plain address into a TLS one.
        let info = match (info.addr().clone(), &self.tls) {
            (ConnectionAddr::Tcp(host, port), Some(_)) => info.set_addr(ConnectionAddr::TcpTls {
                host,
                port,
                insecure: false,
                tls_params: None,
            }),
            _ => info,
        };
        let (target, tls) = match info.addr() {
            ConnectionAddr::Tcp(host, port) => (format!("{host}:{port}"), false),
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                ..
            } => {
                if *insecure {
                    return Err(OptionError::new(
                        "url",
                        "asks for TLS without checking the server's certificate (`#insecure`); \
                         give the server's CA in `tls.ca_file` instead",
                    ));
                }
                (format!("{host}:{port}"), true)
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => (path.display().to_string(), false),
            _ => {
                return Err(OptionError::new(
                    "url",
                    "is not a TCP or Unix-socket address",
                ));
            }
        };
        let target = format!("{target}/{}", info.redis_settings().db());
        let user = info.redis_settings().username().map(str::to_owned);
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(OptionError::new("timeout", "must be more than 0s"));
        }
        let client = match (&self.tls, tls) {
            (Some(options), true) => {
                options.check()?;
                let read = |name: &str, path: &std::path::Path| {
                    std::fs::read(path).map_err(|e| {
                        OptionError::new(name, format!("cannot read `{}`: {e}", path.display()))
                    })
                };
                let root_cert = match &options.ca_file {
                    Some(p) => Some(read("tls.ca_file", p)?),
                    None => None,
                };
                let client_tls = match (&options.cert_file, &options.key_file) {
                    (Some(cert), Some(key)) => Some(ClientTlsConfig {
                        client_cert: read("tls.cert_file", cert)?,
                        client_key: read("tls.key_file", key)?,
                    }),
                    _ => None,
                };
                Client::build_with_tls(
                    info,
                    TlsCertificates {
                        client_tls,
                        root_cert,
                    },
                )
                .map_err(|e| OptionError::new("tls", describe(&e)))?
            }
            _ => Client::open(info).map_err(|e| OptionError::new("url", e.to_string()))?,
        };
        // rustls picks its provider from the crate features: ring alone.
        if tls {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        Ok(Connector {
            client,
            target,
            user,
            tls,
            timeout,
        })
    }
}

/// `text` with every occurrence of `secret` replaced by `***`.
fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "***")
    }
}

/// Connects to one Redis server; cheap to clone.
#[derive(Clone)]
pub struct Connector {
    client: Client,
    target: String,
    user: Option<String>,
    tls: bool,
    timeout: Duration,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.target)
            .field("user", &self.user)
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// The server as errors name it: `host:port/db`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The connect and reply timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Opens a multiplexed connection (cheap to clone, driven by a task of
    /// the current runtime). Replies may take up to the timeout plus
    /// `blocking`, the longest a blocking command on it waits.
    pub async fn connect(&self, blocking: Duration) -> Result<MultiplexedConnection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout + blocking));
        let connecting = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        // The driver's own timeout covers the TCP connect; this one the
        // whole handshake (AUTH, SELECT).
        match tokio::time::timeout(self.timeout + self.timeout, connecting).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(source)) => Err(RedisError::Connect {
                target: self.target.clone(),
                message: describe(&source),
            }),
            Err(_) => Err(RedisError::Connect {
                target: self.target.clone(),
                message: format!(
                    "no answer within {}",
                    humantime::format_duration(self.timeout)
                ),
            }),
        }
    }

    /// A [`RedisError::Command`] about this server.
    pub fn error(&self, what: impl Into<String>, source: &redis::RedisError) -> RedisError {
        RedisError::Command {
            target: self.target.clone(),
            what: what.into(),
            message: describe(source),
            closed: source.is_connection_dropped()
                || source.is_io_error()
                || source.is_timeout()
                || source.is_unrecoverable_error(),
        }
    }
}

/// What went wrong talking to Redis. Each names the server
/// (`host:port/db`), never the password.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The server could not be reached, or refused the login.
    #[error("cannot connect to Redis at {target}: {message}")]
    Connect {
        /// `host:port/db`.
        target: String,
        /// The driver's error.
        message: String,
    },
    /// A command failed.
    #[error("Redis at {target}: {what}: {message}")]
    Command {
        /// `host:port/db`.
        target: String,
        /// What was being done (`XADD orders`).
        what: String,
        /// The server's or the driver's error.
        message: String,
        /// Whether the connection is unusable now.
        closed: bool,
    },
}

impl RedisError {
    /// Whether the connection is gone (and a new one is needed).
    pub fn is_closed(&self) -> bool {
        match self {
            RedisError::Connect { .. } => true,
            RedisError::Command { closed, .. } => *closed,
        }
    }
}

/// A driver error in one line, with its cause chain.
pub fn describe(error: &redis::RedisError) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
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
    fn a_url_names_its_server_without_the_password() {
        let c = url("redis://app:s3cret@cache:6380/2").connector().unwrap();
        assert_eq!(c.target(), "cache:6380/2");
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = ConnectionOptions::default().connector().unwrap();
        assert_eq!(c.target(), "127.0.0.1:6379/0");
    }

    #[test]
    fn tls_conflicts_and_bad_values_are_option_errors() {
        let c = url("rediss://u:pw@h:6380").connector().unwrap();
        assert_eq!(c.target(), "h:6380/0");
        assert!(format!("{c:?}").contains("tls: true"), "{c:?}");
        let e = url("rediss://u:pw@h:6379/#insecure")
            .connector()
            .unwrap_err();
        assert_eq!(e.option, "url");
        assert!(e.message.contains("tls.ca_file"), "{e}");
        let e = ConnectionOptions {
            tls: Some(TlsOptions {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..TlsOptions::default()
            }),
            ..ConnectionOptions::default()
        }
        .connector()
        .unwrap_err();
        assert_eq!(e.option, "tls.ca_file");
        let e = ConnectionOptions {
            host: Some("h".into()),
            ..url("redis://h")
        }
        .connector()
        .unwrap_err();
        assert_eq!(e.option, "host");
        let e = ConnectionOptions {
            db: Some(-1),
            ..ConnectionOptions::default()
        }
        .connector()
        .unwrap_err();
        assert_eq!(e.option, "db");
        let e = url("redis://u:s3cret@h:notaport/0")
            .connector()
            .unwrap_err();
        assert_eq!(e.option, "url");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
