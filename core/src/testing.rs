//! A test kit for plugin authors: [`InletTester`] and [`OutletTester`] run
//! the checks every inlet and outlet must pass, and [`StaticInlet`] /
//! [`CollectOutlet`] stand in for the other end of a link in tests, and
//! [`TestingSource`] is a partitioned source that can abort at a chosen item.
//!
//! ```
//! use databay_core::testing::{InletTester, StaticInlet};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! InletTester::new(|| StaticInlet::values([1, 2])).run().await.unwrap();
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::error::BoxError;
use crate::inlet::{Inlet, InletHandle, Pull};
use crate::outlet::{Outlet, OutletHandle};
use crate::processor::{Context, Trigger};
use crate::record::{INLET_KEY, Metadata, Record};
use crate::sync::lock;
use crate::update::Update;

/// The checks that failed, one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TesterFailures(pub Vec<String>);

impl fmt::Display for TesterFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} check(s) failed:", self.0.len())?;
        for failure in &self.0 {
            writeln!(f, "  - {failure}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TesterFailures {}

const GLOBAL_KEY: &str = "InletTester.global";

/// Runs Databay's inlet checks on fresh instances from a factory:
/// lifecycle hooks run and `active` follows them; `pull` succeeds; every
/// record carries `__inlet__` and the global metadata; local metadata
/// overrides global; and the inlet produces the same shape of output with
/// and without global metadata (it must not depend on it).
pub struct InletTester<F> {
    make: F,
    pulls: usize,
}

impl<I, F> InletTester<F>
where
    I: Inlet,
    F: Fn() -> I,
{
    /// Tests instances made by `make`.
    pub fn new(make: F) -> Self {
        InletTester { make, pulls: 3 }
    }

    /// How many pulls each check makes (default 3).
    pub fn pulls(mut self, pulls: usize) -> Self {
        self.pulls = pulls.max(1);
        self
    }

    /// Runs every check; all failures are reported together.
    pub async fn run(&self) -> Result<(), TesterFailures> {
        let mut failures = Vec::new();
        let update = Update::new(["inlet_tester"], 0);

        let mut global = Metadata::new();
        global.insert(GLOBAL_KEY.into(), json!("global"));
        let with_meta = InletHandle::builder((self.make)())
            .name("tested")
            .metadata(global)
            .build();
        let plain = InletHandle::builder((self.make)()).name("tested").build();

        for handle in [&with_meta, &plain] {
            if let Err(e) = handle.start().await {
                failures.push(format!("on_start failed: {e}"));
            } else if !handle.active() {
                failures.push("not active after on_start".into());
            }
        }

        let mut shapes: [Vec<&'static str>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..self.pulls {
            for (which, handle) in [&with_meta, &plain].into_iter().enumerate() {
                match handle.pull(&update, None).await {
                    Err(e) => failures.push(format!("pull failed: {e}")),
                    Ok(pull) => {
                        shapes[which].push(shape(&pull));
                        for record in pull.records() {
                            check_record(record, which == 0, &mut failures);
                        }
                    }
                }
            }
        }
        if shapes[0] != shapes[1] {
            failures.push(format!(
                "output depends on global metadata: with it {:?}, without {:?}",
                shapes[0], shapes[1]
            ));
        }

        for handle in [&with_meta, &plain] {
            if let Err(e) = handle.shutdown().await {
                failures.push(format!("on_shutdown failed: {e}"));
            } else if handle.active() {
                failures.push("still active after on_shutdown".into());
            }
        }
        // Each failure once, in the order first seen.
        let mut seen = std::collections::HashSet::new();
        failures.retain(|f| seen.insert(f.clone()));
        if failures.is_empty() {
            Ok(())
        } else {
            Err(TesterFailures(failures))
        }
    }
}

fn shape(pull: &Pull) -> &'static str {
    match pull {
        Pull::Records(r) if r.is_empty() => "empty",
        Pull::Records(_) => "records",
        Pull::Nothing => "nothing",
        Pull::RetryAfter(_) => "retry",
        Pull::Exhausted(_) => "exhausted",
    }
}

fn check_record(record: &Record, has_global: bool, failures: &mut Vec<String>) {
    if record.meta(INLET_KEY) != Some(&json!("tested")) {
        failures.push(format!(
            "record lacks `{INLET_KEY}` naming its inlet: {record}"
        ));
    }
    if has_global && record.meta(GLOBAL_KEY).is_none() {
        failures.push(format!(
            "record lacks the inlet's global metadata: {record}"
        ));
    }
    // Local metadata must win over global: set one and read it back.
    let mut probe = record.clone();
    probe.set_meta(GLOBAL_KEY, "local");
    if probe.meta(GLOBAL_KEY) != Some(&json!("local")) {
        failures.push("local metadata does not override global metadata".into());
    }
}

/// Runs the checks every outlet must pass on fresh instances: lifecycle
/// hooks run and `active` follows them; an empty batch, and batches of
/// varied payloads (objects, arrays, strings, numbers, null) with metadata,
/// are accepted; pushing twice works.
pub struct OutletTester<F> {
    make: F,
    records: Vec<Record>,
}

impl<O, F> OutletTester<F>
where
    O: Outlet,
    F: Fn() -> O,
{
    /// Tests instances made by `make`, with a default set of records.
    pub fn new(make: F) -> Self {
        let records = vec![
            Record::new(json!({"id": 1, "name": "a", "nested": {"x": [1, 2]}})),
            Record::new(json!({"id": 2, "name": "b, with \"quotes\"\nand a newline"})),
            Record::new(json!(42)).with_meta("OutletTester.local", true),
            Record::new(json!("plain text")),
            Record::new(json!([1, "two", null])),
            Record::new(Value::Null),
        ];
        OutletTester { make, records }
    }

    /// Pushes these records instead of the defaults (an outlet that only
    /// accepts one shape of payload says so here).
    pub fn records(mut self, records: Vec<Record>) -> Self {
        self.records = records;
        self
    }

    /// Runs every check; all failures are reported together. Returns the
    /// handle so the caller can inspect what the outlet wrote.
    pub async fn run(&self) -> Result<OutletHandle, TesterFailures> {
        let mut failures = Vec::new();
        let handle = OutletHandle::new((self.make)());
        let update = Update::new(["outlet_tester"], 0);
        let cx = Context::new(&update, Trigger::Transfer);
        match handle.start().await {
            Err(e) => failures.push(format!("on_start failed: {e}")),
            Ok(()) if !handle.active() => failures.push("not active after on_start".into()),
            Ok(()) => {}
        }
        if let Err(e) = handle.deliver(&[], &cx, None).await {
            failures.push(format!("empty batch refused: {}", e.failure));
        }
        for round in 0..2 {
            match handle.deliver(&self.records, &cx, None).await {
                Ok(d) if d.written == self.records.len() => {}
                Ok(d) => failures.push(format!(
                    "push {round}: {} of {} records written ({})",
                    d.written,
                    self.records.len(),
                    d.rejected
                        .iter()
                        .map(|r| format!("record {} rejected: {}", r.index, r.error))
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
                Err(e) => failures.push(format!("push {round} failed: {}", e.failure)),
            }
        }
        match handle.shutdown().await {
            Err(e) => failures.push(format!("on_shutdown failed: {e}")),
            Ok(()) if handle.active() => failures.push("still active after on_shutdown".into()),
            Ok(()) => {}
        }
        if failures.is_empty() {
            Ok(handle)
        } else {
            Err(TesterFailures(failures))
        }
    }
}

/// An inlet that returns the same records on every pull, optionally
/// reporting exhaustion after a number of pulls.
#[derive(Clone, Debug)]
pub struct StaticInlet {
    records: Vec<Record>,
    pulls_left: Option<usize>,
}

impl StaticInlet {
    /// One record per value, on every pull.
    pub fn values<I, V>(values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        StaticInlet {
            records: values.into_iter().map(Record::new).collect(),
            pulls_left: None,
        }
    }

    /// These records, on every pull.
    pub fn records(records: Vec<Record>) -> Self {
        StaticInlet {
            records,
            pulls_left: None,
        }
    }

    /// Produce `n` times; the `n`-th pull reports the input exhausted.
    pub fn times(mut self, n: usize) -> Self {
        self.pulls_left = Some(n);
        self
    }
}

#[async_trait]
impl Inlet for StaticInlet {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        match &mut self.pulls_left {
            None => Ok(Pull::Records(self.records.clone())),
            Some(0) => Ok(Pull::exhausted()),
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    Ok(Pull::Exhausted(self.records.clone()))
                } else {
                    Ok(Pull::Records(self.records.clone()))
                }
            }
        }
    }
}

