//! The `http` outlet's TOML face.

use std::collections::BTreeMap;
use std::time::Duration;

use databay_component::http::{AuthOptions, HttpClient, Method, RetryOptions, TlsOptions, Url};
use databay_component::{BuildContext, OptionError, Registry, Secret};
use serde::Deserialize;

use super::{HttpOutlet, SAMPLE};

/// `format` as TOML spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpBatchFormat {
    /// `"json"`: the batch's payloads as one JSON array (the default).
    #[default]
    Json,
    /// `"ndjson"`: one payload per line.
    Ndjson,
}

/// Options of `type = "http"` (outlet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpOutletOptions {
    /// The URL each batch is sent to (`http://` or `https://`).
    pub url: String,
    /// `"POST"` (default) or `"PUT"`.
    #[serde(default = "post")]
    pub method: String,
    /// Query parameters added to the URL.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Headers sent with every request; values are never shown.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret<String>>,
    /// `"json"` (an array, default) or `"ndjson"`.
    #[serde(default)]
    pub format: HttpBatchFormat,
    /// Limit of each request (default `"10s"`).
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
    /// Retries on connection errors, timeouts, 429 and 5xx.
    #[serde(default)]
    pub retry: RetryOptions,
    /// The header carrying the batch's idempotency key (default
    /// `"Idempotency-Key"`; `""` sends none).
    #[serde(default = "idempotency_key")]
    pub idempotency_header: String,
}

fn post() -> String {
    "POST".to_owned()
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn idempotency_key() -> String {
    "Idempotency-Key".to_owned()
}

impl HttpOutletOptions {
    /// Options for `POST url` of JSON arrays, every other option at its
    /// default.
    pub fn new(url: impl Into<String>) -> Self {
        HttpOutletOptions {
            url: url.into(),
            method: post(),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            format: HttpBatchFormat::Json,
            request_timeout: ten_seconds(),
            tls: TlsOptions::default(),
            auth: AuthOptions::default(),
            status: Vec::new(),
            retry: RetryOptions::default(),
            idempotency_header: idempotency_key(),
        }
    }

    /// The outlet these options describe. Errors name the option at fault.
    pub fn build(self, cx: &BuildContext) -> Result<HttpOutlet, OptionError> {
        let mut url = Url::parse(&self.url)
            .map_err(|e| OptionError::new("url", format!("`{}` is not a URL: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OptionError::new(
                "url",
                format!("the scheme must be http or https, not `{}`", url.scheme()),
            ));
        }
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        let method = match self.method.to_ascii_uppercase().as_str() {
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            other => {
                return Err(OptionError::new(
                    "method",
                    format!("must be \"POST\" or \"PUT\", not \"{other}\""),
                ));
            }
        };
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
        for code in &self.status {
            if !(100..=599).contains(code) {
                return Err(OptionError::new(
                    "status",
                    format!("{code} is not an HTTP status code"),
                ));
            }
        }
        let idempotency_header = if self.idempotency_header.is_empty() {
            None
        } else {
            Some(
                databay_component::http::reqwest::header::HeaderName::from_bytes(
                    self.idempotency_header.as_bytes(),
                )
                .map_err(|_| {
                    OptionError::new(
                        "idempotency_header",
                        format!("`{}` is not a valid header name", self.idempotency_header),
                    )
                })?,
            )
        };
        Ok(HttpOutlet {
            client: client.build()?,
            method,
            url,
            ndjson: self.format == HttpBatchFormat::Ndjson,
            status: self.status,
            idempotency_header,
            batch: None,
        })
    }
}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "http",
        "Sends each batch to a URL (POST or PUT) as a JSON array or NDJSON, with retries and an idempotency key.",
        SAMPLE,
        |o: HttpOutletOptions, cx: &BuildContext| Ok(o.build(cx)?),
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
        assert_registered_documented(super::register, Kind::Outlet, "http", readme);
    }

    #[test]
    fn bad_options_name_the_option() {
        let mut registry = Registry::new();
        register(&mut registry);
        let err = |options: &str| {
            build(registry.outlet_type("http"), options)
                .map(drop)
                .unwrap_err()
        };
        assert!(err("url = \"nope\"").starts_with("option `url`"));
        assert!(err("url = \"http://h/\"\nmethod = \"GET\"").starts_with("option `method`"));
        assert!(err("url = \"http://h/\"\nformat = \"csv\"").contains("csv"));
        assert!(
            err("url = \"http://h/\"\nidempotency_header = \"a b\"")
                .starts_with("option `idempotency_header`")
        );
        assert!(err("url = \"http://h/\"\nstatus = [700]").starts_with("option `status`"));
    }
}
