//! The admin HTTP endpoint: health, Prometheus metrics, link status as JSON
//! and link control (force a transfer, pause, resume). It has no
//! authentication, which is why the daemon binds it to 127.0.0.1 unless told
//! otherwise. Every answer, errors included, is JSON except `/metrics`.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use databay_core::{HISTOGRAM_BOUNDS, HistogramSnapshot, Link, LinkState, LinkStats, Planner};
use serde::Serialize;
use serde_json::json;

use crate::config::LinkSummary;

/// The content type of the Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Shared view the endpoint serves.
#[derive(Clone)]
pub struct AdminState {
    planner: Planner,
    summaries: Arc<RwLock<BTreeMap<String, LinkSummary>>>,
    started: SystemTime,
}

impl AdminState {
    /// The endpoint's view of `planner`; `summaries` (keyed by link name)
    /// describe what each configured link is made of, and may be replaced
    /// when the config is reloaded.
    pub fn new(planner: Planner, summaries: Arc<RwLock<BTreeMap<String, LinkSummary>>>) -> Self {
        AdminState {
            planner,
            summaries,
            started: SystemTime::now(),
        }
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
/// | `GET /metrics` | Prometheus text exposition ([`metrics_text`]) |
/// | `GET /links` | every link's status, in planner order |
/// | `GET /links/{name}` | one link's status |
/// | `POST /links/{name}/transfer` | runs one transfer now and reports it |
/// | `POST /links/{name}/pause`, `/resume` | the link's status after the change |
///
/// Unknown paths answer 404 and known paths with the wrong method 405,
/// both with a JSON `{"error": ..}` body.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/links", get(list_links))
        .route("/links/{name}", get(one_link))
        .route("/links/{name}/transfer", post(transfer))
        .route("/links/{name}/pause", post(pause))
        .route("/links/{name}/resume", post(resume))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Serves until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin endpoint listening");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

async fn healthz(State(state): State<AdminState>) -> Json<serde_json::Value> {
    let uptime = state.started.elapsed().unwrap_or_default();
    Json(json!({
        "status": "ok",
        "running": state.planner.running(),
        "paused": state.planner.is_paused(),
        "links": state.planner.links().len(),
        "started": rfc3339(state.started),
        "uptime_seconds": uptime.as_secs(),
    }))
}

async fn metrics(State(state): State<AdminState>) -> Response {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        metrics_text(&state.planner),
    )
        .into_response()
}

async fn list_links(State(state): State<AdminState>) -> Json<Vec<LinkView>> {
    let links = state.planner.links();
    let summaries = state.summaries.read().unwrap_or_else(|p| p.into_inner());
    Json(
        links
            .iter()
            .map(|l| LinkView::new(l, summaries.get(l.name())))
            .collect(),
    )
}

async fn one_link(
    State(state): State<AdminState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<LinkView>, ApiError> {
    let link = state.link(name)?;
    Ok(Json(state.view(&link)))
}

async fn transfer(
    State(state): State<AdminState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<TransferView>, ApiError> {
    let link = state.link(name)?;
    tracing::info!(link = %link.name(), "transfer requested over the admin endpoint");
    // The transfer runs on its own task so a client that hangs up does not
    // cancel it halfway through.
    let outcome = tokio::spawn(async move { link.transfer().await })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the transfer task failed: {e}"),
            )
        })?;
    match outcome {
        Ok(report) => Ok(Json(TransferView {
            update: report.update.to_string(),
            records_in: report.records_in,
            records_out: report.records_out,
            ignored_errors: report.ignored.iter().map(ToString::to_string).collect(),
            duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
        })),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )),
    }
}

