//! An example databay plugin crate: a finite `countdown` inlet and a
//! `tally` outlet, with the registration that makes them usable from TOML.
//! `src/main.rs` turns them into a databay binary with the full CLI.

use std::sync::{Arc, Mutex};

use databay_component::{BuildContext, Registry};
use databay_core::{BoxError, Inlet, Outlet, Pull, Record, Update, async_trait};
use serde::Deserialize;
use serde_json::json;

/// Options of the `countdown` inlet, as written in TOML.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountdownOptions {
    /// Where to start.
    pub from: u64,
    /// Label put in every payload.
    #[serde(default = "default_label")]
    pub label: String,
}

fn default_label() -> String {
    "countdown".to_owned()
}

/// Produces `{"label": .., "n": from}`, then `from - 1`, ... down to 0,
/// then reports its input exhausted, so the link finishes.
pub struct Countdown {
    next: Option<u64>,
    label: String,
}

impl Countdown {
    /// A countdown from `from`.
    pub fn new(from: u64, label: impl Into<String>) -> Self {
        Countdown {
            next: Some(from),
            label: label.into(),
        }
    }
}

#[async_trait]
impl Inlet for Countdown {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        match self.next {
            None => Ok(Pull::exhausted()),
            Some(0) => {
                self.next = None;
                Ok(Pull::Exhausted(vec![Record::new(
                    json!({"label": self.label, "n": 0}),
                )]))
            }
            Some(n) => {
                self.next = Some(n - 1);
                Ok(Pull::value(json!({"label": self.label, "n": n})))
            }
        }
    }
}

/// Options of the `tally` outlet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TallyOptions {
    /// Print the running total after every push.
    #[serde(default)]
    pub verbose: bool,
}

/// Sums the `n` field of every record it receives.
#[derive(Clone, Default)]
pub struct Tally {
    total: Arc<Mutex<u64>>,
    verbose: bool,
}

impl Tally {
    /// A tally; clones share the total.
    pub fn new(verbose: bool) -> Self {
        Tally {
            total: Arc::default(),
            verbose,
        }
    }

    /// The sum so far.
    pub fn total(&self) -> u64 {
        *self.total.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Outlet for Tally {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        let mut total = self.total.lock().unwrap_or_else(|p| p.into_inner());
        for (i, r) in records.iter().enumerate() {
            let n = r.payload.get("n").and_then(|n| n.as_u64()).ok_or_else(|| {
                format!(
                    "record {i} has no unsigned integer field `n`: {}",
                    r.payload
                )
            })?;
            *total += n;
        }
        if self.verbose {
            println!("{update} total={}", *total);
        }
        Ok(())
    }
}

/// The documented sample config of this crate's types.
pub const SAMPLE: &str = include_str!("../sample.toml");

/// Adds this crate's types to `registry`.
pub fn register(registry: &mut Registry) {
    registry
        .inlet(
            "countdown",
            "Counts down to zero, then ends its input.",
            "type = \"countdown\"\n# Counts down from here; the input ends at zero.\nfrom = 5\n# Label carried in every payload.\nlabel = \"countdown\"\n",
            |o: CountdownOptions, _: &BuildContext| Ok(Countdown::new(o.from, o.label)),
        )
        .outlet(
            "tally",
            "Sums the `n` field of every record.",
            "type = \"tally\"\n# Print the running total after every push.\nverbose = false\n",
            |o: TallyOptions, _: &BuildContext| Ok(Tally::new(o.verbose)),
        );
}
