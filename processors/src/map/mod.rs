//! `map`: replaces each payload by the outputs of a jq expression.

use databay_component::{BuildContext, OptionError, Registry};
use databay_core::{BoxError, Context, Record, Stateless};
use serde_json::Value;

use crate::RecordError;
use crate::jq::{JqError, JqOptions, JqProgram};

const SUMMARY: &str = "Replaces each payload by the outputs of a jq expression.";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.processor("map", SUMMARY, SAMPLE, |o: JqOptions, _: &BuildContext| {
        Ok(JqMap::new(&o.expr)?)
    });
}

/// Replaces each payload by the outputs of a jq expression: one record
/// per output, each with the original record's metadata.
#[derive(Debug)]
pub struct JqMap {
    program: JqProgram,
}

impl JqMap {
    /// A `map` of `expr`; a compile error names the `expr` option.
    pub fn new(expr: &str) -> Result<Self, OptionError> {
        let program =
            JqProgram::compile(expr).map_err(|e| OptionError::new("expr", e.to_string()))?;
        Ok(Self::from_program(program))
    }

    /// A `map` of an already compiled program.
    pub fn from_program(program: JqProgram) -> Self {
        JqMap { program }
    }

    /// The program.
    pub fn program(&self) -> &JqProgram {
        &self.program
    }

    /// Maps one record, appending the results to `out`; `outputs` is
    /// scratch space, reused from record to record.
    fn map_record(
        &self,
        mut record: Record,
        out: &mut Vec<Record>,
        outputs: &mut Vec<Value>,
    ) -> Result<(), JqError> {
        let payload = std::mem::take(&mut record.payload);
        outputs.clear();
        self.program.map_into(payload, outputs)?;
        // The payload is taken out first, so copying the record for an
        // output before the last copies only its metadata handle.
        let Some(last) = outputs.pop() else {
            return Ok(());
        };
        for y in outputs.drain(..) {
            let mut copy = record.clone();
            copy.payload = y;
            out.push(copy);
        }
        record.payload = last;
        out.push(record);
        Ok(())
    }
}

impl Stateless for JqMap {
    fn process_part(
        &self,
        records: Vec<Record>,
        _cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        let count = records.len();
        let mut out = Vec::with_capacity(count);
        let mut outputs = Vec::new();
        for (index, record) in records.into_iter().enumerate() {
            self.map_record(record, &mut out, &mut outputs)
                .map_err(|e| RecordError::new(index, count, e))?;
        }
        Ok(out)
    }
}

databay_core::stateless_processor!(JqMap);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{payloads, run, sample_options};
    use serde_json::json;

    #[test]
    fn sample_is_valid() {
        let o: JqOptions = sample_options(SAMPLE);
        JqMap::new(&o.expr).unwrap();
    }

    #[test]
    fn sample_and_readme_match_the_options() {
        crate::tests::assert_documented(
            databay_component::Kind::Processor,
            "map",
            include_str!("README.md"),
        );
    }

    #[tokio::test]
    async fn map_replaces_payloads_and_keeps_metadata() {
        let mut map = JqMap::new("select(.amount > 10) | .flag = true").unwrap();
        let records = vec![
            Record::new(json!({"id": 1, "amount": 12.5})).with_meta("k", "v"),
            Record::new(json!({"id": 2, "amount": 5})),
        ];
        let out = run(&mut map, records).await.unwrap();
        assert_eq!(
            payloads(&out),
            vec![json!({"id": 1, "amount": 12.5, "flag": true})]
        );
        assert_eq!(out[0].meta("k"), Some(&json!("v")));
    }

    #[tokio::test]
    async fn map_multiple_outputs_make_records_in_order() {
        let mut map = JqMap::new(".items[]").unwrap();
        let records = vec![
            Record::new(json!({"items": [1, 2, 3]})).with_meta("src", "a"),
            Record::new(json!({"items": []})),
            Record::new(json!({"items": ["x"]})).with_meta("src", "b"),
        ];
        let out = run(&mut map, records).await.unwrap();
        assert_eq!(
            payloads(&out),
            vec![json!(1), json!(2), json!(3), json!("x")]
        );
        let sources: Vec<_> = out.iter().map(|r| r.meta("src").cloned()).collect();
        assert_eq!(
            sources,
            vec![
                Some(json!("a")),
                Some(json!("a")),
                Some(json!("a")),
                Some(json!("b"))
            ]
        );
    }

    #[tokio::test]
    async fn map_runtime_errors_name_expression_and_record() {
        let mut map = JqMap::new(".user | ascii_downcase").unwrap();
        let records = vec![
            Record::new(json!({"user": "A"})),
            Record::new(json!({"user": 5})),
        ];
        let e = run(&mut map, records).await.unwrap_err().to_string();
        assert!(
            e.starts_with("record 1 of 2: jq expression `.user | ascii_downcase` failed: "),
            "{e}"
        );
    }
}
