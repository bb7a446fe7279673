//! Instrumented nodes and helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use databay_core::{
    BoxError, Inlet, Outlet, Planner, PlannerError, Pull, Record, Update, async_trait,
};
use serde_json::json;
use tokio::task::JoinHandle;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs `planner` on its own task, as a daemon would.
pub fn run(planner: &Planner) -> JoinHandle<Result<(), PlannerError>> {
    let p = planner.clone();
    tokio::spawn(async move { p.start().await })
}

/// How many times a self-limiting misbehaving node misbehaves before it
/// gives up: a test that could spin forever on a bug drives user code that
/// stops misbehaving after this many calls, so it fails instead of hanging.
pub const SPIN_LIMIT: usize = 10_000;

/// The panic message, if the task panicked.
pub fn join_panicked<T>(r: &Result<T, tokio::task::JoinError>) -> Option<String> {
    match r {
        Err(e) if e.is_panic() => Some(format!("{e}")),
        _ => None,
    }
}

/// What a [`Probe`] saw.
#[derive(Default)]
pub struct ProbeLog {
    pub pulls: AtomicUsize,
    pub starts: AtomicUsize,
    pub shutdowns: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// Events in order: "start", "pull", "shutdown".
    pub events: Mutex<Vec<String>>,
    /// Set: a failing probe counts instead.
    pub healed: std::sync::atomic::AtomicBool,
}

impl ProbeLog {
    pub fn pulls(&self) -> usize {
        self.pulls.load(Ordering::SeqCst)
    }
    pub fn starts(&self) -> usize {
        self.starts.load(Ordering::SeqCst)
    }
    pub fn shutdowns(&self) -> usize {
        self.shutdowns.load(Ordering::SeqCst)
    }
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
    /// A `Fail` probe counts from now on.
    pub fn heal(&self) {
        self.healed.store(true, Ordering::SeqCst);
    }
}

/// What a probe does on each pull.
#[derive(Clone)]
pub enum Behaviour {
    /// Produce one record: the pull number.
    Count,
    /// Fail with an error.
    Fail,
    /// Panic.
    Panic,
    /// Return `RetryAfter` on the first pull, then count.
    RetryFirst(Duration),
}

/// An inlet that records everything done to it.
pub struct Probe {
    pub log: Arc<ProbeLog>,
    pub delay: Duration,
    pub behaviour: Behaviour,
}

impl Probe {
    pub fn new() -> (Self, Arc<ProbeLog>) {
        Self::with(Behaviour::Count, Duration::ZERO)
    }

    pub fn with(behaviour: Behaviour, delay: Duration) -> (Self, Arc<ProbeLog>) {
        let log = Arc::new(ProbeLog::default());
        (
            Probe {
                log: log.clone(),
                delay,
                behaviour,
            },
            log,
        )
    }
}

#[async_trait]
impl Inlet for Probe {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        let n = self.log.pulls.fetch_add(1, Ordering::SeqCst) + 1;
        self.log.events.lock().unwrap().push("pull".into());
        let now = self.log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.log.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.log.in_flight.fetch_sub(1, Ordering::SeqCst);
        match &self.behaviour {
            Behaviour::Count => Ok(Pull::value(n)),
            Behaviour::Fail if self.log.healed.load(Ordering::SeqCst) => Ok(Pull::value(n)),
            Behaviour::Fail => Err(format!("probe failed on pull {n}").into()),
            Behaviour::Panic => panic!("probe panicked on pull {n}"),
            Behaviour::RetryFirst(d) if n == 1 => Ok(Pull::RetryAfter(*d)),
            Behaviour::RetryFirst(_) => Ok(Pull::value(n)),
        }
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.log.starts.fetch_add(1, Ordering::SeqCst);
        self.log.events.lock().unwrap().push("start".into());
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        self.log.shutdowns.fetch_add(1, Ordering::SeqCst);
        self.log.events.lock().unwrap().push("shutdown".into());
        Ok(())
    }
}

/// An outlet that fails or panics on every push.
pub struct BrokenOutlet {
    pub panic: bool,
}

#[async_trait]
impl Outlet for BrokenOutlet {
    async fn push(&mut self, _records: &[Record], _update: &Update) -> Result<(), BoxError> {
        if self.panic {
            panic!("outlet exploded");
        }
        Err("disk full".into())
    }
}

pub fn values(records: &[Record]) -> Vec<serde_json::Value> {
    records.iter().map(|r| r.payload.clone()).collect()
}

pub fn ints(n: usize) -> Vec<serde_json::Value> {
    (0..n).map(|i| json!(i)).collect()
}

/// Waits (on tokio's clock) until `cond` holds, up to `limit`.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}
