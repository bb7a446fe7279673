//! Connection options, connecting with a timeout, and errors that name the
//! server but never the password.

use std::fmt;
use std::time::Duration;

use mysql_async::{Conn, Opts, OptsBuilder};

use crate::{OptionError, Secret};

/// How long connecting may take when `connect_timeout` is not set.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// MySQL's and MariaDB's codes for a refused login (bad password, no such
/// user, no access to the database).
const LOGIN_REFUSED: [u16; 3] = [1044, 1045, 1698];

/// The connection options every MySQL/MariaDB component takes, as its
/// options struct declares them: either `url` (`mysql://` or
/// `mariadb://`, which may carry the password) or the separate fields;
/// `password` may also complete a URL that has none.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    /// `mysql://user:password@host:port/database?options`.
    pub url: Option<Secret<String>>,
    /// Server host name or address (default `localhost`).
    pub host: Option<String>,
    /// Server port (default 3306).
    pub port: Option<u16>,
    /// User name (default `root`).
    pub user: Option<String>,
    /// Password.
    pub password: Option<Secret<String>>,
    /// The database (default: none; tables are then named `db.table`).
    pub database: Option<String>,
    /// How long connecting may take (default 10 s).
    pub connect_timeout: Option<Duration>,
}

impl ConnectionOptions {
    /// Checks the options and prepares a [`Connector`]; every error names
    /// the option at fault.
    pub fn connector(self) -> Result<Connector, OptionError> {
        let mut password = self.password.map(Secret::into_inner);
        let builder = match &self.url {
            Some(url) => {
                for (name, given) in [
                    ("host", self.host.is_some()),
                    ("port", self.port.is_some()),
                    ("user", self.user.is_some()),
                    ("database", self.database.is_some()),
                ] {
                    if given {
                        return Err(OptionError::new(
                            name,
                            "give either `url` or the separate connection options, not both",
                        ));
                    }
                }
                let text = url.expose();
                let text = match text.strip_prefix("mariadb://") {
                    Some(rest) => format!("mysql://{rest}"),
                    None => text.clone(),
                };
                if !text.starts_with("mysql://") {
                    return Err(OptionError::new(
                        "url",
                        "must start with mysql:// or mariadb:// (mysql://user:password@host:3306/database)",
                    ));
                }
                let opts = Opts::from_url(&text).map_err(|e| {
                    OptionError::new(
                        "url",
                        scrub(&format!("not a valid MySQL URL: {e}"), Some(&text)),
                    )
                })?;
                if let Some(p) = opts.pass() {
                    password = Some(p.to_owned());
                }
                OptsBuilder::from_opts(opts)
            }
            None => {
                if let Some(host) = &self.host
                    && host.is_empty()
                {
                    return Err(OptionError::new("host", "must not be empty"));
                }
                OptsBuilder::default()
                    .ip_or_hostname(self.host.unwrap_or_else(|| "localhost".into()))
                    .tcp_port(self.port.unwrap_or(3306))
                    .user(Some(self.user.unwrap_or_else(|| "root".into())))
                    .db_name(self.database)
            }
        };
        if let Some(timeout) = self.connect_timeout
            && timeout.is_zero()
        {
            return Err(OptionError::new("connect_timeout", "must be more than 0s"));
        }
        // Always TCP to the host named, even on loopback, so that what is
        // configured is what is used.
        let opts: Opts = builder.pass(password.clone()).prefer_socket(false).into();
        let target = format!(
            "{}:{}/{}",
            opts.ip_or_hostname(),
            opts.tcp_port(),
            opts.db_name().unwrap_or("")
        );
        Ok(Connector {
            user: opts.user().unwrap_or("").to_owned(),
            opts,
            target,
            password,
            timeout: self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        })
    }
}

/// A checked connection setup: connects, and turns driver errors into
/// [`MysqlError`]s naming `host:port/database` (never the password).
#[derive(Clone)]
pub struct Connector {
    opts: Opts,
    target: String,
    user: String,
    password: Option<String>,
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
    /// `host:port/database`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The database the options name, if any.
    pub fn database(&self) -> Option<&str> {
        self.opts.db_name()
    }

    /// Opens a connection within the connect timeout.
    pub async fn connect(&self) -> Result<Conn, MysqlError> {
        // TLS (`require_ssl=true` in the URL) goes through rustls with
        // ring, the process's one provider; another component may have
        // installed it first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        match tokio::time::timeout(self.timeout, Conn::new(self.opts.clone())).await {
            Err(_) => Err(MysqlError::Timeout {
                target: self.target.clone(),
                timeout: self.timeout,
            }),
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(mysql_async::Error::Server(e))) if LOGIN_REFUSED.contains(&e.code) => {
                Err(MysqlError::Login {
                    target: self.target.clone(),
                    user: self.user.clone(),
                    detail: self.scrub(&e.message),
                })
            }
            Ok(Err(e @ mysql_async::Error::Server(_))) => Err(self.error("connecting", e)),
            Ok(Err(e)) => Err(MysqlError::Connect {
                target: self.target.clone(),
                detail: self.scrub(&e.to_string()),
            }),
        }
    }

    /// The error of `what` (`"inserting into `orders`"`), naming the server.
    pub fn error(&self, what: impl Into<String>, e: mysql_async::Error) -> MysqlError {
        let (code, detail) = match &e {
            mysql_async::Error::Server(s) => {
                (Some(s.code), format!("{} (code {})", s.message, s.code))
            }
            other => (None, other.to_string()),
        };
        MysqlError::Operation {
            target: self.target.clone(),
            what: what.into(),
            code,
            detail: self.scrub(&detail),
        }
    }

    /// `text` without the password.
    pub fn scrub(&self, text: &str) -> String {
        scrub(text, self.password.as_deref())
    }
}

fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "***"),
        _ => text.to_owned(),
    }
}

/// Why connecting to or working with MySQL/MariaDB failed; each names the
/// server as `host:port/database`, never the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MysqlError {
    /// No connection within `connect_timeout`.
    #[error(
        "cannot reach MySQL at {target}: no connection within {timeout:?} (is it running? \
         `connect_timeout` sets the wait)"
    )]
    Timeout {
        /// `host:port/database`.
        target: String,
        /// The connect timeout.
        timeout: Duration,
    },
    /// The connection failed (refused, reset, TLS).
    #[error("cannot reach MySQL at {target}: {detail} (is it running?)")]
    Connect {
        /// `host:port/database`.
        target: String,
        /// What the driver said.
        detail: String,
    },
    /// The server refused the login.
    #[error("MySQL at {target} refused the login of user `{user}`: {detail}")]
    Login {
        /// `host:port/database`.
        target: String,
        /// The user.
        user: String,
        /// The server's message.
        detail: String,
    },
    /// A statement failed.
    #[error("MySQL at {target}: {what}: {detail}")]
    Operation {
        /// `host:port/database`.
        target: String,
        /// What was being done.
        what: String,
        /// The server's error code, when the server refused it.
        code: Option<u16>,
        /// What the server or driver said.
        detail: String,
    },
}

impl MysqlError {
    /// The server's error code, when the server refused a statement.
    pub fn code(&self) -> Option<u16> {
        match self {
            MysqlError::Operation { code, .. } => *code,
            _ => None,
        }
    }
}
