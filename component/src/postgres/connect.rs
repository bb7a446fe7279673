//! Connection options, connecting with a timeout, and errors that name the
//! server but never the password.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};

use crate::{OptionError, Secret};

/// How long connecting may take when `connect_timeout` is not set.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection options every PostgreSQL component takes, as its options
/// struct declares them. Either `url` (a `postgresql://` URL or a
/// `key=value` connection string, which may carry the password), or the
/// separate fields; `password` may also complete a URL that has none.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    /// `postgresql://user:password@host:port/dbname` or `host=... user=...`.
    pub url: Option<Secret<String>>,
    /// Server host name, address or Unix-socket directory (default `localhost`).
    pub host: Option<String>,
    /// Server port (default 5432).
    pub port: Option<u16>,
    /// User name (default `postgres`).
    pub user: Option<String>,
    /// Password.
    pub password: Option<Secret<String>>,
    /// Database (default: the user name).
    pub dbname: Option<String>,
    /// Only `"disable"`: this build has no TLS for PostgreSQL.
    pub sslmode: Option<String>,
    /// How long connecting may take (default 10 s).
    pub connect_timeout: Option<Duration>,
}

impl ConnectionOptions {
    /// Checks the options and prepares a [`Connector`]; every error names
    /// the option at fault.
    pub fn connector(self) -> Result<Connector, OptionError> {
        let mut config = match &self.url {
            Some(url) => {
                for (name, given) in [
                    ("host", self.host.is_some()),
                    ("port", self.port.is_some()),
                    ("user", self.user.is_some()),
                    ("dbname", self.dbname.is_some()),
                ] {
                    if given {
                        return Err(OptionError::new(
                            name,
                            "give either `url` or the separate connection options, not both",
                        ));
                    }
                }
                let config = Config::from_str(url.expose()).map_err(|e| {
                    OptionError::new(
                        "url",
                        scrub(
                            &format!("not a valid PostgreSQL URL or connection string: {e}"),
                            url.expose(),
                        ),
                    )
                })?;
                if !matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
                    return Err(OptionError::new(
                        "url",
                        "asks for TLS (sslmode), which this build does not support for PostgreSQL; \
                         use sslmode=disable on a trusted network",
                    ));
                }
                if config.get_hosts().is_empty() {
                    return Err(OptionError::new("url", "names no host"));
                }
                config
            }
            None => {
                let mut config = Config::new();
                let host = self.host.as_deref().unwrap_or("localhost");
                if host.is_empty() {
                    return Err(OptionError::new("host", "must not be empty"));
                }
                config.host(host);
                config.port(self.port.unwrap_or(5432));
                config.user(self.user.as_deref().unwrap_or("postgres"));
                if let Some(dbname) = &self.dbname {
                    config.dbname(dbname);
                }
                config
            }
        };
        if config.get_user().is_none() {
            config.user("postgres");
        }
        if let Some(password) = &self.password {
            config.password(password.expose());
        }
        if let Some(mode) = self.sslmode.as_deref()
            && mode != "disable"
        {
            return Err(OptionError::new(
                "sslmode",
                format!(
                    "`{mode}` is not supported: this build has no TLS for PostgreSQL; \
                     use \"disable\" on a trusted network"
                ),
            ));
        }
        // `prefer` would try TLS first; without TLS support it means plain.
        config.ssl_mode(SslMode::Disable);
        let timeout = self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        if timeout.is_zero() {
            return Err(OptionError::new("connect_timeout", "must be more than 0s"));
        }
        config.connect_timeout(timeout);
        if config.get_application_name().is_none() {
            config.application_name("databay");
        }
        Ok(Connector {
            target: target(&config),
            config,
            timeout,
        })
    }
}

/// `host:port[,host:port]/dbname` as a config names the server.
fn target(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{}/{db}", hosts.join(","))
}

/// `text` with every occurrence of `secret` replaced by `***`.
fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "***")
    }
}

