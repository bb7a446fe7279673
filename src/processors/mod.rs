//! Built-in processors and groupers usable from TOML.

use crate::Registry;

/// Registers the built-in processor and grouper types.
pub fn register(_registry: &mut Registry) {}
