//! The route handlers, and the JSON error answer they share.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AdminState;
use super::metrics;
use super::views::{LinkView, TransferView, rfc3339};

/// An error answer: a status and `{"error": message}`.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        // An error may quote a path or URL built from `${VAR}` values.
        ApiError {
            status,
            message: crate::scrub::scrub(&message.into()).into_owned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

pub(super) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
    )
}

pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

pub(super) async fn healthz(State(state): State<AdminState>) -> Json<serde_json::Value> {
    let uptime = state.started.elapsed().unwrap_or_default();
    Json(json!({
        "status": "ok",
        "running": state.planner.running(),
        "paused": state.planner.is_paused(),
        "links": state.planner.len(),
        "started": rfc3339(state.started),
        "uptime_seconds": uptime.as_secs(),
    }))
}

pub(super) async fn metrics(
    State(state): State<AdminState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let gzip = accepts_gzip(&headers);
    // With 10 000 links a scrape is tens of milliseconds of CPU: on the
    // blocking pool it cannot hold up the threads that drive link timers.
    let body = tokio::task::spawn_blocking(move || {
        let text = state.metrics_text().map_err(|e| e.to_string())?;
        if gzip {
            gzip_fast(text.as_bytes()).map_err(|e| format!("gzip: {e}"))
        } else {
            Ok(text.into_bytes())
        }
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the metrics task failed: {e}"),
        )
    })?
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the metrics: {e}"),
        )
    })?;
    let mut response = ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}

/// Whether the client takes a gzip body (`Accept-Encoding: gzip`, not
/// refused with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut pieces = part.split(';').map(str::trim);
            let coding = pieces.next().unwrap_or("");
            let refused =
                pieces.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0");
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// Fastest gzip level: metrics text compresses twentyfold even so, and a
/// scrape should cost the daemon as little CPU as it can.
fn gzip_fast(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 16),
        flate2::Compression::fast(),
    );
    encoder.write_all(bytes)?;
    encoder.finish()
}

pub(super) async fn list_links(State(state): State<AdminState>) -> Json<Vec<LinkView>> {
    let links = state.planner.links();
    let summaries = state.summaries.read().unwrap_or_else(|p| p.into_inner());
    Json(
        links
            .iter()
            .map(|l| LinkView::new(l, summaries.get(l.name())))
            .collect(),
    )
}

pub(super) async fn one_link(
    State(state): State<AdminState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<LinkView>, ApiError> {
    let link = state.link(name)?;
    Ok(Json(state.view(&link)))
}

pub(super) async fn transfer(
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
            ignored_errors: report
                .ignored
                .iter()
                .map(|e| crate::scrub::scrub(&e.to_string()).into_owned())
                .collect(),
            duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
        })),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )),
    }
}

pub(super) async fn pause(
    State(state): State<AdminState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<LinkView>, ApiError> {
    let link = state.link(name)?;
    link.pause();
    tracing::info!(link = %link.name(), "paused over the admin endpoint");
    Ok(Json(state.view(&link)))
}

pub(super) async fn resume(
    State(state): State<AdminState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<LinkView>, ApiError> {
    let link = state.link(name)?;
    link.resume();
    tracing::info!(link = %link.name(), "resumed over the admin endpoint");
    Ok(Json(state.view(&link)))
}
