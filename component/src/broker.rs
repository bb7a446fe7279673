//! What the message-broker connectors (Redis, NATS, MQTT, AMQP) share:
//! the payload [`Format`] of a message, and the [`Template`] an outlet
//! fills from each record to name its key, subject, topic or routing key.
//!
//! ```
//! use databay_component::broker::{Format, Template};
//! use databay_core::{Record, Update};
//! use serde_json::json;
//!
//! let topic = Template::parse("orders.{/region}.{meta:source}").unwrap();
//! let record = Record::new(json!({"region": "eu", "id": 7})).with_meta("source", "web");
//! assert_eq!(topic.render(&record).unwrap(), "orders.eu.web");
//!
//! assert_eq!(Format::Json.decode(br#"{"id": 7}"#).unwrap(), json!({"id": 7}));
//! assert!(Format::Json.decode(b"not json").unwrap_err().contains("line 1"));
//! assert_eq!(Format::Text.decode(b"hello").unwrap(), json!("hello"));
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::PathBuf;

use databay_core::{Record, Update};
use serde::Deserialize;
use serde_json::Value;

use crate::OptionError;

/// `tls = { ca_file = "...", cert_file = "...", key_file = "..." }`: the
/// connection must use TLS (rustls with ring). What `ca_file` means is
/// the connector's to say (added to the system's roots, or instead of
/// them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// A PEM file of certificates trusted in addition to the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate (with `key_file`).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl TlsOptions {
    /// Checks that the files are there and `cert_file` comes with
    /// `key_file`; each error names its option (`tls.ca_file`).
    pub fn check(&self) -> Result<(), OptionError> {
        for (name, path) in [
            ("tls.ca_file", &self.ca_file),
            ("tls.cert_file", &self.cert_file),
            ("tls.key_file", &self.key_file),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                return Err(OptionError::new(
                    name,
                    format!("`{}` is not a readable file", path.display()),
                ));
            }
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(OptionError::new(
                "tls.cert_file",
                "`cert_file` and `key_file` go together",
            ));
        }
        Ok(())
    }

    /// The same files, relative ones taken from the config's directory.
    pub fn resolve(self, cx: &crate::BuildContext) -> Result<TlsOptions, OptionError> {
        let resolve = |name: &str, p: Option<PathBuf>| p.map(|p| cx.path(name, &p)).transpose();
        Ok(TlsOptions {
            ca_file: resolve("tls.ca_file", self.ca_file)?,
            cert_file: resolve("tls.cert_file", self.cert_file)?,
            key_file: resolve("tls.key_file", self.key_file)?,
        })
    }
}

/// How a message's bytes map to a record's payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Format {
    /// The message is one JSON value; an outlet writes the payload as JSON.
    #[default]
    Json,
    /// The message is UTF-8 text, the payload a string; an outlet writes a
    /// string payload as its text and any other payload as JSON.
    Text,
}

impl Format {
    /// The payload a message carries, or what is wrong with it (the JSON
    /// parser's line and column, or where the UTF-8 breaks); the caller
    /// adds which message it was.
    pub fn decode(self, bytes: &[u8]) -> Result<Value, String> {
        match self {
            Format::Json => serde_json::from_slice(bytes).map_err(|e| {
                format!(
                    "not JSON ({e}; {} bytes; `format = \"text\"` takes any text)",
                    bytes.len()
                )
            }),
            Format::Text => match std::str::from_utf8(bytes) {
                Ok(text) => Ok(Value::String(text.to_owned())),
                Err(e) => Err(format!("not UTF-8 text ({e})")),
            },
        }
    }

    /// The bytes of the message carrying `payload`.
    pub fn encode(self, payload: &Value) -> Vec<u8> {
        match (self, payload) {
            (Format::Text, Value::String(text)) => text.as_bytes().to_vec(),
            // Serializing a `Value` cannot fail (its map keys are strings).
            _ => serde_json::to_vec(payload).unwrap_or_default(),
        }
    }
}

