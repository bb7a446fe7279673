//! Walks a parsed config document: the top-level tables, each link's
//! settings and component arrays, reporting every problem at its span.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use databay_component::{BuildContext, Registry};
use databay_core::{BackoffPolicy, Link};
use serde::de::IntoDeserializer;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{Diagnostics, closest, serde_hint};
use super::settings::{AdminSettings, DaemonSettings, LinkSettings};
use super::{Config, LinkConfig, LinkSummary};

const TOP_KEYS: [&str; 3] = ["daemon", "admin", "link"];

/// A link's component arrays ([`LinkSettings`] only notes their presence).
const COMPONENT_KEYS: [&str; 4] = ["inlet", "processor", "grouper", "outlet"];

pub(super) struct Loader<'r, 't> {
    pub(super) diag: Diagnostics<'t>,
    pub(super) registry: &'r Registry,
    pub(super) base_dir: PathBuf,
}

/// The key under `table` whose key or value span holds `span`.
pub(super) fn key_at(table: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
    table.iter().find_map(|(k, v)| {
        let ks = k.span();
        let vs = v.span();
        let inside = |s: &Range<usize>| s.start <= span.start && span.end <= s.end.max(s.start + 1);
        if inside(&ks) || inside(&vs) {
            Some(k.get_ref().to_string())
        } else {
            None
        }
    })
}

