//! `rename`: moves fields of every record to new places, without jq.

use std::collections::BTreeMap;

use databay_core::{BoxError, Context, Record, Stateless};
use serde::Deserialize;
use serde_json::Value;

use crate::RecordError;
use crate::pointer::Pointer;
use databay_component::{BuildContext, OptionError, Registry};

const SUMMARY: &str = "Moves fields to new names (no jq needed).";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.processor(
        "rename",
        SUMMARY,
        SAMPLE,
        |o: RenameOptions, _: &BuildContext| Ok(o.build()?),
    );
}

/// Options of the `rename` processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameOptions {
    /// Old JSON pointer to new JSON pointer.
    pub fields: BTreeMap<String, String>,
}

impl RenameOptions {
    /// Builds the processor.
    pub fn build(self) -> Result<Rename, OptionError> {
        Rename::new(self.fields)
    }
}

/// Moves the value at one JSON pointer to another.
///
/// ```
/// use databay_processors::Rename;
/// use serde_json::json;
///
/// let rename = Rename::new([("/usr", "/user/name")]).unwrap();
/// let mut payload = json!({"usr": "u1"});
/// rename.apply(&mut payload).unwrap();
/// assert_eq!(payload, json!({"user": {"name": "u1"}}));
/// ```
#[derive(Debug, Clone)]
pub struct Rename {
    fields: Vec<(Pointer, Pointer)>,
    /// Positions in `fields`, in the order sources are taken out.
    take_order: Vec<usize>,
}

impl Rename {
    /// A `rename` of `fields` (old, new), applied in the order given.
    /// Refuses an empty list and a field renamed to itself.
    pub fn new<A: AsRef<str>, B: AsRef<str>>(
        fields: impl IntoIterator<Item = (A, B)>,
    ) -> Result<Self, OptionError> {
        let parse =
            |s: &str| Pointer::parse(s).map_err(|e| OptionError::new("fields", e.to_string()));
        let fields = fields
            .into_iter()
            .map(|(from, to)| {
                let (from, to) = (parse(from.as_ref())?, parse(to.as_ref())?);
                if from == to {
                    return Err(OptionError::new(
                        "fields",
                        format!("`{from}` is renamed to itself"),
                    ));
                }
                Ok((from, to))
            })
            .collect::<Result<Vec<_>, OptionError>>()?;
        if fields.is_empty() {
            return Err(OptionError::new(
                "fields",
                "name at least one field to rename",
            ));
        }
        let mut take_order: Vec<usize> = (0..fields.len()).collect();
        take_order.sort_by(|a, b| Pointer::removal_order(&fields[*a].0, &fields[*b].0));
        Ok(Rename { fields, take_order })
    }

    /// Moves the fields in one payload. Every source is taken out before
    /// any target is written, so swaps (`/a` <-> `/b`) and chains
    /// (`/a` -> `/b` -> `/c`) move the original values, and several indices
    /// of one array mean their original positions.
    pub fn apply(&self, payload: &mut Value) -> Result<(), String> {
        let mut taken: Vec<Option<Value>> = vec![None; self.fields.len()];
        for &i in self.take_order.iter() {
            taken[i] = self.fields[i].0.take(payload);
        }
        for ((from, to), value) in self.fields.iter().zip(taken) {
            if let Some(value) = value {
                to.set(payload, value)
                    .map_err(|e| format!("cannot move `{from}` to `{to}`: {}", e.reason()))?;
            }
        }
        Ok(())
    }
}

impl Stateless for Rename {
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

databay_core::stateless_processor!(Rename);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_and_readme_match_the_options() {
        crate::tests::assert_documented(
            databay_component::Kind::Processor,
            "rename",
            include_str!("README.md"),
        );
    }
    use crate::tests::{build_processor, payloads, run, sample_options};
    use serde_json::json;

