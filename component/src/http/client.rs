//! [`HttpClient`]: a reqwest client with the shared TLS, auth, header,
//! timeout and retry options applied, and the errors it reports.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Request, RequestBuilder, Response, StatusCode, Url};

use super::options::{Auth, RetryOptions};
use crate::{OptionError, Secret};

/// What an HTTP request ended with, when it is not a response the caller
/// can use. Every variant names the request (`GET https://host/path`, any
/// password in the URL replaced by `***`) and what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// No response: connection refused, DNS, TLS, reset, or no response
    /// within the request timeout; after every attempt.
    #[error("{request}: {message} (after {attempts} attempt{s})", s = if *.attempts == 1 { "" } else { "s" })]
    Send {
        /// Method and URL.
        request: String,
        /// What failed, with its causes.
        message: String,
        /// How many attempts were made.
        attempts: u32,
        /// Whether the last attempt timed out.
        timeout: bool,
    },
    /// The server answered with a status that is not accepted.
    #[error("{request}: status {status}{}", body_note(.body))]
    Status {
        /// Method and URL.
        request: String,
        /// The status code.
        status: u16,
        /// The start of the response body, for the reason.
        body: String,
    },
    /// The response body is larger than the configured limit.
    #[error("{request}: the response body is larger than the limit of {limit} bytes (`max_body`)")]
    TooLarge {
        /// Method and URL.
        request: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Reading the response body failed (or timed out).
    #[error("{request}: reading the response body failed: {message}")]
    Body {
        /// Method and URL.
        request: String,
        /// What failed.
        message: String,
    },
    /// The response body is not what the format asks for.
    #[error("{request}: the response body is not valid {format}: {message}")]
    Decode {
        /// Method and URL.
        request: String,
        /// `JSON` or `UTF-8 text`.
        format: &'static str,
        /// What the parser objected to, and where.
        message: String,
    },
}

fn body_note(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// Whether a response with this status is worth another attempt: 429, and
/// 5xx except those that will not change (501, 505).
pub fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
}

/// The delay a `Retry-After` header asks for: delay-seconds, or an
/// HTTP-date (a date in the past is no delay).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// `url` as it may be shown: the password, if any, as `***`.
pub fn scrub(url: &Url) -> String {
    if url.password().is_some() {
        let mut shown = url.clone();
        let _ = shown.set_password(Some("***"));
        shown.to_string()
    } else {
        url.to_string()
    }
}

/// `METHOD url`, scrubbed: how errors and logs name a request.
pub fn describe(method: &Method, url: &Url) -> String {
    format!("{method} {}", scrub(url))
}

/// What [`HttpClient::send`] does with a 429 or 503 that carries
/// `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnRetryAfter {
    /// Wait as asked and try again (within the retry attempts).
    Wait,
    /// Return the response at once: the caller reports the delay itself
    /// (an inlet's `Pull::RetryAfter`).
    Return,
}

/// Configures an [`HttpClient`].
#[derive(Debug, Clone, Default)]
pub struct HttpClientBuilder {
    timeout: Option<Duration>,
    ca_file: Option<PathBuf>,
    auth: Auth,
    headers: Vec<(String, Secret<String>)>,
    retry: RetryOptions,
}

impl HttpClientBuilder {
    /// Limits each request (connect, send, whole response body) to
    /// `timeout`. No limit by default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Trusts the PEM certificates in `path` besides the system's roots.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// How requests authenticate.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Sends `name: value` with every request. Values are treated as
    /// secrets: never shown.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), Secret::new(value.into())));
        self
    }

    /// Retries and their delays.
    pub fn retry(mut self, retry: RetryOptions) -> Self {
        self.retry = retry;
        self
    }

    /// The client. Errors name the option at fault: `tls.ca_file`,
    /// `headers`, `auth`, `retry.*`.
    pub fn build(self) -> Result<HttpClient, OptionError> {
        // One TLS stack for the whole daemon: rustls with ring. reqwest
        // uses the process default provider; another component may have
        // installed it first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        self.retry.validate()?;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("databay/", env!("CARGO_PKG_VERSION")))
            .tls_backend_rustls();
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(path) = &self.ca_file {
            for cert in read_certificates(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                OptionError::new("headers", format!("`{name}` is not a valid header name"))
            })?;
            let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
                OptionError::new(
                    "headers",
                    format!("the value of `{name}` is not a valid header value"),
                )
            })?;
            value.set_sensitive(true);
            headers.append(header, value);
        }
        let client = builder.build().map_err(|e| {
            OptionError::new("tls", format!("cannot set up the client: {}", chain(&e)))
        })?;
        Ok(HttpClient {
            client,
            headers,
            auth: self.auth,
            retry: self.retry,
            timeout: self.timeout,
        })
    }
}

