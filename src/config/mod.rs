//! The TOML config: daemon settings and any number of links, each with its
//! schedule, inlets, processors, groupers and outlets. Loading checks the
//! whole file and reports every problem at once, each located by line,
//! column and key path; `${VAR}` / `${VAR:-default}` come from the
//! environment and are never echoed back.

mod error;
mod interpolate;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use databay_core::{Link, Metadata, Schedule};
use serde::Deserialize;
use serde::de::{IgnoredAny, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub(crate) use error::closest as closest_name;
pub use error::{ConfigError, ConfigErrors};
use error::{Diagnostics, closest, serde_hint};

use crate::registry::{BuildContext, BuildError, Kind, RawOptions, Registry};

/// A humantime duration in a config (`"5s"`, `"250ms"`, `"1m 30s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration `{text}`: {e} (write e.g. \"5s\", \"250ms\", \"1m 30s\")"
                ))
            })
    }
}

fn default_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

fn yes() -> bool {
    true
}

/// `[daemon]`: how the planner runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSettings {
    /// How long shutdown waits for in-flight transfers (default 30s).
    #[serde(default = "default_grace")]
    pub shutdown_grace: HumanDuration,
    /// Keep other links running when one fails (default true). With false,
    /// the first failed transfer shuts the daemon down gracefully.
    #[serde(default = "yes")]
    pub ignore_exceptions: bool,
    /// Transfer once at start for links that want it (default true).
    #[serde(default = "yes")]
    pub immediate_transfer: bool,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            shutdown_grace: default_grace(),
            ignore_exceptions: true,
            immediate_transfer: true,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9477))
}

/// `[admin]`: the HTTP endpoint for health, metrics and link control.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Serve it (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Address to bind (default `127.0.0.1:9477`: loopback only).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            enabled: true,
            listen: default_listen(),
        }
    }
}

/// What a link is made of, for `validate` and the admin endpoint. Holds no
/// option values, so nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LinkSummary {
    /// The link's name.
    pub name: String,
    /// Its schedule, as text.
    pub schedule: String,
    /// Inlet types, in order.
    pub inlets: Vec<String>,
    /// Processor types, in order.
    pub processors: Vec<String>,
    /// Grouper types, in order.
    pub groupers: Vec<String>,
    /// Outlet types, in order.
    pub outlets: Vec<String>,
}

/// One configured link, built and ready to run.
pub struct LinkConfig {
    /// The link.
    pub link: Link,
    /// Its declared shape.
    pub summary: LinkSummary,
    /// A canonical rendering of its config (after interpolation): two
    /// loads of an unchanged link give the same fingerprint.
    pub fingerprint: String,
}

/// A loaded config file.
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// `[daemon]`.
    pub daemon: DaemonSettings,
    /// `[admin]`.
    pub admin: AdminSettings,
    /// `[[link]]`, in file order.
    pub links: Vec<LinkConfig>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("path", &self.path)
            .field("daemon", &self.daemon)
            .field("admin", &self.admin)
            .field(
                "links",
                &self.links.iter().map(|l| &l.summary).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Config {
    /// Reads and checks `path`, building every link with `registry`.
    pub fn load(path: &Path, registry: &Registry) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read the config file: {e}"),
                hint: None,
            }])
        })?;
        let lookup = |name: &str| match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!(
                "environment variable `{name}` is set but is not valid UTF-8"
            )),
        };
        Self::check(path, &text, registry, &lookup)
    }

    /// Checks `text` (the contents of `path`), taking `${VAR}` values from `env`.
    pub fn parse(
        path: &Path,
        text: &str,
        registry: &Registry,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        Self::check(path, text, registry, &|name| Ok(env(name)))
    }

    fn check(
        path: &Path,
        text: &str,
        registry: &Registry,
        env: &interpolate::Lookup<'_>,
    ) -> Result<Config, ConfigErrors> {
        let mut diag = Diagnostics::new(path, text);
        let (mut doc, parse_errors) = DeTable::parse_recoverable(text);
        for e in parse_errors {
            // The parser's "duplicate key" does not say which: its span does.
            let message = match e.span().and_then(|s| text.get(s)) {
                Some(k) if e.message() == "duplicate key" && !k.is_empty() => {
                    format!("duplicate key `{k}`")
                }
                _ => e.message().to_owned(),
            };
            if e.span().is_none() && message.contains("recursion limit") {
                // toml stops at a nesting depth and says neither where nor
                // why in words: point at the most deeply nested key.
                let (offset, depth) = deepest_key(text);
                diag.error(
                    Some(offset..offset + 1),
                    "",
                    format!(
                        "keys or tables nested too deeply ({depth} levels; toml's recursion limit)"
                    ),
                    None,
                );
                continue;
            }
            diag.error(e.span(), "", message, None);
        }
        if diag.has_errors() {
            // The document's shape cannot be trusted past a syntax error:
            // checking it would report errors that are not there.
            return Err(ConfigErrors(diag.finish()));
        }
        interpolate::table(doc.get_mut(), env, &mut diag, "");
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let mut loader = Loader {
            diag,
            registry,
            base_dir,
        };
        let config = loader.document(path, doc.into_inner());
        if loader.diag.has_errors() {
            return Err(ConfigErrors(loader.diag.finish()));
        }
        Ok(config)
    }
}

