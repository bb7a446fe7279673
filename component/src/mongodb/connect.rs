//! Connection options, the client, and errors that name the server but
//! never the credentials.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use mongodb::bson::{Document, doc};
use mongodb::error::{Error, ErrorKind};
use mongodb::options::{ClientOptions, ConnectionString, HostInfo, Tls};
use mongodb::{Client, Collection, Database};

use crate::{OptionError, Secret};

/// How long opening one connection may take when `connect_timeout` is not set.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an operation waits for a usable server when
/// `server_selection_timeout` is not set (the driver's own default is 30 s,
/// long for a transfer that runs every few seconds).
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// `tls = { ca_file = "...", cert_key_file = "..." }`: TLS (rustls with
/// ring) with these files; `tls=true` in the URI turns it on too.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file of the certificate authorities to trust (default: the
    /// bundled web roots); relative to the config file's directory.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM file holding the client's certificate and private key, for
    /// servers that ask for one (X.509).
    #[serde(default)]
    pub cert_key_file: Option<PathBuf>,
    /// Accept any server certificate. Only for tests.
    #[serde(default)]
    pub allow_invalid_certificates: bool,
}

/// The connection options every MongoDB component takes, as its options
/// struct declares them.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    /// `mongodb://user:password@host:port/db?options` (may carry the password).
    pub uri: Secret<String>,
    /// The database; default: the one the URI names.
    pub database: Option<String>,
    /// How long opening one connection may take (default 10 s).
    pub connect_timeout: Option<Duration>,
    /// How long an operation waits for a usable server (default 10 s).
    pub server_selection_timeout: Option<Duration>,
    /// TLS settings; `None` leaves TLS as the URI says.
    pub tls: Option<TlsSettings>,
}

impl TlsSettings {
    /// The settings with relative paths resolved against the config
    /// file's directory; errors name `tls.ca_file` or `tls.cert_key_file`.
    pub fn resolve(mut self, cx: &crate::BuildContext) -> Result<TlsSettings, OptionError> {
        if let Some(path) = &self.ca_file {
            self.ca_file = Some(cx.path("tls.ca_file", path)?);
        }
        if let Some(path) = &self.cert_key_file {
            self.cert_key_file = Some(cx.path("tls.cert_key_file", path)?);
        }
        Ok(self)
    }
}

impl ConnectionOptions {
    /// Checks the options and prepares a [`Connector`]; every error names
    /// the option at fault and none shows the password.
    pub fn connector(self) -> Result<Connector, OptionError> {
        let uri = self.uri.expose();
        let password = password_of(uri);
        let scrub = |text: String| scrub(&text, password.as_deref());
        if uri.starts_with("mongodb+srv://") && !cfg!(feature = "mongodb-srv") {
            return Err(OptionError::new(
                "uri",
                "`mongodb+srv://` needs DNS SRV lookups, which this build leaves out \
                 (cargo feature `mongodb-srv`); list the hosts instead: \
                 mongodb://host1:27017,host2:27017/?replicaSet=NAME&tls=true",
            ));
        }
        let parsed = ConnectionString::parse(uri).map_err(|e| {
            OptionError::new(
                "uri",
                scrub(format!("not a valid MongoDB URI: {}", describe(&e))),
            )
        })?;
        let hosts = match &parsed.host_info {
            HostInfo::HostIdentifiers(hosts) => hosts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            HostInfo::DnsRecord(name) => format!("srv:{name}"),
            _ => String::from("?"),
        };
        let database = match (self.database, parsed.default_database.clone()) {
            (Some(db), _) => db,
            (None, Some(db)) => db,
            (None, None) => {
                return Err(OptionError::new(
                    "database",
                    "name the database: `database = \"NAME\"`, or in the URI (mongodb://host/NAME)",
                ));
            }
        };
        check_database_name(&database)?;
        let connect_timeout = self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        if connect_timeout.is_zero() {
            return Err(OptionError::new("connect_timeout", "must be more than 0s"));
        }
        let server_selection_timeout = self
            .server_selection_timeout
            .unwrap_or(DEFAULT_SERVER_SELECTION_TIMEOUT);
        if server_selection_timeout.is_zero() {
            return Err(OptionError::new(
                "server_selection_timeout",
                "must be more than 0s",
            ));
        }
        let user = parsed.credential.as_ref().and_then(|c| c.username.clone());
        Ok(Connector {
            uri: self.uri,
            password,
            target: format!("{hosts}/{database}"),
            user,
            database,
            connect_timeout,
            server_selection_timeout,
            tls: self.tls,
        })
    }
}

