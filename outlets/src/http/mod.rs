//! [`HttpOutlet`]: sends each batch to a URL (POST or PUT) as a JSON array
//! or NDJSON, with retries on 5xx/429 honouring `Retry-After` and an
//! idempotency key per batch.

use databay_component::http::reqwest::header::{CONTENT_TYPE, HeaderName};
use databay_component::http::{HttpClient, HttpError, Method, OnRetryAfter, Url, describe};
use databay_core::{BoxError, Outlet, Record, Update, async_trait};

/// A documented config table for this outlet, every option with its
/// default (what `databay plugins http` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub(crate) use options::register;
pub use options::{HttpBatchFormat, HttpOutletOptions};
#[cfg(test)]
mod tests;

/// Sends each batch it is pushed as one request: the payloads as a JSON
/// array (`Content-Type: application/json`) or as NDJSON
/// (`application/x-ndjson`), with the shared HTTP options (headers, auth,
/// TLS, timeout, retries).
///
/// `push` returns `Ok` only once the server accepted the batch (a 2xx, or
/// a status in `status`). Connection errors, timeouts, 429 and 5xx are
/// retried with backoff, waiting as long as a `Retry-After` asks; every
/// attempt of a batch carries the same idempotency key, `UPDATE-N`: the
/// transfer (`Update`, displayed as `tag.index`) and the batch's number
/// within it (0, 1, ... when a grouper splits the transfer), so the
/// receiver can drop a batch it already took. An empty batch sends nothing.
#[derive(Debug)]
pub struct HttpOutlet {
    client: HttpClient,
    method: Method,
    url: Url,
    ndjson: bool,
    status: Vec<u16>,
    idempotency_header: Option<HeaderName>,
    /// The last transfer pushed and how many batches of it came so far.
    batch: Option<(Update, u64)>,
}

impl HttpOutlet {
    /// `POST url` of JSON arrays with the default options; see
    /// [`HttpOutletOptions`] for the rest.
    pub fn new(url: &str) -> Result<Self, databay_component::OptionError> {
        HttpOutletOptions::new(url).build(&databay_component::BuildContext::new("", "."))
    }

    /// The idempotency key of the next batch of `update`, and counts it.
    fn next_key(&mut self, update: &Update) -> String {
        let n = match &mut self.batch {
            Some((last, n)) if last == update => {
                *n += 1;
                *n
            }
            _ => {
                self.batch = Some((update.clone(), 0));
                0
            }
        };
        format!("{update}-{n}")
    }

    fn body(&self, records: &[Record]) -> Result<Vec<u8>, serde_json::Error> {
        if self.ndjson {
            let mut body = Vec::new();
            for record in records {
                serde_json::to_writer(&mut body, &record.payload)?;
                body.push(b'\n');
            }
            Ok(body)
        } else {
            let payloads: Vec<&serde_json::Value> = records.iter().map(|r| &r.payload).collect();
            serde_json::to_vec(&payloads)
        }
    }
}

#[async_trait]
impl Outlet for HttpOutlet {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        let key = self.next_key(update);
        if records.is_empty() {
            return Ok(());
        }
        let request = describe(&self.method, &self.url);
        let body = self.body(records).map_err(|e| HttpError::Decode {
            request: request.clone(),
            format: "JSON (encoding the batch)",
            message: e.to_string(),
        })?;
        let sent = body.len() as u64;
        let content_type = if self.ndjson {
            "application/x-ndjson"
        } else {
            "application/json"
        };
        let mut builder = self
            .client
            .request(self.method.clone(), self.url.clone())
            .header(CONTENT_TYPE, content_type)
            .body(body);
        if let Some(header) = &self.idempotency_header {
            builder = builder.header(header.clone(), key);
        }
        let req = builder.build().map_err(|e| HttpError::Send {
            request: request.clone(),
            message: format!("cannot build the request: {e}"),
            attempts: 0,
            timeout: false,
        })?;
        let response = self.client.send(req, OnRetryAfter::Wait).await?;
        let status = response.status();
        let accepted = if self.status.is_empty() {
            status.is_success()
        } else {
            self.status.contains(&status.as_u16())
        };
        if !accepted {
            return Err(HttpClient::status_error(response, &request).await.into());
        }
        // The body the server took (however many attempts it needed).
        databay_core::bytes::add(sent);
        Ok(())
    }
}
