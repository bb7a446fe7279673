//! The options of the `join` processor.

use databay_component::OptionError;
use databay_core::Processor;
use databay_core::stateful::{EmitMode, InsertMode, Join, join};
use serde::Deserialize;

use crate::keyed::{EofOption, KeySource, Shape, Shaped, default_key_field};
use crate::pointer::Pointer;

/// Options of the `join` processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinOptions {
    /// JSON pointer to the key.
    #[serde(default)]
    pub key: Option<String>,
    /// jq expression giving the key (needs the `jq` feature).
    #[serde(default)]
    pub key_expr: Option<String>,
    /// The sides, in output order: inlet names, or values of `side`.
    pub sides: Vec<String>,
    /// JSON pointer to a record's side; unset: the producing inlet's name.
    #[serde(default)]
    pub side: Option<String>,
    /// How a side's values are kept: `first`, `last` or `product`.
    #[serde(default)]
    pub insert_mode: InsertMode,
    /// When rows are emitted: `complete`, `final` or `running`.
    #[serde(default)]
    pub emit_mode: EmitMode,
    /// When the stream ends (for `emit_mode = "final"`): `link` or `transfer`.
    #[serde(default)]
    pub eof: EofOption,
    /// The output field that holds the key.
    #[serde(default = "default_key_field")]
    pub key_field: String,
}

impl JoinOptions {
    /// Builds the processor.
    pub fn build(self) -> Result<Box<dyn Processor>, OptionError> {
        let key = KeySource::from_options(self.key.as_deref(), self.key_expr.as_deref())?;
        if self.sides.len() < 2 {
            return Err(OptionError::new(
                "sides",
                "name at least two sides, as in `sides = [\"users\", \"orders\"]`",
            ));
        }
        for (i, side) in self.sides.iter().enumerate() {
            if self.sides[..i].contains(side) {
                return Err(OptionError::new(
                    "sides",
                    format!("`{side}` is named twice"),
                ));
            }
        }
        let shape = Shape {
            key_field: self.key_field,
            ..Shape::default()
        };
        let names: Vec<&str> = self.sides.iter().map(String::as_str).collect();
        shape.check(&names, "a side")?;
        let mut spec = Join::new(self.sides)
            .insert_mode(self.insert_mode)
            .emit_mode(self.emit_mode);
        if let Some(side) = self.side {
            let pointer = Pointer::parse(&side).map_err(OptionError::of("side"))?;
            spec = spec.side_by(move |r| {
                pointer.get(&r.payload).and_then(|v| match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                })
            });
        }
        let inner = join(key, spec).eof(self.eof.into());
        Ok(Box::new(Shaped { inner, shape }))
    }
}