/// Connects to one PostgreSQL server; cheap to clone.
#[derive(Clone)]
pub struct Connector {
    config: Config,
    target: String,
    timeout: Duration,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.target)
            .field("user", &self.config.get_user())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// The server as errors name it: `host:port/dbname`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The database and who connects to it, `postgresql://user@host:port/dbname`
    /// (no password): two connectors with the same location can share a
    /// transaction's tables (see [`crate::postgres::checkpoints`]).
    pub fn location(&self) -> String {
        let user = self.config.get_user().unwrap_or("postgres");
        format!("postgresql://{user}@{}", self.target)
    }

    /// Opens a connection, within the connect timeout. The connection is
    /// driven by a task of the current tokio runtime; it ends when the
    /// [`Client`] is dropped, and a dropped connection shows as
    /// [`Client::is_closed`].
    pub async fn connect(&self) -> Result<Client, PgError> {
        let connecting = self.config.connect(NoTls);
        let (client, connection) = match tokio::time::timeout(self.timeout, connecting).await {
            Err(_) => {
                return Err(PgError::Timeout {
                    target: self.target.clone(),
                    after: self.timeout,
                });
            }
            Ok(Err(source)) => {
                return Err(PgError::Connect {
                    target: self.target.clone(),
                    user: self.config.get_user().unwrap_or("postgres").to_owned(),
                    source,
                });
            }
            Ok(Ok(pair)) => pair,
        };
        // The error, if any, also reaches the client's next call.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// A [`PgError::Query`] about this server.
    pub fn error(&self, what: impl Into<String>, source: tokio_postgres::Error) -> PgError {
        PgError::Query {
            target: self.target.clone(),
            what: what.into(),
            source,
        }
    }
}

/// What went wrong talking to PostgreSQL. Each names the server
/// (`host:port/dbname`), never the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The server could not be reached, or refused the login.
    #[error("cannot connect to PostgreSQL at {target} as `{user}`: {}", describe(.source))]
    Connect {
        /// `host:port/dbname`.
        target: String,
        /// The user name.
        user: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// Connecting took longer than the connect timeout.
    #[error(
        "cannot connect to PostgreSQL at {target}: no answer within {}",
        humantime::format_duration(*.after)
    )]
    Timeout {
        /// `host:port/dbname`.
        target: String,
        /// The connect timeout.
        after: Duration,
    },
    /// A statement failed.
    #[error("PostgreSQL at {target}: {what}: {}", describe(.source))]
    Query {
        /// `host:port/dbname`.
        target: String,
        /// What was being done (`inserting into "orders"`).
        what: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
}

impl PgError {
    /// Whether the connection is gone (and a new one is needed).
    pub fn is_closed(&self) -> bool {
        match self {
            PgError::Connect { .. } | PgError::Timeout { .. } => true,
            PgError::Query { source, .. } => source.is_closed(),
        }
    }
}

/// A driver error in one line: the server's message, SQLSTATE, detail and
/// hint for a database error; the cause chain otherwise (the driver's own
/// `Display` says only "db error").
pub fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
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
        let c = url("postgresql://app:s3cret@db:6000/shop")
            .connector()
            .unwrap();
        assert_eq!(c.target(), "db:6000/shop");
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = url("host=a,b port=1,2 user=u password=s3cret")
            .connector()
            .unwrap();
        assert_eq!(c.target(), "a:1,b:2/u");
    }

    #[test]
    fn separate_options_have_defaults() {
        let c = ConnectionOptions::default().connector().unwrap();
        assert_eq!(c.target(), "localhost:5432/postgres");
        let c = ConnectionOptions {
            host: Some("127.0.0.1".into()),
            port: Some(5433),
            dbname: Some("test".into()),
            ..ConnectionOptions::default()
        }
        .connector()
        .unwrap();
        assert_eq!(c.target(), "127.0.0.1:5433/test");
    }

    #[test]
    fn tls_and_conflicting_options_are_option_errors() {
        let e = url("postgresql://u:pw@h/db?sslmode=require")
            .connector()
            .unwrap_err();
        assert_eq!(e.option, "url");
        assert!(e.message.contains("TLS"), "{e}");
        let e = ConnectionOptions {
            sslmode: Some("require".into()),
            ..ConnectionOptions::default()
        }
        .connector()
        .unwrap_err();
        assert_eq!(e.option, "sslmode");
        let e = ConnectionOptions {
            url: Some(Secret::new("postgresql://h/db".into())),
            host: Some("other".into()),
            ..ConnectionOptions::default()
        }
        .connector()
        .unwrap_err();
        assert_eq!(e.option, "host");
    }

    #[test]
    fn a_bad_url_does_not_echo_the_password() {
        let e = url("postgresql://u:s3cret@h:notaport/db")
            .connector()
            .unwrap_err();
        assert_eq!(e.option, "url");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
