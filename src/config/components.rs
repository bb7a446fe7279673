//! Builds a link's inlets, processors, groupers and outlets through the
//! registry: the common keys (`name`, `metadata`, `timeout`, an outlet's
//! own processors) are read here, the rest goes to the type's factory, and
//! a factory's complaint is reported at the option it names.

use std::ops::Range;

use databay_component::{BuildContext, BuildError, Kind, RawOptions};
use databay_core::Metadata;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::HumanDuration;
use super::error::{self, closest};
use super::loader::Loader;

/// A link-level processor, its name and the fingerprint of its options.
pub(super) struct BuiltProcessor {
    pub(super) name: String,
    pub(super) fingerprint: String,
    pub(super) processor: Box<dyn databay_core::Processor>,
}

/// A canonical rendering of a config value (after interpolation): two loads
/// of the same text give the same fingerprint, and so do two spellings of
/// one value (`0x10` and `16`, `'a'` and `"a"`). Written from the parsed
/// value as it is, without copying it.
pub(super) fn fingerprint(value: &DeValue<'_>) -> String {
    let mut out = String::with_capacity(128);
    render(value, &mut out);
    out
}

/// [`fingerprint`] of a table.
pub(super) fn fingerprint_table(table: &DeTable<'_>) -> String {
    let mut out = String::with_capacity(128);
    render_table(table, &mut out);
    out
}

fn render(value: &DeValue<'_>, out: &mut String) {
    use std::fmt::Write as _;
    // Writing into a String cannot fail.
    let _ = match value {
        DeValue::String(s) => write!(out, "{:?}", s.as_ref()),
        DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => write!(out, "{n}"),
            Err(_) => write!(out, "integer {i}"),
        },
        // Debug keeps a float a float (`1.0`, never `1`).
        DeValue::Float(f) => match f.as_str().parse::<f64>() {
            Ok(x) => write!(out, "{x:?}"),
            Err(_) => write!(out, "float {f}"),
        },
        DeValue::Boolean(b) => write!(out, "{b}"),
        DeValue::Datetime(d) => write!(out, "datetime {d}"),
        DeValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render(item.get_ref(), out);
            }
            out.push(']');
            Ok(())
        }
        DeValue::Table(table) => {
            render_table(table, out);
            Ok(())
        }
    };
}

fn render_table(table: &DeTable<'_>, out: &mut String) {
    use std::fmt::Write as _;
    out.push('{');
    for (i, (k, v)) in table.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{:?}:", k.get_ref().as_ref());
        render(v.get_ref(), out);
    }
    out.push('}');
}

pub(super) struct RawComponent<'t> {
    pub(super) type_name: String,
    pub(super) type_span: Range<usize>,
    pub(super) span: Range<usize>,
    pub(super) table: DeTable<'t>,
}

