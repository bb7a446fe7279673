//! `set`: sets fields of every record to fixed values, without jq.

use std::collections::BTreeMap;

use databay_core::{BoxError, Context, Record, Stateless};
use serde::Deserialize;
use serde_json::Value;

use crate::RecordError;
use crate::pointer::Pointer;
use crate::value;
use databay_component::{BuildContext, OptionError, Registry};

const SUMMARY: &str = "Sets fields to fixed values (no jq needed).";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.processor("set", SUMMARY, SAMPLE, |o: SetOptions, _: &BuildContext| {
        Ok(o.build()?)
    });
}

/// Options of the `set` processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetOptions {
    /// JSON pointer to value.
    #[serde(deserialize_with = "value::deserialize_map")]
    pub fields: BTreeMap<String, Value>,
}

impl SetOptions {
    /// Builds the processor.
    pub fn build(self) -> Result<Set, OptionError> {
        Set::new(self.fields)
    }
}

/// Sets fields at JSON pointers to fixed values.
///
/// ```
/// use databay_processors::Set;
/// use serde_json::json;
///
/// let set = Set::new([("/meta/source", json!("api"))]).unwrap();
/// let mut payload = json!({"id": 1});
/// set.apply(&mut payload).unwrap();
/// assert_eq!(payload, json!({"id": 1, "meta": {"source": "api"}}));
/// ```
#[derive(Debug, Clone)]
pub struct Set {
    fields: Vec<(Pointer, Value)>,
}

impl Set {
    /// A `set` of `fields` (pointer, value), applied in the order given.
    /// Refuses an empty list, and a pointer below one set to a value that
    /// cannot hold it (`/a` = 1 with `/a/b`).
    pub fn new<K: AsRef<str>>(
        fields: impl IntoIterator<Item = (K, Value)>,
    ) -> Result<Self, OptionError> {
        let fields = fields
            .into_iter()
            .map(|(k, v)| {
                let pointer = Pointer::parse(k.as_ref())
                    .map_err(|e| OptionError::new("fields", e.to_string()))?;
                Ok((pointer, v))
            })
            .collect::<Result<Vec<_>, OptionError>>()?;
        if fields.is_empty() {
            return Err(OptionError::new("fields", "name at least one field to set"));
        }
        for (i, (outer, value)) in fields.iter().enumerate() {
            if value.is_object() || value.is_array() || value.is_null() {
                continue;
            }
            let later = fields[i + 1..].iter().map(|(p, _)| p);
            if let Some(inner) = later.filter(|p| *p != outer).find(|p| p.starts_with(outer)) {
                return Err(OptionError::new(
                    "fields",
                    format!(
                        "`{inner}` is inside `{outer}`, which is set to {value}, not an object"
                    ),
                ));
            }
        }
        Ok(Set { fields })
    }

    /// Sets the fields in one payload.
    pub fn apply(&self, payload: &mut Value) -> Result<(), crate::SetError> {
        for (pointer, value) in &self.fields {
            pointer.set(payload, value.clone())?;
        }
        Ok(())
    }
}

impl Stateless for Set {
    fn process_part(
        &self,
        mut records: Vec<Record>,
        _cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        let count = records.len();
        for (index, record) in records.iter_mut().enumerate() {
            self.apply(&mut record.payload)
                .map_err(|e| RecordError::new(index, count, e))?;
        }
        Ok(records)
    }
}

