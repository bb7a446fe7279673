//! `databay run` and `databay once`: the config turned into a planner,
//! signals (SIGINT/SIGTERM: graceful shutdown, a second one forces exit;
//! SIGHUP: reload), and reloads that replace only the links that changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use databay_core::checkpoint::StateStore;
use databay_core::{Link, Planner};
use futures::future::join_all;

use crate::config::{Config, LinkSummary};
use databay_component::Registry;

use crate::scrub::say;

type Summaries = Arc<RwLock<BTreeMap<String, LinkSummary>>>;

/// What the running daemon knows of each link it loaded.
struct Loaded {
    fingerprints: BTreeMap<String, String>,
    /// Each link's processors: name and fingerprint.
    processors: BTreeMap<String, Vec<(String, String)>>,
    summaries: Summaries,
    admin: crate::config::AdminSettings,
    daemon: crate::config::DaemonSettings,
    /// Where links keep their checkpoints (`[daemon] state_dir`).
    store: Option<Arc<dyn StateStore>>,
}

/// Opens the state store `[daemon]` names, if any, and hands it to every
/// link of the config. With `prune` (`run`, which runs every link of the
/// config), the state of links the config no longer has is deleted from a
/// `state_dir`, so that the store stays bounded; `once --link` runs one
/// link and leaves the others' alone. A `state_url` table is never pruned:
/// other daemons may keep their links' checkpoints in it (`databay state
/// reset` deletes one by hand).
async fn open_store(config: &Config, prune: bool) -> Result<Option<Arc<dyn StateStore>>, String> {
    let Some(store) = crate::state::AnyStore::open(&config.daemon).await? else {
        return Ok(None);
    };
    if prune && matches!(store, crate::state::AnyStore::Redb(_)) {
        for (name, _) in store.all().await? {
            if !config.links.iter().any(|l| l.summary.name == name) {
                store.forget(&name).await?;
                tracing::info!(
                    link = %name,
                    "deleted the state of link `{name}`: the config no longer has it"
                );
            }
        }
    }
    tracing::info!(store = %store.describe(), "links checkpoint into the state store");
    let store = store.shared();
    attach_store(config, &Some(store.clone()));
    Ok(Some(store))
}

fn attach_store(config: &Config, store: &Option<Arc<dyn StateStore>>) {
    if let Some(store) = store {
        for l in &config.links {
            l.link.use_state_store(store.clone());
        }
    }
}

fn planner_for(config: &Config) -> Result<Planner, databay_core::PlannerError> {
    config
        .links
        .iter()
        .fold(
            Planner::builder()
                .ignore_exceptions(config.daemon.ignore_exceptions)
                .fail_fast(config.daemon.fail_fast)
                .immediate_transfer(config.daemon.immediate_transfer)
                .shutdown_grace(config.daemon.shutdown_grace.0),
            |b, l| b.link(l.link.clone()),
        )
        .build()
}