impl<'t> Loader<'_, 't> {
    /// Deserializes `value` into `T`, reporting a failure under `key`.
    pub(super) fn deserialize<T: serde::de::DeserializeOwned>(
        &mut self,
        value: Spanned<DeValue<'t>>,
        key: &str,
    ) -> Option<T> {
        let table = match value.get_ref() {
            DeValue::Table(t) => Some(t.clone()),
            _ => None,
        };
        let span = value.span();
        match T::deserialize(value.into_deserializer()) {
            Ok(v) => Some(v),
            Err(e) => self.report_de(e, key, table.as_ref(), span),
        }
    }

    pub(super) fn report_de<T>(
        &mut self,
        e: toml::de::Error,
        key: &str,
        table: Option<&DeTable<'t>>,
        fallback: Range<usize>,
    ) -> Option<T> {
        let span = e.span().unwrap_or(fallback);
        let sub = table.and_then(|t| key_at(t, &span));
        let full_key = match sub {
            Some(s) if !key.is_empty() => format!("{key}.{s}"),
            Some(s) => s,
            None => key.to_owned(),
        };
        let message = e.message().to_owned();
        let hint = serde_hint(&message);
        self.diag.error(Some(span), full_key, message, hint);
        None
    }

    /// `[daemon]` or `[admin]`: a table (serde alone would also take an
    /// array, as the struct's fields in order), or the defaults.
    pub(super) fn section<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        doc: &mut DeTable<'t>,
        key: &str,
    ) -> T {
        match doc.remove(key) {
            None => T::default(),
            Some(v) if !matches!(v.get_ref(), DeValue::Table(_)) => {
                self.diag.error(
                    Some(v.span()),
                    key,
                    format!(
                        "expected a table (`[{key}]`), found {}",
                        v.get_ref().type_str()
                    ),
                    None,
                );
                T::default()
            }
            Some(v) => self.deserialize(v, key).unwrap_or_default(),
        }
    }

    pub(super) fn document(&mut self, path: &Path, mut doc: DeTable<'t>) -> Config {
        let (daemon, admin) = self.settings(&mut doc);
        let mut links = Vec::new();
        match doc.remove("link") {
            None => self.diag.error(
                None,
                "link",
                "no links: declare at least one `[[link]]`",
                None,
            ),
            Some(v) => {
                let span = v.span();
                match v.into_inner() {
                    DeValue::Array(items) => {
                        if items.is_empty() {
                            self.diag.error(
                                Some(span.clone()),
                                "link",
                                "no links: declare at least one `[[link]]`",
                                None,
                            );
                        }
                        let mut names = BTreeSet::new();
                        for (i, item) in items.into_iter().enumerate() {
                            if let Some(link) = self.link(i, item, &mut names) {
                                links.push(link);
                            }
                        }
                    }
                    other => self.diag.error(
                        Some(span),
                        "link",
                        format!(
                            "expected an array of tables (`[[link]]`), found {}",
                            other.type_str()
                        ),
                        None,
                    ),
                }
            }
        }
        Config {
            path: path.to_path_buf(),
            daemon,
            admin,
            links,
            secrets: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The top level but `link`: unknown keys reported, `[daemon]` and
    /// `[admin]` read (their defaults if absent).
    pub(super) fn settings(&mut self, doc: &mut DeTable<'t>) -> (DaemonSettings, AdminSettings) {
        for (k, v) in doc.iter() {
            if !TOP_KEYS.contains(&k.get_ref().as_ref()) {
                let hint = closest(k.get_ref(), TOP_KEYS).map(|c| format!("did you mean `{c}`?"));
                self.diag.error(
                    Some(k.span()),
                    k.get_ref().to_string(),
                    format!(
                        "unknown key `{}` (expected `daemon`, `admin` or `link`)",
                        k.get_ref()
                    ),
                    hint,
                );
                let _ = v;
            }
        }
        let state_url = doc.get("daemon").and_then(|d| match d.get_ref() {
            DeValue::Table(t) => t.get("state_url").map(|v| v.span()),
            _ => None,
        });
        let mut daemon: DaemonSettings = self.section(doc, "daemon");
        if daemon.state_dir.is_some() && daemon.state_url.is_some() {
            self.diag.error(
                state_url,
                "daemon.state_url",
                "set one of `state_dir` (an embedded store) and `state_url` (PostgreSQL), not both",
                None,
            );
        }
        if let Some(dir) = daemon.state_dir.take() {
            daemon.state_dir = Some(if dir.is_absolute() {
                dir
            } else {
                self.base_dir.join(dir)
            });
        }
        let admin = self.section(doc, "admin");
        (daemon, admin)
    }

    pub(super) fn link(
        &mut self,
        index: usize,
        item: Spanned<DeValue<'t>>,
        names: &mut BTreeSet<String>,
    ) -> Option<LinkConfig> {
        let span = item.span();
        // Name the link in key paths when it has a usable name.
        let key = match item.get_ref() {
            DeValue::Table(t) => match t.get("name") {
                // A name from the environment stays out of key paths.
                Some(n) if self.diag.is_secret(&n.span()) => format!("link[{index}]"),
                Some(n) => match n.get_ref() {
                    DeValue::String(n) if !n.is_empty() => format!("link.{n}"),
                    _ => format!("link[{index}]"),
                },
                None => format!("link[{index}]"),
            },
            _ => format!("link[{index}]"),
        };
        let fingerprint = super::components::fingerprint(item.get_ref());
        let DeValue::Table(mut table) = item.into_inner() else {
            self.diag
                .error(Some(span), key, "a link must be a table (`[[link]]`)", None);
            return None;
        };
        // The component arrays are read below, from `table`: the settings
        // only need to know they are there, not a copy of them.
        let shallow: DeTable<'t> = table
            .iter()
            .map(|(k, v)| {
                let v = if COMPONENT_KEYS.contains(&k.get_ref().as_ref()) {
                    Spanned::new(v.span(), DeValue::Boolean(true))
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        let settings: Option<LinkSettings> =
            self.deserialize(Spanned::new(span.clone(), DeValue::Table(shallow)), &key);
        // Whether the link declares each end at all (a broken declaration
        // is reported on its own).
        let declares_inlet = table.contains_key("inlet");
        let declares_outlet = table.contains_key("outlet");
        let inlets = self.components(&mut table, "inlet", &key);
        let processors = self.components(&mut table, "processor", &key);
        let groupers = self.components(&mut table, "grouper", &key);
        let outlets = self.components(&mut table, "outlet", &key);
        let dead_letter = self.single_component(&mut table, "dead_letter", &key);
        let link_name = settings
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        if settings.is_some() && !names.insert(link_name.clone()) {
            let name_span = table.get("name").map(|n| n.span());
            self.diag.error(
                name_span,
                format!("{key}.name"),
                format!("duplicate link name `{link_name}`: link names must be unique"),
                None,
            );
        }
        let schedule = settings
            .as_ref()
            .and_then(|s| self.schedule(s, &table, &key));
        let cx = BuildContext::new(link_name.clone(), self.base_dir.clone()).with_link_settings(
            settings
                .as_ref()
                .and_then(|s| s.inlet_concurrency)
                .unwrap_or(0),
            settings.as_ref().and_then(|s| s.parallelism).unwrap_or(1),
        );
        let mut summary = LinkSummary {
            name: link_name.clone(),
            schedule: String::new(),
            inlets: Vec::new(),
            processors: Vec::new(),
            groupers: Vec::new(),
            outlets: Vec::new(),
            dead_letter: None,
        };
        // Every component is checked even when the link's own settings are
        // broken, so one load reports everything.
        let mut built_inlets = Vec::new();
        for (i, c) in inlets.into_iter().enumerate() {
            let k = format!("{key}.inlet[{i}]");
            summary.inlets.push(c.type_name.clone());
            built_inlets.extend(self.inlet(c, &k, &cx));
        }
        let mut built_processors = Vec::new();
        for (i, c) in processors.into_iter().enumerate() {
            let k = format!("{key}.processor[{i}]");
            summary.processors.push(c.type_name.clone());
            built_processors.extend(self.processor(c, &k, &cx));
        }
        let mut built_groupers = Vec::new();
        for (i, c) in groupers.into_iter().enumerate() {
            let k = format!("{key}.grouper[{i}]");
            summary.groupers.push(c.type_name.clone());
            built_groupers.extend(self.grouper(c, &k, &cx));
        }
        let mut built_outlets = Vec::new();
        for (i, c) in outlets.into_iter().enumerate() {
            let k = format!("{key}.outlet[{i}]");
            summary.outlets.push(c.type_name.clone());
            built_outlets.extend(self.outlet(c, &k, &cx, None));
        }
        let built_dead_letter = dead_letter.and_then(|mut c| {
            let k = format!("{key}.dead_letter");
            summary.dead_letter = Some(c.type_name.clone());
            let routed = c.table.get("routed").map(|v| v.span());
            // Unless told otherwise, each dead letter is written as one
            // object carrying why, where and when (outlets write payloads).
            let envelope: Option<bool> = self.take(&mut c.table, "envelope", &k)?;
            let first = envelope
                .unwrap_or(true)
                .then_some(databay_core::routing::envelope as fn(_) -> _);
            let (handle, is_routed) = self.outlet(c, &k, &cx, first)?;
            if is_routed {
                self.diag.error(
                    routed,
                    format!("{k}.routed"),
                    "the dead-letter outlet gets what the other outlets did not take; it cannot be routed",
                    None,
                );
            }
            Some(handle)
        });
        let name_span = table.get("name").map(|n| n.span());
        if settings.is_some() && link_name.trim().is_empty() {
            self.diag.error(
                name_span.clone(),
                format!("{key}.name"),
                "a link name must not be empty",
                None,
            );
        }
        // A link missing either end would pull and drop records, or never
        // run: both are mistakes worth stopping on.
        for (missing, what) in [(!declares_inlet, "inlet"), (!declares_outlet, "outlet")] {
            if missing && settings.is_some() {
                self.diag.error(
                    name_span.clone().or(Some(span.clone())),
                    key.clone(),
                    format!("the link has no {what}"),
                    Some(format!("add a `[[link.{what}]]` table")),
                );
            }
        }
        let settings = settings?;

        let mut builder = Link::builder(link_name);
        if let Some(tags) = &settings.tags {
            builder = builder.tags(tags.iter().cloned());
        }
        if let Some(v) = settings.immediate_transfer {
            builder = builder.immediate_transfer(v);
        }
        if let Some(v) = settings.ignore_exceptions {
            builder = builder.ignore_exceptions(v);
        }
        if settings.backoff.is_some() || settings.max_backoff.is_some() {
            let default = BackoffPolicy::default();
            builder = builder.backoff(BackoffPolicy::new(
                settings.backoff.map_or(default.initial, |d| d.0),
                settings.max_backoff.map_or(default.max, |d| d.0),
            ));
        }
        if let Some(v) = settings.inlet_concurrency {
            builder = builder.inlet_concurrency(v);
        }
        if settings.parallelism == Some(0) {
            let span = table.get("parallelism").map(|v| v.span());
            self.diag.error(
                span,
                format!("{key}.parallelism"),
                "must be at least 1 (the number of workers a dynamic source runs)".to_owned(),
                None,
            );
        }
        if let Some(v) = settings.inlet_timeout {
            builder = builder.inlet_timeout(v.0);
        }
        if let Some(v) = settings.checkpoint_every {
            builder = builder.checkpoint_every(v.0);
        }
        if let Some(v) = settings.outlet_timeout {
            builder = builder.outlet_timeout(v.0);
        }
        for handle in built_inlets {
            builder = builder.inlet(handle);
        }
        let mut processors = Vec::new();
        for p in built_processors {
            processors.push((p.name.clone(), p.fingerprint));
            builder = builder.named_processor(p.name, p.processor);
        }
        for g in built_groupers {
            builder = builder.grouper(g);
        }
        for (handle, routed) in built_outlets {
            builder = if routed {
                builder.routed_outlet(handle)
            } else {
                builder.outlet(handle)
            };
        }
        if let Some(handle) = built_dead_letter {
            builder = builder.dead_letter(handle);
        }

        let schedule = schedule?;
        summary.schedule = schedule.to_string();
        match builder.schedule(schedule).build() {
            Ok(link) => Some(LinkConfig {
                link,
                summary,
                fingerprint,
                processors,
            }),
            Err(e) => {
                self.diag.error(Some(span), key, e.to_string(), None);
                None
            }
        }
    }
}

/// The start of the line whose key (before `=`, or a `[table]` header)
/// has the most dotted parts, and that count.
pub(super) fn deepest_key(text: &str) -> (usize, usize) {
    let mut best = (0, 0);
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let key = line.split('=').next().unwrap_or(line);
        let depth = key.matches('.').count() + 1;
        if depth > best.1 {
            best = (offset, depth);
        }
        offset += line.len();
    }
    best
}
