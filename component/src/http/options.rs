//! The option tables every HTTP component shares: `tls`, `auth`, `retry`,
//! and byte sizes (`max_body = "10MiB"`), with their TOML spelling.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::{OptionError, Secret};

/// `tls = { ca_file = "..." }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// A PEM file of certificates trusted in addition to the system's
    /// roots (Databay's `cacert`); relative to the config file's directory.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// `auth.basic = { user, password }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthOptions {
    /// The user name.
    pub user: String,
    /// The password (write `"${ENV_VAR}"`); never shown.
    #[serde(default)]
    pub password: Option<Secret<String>>,
}

/// `auth = { bearer = "..." }` or `auth.basic = { user, password }`; at
/// most one of the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthOptions {
    /// A bearer token (`Authorization: Bearer ...`); never shown.
    #[serde(default)]
    pub bearer: Option<Secret<String>>,
    /// HTTP basic authentication.
    #[serde(default)]
    pub basic: Option<BasicAuthOptions>,
}

/// How a request authenticates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// No `Authorization` header (the default).
    #[default]
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer(Secret<String>),
    /// `Authorization: Basic ...`.
    Basic {
        /// The user name.
        user: String,
        /// The password, if any.
        password: Option<Secret<String>>,
    },
}

impl AuthOptions {
    /// The authentication these options ask for; both `bearer` and `basic`
    /// is an error about `auth`.
    pub fn to_auth(&self) -> Result<Auth, OptionError> {
        match (&self.bearer, &self.basic) {
            (Some(_), Some(_)) => Err(OptionError::new(
                "auth",
                "set either `bearer` or `basic`, not both",
            )),
            (Some(token), None) => Ok(Auth::Bearer(token.clone())),
            (None, Some(b)) => Ok(Auth::Basic {
                user: b.user.clone(),
                password: b.password.clone(),
            }),
            (None, None) => Ok(Auth::None),
        }
    }
}

/// `retry = { attempts = 3, initial_delay = "200ms", max_delay = "30s" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryOptions {
    /// Attempts in all, the first included (default 3; 1 means no retry).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The delay before the first retry; it doubles with each retry, with
    /// random jitter (default `"200ms"`).
    #[serde(
        default = "default_initial_delay",
        deserialize_with = "crate::duration::deserialize"
    )]
    pub initial_delay: Duration,
    /// The longest delay between two attempts (default `"30s"`). A server's
    /// `Retry-After` longer than this ends the retries.
    #[serde(
        default = "default_max_delay",
        deserialize_with = "crate::duration::deserialize"
    )]
    pub max_delay: Duration,
}

fn default_attempts() -> u32 {
    3
}

fn default_initial_delay() -> Duration {
    Duration::from_millis(200)
}

fn default_max_delay() -> Duration {
    Duration::from_secs(30)
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            attempts: default_attempts(),
            initial_delay: default_initial_delay(),
            max_delay: default_max_delay(),
        }
    }
}

impl RetryOptions {
    /// Checks the values: at least one attempt, `initial_delay` not above
    /// `max_delay`.
    pub fn validate(&self) -> Result<(), OptionError> {
        if self.attempts == 0 {
            return Err(OptionError::new("retry.attempts", "must be at least 1"));
        }
        if self.initial_delay > self.max_delay {
            return Err(OptionError::new(
                "retry.initial_delay",
                "must not be longer than `retry.max_delay`",
            ));
        }
        Ok(())
    }

    /// The delay before retry number `retry` (1 for the first retry):
    /// `initial_delay * 2^(retry-1)`, capped at `max_delay`, then a random
    /// point in its upper half so that many clients do not retry in step.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(20);
        let full = self
            .initial_delay
            .saturating_mul(1 << exp)
            .min(self.max_delay);
        full / 2 + full.mul_f64(fastrand::f64() / 2.0)
    }
}

/// A size in bytes: an integer (`1048576`) or a string with a unit
/// (`"10MiB"`, `"512 KB"`; B, KB, MB, GB are powers of 1000, KiB, MiB, GiB
/// of 1024).
///
/// ```
/// use databay_component::http::ByteSize;
/// #[derive(serde::Deserialize)]
/// struct O { a: ByteSize, b: ByteSize }
/// let o: O = toml::from_str("a = \"10MiB\"\nb = 1000").unwrap();
/// assert_eq!((o.a.0, o.b.0), (10 * 1024 * 1024, 1000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"10MiB"`, `"512 KB"`, `"1000"`.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let bad = || {
            format!(
                "invalid size {text:?}: expected a byte count or a size such as \"10MiB\" or \"512KB\""
            )
        };
        let number: u64 = number.parse().map_err(|_| bad())?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1000,
            "kib" => 1 << 10,
            "mb" => 1000 * 1000,
            "mib" => 1 << 20,
            "gb" => 1000 * 1000 * 1000,
            "gib" => 1 << 30,
            _ => return Err(bad()),
        };
        number.checked_mul(factor).map(ByteSize).ok_or_else(bad)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count or a size such as \"10MiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("invalid size {v}: must not be negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(ByteSize::parse("10MiB"), Ok(ByteSize(10 << 20)));
        assert_eq!(ByteSize::parse(" 512 KB "), Ok(ByteSize(512_000)));
        assert_eq!(ByteSize::parse("7"), Ok(ByteSize(7)));
        assert_eq!(ByteSize::parse("1gib"), Ok(ByteSize(1 << 30)));
        let e = ByteSize::parse("10 parsecs").unwrap_err();
        assert!(e.contains("\"10 parsecs\"") && e.contains("10MiB"), "{e}");
        assert!(ByteSize::parse("MiB").is_err());
        assert!(ByteSize::parse("99999999999999999999GiB").is_err());
    }

    #[test]
    fn retry_options_have_defaults_and_are_checked() {
        #[derive(Deserialize)]
        struct O {
            retry: RetryOptions,
        }
        let o: O = toml::from_str("retry = { attempts = 5 }").unwrap();
        assert_eq!(o.retry.attempts, 5);
        assert_eq!(o.retry.max_delay, Duration::from_secs(30));
        let zero = RetryOptions {
            attempts: 0,
            ..RetryOptions::default()
        };
        assert_eq!(zero.validate().unwrap_err().option, "retry.attempts");
    }

    #[test]
    fn backoff_doubles_within_bounds() {
        let r = RetryOptions {
            attempts: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let first = r.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = r.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(r.backoff(30) <= Duration::from_secs(1));
        }
    }

    #[test]
    fn auth_is_one_of_bearer_or_basic() {
        let both: AuthOptions =
            toml::from_str("bearer = \"t\"\nbasic = { user = \"u\", password = \"p\" }").unwrap();
        assert_eq!(both.to_auth().unwrap_err().option, "auth");
        let basic: AuthOptions =
            toml::from_str("basic = { user = \"u\", password = \"p\" }").unwrap();
        assert!(!format!("{:?}", basic.to_auth().unwrap()).contains("\"p\""));
    }
}
