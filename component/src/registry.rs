//! The component registry: type names (`type = "file"`) mapped to
//! factories that build inlets, outlets, processors and groupers from their
//! options. The built-ins register themselves; a plugin crate adds its own
//! and runs the same CLI (see `examples/plugin`).
//!
//! Options are plain serde structs: the registry deserializes each
//! component's TOML table into them, so a factory only ever sees typed,
//! validated values. Mark option structs `#[serde(deny_unknown_fields)]` so
//! typos are reported (with the closest valid name), and document every
//! field: the struct is the component's spec, and [`crate::testing`]
//! checks its sample and README against it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use databay_core::{
    BoxError, Grouper, Inlet, InletBuilder, InletHandle, Outlet, OutletBuilder, OutletHandle,
    Processor,
};
use serde::de::DeserializeOwned;

use crate::BuildError;

/// What kind of component a type name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// An inlet (`[[link.inlet]]`).
    Inlet,
    /// An outlet (`[[link.outlet]]`).
    Outlet,
    /// A processor (`[[link.processor]]`, `[[link.outlet.processor]]`).
    Processor,
    /// A grouper (`[[link.grouper]]`).
    Grouper,
}

impl Kind {
    /// Every kind, in display order.
    pub const ALL: [Kind; 4] = [Kind::Inlet, Kind::Outlet, Kind::Processor, Kind::Grouper];

    /// The kind's name as the config spells its tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Inlet => "inlet",
            Kind::Outlet => "outlet",
            Kind::Processor => "processor",
            Kind::Grouper => "grouper",
        }
    }

    /// The keys every component of this kind takes besides its own
    /// options, read by the config itself: `name`, an inlet's `metadata`
    /// and `timeout`, an outlet's `timeout`, `retry` and own `processor`s.
    pub fn common_options(self) -> &'static [&'static str] {
        match self {
            Kind::Inlet => &["name", "metadata", "timeout"],
            Kind::Outlet => &["name", "timeout", "retry", "processor"],
            Kind::Processor => &["name"],
            Kind::Grouper => &[],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a factory knows about where it is building, and where it reports
/// what is valid but probably not what the user meant ([`warn`](Self::warn)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BuildContext {
    /// The link the component belongs to.
    pub link: String,
    /// The directory of the config file; relative paths in options are
    /// resolved against it.
    pub base_dir: PathBuf,
    inlet_concurrency: usize,
    parallelism: usize,
    warnings: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl BuildContext {
    /// The context of a component of `link`, in a config file in `base_dir`.
    pub fn new(link: impl Into<String>, base_dir: impl Into<PathBuf>) -> Self {
        BuildContext {
            link: link.into(),
            base_dir: base_dir.into(),
            inlet_concurrency: 0,
            parallelism: 1,
            warnings: Default::default(),
        }
    }

    /// The link's settings a partitioned inlet follows: how many inlets
    /// (or partitions) are pulled at once (`inlet_concurrency`, 0 for no
    /// limit) and how many workers a dynamic source runs (`parallelism`,
    /// at least 1).
    pub fn with_link_settings(mut self, inlet_concurrency: usize, parallelism: usize) -> Self {
        self.inlet_concurrency = inlet_concurrency;
        self.parallelism = parallelism.max(1);
        self
    }

    /// The link's `inlet_concurrency` (0: no limit, the default).
    pub fn inlet_concurrency(&self) -> usize {
        self.inlet_concurrency
    }

    /// The link's `parallelism` (default 1).
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// Reports something about `option` that is valid but worth saying
    /// (`validate` prints it located at the option; `run` logs it), such
    /// as an input file that does not exist yet.
    pub fn warn(&self, option: &str, message: impl Into<String>) {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((option.to_owned(), message.into()));
    }

    /// The warnings reported so far, as (option, message), emptied.
    pub fn take_warnings(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// `path` resolved against the config file's directory.
    pub fn resolve(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The path option `option` resolved against the config file's
    /// directory; an empty one (which would name that directory) is an
    /// error about the option.
    ///
    /// ```
    /// use databay_component::BuildContext;
    /// let cx = BuildContext::new("l", "/etc/databay");
    /// assert_eq!(cx.path("path", "out.csv".as_ref()).unwrap(), std::path::Path::new("/etc/databay/out.csv"));
    /// assert_eq!(cx.path("path", "".as_ref()).unwrap_err().to_string(), "option `path`: must not be empty");
    /// ```
    pub fn path(&self, option: &str, path: &Path) -> Result<PathBuf, crate::OptionError> {
        if path.as_os_str().is_empty() {
            return Err(crate::OptionError::new(option, "must not be empty"));
        }
        Ok(self.resolve(path))
    }
}

/// A component's options as the config holds them (its TOML table, with
/// spans), ready to deserialize.
pub type RawOptions<'a> = toml::Spanned<toml::de::DeValue<'a>>;

type Factory<T> =
    Arc<dyn for<'a> Fn(RawOptions<'a>, &BuildContext) -> Result<T, BuildError> + Send + Sync>;

/// One registered type.
pub struct Component<T> {
    /// The type name used in configs.
    pub name: String,
    /// One line saying what it does.
    pub summary: String,
    /// A documented sample TOML table with every option and its default.
    pub sample: String,
    /// The option names its options struct declares (`None` when the
    /// struct does not say, e.g. with `#[serde(flatten)]`).
    pub options: Option<&'static [&'static str]>,
    /// Inlets: what their resume state holds, if they keep one.
    pub resume_state: Option<String>,
    build: Factory<T>,
}

impl<T> Component<T> {
    fn new(
        name: &str,
        summary: &str,
        sample: &str,
        options: Option<&'static [&'static str]>,
        build: Factory<T>,
    ) -> Self {
        Component {
            name: name.to_owned(),
            summary: summary.to_owned(),
            sample: sample.to_owned(),
            options,
            resume_state: None,
            build,
        }
    }

    /// Builds one component from its options table (without `type` and
    /// the [common options](Kind::common_options)).
    pub fn build(&self, options: RawOptions<'_>, cx: &BuildContext) -> Result<T, BuildError> {
        (self.build)(options, cx)
    }
}

impl<T> Clone for Component<T> {
    fn clone(&self) -> Self {
        Component {
            name: self.name.clone(),
            summary: self.summary.clone(),
            sample: self.sample.clone(),
            options: self.options,
            resume_state: self.resume_state.clone(),
            build: self.build.clone(),
        }
    }
}

/// Describes one registered type, for `databay plugins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// What kind of component.
    pub kind: Kind,
    /// The type name.
    pub name: String,
    /// One line saying what it does.
    pub summary: String,
    /// The sample TOML.
    pub sample: String,
    /// The option names its options struct declares, when known.
    pub options: Option<&'static [&'static str]>,
    /// Inlets: what their resume state holds, if they keep one
    /// ([`Registry::resume_state`]).
    pub resume_state: Option<String>,
}

