//! The `mongodb` outlet's TOML face.

use std::time::Duration;

use databay_component::mongodb::mongodb::options::{Acknowledgment, WriteConcern};
use databay_component::mongodb::{ConnectionOptions, TlsSettings};
use databay_component::{BuildContext, OptionError, Registry, Secret, duration};
use serde::Deserialize;

use super::{MongoOutlet, SAMPLE, WriteMode};

/// `w` of a write concern: a number of nodes, `"majority"`, or a tag set's name.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum W {
    /// This many nodes (at least 1).
    Nodes(u32),
    /// `"majority"`, or a custom write concern's name.
    Name(String),
}

/// `write_concern = { w = "majority", journal = true, timeout = "5s" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteConcernOptions {
    /// Nodes that must acknowledge: a number (at least 1), `"majority"`, or a tag set's name.
    #[serde(default)]
    pub w: Option<W>,
    /// Wait for the on-disk journal.
    #[serde(default)]
    pub journal: Option<bool>,
    /// How long the server waits for `w` before it reports the write concern unmet.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
}

impl WriteConcernOptions {
    fn to_write_concern(&self) -> WriteConcern {
        let w = self.w.as_ref().map(|w| match w {
            W::Nodes(n) => Acknowledgment::Nodes(*n),
            W::Name(name) if name == "majority" => Acknowledgment::Majority,
            W::Name(name) => Acknowledgment::Custom(name.clone()),
        });
        WriteConcern::builder()
            .w(w)
            .journal(self.journal)
            .w_timeout(self.timeout)
            .build()
    }
}

/// Options of `type = "mongodb"` (outlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoOutletOptions {
    /// `mongodb://user:password@host:port/database?options`; secret.
    pub uri: Secret<String>,
    /// The database (default: the one the URI names).
    pub database: Option<String>,
    /// The collection written to.
    pub collection: String,
    /// How long opening one connection may take (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub connect_timeout: Option<Duration>,
    /// How long an operation waits for a usable server (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub server_selection_timeout: Option<Duration>,
    /// TLS: `{ ca_file, cert_key_file, allow_invalid_certificates }`.
    pub tls: Option<TlsSettings>,
    /// `"insert"`, `"replace"` or `"upsert"`.
    #[serde(default = "default_mode")]
    pub mode: WriteMode,
    /// The fields that find a record's document (replace/upsert).
    #[serde(default)]
    pub key: Vec<String>,
    /// Documents per command (default 1000).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// `{ w, journal, timeout }` (default: the URI's, else the server's).
    pub write_concern: Option<WriteConcernOptions>,
    /// Read `{"$oid": ...}`, `{"$date": ...}` in payloads as BSON types.
    #[serde(default)]
    pub extended_json: bool,
}

fn default_mode() -> WriteMode {
    WriteMode::Insert
}

fn default_batch_size() -> usize {
    MongoOutlet::DEFAULT_BATCH_SIZE
}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "mongodb",
        "Writes records as documents of a MongoDB collection: unordered inserts, or replace/upsert by key.",
        SAMPLE,
        |o: MongoOutletOptions, cx: &BuildContext| {
            let tls = o.tls.map(|t| t.resolve(cx)).transpose()?;
            let connector = ConnectionOptions {
                uri: o.uri,
                database: o.database,
                connect_timeout: o.connect_timeout,
                server_selection_timeout: o.server_selection_timeout,
                tls,
            }
            .connector()?;
            if let Some(W::Name(name)) = o.write_concern.as_ref().and_then(|w| w.w.as_ref())
                && name.is_empty()
            {
                return Err(OptionError::new("write_concern", "`w` must not be empty").into());
            }
            let mut outlet = MongoOutlet::new(connector, o.collection)
                .mode(o.mode, o.key)
                .batch_size(o.batch_size)
                .extended_json(o.extended_json);
            if let Some(w) = &o.write_concern {
                outlet = outlet.write_concern(w.to_write_concern());
            }
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
        assert_registered_documented(super::register, Kind::Outlet, "mongodb", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.outlet_type("mongodb"), options).err()
        };
        let base = "uri = \"mongodb://app:s3cret@127.0.0.1:27017/shop\"\ncollection = \"orders\"\n";
        for (options, want) in [
            (
                "mode = \"replace\"",
                "option `key`: `mode = \"replace\"` needs",
            ),
            ("key = [\"id\"]", "option `key`: only `mode = \"replace\"`"),
            (
                "mode = \"upsert\"\nkey = [\"a..b\"]",
                "option `key`: `a..b` is not",
            ),
            ("batch_size = 0", "option `batch_size`: must be 1 to 100000"),
            ("batch_size = 100001", "option `batch_size`"),
            (
                "write_concern = { w = 0 }",
                "option `write_concern`: `w = 0`",
            ),
            ("database = \"a.b\"", "option `database`"),
            ("connect_timeout = \"0s\"", "option `connect_timeout`"),
            ("mode = \"merge\"", "unknown variant `merge`"),
        ] {
            let e =
                build(&format!("{base}{options}")).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.contains(want), "{options}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        let e = build("uri = \"mongodb://h/db\"\ncollection = \"a$b\"").unwrap();
        assert!(e.starts_with("option `collection`"), "{e}");
        let e = build("uri = \"mongodb://u:s3cret@h:x/db\"\ncollection = \"c\"").unwrap();
        assert!(
            e.starts_with("option `uri`") && !e.contains("s3cret"),
            "{e}"
        );
        assert_eq!(build(base), None);
        assert_eq!(
            build(&format!(
                "{base}mode = \"upsert\"\nkey = [\"id\", \"customer.id\"]\nwrite_concern = {{ w = \"majority\", journal = true, timeout = \"5s\" }}"
            )),
            None
        );
    }
}
