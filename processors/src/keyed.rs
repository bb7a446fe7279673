//! What the TOML faces of the stateful operators share: the key (a JSON
//! pointer or a jq expression), the `eof` option, and the shaping of the
//! records an operator emits into the payloads its README documents.

use std::borrow::Cow;
use std::time::Instant;

use databay_component::OptionError;
use databay_core::stateful::window::{LATE_META, WINDOW_CLOSE_META, WINDOW_OPEN_META};
use databay_core::stateful::{Eof, KEY_META, KeyFn, key_value};
use databay_core::{BoxError, Context, Gauge, Processor, Record, async_trait};
use serde::Deserialize;
use serde_json::{Map, Value};

#[cfg(feature = "jq")]
use crate::jq::JqProgram;
use crate::pointer::Pointer;

/// A record's key: the field at a JSON pointer, or the first output of a
/// jq expression, as key text (a string as it is, anything else as its
/// JSON text). Missing, `null` or no output is an error of that record.
pub enum KeySource {
    /// The field at a JSON pointer.
    Pointer(Pointer),
    /// The first output of a jq expression.
    #[cfg(feature = "jq")]
    Jq(JqProgram),
}

impl KeySource {
    /// The key of `key` (a pointer) or `key_expr` (a jq expression):
    /// exactly one must be set.
    pub fn from_options(key: Option<&str>, key_expr: Option<&str>) -> Result<Self, OptionError> {
        match (key, key_expr) {
            (Some(pointer), None) => Pointer::parse(pointer)
                .map(KeySource::Pointer)
                .map_err(OptionError::of("key")),
            #[cfg(feature = "jq")]
            (None, Some(expr)) => JqProgram::compile(expr)
                .map(KeySource::Jq)
                .map_err(OptionError::of("key_expr")),
            #[cfg(not(feature = "jq"))]
            (None, Some(_)) => Err(OptionError::new(
                "key_expr",
                "jq expressions need databay built with the `jq` feature; use `key`",
            )),
            (Some(_), Some(_)) => Err(OptionError::new(
                "key",
                "set either `key` or `key_expr`, not both",
            )),
            (None, None) => Err(OptionError::new(
                "key",
                "set `key` (a JSON pointer such as \"/user\") or `key_expr` (a jq expression) to say what to key by",
            )),
        }
    }
}

impl KeyFn for KeySource {
    fn key<'r>(&self, record: &'r Record) -> Result<Cow<'r, str>, String> {
        match self {
            KeySource::Pointer(p) => {
                key_value(p.get(&record.payload)).map_err(|e| format!("key `{p}`: {e}"))
            }
            #[cfg(feature = "jq")]
            KeySource::Jq(program) => {
                let value = program.first(&record.payload).map_err(|e| e.to_string())?;
                key_value(value.as_ref())
                    .map(|k| Cow::Owned(k.into_owned()))
                    .map_err(|e| format!("key `{}`: {e}", program.as_str()))
            }
        }
    }
}

/// The `eof` option: when the stream ends for a `*_final`-style operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EofOption {
    /// When the link's stream ends (every inlet exhausted, the link
    /// stopped or flushed, `databay once`).
    #[default]
    Link,
    /// At the end of every transfer.
    Transfer,
}

impl From<EofOption> for Eof {
    fn from(eof: EofOption) -> Eof {
        match eof {
            EofOption::Link => Eof::Link,
            EofOption::Transfer => Eof::Transfer,
        }
    }
}

/// How an operator's output records become payloads: the key (and window
/// bounds) go into fields of the payload; a payload that is not an object
/// goes into `value_field` first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shape {
    pub(crate) key_field: String,
    pub(crate) value_field: Option<String>,
    pub(crate) window_fields: Option<(String, String)>,
    /// The outlet late records are routed to (`__route__`), if any.
    pub(crate) late_route: Option<String>,
}

impl Shape {
    /// Checks that the fields the operator writes do not collide with
    /// `others` (aggregate names, join sides) or each other.
    pub(crate) fn check(&self, others: &[&str], what: &str) -> Result<(), OptionError> {
        let mut own: Vec<(&str, &str)> = vec![("key_field", self.key_field.as_str())];
        if let Some(v) = &self.value_field {
            own.push(("items_field", v));
        }
        if let Some((open, close)) = &self.window_fields {
            own.push(("window_open_field", open));
            own.push(("window_close_field", close));
        }
        for (i, (option, name)) in own.iter().enumerate() {
            if name.is_empty() {
                return Err(OptionError::new(*option, "must not be empty"));
            }
            if let Some((other, _)) = own[..i].iter().find(|(_, n)| n == name) {
                return Err(OptionError::new(
                    *option,
                    format!("`{name}` is already the name of `{other}`"),
                ));
            }
            if others.contains(name) {
                return Err(OptionError::new(
                    *option,
                    format!("`{name}` is also the name of {what}: pick another field name"),
                ));
            }
        }
        Ok(())
    }

    fn apply(&self, record: &mut Record) {
        if record.meta(LATE_META).is_some() {
            // Late records pass as they came, marked in their metadata,
            // and routed to their outlet if one is named.
            if let Some(to) = &self.late_route {
                record.set_meta(databay_core::routing::ROUTE_KEY, to.as_str());
            }
            return;
        }
        let payload = std::mem::take(&mut record.payload);
        let fields = match (payload, &self.value_field) {
            (Value::Object(map), None) => map,
            (other, field) => {
                let mut map = Map::new();
                map.insert(field.clone().unwrap_or_else(|| "value".into()), other);
                map
            }
        };
        // The key first, then the window's bounds, then the results, as
        // the READMEs show them (a CSV outlet takes its header from this).
        let mut object = Map::with_capacity(fields.len() + 3);
        if let Some(key) = record.meta(KEY_META) {
            object.insert(self.key_field.clone(), key.clone());
        }
        if let Some((open, close)) = &self.window_fields {
            for (field, meta) in [(open, WINDOW_OPEN_META), (close, WINDOW_CLOSE_META)] {
                if let Some(at) = record.meta(meta) {
                    object.insert(field.clone(), at.clone());
                }
            }
        }
        for (field, value) in fields {
            object.entry(field).or_insert(value);
        }
        record.payload = Value::Object(object);
    }
}

/// A stateful operator whose output is shaped by a [`Shape`].
pub(crate) struct Shaped<P> {
    pub(crate) inner: P,
    pub(crate) shape: Shape,
}

#[async_trait]
impl<P: Processor> Processor for Shaped<P> {
    async fn process(
        &mut self,
        records: Vec<Record>,
        cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        let mut out = self.inner.process(records, cx).await?;
        for record in &mut out {
            self.shape.apply(record);
        }
        Ok(out)
    }

    fn next_wakeup(&self) -> Option<Instant> {
        self.inner.next_wakeup()
    }

    fn snapshot(&self) -> Result<Option<Value>, BoxError> {
        self.inner.snapshot()
    }

    fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        self.inner.restore(state)
    }

    fn gauges(&self) -> Vec<Gauge> {
        self.inner.gauges()
    }
}

/// `default_*` functions for serde.
pub(crate) fn default_key_field() -> String {
    "key".to_owned()
}
