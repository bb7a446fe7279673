//! What the `nats` inlet and outlet share, kept once: the connection
//! options (`url`, `user`/`password`, `token`, `tls`),
//! connecting with a timeout, and errors that name the server, never a
//! password or token.
//!
//! TLS runs on rustls with ring, the daemon's one TLS stack: a `tls://`
//! URL or a `tls` table asks for it; `tls.ca_file` adds trusted roots,
//! `tls.cert_file`/`tls.key_file` a client certificate. Once connected,
//! the client reconnects by itself after the connection drops.
//!
//! ```
//! use databay_component::nats::ConnectionOptions;
//! use databay_component::Secret;
//!
//! let options = ConnectionOptions {
//!     url: Some(Secret::new("nats://app:hunter2@bus.internal:4222".into())),
//!     ..ConnectionOptions::default()
//! };
//! let connector = options.connector().unwrap();
//! assert_eq!(connector.target(), "bus.internal:4222");
//! assert!(!format!("{connector:?}").contains("hunter2"));
//! ```

pub mod testing;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, ServerAddr};

pub use crate::broker::TlsOptions;
use crate::{OptionError, Secret};

/// How long connecting, and waiting for one JetStream reply, may take
/// when `timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection options every NATS component takes.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    /// `nats://[user:password@]host:port`, several separated by commas
    /// (default `nats://127.0.0.1:4222`).
    pub url: Option<Secret<String>>,
    /// User name (with `password`).
    pub user: Option<String>,
    /// Password of `user`.
    pub password: Option<Secret<String>>,
    /// An authentication token.
    pub token: Option<Secret<String>>,
    /// TLS settings; present means TLS is required.
    pub tls: Option<TlsOptions>,
    /// The client name the server shows (default `databay`).
    pub name: Option<String>,
    /// How long connecting, and each JetStream reply, may take (default 10 s).
    pub timeout: Option<Duration>,
}

impl ConnectionOptions {
    /// Checks the options and prepares a [`Connector`]; every error names
    /// the option at fault. Relative paths are taken as given (the
    /// factory resolves them against the config's directory).
    pub fn connector(self) -> Result<Connector, OptionError> {
        let url = self
            .url
            .clone()
            .unwrap_or_else(|| Secret::new("nats://127.0.0.1:4222".into()));
        let mut servers = Vec::new();
        let mut secrets = Vec::new();
        for one in url.expose().split(',').map(str::trim) {
            let addr = ServerAddr::from_str(one).map_err(|e| {
                OptionError::new(
                    "url",
                    scrub(
                        &format!("`{one}` is not a NATS URL (`nats://host:4222`): {e}"),
                        &[url.expose()],
                    ),
                )
            })?;
            if addr.is_websocket() {
                return Err(OptionError::new(
                    "url",
                    "websocket URLs are not supported; use `nats://host:4222`",
                ));
            }
            if let Some(p) = addr.password() {
                secrets.push(p.to_owned());
            }
            if let Some(u) = addr.username()
                && addr.password().is_none()
            {
                // `nats://TOKEN@host` carries a token as the user.
                secrets.push(u.to_owned());
            }
            servers.push(addr);
        }
        if servers.is_empty() {
            return Err(OptionError::new("url", "names no server"));
        }
        let target = servers
            .iter()
            .map(|a| format!("{}:{}", a.host(), a.port()))
            .collect::<Vec<_>>()
            .join(",");
        let mut tls_required = servers.iter().any(ServerAddr::tls_required);
        if self.token.is_some() && (self.user.is_some() || self.password.is_some()) {
            return Err(OptionError::new(
                "token",
                "give one way to authenticate: `user` and `password`, or `token`",
            ));
        }
        if self.user.is_some() != self.password.is_some() {
            return Err(OptionError::new(
                if self.user.is_some() {
                    "password"
                } else {
                    "user"
                },
                "`user` and `password` go together",
            ));
        }
        if let Some(p) = &self.password {
            secrets.push(p.expose().clone());
        }
        if let Some(t) = &self.token {
            if t.expose().is_empty() {
                return Err(OptionError::new("token", "must not be empty"));
            }
            secrets.push(t.expose().clone());
        }
        if let Some(tls) = &self.tls {
            tls_required = true;
            tls.check()?;
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(OptionError::new("timeout", "must be more than 0s"));
        }
        secrets.retain(|s| !s.is_empty());
        Ok(Connector {
            servers,
            target,
            options: self,
            tls_required,
            timeout,
            secrets,
        })
    }
}

