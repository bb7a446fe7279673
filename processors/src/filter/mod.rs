//! `filter`: keeps the records for which a jq expression is true.

use databay_component::{BuildContext, OptionError, Registry};
use databay_core::{BoxError, Context, Record, Stateless};

use crate::RecordError;
use crate::jq::{JqOptions, JqProgram};

const SUMMARY: &str = "Keeps records for which a jq expression is true.";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.processor(
        "filter",
        SUMMARY,
        SAMPLE,
        |o: JqOptions, _: &BuildContext| Ok(JqFilter::new(&o.expr)?),
    );
}

/// Keeps the records for which a jq expression is true.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use databay_processors::JqFilter;
/// use databay_core::{Context, Processor, Record, Trigger, Update};
/// use serde_json::json;
///
/// let mut filter = JqFilter::new(".amount > 10").unwrap();
/// let update = Update::new(["example"], 0);
/// let records = vec![Record::new(json!({"amount": 12})), Record::new(json!({"amount": 3}))];
/// let kept = filter.process(records, &Context::new(&update, Trigger::Transfer)).await.unwrap();
/// assert_eq!(kept.len(), 1);
/// # }
/// ```
#[derive(Debug)]
pub struct JqFilter {
    program: JqProgram,
}

impl JqFilter {
    /// A `filter` of `expr`; a compile error names the `expr` option.
    pub fn new(expr: &str) -> Result<Self, OptionError> {
        let program =
            JqProgram::compile(expr).map_err(|e| OptionError::new("expr", e.to_string()))?;
        Ok(Self::from_program(program))
    }

    /// A `filter` of an already compiled program.
    pub fn from_program(program: JqProgram) -> Self {
        JqFilter { program }
    }

    /// The program.
    pub fn program(&self) -> &JqProgram {
        &self.program
    }
}

impl Stateless for JqFilter {
    fn process_part(
        &self,
        mut records: Vec<Record>,
        _cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        let count = records.len();
        let mut index = 0;
        let mut failure = None;
        records.retain(|record| {
            let i = index;
            index += 1;
            if failure.is_some() {
                return false;
            }
            match self.program.test(&record.payload) {
                Ok(keep) => keep,
                Err(e) => {
                    failure = Some(RecordError::new(i, count, e));
                    false
                }
            }
        });
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(records),
        }
    }
}

databay_core::stateless_processor!(JqFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{payloads, run, sample_options};
    use serde_json::json;

    #[test]
    fn sample_is_valid() {
        let o: JqOptions = sample_options(SAMPLE);
        JqFilter::new(&o.expr).unwrap();
    }

    #[test]
    fn sample_and_readme_match_the_options() {
        crate::tests::assert_documented(
            databay_component::Kind::Processor,
            "filter",
            include_str!("README.md"),
        );
    }

    #[tokio::test]
    async fn filter_keeps_truthy_first_outputs() {
        let mut filter = JqFilter::new(".amount > 10").unwrap();
        let records = vec![
            Record::new(json!({"amount": 12.5})).with_meta("k", 1),
            Record::new(json!({"amount": 10})),
            Record::new(json!({"amount": 11})),
        ];
        let out = run(&mut filter, records).await.unwrap();
        assert_eq!(
            payloads(&out),
            vec![json!({"amount": 12.5}), json!({"amount": 11})]
        );
        assert_eq!(out[0].meta("k"), Some(&json!(1)));

        // First output decides; no output drops; null and false are falsy,
        // anything else (0, "", []) is truthy.
        let mut first = JqFilter::new(".[]").unwrap();
        let records = [
            json!([true, false]),
            json!([false, true]),
            json!([]),
            json!([null]),
            json!([0]),
            json!([""]),
        ]
        .into_iter()
        .map(Record::new)
        .collect();
        let out = run(&mut first, records).await.unwrap();
        assert_eq!(
            payloads(&out),
            vec![json!([true, false]), json!([0]), json!([""])]
        );
    }

    #[tokio::test]
    async fn filter_runtime_errors_name_expression_and_record() {
        let mut filter = JqFilter::new(".amount + 1 > 10").unwrap();
        let records = vec![
            Record::new(json!({"amount": 1})),
            Record::new(json!({"amount": "x"})),
        ];
        let e = run(&mut filter, records).await.unwrap_err().to_string();
        assert_eq!(
            e,
            "record 1 of 2: jq expression `.amount + 1 > 10` failed: cannot calculate \"x\" + 1"
        );
        let mut custom = JqFilter::new("error(\"bad record\")").unwrap();
        let e = run(&mut custom, vec![Record::new(json!(1))])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("failed: bad record") || e.contains("failed: \"bad record\""),
            "{e}"
        );
    }
}