/// Type names to factories, one table per kind.
#[derive(Clone, Default)]
pub struct Registry {
    inlets: BTreeMap<String, Component<InletBuilder>>,
    outlets: BTreeMap<String, Component<OutletBuilder>>,
    processors: BTreeMap<String, Component<Box<dyn Processor>>>,
    groupers: BTreeMap<String, Component<Box<dyn Grouper>>>,
}

fn factory<O, T, F, R>(build: F, wrap: impl Fn(T) -> R + Send + Sync + 'static) -> Factory<R>
where
    O: DeserializeOwned,
    F: Fn(O, &BuildContext) -> Result<T, BoxError> + Send + Sync + 'static,
{
    Arc::new(move |raw: RawOptions<'_>, cx: &BuildContext| {
        let options = O::deserialize(serde::de::IntoDeserializer::into_deserializer(raw))
            .map_err(BuildError::Options)?;
        build(options, cx).map(&wrap).map_err(BuildError::Invalid)
    })
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an inlet type. `build` turns deserialized options into
    /// the inlet; `sample` documents every option.
    ///
    /// ```
    /// use databay_component::{BuildContext, Registry};
    /// use databay_core::{async_trait, BoxError, Inlet, Pull, Update};
    ///
    /// #[derive(serde::Deserialize)]
    /// #[serde(deny_unknown_fields)]
    /// struct Options { greeting: String }
    ///
    /// struct Hello(String);
    /// #[async_trait]
    /// impl Inlet for Hello {
    ///     async fn pull(&mut self, _: &Update) -> Result<Pull, BoxError> {
    ///         Ok(Pull::value(self.0.clone()))
    ///     }
    /// }
    ///
    /// let mut registry = Registry::new();
    /// registry.inlet("hello", "Says hello.", "greeting = \"hi\"\n", |o: Options, _: &BuildContext| {
    ///     Ok(Hello(o.greeting))
    /// });
    /// assert!(registry.components().iter().any(|c| c.name == "hello"));
    /// ```
    pub fn inlet<O, I, F>(&mut self, name: &str, summary: &str, sample: &str, build: F) -> &mut Self
    where
        O: DeserializeOwned,
        I: Inlet,
        F: Fn(O, &BuildContext) -> Result<I, BoxError> + Send + Sync + 'static,
    {
        self.inlets.insert(
            name.to_owned(),
            Component::new(
                name,
                summary,
                sample,
                crate::options::names::<O>(),
                factory(build, InletHandle::builder::<I>),
            ),
        );
        self
    }

    /// Says what the resume state of inlet type `name` (registered
    /// before) holds, for `databay plugins`: an inlet that implements
    /// [`Inlet::snapshot`](databay_core::Inlet::snapshot) documents it here.
    pub fn resume_state(&mut self, name: &str, holds: &str) -> &mut Self {
        if let Some(c) = self.inlets.get_mut(name) {
            c.resume_state = Some(holds.to_owned());
        }
        self
    }

    /// Registers an outlet type.
    pub fn outlet<O, T, F>(
        &mut self,
        name: &str,
        summary: &str,
        sample: &str,
        build: F,
    ) -> &mut Self
    where
        O: DeserializeOwned,
        T: Outlet,
        F: Fn(O, &BuildContext) -> Result<T, BoxError> + Send + Sync + 'static,
    {
        self.outlets.insert(
            name.to_owned(),
            Component::new(
                name,
                summary,
                sample,
                crate::options::names::<O>(),
                factory(build, OutletHandle::builder::<T>),
            ),
        );
        self
    }

    /// Registers a processor type.
    pub fn processor<O, P, F>(
        &mut self,
        name: &str,
        summary: &str,
        sample: &str,
        build: F,
    ) -> &mut Self
    where
        O: DeserializeOwned,
        P: Processor,
        F: Fn(O, &BuildContext) -> Result<P, BoxError> + Send + Sync + 'static,
    {
        self.processors.insert(
            name.to_owned(),
            Component::new(
                name,
                summary,
                sample,
                crate::options::names::<O>(),
                factory(build, |p: P| Box::new(p) as Box<dyn Processor>),
            ),
        );
        self
    }

    /// Registers a grouper type.
    pub fn grouper<O, G, F>(
        &mut self,
        name: &str,
        summary: &str,
        sample: &str,
        build: F,
    ) -> &mut Self
    where
        O: DeserializeOwned,
        G: Grouper,
        F: Fn(O, &BuildContext) -> Result<G, BoxError> + Send + Sync + 'static,
    {
        self.groupers.insert(
            name.to_owned(),
            Component::new(
                name,
                summary,
                sample,
                crate::options::names::<O>(),
                factory(build, |g: G| Box::new(g) as Box<dyn Grouper>),
            ),
        );
        self
    }

    /// The inlet type `name`.
    pub fn inlet_type(&self, name: &str) -> Option<&Component<InletBuilder>> {
        self.inlets.get(name)
    }

    /// The outlet type `name`.
    pub fn outlet_type(&self, name: &str) -> Option<&Component<OutletBuilder>> {
        self.outlets.get(name)
    }

    /// The processor type `name`.
    pub fn processor_type(&self, name: &str) -> Option<&Component<Box<dyn Processor>>> {
        self.processors.get(name)
    }

    /// The grouper type `name`.
    pub fn grouper_type(&self, name: &str) -> Option<&Component<Box<dyn Grouper>>> {
        self.groupers.get(name)
    }

    /// What is registered as `name` of `kind`.
    pub fn info(&self, kind: Kind, name: &str) -> Option<ComponentInfo> {
        self.components()
            .into_iter()
            .find(|c| c.kind == kind && c.name == name)
    }

    /// The type names registered for `kind`, sorted.
    pub fn names(&self, kind: Kind) -> Vec<&str> {
        match kind {
            Kind::Inlet => self.inlets.keys().map(String::as_str).collect(),
            Kind::Outlet => self.outlets.keys().map(String::as_str).collect(),
            Kind::Processor => self.processors.keys().map(String::as_str).collect(),
            Kind::Grouper => self.groupers.keys().map(String::as_str).collect(),
        }
    }

    /// Every registered type, by kind then name.
    pub fn components(&self) -> Vec<ComponentInfo> {
        fn infos<T>(
            kind: Kind,
            map: &BTreeMap<String, Component<T>>,
        ) -> impl Iterator<Item = ComponentInfo> + '_ {
            map.values().map(move |c| ComponentInfo {
                kind,
                name: c.name.clone(),
                summary: c.summary.clone(),
                sample: c.sample.clone(),
                options: c.options,
                resume_state: c.resume_state.clone(),
            })
        }
        infos(Kind::Inlet, &self.inlets)
            .chain(infos(Kind::Outlet, &self.outlets))
            .chain(infos(Kind::Processor, &self.processors))
            .chain(infos(Kind::Grouper, &self.groupers))
            .collect()
    }
}
