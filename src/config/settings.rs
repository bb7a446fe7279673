//! The settings a config declares outside components: `[daemon]`,
//! `[admin]`, and a link's own keys (name, schedule, error policy, timeouts).

use std::net::SocketAddr;
use std::time::Duration;

use databay_component::{HumanDuration, Secret};
use serde::Deserialize;
use serde::de::IgnoredAny;

fn default_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

fn yes() -> bool {
    true
}

/// `[daemon]`: how the planner runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSettings {
    /// How long shutdown waits for in-flight transfers (default 30s).
    #[serde(default = "default_grace")]
    pub shutdown_grace: HumanDuration,
    /// Keep other links running when one fails (default true). With false,
    /// the first failed transfer shuts the daemon down gracefully.
    #[serde(default = "yes")]
    pub ignore_exceptions: bool,
    /// Transfer once at start for links that want it (default true).
    #[serde(default = "yes")]
    pub immediate_transfer: bool,
    /// Exit at startup when a link's inlets or outlets cannot be started
    /// (default false: that link is reported `failed` and its start is
    /// retried with backoff while the other links run).
    #[serde(default)]
    pub fail_fast: bool,
    /// Where links keep their checkpoints (a redb file in this directory),
    /// relative to the config file's directory. Unset (the default): no
    /// checkpoints, every start begins afresh.
    #[serde(default)]
    pub state_dir: Option<std::path::PathBuf>,
    /// Or keep them in PostgreSQL (`postgresql://user:password@host/db`,
    /// usually `${DATABAY_STATE_URL}`), in the table `databay_checkpoints`.
    /// At most one of `state_dir` and `state_url`.
    #[serde(default)]
    pub state_url: Option<databay_component::Secret<String>>,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            shutdown_grace: default_grace(),
            ignore_exceptions: true,
            immediate_transfer: true,
            fail_fast: false,
            state_dir: None,
            state_url: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9477))
}

/// `[admin]`: the HTTP endpoint for health, metrics and link control.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Serve it (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Address to bind (default `127.0.0.1:9477`: loopback only).
    #[serde(default = "default_listen", deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// Export each link's counters and its components' on `/metrics`
    /// (default true). They are about 20 series a link: with 100 000 links
    /// a scrape is 170 MB of text. With false, `/metrics` has the
    /// daemon-wide families only (`databay_up`, `databay_links`, the
    /// daemon-wide histograms); `/links` still has every link's figures.
    #[serde(default = "yes")]
    pub link_metrics: bool,
    /// Also export each link's transfer duration and schedule lateness
    /// histograms on `/metrics` (default false; only with `link_metrics`).
    /// They are 34 series per link, most of the body with many links;
    /// per-link counters and the daemon-wide histograms are always there.
    #[serde(default)]
    pub link_histograms: bool,
    /// Most connections open at once (default 64; 0 counts as 1). One
    /// over the cap is answered 503 and closed at once, so admin clients
    /// can never take the file descriptors that transfers need.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a client has to send a request's whole header, counted
    /// from connecting or from the end of the previous response; so it is
    /// also how long an idle keep-alive connection stays open (default 10s).
    #[serde(default = "default_header_timeout")]
    pub header_timeout: HumanDuration,
    /// How long a response may wait for a client that stops reading it
    /// before the connection is closed (default 30s).
    #[serde(default = "default_write_timeout")]
    pub write_timeout: HumanDuration,
    /// A bearer token every request must carry (`Authorization: Bearer
    /// TOKEN`), reads and writes alike, except the status page's own files
    /// (`GET /` and `/ui/*.css|js`, which hold no data). Unset by default;
    /// set it, from `${ENV}`, when `listen` is beyond loopback. Never shown
    /// in logs or errors.
    #[serde(default, deserialize_with = "token")]
    pub token: Option<Secret<String>>,
}

fn default_max_connections() -> usize {
    64
}

fn default_header_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_write_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            enabled: true,
            listen: default_listen(),
            link_metrics: true,
            link_histograms: false,
            max_connections: default_max_connections(),
            header_timeout: default_header_timeout(),
            write_timeout: default_write_timeout(),
            token: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // component arrays are read from the raw table; listed so typos of them get suggestions
pub(super) struct LinkSettings {
    pub(super) name: String,
    #[serde(default)]
    pub(super) tags: Option<Vec<String>>,
    pub(super) every: Option<HumanDuration>,
    pub(super) align_to: Option<HumanDuration>,
    pub(super) jitter: Option<HumanDuration>,
    pub(super) cron: Option<String>,
    pub(super) timezone: Option<String>,
    pub(super) immediate_transfer: Option<bool>,
    pub(super) ignore_exceptions: Option<bool>,
    pub(super) backoff: Option<HumanDuration>,
    pub(super) max_backoff: Option<HumanDuration>,
    pub(super) inlet_concurrency: Option<usize>,
    pub(super) parallelism: Option<usize>,
    pub(super) inlet_timeout: Option<HumanDuration>,
    pub(super) outlet_timeout: Option<HumanDuration>,
    pub(super) checkpoint_every: Option<HumanDuration>,
    pub(super) inlet: Option<IgnoredAny>,
    pub(super) processor: Option<IgnoredAny>,
    pub(super) grouper: Option<IgnoredAny>,
    pub(super) outlet: Option<IgnoredAny>,
    pub(super) dead_letter: Option<IgnoredAny>,
}

/// An `IP:port` address, with a message that says which part is wrong.
/// An empty token (say, from an empty variable) is refused rather than
/// read as "no token", which would leave the endpoint open by mistake.
fn token<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret<String>>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().is_empty() {
        return Err(serde::de::Error::custom(
            "the admin token is empty: give it a value, or remove `token` to serve without one",
        ));
    }
    Ok(Some(Secret::new(text)))
}

fn socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        let port = text.rsplit_once(':').map(|(_, p)| p);
        let message = match port.map(str::parse::<u64>) {
            Some(Ok(p)) if p > u64::from(u16::MAX) => {
                format!("port {p} is out of range (0 to 65535) in `{text}`")
            }
            _ => format!(
                "invalid address `{text}`: expected IP:port, such as \"127.0.0.1:9477\" or \"[::1]:9477\""
            ),
        };
        serde::de::Error::custom(message)
    })
}
