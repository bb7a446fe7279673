//! `group_by`: a grouper putting records with equal keys in the same batch.
//!
//! The key is a field (JSON pointer) or, with the `jq` feature, the first
//! output of a jq expression. Keys are compared by their JSON text, written
//! into one reused buffer, so a record whose key was seen before costs no
//! allocation.

use std::collections::HashMap;

use databay_core::{BoxError, Grouper, Record};
use serde::Deserialize;
use serde_json::Value;

use crate::RecordError;
#[cfg(feature = "jq")]
use crate::jq::JqProgram;
use crate::pointer::Pointer;
use crate::value::write_canonical;
use databay_component::{BuildContext, OptionError, Registry};

const SUMMARY: &str =
    "Puts records with equal keys (a field or a jq expression) in the same batch.";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.grouper(
        "group_by",
        SUMMARY,
        SAMPLE,
        |o: GroupByOptions, _: &BuildContext| Ok(o.build()?),
    );
}

/// Options of the `group_by` grouper.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupByOptions {
    /// JSON pointer to the key.
    #[serde(default)]
    pub pointer: Option<String>,
    /// jq expression giving the key (needs the `jq` feature).
    #[serde(default)]
    pub expr: Option<String>,
}

impl GroupByOptions {
    /// Builds the grouper; exactly one of `pointer` and `expr` must be set.
    pub fn build(self) -> Result<GroupBy, OptionError> {
        match (self.pointer, self.expr) {
            (Some(pointer), None) => GroupBy::pointer(&pointer),
            #[cfg(feature = "jq")]
            (None, Some(expr)) => GroupBy::jq(&expr),
            #[cfg(not(feature = "jq"))]
            (None, Some(_)) => Err(OptionError::new(
                "expr",
                "jq expressions need databay built with the `jq` feature; use `pointer`",
            )),
            (Some(_), Some(_)) => Err(OptionError::new(
                "pointer",
                "set either `pointer` or `expr`, not both",
            )),
            (None, None) => Err(OptionError::new(
                "pointer",
                "set `pointer` (a JSON pointer such as \"/user\") or `expr` (a jq expression) to say what to group by",
            )),
        }
    }
}

/// What [`GroupBy`] groups by.
#[derive(Debug)]
#[non_exhaustive]
pub enum GroupKey {
    /// The field at a JSON pointer; missing counts as `null`.
    Pointer(Pointer),
    /// The first output of a jq expression; no output counts as `null`.
    #[cfg(feature = "jq")]
    Jq(JqProgram),
}

/// Puts records with equal keys in the same batch, batches in the order
/// their keys first appear. Each incoming batch is grouped on its own.
///
/// ```
/// use databay_processors::GroupBy;
/// use databay_core::{Grouper, Record};
/// use serde_json::json;
///
/// let mut group_by = GroupBy::pointer("/user").unwrap();
/// let batch = vec![
///     Record::new(json!({"user": "a", "n": 1})),
///     Record::new(json!({"user": "b", "n": 2})),
///     Record::new(json!({"user": "a", "n": 3})),
/// ];
/// let sizes: Vec<usize> = group_by.group(vec![batch]).unwrap().iter().map(Vec::len).collect();
/// assert_eq!(sizes, [2, 1]);
/// ```
#[derive(Debug)]
pub struct GroupBy {
    key: GroupKey,
    /// Key text to batch index, kept between calls for its capacity.
    index: HashMap<Vec<u8>, usize>,
    /// The current record's key text.
    buf: Vec<u8>,
}

impl GroupBy {
    /// Groups by `key`.
    pub fn new(key: GroupKey) -> Self {
        GroupBy {
            key,
            index: HashMap::new(),
            buf: Vec::new(),
        }
    }

    /// Groups by the field at `pointer`; a bad pointer names the `pointer`
    /// option.
    pub fn pointer(pointer: &str) -> Result<Self, OptionError> {
        let pointer =
            Pointer::parse(pointer).map_err(|e| OptionError::new("pointer", e.to_string()))?;
        Ok(Self::new(GroupKey::Pointer(pointer)))
    }