pub(crate) async fn run(path: PathBuf, registry: Registry) -> ExitCode {
    let mut config = match Config::load(&path, &registry) {
        Ok(c) => {
            crate::scrub::add_secrets(&c.secrets);
            for w in &c.warnings {
                tracing::warn!("{w}");
            }
            c
        }
        Err(errors) => return crate::cli::config_failed(&errors),
    };
    let store = match open_store(&config, true).await {
        Ok(store) => store,
        Err(e) => {
            say!("error: {e}");
            return ExitCode::from(crate::cli::EXIT_CONFIG);
        }
    };
    let planner = match planner_for(&config) {
        Ok(p) => p,
        Err(e) => {
            say!("error: {e}");
            return ExitCode::from(crate::cli::EXIT_CONFIG);
        }
    };
    let link_count = config.links.len();
    // What the daemon keeps of each link is moved out of the config rather
    // than copied: with 100 000 links each copy is tens of megabytes.
    let (mut fingerprints, mut processors, mut summaries) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for l in std::mem::take(&mut config.links) {
        let name = l.summary.name.clone();
        fingerprints.insert(name.clone(), l.fingerprint);
        processors.insert(name.clone(), l.processors);
        summaries.insert(name, l.summary);
    }
    let mut loaded = Loaded {
        store,
        fingerprints,
        processors,
        summaries: Arc::new(RwLock::new(summaries)),
        admin: config.admin.clone(),
        daemon: config.daemon.clone(),
    };

    let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    #[cfg(feature = "admin")]
    let admin_task = if config.admin.enabled {
        let listener = match tokio::net::TcpListener::bind(config.admin.listen).await {
            Ok(l) => l,
            Err(e) => {
                say!(
                    "error: cannot bind the admin endpoint to {}: {e} (set [admin] listen, or enabled = false)",
                    config.admin.listen
                );
                return ExitCode::FAILURE;
            }
        };
        let loopback = config.admin.listen.ip().is_loopback();
        if !loopback && config.admin.token.is_none() {
            tracing::warn!(
                listen = %config.admin.listen,
                "the admin endpoint listens beyond loopback without a token: anyone who reaches it can read and control links (set [admin] token)"
            );
        }
        let state = crate::admin::AdminState::new(planner.clone(), loaded.summaries.clone())
            .with_link_series(config.admin.link_metrics, config.admin.link_histograms)
            .with_token(config.admin.token.clone())
            .loopback_hosts_only(loopback);
        Some(tokio::spawn(crate::admin::serve(
            listener,
            state,
            crate::admin::Limits::from(&config.admin),
            async move {
                let _ = admin_stopped.await;
            },
        )))
    } else {
        drop(admin_stopped);
        None
    };
    #[cfg(not(feature = "admin"))]
    drop(admin_stopped);

    tracing::info!(config = %path.display(), links = link_count, "databay starting");
    let mut running = tokio::spawn({
        let planner = planner.clone();
        async move { planner.start().await }
    });

    let outcome = supervise(&path, &registry, &planner, &mut loaded, &mut running).await;
    let _ = admin_stop.send(());
    #[cfg(feature = "admin")]
    if let Some(mut task) = admin_task {
        // Open requests get a moment to finish; one stuck on a hung forced
        // transfer must not keep the daemon alive.
        if tokio::time::timeout(std::time::Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
    outcome
}

#[cfg(unix)]
async fn supervise(
    path: &Path,
    registry: &Registry,
    planner: &Planner,
    loaded: &mut Loaded,
    running: &mut tokio::task::JoinHandle<Result<(), databay_core::PlannerError>>,
) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            say!("error: cannot install signal handlers");
            planner.shutdown(true);
            return finish(running.await);
        }
    };
    loop {
        tokio::select! {
            result = &mut *running => return finish(result),
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(path, registry, planner, loaded).await,
        }
    }
    tracing::info!(
        "shutting down: letting in-flight transfers finish, flushing buffers (signal again to force)"
    );
    planner.shutdown(true);
    tokio::select! {
        result = &mut *running => finish(result),
        _ = term.recv() => forced(),
        _ = int.recv() => forced(),
    }
}

#[cfg(not(unix))]
async fn supervise(
    _path: &Path,
    _registry: &Registry,
    planner: &Planner,
    _loaded: &mut Loaded,
    running: &mut tokio::task::JoinHandle<Result<(), databay_core::PlannerError>>,
) -> ExitCode {
    tokio::select! {
        result = &mut *running => return finish(result),
        _ = tokio::signal::ctrl_c() => {}
    }
    planner.shutdown(true);
    tokio::select! {
        result = &mut *running => finish(result),
        _ = tokio::signal::ctrl_c() => forced(),
    }
}

fn forced() -> ExitCode {
    tracing::warn!("second signal: exiting without waiting");
    ExitCode::from(130)
}

