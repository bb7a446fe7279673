//! [`HttpServerInlet`]: a webhook receiver. An HTTP server (axum), started
//! by `on_start`, takes POSTed JSON or NDJSON and holds the records until
//! the next pull; what a transfer did not deliver is held again. By
//! default a sender is answered only once the transfer carrying its
//! records was committed, so nothing it was told is delivered can be lost
//! when the daemon stops or dies.
//!
#![doc = include_str!("README.md")]

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use databay_component::Secret;
use databay_component::broker::Unsettled;
use databay_core::{BoxError, Inlet, Pull, Update, async_trait};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub(crate) use options::register;
pub use options::{Ack, DEFAULT_ADDRESS, HttpServerInletOptions};
#[cfg(test)]
mod tests;

/// How long `on_shutdown` lets requests in flight finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Content types whose body is one JSON value per line.
const NDJSON_TYPES: [&str; 5] = [
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
];

/// Why an [`HttpServerInlet`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpServerInletError {
    /// The address could not be bound (in use, not an address of this
    /// host, a privileged port).
    #[error(
        "http_server cannot listen on {address}: {error} (is another process using it? \
         `address` sets it)"
    )]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// What the operating system said.
        error: std::io::Error,
    },
}

/// The address an [`HttpServerInlet`] listens on once started: with port 0
/// in the options, the port the system picked. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct LocalAddr(Arc<Mutex<Option<SocketAddr>>>);

impl LocalAddr {
    /// The address, while the server runs.
    pub fn get(&self) -> Option<SocketAddr> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, address: Option<SocketAddr>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = address;
    }
}

/// One received record and the bytes of body it came in.
struct Entry {
    value: Value,
    bytes: u64,
    /// Whether a pull counted its bytes as received already (a record
    /// held again after a rollback is not received twice).
    counted: bool,
    /// The request waiting for this record's commit (`ack = "commit"`).
    request: Option<u64>,
}

/// What a request waiting for its records' commit is answered.
#[derive(Debug)]
enum Outcome {
    /// Every record of it was in a committed transfer.
    Delivered,
    /// The inlet is shutting down before that happened.
    Stopping,
}

/// A request waiting for its records' commit.
struct Waiter {
    /// Its records not yet committed.
    remaining: usize,
    done: oneshot::Sender<Outcome>,
}

/// What is held: the records waiting for a pull, and counts that also
/// include the records pulled but not yet committed.
#[derive(Default)]
struct Held {
    queue: VecDeque<Entry>,
    records: usize,
    bytes: u64,
    /// Requests answered once their records are committed, by id.
    waiting: HashMap<u64, Waiter>,
    next_request: u64,
    /// `on_shutdown` began: requests are refused with 503.
    stopping: bool,
}

impl Held {
    /// Makes room for `entries`, which left for good.
    fn release(&mut self, entries: &[Entry]) {
        self.records = self.records.saturating_sub(entries.len());
        self.bytes = self
            .bytes
            .saturating_sub(entries.iter().map(|e| e.bytes).sum::<u64>());
    }

    /// Whether `entry` belongs to a request that stopped waiting for it
    /// (its sender was answered that it was not delivered, or gave up):
    /// such a record is dropped instead of being held again, since its
    /// sender sends it again.
    fn orphaned(&self, entry: &Entry) -> bool {
        entry
            .request
            .is_some_and(|id| !self.waiting.contains_key(&id))
    }

    /// Drops the orphaned records of `entries`, making room for them.
    fn keep_wanted(&mut self, entries: Vec<Entry>) -> Vec<Entry> {
        let (orphans, wanted): (Vec<Entry>, Vec<Entry>) =
            entries.into_iter().partition(|e| self.orphaned(e));
        self.release(&orphans);
        wanted
    }
}

/// What the request handler needs.
struct Shared {
    path: String,
    token: Option<Secret<String>>,
    max_records: usize,
    max_bytes: u64,
    max_body: u64,
    retry_after: Duration,
    request_timeout: Duration,
    ack: Ack,
    ack_timeout: Duration,
    held: Mutex<Held>,
}

