//! The command line: `run`, `validate`, `once`, `plugins`. A plugin crate
//! gets the same CLI with its own types by calling [`main`] with its
//! registry.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Config, ConfigErrors};
use databay_component::{Kind, Registry};

/// Exit code for configuration errors (sysexits' EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;
/// Exit code for a bad command line (unknown link or type).
pub const EXIT_USAGE: u8 = 2;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines: time, level, update, component, message.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "databay",
    version,
    about = "Moves data from inlets to outlets on a schedule."
)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        global = true,
        env = "DATABAY_LOG_FORMAT"
    )]
    log_format: LogFormat,
    /// Log level or filter (`info`, `debug`, `databay_core=debug,info`).
    /// `RUST_LOG`, when set, wins.
    #[arg(long, global = true, env = "DATABAY_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Worker threads of the async runtime (timers, pulls, pushes). Default:
    /// one per core.
    #[arg(long, global = true, env = "DATABAY_THREADS")]
    threads: Option<std::num::NonZeroUsize>,
    /// How many heavy jobs (a large batch through processors, parsed or
    /// encoded) run at once, off the async workers; more queue. Default:
    /// one less than the cores, at least one. 0 runs them on the async
    /// workers, where they hold up other links' timers.
    #[arg(long, global = true, env = "DATABAY_COMPUTE_THREADS")]
    compute_threads: Option<usize>,
    /// How many threads one heavy job spreads its parts over (a large
    /// batch through a chain of stateless processors, or encoded to CSV,
    /// in parts of a few hundred records, put back in order). Default:
    /// `--threads` if given, else one per core. 1 keeps each job on one
    /// core; with `--compute-threads 0` nothing is split.
    #[arg(long, global = true, env = "DATABAY_SPLIT_THREADS")]
    split_threads: Option<std::num::NonZeroUsize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the links of CONFIG until SIGINT/SIGTERM (SIGHUP reloads CONFIG).
    Run {
        /// The config file.
        config: PathBuf,
    },
    /// Check CONFIG as `run` would, without starting anything.
    Validate {
        /// The config file.
        config: PathBuf,
    },
    /// Run one transfer of every link (or one) and exit; non-zero if any failed.
    Once {
        /// The config file.
        config: PathBuf,
        /// Only this link.
        #[arg(long)]
        link: Option<String>,
        /// Keep transferring until every inlet of the link reports the end
        /// of its input (finite inputs such as files), or a transfer pulls
        /// nothing.
        #[arg(long)]
        until_exhausted: bool,
    },
    /// List every component type; with TYPE, print its documented sample config.
    Plugins {
        /// A type name (`file`, `csv`, ...), optionally qualified by kind (`outlet/file`).
        r#type: Option<String>,
    },
    /// What links resume from: the checkpoints in CONFIG's `[daemon] state_dir`.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
}

/// `databay state ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum StateAction {
    /// Every link's checkpoint, one line each: next transfer index and
    /// which inlets and outlets keep state.
    List {
        /// The config file.
        config: PathBuf,
    },
    /// One link's checkpoint, as JSON.
    Show {
        /// The config file.
        config: PathBuf,
        /// The link.
        #[arg(long)]
        link: String,
    },
    /// Forget the checkpoint of one link (`--link`) or of every link: they
    /// start afresh (replay from the start). Run it while databay is
    /// stopped.
    Reset {
        /// The config file.
        config: PathBuf,
        /// Only this link.
        #[arg(long)]
        link: Option<String>,
    },
}

/// Parses the command line and runs it with `registry`'s component types.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     let mut registry = databay::builtins();
///     // registry.inlet("my_inlet", ...);
///     databay::cli::main(registry)
/// }
/// ```
pub fn main(registry: Registry) -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init(cli.log_format, &cli.log_level);
    if let Some(n) = cli.threads {
        let _ = THREADS.set(n.get());
    }
    if let Some(n) = cli.split_threads.or(cli.threads) {
        databay_core::compute::set_split_threads(n.get());
    }
    if let Some(n) = cli.compute_threads {
        databay_core::compute::set_threads(n);
    }
    match cli.command {
        Command::Plugins { r#type } => plugins(&registry, r#type.as_deref()),
        Command::Validate { config } => validate(&config, &registry),
        Command::Run { config } => with_runtime(|| crate::daemon::run(config, registry)),
        Command::State { action } => with_runtime(|| crate::state::command(action, registry)),
        Command::Once {
            config,
            link,
            until_exhausted,
        } => with_runtime(|| crate::daemon::once(config, registry, link, until_exhausted)),
    }
}