const TOP_KEYS: [&str; 3] = ["daemon", "admin", "link"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // component arrays are read from the raw table; listed so typos of them get suggestions
struct LinkSettings {
    name: String,
    #[serde(default)]
    tags: Option<Vec<String>>,
    every: Option<HumanDuration>,
    align_to: Option<HumanDuration>,
    jitter: Option<HumanDuration>,
    cron: Option<String>,
    timezone: Option<String>,
    immediate_transfer: Option<bool>,
    ignore_exceptions: Option<bool>,
    inlet_concurrency: Option<usize>,
    inlet_timeout: Option<HumanDuration>,
    outlet_timeout: Option<HumanDuration>,
    inlet: Option<IgnoredAny>,
    processor: Option<IgnoredAny>,
    grouper: Option<IgnoredAny>,
    outlet: Option<IgnoredAny>,
}

struct Loader<'r, 't> {
    diag: Diagnostics<'t>,
    registry: &'r Registry,
    base_dir: PathBuf,
}

/// The key under `table` whose key or value span holds `span`.
fn key_at(table: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
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
    fn deserialize<T: serde::de::DeserializeOwned>(
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

    fn report_de<T>(
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
    fn section<T: serde::de::DeserializeOwned + Default>(
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

    fn document(&mut self, path: &Path, mut doc: DeTable<'t>) -> Config {
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
        let daemon = self.section(&mut doc, "daemon");
        let admin = self.section(&mut doc, "admin");
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
        }
    }

    fn link(
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
        let fingerprint = serde_json::Value::deserialize(item.clone().into_deserializer())
            .map(|v| v.to_string())
            .unwrap_or_default();
        let DeValue::Table(mut table) = item.into_inner() else {
            self.diag
                .error(Some(span), key, "a link must be a table (`[[link]]`)", None);
            return None;
        };
        let settings: Option<LinkSettings> = self.deserialize(
            Spanned::new(span.clone(), DeValue::Table(table.clone())),
            &key,
        );
        // Whether the link declares each end at all (a broken declaration
        // is reported on its own).
        let declares_inlet = table.contains_key("inlet");
        let declares_outlet = table.contains_key("outlet");
        let inlets = self.components(&mut table, "inlet", &key);
        let processors = self.components(&mut table, "processor", &key);
        let groupers = self.components(&mut table, "grouper", &key);
        let outlets = self.components(&mut table, "outlet", &key);
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
        let cx = BuildContext {
            link: link_name.clone(),
            base_dir: self.base_dir.clone(),
        };
        let mut summary = LinkSummary {
            name: link_name.clone(),
            schedule: String::new(),
            inlets: Vec::new(),
            processors: Vec::new(),
            groupers: Vec::new(),
            outlets: Vec::new(),
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
            built_outlets.extend(self.outlet(c, &k, &cx));
        }
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
        if let Some(v) = settings.inlet_concurrency {
            builder = builder.inlet_concurrency(v);
        }
        if let Some(v) = settings.inlet_timeout {
            builder = builder.inlet_timeout(v.0);
        }
        if let Some(v) = settings.outlet_timeout {
            builder = builder.outlet_timeout(v.0);
        }
        for handle in built_inlets {
            builder = builder.inlet(handle);
        }
        for (name, p) in built_processors {
            builder = builder.named_processor(name, p);
        }
        for g in built_groupers {
            builder = builder.grouper(g);
        }
        for handle in built_outlets {
            builder = builder.outlet(handle);
        }
        let schedule = schedule?;
        summary.schedule = schedule.to_string();
        match builder.schedule(schedule).build() {
            Ok(link) => Some(LinkConfig {
                link,
                summary,
                fingerprint,
            }),
            Err(e) => {
                self.diag.error(Some(span), key, e.to_string(), None);
                None
            }
        }
    }

    fn schedule(&mut self, s: &LinkSettings, table: &DeTable<'t>, key: &str) -> Option<Schedule> {
        let at = |k: &str| table.get(k).map(|v| v.span());
        match (&s.every, &s.cron) {
            (Some(_), Some(_)) => {
                self.diag.error(
                    at("cron"),
                    format!("{key}.cron"),
                    "`every` and `cron` are exclusive: give one schedule",
                    None,
                );
                None
            }
            (None, None) => {
                self.diag.error(
                    at("name"),
                    key.to_owned(),
                    "the link has no schedule",
                    Some("add `every = \"5s\"` or `cron = \"*/5 * * * *\"`".into()),
                );
                None
            }
            (Some(every), None) => {
                if s.timezone.is_some() {
                    self.diag.error(
                        at("timezone"),
                        format!("{key}.timezone"),
                        "`timezone` applies to `cron` schedules only",
                        None,
                    );
                }
                match Schedule::every(every.0) {
                    Ok(mut schedule) => {
                        if let Some(a) = s.align_to {
                            schedule = schedule.align_to(a.0);
                        }
                        if let Some(j) = s.jitter {
                            schedule = schedule.jitter(j.0);
                        }
                        Some(schedule)
                    }
                    Err(e) => {
                        self.diag
                            .error(at("every"), format!("{key}.every"), e.to_string(), None);
                        None
                    }
                }
            }
            (None, Some(cron)) => {
                for k in ["align_to", "jitter"] {
                    if table.contains_key(k) {
                        self.diag.error(
                            at(k),
                            format!("{key}.{k}"),
                            format!("`{k}` applies to `every` schedules only"),
                            None,
                        );
                    }
                }
                let tz = s.timezone.as_deref().unwrap_or("UTC");
                match Schedule::cron(cron, tz) {
                    Ok(schedule) => Some(schedule),
                    Err(e) => {
                        let k = if matches!(e, databay_core::ScheduleError::TimeZone(_)) {
                            "timezone"
                        } else {
                            "cron"
                        };
                        self.diag
                            .error(at(k), format!("{key}.{k}"), e.to_string(), None);
                        None
                    }
                }
            }
        }
    }

    /// Takes the array of component tables under `field` out of `table`.
    fn components(
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
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let k = format!("{key}.{field}[{i}]");
            let item_span = item.span();
            let DeValue::Table(mut t) = item.into_inner() else {
                self.diag
                    .error(Some(item_span), k, "expected a table", None);
                continue;
            };
            let Some(type_value) = t.remove("type") else {
                self.diag.error(
                    Some(item_span.clone()),
                    k,
                    "missing `type`",
                    Some(format!("every {field} needs `type = \"...\"`")),
                );
                continue;
            };
            let type_span = type_value.span();
            let DeValue::String(type_name) = type_value.into_inner() else {
                self.diag.error(
                    Some(type_span),
                    format!("{k}.type"),
                    "`type` must be a string",
                    None,
                );
                continue;
            };
            out.push(RawComponent {
                type_name: type_name.to_string(),
                type_span,
                span: item_span,
                table: t,
            });
        }
        out
    }

    /// Checks `type` against the registry, with a suggestion for typos.
    fn known(&mut self, kind: Kind, c: &RawComponent<'t>, key: &str) -> bool {
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

    fn take<T: serde::de::DeserializeOwned>(
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
    fn build<T>(
        &mut self,
        build: impl FnOnce(RawOptions<'t>) -> Result<T, BuildError>,
        c: RawComponent<'t>,
        key: &str,
    ) -> Option<T> {
        let table = c.table.clone();
        match build(Spanned::new(c.span.clone(), DeValue::Table(c.table))) {
            Ok(v) => Some(v),
            Err(BuildError::Options(e)) => self.report_de(e, key, Some(&table), c.span),
            Err(BuildError::Invalid(e)) => {
                let mut message = self.diag.scrub(&e.to_string());
                if table.iter().any(|(_, v)| self.diag.is_secret(&v.span())) {
                    let keys: Vec<String> =
                        table.iter().map(|(k, _)| k.get_ref().to_string()).collect();
                    message = error::withhold_quoted(&message, &keys);
                }
                // Point at the option the factory named, if it named one.
                let option = e
                    .downcast_ref::<crate::OptionError>()
                    .map(|o| o.option.clone())
                    .or_else(|| match e.downcast_ref::<crate::processors::Error>() {
                        Some(crate::processors::Error::Option { option, .. }) => {
                            Some((*option).to_owned())
                        }
                        _ => None,
                    });
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

    fn inlet(
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
        let component = self.registry.inlets.get(&c.type_name)?.clone();
        let mut builder = self.build(|raw| (component.build)(raw, cx), c, key)?;
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

    fn outlet(
        &mut self,
        mut c: RawComponent<'t>,
        key: &str,
        cx: &BuildContext,
    ) -> Option<databay_core::OutletHandle> {
        let name: Option<String> = self.take(&mut c.table, "name", key)?;
        let timeout: Option<HumanDuration> = self.take(&mut c.table, "timeout", key)?;
        let processors = self.components(&mut c.table, "processor", key);
        if !self.known(Kind::Outlet, &c, key) {
            return None;
        }
        let component = self.registry.outlets.get(&c.type_name)?.clone();
        let mut builder = self.build(|raw| (component.build)(raw, cx), c, key)?;
        if let Some(n) = name {
            builder = builder.name(n);
        }
        if let Some(t) = timeout {
            builder = builder.timeout(t.0);
        }
        for (i, p) in processors.into_iter().enumerate() {
            if let Some((name, p)) = self.processor(p, &format!("{key}.processor[{i}]"), cx) {
                builder = builder.named_processor(name, p);
            }
        }
        Some(builder.build())
    }

    fn processor(
        &mut self,
        mut c: RawComponent<'t>,
        key: &str,
        cx: &BuildContext,
    ) -> Option<(String, Box<dyn databay_core::Processor>)> {
        let name: Option<String> = self.take(&mut c.table, "name", key)?;
        if !self.known(Kind::Processor, &c, key) {
            return None;
        }
        let name = name.unwrap_or_else(|| c.type_name.clone());
        let component = self.registry.processors.get(&c.type_name)?.clone();
        let p = self.build(|raw| (component.build)(raw, cx), c, key)?;
        Some((name, p))
    }

    fn grouper(
        &mut self,
        c: RawComponent<'t>,
        key: &str,
        cx: &BuildContext,
    ) -> Option<Box<dyn databay_core::Grouper>> {
        if !self.known(Kind::Grouper, &c, key) {
            return None;
        }
        let component = self.registry.groupers.get(&c.type_name)?.clone();
        self.build(|raw| (component.build)(raw, cx), c, key)
    }
}

/// The start of the line whose key (before `=`, or a `[table]` header)
/// has the most dotted parts, and that count.
fn deepest_key(text: &str) -> (usize, usize) {
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

struct RawComponent<'t> {
    type_name: String,
    type_span: Range<usize>,
    span: Range<usize>,
    table: DeTable<'t>,
}

#[cfg(test)]
mod tests;