async fn pause(
    State(state): State<AdminState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<LinkView>, ApiError> {
    let link = state.link(name)?;
    link.pause();
    tracing::info!(link = %link.name(), "paused over the admin endpoint");
    Ok(Json(state.view(&link)))
}

async fn resume(
    State(state): State<AdminState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<LinkView>, ApiError> {
    let link = state.link(name)?;
    link.resume();
    tracing::info!(link = %link.name(), "resumed over the admin endpoint");
    Ok(Json(state.view(&link)))
}

/// One link as `/links` shows it.
#[derive(Debug, Serialize)]
struct LinkView {
    name: String,
    tags: Vec<String>,
    schedule: String,
    state: LinkState,
    paused: bool,
    next_transfer: Option<String>,
    last_success: Option<String>,
    last_error: Option<String>,
    counters: CountersView,
    components: Vec<databay_core::NodeStats>,
    summary: Option<ShapeView>,
}

#[derive(Debug, Serialize)]
struct CountersView {
    transfers_ok: u64,
    transfers_failed: u64,
    ticks_skipped: u64,
    records_in: u64,
    records_out: u64,
    records_dropped: u64,
    errors: u64,
}

/// The component types of a configured link (no options: nothing secret).
#[derive(Debug, Serialize)]
struct ShapeView {
    inlets: Vec<String>,
    processors: Vec<String>,
    groupers: Vec<String>,
    outlets: Vec<String>,
}

impl LinkView {
    fn new(link: &Link, summary: Option<&LinkSummary>) -> Self {
        let stats = link.stats();
        LinkView {
            name: link.name().to_owned(),
            tags: link.tags().to_vec(),
            schedule: link.schedule().to_string(),
            state: link.state(),
            paused: link.is_paused(),
            next_transfer: link.next_transfer().and_then(rfc3339),
            last_success: stats.last_success.and_then(rfc3339),
            counters: CountersView {
                transfers_ok: stats.transfers_ok,
                transfers_failed: stats.transfers_failed,
                ticks_skipped: stats.ticks_skipped,
                records_in: stats.records_in,
                records_out: stats.records_out,
                records_dropped: stats.records_dropped,
                errors: stats.errors,
            },
            last_error: stats.last_error,
            components: link.node_stats(),
            summary: summary.map(|s| ShapeView {
                inlets: s.inlets.clone(),
                processors: s.processors.clone(),
                groupers: s.groupers.clone(),
                outlets: s.outlets.clone(),
            }),
        }
    }
}

/// What `POST /links/{name}/transfer` answers.
#[derive(Debug, Serialize)]
struct TransferView {
    update: String,
    records_in: usize,
    records_out: usize,
    ignored_errors: Vec<String>,
    duration_ms: u64,
}

/// RFC 3339 with milliseconds, or `None` for a time RFC 3339 cannot show
/// (before 1970 or after 9999), which humantime would panic or fail on.
fn rfc3339(t: SystemTime) -> Option<String> {
    const YEAR_10000: u64 = 253_402_300_800;
    let since_epoch = t.duration_since(UNIX_EPOCH).ok()?;
    if since_epoch.as_secs() >= YEAR_10000 {
        return None;
    }
    let mut text = String::new();
    write!(text, "{}", humantime::format_rfc3339_millis(t)).ok()?;
    Some(text)
}

/// Prometheus text exposition of every link's metrics.
///
/// Per link (label `link`): `databay_transfers_total{result="ok"|"failed"}`,
/// `databay_ticks_skipped_total`, `databay_records_in_total`,
/// `databay_records_out_total`, `databay_records_dropped_total`,
/// `databay_errors_total`, `databay_last_success_timestamp_seconds` (0 until
/// a transfer succeeded), `databay_link_paused`, and the histograms
/// `databay_transfer_duration_seconds` and
/// `databay_schedule_lateness_seconds`. Overall: `databay_up` and
/// `databay_links`.
pub fn metrics_text(planner: &Planner) -> String {
    let links: Vec<LinkMetrics> = planner
        .links()
        .iter()
        .map(|l| LinkMetrics {
            label: escape_label(l.name()),
            paused: l.is_paused(),
            stats: l.stats(),
            nodes: l.node_stats(),
        })
        .collect();
    let mut out = String::with_capacity(1024 + links.len() * 3072);
    // Writing into a String cannot fail.
    let _ = render(&mut out, &links);
    out
}

struct LinkMetrics {
    /// The link's name, escaped for a label value.
    label: String,
    paused: bool,
    stats: LinkStats,
    nodes: Vec<databay_core::NodeStats>,
}

fn render(out: &mut String, links: &[LinkMetrics]) -> fmt::Result {
    family(out, "databay_up", "gauge", "1 while the daemon answers.")?;
    writeln!(out, "databay_up 1")?;
    family(out, "databay_links", "gauge", "Links in the planner.")?;
    writeln!(out, "databay_links {}", links.len())?;

    family(
        out,
        "databay_transfers_total",
        "counter",
        "Transfers, by result.",
    )?;
    for l in links {
        let (name, s) = (&l.label, &l.stats);
        writeln!(
            out,
            "databay_transfers_total{{link=\"{name}\",result=\"ok\"}} {}",
            s.transfers_ok
        )?;
        writeln!(
            out,
            "databay_transfers_total{{link=\"{name}\",result=\"failed\"}} {}",
            s.transfers_failed
        )?;
    }

    type Read = fn(&LinkStats) -> u64;
    let counters: [(&str, &str, Read); 5] = [
        (
            "databay_ticks_skipped_total",
            "Scheduled ticks skipped because the previous transfer was still running.",
            |s| s.ticks_skipped,
        ),
        (
            "databay_records_in_total",
            "Records pulled from inlets.",
            |s| s.records_in,
        ),
        (
            "databay_records_out_total",
            "Records accepted by outlets (each outlet counts its own).",
            |s| s.records_out,
        ),
        (
            "databay_records_dropped_total",
            "Records dropped because the node handling them failed under ignore_exceptions.",
            |s| s.records_dropped,
        ),
        (
            "databay_errors_total",
            "Node errors, ignored or not.",
            |s| s.errors,
        ),
    ];
    for (metric, help, value) in counters {
        family(out, metric, "counter", help)?;
        for l in links {
            writeln!(out, "{metric}{{link=\"{}\"}} {}", l.label, value(&l.stats))?;
        }
    }

    family(
        out,
        "databay_last_success_timestamp_seconds",
        "gauge",
        "When a transfer last succeeded (Unix time; 0 if never).",
    )?;
    for l in links {
        let secs = l
            .stats
            .last_success
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        writeln!(
            out,
            "databay_last_success_timestamp_seconds{{link=\"{}\"}} {secs}",
            l.label
        )?;
    }

    family(
        out,
        "databay_link_paused",
        "gauge",
        "1 if scheduled transfers of the link are paused.",
    )?;
    for l in links {
        writeln!(
            out,
            "databay_link_paused{{link=\"{}\"}} {}",
            l.label,
            u8::from(l.paused)
        )?;
    }

    type ReadNode = fn(&databay_core::NodeStats) -> u64;
    let node_counters: [(&str, &str, ReadNode); 3] = [
        (
            "databay_component_calls_total",
            "Pulls (inlets) or pushes (outlets) made, per component of each link.",
            |n| n.calls,
        ),
        (
            "databay_component_records_total",
            "Records pulled (inlets) or accepted (outlets), per component of each link.",
            |n| n.records,
        ),
        (
            "databay_component_errors_total",
            "Failed pulls or pushes (errors, panics, timeouts), per component of each link.",
            |n| n.errors,
        ),
    ];
    for (metric, help, value) in node_counters {
        family(out, metric, "counter", help)?;
        for l in links {
            for n in &l.nodes {
                let kind = match n.kind {
                    databay_core::NodeKind::Inlet => "inlet",
                    _ => "outlet",
                };
                writeln!(
                    out,
                    "{metric}{{link=\"{}\",kind=\"{kind}\",index=\"{}\",component=\"{}\"}} {}",
                    l.label,
                    n.index,
                    escape_label(&n.name),
                    value(n)
                )?;
            }
        }
    }

    histogram(
        out,
        "databay_transfer_duration_seconds",
        "How long transfers took.",
        links,
        |s| &s.duration,
    )?;
    histogram(
        out,
        "databay_schedule_lateness_seconds",
        "How late scheduled transfers started relative to their tick.",
        links,
        |s| &s.lateness,
    )
}

fn family(out: &mut String, metric: &str, kind: &str, help: &str) -> fmt::Result {
    writeln!(out, "# HELP {metric} {help}")?;
    writeln!(out, "# TYPE {metric} {kind}")
}

/// Writes a histogram family; the core counts each bucket on its own, the
/// exposition format wants each `le` bucket to include those below it.
fn histogram(
    out: &mut String,
    metric: &str,
    help: &str,
    links: &[LinkMetrics],
    pick: fn(&LinkStats) -> &HistogramSnapshot,
) -> fmt::Result {
    family(out, metric, "histogram", help)?;
    for l in links {
        let h = pick(&l.stats);
        let mut cumulative = 0u64;
        for (i, bound) in HISTOGRAM_BOUNDS.iter().enumerate() {
            cumulative += h.buckets.get(i).copied().unwrap_or(0);
            writeln!(
                out,
                "{metric}_bucket{{link=\"{}\",le=\"{bound}\"}} {cumulative}",
                l.label
            )?;
        }
        // Everything, including the overflow bucket: `+Inf` and `_count`
        // come from the same sum so they always agree.
        let total: u64 = h.buckets.iter().sum();
        writeln!(
            out,
            "{metric}_bucket{{link=\"{}\",le=\"+Inf\"}} {total}",
            l.label
        )?;
        writeln!(
            out,
            "{metric}_sum{{link=\"{}\"}} {}",
            l.label, h.sum_seconds
        )?;
        writeln!(out, "{metric}_count{{link=\"{}\"}} {total}", l.label)?;
    }
    Ok(())
}

/// Escapes a label value as the exposition format requires: backslash,
/// double quote and line feed.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use databay_core::testing::{CollectOutlet, StaticInlet};
    use databay_core::{BoxError, Inlet, Pull, Update, async_trait};
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::*;

    const QUOTED: &str = "say \"hi\"";

    struct FailingInlet;

    #[async_trait]
    impl Inlet for FailingInlet {
        async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
            Err("the source is down".into())
        }
    }

    fn link(name: &str, inlet: impl Inlet) -> Link {
        Link::builder(name)
            .inlet(inlet)
            .outlet(CollectOutlet::new())
            .every(Duration::from_secs(3600))
            .immediate_transfer(false)
            .build()
            .expect("valid schedule")
    }

    /// `alpha` (3 records a pull), `say "hi"` (1 record) and `broken`
    /// (its inlet always fails), none transferring on its own.
    fn planner() -> Planner {
        Planner::builder()
            .link(link("alpha", StaticInlet::values([1, 2, 3])))
            .link(link(QUOTED, StaticInlet::values([10])))
            .link(link("broken", FailingInlet))
            .ignore_exceptions(true)
            .immediate_transfer(false)
            .build()
            .expect("distinct names")
    }

    fn summaries() -> Arc<RwLock<BTreeMap<String, LinkSummary>>> {
        let alpha = LinkSummary {
            name: "alpha".into(),
            schedule: "every 1h".into(),
            inlets: vec!["static".into()],
            processors: vec!["filter".into()],
            groupers: vec![],
            outlets: vec!["collect".into()],
        };
        Arc::new(RwLock::new(BTreeMap::from([("alpha".to_owned(), alpha)])))
    }

    /// A running planner and an admin server on a loopback port.
    struct Fixture {
        addr: SocketAddr,
        planner: Planner,
        planner_task: JoinHandle<Result<(), databay_core::PlannerError>>,
        stop_server: oneshot::Sender<()>,
        server: JoinHandle<std::io::Result<()>>,
    }

    impl Fixture {
        async fn start() -> Self {
            let planner = planner();
            let planner_task = tokio::spawn({
                let planner = planner.clone();
                async move { planner.start().await }
            });
            wait_for(|| {
                planner.running()
                    && planner
                        .links()
                        .iter()
                        .all(|l| l.state() == LinkState::Scheduled && l.next_transfer().is_some())
            })
            .await;
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("local addr");
            let (stop_server, stopped) = oneshot::channel::<()>();
            let state = AdminState::new(planner.clone(), summaries());
            let server = tokio::spawn(serve(listener, state, async move {
                let _ = stopped.await;
            }));
            Fixture {
                addr,
                planner,
                planner_task,
                stop_server,
                server,
            }
        }

        fn link(&self, name: &str) -> Link {
            self.planner.link(name).expect("fixture link")
        }

        async fn get(&self, path: &str) -> Reply {
            request(self.addr, "GET", path).await
        }

        async fn post(&self, path: &str) -> Reply {
            request(self.addr, "POST", path).await
        }

        async fn stop(self) {
            let _ = self.stop_server.send(());
            let served = tokio::time::timeout(Duration::from_secs(10), self.server)
                .await
                .expect("server stops after shutdown");
            served.expect("server task").expect("server result");
            self.planner.shutdown(true);
            let planned = tokio::time::timeout(Duration::from_secs(10), self.planner_task)
                .await
                .expect("planner stops");
            planned.expect("planner task").expect("planner result");
        }
    }

    async fn wait_for(mut ready: impl FnMut() -> bool) {
        for _ in 0..500 {
            if ready() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached within 5s");
    }

    #[derive(Debug)]
    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn json(&self) -> Value {
            assert_eq!(
                self.header("content-type"),
                Some("application/json"),
                "{self:?}"
            );
            serde_json::from_str(&self.body).expect("JSON body")
        }
    }

    /// A minimal HTTP/1.1 client: one request per connection, read to EOF.
    async fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
        let exchange = async {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.expect("send");
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await.expect("receive");
            raw
        };
        let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .expect("answer within 10s");
        let text = String::from_utf8(raw).expect("UTF-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("end of headers");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let mut parts = status_line.split(' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line");
                (n.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let reply = Reply {
            status,
            headers,
            body: body.to_owned(),
        };
        assert_eq!(reply.header("transfer-encoding"), None, "{reply:?}");
        let length: usize = reply
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .expect("content-length");
        assert_eq!(reply.body.len(), length, "{reply:?}");
        reply
    }

    /// The value of the one sample line that starts with `series ` (name and
    /// labels exactly as written).
    fn sample(text: &str, series: &str) -> f64 {
        let found: Vec<f64> = text
            .lines()
            .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().expect("numeric sample"))
            .collect();
        assert_eq!(found.len(), 1, "series {series} in\n{text}");
        found[0]
    }

    /// Checks a histogram of one link: cumulative, `+Inf` equals `_count`.
    /// Returns the count.
    fn check_histogram(text: &str, metric: &str, label: &str) -> f64 {
        let prefix = format!("{metric}_bucket{{link=\"{label}\",le=\"");
        let buckets: Vec<(String, f64)> = text
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|rest| {
                let (le, value) = rest.split_once("\"} ").expect("bucket line");
                (le.to_owned(), value.parse().expect("numeric bucket"))
            })
            .collect();
        assert_eq!(buckets.len(), HISTOGRAM_BOUNDS.len() + 1, "{text}");
        for pair in buckets.windows(2) {
            assert!(pair[0].1 <= pair[1].1, "not cumulative: {pair:?}");
        }
        for ((le, _), bound) in buckets.iter().zip(HISTOGRAM_BOUNDS) {
            assert_eq!(le.parse::<f64>().expect("numeric le"), bound);
        }
        let (le, inf) = buckets.last().expect("+Inf bucket");
        assert_eq!(le, "+Inf");
        let count = sample(text, &format!("{metric}_count{{link=\"{label}\"}}"));
        assert_eq!(*inf, count);
        sample(text, &format!("{metric}_sum{{link=\"{label}\"}}"));
        count
    }

    /// Every line is a comment or `name{labels} number`, and every sample's
    /// family was announced with HELP and TYPE before it.
    fn check_exposition(text: &str) {
        let mut typed: Vec<String> = Vec::new();
        let mut helped: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.push(rest.split(' ').next().unwrap_or_default().to_owned());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split(' ');
                typed.push(words.next().unwrap_or_default().to_owned());
                let kind = words.next().unwrap_or_default();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            } else {
                let (series, value) = line.rsplit_once(' ').expect("sample line");
                value.parse::<f64>().expect("numeric value");
                let name = series.split('{').next().unwrap_or_default();
                let family = typed.last().expect("TYPE before samples");
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|b| b == family)
                    .unwrap_or(name);
                assert_eq!(base, family, "{line}");
                assert_eq!(helped.last(), Some(family), "{line}");
                if series.contains('{') {
                    assert!(series.ends_with('}'), "{line}");
                }
            }
        }
    }

    #[tokio::test]
    async fn healthz_reports_the_planner() {
        let f = Fixture::start().await;
        let reply = f.get("/healthz").await;
        assert_eq!(reply.status, 200);
        let body = reply.json();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["running"], true);
        assert_eq!(body["links"], 3);
        assert!(body["started"].as_str().is_some_and(|s| s.ends_with('Z')));
        f.stop().await;
    }

    #[tokio::test]
    async fn metrics_count_transfers_over_http() {
        let f = Fixture::start().await;
        let alpha = f.link("alpha");
        alpha.transfer().await.expect("transfer");
        alpha.transfer().await.expect("transfer");
        f.link(QUOTED).transfer().await.expect("transfer");
        assert!(f.link("broken").transfer().await.is_err());

        let reply = f.get("/metrics").await;
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
            "{reply:?}"
        );
        let text = &reply.body;
        check_exposition(text);
        assert_eq!(sample(text, "databay_up"), 1.0);
        assert_eq!(sample(text, "databay_links"), 3.0);
        let ok = "databay_transfers_total{link=\"alpha\",result=\"ok\"}";
        assert_eq!(sample(text, ok), 2.0);
        let failed = "databay_transfers_total{link=\"alpha\",result=\"failed\"}";
        assert_eq!(sample(text, failed), 0.0);
        assert_eq!(
            sample(text, "databay_records_in_total{link=\"alpha\"}"),
            6.0
        );
        assert_eq!(
            sample(text, "databay_records_out_total{link=\"alpha\"}"),
            6.0
        );
        assert_eq!(sample(text, "databay_errors_total{link=\"alpha\"}"), 0.0);
        assert_eq!(sample(text, "databay_link_paused{link=\"alpha\"}"), 0.0);
        let last = sample(
            text,
            "databay_last_success_timestamp_seconds{link=\"alpha\"}",
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        assert!((now - 60.0..=now + 1.0).contains(&last), "{last} vs {now}");
        let count = check_histogram(text, "databay_transfer_duration_seconds", "alpha");
        assert_eq!(count, 2.0);
        // Forced transfers are not scheduled ticks: no lateness.
        let count = check_histogram(text, "databay_schedule_lateness_seconds", "alpha");
        assert_eq!(count, 0.0);

        // The quote in the name is escaped in the label.
        let quoted = "databay_transfers_total{link=\"say \\\"hi\\\"\",result=\"ok\"}";
        assert_eq!(sample(text, quoted), 1.0);
        check_histogram(text, "databay_transfer_duration_seconds", "say \\\"hi\\\"");

        let failed = "databay_transfers_total{link=\"broken\",result=\"failed\"}";
        assert_eq!(sample(text, failed), 1.0);
        assert_eq!(sample(text, "databay_errors_total{link=\"broken\"}"), 1.0);
        let never = "databay_last_success_timestamp_seconds{link=\"broken\"}";
        assert_eq!(sample(text, never), 0.0);
        f.stop().await;
    }

    #[tokio::test]
    async fn links_list_every_link_in_planner_order() {
        let f = Fixture::start().await;
        f.link("alpha").transfer().await.expect("transfer");
        assert!(f.link("broken").transfer().await.is_err());

        let reply = f.get("/links").await;
        assert_eq!(reply.status, 200);
        let body = reply.json();
        let links = body.as_array().expect("array");
        let names: Vec<&str> = links.iter().filter_map(|l| l["name"].as_str()).collect();
        assert_eq!(names, ["alpha", QUOTED, "broken"]);

        let alpha = &links[0];
        assert_eq!(alpha["tags"], json!(["alpha"]));
        assert_eq!(alpha["schedule"], "every 1h");
        assert_eq!(alpha["state"], "scheduled");
        assert_eq!(alpha["paused"], false);
        let next = alpha["next_transfer"].as_str().expect("next transfer");
        let next = humantime::parse_rfc3339(next).expect("RFC 3339");
        assert!(next > SystemTime::now());
        let last = alpha["last_success"].as_str().expect("last success");
        humantime::parse_rfc3339(last).expect("RFC 3339");
        assert_eq!(alpha["last_error"], Value::Null);
        assert_eq!(
            alpha["counters"],
            json!({
                "transfers_ok": 1, "transfers_failed": 0, "ticks_skipped": 0,
                "records_in": 3, "records_out": 3, "records_dropped": 0, "errors": 0,
            })
        );
        assert_eq!(
            alpha["summary"],
            json!({
                "inlets": ["static"], "processors": ["filter"],
                "groupers": [], "outlets": ["collect"],
            })
        );

        let quoted = &links[1];
        assert_eq!(quoted["summary"], Value::Null);
        assert_eq!(quoted["last_success"], Value::Null);
        assert_eq!(quoted["counters"]["transfers_ok"], 0);

        let broken = &links[2];
        assert_eq!(broken["counters"]["transfers_failed"], 1);
        assert_eq!(broken["counters"]["errors"], 1);
        let error = broken["last_error"].as_str().expect("last error");
        assert!(error.contains("the source is down"), "{error}");
        f.stop().await;
    }

    #[tokio::test]
    async fn one_link_by_name() {
        let f = Fixture::start().await;
        let reply = f.get("/links/alpha").await;
        assert_eq!(reply.status, 200);
        let body = reply.json();
        assert_eq!(body["name"], "alpha");
        assert_eq!(body["counters"]["records_in"], 0);

        // Names travel percent-encoded.
        let reply = f.get("/links/say%20%22hi%22").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["name"], QUOTED);

        let reply = f.get("/links/nope").await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.json(), json!({ "error": "no link named `nope`" }));

        // Invalid UTF-8 in the name is a client error, not a panic.
        let reply = f.get("/links/%FF").await;
        assert_eq!(reply.status, 400);
        assert!(reply.json()["error"].is_string());
        f.stop().await;
    }

    #[tokio::test]
    async fn post_transfer_runs_one_transfer() {
        let f = Fixture::start().await;
        let reply = f.post("/links/alpha/transfer").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let body = reply.json();
        assert_eq!(body["update"], "alpha.0");
        assert_eq!(body["records_in"], 3);
        assert_eq!(body["records_out"], 3);
        assert_eq!(body["ignored_errors"], json!([]));
        assert!(body["duration_ms"].is_u64());

        let reply = f.post("/links/alpha/transfer").await;
        assert_eq!(reply.json()["update"], "alpha.1");
        assert_eq!(f.link("alpha").stats().transfers_ok, 2);
        let reply = f.get("/links/alpha").await;
        assert_eq!(reply.json()["counters"]["transfers_ok"], 2);
        let metrics = f.get("/metrics").await.body;
        let ok = "databay_transfers_total{link=\"alpha\",result=\"ok\"}";
        assert_eq!(sample(&metrics, ok), 2.0);

        let reply = f.post("/links/broken/transfer").await;
        assert_eq!(reply.status, 500);
        let error = reply.json()["error"].as_str().expect("error").to_owned();
        assert!(
            error.starts_with("transfer broken.0 of link `broken` failed"),
            "{error}"
        );
        assert!(error.contains("the source is down"), "{error}");

        let reply = f.post("/links/nope/transfer").await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.json(), json!({ "error": "no link named `nope`" }));
        f.stop().await;
    }

    #[tokio::test]
    async fn pause_and_resume_flip_the_link() {
        let f = Fixture::start().await;
        let reply = f.post("/links/alpha/pause").await;
        assert_eq!(reply.status, 200);
        let body = reply.json();
        assert_eq!(body["name"], "alpha");
        assert_eq!(body["paused"], true);
        assert_eq!(body["state"], "paused");
        assert!(f.link("alpha").is_paused());
        assert!(!f.link(QUOTED).is_paused());
        let metrics = f.get("/metrics").await.body;
        assert_eq!(sample(&metrics, "databay_link_paused{link=\"alpha\"}"), 1.0);

        let reply = f.post("/links/alpha/resume").await;
        assert_eq!(reply.status, 200);
        let body = reply.json();
        assert_eq!(body["paused"], false);
        assert_eq!(body["state"], "scheduled");
        assert!(!f.link("alpha").is_paused());

        assert_eq!(f.post("/links/nope/pause").await.status, 404);
        assert_eq!(f.post("/links/nope/resume").await.status, 404);
        f.stop().await;
    }

    #[tokio::test]
    async fn unknown_routes_and_wrong_methods_answer_json() {
        let f = Fixture::start().await;
        let reply = f.get("/nope").await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.json(), json!({ "error": "no route for GET /nope" }));

        let reply = f.get("/links/alpha/transfer").await;
        assert_eq!(reply.status, 405);
        assert_eq!(reply.header("allow"), Some("POST"));
        assert!(reply.json()["error"].is_string());

        let reply = f.post("/metrics").await;
        assert_eq!(reply.status, 405);
        assert!(reply.json()["error"].is_string());
        // Nothing ran.
        assert_eq!(f.link("alpha").stats().transfers_ok, 0);
        f.stop().await;
    }

    #[tokio::test]
    async fn metrics_text_without_http() {
        let weird = "a\"b\\c\nd";
        let planner = Planner::new([link(weird, StaticInlet::values([1, 2]))]).expect("planner");
        let l = planner.link(weird).expect("link");
        for _ in 0..3 {
            l.transfer().await.expect("transfer");
        }
        l.pause();

        let text = metrics_text(&planner);
        check_exposition(&text);
        let label = "a\\\"b\\\\c\\nd";
        let ok = format!("databay_transfers_total{{link=\"{label}\",result=\"ok\"}}");
        assert_eq!(sample(&text, &ok), 3.0);
        let records = format!("databay_records_out_total{{link=\"{label}\"}}");
        assert_eq!(sample(&text, &records), 6.0);
        let paused = format!("databay_link_paused{{link=\"{label}\"}}");
        assert_eq!(sample(&text, &paused), 1.0);
        assert_eq!(
            check_histogram(&text, "databay_transfer_duration_seconds", label),
            3.0
        );
        assert_eq!(sample(&text, "databay_links"), 1.0);
        let pulled = format!(
            "databay_component_records_total{{link=\"{label}\",kind=\"inlet\",index=\"0\",component=\"StaticInlet\"}}"
        );
        assert_eq!(sample(&text, &pulled), 6.0);
        let pushes = format!(
            "databay_component_calls_total{{link=\"{label}\",kind=\"outlet\",index=\"0\",component=\"CollectOutlet\"}}"
        );
        assert_eq!(sample(&text, &pushes), 3.0);
        assert!(text.contains("# TYPE databay_transfer_duration_seconds histogram\n"));
        assert!(text.contains("# TYPE databay_records_in_total counter\n"));
        assert!(text.contains("# TYPE databay_link_paused gauge\n"));

        let empty = metrics_text(&Planner::new([]).expect("empty planner"));
        check_exposition(&empty);
        assert_eq!(sample(&empty, "databay_links"), 0.0);
    }

    #[test]
    fn histogram_buckets_become_cumulative() {
        let mut buckets = vec![0u64; HISTOGRAM_BOUNDS.len() + 1];
        buckets[0] = 2;
        buckets[3] = 1;
        buckets[HISTOGRAM_BOUNDS.len()] = 4;
        let mut stats = Planner::new([link("h", StaticInlet::values([1]))])
            .expect("planner")
            .links()[0]
            .stats();
        stats.duration.count = 7;
        stats.duration.sum_seconds = 42.5;
        stats.duration.buckets = buckets;
        let links = [LinkMetrics {
            label: "h".into(),
            paused: false,
            stats,
            nodes: Vec::new(),
        }];
        let mut text = String::new();
        render(&mut text, &links).expect("render");
        let series = |le: &str| {
            format!("databay_transfer_duration_seconds_bucket{{link=\"h\",le=\"{le}\"}}")
        };
        assert_eq!(sample(&text, &series("0.0005")), 2.0);
        assert_eq!(sample(&text, &series("0.0025")), 2.0);
        assert_eq!(sample(&text, &series("0.005")), 3.0);
        assert_eq!(sample(&text, &series("10")), 3.0);
        assert_eq!(sample(&text, &series("+Inf")), 7.0);
        let sum = "databay_transfer_duration_seconds_sum{link=\"h\"}";
        assert_eq!(sample(&text, sum), 42.5);
        assert_eq!(
            check_histogram(&text, "databay_transfer_duration_seconds", "h"),
            7.0
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("plain"), "plain");
        assert_eq!(escape_label("a\"b"), "a\\\"b");
        assert_eq!(escape_label("a\\b"), "a\\\\b");
        assert_eq!(escape_label("a\nb"), "a\\nb");
        assert_eq!(escape_label("ünï"), "ünï");
    }

    #[test]
    fn timestamps_outside_rfc3339_are_null() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t).as_deref(), Some("2023-11-14T22:13:20.123Z"));
        assert_eq!(rfc3339(UNIX_EPOCH - Duration::from_secs(1)), None);
        let far = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(rfc3339(far), None);
    }
}