#[derive(Default)]
struct Collected {
    batches: Vec<(String, Vec<Record>)>,
    starts: usize,
    shutdowns: usize,
}

/// An outlet that keeps every batch it is given, for assertions. Clones
/// share what was collected; give the link a clone and keep one.
#[derive(Clone, Default)]
pub struct CollectOutlet {
    collected: Arc<Mutex<Collected>>,
}

impl CollectOutlet {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record received, in order.
    pub fn records(&self) -> Vec<Record> {
        lock(&self.collected)
            .batches
            .iter()
            .flat_map(|(_, b)| b.iter().cloned())
            .collect()
    }

    /// Every payload received, in order.
    pub fn payloads(&self) -> Vec<Value> {
        self.records()
            .into_iter()
            .map(Record::into_payload)
            .collect()
    }

    /// The batches received, each with its update (`tag.index`).
    pub fn batches(&self) -> Vec<(String, Vec<Record>)> {
        lock(&self.collected).batches.clone()
    }

    /// Number of records received.
    pub fn len(&self) -> usize {
        lock(&self.collected)
            .batches
            .iter()
            .map(|(_, b)| b.len())
            .sum()
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times `on_start` and `on_shutdown` ran.
    pub fn hook_counts(&self) -> (usize, usize) {
        let c = lock(&self.collected);
        (c.starts, c.shutdowns)
    }
}

#[async_trait]
impl Outlet for CollectOutlet {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        lock(&self.collected)
            .batches
            .push((update.to_string(), records.to_vec()));
        Ok(())
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        lock(&self.collected).starts += 1;
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        lock(&self.collected).shutdowns += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct ReadsNothing;
    #[async_trait]
    impl Inlet for ReadsNothing {
        async fn pull(&mut self, _: &Update) -> Result<Pull, BoxError> {
            Err("no data source".into())
        }
    }