impl Shared {
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Retry-After` in whole seconds, at least 1.
    fn retry_seconds(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }

    /// The answer to a request whose records were not delivered and are
    /// no longer held: the sender is to send them again.
    fn not_delivered(&self, why: String) -> Refusal {
        let seconds = self.retry_seconds();
        Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("{why}; send the request again (retry after {seconds}s)"),
            retry_after: Some(seconds),
        }
    }
}

/// A request waiting for its commit. Dropped without the commit (the
/// sender gave up and closed the connection, `ack_timeout` passed, the
/// inlet stops), it withdraws its records that no pull has taken yet:
/// the sender was not told they were delivered and sends them again.
struct Pending {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut held = self.shared.held();
        if held.waiting.remove(&self.id).is_none() {
            return;
        }
        let queue = std::mem::take(&mut held.queue);
        let (withdrawn, kept): (Vec<Entry>, Vec<Entry>) =
            queue.into_iter().partition(|e| e.request == Some(self.id));
        held.queue = kept.into();
        held.release(&withdrawn);
    }
}

/// The running server.
struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Receives records over HTTP: each POST to `path` carries a JSON value,
/// an array of values (one record each), or NDJSON lines; the records are
/// held until the next pull, which emits them all.
///
/// With [`Ack::Commit`] (the default) a request is answered `200` only
/// once the transfer that carried its records was committed (every
/// outlet accepted them), and `503` with `Retry-After` when that did not
/// happen within `ack_timeout` or the inlet stops first: a sender that
/// resends what was not answered `200` loses nothing, even when the
/// daemon is killed (at least once). With [`Ack::Receipt`] a request is
/// answered `202` as soon as its records are held, and what is held when
/// the inlet stops is lost.
///
/// Held records are never dropped to make room: when `max_records` or
/// `max_bytes` is reached the request is answered `503` with
/// `Retry-After`, and the sender tries again after a transfer made room.
/// Records a transfer did not deliver (it failed, or an outlet refused
/// them) are held again, first in line, for the next pull.
pub struct HttpServerInlet {
    address: SocketAddr,
    shared: Arc<Shared>,
    unsettled: Unsettled<Vec<Entry>>,
    local: LocalAddr,
    server: Option<Server>,
}

impl fmt::Debug for HttpServerInlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("HttpServerInlet")
            .field("address", &self.address)
            .field("path", &s.path)
            .field("token", &s.token)
            .field("max_records", &s.max_records)
            .field("max_bytes", &s.max_bytes)
            .field("max_body", &s.max_body)
            .field("retry_after", &s.retry_after)
            .field("request_timeout", &s.request_timeout)
            .field("ack", &s.ack)
            .field("ack_timeout", &s.ack_timeout)
            .field("listening", &self.local.get())
            .finish_non_exhaustive()
    }
}

impl HttpServerInlet {
    fn new(address: SocketAddr, o: HttpServerInletOptions) -> Self {
        HttpServerInlet {
            address,
            shared: Arc::new(Shared {
                path: o.path,
                token: o.token,
                max_records: o.max_records,
                max_bytes: o.max_bytes.0,
                max_body: o.max_body.0,
                retry_after: o.retry_after,
                request_timeout: o.request_timeout,
                ack: o.ack,
                ack_timeout: o.ack_timeout,
                held: Mutex::new(Held::default()),
            }),
            unsettled: Unsettled::default(),
            local: LocalAddr::default(),
            server: None,
        }
    }

    /// Where the server listens once started (shared with clones, so it
    /// can be read after the inlet moved into a link).
    pub fn local_addr(&self) -> LocalAddr {
        self.local.clone()
    }

    /// Records received and not yet delivered (waiting, or pulled by a
    /// transfer that has not been committed).
    pub fn held(&self) -> usize {
        self.shared.held().records
    }
}

#[async_trait]
impl Inlet for HttpServerInlet {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        // A transfer of this link cut short without being settled: its
        // records go first, in this pull.
        let leftovers = self.unsettled.insert(update, Vec::new());
        let _ = self.unsettled.take(update);
        let mut taken = {
            let mut held = self.shared.held();
            let mut taken = held.keep_wanted(leftovers.into_iter().flatten().collect());
            taken.extend(held.queue.drain(..));
            taken
        };
        if taken.is_empty() {
            return Ok(Pull::Nothing);
        }
        let mut received = 0;
        for entry in taken.iter_mut().filter(|e| !e.counted) {
            entry.counted = true;
            received += entry.bytes;
        }
        databay_core::bytes::add(received);
        // A copy stays here until the transfer is committed.
        let values: Vec<Value> = taken.iter().map(|e| e.value.clone()).collect();
        self.unsettled.insert(update, taken);
        Ok(Pull::values(values))
    }

    async fn commit(&mut self, update: &Update) -> Result<(), BoxError> {
        if let Some(taken) = self.unsettled.take(update) {
            let mut held = self.shared.held();
            held.release(&taken);
            for id in taken.iter().filter_map(|e| e.request) {
                let Some(waiter) = held.waiting.get_mut(&id) else {
                    continue;
                };
                waiter.remaining = waiter.remaining.saturating_sub(1);
                if waiter.remaining == 0
                    && let Some(waiter) = held.waiting.remove(&id)
                {
                    let _ = waiter.done.send(Outcome::Delivered);
                }
            }
        }
        Ok(())
    }

    async fn rollback(&mut self, update: &Update) -> Result<(), BoxError> {
        if let Some(taken) = self.unsettled.take(update) {
            let mut held = self.shared.held();
            let taken = held.keep_wanted(taken);
            for entry in taken.into_iter().rev() {
                held.queue.push_front(entry);
            }
        }
        Ok(())
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        let listener = tokio::net::TcpListener::bind(self.address)
            .await
            .map_err(|error| HttpServerInletError::Bind {
                address: self.address,
                error,
            })?;
        let local = listener
            .local_addr()
            .map_err(|error| HttpServerInletError::Bind {
                address: self.address,
                error,
            })?;
        let path = &self.shared.path;
        tracing::info!(address = %local, path = %path, "http_server listening on http://{local}{path}");
        if !local.ip().is_loopback() && self.shared.token.is_none() {
            tracing::warn!(
                address = %local,
                "http_server listens beyond loopback without a `token`: whoever reaches {local} can send records"
            );
        }
        let router = Router::new()
            .fallback(receive)
            .with_state(self.shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(address = %local, "http_server on {local} stopped: {e}");
            }
        });
        self.local.set(Some(local));
        self.server = Some(Server { stop, task });
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        {
            // Requests from now on, and those waiting for a commit, are
            // told that their records were not delivered.
            let mut held = self.shared.held();
            held.stopping = true;
            for (_, waiter) in held.waiting.drain() {
                let _ = waiter.done.send(Outcome::Stopping);
            }
        }
        if let Some(Server { stop, mut task }) = self.server.take() {
            let _ = stop.send(());
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        let address = self.local.get().unwrap_or(self.address);
        self.local.set(None);
        let held = std::mem::take(&mut *self.shared.held());
        let unsettled = self.unsettled.drain();
        let (answered, unanswered) =
            held.queue
                .iter()
                .chain(unsettled.iter().flatten())
                .fold((0, 0), |(a, u), e| match e.request {
                    None => (a + 1, u),
                    Some(_) => (a, u + 1),
                });
        if unanswered > 0 {
            tracing::info!(
                address = %address,
                records = unanswered,
                "http_server on {address} stops with {unanswered} received records not delivered; \
                 their senders were answered 503 and send them again"
            );
        }
        if answered > 0 {
            // `ack = "receipt"`: the senders were told these were taken.
            tracing::warn!(
                address = %address,
                records = answered,
                "http_server on {address} stops holding {answered} received records that were not \
                 delivered (ack = \"receipt\" answered them 202; ack = \"commit\" would not lose them)"
            );
        }
        Ok(())
    }
}

/// Why a request was not taken: its status and message.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        let headers = response.headers_mut();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            _ => {}
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Every request: a POST to the path is received, anything else refused.
async fn receive(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if uri.path() != shared.path {
        return Refusal::new(
            StatusCode::NOT_FOUND,
            format!(
                "records are POSTed to `{}`, not `{}`",
                shared.path,
                uri.path()
            ),
        )
        .into_response();
    }
    if method != Method::POST {
        return Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("records are sent with POST, not {method}"),
        )
        .into_response();
    }
    let (records, waiting) = match take(&shared, &headers, body).await {
        Ok(taken) => taken,
        Err(refusal) => return refusal.into_response(),
    };
    let Some((id, done)) = waiting else {
        let status = match shared.ack {
            Ack::Receipt => StatusCode::ACCEPTED,
            // Nothing to wait for: an empty array is delivered at once.
            Ack::Commit => StatusCode::OK,
        };
        let key = match shared.ack {
            Ack::Receipt => "accepted",
            Ack::Commit => "delivered",
        };
        return (status, axum::Json(json!({ key: records }))).into_response();
    };
    // Dropped on every way out, and when the sender closes the connection
    // (the server drops this future): see `Pending`.
    let _pending = Pending {
        shared: shared.clone(),
        id,
    };
    match tokio::time::timeout(shared.ack_timeout, done).await {
        Ok(Ok(Outcome::Delivered)) => {
            (StatusCode::OK, axum::Json(json!({ "delivered": records }))).into_response()
        }
        Ok(Ok(Outcome::Stopping) | Err(_)) => shared
            .not_delivered("the receiver is stopping and the records were not delivered".into())
            .into_response(),
        Err(_) => shared
            .not_delivered(format!(
                "the records were not delivered within ack_timeout = {}",
                databay_component::duration::format(shared.ack_timeout)
            ))
            .into_response(),
    }
}

/// How many records a request carried, and the commit its answer waits
/// for (`ack = "commit"`): the request's id and its outcome.
type Taken = (usize, Option<(u64, oneshot::Receiver<Outcome>)>);

/// Checks, reads and holds one request's records.
async fn take(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Taken, Refusal> {
    authorize(shared, headers)?;
    let too_large = |size: Option<u64>| {
        let size = size.map(|n| format!("{n} bytes, ")).unwrap_or_default();
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is {size}more than max_body = {} bytes",
                shared.max_body
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared
        && length > shared.max_body
    {
        return Err(too_large(Some(length)));
    }
    let read = async {
        let mut stream = body.into_data_stream();
        let mut bytes = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!("the body could not be read: {e}"),
                )
            })?;
            if (bytes.len() + chunk.len()) as u64 > shared.max_body {
                return Err(too_large(None));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    let body = tokio::time::timeout(shared.request_timeout, read)
        .await
        .map_err(|_| {
            Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {:?} (request_timeout)",
                    shared.request_timeout
                ),
            )
        })??;
    let entries = if is_ndjson(headers) {
        parse_ndjson(&body)
    } else {
        parse_json(&body)
    }
    .map_err(|message| Refusal::new(StatusCode::BAD_REQUEST, message))?;
    hold(shared, entries)
}

/// Refuses a request without the configured bearer token.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(token) = &shared.token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    match given {
        None => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs `Authorization: Bearer <token>`",
        )),
        Some(given) if same(given.as_bytes(), token.expose().as_bytes()) => Ok(()),
        Some(_) => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "the bearer token is not the one this endpoint takes",
        )),
    }
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guessed token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn is_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            let t = t.trim();
            NDJSON_TYPES.iter().any(|n| t.eq_ignore_ascii_case(n))
        })
}

const EMPTY: &str = "the body is empty: send a JSON value, an array of values, or NDJSON lines \
                     (Content-Type: application/x-ndjson)";

/// A JSON body: one value, or an array whose elements are the records.
fn parse_json(body: &[u8]) -> Result<Vec<Entry>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(EMPTY.into());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!("the body is not JSON: {e} (NDJSON needs Content-Type: application/x-ndjson)")
    })?;
    let size = body.len() as u64;
    Ok(match value {
        Value::Array(items) => {
            // Each element's share of the body, the first ones taking
            // the remainder, so the shares add up to the body's size.
            let n = items.len() as u64;
            items
                .into_iter()
                .enumerate()
                .map(|(i, value)| Entry {
                    value,
                    bytes: size / n + u64::from((i as u64) < size % n),
                    counted: false,
                    request: None,
                })
                .collect()
        }
        value => vec![Entry {
            value,
            bytes: size,
            counted: false,
            request: None,
        }],
    })
}

/// An NDJSON body: one value per line; blank lines are skipped.
fn parse_ndjson(body: &[u8]) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value = serde_json::from_slice(line).map_err(|e| {
            format!(
                "line {} is not JSON: {}",
                i + 1,
                e.to_string().replace(" at line 1 column ", " at column ")
            )
        })?;
        entries.push(Entry {
            value,
            bytes: line.len() as u64 + 1,
            counted: false,
            request: None,
        });
    }
    if entries.is_empty() {
        return Err(EMPTY.into());
    }
    Ok(entries)
}

/// Holds a request's records, all or none.
fn hold(shared: &Shared, mut entries: Vec<Entry>) -> Result<Taken, Refusal> {
    let n = entries.len();
    if n > shared.max_records {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body holds {n} records, more than max_records = {}: send fewer per request",
                shared.max_records
            ),
        ));
    }
    let bytes: u64 = entries.iter().map(|e| e.bytes).sum();
    let mut held = shared.held();
    if held.stopping {
        return Err(shared.not_delivered("the receiver is stopping".into()));
    }
    if held.records + n > shared.max_records || held.bytes + bytes > shared.max_bytes {
        let seconds = shared.retry_seconds();
        return Err(Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!(
                "full: {} records ({} bytes) are waiting to be delivered, at most max_records = {} \
                 (max_bytes = {}) are held; retry after {seconds}s",
                held.records, held.bytes, shared.max_records, shared.max_bytes
            ),
            retry_after: Some(seconds),
        });
    }
    let waiting = if shared.ack == Ack::Commit && n > 0 {
        let id = held.next_request;
        held.next_request += 1;
        let (done, outcome) = oneshot::channel();
        held.waiting.insert(id, Waiter { remaining: n, done });
        for entry in &mut entries {
            entry.request = Some(id);
        }
        Some((id, outcome))
    } else {
        None
    };
    held.records += n;
    held.bytes += bytes;
    held.queue.extend(entries);
    Ok((n, waiting))
}