impl<'t> Loader<'_, 't> {
    /// Takes the array of component tables under `field` out of `table`.
    pub(super) fn components(
        &mut self,
        table: &mut DeTable<'t>,
        field: &str,
        key: &str,
    ) -> Vec<RawComponent<'t>> {
        let Some(value) = table.remove(field) else {
            return Vec::new();
        };
        let span = value.span();
        let DeValue::Array(items) = value.into_inner() else {
            self.diag.error(
                Some(span),
                format!("{key}.{field}"),
                format!("expected an array of tables (`[[link.{field}]]`)"),
                None,
            );
            return Vec::new();
        };
        items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| self.component(item, &format!("{key}.{field}[{i}]"), field))
            .collect()
    }

    /// Takes the one component table under `field` (`[link.dead_letter]`).
    pub(super) fn single_component(
        &mut self,
        table: &mut DeTable<'t>,
        field: &str,
        key: &str,
    ) -> Option<RawComponent<'t>> {
        let value = table.remove(field)?;
        let k = format!("{key}.{field}");
        if let DeValue::Array(_) = value.get_ref() {
            self.diag.error(
                Some(value.span()),
                k,
                format!("expected one table (`[link.{field}]`), not an array"),
                None,
            );
            return None;
        }
        self.component(value, &k, field)
    }

    /// One component table: its `type` and the rest of its keys.
    fn component(
        &mut self,
        item: Spanned<DeValue<'t>>,
        k: &str,
        field: &str,
    ) -> Option<RawComponent<'t>> {
        let item_span = item.span();
        let DeValue::Table(mut t) = item.into_inner() else {
            self.diag
                .error(Some(item_span), k, "expected a table", None);
            return None;
        };
        let Some(type_value) = t.remove("type") else {
            self.diag.error(
                Some(item_span.clone()),
                k,
                "missing `type`",
                Some(format!("every {field} needs `type = \"...\"`")),
            );
            return None;
        };
        let type_span = type_value.span();
        let DeValue::String(type_name) = type_value.into_inner() else {
            self.diag.error(
                Some(type_span),
                format!("{k}.type"),
                "`type` must be a string",
                None,
            );
            return None;
        };
        Some(RawComponent {
            type_name: type_name.to_string(),
            type_span,
            span: item_span,
            table: t,
        })
    }

    /// Checks `type` against the registry, with a suggestion for typos.
    pub(super) fn known(&mut self, kind: Kind, c: &RawComponent<'t>, key: &str) -> bool {
        let names = self.registry.names(kind);
        if names.contains(&c.type_name.as_str()) {
            return true;
        }
        let hint = match closest(&c.type_name, names.iter().copied()) {
            Some(n) => format!("did you mean `{n}`?"),
            None => format!("known {kind} types: {}", names.join(", ")),
        };
        self.diag.error(
            Some(c.type_span.clone()),
            format!("{key}.type"),
            format!("unknown {kind} type `{}`", c.type_name),
            Some(hint),
        );
        false
    }

    pub(super) fn take<T: serde::de::DeserializeOwned>(
        &mut self,
        table: &mut DeTable<'t>,
        field: &str,
        key: &str,
    ) -> Option<Option<T>> {
        match table.remove(field) {
            None => Some(None),
            Some(v) => self.deserialize(v, &format!("{key}.{field}")).map(Some),
        }
    }

    /// Runs a factory, reporting option and build errors at the component.
    pub(super) fn build<T>(
        &mut self,
        build: impl FnOnce(RawOptions<'t>) -> Result<T, BuildError>,
        c: RawComponent<'t>,
        key: &str,
        cx: &BuildContext,
    ) -> Option<T> {
        let table = c.table.clone();
        let built = build(Spanned::new(c.span.clone(), DeValue::Table(c.table)));
        for (option, message) in cx.take_warnings() {
            let (span, key) = match table.get(option.as_str()) {
                Some(v) => (v.span(), format!("{key}.{option}")),
                None => (c.type_span.clone(), key.to_owned()),
            };
            self.diag.warning(span, key, &message);
        }
        match built {
            Ok(v) => Some(v),
            Err(BuildError::Options(e)) => self.report_de(e, key, Some(&table), c.span),
            Err(e) => {
                let mut message = self.diag.scrub(&e.to_string());
                if table.iter().any(|(_, v)| self.diag.is_secret(&v.span())) {
                    let keys: Vec<String> =
                        table.iter().map(|(k, _)| k.get_ref().to_string()).collect();
                    message = error::withhold_quoted(&message, &keys);
                }
                // Point at the option the factory named, if it named one.
                let option = e.option().map(str::to_owned);
                let (span, key) =
                    match option.and_then(|o| table.get(o.as_str()).map(|v| (o, v.span()))) {
                        Some((o, span)) => (span, format!("{key}.{o}")),
                        None => (c.type_span, key.to_owned()),
                    };
                self.diag.error(
                    Some(span),
                    key,
                    format!("invalid {} options: {message}", c.type_name),
                    None,
                );
                None
            }
        }
    }

    pub(super) fn inlet(
        &mut self,
        mut c: RawComponent<'t>,
        key: &str,
        cx: &BuildContext,
    ) -> Option<databay_core::InletHandle> {
        let name: Option<String> = self.take(&mut c.table, "name", key)?;
        let metadata: Option<Metadata> = self.take(&mut c.table, "metadata", key)?;
        let timeout: Option<HumanDuration> = self.take(&mut c.table, "timeout", key)?;
        if !self.known(Kind::Inlet, &c, key) {
            return None;
        }
        let component = self.registry.inlet_type(&c.type_name)?.clone();
        let mut builder = self.build(|raw| component.build(raw, cx), c, key, cx)?;
        if let Some(n) = name {
            builder = builder.name(n);
        }
        if let Some(m) = metadata {
            builder = builder.metadata(m);
        }
        if let Some(t) = timeout {
            builder = builder.timeout(t.0);
        }
        Some(builder.build())
    }

    /// An outlet, and whether it is `routed` (gets only the records
    /// routed to it by name).
    /// `first` runs before the outlet's own processors (the dead-letter
    /// envelope).
    pub(super) fn outlet(
        &mut self,
        mut c: RawComponent<'t>,
        key: &str,
        cx: &BuildContext,
        first: Option<fn(Vec<databay_core::Record>) -> Vec<databay_core::Record>>,
    ) -> Option<(databay_core::OutletHandle, bool)> {
        let name: Option<String> = self.take(&mut c.table, "name", key)?;
        let routed_span = c.table.get("routed").map(|v| v.span());
        let routed: Option<bool> = self.take(&mut c.table, "routed", key)?;
        let routed = routed.unwrap_or(false);
        if routed && name.is_none() {
            self.diag.error(
                routed_span,
                format!("{key}.routed"),
                "a routed outlet needs a `name`: records are routed to it by name",
                Some("add `name = \"...\"`; a record whose `__route__` metadata is that name goes to it".to_owned()),
            );
            return None;
        }
        let timeout: Option<HumanDuration> = self.take(&mut c.table, "timeout", key)?;
        // An outlet with a `retry` option of its own (the http outlet's,
        // which honours `Retry-After`) keeps it; the others take the common
        // one.
        let own_retry = self
            .registry
            .outlet_type(&c.type_name)
            .and_then(|t| t.options)
            .is_some_and(|names| names.contains(&"retry"));
        let retry: Option<RetryOptions> = if own_retry {
            None
        } else {
            self.take(&mut c.table, "retry", key)?
        };
        let processors = self.components(&mut c.table, "processor", key);
        if !self.known(Kind::Outlet, &c, key) {
            return None;
        }
        let component = self.registry.outlet_type(&c.type_name)?.clone();
        let mut builder = self.build(|raw| component.build(raw, cx), c, key, cx)?;
        if let Some(n) = name {
            builder = builder.name(n);
        }
        if let Some(t) = timeout {
            builder = builder.timeout(t.0);
        }
        if let Some(r) = retry {
            let mut policy = databay_core::RetryPolicy::new(r.attempts.get());
            if let Some(d) = r.backoff {
                policy = policy.initial(d.0);
            }
            if let Some(d) = r.max_backoff {
                policy = policy.max_delay(d.0);
            }
            if let Some(d) = r.deadline {
                policy = policy.deadline(d.0);
            }
            builder = builder.retry(policy);
        }
        if let Some(f) = first {
            builder = builder.named_processor("envelope", f);
        }
        for (i, p) in processors.into_iter().enumerate() {
            if let Some(p) = self.processor(p, &format!("{key}.processor[{i}]"), cx) {
                builder = builder.named_processor(p.name, p.processor);
            }
        }
        Some((builder.build(), routed))
    }

    pub(super) fn processor(
        &mut self,
        mut c: RawComponent<'t>,
        key: &str,
        cx: &BuildContext,
    ) -> Option<BuiltProcessor> {
        let name: Option<String> = self.take(&mut c.table, "name", key)?;
        if !self.known(Kind::Processor, &c, key) {
            return None;
        }
        let name = name.unwrap_or_else(|| c.type_name.clone());
        let fingerprint = format!("{}:{}", c.type_name, fingerprint_table(&c.table));
        let component = self.registry.processor_type(&c.type_name)?.clone();
        let processor = self.build(|raw| component.build(raw, cx), c, key, cx)?;
        Some(BuiltProcessor {
            name,
            fingerprint,
            processor,
        })
    }

    pub(super) fn grouper(
        &mut self,
        c: RawComponent<'t>,
        key: &str,
        cx: &BuildContext,
    ) -> Option<Box<dyn databay_core::Grouper>> {
        if !self.known(Kind::Grouper, &c, key) {
            return None;
        }
        let component = self.registry.grouper_type(&c.type_name)?.clone();
        self.build(|raw| component.build(raw, cx), c, key, cx)
    }
}

/// An outlet's `retry = { attempts, backoff, max_backoff, deadline }`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryOptions {
    /// Tries in all, at least 1.
    attempts: std::num::NonZeroU32,
    /// The first wait (default 100ms), doubling.
    backoff: Option<HumanDuration>,
    /// The longest wait (default 10s).
    max_backoff: Option<HumanDuration>,
    /// No try starts later than this after the first.
    deadline: Option<HumanDuration>,
}
