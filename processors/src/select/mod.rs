//! `select`: keeps the records whose field compares to a value, without jq.
//!
//! Built for the hot path: the pointer is parsed and the value classified
//! once, and a batch is filtered in place with no allocation per record.

use std::cmp::Ordering;
use std::fmt;

use databay_core::{BoxError, Context, Record, Stateless};
use serde::Deserialize;
use serde_json::Value;

use crate::pointer::{Pointer, kind};
use crate::value::{self, Num};
use databay_component::{BuildContext, OptionError, Registry};

const SUMMARY: &str = "Keeps records whose field compares to a value (no jq needed).";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.processor(
        "select",
        SUMMARY,
        SAMPLE,
        |o: SelectOptions, _: &BuildContext| Ok(o.build()?),
    );
}

/// The comparison a [`Select`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// The field equals the value (the default).
    #[default]
    Eq,
    /// The field does not equal the value.
    Ne,
    /// The field is greater than the value.
    Gt,
    /// The field is greater than or equal to the value.
    Ge,
    /// The field is less than the value.
    Lt,
    /// The field is less than or equal to the value.
    Le,
    /// The field is present (even if `null`).
    Exists,
    /// The field is absent.
    Missing,
    /// The string field contains the value as a substring, the array field
    /// has an element equal to it, or the object field has it as a key.
    Contains,
}