/// `--threads`, for the runtime [`with_runtime`] builds.
static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

fn with_runtime<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = THREADS.get() {
        builder.worker_threads(*n);
    }
    match builder.enable_all().build() {
        Ok(runtime) => {
            let code = runtime.block_on(f());
            // Dropping the runtime would wait for every blocking task, and
            // after a forced stop one may never end (an inlet blocked
            // opening or reading a FIFO): a second signal must still exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            code
        }
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints every error of a config, and returns EX_CONFIG.
pub(crate) fn config_failed(errors: &ConfigErrors) -> ExitCode {
    eprintln!("{errors}");
    let n = errors.0.len();
    eprintln!("{n} error{} in the config", if n == 1 { "" } else { "s" });
    ExitCode::from(EXIT_CONFIG)
}

fn validate(path: &Path, registry: &Registry) -> ExitCode {
    match Config::load(path, registry) {
        Err(errors) => config_failed(&errors),
        Ok(config) => {
            for w in &config.warnings {
                eprintln!("warning: {w}");
            }
            // One write per line (stdout is line-buffered) is 100 000
            // system calls for 100 000 links.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let _ = writeln!(
                out,
                "{}: ok, {} link{}",
                path.display(),
                config.links.len(),
                if config.links.len() == 1 { "" } else { "s" }
            );
            for l in &config.links {
                let s = &l.summary;
                let stages: Vec<String> = [
                    s.inlets.join(" + "),
                    s.processors.join(" -> "),
                    s.groupers.join(" -> "),
                    s.outlets.join(" + "),
                ]
                .into_iter()
                .filter(|stage| !stage.is_empty())
                .collect();
                let _ = writeln!(
                    out,
                    "  {} ({}): {}",
                    s.name,
                    s.schedule,
                    stages.join(" -> ")
                );
            }
            let _ = out.flush();
            ExitCode::SUCCESS
        }
    }
}

fn plugins(registry: &Registry, wanted: Option<&str>) -> ExitCode {
    let components = registry.components();
    let mut out = std::io::stdout().lock();
    let Some(wanted) = wanted else {
        for kind in Kind::ALL {
            let _ = writeln!(out, "{kind}s:");
            for c in components.iter().filter(|c| c.kind == kind) {
                let resumes = if c.resume_state.is_some() {
                    " [resume state]"
                } else {
                    ""
                };
                let _ = writeln!(out, "  {:<12} {}{resumes}", c.name, c.summary);
            }
        }
        let _ = writeln!(
            out,
            "\n`databay plugins TYPE` prints a type's documented sample config.\n\
             [resume state]: the inlet keeps a position that a restore carries on from."
        );
        return ExitCode::SUCCESS;
    };
    let (kind, name) = match wanted.split_once('/') {
        Some((k, n)) => (Kind::ALL.into_iter().find(|kind| kind.as_str() == k), n),
        None => (None, wanted),
    };
    let matches: Vec<_> = components
        .iter()
        .filter(|c| c.name == name && kind.is_none_or(|k| k == c.kind))
        .collect();
    if matches.is_empty() {
        let names: Vec<&str> = components.iter().map(|c| c.name.as_str()).collect();
        let hint = crate::config::closest_name(name, names.iter().copied())
            .map(|n| format!(" (did you mean `{n}`?)"))
            .unwrap_or_default();
        eprintln!("error: no component type `{wanted}`{hint}; `databay plugins` lists them");
        return ExitCode::from(EXIT_USAGE);
    }
    for (i, c) in matches.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(out);
        }
        let header = match c.kind {
            Kind::Inlet => "[[link.inlet]]",
            Kind::Outlet => "[[link.outlet]]",
            Kind::Processor => "[[link.processor]]",
            Kind::Grouper => "[[link.grouper]]",
        };
        let resume = c
            .resume_state
            .as_ref()
            .map(|holds| format!("# resume state: {holds}\n"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "# {} `{}`: {}\n{resume}{header}\n{}",
            c.kind,
            c.name,
            c.summary,
            c.sample.trim_end()
        );
    }
    ExitCode::SUCCESS
}