/// The rules MongoDB gives database names.
fn check_database_name(name: &str) -> Result<(), OptionError> {
    let bad = name.chars().find(|c| "/\\. \"$\0".contains(*c));
    if name.is_empty() {
        return Err(OptionError::new("database", "must not be empty"));
    }
    if let Some(c) = bad {
        return Err(OptionError::new(
            "database",
            format!("`{name}` holds {c:?}, which MongoDB refuses in a database name"),
        ));
    }
    if name.len() >= 64 {
        return Err(OptionError::new(
            "database",
            format!("`{name}` is longer than MongoDB's 63 bytes"),
        ));
    }
    Ok(())
}

/// Checks a collection name as MongoDB would, naming `option`.
pub fn check_collection_name(option: &str, name: &str) -> Result<(), OptionError> {
    if name.is_empty() {
        return Err(OptionError::new(option, "must not be empty"));
    }
    if name.contains('$') || name.contains('\0') {
        return Err(OptionError::new(
            option,
            format!("`{name}` holds `$` or a NUL, which MongoDB refuses in a collection name"),
        ));
    }
    if name.starts_with("system.") {
        return Err(OptionError::new(
            option,
            format!("`{name}`: `system.` collections belong to the server"),
        ));
    }
    Ok(())
}

/// The password in `mongodb://user:password@...`, percent-decoded as the
/// driver reads it, so that errors can be scrubbed of both spellings.
fn password_of(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let userinfo = rest.split(['/', '?']).next()?.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_owned())
}

/// `text` with the password (as written and percent-decoded) replaced by `***`.
fn scrub(text: &str, password: Option<&str>) -> String {
    let Some(password) = password else {
        return text.to_owned();
    };
    let mut out = text.replace(password, "***");
    let decoded = percent_decode(password);
    if !decoded.is_empty() && decoded != password {
        out = out.replace(&decoded, "***");
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Opens clients of one MongoDB deployment; cheap to clone.
#[derive(Clone)]
pub struct Connector {
    uri: Secret<String>,
    password: Option<String>,
    target: String,
    user: Option<String>,
    database: String,
    connect_timeout: Duration,
    server_selection_timeout: Duration,
    tls: Option<TlsSettings>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.target)
            .field("user", &self.user)
            .field("connect_timeout", &self.connect_timeout)
            .field("server_selection_timeout", &self.server_selection_timeout)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// The deployment as errors name it: `host:port[,host:port]/database`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The database.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// How long an operation waits for a usable server.
    pub fn server_selection_timeout(&self) -> Duration {
        self.server_selection_timeout
    }

    /// A client of the deployment. The driver connects lazily and keeps a
    /// pool that reconnects by itself, so one client serves a component
    /// for its whole life; [`Connector::connect`] also checks that the
    /// server answers and accepts the login.
    pub async fn client(&self) -> Result<Client, MongoError> {
        let mut options = ClientOptions::parse(self.uri.expose())
            .await
            .map_err(|e| self.error("reading the URI", e))?;
        options.connect_timeout = Some(self.connect_timeout);
        options.server_selection_timeout = Some(self.server_selection_timeout);
        if options.app_name.is_none() {
            options.app_name = Some("databay".into());
        }
        if let Some(tls) = &self.tls {
            let mut settings = match options.tls.take() {
                Some(Tls::Enabled(settings)) => settings,
                _ => mongodb::options::TlsOptions::default(),
            };
            if let Some(ca) = &tls.ca_file {
                settings.ca_file_path = Some(ca.clone());
            }
            if let Some(cert) = &tls.cert_key_file {
                settings.cert_key_file_path = Some(cert.clone());
            }
            if tls.allow_invalid_certificates {
                settings.allow_invalid_certificates = Some(true);
            }
            options.tls = Some(Tls::Enabled(settings));
        }
        Client::with_options(options).map_err(|e| self.error("setting up the client", e))
    }

    /// A client whose server answered a `ping` (and accepted the login),
    /// and the database.
    pub async fn connect(&self) -> Result<(Client, Database), MongoError> {
        let client = self.client().await?;
        let database = client.database(&self.database);
        database
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| self.error("ping", e))?;
        Ok((client, database))
    }

    /// `collection` of the database, as documents.
    pub fn collection(&self, client: &Client, collection: &str) -> Collection<Document> {
        client.database(&self.database).collection(collection)
    }

    /// The [`MongoError`] for `error` while doing `what`: unreachable,
    /// login refused, or an operation's failure; scrubbed of the password.
    pub fn error(&self, what: impl Into<String>, error: Error) -> MongoError {
        let detail = scrub(&describe(&error), self.password.as_deref());
        match error.kind.as_ref() {
            ErrorKind::ServerSelection { .. } => MongoError::Unreachable {
                target: self.target.clone(),
                after: self.server_selection_timeout,
                detail,
            },
            ErrorKind::Authentication { .. } => MongoError::Auth {
                target: self.target.clone(),
                user: self.user.clone().unwrap_or_default(),
                detail,
            },
            _ => MongoError::Operation {
                target: self.target.clone(),
                what: what.into(),
                detail,
            },
        }
    }

    /// `text` scrubbed of this connector's password.
    pub fn scrub(&self, text: &str) -> String {
        scrub(text, self.password.as_deref())
    }
}

