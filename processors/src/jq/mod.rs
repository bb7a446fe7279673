//! jq expressions: the `filter` and `map` processors, and the compiled
//! [`JqProgram`] that `group_by` also uses for its keys.
//!
//! A program is compiled once, when the config loads, by jaq with jq's
//! standard library ([`jaq`]); its errors are jaq's. When the expression
//! keeps to the common subset ([`fast`]: paths, comparisons, arithmetic,
//! `select`, assignments, object construction, ...), it also runs without
//! jaq, directly on the payload's `serde_json` values, with the same
//! results; any input that path does not settle by itself (errors
//! included) runs through jaq.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

mod fast;
mod jaq;

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;

/// Options of the `filter` and `map` processors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JqOptions {
    /// The jq expression.
    pub expr: String,
}

/// A jq expression that failed to compile or to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JqError {
    /// The expression does not compile.
    #[error("cannot compile jq expression `{expr}`: {message}")]
    Compile {
        /// The expression.
        expr: String,
        /// jaq's complaints, with their positions.
        message: String,
    },
    /// The expression failed on an input.
    #[error("jq expression `{expr}` failed: {message}")]
    Run {
        /// The expression.
        expr: String,
        /// jaq's error.
        message: String,
    },
}

/// A compiled jq expression.
///
/// ```
/// use databay_processors::JqProgram;
/// use serde_json::json;
///
/// let jq = JqProgram::compile(".items[] | .id").unwrap();
/// let ids = jq.run(&json!({"items": [{"id": 1}, {"id": 2}]})).unwrap();
/// assert_eq!(ids, vec![json!(1), json!(2)]);
/// ```
pub struct JqProgram {
    expr: String,
    jaq: jaq::Jaq,
    fast: Option<fast::Program>,
}

impl JqProgram {
    /// Compiles `expr` with jq's standard library.
    pub fn compile(expr: &str) -> Result<Self, JqError> {
        let jaq = jaq::Jaq::compile(expr).map_err(|message| JqError::Compile {
            expr: expr.to_owned(),
            message,
        })?;
        Ok(JqProgram {
            expr: expr.to_owned(),
            jaq,
            fast: fast::Program::compile(expr),
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// Every output of the expression on `input`.
    pub fn run(&self, input: &Value) -> Result<Vec<Value>, JqError> {
        if let Some(Ok(out)) = self.fast.as_ref().map(|f| f.run(input)) {
            return Ok(out);
        }
        self.run_jaq(input)
    }

    /// The first output of the expression on `input`, if any.
    pub fn first(&self, input: &Value) -> Result<Option<Value>, JqError> {
        if let Some(Ok(first)) = self.fast.as_ref().map(|f| f.first(input)) {
            return Ok(first);
        }
        let input = jaq::to_val(input, 0).map_err(|m| self.run_error(m))?;
        match self.jaq.outputs(input).next() {
            None => Ok(None),
            Some(y) => y
                .and_then(|v| jaq::into_json(v, 0))
                .map(Some)
                .map_err(|m| self.run_error(m)),
        }
    }

    /// Whether the first output on `input` is truthy (neither `false` nor
    /// `null`); `false` when there is no output.
    pub fn test(&self, input: &Value) -> Result<bool, JqError> {
        use jaq_core::ValT as _;
        if let Some(Ok(truthy)) = self.fast.as_ref().map(|f| f.test(input)) {
            return Ok(truthy);
        }
        let input = jaq::to_val(input, 0).map_err(|m| self.run_error(m))?;
        match self.jaq.outputs(input).next() {
            None => Ok(false),
            Some(y) => y.map(|v| v.as_bool()).map_err(|m| self.run_error(m)),
        }
    }

    /// Appends every output on `payload` to `out`, consuming the payload.
    /// On an error, `out` holds the outputs before it.
    pub(crate) fn map_into(&self, mut payload: Value, out: &mut Vec<Value>) -> Result<(), JqError> {
        if let Some(fast) = &self.fast
            && fast.map(&mut payload, out).is_ok()
        {
            return Ok(());
        }
        let input = jaq::into_val(payload, 0).map_err(|m| self.run_error(m))?;
        for y in self.jaq.outputs(input) {
            out.push(
                y.and_then(|v| jaq::into_json(v, 0))
                    .map_err(|m| self.run_error(m))?,
            );
        }
        Ok(())
    }

    /// Every output through jaq, whatever the fast path would do.
    fn run_jaq(&self, input: &Value) -> Result<Vec<Value>, JqError> {
        let input = jaq::to_val(input, 0).map_err(|m| self.run_error(m))?;
        self.jaq
            .outputs(input)
            .map(|y| {
                y.and_then(|v| jaq::into_json(v, 0))
                    .map_err(|m| self.run_error(m))
            })
            .collect()
    }

    fn run_error(&self, message: String) -> JqError {
        JqError::Run {
            expr: self.expr.clone(),
            message,
        }
    }
}

impl fmt::Debug for JqProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JqProgram({:?})", self.expr)
    }
}
