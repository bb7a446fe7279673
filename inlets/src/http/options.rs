//! The `http` inlet's TOML face.

use std::collections::BTreeMap;
use std::time::Duration;

use databay_component::http::{
    AuthOptions, ByteSize, HttpClient, Method, RetryOptions, TlsOptions, Url,
};
use databay_component::{BuildContext, OptionError, Registry, Secret};
use serde::Deserialize;
use serde_json::Value;

use super::{HttpInlet, Next, SAMPLE};

/// `format` as TOML spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpFormat {
    /// `"json"`: the body is parsed as JSON (the default).
    #[default]
    Json,
    /// `"text"`: the body is one JSON string (UTF-8).
    Text,
}

/// `cursor = { param = "since", pointer = "/id" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorOptions {
    /// The query parameter that carries the cursor on the next pull.
    pub param: String,
    /// JSON pointer to the cursor's value in the last item received.
    pub pointer: String,
}

/// Options of `type = "http"` (inlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpInletOptions {
    /// The URL to request (`http://` or `https://`).
    pub url: String,
    /// The HTTP method (default `"GET"`).
    #[serde(default = "get")]
    pub method: String,
    /// Query parameters added to the URL.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Headers sent with every request; values are never shown.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret<String>>,
    /// A request body: a string is sent as it is, any other value as JSON
    /// (`Content-Type: application/json`).
    #[serde(default)]
    pub body: Option<Value>,
    /// `"json"` (default) or `"text"`.
    #[serde(default)]
    pub format: HttpFormat,
    /// Limit of each request, connect to last body byte (default `"10s"`).
    #[serde(
        default = "ten_seconds",
        deserialize_with = "databay_component::duration::deserialize"
    )]
    pub request_timeout: Duration,
    /// `tls.ca_file`: extra trusted certificates (PEM).
    #[serde(default)]
    pub tls: TlsOptions,
    /// `auth.bearer` or `auth.basic = { user, password }`.
    #[serde(default)]
    pub auth: AuthOptions,
    /// Accepted status codes (default: any 2xx).
    #[serde(default)]
    pub status: Vec<u16>,
    /// The largest response body accepted: bytes, or `"10MiB"` (default).
    #[serde(default = "ten_mib")]
    pub max_body: ByteSize,
    /// Retries on connection errors, timeouts, 429 and 5xx.
    #[serde(default)]
    pub retry: RetryOptions,
    /// JSON pointer to an array in the body whose elements are emitted as
    /// separate records (default: the whole body is one record).
    #[serde(default)]
    pub items: Option<String>,
    /// Pagination: a JSON pointer to the next page's URL in the body, or
    /// `"Link"` for the `Link: <...>; rel="next"` header.
    #[serde(default)]
    pub next: Option<String>,
    /// At most this many pages per pull (default 10).
    #[serde(default = "ten")]
    pub max_pages: u32,
    /// An incremental cursor taken from the last item, sent as a query
    /// parameter on the next pull.
    #[serde(default)]
    pub cursor: Option<CursorOptions>,
}

