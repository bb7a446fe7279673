//! Who may use the endpoint. Three checks, in order, on every request:
//!
//! 1. Bound to loopback, the endpoint answers only requests whose `Host`
//!    is a loopback name or address, so a page on another site cannot reach
//!    it through DNS rebinding (and read the page's token).
//! 2. With `[admin] token`, every request but the status page's own files
//!    carries `Authorization: Bearer TOKEN`.
//! 3. A request that changes something (any method but GET and HEAD) is
//!    refused when it comes from another site: a foreign `Origin`, or
//!    `Sec-Fetch-Site` other than `same-origin` or `none`. One that comes from a
//!    browser at all (it has `Origin` or `Sec-Fetch-Site`, which browsers add
//!    to every POST) must also carry the per-process token the page got from
//!    `GET /` in `X-Databay-Token`. Requests with neither header (curl,
//!    scripts) need no token: no browser sends such a POST across sites.

use std::fmt;
use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use databay_component::Secret;

use super::AdminState;
use super::routes::ApiError;

/// The header the status page sends its token in.
pub(super) const TOKEN_HEADER: &str = "x-databay-token";

/// The checks' settings.
#[derive(Clone)]
pub(super) struct Guard {
    /// The per-process token (hex), handed to the page.
    pub(super) page_token: String,
    /// `[admin] token`.
    pub(super) bearer: Option<Secret<String>>,
    /// Answer only loopback `Host`s.
    pub(super) loopback_hosts: bool,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("bearer", &self.bearer.is_some())
            .field("loopback_hosts", &self.loopback_hosts)
            .finish_non_exhaustive()
    }
}

impl Guard {
    pub(super) fn new() -> Self {
        Guard {
            page_token: random_token(),
            bearer: None,
            loopback_hosts: false,
        }
    }
}

/// 128 random bits from the OS, in hex. Without a random source the token
/// is one no request can carry, so browsers cannot change anything (curl
/// still can).
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    match getrandom::fill(&mut bytes) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "no random source for the status page's token; its actions are refused");
            String::new()
        }
    }
}

/// Compares in time independent of where `a` and `b` differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The files of the status page: they hold no data (the page then asks
/// for the bearer token, if one is needed).
fn is_page_file(path: &str) -> bool {
    matches!(path, "/" | "/ui/status.css" | "/ui/status.js")
}

fn forbidden(message: impl Into<String>) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, message).into_response()
}

/// The host part of a `Host` header (`[::1]:9477` → `::1`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn is_loopback_host(host: &str) -> bool {
    let name = host_name(host);
    name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// Why a request that changes something is refused, if it is.
fn cross_site(headers: &HeaderMap, page_token: &str) -> Option<String> {
    let origin = text(headers, header::ORIGIN);
    let fetch_site = text(headers, "sec-fetch-site");
    if let Some(origin) = origin {
        let host = text(headers, header::HOST).unwrap_or_default();
        let own = ["http://", "https://"]
            .iter()
            .any(|scheme| origin.strip_prefix(scheme) == Some(host));
        if !own {
            return Some(format!(
                "refused: a request from another origin (`{origin}`) cannot change links; use the status page at http://{host}/ or a client without an Origin header"
            ));
        }
    }
    if let Some(site) = fetch_site
        && !matches!(site, "same-origin" | "none")
    {
        return Some(format!(
            "refused: a {site} request (Sec-Fetch-Site) cannot change links"
        ));
    }
    if origin.is_none() && fetch_site.is_none() {
        return None;
    }
    let sent = text(headers, TOKEN_HEADER).unwrap_or_default();
    if page_token.is_empty() || !same_secret(sent.as_bytes(), page_token.as_bytes()) {
        return Some(format!(
            "refused: a browser request that changes links needs the status page's token in `{TOKEN_HEADER}` (reload the page at /)"
        ));
    }
    None
}

/// The middleware: the checks above, then the route.
pub(super) async fn check(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Response {
    let guard = &state.guard;
    let headers = request.headers();
    if guard.loopback_hosts
        && let Some(host) = text(headers, header::HOST)
        && !is_loopback_host(host)
    {
        return forbidden(format!(
            "refused: Host `{host}` is not a loopback name; the endpoint listens on loopback only (this guards against DNS rebinding)"
        ));
    }
    if let Some(bearer) = &guard.bearer
        && !is_page_file(request.uri().path())
    {
        let sent = text(headers, header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same_secret(sent.trim().as_bytes(), bearer.expose().as_bytes()) {
            let mut answer = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this endpoint needs `Authorization: Bearer TOKEN` ([admin] token)",
            )
            .into_response();
            answer
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return answer;
        }
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD)
        && let Some(why) = cross_site(headers, &guard.page_token)
    {
        tracing::warn!(path = %request.uri().path(), "admin request refused: {why}");
        return forbidden(why);
    }
    next.run(request).await
}