    /// Groups by the first output of the jq expression `expr`; a compile
    /// error names the `expr` option.
    #[cfg(feature = "jq")]
    pub fn jq(expr: &str) -> Result<Self, OptionError> {
        let program =
            JqProgram::compile(expr).map_err(|e| OptionError::new("expr", e.to_string()))?;
        Ok(Self::new(GroupKey::Jq(program)))
    }

    /// What the records are grouped by.
    pub fn key(&self) -> &GroupKey {
        &self.key
    }

    /// Writes the key of `payload` as JSON text into `self.buf`.
    fn write_key(&mut self, payload: &Value) -> Result<(), String> {
        self.buf.clear();
        let result = match &self.key {
            GroupKey::Pointer(p) => {
                write_canonical(&mut self.buf, p.get(payload).unwrap_or(&Value::Null))
            }
            #[cfg(feature = "jq")]
            GroupKey::Jq(program) => {
                let key = program.first(payload).map_err(|e| e.to_string())?;
                write_canonical(&mut self.buf, &key.unwrap_or(Value::Null))
            }
        };
        result.map_err(|e| format!("cannot write the key as JSON: {e}"))
    }

    fn group_batch(
        &mut self,
        batch: Vec<Record>,
        out: &mut Vec<Vec<Record>>,
    ) -> Result<(), RecordError> {
        let count = batch.len();
        let first = out.len();
        self.index.clear();
        for (i, record) in batch.into_iter().enumerate() {
            self.write_key(&record.payload)
                .map_err(|e| RecordError::new(i, count, e))?;
            match self.index.get(self.buf.as_slice()) {
                Some(&at) => out[at].push(record),
                None => {
                    self.index.insert(self.buf.clone(), out.len());
                    out.push(vec![record]);
                }
            }
        }
        if out.len() == first {
            // An empty batch stays a batch: the link still shows it to
            // outlet processors.
            out.push(Vec::new());
        }
        Ok(())
    }
}

