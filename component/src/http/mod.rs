//! What HTTP components share (cargo feature `http`): the [`HttpClient`]
//! (reqwest on rustls with ring) with TLS roots, auth, headers, a request
//! timeout and retries applied, its [`HttpError`]s, and the option tables
//! every HTTP component spells the same way:
//!
//! ```toml
//! request_timeout = "10s"
//! headers = { "X-Source" = "databay" }
//! tls = { ca_file = "ca.pem" }
//! auth.bearer = "${API_TOKEN}"            # or auth.basic = { user = "app", password = "${PW}" }
//! retry = { attempts = 3, initial_delay = "200ms", max_delay = "30s" }
//! ```
//!
//! A plugin's options struct declares these fields with the types here and
//! calls [`HttpClientBuilder`] with them, so its TLS, auth and retry
//! behave like the built-in `http` inlet's and outlet's.
//!
//! ```
//! use databay_component::http::{AuthOptions, HttpClient, RetryOptions};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Options {
//!     url: String,
//!     #[serde(default)]
//!     auth: AuthOptions,
//!     #[serde(default)]
//!     retry: RetryOptions,
//! }
//!
//! let o: Options = toml::from_str("url = \"http://127.0.0.1:1/\"\nauth.bearer = \"t0ken\"\nretry.attempts = 5").unwrap();
//! let client = HttpClient::builder().auth(o.auth.to_auth()?).retry(o.retry).build()?;
//! assert_eq!(client.retry_options().attempts, 5);
//! assert!(!format!("{client:?}").contains("t0ken"));
//! # Ok::<(), databay_component::OptionError>(())
//! ```

mod client;
mod options;

pub use client::{
    HttpClient, HttpClientBuilder, HttpError, OnRetryAfter, describe, is_retryable, retry_after,
    scrub,
};
pub use options::{Auth, AuthOptions, BasicAuthOptions, ByteSize, RetryOptions, TlsOptions};
/// The HTTP client crate, for its request and header types.
pub use reqwest;
pub use reqwest::{Method, StatusCode, Url};
