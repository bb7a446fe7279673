//! The options of the `collect` processor.

use std::time::Duration;

use databay_component::{OptionError, duration};
use databay_core::Processor;
use databay_core::stateful::collect;
use serde::Deserialize;

use crate::keyed::{EofOption, KeySource, Shape, Shaped, default_key_field};

/// Options of the `collect` processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectOptions {
    /// JSON pointer to the key.
    #[serde(default)]
    pub key: Option<String>,
    /// jq expression giving the key (needs the `jq` feature).
    #[serde(default)]
    pub key_expr: Option<String>,
    /// Emit a key's list this long after its first record.
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    /// Emit a key's list once it holds this many records.
    pub max_size: usize,
    /// When the stream ends (every list is emitted): `link` or `transfer`.
    #[serde(default)]
    pub eof: EofOption,
    /// The output field that holds the key.
    #[serde(default = "default_key_field")]
    pub key_field: String,
    /// The output field that holds the list.
    #[serde(default = "default_items_field")]
    pub items_field: String,
}

fn default_items_field() -> String {
    "items".to_owned()
}

impl CollectOptions {
    /// Builds the processor.
    pub fn build(self) -> Result<Box<dyn Processor>, OptionError> {
        let key = KeySource::from_options(self.key.as_deref(), self.key_expr.as_deref())?;
        if self.max_size == 0 {
            return Err(OptionError::new("max_size", "must be at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(OptionError::new("timeout", "must be longer than 0s"));
        }
        let shape = Shape {
            key_field: self.key_field,
            value_field: Some(self.items_field),
            window_fields: None,
            late_route: None,
        };
        shape.check(&[], "")?;
        let inner = collect(key, self.timeout, self.max_size).eof(self.eof.into());
        Ok(Box::new(Shaped { inner, shape }))
    }
}