impl Grouper for GroupBy {
    fn group(&mut self, batches: Vec<Vec<Record>>) -> Result<Vec<Vec<Record>>, BoxError> {
        let mut out = Vec::with_capacity(batches.len());
        for batch in batches {
            self.group_batch(batch, &mut out)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_and_readme_match_the_options() {
        crate::tests::assert_documented(
            databay_component::Kind::Grouper,
            "group_by",
            include_str!("README.md"),
        );
    }
    use crate::tests::{build_grouper, grouper_error, sample_options};
    use serde_json::json;

    fn shape(batches: &[Vec<Record>]) -> Vec<Vec<Value>> {
        batches
            .iter()
            .map(|b| b.iter().map(|r| r.payload.clone()).collect())
            .collect()
    }

    fn records(values: &[Value]) -> Vec<Record> {
        values.iter().cloned().map(Record::new).collect()
    }

    #[test]
    fn sample_is_valid() {
        let o: GroupByOptions = sample_options(SAMPLE);
        assert_eq!(o.pointer.as_deref(), Some("/user"));
        o.build().unwrap();
    }

    #[test]
    fn groups_in_order_of_first_appearance() {
        let mut g = GroupBy::pointer("/k").unwrap();
        let batch = records(&[
            json!({"k": "b", "n": 1}),
            json!({"k": "a", "n": 2}),
            json!({"n": 3}),
            json!({"k": "b", "n": 4}),
            json!({"k": null, "n": 5}),
            json!({"k": 1, "n": 6}),
            json!({"k": "1", "n": 7}),
            json!({"k": {"x": [1]}, "n": 8}),
            json!({"k": {"x": [1]}, "n": 9}),
        ]);
        let out = g.group(vec![batch]).unwrap();
        assert_eq!(
            shape(&out),
            vec![
                vec![json!({"k": "b", "n": 1}), json!({"k": "b", "n": 4})],
                vec![json!({"k": "a", "n": 2})],
                vec![json!({"n": 3}), json!({"k": null, "n": 5})],
                vec![json!({"k": 1, "n": 6})],
                vec![json!({"k": "1", "n": 7})],
                vec![
                    json!({"k": {"x": [1]}, "n": 8}),
                    json!({"k": {"x": [1]}, "n": 9})
                ],
            ]
        );
    }

    #[test]
    fn equal_keys_group_together_whatever_their_key_order_or_spelling() {
        let mut g = GroupBy::pointer("/k").unwrap();
        let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        let batch = records(&[
            parse(r#"{"k": {"b": 1, "a": [2.50]}}"#),
            parse(r#"{"k": {"a": [2.5], "b": 1}}"#),
            parse(r#"{"k": 18446744073709551617}"#),
            parse(r#"{"k": 18446744073709551616}"#),
            parse(r#"{"k": 1}"#),
            parse(r#"{"k": 1.0}"#),
        ]);
        let sizes: Vec<usize> = g.group(vec![batch]).unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 1, 1, 1, 1]);
    }

    #[test]
    fn batches_are_grouped_separately_and_empty_ones_kept() {
        let mut g = GroupBy::pointer("").unwrap();
        let out = g
            .group(vec![
                records(&[json!(1), json!(2), json!(1)]),
                vec![],
                records(&[json!(1)]),
            ])
            .unwrap();
        assert_eq!(
            shape(&out),
            vec![
                vec![json!(1), json!(1)],
                vec![json!(2)],
                vec![],
                vec![json!(1)]
            ]
        );
    }

    #[test]
    fn keeps_metadata() {
        let mut g = GroupBy::pointer("/k").unwrap();
        let out = g
            .group(vec![vec![Record::new(json!({"k": 1})).with_meta("m", 2)]])
            .unwrap();
        assert_eq!(out[0][0].meta("m"), Some(&json!(2)));
    }

    #[cfg(feature = "jq")]
    #[test]
    fn groups_by_jq_expression() {
        let mut g = GroupBy::jq(".user | ascii_downcase").unwrap();
        let batch = records(&[
            json!({"user": "A"}),
            json!({"user": "b"}),
            json!({"user": "a"}),
        ]);
        let out = g.group(vec![batch]).unwrap();
        assert_eq!(
            shape(&out),
            vec![
                vec![json!({"user": "A"}), json!({"user": "a"})],
                vec![json!({"user": "b"})]
            ]
        );
        let mut none = GroupBy::jq("empty").unwrap();
        assert_eq!(
            none.group(vec![records(&[json!(1), json!(2)])])
                .unwrap()
                .len(),
            1
        );
        let e = g
            .group(vec![records(&[json!({"user": "a"}), json!({"user": 1})])])
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("record 1 of 2: jq expression `.user | ascii_downcase` failed"),
            "{e}"
        );
    }

    #[test]
    fn options_need_exactly_one_key() {
        let build = |t: &str| {
            toml::from_str::<GroupByOptions>(t)
                .map_err(|e| e.to_string())?
                .build()
                .map_err(|e| e.to_string())
        };
        let e = build("").unwrap_err();
        assert!(e.starts_with("option `pointer`: set `pointer`"), "{e}");
        let e = build("pointer = \"/a\"\nexpr = \".a\"").unwrap_err();
        assert_eq!(
            e,
            "option `pointer`: set either `pointer` or `expr`, not both"
        );
        let e = build("pointer = \"a\"").unwrap_err();
        assert!(
            e.starts_with("option `pointer`: invalid JSON pointer"),
            "{e}"
        );
        let e = build("pointer = \"/a\"\nkey = 1").unwrap_err();
        assert!(e.contains("unknown field `key`"), "{e}");
        #[cfg(feature = "jq")]
        {
            let e = build("expr = \".a |\"").unwrap_err();
            assert!(
                e.starts_with("option `expr`: cannot compile jq expression `.a |`"),
                "{e}"
            );
            build("expr = \".a\"").unwrap();
        }
        #[cfg(not(feature = "jq"))]
        {
            let e = build("expr = \".a\"").unwrap_err();
            assert!(e.starts_with("option `expr`: jq expressions need"), "{e}");
        }
    }

    #[test]
    fn builds_through_the_registry() {
        let mut g = build_grouper("group_by", "pointer = \"/k\"").unwrap();
        let out = g
            .group(vec![records(&[json!({"k": 1}), json!({"k": 2})])])
            .unwrap();
        assert_eq!(out.len(), 2);
        assert!(grouper_error("group_by", "").contains("option `pointer`"));
    }
}
