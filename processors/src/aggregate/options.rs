//! The options of the `aggregate` processor.

use indexmap::IndexMap;

use databay_component::OptionError;
use databay_core::Processor;
use databay_core::stateful::Stateful;
use serde::Deserialize;

use crate::keyed::{EofOption, KeySource, Shape, Shaped, default_key_field};
use crate::reducers::{AggregateSpec, Aggregates, Aggregation};

/// Options of the `aggregate` processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateOptions {
    /// JSON pointer to the key.
    #[serde(default)]
    pub key: Option<String>,
    /// jq expression giving the key (needs the `jq` feature).
    #[serde(default)]
    pub key_expr: Option<String>,
    /// The aggregates: output field name to reducer and input.
    #[serde(default)]
    pub aggregates: IndexMap<String, AggregateSpec>,
    /// When the stream ends: `link` or `transfer`.
    #[serde(default)]
    pub eof: EofOption,
    /// The output field holding the key.
    #[serde(default = "default_key_field")]
    pub key_field: String,
}

impl AggregateOptions {
    /// Builds the processor.
    ///
    /// ```
    /// use databay_processors::AggregateOptions;
    ///
    /// let options: AggregateOptions = toml::from_str(
    ///     "key = \"/user\"\naggregates.total = { reducer = \"sum\", pointer = \"/amount\" }",
    /// )
    /// .unwrap();
    /// let processor = options.build().unwrap();
    /// assert!(processor.snapshot().unwrap().is_some());
    /// ```
    pub fn build(self) -> Result<Box<dyn Processor>, OptionError> {
        let key = KeySource::from_options(self.key.as_deref(), self.key_expr.as_deref())?;
        let aggregates = Aggregates::new(&self.aggregates)?;
        let shape = Shape {
            key_field: self.key_field,
            ..Shape::default()
        };
        shape.check(&aggregates.names(), "an aggregate")?;
        let inner = Stateful::new(key, Aggregation(aggregates)).eof(self.eof.into());
        Ok(Box::new(Shaped { inner, shape }))
    }
}