    fn opts(toml: &str) -> Result<Rename, String> {
        let o: RenameOptions = toml::from_str(toml).map_err(|e| e.to_string())?;
        o.build().map_err(|e| e.to_string())
    }

    #[test]
    fn sample_is_valid() {
        let o: RenameOptions = sample_options(SAMPLE);
        assert_eq!(o.fields.len(), 2);
        o.build().unwrap();
    }

    #[tokio::test]
    async fn moves_fields_and_ignores_missing_ones() {
        let mut rename = opts("fields = { \"/usr\" = \"/user\", \"/meta/ts\" = \"/ts\" }").unwrap();
        let records = vec![
            Record::new(json!({"usr": "u1", "meta": {"ts": 5, "k": 1}})).with_meta("m", 1),
            Record::new(json!({"user": "kept"})),
            Record::new(json!({"usr": {"deep": [1]}, "user": "overwritten"})),
        ];
        let out = run(&mut rename, records).await.unwrap();
        assert_eq!(
            payloads(&out),
            vec![
                json!({"user": "u1", "meta": {"k": 1}, "ts": 5}),
                json!({"user": "kept"}),
                json!({"user": {"deep": [1]}}),
            ]
        );
        assert_eq!(out[0].meta("m"), Some(&json!(1)));
    }

    #[tokio::test]
    async fn wraps_unwraps_and_nests() {
        let mut wrap = opts("fields = { \"\" = \"/data\" }").unwrap();
        let out = run(&mut wrap, vec![Record::new(json!([1, 2]))])
            .await
            .unwrap();
        assert_eq!(payloads(&out), vec![json!({"data": [1, 2]})]);

        let mut unwrap = opts("fields = { \"/data\" = \"\" }").unwrap();
        let out = run(
            &mut unwrap,
            vec![Record::new(json!({"data": {"a": 1}, "x": 0}))],
        )
        .await
        .unwrap();
        assert_eq!(payloads(&out), vec![json!({"a": 1})]);

        let mut nest = opts("fields = { \"/a\" = \"/a/b\" }").unwrap();
        let out = run(&mut nest, vec![Record::new(json!({"a": 1}))])
            .await
            .unwrap();
        assert_eq!(payloads(&out), vec![json!({"a": {"b": 1}})]);
    }

    #[tokio::test]
    async fn an_impossible_target_fails_the_batch_naming_record_and_pointers() {
        let mut rename = opts("fields = { \"/a\" = \"/b/c\" }").unwrap();
        let records = vec![
            Record::new(json!({"a": 1})),
            Record::new(json!({"a": 1, "b": 2})),
        ];
        let e = run(&mut rename, records).await.unwrap_err().to_string();
        assert_eq!(
            e,
            "record 1 of 2: cannot move `/a` to `/b/c`: `/b` is a number, not an object"
        );
    }

    #[test]
    fn build_errors_name_the_option() {
        let e = opts("fields = { \"/a\" = \"b\" }").unwrap_err();
        assert!(
            e.starts_with("option `fields`: invalid JSON pointer \"b\""),
            "{e}"
        );
        let e = opts("fields = { \"/a\" = \"/a\" }").unwrap_err();
        assert_eq!(e, "option `fields`: `/a` is renamed to itself");
        let e = opts("fields = {}").unwrap_err();
        assert_eq!(e, "option `fields`: name at least one field to rename");
        let e = opts("fields = { \"/a\" = 1 }").unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        let e = opts("fields = { \"/a\" = \"/b\" }\nfield = 1").unwrap_err();
        assert!(e.contains("unknown field `field`"), "{e}");
    }

    #[tokio::test]
    async fn builds_through_the_registry() {
        let mut p = build_processor("rename", "fields = { \"/a\" = \"/b\" }").unwrap();
        let out = run(&mut p, vec![Record::new(json!({"a": 1}))])
            .await
            .unwrap();
        assert_eq!(payloads(&out), vec![json!({"b": 1})]);
    }
}
