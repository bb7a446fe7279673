//! Records: the unit of data a link moves, and their metadata.
//!
//! Metadata is layered so that a record costs nothing beyond its payload
//! until someone gives it metadata of its own: the producing inlet's name
//! and global metadata live in one shared [`Origin`], and a record allocates
//! its local map only when it has local entries (copy-on-write).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};
use serde_json::Value;

/// A metadata map: string keys, JSON values.
pub type Metadata = serde_json::Map<String, Value>;

/// The metadata key naming the inlet that produced a record.
pub const INLET_KEY: &str = "__inlet__";

/// What every record of one inlet shares: the inlet's name and its global
/// metadata. Built once per inlet and attached to records by reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    inlet: Value,
    global: Metadata,
}

impl Origin {
    /// An origin for the inlet called `inlet`, carrying `global` metadata.
    pub fn new(inlet: impl Into<String>, global: Metadata) -> Self {
        Origin {
            inlet: Value::String(inlet.into()),
            global,
        }
    }

    /// The producing inlet's name.
    pub fn inlet(&self) -> &str {
        self.inlet.as_str().unwrap_or_default()
    }

    /// The inlet's global metadata.
    pub fn global(&self) -> &Metadata {
        &self.global
    }
}

/// One piece of data in transit: a JSON payload plus metadata.
///
/// Metadata lookups see, in order of precedence: the record's local
/// metadata, then [`INLET_KEY`], then the producing inlet's global metadata.
///
/// ```
/// use databay_core::Record;
/// use serde_json::json;
///
/// let record = Record::new(json!({"id": 1})).with_meta("animal", "cat");
/// assert_eq!(record.metadata().get("animal"), Some(&json!("cat")));
/// ```
#[derive(Clone, Default)]
pub struct Record {
    /// The data itself.
    pub payload: Value,
    origin: Option<Arc<Origin>>,
    local: Option<Box<Metadata>>,
    /// Set once a shared key was removed: `local` then holds the whole map
    /// and the origin is no longer consulted.
    detached: bool,
}

impl Record {
    /// A record with `payload` and no metadata.
    pub fn new(payload: impl Into<Value>) -> Self {
        Record {
            payload: payload.into(),
            ..Record::default()
        }
    }

    /// A record with `payload` and local `metadata`.
    pub fn with_metadata(payload: impl Into<Value>, metadata: Metadata) -> Self {
        Record {
            payload: payload.into(),
            local: (!metadata.is_empty()).then(|| Box::new(metadata)),
            ..Record::default()
        }
    }

    /// Builder form of [`Record::set_meta`].
    pub fn with_meta(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set_meta(key, value);
        self
    }

    /// Attaches the shared origin of the inlet that produced this record.
    /// Local entries keep precedence over the origin's global metadata.
    pub fn set_origin(&mut self, origin: Arc<Origin>) {
        // The framework names the producing inlet, as Databay's
        // `new_record` does: an inlet cannot forge `__inlet__` with a local
        // entry (joins and routing key on it).
        if self.detached {
            // The record was given a complete map of its own: keep it, but
            // name the producing inlet.
            if let Some(local) = self.local.as_mut() {
                local.insert(INLET_KEY.to_owned(), origin.inlet.clone());
            }
            return;
        }
        if let Some(local) = self.local.as_mut() {
            local.remove(INLET_KEY);
            if local.is_empty() {
                self.local = None;
            }
        }
        self.origin = Some(origin);
    }

    /// The shared origin, if the record came from an inlet.
    pub fn origin(&self) -> Option<&Arc<Origin>> {
        self.origin.as_ref().filter(|_| !self.detached)
    }

    /// The name of the inlet that produced this record.
    pub fn inlet(&self) -> Option<&str> {
        self.metadata().get(INLET_KEY).and_then(Value::as_str)
    }

    /// A read-only view of the merged metadata.
    pub fn metadata(&self) -> MetadataRef<'_> {
        MetadataRef { record: self }
    }

    /// Shorthand for `self.metadata().get(key)`.
    pub fn meta(&self, key: &str) -> Option<&Value> {
        self.metadata().get(key)
    }

    /// Sets a local metadata entry; it overrides a global one of the same key.
    pub fn set_meta(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.local
            .get_or_insert_with(Default::default)
            .insert(key.into(), value.into());
    }

    /// Removes `key` from the record's metadata, whichever layer holds it,
    /// and returns its value.
    pub fn remove_meta(&mut self, key: &str) -> Option<Value> {
        let shared = !self.detached
            && self
                .origin
                .as_ref()
                .is_some_and(|o| key == INLET_KEY || o.global.contains_key(key));
        if shared {
            let merged = self.metadata().to_map();
            self.local = Some(Box::new(merged));
            self.detached = true;
        }
        let local = self.local.as_mut()?;
        let removed = local.remove(key);
        if local.is_empty() && !self.detached {
            self.local = None;
        }
        removed
    }

    /// Consumes the record, returning its payload.
    pub fn into_payload(self) -> Value {
        self.payload
    }
}