fn get() -> String {
    "GET".to_owned()
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn ten_mib() -> ByteSize {
    ByteSize(10 << 20)
}

fn ten() -> u32 {
    10
}

impl HttpInletOptions {
    /// Options for `GET url` with every other option at its default.
    pub fn new(url: impl Into<String>) -> Self {
        HttpInletOptions {
            url: url.into(),
            method: get(),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            body: None,
            format: HttpFormat::Json,
            request_timeout: ten_seconds(),
            tls: TlsOptions::default(),
            auth: AuthOptions::default(),
            status: Vec::new(),
            max_body: ten_mib(),
            retry: RetryOptions::default(),
            items: None,
            next: None,
            max_pages: ten(),
            cursor: None,
        }
    }

    /// The inlet these options describe; relative paths (`tls.ca_file`)
    /// resolve against `cx`. Errors name the option at fault.
    pub fn build(self, cx: &BuildContext) -> Result<HttpInlet, OptionError> {
        let url = parse_url("url", &self.url)?;
        let method =
            Method::from_bytes(self.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                OptionError::new("method", format!("`{}` is not an HTTP method", self.method))
            })?;
        let mut client = HttpClient::builder()
            .timeout(self.request_timeout)
            .auth(self.auth.to_auth()?)
            .retry(self.retry);
        if let Some(path) = &self.tls.ca_file {
            client = client.ca_file(cx.path("tls.ca_file", path)?);
        }
        for (name, value) in &self.headers {
            client = client.header(name, value.expose());
        }
        let client = client.build()?;
        for code in &self.status {
            if !(100..=599).contains(code) {
                return Err(OptionError::new(
                    "status",
                    format!("{code} is not an HTTP status code"),
                ));
            }
        }
        if self.max_pages == 0 {
            return Err(OptionError::new("max_pages", "must be at least 1"));
        }
        let json = self.format == HttpFormat::Json;
        let pointer = |option: &str, p: &str| -> Result<String, OptionError> {
            if !json {
                return Err(OptionError::new(option, "needs `format = \"json\"`"));
            }
            if !(p.is_empty() || p.starts_with('/')) {
                return Err(OptionError::new(
                    option,
                    format!("`{p}` is not a JSON pointer (it must start with `/`)"),
                ));
            }
            Ok(p.to_owned())
        };
        let items = self
            .items
            .as_deref()
            .map(|p| pointer("items", p))
            .transpose()?;
        let next = match self.next.as_deref() {
            None => None,
            Some(n) if n.eq_ignore_ascii_case("link") => Some(Next::LinkHeader),
            Some(p) => Some(Next::Pointer(pointer("next", p)?)),
        };
        let cursor = match self.cursor {
            None => None,
            Some(c) => {
                if c.param.is_empty() {
                    return Err(OptionError::new("cursor.param", "must not be empty"));
                }
                let p = pointer("cursor.pointer", &c.pointer)?;
                Some((c.param, p))
            }
        };
        let body = match self.body {
            None => None,
            Some(Value::String(text)) => Some((text.into_bytes(), None)),
            Some(value) => Some((value.to_string().into_bytes(), Some("application/json"))),
        };
        Ok(HttpInlet {
            client,
            method,
            url,
            query: self.query.into_iter().collect(),
            body,
            json,
            status: self.status,
            max_body: self.max_body.0,
            items,
            next,
            max_pages: self.max_pages,
            cursor,
            cursor_value: None,
            pending: None,
            committed: (None, None),
            not_before: None,
        })
    }
}

pub(crate) fn parse_url(option: &str, text: &str) -> Result<Url, OptionError> {
    let url = Url::parse(text)
        .map_err(|e| OptionError::new(option, format!("`{text}` is not a URL: {e}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(OptionError::new(
            option,
            format!("the scheme must be http or https, not `{other}`"),
        )),
    }
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "http",
        "Requests a URL each transfer: JSON or text, items, pages, an incremental cursor.",
        SAMPLE,
        |o: HttpInletOptions, cx: &BuildContext| Ok(o.build(cx)?),
    );
    registry.resume_state(
        "http",
        "with a cursor, `{\"cursor\": value, \"next_page\": url}`: the cursor sent next and the \
         page to go on from, as of the last commit",
    );
}

#[cfg(test)]
mod tests {
    use databay_component::Kind;
    use databay_component::testing::{assert_registered_documented, build};

    use super::*;

    #[test]
    fn sample_and_readme_match_the_options() {
        let readme = include_str!("README.md");
        assert_registered_documented(super::register, Kind::Inlet, "http", readme);
    }

    #[test]
    fn bad_options_name_the_option() {
        let mut registry = Registry::new();
        register(&mut registry);
        let err = |options: &str| {
            build(registry.inlet_type("http"), options)
                .map(drop)
                .unwrap_err()
        };
        assert!(
            err("url = \"not a url\"").starts_with("option `url`"),
            "{}",
            err("url = \"x\"")
        );
        assert!(err("url = \"ftp://h/\"").contains("http or https"));
        assert!(err("url = \"http://h/\"\nmethod = \"G T\"").starts_with("option `method`"));
        assert!(err("url = \"http://h/\"\nitems = \"data\"").starts_with("option `items`"));
        assert!(
            err("url = \"http://h/\"\nformat = \"text\"\nitems = \"/data\"")
                .contains("format = \\\"json\\\"")
                || err("url = \"http://h/\"\nformat = \"text\"\nitems = \"/data\"")
                    .contains("format = \"json\"")
        );
        assert!(err("url = \"http://h/\"\nmax_pages = 0").starts_with("option `max_pages`"));
        assert!(err("url = \"http://h/\"\nstatus = [99]").starts_with("option `status`"));
        assert!(err("url = \"http://h/\"\nmax_body = \"lots\"").contains("\"lots\""));
        assert!(
            err("url = \"http://h/\"\nauth = { bearer = \"t\", basic = { user = \"u\" } }")
                .starts_with("option `auth`")
        );
        assert!(
            err("url = \"http://h/\"\ntls = { ca_file = \"missing-ca.pem\" }")
                .starts_with("option `tls.ca_file`")
        );
        assert!(
            err("url = \"http://h/\"\nretry = { attempts = 0 }")
                .starts_with("option `retry.attempts`")
        );
    }
}