/// `text` with every secret replaced by `***`.
fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        if !secret.is_empty() {
            text = text.replace(secret, "***");
        }
    }
    text
}

/// Connects to a NATS server (or cluster); cheap to clone.
#[derive(Clone)]
pub struct Connector {
    servers: Vec<ServerAddr>,
    target: String,
    options: ConnectionOptions,
    tls_required: bool,
    timeout: Duration,
    secrets: Vec<String>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.target)
            .field("user", &self.options.user)
            .field("tls", &self.tls_required)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// The server as errors name it: `host:port[,host:port]`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The connect and reply timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `text` without any password or token this connector knows.
    pub fn scrub(&self, text: &str) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        scrub(text, &secrets)
    }

    /// Connects. The client reconnects by itself afterwards.
    pub async fn connect(&self) -> Result<Client, NatsError> {
        let o = &self.options;
        let mut options = ConnectOptions::new()
            .name(o.name.clone().unwrap_or_else(|| "databay".into()))
            .connection_timeout(self.timeout)
            .request_timeout(Some(self.timeout))
            .require_tls(self.tls_required);
        if let (Some(user), Some(password)) = (&o.user, &o.password) {
            options = options.user_and_password(user.clone(), password.expose().clone());
        }
        if let Some(token) = &o.token {
            options = options.token(token.expose().clone());
        }
        if let Some(tls) = &o.tls {
            if let Some(ca) = &tls.ca_file {
                options = options.add_root_certificates(ca.clone());
            }
            if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
                options = options.add_client_certificate(cert.clone(), key.clone());
            }
        }
        let connecting = options.connect(self.servers.clone());
        match tokio::time::timeout(self.timeout + self.timeout, connecting).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(self.connect_error(describe(&e))),
            Err(_) => Err(self.connect_error(format!(
                "no answer within {}",
                humantime::format_duration(self.timeout)
            ))),
        }
    }

    fn connect_error(&self, message: String) -> NatsError {
        NatsError::Connect {
            target: self.target.clone(),
            message: self.scrub(&message),
        }
    }

    /// A [`NatsError::Operation`] about this server.
    pub fn error(&self, what: impl Into<String>, source: &dyn std::error::Error) -> NatsError {
        NatsError::Operation {
            target: self.target.clone(),
            what: what.into(),
            message: self.scrub(&describe(source)),
        }
    }
}

/// What went wrong talking to NATS. Each names the server, never a
/// password or token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// The server could not be reached, or refused the login.
    #[error("cannot connect to NATS at {target}: {message}")]
    Connect {
        /// `host:port`.
        target: String,
        /// The client's error.
        message: String,
    },
    /// Publishing, subscribing or a JetStream request failed.
    #[error("NATS at {target}: {what}: {message}")]
    Operation {
        /// `host:port`.
        target: String,
        /// What was being done (`publishing to orders.eu`).
        what: String,
        /// The client's or the server's error.
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
    fn urls_name_their_servers_without_credentials() {
        let c = url("nats://app:s3cret@bus:4223, nats://bus2:4224")
            .connector()
            .unwrap();
        assert_eq!(c.target(), "bus:4223,bus2:4224");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.scrub("login s3cret failed"), "login *** failed");
        let c = ConnectionOptions::default().connector().unwrap();
        assert_eq!(c.target(), "127.0.0.1:4222");
    }

    #[test]
    fn conflicting_and_missing_values_are_option_errors() {
        let e = ConnectionOptions {
            user: Some("u".into()),
            ..ConnectionOptions::default()
        }
        .connector()
        .unwrap_err();
        assert_eq!(e.option, "password");
        let e = ConnectionOptions {
            token: Some(Secret::new("t0ken".into())),
            user: Some("u".into()),
            password: Some(Secret::new("p".into())),
            ..ConnectionOptions::default()
        }
        .connector()
        .unwrap_err();
        assert_eq!(e.option, "token");
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
        let e = url("ws://h:80").connector().unwrap_err();
        assert_eq!(e.option, "url");
    }
}
