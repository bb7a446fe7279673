//! The status page (`GET /` and its two files, embedded in the binary) and
//! the JSON it reads: one page of links at a time, filtered on the server
//! (`/ui/links`), one link's detail (`/ui/links/{name}`), and the actions
//! on every link at once (`/all/*`). Answers carry an `ETag`, so a page
//! that polls an unchanged view gets an empty 304.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::SystemTime;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use databay_core::{HISTOGRAM_BOUNDS, HistogramSnapshot, Link, LinkState, LinkStats};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AdminState;
use super::history::{DaemonSeries, LinkSeries, SeenError};
use super::routes::ApiError;
use super::views::{LinkView, rfc3339};

const INDEX: &str = include_str!("page/index.html");
const CSS: &str = include_str!("page/status.css");
const JS: &str = include_str!("page/status.js");

/// Rows a page shows unless asked otherwise, and the most it may ask for.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

pub(super) async fn index(State(state): State<AdminState>) -> Response {
    // The token is hex, so it needs no escaping in the attribute.
    let body = INDEX.replace("{{TOKEN}}", &state.guard.page_token);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // The page runs only its own script and talks only to its origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

pub(super) async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

/// What the page shows a link as: its [`LinkState`], with a scheduled link
/// that keeps failing shown as `failing` (it is backing off).
pub(super) fn status(link: &Link, stats: &LinkStats) -> &'static str {
    match link.state() {
        LinkState::Idle => "idle",
        LinkState::Scheduled if stats.consecutive_failures > 0 => "failing",
        LinkState::Scheduled => "scheduled",
        LinkState::Transferring => "transferring",
        LinkState::Paused => "paused",
        LinkState::Finished => "finished",
        LinkState::Failed => "failed",
        _ => "unknown",
    }
}

const STATUSES: [&str; 7] = [
    "idle",
    "scheduled",
    "failing",
    "transferring",
    "paused",
    "finished",
    "failed",
];

/// The upper bound of the bucket holding the 99th percentile, as text
/// (`≤ 5ms`, `> 10s`); `None` before any observation.
fn p99(h: &HistogramSnapshot) -> Option<String> {
    if h.count == 0 {
        return None;
    }
    let want = h.count - h.count / 100;
    let mut seen = 0;
    for (i, n) in h.buckets.iter().enumerate() {
        seen += n;
        if seen >= want {
            return Some(match HISTOGRAM_BOUNDS.get(i) {
                Some(b) => format!(
                    "≤ {}",
                    humantime::format_duration(std::time::Duration::from_secs_f64(*b))
                ),
                None => format!("> {}s", HISTOGRAM_BOUNDS[HISTOGRAM_BOUNDS.len() - 1]),
            });
        }
    }
    None
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// A piece of the name or of a tag (case-insensitive).
    #[serde(default)]
    q: String,
    /// One tag, exactly.
    tag: Option<String>,
    /// One of [`STATUSES`].
    state: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Row {
    name: String,
    tags: Vec<String>,
    schedule: String,
    status: &'static str,
    backoff_until: Option<String>,
    consecutive_failures: u64,
    last_success: Option<String>,
    next_transfer: Option<String>,
    transfers_ok: u64,
    transfers_failed: u64,
    records_in: u64,
    records_out: u64,
    records_dropped: u64,
    errors: u64,
    last_error: Option<String>,
    lateness_p99: Option<String>,
    history: LinkSeries,
}

fn row(state: &AdminState, link: &Link, stats: LinkStats, now: SystemTime) -> Row {
    Row {
        name: link.name().to_owned(),
        tags: link.tags().to_vec(),
        schedule: link.schedule().to_string(),
        status: status(link, &stats),
        backoff_until: stats.backoff_until.and_then(rfc3339),
        consecutive_failures: stats.consecutive_failures,
        last_success: stats.last_success.and_then(rfc3339),
        next_transfer: link.next_transfer().and_then(rfc3339),
        history: state.history.link_series(link, &stats, now),
        lateness_p99: p99(&stats.lateness),
        transfers_ok: stats.transfers_ok,
        transfers_failed: stats.transfers_failed,
        records_in: stats.records_in,
        records_out: stats.records_out,
        records_dropped: stats.records_dropped,
        errors: stats.errors,
        last_error: stats
            .last_error
            .map(|e| crate::scrub::scrub(&e).into_owned()),
    }
}

#[derive(Debug, Serialize)]
struct Page {
    /// Links in the daemon.
    total: usize,
    /// Links the filter matched.
    matched: usize,
    offset: usize,
    limit: usize,
    /// Links per status, of all links.
    statuses: BTreeMap<&'static str, usize>,
    paused: bool,
    daemon: DaemonSeries,
    links: Vec<Row>,
}

/// JSON with an `ETag` of its body; `304` when the client has it.
fn tagged(headers: &HeaderMap, body: Vec<u8>) -> Response {
    let mut hasher = std::hash::DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut answer = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        answer.headers_mut().insert(header::ETAG, v);
    }
    answer
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    answer
}

