//! The admin HTTP endpoint: health, Prometheus metrics, link status as JSON,
//! link control (force a transfer, pause, resume) and a status page that
//! shows and drives all of it in a browser. The daemon binds it to
//! 127.0.0.1 unless told otherwise; `guard` keeps other sites' pages from
//! using it and checks `[admin] token` when one is set. Every answer,
//! errors included, is JSON except `/metrics` and the page.

mod guard;
mod history;
mod metrics;
mod routes;
mod server;
#[cfg(test)]
mod tests;
mod ui;
mod views;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;
use axum::routing::{get, post};
use databay_component::Secret;
use databay_core::{Link, Planner};

use crate::config::LinkSummary;
use routes::ApiError;
pub use server::Limits;
use views::LinkView;

/// Shared view the endpoint serves.
#[derive(Clone)]
pub struct AdminState {
    planner: Planner,
    summaries: Arc<RwLock<BTreeMap<String, LinkSummary>>>,
    started: SystemTime,
    metrics: Arc<metrics::Metrics>,
    history: Arc<history::History>,
    guard: Arc<guard::Guard>,
}

impl AdminState {
    /// The endpoint's view of `planner`; `summaries` (keyed by link name)
    /// describe what each configured link is made of, and may be replaced
    /// when the config is reloaded.
    pub fn new(planner: Planner, summaries: Arc<RwLock<BTreeMap<String, LinkSummary>>>) -> Self {
        AdminState {
            metrics: Arc::new(metrics::Metrics::new(
                planner.clone(),
                metrics::LinkSeries::default(),
            )),
            planner,
            summaries,
            started: SystemTime::now(),
            history: Arc::new(history::History::new()),
            guard: Arc::new(guard::Guard::new()),
        }
    }

    /// Requires `Authorization: Bearer TOKEN` on every request but the
    /// status page's own files (`[admin] token`).
    pub fn with_token(mut self, token: Option<Secret<String>>) -> Self {
        Arc::make_mut(&mut self.guard).bearer = token;
        self
    }

    /// Answers only requests whose `Host` is a loopback name or address
    /// (the daemon sets it when it listens on loopback), so that no other
    /// site reaches the endpoint by DNS rebinding.
    pub fn loopback_hosts_only(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.guard).loopback_hosts = on;
        self
    }

    /// Whether `/metrics` has each link's duration and lateness histograms
    /// (`[admin] link_histograms`; default false). The daemon-wide ones are
    /// always there.
    pub fn with_link_histograms(self, on: bool) -> Self {
        self.with_link_series(true, on)
    }

    /// Whether `/metrics` has each link's counters and its components'
    /// (`[admin] link_metrics`; default true), and with them each link's
    /// histograms (`[admin] link_histograms`; default false). Without
    /// either it has the daemon-wide families only.
    pub fn with_link_series(mut self, counters: bool, histograms: bool) -> Self {
        self.metrics = Arc::new(metrics::Metrics::new(
            self.planner.clone(),
            metrics::LinkSeries {
                counters,
                histograms: counters && histograms,
            },
        ));
        self
    }

    /// Reads every link's counters into the status page's history now, as
    /// the endpoint does every 10 s (for benches and embedders that do not
    /// call [`serve`]).
    pub fn sample_history(&self) {
        self.history
            .sample(&self.planner.links(), SystemTime::now());
    }

    /// The `/metrics` body: OpenMetrics text of every link's counters and
    /// histograms, read now (see the router for the families).
    pub fn metrics_text(&self) -> Result<String, fmt::Error> {
        self.metrics.encode()
    }

    fn link(&self, name: Result<Path<String>, PathRejection>) -> Result<Link, ApiError> {
        let Path(name) = name.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
        self.planner
            .link(&name)
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no link named `{name}`")))
    }

    fn view(&self, link: &Link) -> LinkView {
        // A writer never leaves the map half-updated, so a poisoned lock
        // still holds good data.
        let summaries = self.summaries.read().unwrap_or_else(|p| p.into_inner());
        LinkView::new(link, summaries.get(link.name()))
    }
}

impl fmt::Debug for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminState")
            .field("planner", &self.planner)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// The router (for tests and embedding).
///
/// | Route | Answer |
/// |---|---|
/// | `GET /healthz` | `{"status":"ok","running":..,"links":..}` |
/// | `GET /metrics` | OpenMetrics text ([`AdminState::metrics_text`], families below) |
/// | `GET /links` | every link's status, in planner order |
/// | `GET /links/{name}` | one link's status |
/// | `POST /links/{name}/transfer` | runs one transfer now and reports it |
/// | `POST /links/{name}/pause`, `/resume` | the link's status after the change |
/// | `POST /all/transfer` | starts a transfer of every link (202) |
/// | `POST /all/pause`, `/all/resume` | pauses or resumes every link |
/// | `GET /` | the status page (HTML; its files under `/ui/`) |
/// | `GET /ui/links?q=&tag=&state=&offset=&limit=` | one page of matching links with their last hour, counts per state, daemon-wide history |
/// | `GET /ui/links/{name}` | one link's detail: its status, last hour and last errors |
///
/// Unknown paths answer 404 and known paths with the wrong method 405,
/// both with a JSON `{"error": ..}` body. Every request goes through the
/// guard (see the README's admin section): cross-site POSTs are refused,
/// browsers' POSTs need the page's token, `[admin] token` is checked.
///
/// `/metrics` has, per link (label `link`):
/// `databay_transfers_total{result="ok"|"failed"}`,
/// `databay_ticks_skipped_total`, `databay_records_in_total`,
/// `databay_records_out_total`, `databay_records_dropped_total`,
/// `databay_errors_total`, `databay_last_success_timestamp_seconds` (0 until
/// a transfer succeeded), `databay_link_paused`, and the histograms
/// `databay_transfer_duration_seconds` and
/// `databay_schedule_lateness_seconds`; per inlet and outlet of each link
/// (labels `link`, `kind`, `index`, `component`):
/// `databay_component_calls_total`, `databay_component_records_total`,
/// `databay_component_errors_total`; overall: `databay_up` and
/// `databay_links`.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .route("/links", get(routes::list_links))
        .route("/links/{name}", get(routes::one_link))
        .route("/links/{name}/transfer", post(routes::transfer))
        .route("/links/{name}/pause", post(routes::pause))
        .route("/links/{name}/resume", post(routes::resume))
        .route("/all/transfer", post(ui::transfer_all))
        .route("/all/pause", post(ui::pause_all))
        .route("/all/resume", post(ui::resume_all))
        .route("/", get(ui::index))
        .route("/ui/status.css", get(ui::css))
        .route("/ui/status.js", get(ui::js))
        .route("/ui/links", get(ui::links))
        .route("/ui/links/{name}", get(ui::link))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check,
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then lets open requests finish.
///
/// HTTP/1.1 only. `limits` bound what clients can hold: at most
/// `max_connections` at once (one more is answered 503 and closed at once),
/// `header_timeout` to send a request header (so also the keep-alive idle
/// limit), `write_timeout` for a client that stops reading. A client that
/// half-closes its socket after the request still gets the answer.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, max_connections = limits.max_connections, "admin endpoint listening");
    }
    let sampler = tokio::spawn(state.history.clone().run_sampler(state.planner.clone()));
    let served = server::run(listener, router(state), limits, shutdown).await;
    sampler.abort();
    served
}