/// What went wrong talking to MongoDB. Each names the deployment
/// (`host:port/database`), never the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MongoError {
    /// No server answered (down, wrong address, TLS mismatch) within the
    /// server selection timeout.
    #[error(
        "cannot reach MongoDB at {target}: no usable server within {} (is it running? \
         `server_selection_timeout` sets the wait): {detail}",
        humantime::format_duration(*.after)
    )]
    Unreachable {
        /// `host:port/database`.
        target: String,
        /// The server selection timeout.
        after: Duration,
        /// What the driver saw.
        detail: String,
    },
    /// The server refused the login.
    #[error("MongoDB at {target} refused the login of user `{user}`: {detail}")]
    Auth {
        /// `host:port/database`.
        target: String,
        /// The user name from the URI.
        user: String,
        /// The server's message.
        detail: String,
    },
    /// An operation failed.
    #[error("MongoDB at {target}: {what}: {detail}")]
    Operation {
        /// `host:port/database`.
        target: String,
        /// What was being done (`inserting into orders`).
        what: String,
        /// The server's or driver's message.
        detail: String,
    },
}

/// A driver error in one line: the server's message and code for a
/// command error, the driver's description otherwise.
pub fn describe(error: &Error) -> String {
    match error.kind.as_ref() {
        ErrorKind::Command(c) => format!("{} (code {} {})", c.message, c.code, c.code_name),
        ErrorKind::Authentication { message, .. } => message.clone(),
        ErrorKind::ServerSelection { message, .. } => message.clone(),
        ErrorKind::InvalidArgument { message, .. } => message.clone(),
        ErrorKind::Io(e) => format!("I/O error: {e}"),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => {
            format!("{} (code {})", w.message, w.code)
        }
        ErrorKind::Write(mongodb::error::WriteFailure::WriteConcernError(w)) => {
            format!(
                "write concern: {} (code {} {})",
                w.message, w.code, w.code_name
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(u: &str) -> ConnectionOptions {
        ConnectionOptions {
            uri: Secret::new(u.to_owned()),
            ..ConnectionOptions::default()
        }
    }

    #[test]
    fn a_uri_names_its_servers_without_the_password() {
        let c = uri("mongodb://app:s3cret@db1:27018,db2/shop?replicaSet=rs0")
            .connector()
            .unwrap();
        assert_eq!(c.target(), "db1:27018,db2:27017/shop");
        assert_eq!(c.database(), "shop");
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = ConnectionOptions {
            database: Some("other".into()),
            ..uri("mongodb://127.0.0.1/shop")
        }
        .connector()
        .unwrap();
        assert_eq!(c.target(), "127.0.0.1:27017/other");
    }

    #[test]
    fn bad_options_are_option_errors() {
        let e = uri("mongodb://h").connector().unwrap_err();
        assert_eq!(e.option, "database");
        let e = uri("postgres://u:s3cret@h/db").connector().unwrap_err();
        assert_eq!(e.option, "uri");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = uri("mongodb://u:s3cret@h:notaport/db")
            .connector()
            .unwrap_err();
        assert_eq!(e.option, "uri");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = uri("mongodb://h/my.db").connector().unwrap_err();
        assert_eq!(e.option, "database");
        let e = ConnectionOptions {
            connect_timeout: Some(Duration::ZERO),
            ..uri("mongodb://h/db")
        }
        .connector()
        .unwrap_err();
        assert_eq!(e.option, "connect_timeout");
        if !cfg!(feature = "mongodb-srv") {
            let e = uri("mongodb+srv://u:pw@cluster0.example.net/db")
                .connector()
                .unwrap_err();
            assert_eq!(e.option, "uri");
            assert!(e.message.contains("mongodb-srv"), "{e}");
        }
        assert_eq!(
            check_collection_name("collection", "a$b")
                .unwrap_err()
                .option,
            "collection"
        );
    }

    #[test]
    fn scrubbing_covers_both_spellings_of_the_password() {
        assert_eq!(
            password_of("mongodb://u:p%40ss@h/db").as_deref(),
            Some("p%40ss")
        );
        assert_eq!(password_of("mongodb://u@h/db"), None);
        assert_eq!(password_of("mongodb://h/db?x=a:b@c"), None);
        assert_eq!(scrub("x p@ss y p%40ss", Some("p%40ss")), "x *** y ***");
    }
}