/// What an inlet took from a broker for each pull not yet committed or
/// rolled back, keyed by the pull's [`Update`] (the contract of
/// [`Inlet::commit`](databay_core::Inlet::commit)).
///
/// A link settles each pull before its next one, so a new pull from a
/// link while an older one of the same link is still here means that
/// transfer was cut short: [`Unsettled::insert`] hands the leftovers back
/// to be released (never acknowledged). Links are told apart by their
/// tags (the link's name unless it sets others): two links sharing one
/// instance with the same tags release each other's pulls, which costs
/// redeliveries, never a lost message.
///
/// ```
/// use databay_component::broker::Unsettled;
/// use databay_core::Update;
///
/// let mut unsettled = Unsettled::default();
/// assert!(unsettled.insert(&Update::new(["a"], 0), vec![1, 2]).is_empty());
/// assert!(unsettled.insert(&Update::new(["b"], 0), vec![3]).is_empty());
/// // Link `a` pulls again without settling 0: its leftovers come back.
/// assert_eq!(unsettled.insert(&Update::new(["a"], 1), vec![4]), [vec![1, 2]]);
/// assert_eq!(unsettled.take(&Update::new(["b"], 0)), Some(vec![3]));
/// assert_eq!(unsettled.drain(), [vec![4]]);
/// ```
#[derive(Debug)]
pub struct Unsettled<T> {
    pulls: Vec<(Vec<String>, u64, T)>,
}

impl<T> Default for Unsettled<T> {
    fn default() -> Self {
        Unsettled { pulls: Vec::new() }
    }
}

impl<T> Unsettled<T> {
    /// Keeps what the pull for `update` took; returns what earlier pulls
    /// of the same link left unsettled.
    pub fn insert(&mut self, update: &Update, taken: T) -> Vec<T> {
        let mut leftovers = Vec::new();
        let mut i = 0;
        while i < self.pulls.len() {
            if self.pulls[i].0 == update.tags() {
                leftovers.push(self.pulls.remove(i).2);
            } else {
                i += 1;
            }
        }
        self.pulls
            .push((update.tags().to_vec(), update.index(), taken));
        leftovers
    }

    /// What the pull for `update` took, if it is still unsettled.
    pub fn take(&mut self, update: &Update) -> Option<T> {
        let i = self
            .pulls
            .iter()
            .position(|(tags, index, _)| tags == update.tags() && *index == update.index())?;
        Some(self.pulls.remove(i).2)
    }

    /// Everything unsettled (on shutdown, to release it).
    pub fn drain(&mut self) -> Vec<T> {
        self.pulls.drain(..).map(|(_, _, t)| t).collect()
    }

    /// Every unsettled pull's take.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.pulls.iter().map(|(_, _, t)| t)
    }

    /// Whether nothing is unsettled.
    pub fn is_empty(&self) -> bool {
        self.pulls.is_empty()
    }
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A JSON pointer into the payload.
    Pointer(String),
    /// A metadata key.
    Meta(String),
}