impl From<Value> for Record {
    fn from(payload: Value) -> Self {
        Record::new(payload)
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.payload == other.payload && self.metadata() == other.metadata()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("payload", &self.payload)
            .field("metadata", &self.metadata())
            .finish()
    }
}

impl fmt::Display for Record {
    /// `Record(payload=…, metadata={…})`, as Databay prints records.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Record(payload={}, metadata={{", self.payload)?;
        for (i, (k, v)) in self.metadata().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k:?}: {v}")?;
        }
        f.write_str("})")
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Record", 2)?;
        s.serialize_field("payload", &self.payload)?;
        s.serialize_field("metadata", &self.metadata())?;
        s.end()
    }
}

/// A borrowed, merged view of a record's metadata.
#[derive(Clone, Copy)]
pub struct MetadataRef<'a> {
    record: &'a Record,
}

impl<'a> MetadataRef<'a> {
    fn origin(&self) -> Option<&'a Origin> {
        if self.record.detached {
            None
        } else {
            self.record.origin.as_deref()
        }
    }

    fn local(&self) -> Option<&'a Metadata> {
        self.record.local.as_deref()
    }

    /// The value under `key`, local entries first.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        if let Some(v) = self.local().and_then(|l| l.get(key)) {
            return Some(v);
        }
        let origin = self.origin()?;
        if key == INLET_KEY {
            Some(&origin.inlet)
        } else {
            origin.global.get(key)
        }
    }

    /// Whether `key` is present in any layer.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Whether the record carries no metadata at all.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Every entry once, in key order, with local entries shadowing shared ones.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        let mut keys: BTreeSet<&'a str> = BTreeSet::new();
        if let Some(l) = self.local() {
            keys.extend(l.keys().map(String::as_str));
        }
        if let Some(o) = self.origin() {
            keys.insert(INLET_KEY);
            keys.extend(o.global.keys().map(String::as_str));
        }
        let this = *self;
        keys.into_iter()
            .filter_map(move |k| this.get(k).map(|v| (k, v)))
    }

    /// The merged metadata as an owned map.
    pub fn to_map(&self) -> Metadata {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect()
    }
}

impl PartialEq for MetadataRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl fmt::Debug for MetadataRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for MetadataRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origin() -> Arc<Origin> {
        let mut global = Metadata::new();
        global.insert("animal".into(), json!("cat"));
        global.insert("color".into(), json!("black"));
        Arc::new(Origin::new("RandomIntInlet", global))
    }

    #[test]
    fn local_metadata_overrides_global() {
        let mut r = Record::new(1).with_meta("animal", "parrot");
        r.set_origin(origin());
        assert_eq!(r.meta("animal"), Some(&json!("parrot")));
        assert_eq!(r.meta("color"), Some(&json!("black")));
        assert_eq!(r.inlet(), Some("RandomIntInlet"));
        assert_eq!(r.metadata().len(), 3);
    }

    #[test]
    fn records_of_one_inlet_share_their_origin() {
        let o = origin();
        let mut a = Record::new(1);
        let mut b = Record::new(2);
        a.set_origin(o.clone());
        b.set_origin(o.clone());
        assert!(Arc::ptr_eq(a.origin().unwrap(), b.origin().unwrap()));
        assert!(a.local.is_none(), "no local map without local entries");
    }

    #[test]
    fn removing_a_global_key_does_not_touch_other_records() {
        let o = origin();
        let mut a = Record::new(1);
        a.set_origin(o.clone());
        let mut b = a.clone();
        assert_eq!(b.remove_meta("animal"), Some(json!("cat")));
        assert_eq!(b.meta("animal"), None);
        assert_eq!(b.meta("color"), Some(&json!("black")));
        assert_eq!(b.inlet(), Some("RandomIntInlet"));
        assert_eq!(a.meta("animal"), Some(&json!("cat")));
        assert_eq!(o.global().get("animal"), Some(&json!("cat")));
    }

    #[test]
    fn removing_a_local_key_frees_the_local_map() {
        let mut r = Record::new(1).with_meta("k", 1);
        assert_eq!(r.remove_meta("k"), Some(json!(1)));
        assert!(r.local.is_none());
        assert_eq!(r.remove_meta("k"), None);
    }

    #[test]
    fn serializes_payload_and_merged_metadata() {
        let mut r = Record::new(json!({"a": 1})).with_meta("animal", "dog");
        r.set_origin(origin());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({"payload": {"a": 1}, "metadata": {
                "__inlet__": "RandomIntInlet", "animal": "dog", "color": "black"}})
        );
        assert_eq!(
            r.to_string(),
            r#"Record(payload={"a":1}, metadata={"__inlet__": "RandomIntInlet", "animal": "dog", "color": "black"})"#
        );
    }

    #[test]
    fn equality_compares_merged_view() {
        let mut a = Record::new(1);
        a.set_origin(origin());
        let b = Record::with_metadata(1, a.metadata().to_map());
        assert_eq!(a, b);
        assert_ne!(a, Record::new(1));
    }
}
