//! `remove`: removes fields from every record, without jq.

use databay_core::{BoxError, Context, Record, Stateless};
use serde::Deserialize;
use serde_json::Value;

use crate::pointer::Pointer;
use databay_component::{BuildContext, OptionError, Registry};

const SUMMARY: &str = "Removes fields (no jq needed).";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.processor(
        "remove",
        SUMMARY,
        SAMPLE,
        |o: RemoveOptions, _: &BuildContext| Ok(o.build()?),
    );
}

/// Options of the `remove` processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveOptions {
    /// JSON pointers to the fields to remove.
    pub fields: Vec<String>,
}

impl RemoveOptions {
    /// Builds the processor.
    pub fn build(self) -> Result<Remove, OptionError> {
        Remove::new(&self.fields)
    }
}

/// Removes fields at JSON pointers; missing fields are left alone.
///
/// ```
/// use databay_processors::Remove;
/// use serde_json::json;
///
/// let remove = Remove::new(["/password"]).unwrap();
/// let mut payload = json!({"user": "u1", "password": "hunter2"});
/// remove.apply(&mut payload);
/// assert_eq!(payload, json!({"user": "u1"}));
/// ```
#[derive(Debug, Clone)]
pub struct Remove {
    fields: Vec<Pointer>,
}

impl Remove {
    /// A `remove` of `fields`, in the order given. Refuses an empty list
    /// and `""` (the whole payload).
    pub fn new<K: AsRef<str>>(fields: impl IntoIterator<Item = K>) -> Result<Self, OptionError> {
        let fields = fields
            .into_iter()
            .map(|k| {
                let pointer = Pointer::parse(k.as_ref()).map_err(|e| OptionError::new("fields", e.to_string()))?;
                if pointer.is_root() {
                    return Err(OptionError::new(
                        "fields",
                        "\"\" is the whole payload, which cannot be removed; name a field such as \"/password\"",
                    ));
                }
                Ok(pointer)
            })
            .collect::<Result<Vec<_>, OptionError>>()?;
        if fields.is_empty() {
            return Err(OptionError::new(
                "fields",
                "name at least one field to remove",
            ));
        }
        let mut fields = fields;
        fields.sort_by(Pointer::removal_order);
        fields.dedup();
        Ok(Remove { fields })
    }

    /// Removes the fields from one payload.
    pub fn apply(&self, payload: &mut Value) {
        // `fields` is kept in removal order, so several indices of one array
        // mean their original positions.
        for pointer in &self.fields {
            pointer.take(payload);
        }
    }
}

impl Stateless for Remove {
    fn process_part(
        &self,
        mut records: Vec<Record>,
        _cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        for record in &mut records {
            self.apply(&mut record.payload);
        }
        Ok(records)
    }
}

databay_core::stateless_processor!(Remove);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_and_readme_match_the_options() {
        crate::tests::assert_documented(
            databay_component::Kind::Processor,
            "remove",
            include_str!("README.md"),
        );
    }
    use crate::tests::{build_processor, payloads, run, sample_options};
    use serde_json::json;

    fn opts(toml: &str) -> Result<Remove, String> {
        let o: RemoveOptions = toml::from_str(toml).map_err(|e| e.to_string())?;
        o.build().map_err(|e| e.to_string())
    }

    #[test]
    fn sample_is_valid() {
        let o: RemoveOptions = sample_options(SAMPLE);
        assert_eq!(o.fields, ["/password", "/meta/debug"]);
        o.build().unwrap();
    }

    #[tokio::test]
    async fn removes_fields_and_ignores_missing_ones() {
        let mut remove = opts("fields = [\"/password\", \"/meta/debug\", \"/l/0\"]").unwrap();
        let records = vec![
            Record::new(
                json!({"user": "u1", "password": "x", "meta": {"debug": 1, "k": 2}, "l": [1, 2]}),
            )
            .with_meta("m", true),
            Record::new(json!({"user": "u2"})),
            Record::new(json!({"meta": "not an object"})),
            Record::new(json!(7)),
        ];
        let out = run(&mut remove, records).await.unwrap();
        assert_eq!(
            payloads(&out),
            vec![
                json!({"user": "u1", "meta": {"k": 2}, "l": [2]}),
                json!({"user": "u2"}),
                json!({"meta": "not an object"}),
                json!(7),
            ]
        );
        assert_eq!(out[0].meta("m"), Some(&json!(true)));
    }

    #[test]
    fn build_errors_name_the_option() {
        let e = opts("fields = [\"/a\", \"b\"]").unwrap_err();
        assert!(
            e.starts_with("option `fields`: invalid JSON pointer \"b\""),
            "{e}"
        );
        let e = opts("fields = [\"\"]").unwrap_err();
        assert!(
            e.starts_with("option `fields`: \"\" is the whole payload"),
            "{e}"
        );
        let e = opts("fields = []").unwrap_err();
        assert_eq!(e, "option `fields`: name at least one field to remove");
        let e = opts("fields = [\"/a\"]\nfield = 1").unwrap_err();
        assert!(e.contains("unknown field `field`"), "{e}");
    }

    #[tokio::test]
    async fn builds_through_the_registry() {
        let mut p = build_processor("remove", "fields = [\"/a\"]").unwrap();
        let out = run(&mut p, vec![Record::new(json!({"a": 1, "b": 2}))])
            .await
            .unwrap();
        assert_eq!(payloads(&out), vec![json!({"b": 2})]);
    }
}