/// A name filled from each record: text with `{/json/pointer}` (a payload
/// field) and `{meta:key}` (a metadata entry) placeholders; `{{` and `}}`
/// are literal braces. A string value goes in as it is, a number or
/// boolean as its JSON text; a missing, null, array or object value is an
/// error naming the record and the placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `source`; the error says what is wrong (for an
    /// [`OptionError`](crate::OptionError) about the option).
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, c)| *c == '{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().is_some_and(|(_, c)| *c == '}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => {
                    return Err(format!(
                        "`}}` at byte {at} closes nothing (write `}}}}` for a brace)"
                    ));
                }
                '{' => {
                    let rest = &source[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!("`{{` at byte {at} is not closed"));
                    };
                    let inside = &rest[..end];
                    let part = if let Some(key) = inside.strip_prefix("meta:") {
                        if key.is_empty() {
                            return Err("`{meta:}` names no metadata key".into());
                        }
                        Part::Meta(key.to_owned())
                    } else if inside.starts_with('/') {
                        Part::Pointer(inside.to_owned())
                    } else {
                        return Err(format!(
                            "`{{{inside}}}` is neither a JSON pointer (`{{/field}}`) nor `{{meta:key}}`"
                        ));
                    };
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(part);
                    for _ in 0..=inside.chars().count() {
                        chars.next();
                    }
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if parts.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Template {
            source: source.to_owned(),
            parts,
        })
    }

    /// The name itself when the template has no placeholder.
    pub fn fixed(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Text(text)] => Some(text),
            _ => None,
        }
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The name for `record`, or what is missing (the caller adds which
    /// record it was).
    pub fn render<'a>(&'a self, record: &Record) -> Result<Cow<'a, str>, String> {
        if let Some(fixed) = self.fixed() {
            return Ok(Cow::Borrowed(fixed));
        }
        let mut out = String::new();
        for part in &self.parts {
            let (value, shown) = match part {
                Part::Text(text) => {
                    out.push_str(text);
                    continue;
                }
                Part::Pointer(pointer) => (record.payload.pointer(pointer), pointer.as_str()),
                Part::Meta(key) => (record.meta(key), key.as_str()),
            };
            let placeholder = match part {
                Part::Meta(_) => format!("{{meta:{shown}}}"),
                _ => format!("{{{shown}}}"),
            };
            match value {
                Some(Value::String(s)) => out.push_str(s),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                    let _ = write!(out, "{v}");
                }
                None => return Err(format!("`{}`: {placeholder} is missing", self.source)),
                Some(other) => {
                    let kind = match other {
                        Value::Null => "null",
                        Value::Array(_) => "an array",
                        _ => "an object",
                    };
                    return Err(format!(
                        "`{}`: {placeholder} is {kind}, not a string or number",
                        self.source
                    ));
                }
            }
        }
        Ok(Cow::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_fill_from_payload_and_metadata() {
        let t = Template::parse("a.{/n}.{/b}.{{x}}.{meta:m}").unwrap();
        let r = Record::new(json!({"n": 3, "b": true})).with_meta("m", "z");
        assert_eq!(t.render(&r).unwrap(), "a.3.true.{x}.z");
        assert_eq!(Template::parse("plain").unwrap().fixed(), Some("plain"));
        assert_eq!(Template::parse("a{{b").unwrap().fixed(), Some("a{b"));
    }

    #[test]
    fn a_missing_or_unfit_value_is_an_error_naming_the_placeholder() {
        let t = Template::parse("k:{/id}").unwrap();
        let e = t.render(&Record::new(json!({}))).unwrap_err();
        assert_eq!(e, "`k:{/id}`: {/id} is missing");
        let e = t.render(&Record::new(json!({"id": [1]}))).unwrap_err();
        assert!(e.contains("an array"), "{e}");
        let e = Template::parse("k:{meta:src}")
            .unwrap()
            .render(&Record::new(json!(1)))
            .unwrap_err();
        assert!(e.contains("{meta:src} is missing"), "{e}");
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        for (source, want) in [
            ("", "empty"),
            ("a{/b", "not closed"),
            ("a}", "closes nothing"),
            ("{id}", "neither a JSON pointer"),
            ("{meta:}", "no metadata key"),
        ] {
            let e = Template::parse(source).unwrap_err();
            assert!(e.contains(want), "{source}: {e}");
        }
    }

    #[test]
    fn formats_encode_and_decode() {
        assert_eq!(Format::Json.encode(&json!({"a": 1})), br#"{"a":1}"#);
        assert_eq!(Format::Json.encode(&json!("s")), br#""s""#);
        assert_eq!(Format::Text.encode(&json!("s")), b"s");
        assert_eq!(Format::Text.encode(&json!(1)), b"1");
        assert!(Format::Text.decode(&[0xff]).unwrap_err().contains("UTF-8"));
    }
}