fn json_bytes(value: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `GET /ui/links?q=&tag=&state=&offset=&limit=`: the links that match,
/// `limit` (default 50, at most 500) from `offset`, in planner order, each
/// with its last hour; and every link's count per status.
pub(super) async fn links(
    State(state): State<AdminState>,
    query: Result<Query<ListQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    if let Some(s) = &query.state
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown state `{s}` (expected one of {})",
                STATUSES.join(", ")
            ),
        ));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    // 10 000 links take a few milliseconds to read: off the worker threads.
    let body = tokio::task::spawn_blocking(move || {
        let now = SystemTime::now();
        let needle = query.q.to_lowercase();
        let mut statuses: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut matched = 0;
        let mut rows = Vec::new();
        let links = state.planner.links();
        for link in &links {
            let stats = link.stats();
            let status = status(link, &stats);
            *statuses.entry(status).or_default() += 1;
            let hit = (needle.is_empty()
                || link.name().to_lowercase().contains(&needle)
                || link
                    .tags()
                    .iter()
                    .any(|t| t.to_lowercase().contains(&needle)))
                && query.tag.as_ref().is_none_or(|t| link.tags().contains(t))
                && query.state.as_deref().is_none_or(|s| s == status);
            if !hit {
                continue;
            }
            if matched >= query.offset && rows.len() < limit {
                rows.push(row(&state, link, stats, now));
            }
            matched += 1;
        }
        json_bytes(&Page {
            total: links.len(),
            matched,
            offset: query.offset,
            limit,
            statuses,
            paused: state.planner.is_paused(),
            daemon: state.history.daemon_series(),
            links: rows,
        })
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page task failed: {e}"),
        )
    })??;
    Ok(tagged(&headers, body))
}

#[derive(Debug, Serialize)]
struct Detail {
    status: &'static str,
    lateness_p99: Option<String>,
    /// What `GET /links/{name}` answers.
    link: LinkView,
    history: LinkSeries,
    /// The last errors the sampler saw, oldest first.
    errors: Vec<SeenError>,
}

/// `GET /ui/links/{name}`: one link's detail.
pub(super) async fn link(
    State(state): State<AdminState>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let link = state.link(name)?;
    let stats = link.stats();
    let detail = Detail {
        status: status(&link, &stats),
        lateness_p99: p99(&stats.lateness),
        history: state.history.link_series(&link, &stats, SystemTime::now()),
        errors: state.history.errors(link.name()),
        link: state.view(&link),
    };
    Ok(tagged(&headers, json_bytes(&detail)?))
}

/// `POST /all/transfer`: starts a transfer of every link (in the
/// background: with thousands of links the answer would take long) and
/// says how many.
pub(super) async fn transfer_all(State(state): State<AdminState>) -> Response {
    let links = state.planner.len();
    tracing::info!(
        links,
        "transfer of every link requested over the admin endpoint"
    );
    let planner = state.planner.clone();
    tokio::spawn(async move {
        let failed = planner
            .force_transfer()
            .await
            .iter()
            .filter(|r| r.is_err())
            .count();
        if failed > 0 {
            tracing::warn!(failed, "transfers requested over the admin endpoint failed");
        }
    });
    (StatusCode::ACCEPTED, Json(json!({ "transferring": links }))).into_response()
}

/// `POST /all/pause`: pauses every link (each can be resumed on its own).
pub(super) async fn pause_all(State(state): State<AdminState>) -> Json<serde_json::Value> {
    let links = state.planner.links();
    links.iter().for_each(Link::pause);
    tracing::info!(
        links = links.len(),
        "every link paused over the admin endpoint"
    );
    Json(json!({ "paused": links.len() }))
}

/// `POST /all/resume`: resumes every link, and the planner if paused.
pub(super) async fn resume_all(State(state): State<AdminState>) -> Json<serde_json::Value> {
    let links = state.planner.links();
    links.iter().for_each(Link::resume);
    state.planner.resume();
    tracing::info!(
        links = links.len(),
        "every link resumed over the admin endpoint"
    );
    Json(json!({ "resumed": links.len() }))
}