    #[tokio::test]
    async fn inlet_tester_reports_a_failing_pull() {
        let err = InletTester::new(|| ReadsNothing).run().await.unwrap_err();
        assert!(err.0.iter().any(|f| f.contains("no data source")), "{err}");
    }

    /// The same failure on every pull of both handles (interleaved with
    /// the other handle's) is listed once: `dedup` alone would only merge
    /// adjacent repeats.
    #[tokio::test]
    async fn inlet_tester_lists_each_failure_once() {
        let err = InletTester::new(|| ReadsNothing)
            .pulls(4)
            .run()
            .await
            .unwrap_err();
        let pulls = err
            .0
            .iter()
            .filter(|f| f.contains("no data source"))
            .count();
        assert_eq!(pulls, 1, "{err}");
        let unique: std::collections::HashSet<&String> = err.0.iter().collect();
        assert_eq!(unique.len(), err.0.len(), "{err}");
    }

    struct Picky;
    #[async_trait]
    impl Outlet for Picky {
        async fn push(&mut self, records: &[Record], _: &Update) -> Result<(), BoxError> {
            if records.iter().any(|r| !r.payload.is_object()) {
                return Err("only objects".into());
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn outlet_tester_reports_refused_payloads() {
        let err = OutletTester::new(|| Picky).run().await.unwrap_err();
        assert!(err.0.iter().any(|f| f.contains("only objects")), "{err}");
        OutletTester::new(|| Picky)
            .records(vec![Record::new(json!({"a": 1}))])
            .run()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn kit_passes_its_own_helpers() {
        InletTester::new(|| StaticInlet::values([1, 2]).times(10))
            .run()
            .await
            .unwrap();
        OutletTester::new(CollectOutlet::new).run().await.unwrap();
    }
}

/// The error a [`TestingSource`] fails with at its abort point (Bytewax's
/// `AbortExecution`): a crash simulated at a chosen item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("execution aborted by the testing source before item {at}")]
pub struct AbortExecution {
    /// The index of the item that was not handed out.
    pub at: usize,
}

/// A one-partition source over fixed values, with resume state (the index
/// of the next value) and an optional abort point: the test kit's
/// Bytewax `TestingSource`. Run it with
/// [`PartitionedInlet`](crate::source::PartitionedInlet).
///
/// With [`abort_before(i)`](TestingSource::abort_before) the batch that
/// would hand out value `i` fails with [`AbortExecution`] instead, once:
/// the same source rebuilt from a snapshot (a rollback, or a restore)
/// goes past it. Recovery tests use it to crash a link at a chosen item.
///
/// ```
/// use databay_core::source::PartitionedInlet;
/// use databay_core::testing::TestingSource;
/// use databay_core::{Inlet, Update};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut inlet = PartitionedInlet::new(TestingSource::new(0..5).batch_size(2).abort_before(3));
/// let update = Update::new(["t"], 0);
/// assert_eq!(inlet.pull(&update).await.unwrap().records().len(), 2); // 0, 1
/// inlet.commit(&update).await.unwrap();
/// assert!(inlet.pull(&update).await.is_err()); // 2 and 3: aborted
/// inlet.rollback(&update).await.unwrap();
/// let again = inlet.pull(&update).await.unwrap(); // rebuilt at 2
/// assert_eq!(again.records()[0].payload, 2);
/// # }
/// ```
#[derive(Clone)]
pub struct TestingSource {
    values: Arc<Vec<Value>>,
    batch_size: usize,
    abort_before: Option<usize>,
    aborted: Arc<std::sync::atomic::AtomicBool>,
}

impl TestingSource {
    /// A source of `values`, one per batch.
    pub fn new<I, V>(values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        TestingSource {
            values: Arc::new(values.into_iter().map(Into::into).collect()),
            batch_size: 1,
            abort_before: None,
            aborted: Arc::default(),
        }
    }

    /// Hands out up to `size` values per batch (0 is taken as 1).
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// Fails the batch that would hand out value `index`, the first time.
    pub fn abort_before(mut self, index: usize) -> Self {
        self.abort_before = Some(index);
        self
    }

    /// Whether the abort point was reached.
    pub fn aborted(&self) -> bool {
        self.aborted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The partition of a [`TestingSource`].
pub struct TestingPartition {
    source: TestingSource,
    next: usize,
}

#[async_trait]
impl crate::source::StatefulPartition for TestingPartition {
    async fn next_batch(&mut self) -> Result<Pull, BoxError> {
        let values = &self.source.values;
        let end = (self.next + self.source.batch_size).min(values.len());
        if let Some(at) = self.source.abort_before
            && (self.next..end).contains(&at)
            && !self
                .source
                .aborted
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(Box::new(AbortExecution { at }));
        }
        let batch = values[self.next..end]
            .iter()
            .cloned()
            .map(Record::new)
            .collect();
        self.next = end;
        Ok(if end >= values.len() {
            Pull::Exhausted(batch)
        } else {
            Pull::Records(batch)
        })
    }

    fn snapshot(&self) -> Value {
        json!(self.next)
    }
}

#[async_trait]
impl crate::source::FixedPartitionedSource for TestingSource {
    type Partition = TestingPartition;

    async fn list_parts(&self) -> Result<Vec<String>, BoxError> {
        Ok(vec!["testing".to_owned()])
    }

    async fn build_part(
        &self,
        _part: &str,
        resume: Option<Value>,
    ) -> Result<TestingPartition, BoxError> {
        let next = match resume {
            None => 0,
            Some(state) => state
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n <= self.values.len())
                .ok_or_else(|| format!("resume state {state} is not an index of the values"))?,
        };
        Ok(TestingPartition {
            source: self.clone(),
            next,
        })
    }
}
