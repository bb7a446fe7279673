//! The `mongodb` inlet's TOML face.

use std::time::Duration;

use databay_component::mongodb::{
    ConnectionOptions, JsonFormat, TlsSettings, option_document, option_value,
};
use databay_component::{BuildContext, Registry, Secret, duration};
use serde::Deserialize;
use serde_json::Value;

use super::{Cursor, MongoInlet, SAMPLE, parse_sort};

/// `cursor = { field = "_id", start = { "$oid" = "..." } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorOptions {
    /// The field whose last value read is where the next pull starts.
    pub field: String,
    /// Start after this value (extended JSON for typed ones); default: from the first.
    #[serde(default)]
    pub start: Option<Value>,
}

/// Options of `type = "mongodb"` (inlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoInletOptions {
    /// `mongodb://user:password@host:port/database?options`; secret.
    pub uri: Secret<String>,
    /// The database (default: the one the URI names).
    pub database: Option<String>,
    /// The collection read.
    pub collection: String,
    /// How long opening one connection may take (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub connect_timeout: Option<Duration>,
    /// How long an operation waits for a usable server (default 10s).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub server_selection_timeout: Option<Duration>,
    /// TLS: `{ ca_file, cert_key_file, allow_invalid_certificates }`.
    pub tls: Option<TlsSettings>,
    /// The query: a JSON (extended JSON) string or a TOML table.
    pub filter: Option<Value>,
    /// Fields to return or leave out: a JSON string or a TOML table.
    pub projection: Option<Value>,
    /// Sort keys in order: `["-updated_at", "_id"]`.
    #[serde(default)]
    pub sort: Vec<String>,
    /// At most this many documents per pull.
    pub limit: Option<u64>,
    /// Documents per round trip to the server.
    pub batch_size: Option<u32>,
    /// An incremental cursor: `{ field, start }`.
    pub cursor: Option<CursorOptions>,
    /// `"plain"` or `"relaxed"` (extended JSON) for ObjectId, dates, decimals.
    #[serde(default)]
    pub json: JsonFormat,
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "mongodb",
        "Runs a MongoDB find on every transfer, documents as JSON objects, with an optional incremental cursor.",
        SAMPLE,
        |o: MongoInletOptions, cx: &BuildContext| {
            let tls = o.tls.map(|t| t.resolve(cx)).transpose()?;
            let connector = ConnectionOptions {
                uri: o.uri,
                database: o.database,
                connect_timeout: o.connect_timeout,
                server_selection_timeout: o.server_selection_timeout,
                tls,
            }
            .connector()?;
            let mut inlet = MongoInlet::new(connector, o.collection)
                .sort(parse_sort(&o.sort)?)
                .format(o.json);
            if let Some(filter) = &o.filter {
                inlet = inlet.filter(option_document("filter", filter)?);
            }
            if let Some(projection) = &o.projection {
                inlet = inlet.projection(option_document("projection", projection)?);
            }
            if let Some(limit) = o.limit {
                inlet = inlet.limit(limit);
            }
            if let Some(batch) = o.batch_size {
                inlet = inlet.batch_size(batch);
            }
            if let Some(c) = o.cursor {
                let start = c
                    .start
                    .as_ref()
                    .map(|s| option_value("cursor", s))
                    .transpose()?;
                inlet = inlet.cursor(Cursor {
                    field: c.field,
                    start,
                });
            }
            inlet.check()?;
            Ok(inlet)
        },
    );
    registry.resume_state(
        "mongodb",
        "with a cursor, `{\"cursor\": value}`: the cursor field's value in the last committed \
         document, as relaxed extended JSON",
    );
}

#[cfg(test)]
mod tests {
    use databay_component::Kind;
    use databay_component::testing::assert_registered_documented;

    #[test]
    fn sample_and_readme_match_the_options() {
        let readme = include_str!("README.md");
        assert_registered_documented(super::register, Kind::Inlet, "mongodb", readme);
    }

    #[test]
    fn the_factory_refuses_what_cannot_work_naming_the_option() {
        let mut registry = databay_component::Registry::new();
        super::register(&mut registry);
        let build = |options: &str| {
            databay_component::testing::build(registry.inlet_type("mongodb"), options).err()
        };
        let base = "uri = \"mongodb://app:s3cret@127.0.0.1:27017/shop\"\ncollection = \"orders\"\n";
        for (options, want) in [
            (
                "filter = '{\"a\": 1,}'",
                "option `filter`: not valid JSON (line 1, column",
            ),
            ("filter = '[1]'", "option `filter`: must be a JSON object"),
            ("filter = 3", "option `filter`: must be a JSON object"),
            (
                "filter = '{\"_id\": {\"$oid\": \"zz\"}}'",
                "option `filter`: not valid extended JSON",
            ),
            ("projection = '{'", "option `projection`: not valid JSON"),
            ("sort = [\"-\"]", "option `sort`: `-` is not a field"),
            (
                "sort = [\"a\"]\ncursor = { field = \"_id\" }",
                "option `sort`: a cursor reads",
            ),
            ("cursor = { field = \"\" }", "option `cursor`: `field`"),
            (
                "cursor = { field = \"_id\", start = { \"$oid\" = \"nothex\" } }",
                "option `cursor`: not valid extended JSON",
            ),
            ("limit = 0", "option `limit`"),
            ("batch_size = 0", "option `batch_size`"),
            ("json = \"canonical\"", "unknown variant `canonical`"),
            (
                "server_selection_timeout = \"0s\"",
                "option `server_selection_timeout`",
            ),
        ] {
            let e =
                build(&format!("{base}{options}")).unwrap_or_else(|| panic!("{options}: built"));
            assert!(e.contains(want), "{options}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(build(base), None);
        assert_eq!(
            build(&format!(
                "{base}filter = {{ status = \"open\", n = {{ \"$gt\" = 3 }} }}\nprojection = '{{\"secret\": 0}}'\n\
                 cursor = {{ field = \"at\", start = {{ \"$date\" = \"2024-01-01T00:00:00Z\" }} }}\njson = \"relaxed\""
            )),
            None
        );
    }
}
