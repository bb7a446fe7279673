//! [`HttpInlet`]: requests a URL on every transfer (Databay's `HttpInlet`),
//! with items, pagination, an incremental cursor, size limits, retries and
//! `Retry-After` answered through [`Pull::RetryAfter`].

use std::time::{Duration, Instant};

use databay_component::http::reqwest::header::{CONTENT_TYPE, HeaderMap, LINK};
use databay_component::http::{
    HttpClient, HttpError, Method, OnRetryAfter, StatusCode, Url, describe, retry_after,
};
use databay_core::{BoxError, Inlet, Pull, Record, Update, async_trait};
use serde_json::Value;

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins http` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub(crate) use options::register;
pub use options::{CursorOptions, HttpFormat, HttpInletOptions};
#[cfg(test)]
mod tests;

/// Where the next page's URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// A JSON pointer into the body.
    Pointer(String),
    /// The `Link: <...>; rel="next"` header.
    LinkHeader,
}

/// What went wrong in a pull of an [`HttpInlet`] beyond the request itself.
/// Every variant names the request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpInletError {
    /// The request failed, or its response is unusable.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// `items` does not point at an array.
    #[error("{request}: `items` pointer `{pointer}` finds {found}, not an array")]
    Items {
        /// Method and URL.
        request: String,
        /// The pointer.
        pointer: String,
        /// What is there (`nothing`, `an object`, ...).
        found: &'static str,
    },
    /// The `next` pointer finds something that is not a URL.
    #[error("{request}: `next` {source_name} does not hold a URL: {message}")]
    Next {
        /// Method and URL.
        request: String,
        /// `pointer /next` or `Link header`.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// The last item has no usable cursor value.
    #[error(
        "{request}: `cursor.pointer` `{pointer}` finds {found} in the last item, not a string or number"
    )]
    Cursor {
        /// Method and URL.
        request: String,
        /// The pointer.
        pointer: String,
        /// What is there.
        found: &'static str,
    },
}

/// Requests a URL on every transfer and emits the response: the parsed
/// JSON body (or its text) as one record, or with `items` each element of
/// an array in it as a record.
///
/// - Pagination: with `next` (a JSON pointer to the next URL, or the
///   `Link: rel="next"` header) one pull follows up to `max_pages` pages.
///   When the cap stops it, the next pull goes on from the page it stopped
///   at; when the pages run out, the next pull starts again from `url`.
/// - Cursor: with `cursor`, the value at `cursor.pointer` in the last item
///   received is sent as query parameter `cursor.param` on the next pull's
///   first request. It lives in memory only (the core has no resume-state
///   API yet), so a restart starts without it.
/// - A pull is all or nothing: when any page fails, nothing of that pull is
///   emitted, and the next pull starts again where this one started.
/// - 429 or 503 with `Retry-After`: the pull answers
///   [`Pull::RetryAfter`] (with the records of earlier pages, the delay is
///   answered by the next pull instead). Other 5xx, 429 without
///   `Retry-After`, connection errors and timeouts are retried with
///   backoff (`retry`).
#[derive(Debug)]
pub struct HttpInlet {
    client: HttpClient,
    method: Method,
    url: Url,
    query: Vec<(String, String)>,
    /// The body and its content type, if any.
    body: Option<(Vec<u8>, Option<&'static str>)>,
    json: bool,
    status: Vec<u16>,
    max_body: u64,
    items: Option<String>,
    next: Option<Next>,
    max_pages: u32,
    /// `(param, pointer)`.
    cursor: Option<(String, String)>,
    cursor_value: Option<String>,
    /// The page to go on from, when the page cap stopped the last pull.
    pending: Option<Url>,
    /// `cursor_value` and `pending` as of the last commit: what a rollback
    /// goes back to, and the resume state.
    committed: (Option<String>, Option<Url>),
    /// A server's `Retry-After` that a pull with records could not answer.
    not_before: Option<Instant>,
}

impl HttpInlet {
    /// `GET url` with the default options; see [`HttpInletOptions`] for
    /// the rest.
    pub fn new(url: &str) -> Result<Self, databay_component::OptionError> {
        HttpInletOptions::new(url).build(&databay_component::BuildContext::new("", "."))
    }

    /// The cursor value the next pull sends, if any.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor_value.as_deref()
    }

    /// Sets the cursor value the next pull sends (to resume from a known
    /// position).
    pub fn set_cursor(&mut self, value: Option<String>) {
        self.cursor_value = value.clone();
        self.committed.0 = value;
    }

    fn first_url(&self) -> Url {
        let mut url = self.url.clone();
        let cursor = match (&self.cursor, &self.cursor_value) {
            (Some((param, _)), Some(value)) => Some((param, value)),
            _ => None,
        };
        if !self.query.is_empty() || cursor.is_some() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &self.query {
                pairs.append_pair(k, v);
            }
            if let Some((k, v)) = cursor {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    fn accepted(&self, status: StatusCode) -> bool {
        if self.status.is_empty() {
            status.is_success()
        } else {
            self.status.contains(&status.as_u16())
        }
    }

    async fn pull_pages(&mut self) -> Result<Pull, HttpInletError> {
        if let Some(at) = self.not_before {
            let now = Instant::now();
            if now < at {
                return Ok(Pull::RetryAfter(at - now));
            }
            self.not_before = None;
        }
        let start = self.pending.take();
        let mut url = start.clone().unwrap_or_else(|| self.first_url());
        let mut records = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let request = describe(&self.method, &url);
            let page = match self.page(&url, &request).await {
                Ok(page) => page,
                Err(e) => {
                    // All or nothing: the next pull starts where this one did.
                    self.pending = start;
                    return Err(e);
                }
            };
            let (items, next) = match page {
                Page::RetryAfter(delay) if records.is_empty() => {
                    self.pending = start;
                    return Ok(Pull::RetryAfter(delay));
                }
                Page::RetryAfter(delay) => {
                    self.pending = Some(url);
                    self.not_before = Some(Instant::now() + delay);
                    break;
                }
                Page::Items(items, next) => (items, next),
            };
            if let (Some((_, pointer)), Some(last)) = (&self.cursor, items.last()) {
                match cursor_text(last.pointer(pointer)) {
                    Ok(value) => cursor = Some(value),
                    Err(found) => {
                        self.pending = start;
                        return Err(HttpInletError::Cursor {
                            request,
                            pointer: pointer.clone(),
                            found,
                        });
                    }
                }
            }
            records.extend(items.into_iter().map(Record::new));
            pages += 1;
            match next {
                Some(next) if pages < self.max_pages => url = next,
                Some(next) => {
                    self.pending = Some(next);
                    break;
                }
                None => break,
            }
        }
        if cursor.is_some() {
            self.cursor_value = cursor;
        }
        Ok(if records.is_empty() {
            Pull::Nothing
        } else {
            Pull::Records(records)
        })
    }

    /// One request: its items and the next page's URL.
    async fn page(&self, url: &Url, request: &str) -> Result<Page, HttpInletError> {
        let mut builder = self.client.request(self.method.clone(), url.clone());
        if let Some((body, content_type)) = &self.body {
            if let Some(content_type) = content_type {
                builder = builder.header(CONTENT_TYPE, *content_type);
            }
            builder = builder.body(body.clone());
        }
        let req = builder.build().map_err(|e| HttpError::Send {
            request: request.to_owned(),
            message: format!("cannot build the request: {e}"),
            attempts: 0,
            timeout: false,
        })?;
        let response = self.client.send(req, OnRetryAfter::Return).await?;
        let status = response.status();
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) && let Some(delay) = retry_after(response.headers())
        {
            return Ok(Page::RetryAfter(delay));
        }
        if !self.accepted(status) {
            return Err(HttpClient::status_error(response, request).await.into());
        }
        let link_next = match self.next {
            Some(Next::LinkHeader) => {
                link_next(response.headers(), url).map_err(|message| HttpInletError::Next {
                    request: request.to_owned(),
                    source_name: "Link header".into(),
                    message,
                })?
            }
            _ => None,
        };
        let body = HttpClient::read_body(response, request, Some(self.max_body)).await?;
        databay_core::bytes::add(body.len() as u64);
        if !self.json {
            let text = HttpClient::parse_text(body, request)?;
            return Ok(Page::Items(vec![Value::String(text)], None));
        }
        let mut value = HttpClient::parse_json(&body, request)?;
        let next = match &self.next {
            Some(Next::Pointer(pointer)) => {
                pointer_next(value.pointer(pointer), url).map_err(|message| {
                    HttpInletError::Next {
                        request: request.to_owned(),
                        source_name: format!("pointer `{pointer}`"),
                        message,
                    }
                })?
            }
            _ => link_next,
        };
        let items = match &self.items {
            None => vec![value],
            Some(pointer) => match value.pointer_mut(pointer).map(Value::take) {
                Some(Value::Array(items)) => items,
                other => {
                    return Err(HttpInletError::Items {
                        request: request.to_owned(),
                        pointer: pointer.clone(),
                        found: kind(other.as_ref()),
                    });
                }
            },
        };
        Ok(Page::Items(items, next))
    }
}

enum Page {
    Items(Vec<Value>, Option<Url>),
    RetryAfter(Duration),
}

fn kind(value: Option<&Value>) -> &'static str {
    match value {
        None => "nothing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}

fn cursor_text(value: Option<&Value>) -> Result<String, &'static str> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        other => Err(kind(other)),
    }
}

/// The next URL at a `next` pointer: a string (resolved against the page's
/// URL), or nothing / null / `""` for the last page.
fn pointer_next(value: Option<&Value>, base: &Url) -> Result<Option<Url>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => base.join(s).map(Some).map_err(|e| format!("`{s}`: {e}")),
        other => Err(format!("found {}", kind(other))),
    }
}

/// The `rel="next"` target of the `Link` headers (RFC 8288), resolved
/// against the page's URL.
fn link_next(headers: &HeaderMap, base: &Url) -> Result<Option<Url>, String> {
    for header in headers.get_all(LINK) {
        let Ok(text) = header.to_str() else { continue };
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>') else {
                break;
            };
            let target = &rest[open + 1..open + close];
            let after = &rest[open + close + 1..];
            let params_end = after.find('<').unwrap_or(after.len());
            let params = &after[..params_end];
            let is_next = params.split(';').any(|p| {
                let Some((k, v)) = p.split_once('=') else {
                    return false;
                };
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return base
                    .join(target)
                    .map(Some)
                    .map_err(|e| format!("`{target}`: {e}"));
            }
            rest = &after[params_end..];
        }
    }
    Ok(None)
}

#[async_trait]
impl Inlet for HttpInlet {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        Ok(self.pull_pages().await?)
    }

    /// The items of the pull were delivered: the cursor (and the page to
    /// go on from) are now committed.
    async fn commit(&mut self, _update: &Update) -> Result<(), BoxError> {
        self.committed = (self.cursor_value.clone(), self.pending.clone());
        Ok(())
    }

    /// Not delivered: back to the committed cursor and page, so the next
    /// pull asks for the same items again.
    async fn rollback(&mut self, _update: &Update) -> Result<(), BoxError> {
        (self.cursor_value, self.pending) = self.committed.clone();
        Ok(())
    }

    /// With a cursor: `{"cursor": value, "next_page": url}`, both as of
    /// the last commit (`null` when there is none).
    fn snapshot(&self) -> Option<Value> {
        self.cursor.as_ref()?;
        Some(serde_json::json!({
            "cursor": self.committed.0,
            "next_page": self.committed.1.as_ref().map(Url::as_str),
        }))
    }

    /// Resumes at a snapshot's cursor and page.
    async fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        if self.cursor.is_none() {
            return Err("an http inlet without a cursor keeps no resume state".into());
        }
        let text = |key: &str| -> Result<Option<String>, BoxError> {
            match state.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => {
                    Err(format!("resume state: `{key}` must be a string, not {other}").into())
                }
            }
        };
        let cursor = text("cursor")?;
        let page = text("next_page")?
            .map(|u| Url::parse(&u).map_err(|e| format!("resume state: `next_page`: {e}")))
            .transpose()?;
        self.committed = (cursor, page);
        (self.cursor_value, self.pending) = self.committed.clone();
        Ok(())
    }
}