fn finish(
    result: Result<Result<(), databay_core::PlannerError>, tokio::task::JoinError>,
) -> ExitCode {
    match result {
        Ok(Ok(())) => {
            tracing::info!("databay stopped");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            tracing::error!("databay stopped: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!("the planner task failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Re-reads the config: a broken file is rejected with its errors and the
/// running links stay; otherwise removed and changed links are stopped
/// (flushed, shut down), changed and new ones started, unchanged ones left
/// running undisturbed.
async fn reload(path: &Path, registry: &Registry, planner: &Planner, loaded: &mut Loaded) {
    tracing::info!(config = %path.display(), "SIGHUP: reloading the config");
    let config = match Config::load(path, registry) {
        Ok(c) => {
            crate::scrub::add_secrets(&c.secrets);
            for w in &c.warnings {
                tracing::warn!("{w}");
            }
            c
        }
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!("reload rejected: {e}");
            }
            tracing::error!("the config has errors; the running links are unchanged");
            return;
        }
    };
    if config.admin != loaded.admin {
        tracing::warn!("[admin] changed; restart databay to apply it");
    }
    if config.daemon != loaded.daemon {
        tracing::warn!("[daemon] changed; restart databay to apply it");
    }
    // A replaced link's new version resumes from the checkpoint its old
    // version wrote when it stopped.
    attach_store(&config, &loaded.store);
    let mut kept = 0;
    let new_names: std::collections::HashSet<&str> = config
        .links
        .iter()
        .map(|l| l.summary.name.as_str())
        .collect();
    let stale: Vec<String> = loaded
        .fingerprints
        .keys()
        .filter(|n| !new_names.contains(n.as_str()))
        .cloned()
        .collect();
    for name in stale {
        let _ = remove(planner, loaded, &name).await;
        match &loaded.store {
            // Its last checkpoint was written as it stopped: gone with it.
            Some(store) => match store.remove(&name).await {
                Ok(()) => tracing::info!(link = %name, "link removed; its state is deleted"),
                Err(e) => tracing::error!(
                    link = %name,
                    "link removed; deleting its state failed: {e} (it is deleted at the next start)"
                ),
            },
            None => tracing::info!(link = %name, "link removed"),
        }
    }
    for l in config.links {
        let name = l.summary.name.clone();
        let mut carried = Vec::new();
        let old = match loaded.fingerprints.get(&name) {
            Some(fp) if *fp == l.fingerprint => {
                kept += 1;
                continue;
            }
            Some(_) => {
                tracing::info!(link = %name, "link changed; replacing it");
                carried = carried_over(&name, loaded.processors.get(&name), &l.processors);
                if let Some(running) = planner.link(&name) {
                    running.spare_on_flush(carried.clone());
                }
                Some(remove(planner, loaded, &name).await)
            }
            None => {
                tracing::info!(link = %name, "link added");
                None
            }
        };
        let carried = match old.as_ref().and_then(|o| o.link.as_ref()) {
            Some(old_link) if !carried.is_empty() => {
                let swapped = old_link.swap_processors(&l.link, &carried).await;
                for p in &swapped {
                    tracing::info!(link = %name, processor = %p, "processor `{p}` unchanged; its state carries over");
                }
                swapped
            }
            _ => Vec::new(),
        };
        // A replacement that cannot start leaves the old version running;
        // a new link that cannot start is added as failed and retried
        // (unless `fail_fast`).
        let added = if old.is_some() {
            planner.add_started_link(l.link.clone()).await
        } else {
            planner.add_link(l.link.clone()).await
        };
        if let Err(e) = added {
            match old {
                Some(old) => {
                    tracing::error!(link = %name, "cannot start the link; keeping its old version: {e}");
                    if let Some(old_link) = &old.link {
                        // The carried state goes back with it.
                        l.link.swap_processors(old_link, &carried).await;
                        old_link.spare_on_flush(Vec::<String>::new());
                    }
                    restore(planner, loaded, old).await;
                }
                None => tracing::error!(link = %name, "cannot start the link: {e}"),
            }
            continue;
        }
        loaded.fingerprints.insert(name.clone(), l.fingerprint);
        loaded.processors.insert(name.clone(), l.processors);
        write(&loaded.summaries).insert(name, l.summary);
    }
    tracing::info!(unchanged = kept, "reload done");
}

/// The processors of a changed link that carry over to its replacement:
/// a name used once in each version, with the same type and options. The
/// others of the old version end (flushed) when it is removed; says so for
/// those whose options changed.
fn carried_over(
    link: &str,
    old: Option<&Vec<(String, String)>>,
    new: &[(String, String)],
) -> Vec<String> {
    let Some(old) = old else {
        return Vec::new();
    };
    let once = |list: &[(String, String)], name: &str| {
        let mut found = list.iter().filter(|(n, _)| n == name);
        match (found.next(), found.next()) {
            (Some((_, fp)), None) => Some(fp.clone()),
            _ => None,
        }
    };
    let mut carried = Vec::new();
    for (name, fp) in new {
        match once(old, name) {
            Some(old_fp) if old_fp == *fp && once(new, name).is_some() => {
                carried.push(name.clone())
            }
            Some(_) => tracing::info!(
                link = %link,
                processor = %name,
                "processor `{name}` changed; flushed before its replacement starts"
            ),
            None => {}
        }
    }
    carried
}

fn write(s: &Summaries) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, LinkSummary>> {
    s.write().unwrap_or_else(|p| p.into_inner())
}

/// What a removed link was, to put it back if its replacement fails.
struct Removed {
    link: Option<Link>,
    fingerprint: Option<String>,
    processors: Option<Vec<(String, String)>>,
    summary: Option<LinkSummary>,
}

async fn remove(planner: &Planner, loaded: &mut Loaded, name: &str) -> Removed {
    let link = match planner.remove_link(name).await {
        Ok(link) => Some(link),
        Err(e) => {
            tracing::error!(link = %name, "while stopping the link: {e}");
            planner.link(name)
        }
    };
    Removed {
        link,
        fingerprint: loaded.fingerprints.remove(name),
        processors: loaded.processors.remove(name),
        summary: write(&loaded.summaries).remove(name),
    }
}

async fn restore(planner: &Planner, loaded: &mut Loaded, old: Removed) {
    let Removed {
        link: Some(link),
        fingerprint,
        processors,
        summary,
    } = old
    else {
        return;
    };
    let name = link.name().to_owned();
    if planner.link(&name).is_none()
        && let Err(e) = planner.add_link(link).await
    {
        tracing::error!(link = %name, "cannot restart the old link either: {e}");
        return;
    }
    if let Some(f) = fingerprint {
        loaded.fingerprints.insert(name.clone(), f);
    }
    if let Some(p) = processors {
        loaded.processors.insert(name.clone(), p);
    }
    if let Some(s) = summary {
        write(&loaded.summaries).insert(name, s);
    }
}

pub(crate) async fn once(
    path: PathBuf,
    registry: Registry,
    only: Option<String>,
    until_exhausted: bool,
) -> ExitCode {
    let config = match Config::load(&path, &registry) {
        Ok(c) => {
            crate::scrub::add_secrets(&c.secrets);
            for w in &c.warnings {
                tracing::warn!("{w}");
            }
            c
        }
        Err(errors) => return crate::cli::config_failed(&errors),
    };
    if let Err(e) = open_store(&config, false).await {
        say!("error: {e}");
        return ExitCode::from(crate::cli::EXIT_CONFIG);
    }
    let links: Vec<Link> = match &only {
        None => config.links.iter().map(|l| l.link.clone()).collect(),
        Some(name) => match config.links.iter().find(|l| l.summary.name == *name) {
            Some(l) => vec![l.link.clone()],
            None => {
                let names: Vec<&str> = config
                    .links
                    .iter()
                    .map(|l| l.summary.name.as_str())
                    .collect();
                let hint = crate::config::closest_name(name, names.iter().copied())
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                say!("error: no link named `{name}` in {}{hint}", path.display());
                return ExitCode::from(crate::cli::EXIT_USAGE);
            }
        },
    };
    // One future per link in one task: unconstrained by tokio's budget,
    // which would otherwise have every poll go through all of them (see
    // `Planner::retire`).
    let outcomes = tokio::task::coop::unconstrained(join_all(
        links.iter().map(|l| once_link(l, until_exhausted)),
    ))
    .await;
    let failed = outcomes.iter().filter(|ok| !**ok).count();
    if failed > 0 {
        say!("{failed} of {} link(s) failed", links.len());
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One link's `once`: start, transfer (until its input ends, if asked),
/// flush what processors hold, shut down. Returns whether all went well.
async fn once_link(link: &Link, until_exhausted: bool) -> bool {
    if let Err(e) = link.start().await {
        // A NodeError names the link itself.
        say!("{e}");
        return false;
    }
    let mut ok = true;
    let (mut transfers, mut records_in, mut records_out) = (0u64, 0usize, 0usize);
    // Records an outlet refused (each logged as it happened): not
    // delivered, so `once` does not report success.
    let mut rejected = 0usize;
    // ...unless the link's dead-letter outlet took them.
    let mut dead_lettered = 0usize;
    loop {
        let pulled = match link.transfer().await {
            Ok(report) => {
                transfers += 1;
                records_in += report.records_in;
                records_out += report.records_out;
                rejected += report.rejected.len();
                dead_lettered += report.dead_lettered;
                for e in &report.ignored {
                    say!("link `{}`: ignored: {e}", link.name());
                }
                report.records_in
            }
            Err(e) => {
                say!("{e}");
                for cause in &e.errors {
                    say!("  {cause}");
                }
                ok = false;
                break;
            }
        };
        // An input that has nothing now but has not ended (a followed file,
        // an endless source) must not spin forever.
        if !until_exhausted || link.is_exhausted() || pulled == 0 {
            break;
        }
    }
    match link.flush().await {
        Ok(report) => {
            records_out += report.records_out;
            rejected += report.rejected.len();
            dead_lettered += report.dead_lettered;
        }
        Err(e) => {
            say!("{e}");
            ok = false;
        }
    }
    for e in link.shutdown().await {
        say!("{e}");
        ok = false;
    }
    let mut rejects = if rejected > 0 {
        format!(", {rejected} rejected by an outlet")
    } else {
        String::new()
    };
    if dead_lettered > 0 {
        rejects.push_str(&format!(", {dead_lettered} to the dead-letter outlet"));
    }
    // With a dead-letter outlet every reject is one of its records (or the
    // transfer failed): only rejects beyond them were lost.
    ok &= rejected <= dead_lettered;
    say!(
        "link `{}`: {} transfer{}, {records_in} records in, {records_out} out{rejects}{}",
        link.name(),
        transfers,
        if transfers == 1 { "" } else { "s" },
        if ok { "" } else { " (failed)" }
    );
    ok
}
