//! The TOML config: daemon settings and any number of links, each with its
//! schedule, inlets, processors, groupers and outlets. Loading checks the
//! whole file and reports every problem at once, each located by line,
//! column and key path; `${VAR}` / `${VAR:-default}` come from the
//! environment and are never echoed back.
//!
//! `settings` holds the `[daemon]`, `[admin]` and link-level keys,
//! `loader` walks the document, `schedule` turns a link's schedule keys
//! into a [`Schedule`](databay_core::Schedule), and `components` builds
//! each inlet, processor, grouper and outlet through the registry.

mod components;
pub(crate) mod error;
mod interpolate;
mod loader;
mod schedule;
mod sections;
mod settings;

use std::path::{Path, PathBuf};

use databay_core::Link;
use toml::de::{DeTable, DeValue};

pub use databay_component::HumanDuration;
use databay_component::Registry;
use error::Diagnostics;
pub(crate) use error::closest as closest_name;
pub use error::{ConfigError, ConfigErrors};
use loader::{Loader, deepest_key};
pub use settings::{AdminSettings, DaemonSettings};

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
    /// The dead-letter outlet's type, if the link has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
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
    /// Each of its processors' name and the fingerprint of its type and
    /// options, in order: a reload carries an unchanged one's state over.
    pub processors: Vec<(String, String)>,
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
    /// The values `${VAR}` took from the environment: kept out of every
    /// log line, admin answer and message at run time.
    pub secrets: Vec<String>,
    /// What is valid but worth saying (an input file that does not exist
    /// yet), located like errors.
    pub warnings: Vec<ConfigError>,
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
        let error = |line, column, message| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line,
                column,
                key: String::new(),
                message,
                hint: None,
            }])
        };
        let bytes = std::fs::read(path)
            .map_err(|e| error(0, 0, format!("cannot read the config file: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            // Locate the first bad byte: line and column (in characters)
            // of the valid text before it.
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let good = std::str::from_utf8(good).unwrap_or_default();
            let line = good.matches('\n').count() + 1;
            let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            error(
                line,
                column,
                "the file is not valid UTF-8 (TOML must be UTF-8)".to_owned(),
            )
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
        if let Some(starts) = sections::link_sections(text)
            && let Some(checked) = Self::check_by_link(path, text, &starts, registry, env)
        {
            return checked;
        }
        Self::check_whole(path, text, registry, env)
    }

    /// [`Config::check`] one `[[link]]` section at a time (`starts`, from
    /// [`sections::link_sections`]): each is parsed, checked and built
    /// before the next is read, so memory holds one link's parse, not the
    /// file's. `None` when the file is not laid out for it (a syntax error
    /// anywhere, `[daemon]` or `[admin]` after the links, a `link` key
    /// before them): then the whole file is parsed at once, which reports
    /// exactly what the file says. Both ways give the same result for a
    /// file that can be read section by section.
    fn check_by_link(
        path: &Path,
        text: &str,
        starts: &[usize],
        registry: &Registry,
        env: &interpolate::Lookup<'_>,
    ) -> Option<Result<Config, ConfigErrors>> {
        let head_end = *starts.first()?;
        let (mut head, errors) = DeTable::parse_recoverable(&text[..head_end]);
        if !errors.is_empty() || head.get_ref().contains_key("link") {
            return None;
        }
        let mut loader = Loader {
            diag: Diagnostics::new(path, text),
            registry,
            base_dir: base_dir(path),
        };
        interpolate::table(head.get_mut(), env, &mut loader.diag, "");
        let (daemon, admin) = loader.settings(head.get_mut());
        let mut links = Vec::with_capacity(starts.len());
        let mut names = std::collections::BTreeSet::new();
        for (i, &start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(text.len());
            let (section, errors) = DeTable::parse_recoverable(&text[start..end]);
            let mut section = section.into_inner();
            if !errors.is_empty() || section.len() != 1 {
                return None;
            }
            let mut item = match section.remove("link").map(toml::Spanned::into_inner) {
                Some(DeValue::Array(items)) if items.len() == 1 => items.into_iter().next()?,
                _ => return None,
            };
            loader.diag.set_offset(start);
            interpolate::link(&mut item, i, env, &mut loader.diag);
            links.extend(loader.link(i, item, &mut names));
        }
        loader.diag.set_offset(0);
        let config = Config {
            path: path.to_path_buf(),
            daemon,
            admin,
            links,
            secrets: Vec::new(),
            warnings: Vec::new(),
        };
        Some(Self::finish(loader, config))
    }

    fn check_whole(
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
        let mut loader = Loader {
            diag,
            registry,
            base_dir: base_dir(path),
        };
        let config = loader.document(path, doc.into_inner());
        Self::finish(loader, config)
    }

    fn finish(mut loader: Loader<'_, '_>, mut config: Config) -> Result<Config, ConfigErrors> {
        if loader.diag.has_errors() {
            return Err(ConfigErrors(loader.diag.finish()));
        }
        config.secrets = loader.diag.secret_values().to_vec();
        config.warnings = loader.diag.take_warnings();
        Ok(config)
    }
}

/// What relative paths in `path` are relative to: its directory.
fn base_dir(path: &Path) -> PathBuf {
    path.parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests;