impl Op {
    /// The name as written in TOML (`"gt"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Gt => "gt",
            Op::Ge => "ge",
            Op::Lt => "lt",
            Op::Le => "le",
            Op::Exists => "exists",
            Op::Missing => "missing",
            Op::Contains => "contains",
        }
    }

    fn takes_value(self) -> bool {
        !matches!(self, Op::Exists | Op::Missing)
    }

    fn is_ordering(self) -> bool {
        matches!(self, Op::Gt | Op::Ge | Op::Lt | Op::Le)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of the `select` processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectOptions {
    /// JSON pointer to the field.
    pub pointer: String,
    /// The comparison.
    #[serde(default)]
    pub op: Op,
    /// What to compare with; required except for `exists` and `missing`.
    #[serde(default, deserialize_with = "value::deserialize_opt")]
    pub value: Option<Value>,
}

impl SelectOptions {
    /// Builds the processor.
    pub fn build(self) -> Result<Select, OptionError> {
        Select::new(&self.pointer, self.op, self.value)
    }
}

/// Keeps the records whose field at a JSON pointer compares to a value.
///
/// ```
/// use databay_processors::{Op, Select};
/// use serde_json::json;
///
/// let select = Select::new("/amount", Op::Gt, Some(json!(10))).unwrap();
/// assert!(select.matches(&json!({"amount": 12.5})));
/// assert!(!select.matches(&json!({"amount": "12.5"})));
/// ```
#[derive(Debug, Clone)]
pub struct Select {
    pointer: Pointer,
    op: Op,
    operand: Operand,
}

/// The value, classified once so that a record costs one comparison.
#[derive(Debug, Clone)]
enum Operand {
    None,
    Num(Num),
    Str(String),
    Other(Value),
}

impl Select {
    /// A `select` keeping records whose field at `pointer` compares to
    /// `value` by `op`. `value` is required except for [`Op::Exists`] and
    /// [`Op::Missing`], which refuse one; ordering ops need a number or a
    /// string.
    pub fn new(pointer: &str, op: Op, value: Option<Value>) -> Result<Self, OptionError> {
        let pointer =
            Pointer::parse(pointer).map_err(|e| OptionError::new("pointer", e.to_string()))?;
        let operand = match (op.takes_value(), value) {
            (false, None) => Operand::None,
            (false, Some(_)) => {
                return Err(OptionError::new(
                    "value",
                    format!(
                        "not used with op = \"{op}\", which only checks whether the field is present; remove it"
                    ),
                ));
            }
            (true, None) => {
                return Err(OptionError::new(
                    "value",
                    format!("required with op = \"{op}\""),
                ));
            }
            (true, Some(Value::Number(n))) => Operand::Num(Num::new(&n)),
            (true, Some(Value::String(s))) => Operand::Str(s),
            (true, Some(other)) if op.is_ordering() => {
                return Err(OptionError::new(
                    "value",
                    format!(
                        "op = \"{op}\" compares numbers or strings, not {}",
                        kind(&other)
                    ),
                ));
            }
            (true, Some(other)) => Operand::Other(other),
        };
        Ok(Select {
            pointer,
            op,
            operand,
        })
    }

    /// The pointer to the compared field.
    pub fn pointer(&self) -> &Pointer {
        &self.pointer
    }

    /// The comparison.
    pub fn op(&self) -> Op {
        self.op
    }

    /// Whether a record with this payload is kept.
    pub fn matches(&self, payload: &Value) -> bool {
        let field = self.pointer.get(payload);
        match self.op {
            Op::Exists => field.is_some(),
            Op::Missing => field.is_none(),
            Op::Eq => self.operand.equals(field.unwrap_or(&Value::Null)),
            Op::Ne => !self.operand.equals(field.unwrap_or(&Value::Null)),
            Op::Gt => self.order(field).is_some_and(Ordering::is_gt),
            Op::Ge => self.order(field).is_some_and(Ordering::is_ge),
            Op::Lt => self.order(field).is_some_and(Ordering::is_lt),
            Op::Le => self.order(field).is_some_and(Ordering::is_le),
            Op::Contains => field.is_some_and(|f| self.operand.contained_in(f)),
        }
    }

    /// The field compared to the value; `None` when either is missing or
    /// their types differ.
    fn order(&self, field: Option<&Value>) -> Option<Ordering> {
        match (field?, &self.operand) {
            (Value::Number(n), Operand::Num(v)) => Num::new(n).compare(*v),
            (Value::String(s), Operand::Str(v)) => Some(s.as_str().cmp(v.as_str())),
            _ => None,
        }
    }
}

impl Operand {
    fn equals(&self, field: &Value) -> bool {
        match (field, self) {
            (Value::Number(n), Operand::Num(v)) => Num::new(n).compare(*v) == Some(Ordering::Equal),
            (Value::String(s), Operand::Str(v)) => s == v,
            (field, Operand::Other(v)) => value::loose_eq(field, v),
            _ => false,
        }
    }

    fn contained_in(&self, field: &Value) -> bool {
        match (field, self) {
            (Value::String(s), Operand::Str(v)) => s.contains(v.as_str()),
            (Value::Object(map), Operand::Str(v)) => map.contains_key(v),
            (Value::Array(items), _) => items.iter().any(|item| self.equals(item)),
            _ => false,
        }
    }
}

impl Stateless for Select {
    fn process_part(
        &self,
        mut records: Vec<Record>,
        _cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        records.retain(|r| self.matches(&r.payload));
        Ok(records)
    }
}

databay_core::stateless_processor!(Select);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_and_readme_match_the_options() {
        crate::tests::assert_documented(
            databay_component::Kind::Processor,
            "select",
            include_str!("README.md"),
        );
    }
    use crate::tests::{build_processor, payloads, processor_error, run, sample_options};
    use serde_json::json;

    fn opts(toml: &str) -> Result<Select, String> {
        let o: SelectOptions = toml::from_str(toml).map_err(|e| e.to_string())?;
        o.build().map_err(|e| e.to_string())
    }

    fn keeps(toml: &str, inputs: &[Value]) -> Vec<Value> {
        let s = opts(toml).unwrap();
        inputs.iter().filter(|v| s.matches(v)).cloned().collect()
    }

    #[test]
    fn sample_is_valid() {
        let o: SelectOptions = sample_options(SAMPLE);
        assert_eq!(o.op, Op::Gt);
        assert_eq!(o.value, Some(json!(10)));
        o.build().unwrap();
    }

    #[test]
    fn op_defaults_to_eq() {
        let got = keeps(
            "pointer = \"/user\"\nvalue = \"u1\"",
            &[json!({"user": "u1"}), json!({"user": "u2"}), json!({})],
        );
        assert_eq!(got, vec![json!({"user": "u1"})]);
    }

    #[test]
    fn numbers_compare_numerically_across_representations() {
        let inputs = [
            json!({"a": 10}),
            json!({"a": 10.0}),
            json!({"a": 10.5}),
            json!({"a": -3}),
            json!({"a": u64::MAX}),
            json!({"a": "11"}),
            json!({"a": null}),
            json!({}),
        ];
        assert_eq!(
            keeps("pointer = \"/a\"\nop = \"gt\"\nvalue = 10", &inputs),
            vec![json!({"a": 10.5}), json!({"a": u64::MAX})]
        );
        assert_eq!(
            keeps("pointer = \"/a\"\nop = \"ge\"\nvalue = 10.0", &inputs),
            vec![
                json!({"a": 10}),
                json!({"a": 10.0}),
                json!({"a": 10.5}),
                json!({"a": u64::MAX})
            ]
        );
        assert_eq!(
            keeps("pointer = \"/a\"\nop = \"lt\"\nvalue = 10", &inputs),
            vec![json!({"a": -3})]
        );
        assert_eq!(
            keeps("pointer = \"/a\"\nop = \"le\"\nvalue = 10", &inputs),
            vec![json!({"a": 10}), json!({"a": 10.0}), json!({"a": -3})]
        );
        assert_eq!(
            keeps("pointer = \"/a\"\nop = \"eq\"\nvalue = 10", &inputs),
            vec![json!({"a": 10}), json!({"a": 10.0})]
        );
        assert_eq!(
            keeps("pointer = \"/a\"\nop = \"ne\"\nvalue = 10", &inputs).len(),
            6
        );
    }

    #[test]
    fn strings_compare_lexicographically() {
        let inputs = [
            json!({"ts": "2026-01-01"}),
            json!({"ts": "2025-12-31"}),
            json!({"ts": 5}),
        ];
        assert_eq!(
            keeps("pointer = \"/ts\"\nop = \"ge\"\nvalue = \"2026\"", &inputs),
            vec![json!({"ts": "2026-01-01"})]
        );
        assert_eq!(
            keeps("pointer = \"/ts\"\nop = \"lt\"\nvalue = \"2026\"", &inputs),
            vec![json!({"ts": "2025-12-31"})]
        );
    }

    #[test]
    fn eq_and_ne_treat_missing_as_null_and_mismatched_types_as_unequal() {
        let inputs = [json!({"a": true}), json!({"a": "true"}), json!({})];
        assert_eq!(
            keeps("pointer = \"/a\"\nvalue = true", &inputs),
            vec![json!({"a": true})]
        );
        assert_eq!(
            keeps("pointer = \"/a\"\nop = \"ne\"\nvalue = true", &inputs),
            vec![json!({"a": "true"}), json!({})]
        );
        let nested = [json!({"a": {"b": [1, 2]}}), json!({"a": {"b": [2, 1]}})];
        assert_eq!(
            keeps("pointer = \"/a\"\nvalue = { b = [1, 2] }", &nested),
            vec![json!({"a": {"b": [1, 2]}})]
        );
    }

    #[test]
    fn exists_and_missing() {
        let inputs = [
            json!({"a": null}),
            json!({"a": 1}),
            json!({"b": 1}),
            json!(3),
        ];
        assert_eq!(
            keeps("pointer = \"/a\"\nop = \"exists\"", &inputs),
            vec![json!({"a": null}), json!({"a": 1})]
        );
        assert_eq!(
            keeps("pointer = \"/a\"\nop = \"missing\"", &inputs),
            vec![json!({"b": 1}), json!(3)]
        );
    }

    #[test]
    fn contains_strings_arrays_and_keys() {
        let inputs = [
            json!({"a": "hello world"}),
            json!({"a": ["x", "world"]}),
            json!({"a": {"world": 1}}),
            json!({"a": "bye"}),
            json!({"a": 5}),
        ];
        assert_eq!(
            keeps(
                "pointer = \"/a\"\nop = \"contains\"\nvalue = \"world\"",
                &inputs
            )
            .len(),
            3
        );
        let nums = [json!({"tags": [1, 2.0]}), json!({"tags": [3]})];
        assert_eq!(
            keeps("pointer = \"/tags\"\nop = \"contains\"\nvalue = 2", &nums),
            vec![json!({"tags": [1, 2.0]})]
        );
    }

    #[test]
    fn root_pointer_and_array_indices() {
        assert_eq!(
            keeps(
                "pointer = \"\"\nop = \"gt\"\nvalue = 1",
                &[json!(1), json!(2)]
            ),
            vec![json!(2)]
        );
        assert_eq!(
            keeps(
                "pointer = \"/l/1\"\nvalue = \"b\"",
                &[json!({"l": ["a", "b"]}), json!({"l": ["b"]})]
            ),
            vec![json!({"l": ["a", "b"]})]
        );
    }

    #[test]
    fn toml_datetime_values_compare_as_strings() {
        let inputs = [
            json!({"ts": "2026-01-01T00:00:00Z"}),
            json!({"ts": "2025-01-01T00:00:00Z"}),
        ];
        assert_eq!(
            keeps(
                "pointer = \"/ts\"\nop = \"ge\"\nvalue = 2026-01-01T00:00:00Z",
                &inputs
            ),
            vec![json!({"ts": "2026-01-01T00:00:00Z"})]
        );
    }

    #[test]
    fn build_errors_name_the_option() {
        let e = opts("pointer = \"amount\"\nvalue = 1").unwrap_err();
        assert!(
            e.starts_with("option `pointer`: invalid JSON pointer \"amount\""),
            "{e}"
        );
        let e = opts("pointer = \"/a\"\nop = \"gt\"").unwrap_err();
        assert_eq!(e, "option `value`: required with op = \"gt\"");
        let e = opts("pointer = \"/a\"\nop = \"exists\"\nvalue = 1").unwrap_err();
        assert!(
            e.starts_with("option `value`: not used with op = \"exists\""),
            "{e}"
        );
        let e = opts("pointer = \"/a\"\nop = \"gt\"\nvalue = [1]").unwrap_err();
        assert_eq!(
            e,
            "option `value`: op = \"gt\" compares numbers or strings, not an array"
        );
        let e = opts("pointer = \"/a\"\nop = \"gtt\"\nvalue = 1").unwrap_err();
        assert!(
            e.contains("unknown variant `gtt`") && e.contains("`contains`"),
            "{e}"
        );
        let e = opts("pointer = \"/a\"\nvalue = 1\nvalu = 2").unwrap_err();
        assert!(e.contains("unknown field `valu`"), "{e}");
        let e = opts("value = 1").unwrap_err();
        assert!(e.contains("missing field `pointer`"), "{e}");
    }

    #[tokio::test]
    async fn filters_records_in_place_keeping_metadata() {
        let mut select = Select::new("/amount", Op::Gt, Some(json!(10))).unwrap();
        let records = vec![
            Record::new(json!({"amount": 12.5})).with_meta("k", 1),
            Record::new(json!({"amount": 1})),
            Record::new(json!({"amount": 11})),
        ];
        let out = run(&mut select, records).await.unwrap();
        assert_eq!(
            payloads(&out),
            vec![json!({"amount": 12.5}), json!({"amount": 11})]
        );
        assert_eq!(out[0].meta("k"), Some(&json!(1)));
    }

    #[tokio::test]
    async fn builds_through_the_registry() {
        let mut p = build_processor("select", "pointer = \"/a\"\nop = \"lt\"\nvalue = 2").unwrap();
        let out = run(
            &mut p,
            vec![Record::new(json!({"a": 1})), Record::new(json!({"a": 2}))],
        )
        .await;
        assert_eq!(payloads(&out.unwrap()), vec![json!({"a": 1})]);
        let e = processor_error("select", "pointer = \"/a\"\nop = \"lt\"");
        assert!(e.contains("option `value`"), "{e}");
        let e = processor_error("select", "pointer = \"/a\"\nvalue = 1\nextra = 1");
        assert!(e.contains("unknown field `extra`"), "{e}");
    }
}