databay_core::stateless_processor!(Set);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_and_readme_match_the_options() {
        crate::tests::assert_documented(
            databay_component::Kind::Processor,
            "set",
            include_str!("README.md"),
        );
    }
    use crate::tests::{build_processor, payloads, processor_error, run, sample_options};
    use serde_json::json;

    fn opts(toml: &str) -> Result<Set, String> {
        let o: SetOptions = toml::from_str(toml).map_err(|e| e.to_string())?;
        o.build().map_err(|e| e.to_string())
    }

    #[test]
    fn sample_is_valid() {
        let o: SetOptions = sample_options(SAMPLE);
        assert_eq!(o.fields.len(), 2);
        o.build().unwrap();
    }

    #[tokio::test]
    async fn sets_and_creates_fields() {
        let mut set = opts(
            "fields = { \"/flag\" = true, \"/meta/source\" = \"api\", \"/n\" = 1.5, \"/l\" = [1, { a = 2 }] }",
        )
        .unwrap();
        let records = vec![
            Record::new(json!({"id": 1, "flag": false})).with_meta("m", 1),
            Record::new(json!({"id": 2, "meta": {"other": 0}})),
            Record::new(json!({"id": 3, "meta": null})),
        ];
        let out = run(&mut set, records).await.unwrap();
        let tail = json!({"flag": true, "n": 1.5, "l": [1, {"a": 2}]});
        let with = |mut v: Value, meta: Value| {
            for (k, x) in tail.as_object().unwrap() {
                v[k] = x.clone();
            }
            v["meta"] = meta;
            v
        };
        assert_eq!(
            payloads(&out),
            vec![
                with(json!({"id": 1}), json!({"source": "api"})),
                with(json!({"id": 2}), json!({"other": 0, "source": "api"})),
                with(json!({"id": 3}), json!({"source": "api"})),
            ]
        );
        assert_eq!(out[0].meta("m"), Some(&json!(1)));
    }

    #[tokio::test]
    async fn parents_are_set_before_children() {
        let mut set = opts("fields = { \"/m/a\" = 1, \"/m\" = { b = 2 } }").unwrap();
        let out = run(&mut set, vec![Record::new(json!({}))]).await.unwrap();
        assert_eq!(payloads(&out), vec![json!({"m": {"a": 1, "b": 2}})]);
    }

    #[tokio::test]
    async fn escaped_pointers_and_datetimes() {
        let mut set = opts("fields = { \"/a~1b\" = 2026-01-01T00:00:00Z, \"/c~0d\" = 1 }").unwrap();
        let out = run(&mut set, vec![Record::new(json!({}))]).await.unwrap();
        assert_eq!(
            payloads(&out),
            vec![json!({"a/b": "2026-01-01T00:00:00Z", "c~d": 1})]
        );
    }

    #[tokio::test]
    async fn a_non_object_on_the_way_fails_the_batch_naming_record_and_pointer() {
        let mut set = opts("fields = { \"/meta/source\" = \"api\" }").unwrap();
        let records = vec![Record::new(json!({})), Record::new(json!({"meta": "x"}))];
        let e = run(&mut set, records).await.unwrap_err().to_string();
        assert_eq!(
            e,
            "record 1 of 2: cannot set `/meta/source`: `/meta` is a string, not an object"
        );
        let e = run(&mut set, vec![Record::new(json!([1]))])
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "record 0 of 1: cannot set `/meta/source`: the payload is an array and \"meta\" is not an array index"
        );
    }

    #[test]
    fn build_errors_name_the_option() {
        let e = opts("fields = { \"flag\" = true }").unwrap_err();
        assert!(
            e.starts_with("option `fields`: invalid JSON pointer \"flag\""),
            "{e}"
        );
        let e = opts("fields = {}").unwrap_err();
        assert_eq!(e, "option `fields`: name at least one field to set");
        let e = opts("fields = { \"/a\" = 1, \"/a/b\" = 2 }").unwrap_err();
        assert_eq!(
            e,
            "option `fields`: `/a/b` is inside `/a`, which is set to 1, not an object"
        );
        let e = opts("fields = { \"/a\" = 1 }\nfield = 1").unwrap_err();
        assert!(e.contains("unknown field `field`"), "{e}");
        let e = opts("fields = [\"/a\"]").unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
    }

    #[tokio::test]
    async fn builds_through_the_registry() {
        let mut p = build_processor("set", "fields = { \"/x\" = 1 }").unwrap();
        let out = run(&mut p, vec![Record::new(json!({}))]).await.unwrap();
        assert_eq!(payloads(&out), vec![json!({"x": 1})]);
        assert!(processor_error("set", "fields = { x = 1 }").contains("option `fields`"));
    }
}