fn read_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, OptionError> {
    let pem = std::fs::read(path).map_err(|e| {
        OptionError::new(
            "tls.ca_file",
            format!("cannot read `{}`: {e}", path.display()),
        )
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        OptionError::new(
            "tls.ca_file",
            format!(
                "`{}` is not a PEM certificate file: {}",
                path.display(),
                chain(&e)
            ),
        )
    })?;
    if certs.is_empty() {
        return Err(OptionError::new(
            "tls.ca_file",
            format!("`{}` holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

/// An error and its causes, `: `-separated, without reqwest's own URL
/// (which could hold a password).
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" for url ({url})"), "");
        text = text.replace(url.as_str(), &scrub(url));
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A reqwest client with the HTTP components' shared options applied:
/// TLS roots, auth, headers, timeout, and retries with exponential backoff
/// and jitter on connection errors, timeouts, 429 and 5xx, honouring
/// `Retry-After`. Cheap to clone.
///
/// ```no_run
/// use databay_component::http::{HttpClient, OnRetryAfter};
/// # async fn f() -> Result<(), databay_core::BoxError> {
/// let client = HttpClient::builder().timeout(std::time::Duration::from_secs(10)).build()?;
/// let request = client.request(reqwest::Method::GET, "https://example.com/".parse()?).build()?;
/// let response = client.send(request, OnRetryAfter::Wait).await?;
/// let body = HttpClient::read_body(response, "GET https://example.com/", Some(1 << 20)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    headers: HeaderMap,
    auth: Auth,
    retry: RetryOptions,
    timeout: Option<Duration>,
}

impl HttpClient {
    /// A builder with no timeout, no auth, the default retries.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder::default()
    }

    /// The retry settings.
    pub fn retry_options(&self) -> &RetryOptions {
        &self.retry
    }

    /// A request with the configured headers and auth.
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let builder = self
            .client
            .request(method, url)
            .headers(self.headers.clone());
        match &self.auth {
            Auth::None => builder,
            Auth::Bearer(token) => builder.bearer_auth(token.expose()),
            Auth::Basic { user, password } => {
                builder.basic_auth(user, password.as_ref().map(|p| p.expose()))
            }
        }
    }

    /// Sends `request`, retrying as configured, and returns the last
    /// response, whatever its status: the caller decides which statuses it
    /// accepts. With [`OnRetryAfter::Return`] a 429/503 carrying
    /// `Retry-After` comes back at once. Errors only when no response came.
    pub async fn send(&self, request: Request, mode: OnRetryAfter) -> Result<Response, HttpError> {
        let described = describe(request.method(), request.url());
        let mut attempt = 1;
        loop {
            let this = request.try_clone().ok_or_else(|| HttpError::Send {
                request: described.clone(),
                message: "the request body cannot be sent twice".into(),
                attempts: attempt,
                timeout: false,
            })?;
            let delay = match self.client.execute(this).await {
                Ok(response) => {
                    let status = response.status();
                    if !is_retryable(status) {
                        return Ok(response);
                    }
                    let asked = retry_after(response.headers());
                    let throttled = status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::SERVICE_UNAVAILABLE;
                    if mode == OnRetryAfter::Return && throttled && asked.is_some() {
                        return Ok(response);
                    }
                    if attempt >= self.retry.attempts {
                        return Ok(response);
                    }
                    let delay = match asked {
                        // The server wants longer than we may wait: give up
                        // now instead of retrying too early.
                        Some(d) if d > self.retry.max_delay => return Ok(response),
                        Some(d) => d,
                        None => self.retry.backoff(attempt),
                    };
                    tracing::warn!(
                        request = %described,
                        status = status.as_u16(),
                        attempt,
                        "retrying in {}",
                        humantime::format_duration(round_ms(delay))
                    );
                    delay
                }
                Err(e) => {
                    let transient = e.is_connect() || e.is_timeout() || e.is_request();
                    if !transient || attempt >= self.retry.attempts {
                        return Err(self.send_error(described, &e, attempt));
                    }
                    let delay = self.retry.backoff(attempt);
                    tracing::warn!(
                        request = %described,
                        attempt,
                        error = %self.send_message(&e),
                        "retrying in {}",
                        humantime::format_duration(round_ms(delay))
                    );
                    delay
                }
            };
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn send_message(&self, e: &reqwest::Error) -> String {
        match (e.is_timeout(), self.timeout) {
            (true, Some(t)) => format!(
                "no response within {} (`request_timeout`)",
                humantime::format_duration(t)
            ),
            _ => {
                let text = chain(e);
                if text.contains("invalid peer certificate: UnknownIssuer") {
                    format!(
                        "{text}; the server's certificate is not signed by a CA this \
                         system trusts: give its CA certificate in `tls.ca_file`"
                    )
                } else {
                    text
                }
            }
        }
    }

    fn send_error(&self, request: String, e: &reqwest::Error, attempts: u32) -> HttpError {
        HttpError::Send {
            request,
            message: self.send_message(e),
            attempts,
            timeout: e.is_timeout(),
        }
    }

    /// The body of `response`, at most `limit` bytes (more is
    /// [`HttpError::TooLarge`], found without reading it all when the
    /// server says its length). `request` names the request in errors.
    pub async fn read_body(
        mut response: Response,
        request: &str,
        limit: Option<u64>,
    ) -> Result<Vec<u8>, HttpError> {
        let too_large = |limit| HttpError::TooLarge {
            request: request.to_owned(),
            limit,
        };
        if let (Some(limit), Some(length)) = (limit, response.content_length())
            && length > limit
        {
            return Err(too_large(limit));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if let Some(limit) = limit
                        && body.len() as u64 > limit
                    {
                        return Err(too_large(limit));
                    }
                }
                Ok(None) => return Ok(body),
                Err(e) => {
                    return Err(HttpError::Body {
                        request: request.to_owned(),
                        message: if e.is_timeout() {
                            "timed out (`request_timeout`)".to_owned()
                        } else {
                            chain(&e)
                        },
                    });
                }
            }
        }
    }

    /// An [`HttpError::Status`] for `response`, with the start of its body
    /// (at most 200 characters, on one line) as the reason.
    pub async fn status_error(response: Response, request: &str) -> HttpError {
        let status = response.status().as_u16();
        let body = Self::read_body(response, request, Some(64 * 1024))
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let mut excerpt: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some((cut, _)) = excerpt.char_indices().nth(200) {
            excerpt.truncate(cut);
            excerpt.push_str("...");
        }
        HttpError::Status {
            request: request.to_owned(),
            status,
            body: excerpt,
        }
    }

    /// `body` parsed as JSON; a [`HttpError::Decode`] naming the request,
    /// line and column otherwise.
    pub fn parse_json(body: &[u8], request: &str) -> Result<serde_json::Value, HttpError> {
        serde_json::from_slice(body).map_err(|e| HttpError::Decode {
            request: request.to_owned(),
            format: "JSON",
            message: e.to_string(),
        })
    }

    /// `body` as UTF-8 text; a [`HttpError::Decode`] naming the request and
    /// the byte offset otherwise.
    pub fn parse_text(body: Vec<u8>, request: &str) -> Result<String, HttpError> {
        String::from_utf8(body).map_err(|e| HttpError::Decode {
            request: request.to_owned(),
            format: "UTF-8 text",
            message: e.utf8_error().to_string(),
        })
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().min(u64::MAX as u128) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(60) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn urls_are_scrubbed_of_passwords() {
        let url: Url = "https://app:hunter2@example.com/x?a=1".parse().unwrap();
        assert_eq!(scrub(&url), "https://app:***@example.com/x?a=1");
        assert_eq!(
            describe(&Method::GET, &url),
            "GET https://app:***@example.com/x?a=1"
        );
    }

    #[test]
    fn statuses_worth_retrying() {
        assert!(is_retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(is_retryable(StatusCode::BAD_GATEWAY));
        assert!(!is_retryable(StatusCode::NOT_IMPLEMENTED));
        assert!(!is_retryable(StatusCode::NOT_FOUND));
    }

    #[test]
    fn bad_options_name_the_option() {
        let e = HttpClient::builder()
            .header("bad header", "x")
            .build()
            .unwrap_err();
        assert_eq!(e.option, "headers");
        let e = HttpClient::builder()
            .ca_file("/nonexistent/ca.pem")
            .build()
            .unwrap_err();
        assert_eq!(e.option, "tls.ca_file");
        assert!(e.message.contains("/nonexistent/ca.pem"), "{e}");
        let dir = std::env::temp_dir().join(format!("databay-http-ca-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate").unwrap();
        let e = HttpClient::builder().ca_file(&dir).build().unwrap_err();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(e.option, "tls.ca_file", "{e}");
    }
}
