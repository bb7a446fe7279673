//! Processors and groupers: the middleware between pull and push.
//!
//! A processor turns a list of records into a list of records (filter,
//! transform, buffer, aggregate). It may hold records and state between
//! transfers, ask for a timer with [`Processor::next_wakeup`], and must give
//! up what it holds when the link flushes ([`Trigger::Flush`]).
//! A grouper splits the records into batches, each pushed separately.

use std::future::Future;
use std::time::Instant;

use async_trait::async_trait;

use serde_json::Value;

use crate::error::BoxError;
use crate::record::Record;
use crate::update::Update;

/// Why a processor is being called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trigger {
    /// A transfer: the records are fresh from the inlets.
    Transfer,
    /// A wake-up a processor asked for with [`Processor::next_wakeup`]; no
    /// new records arrive (the list holds what earlier processors released).
    Timer,
    /// End of stream: every inlet is exhausted, or the link is stopping or
    /// being flushed. Release everything held.
    Flush,
}

/// What a processor knows about the call.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Context<'a> {
    /// The transfer this call is part of.
    pub update: &'a Update,
    /// Why the processor is called.
    pub trigger: Trigger,
    /// The time the call was made (one clock reading for the whole chain).
    pub now: Instant,
}

impl<'a> Context<'a> {
    /// A context for `update`, triggered by `trigger`, at the current time.
    pub fn new(update: &'a Update, trigger: Trigger) -> Self {
        Context {
            update,
            trigger,
            now: crate::clock::now(),
        }
    }

    /// The same context at another instant: for tests and replays that
    /// drive time-dependent processors (timeouts, windows) by hand.
    pub fn at(mut self, now: Instant) -> Self {
        self.now = now;
        self
    }
}

/// A figure a processor reports about itself: live keys, open windows,
/// records left out. Names ending in `_total` only ever grow (counters);
/// the others go up and down (gauges).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Gauge {
    /// What is measured, in `snake_case` (`keys`, `windows`).
    pub name: &'static str,
    /// Its current value.
    pub value: u64,
}

impl Gauge {
    /// The figure `name` at `value`.
    pub fn new(name: &'static str, value: u64) -> Self {
        Gauge { name, value }
    }
}

/// A step of a link's pipeline.
///
/// Any `FnMut(Vec<Record>) -> Vec<Record>` is a processor; use
/// [`fallible`] and [`from_async`] for closures that can fail or await.
///
/// ```
/// use databay_core::Record;
/// use databay_core::processor::Processor;
///
/// fn keep_small(records: Vec<Record>) -> Vec<Record> {
///     records.into_iter().filter(|r| r.payload.as_i64() < Some(100)).collect()
/// }
/// fn assert_processor<P: Processor>(_: P) {}
/// assert_processor(keep_small);
/// ```
#[async_trait]
pub trait Processor: Send + 'static {
    /// Turns `records` into the records passed on.
    async fn process(
        &mut self,
        records: Vec<Record>,
        cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError>;

    /// When this processor next needs to run even if no transfer is due
    /// (a buffer's time threshold, a window closing). The link wakes at the
    /// earliest such instant and calls the pipeline with [`Trigger::Timer`].
    fn next_wakeup(&self) -> Option<Instant> {
        None
    }

    /// The state this processor holds between transfers (keyed operator
    /// state, held records), as JSON, so that a fresh instance given it
    /// through [`restore`](Processor::restore) carries on exactly where this
    /// one stands. `None` (the default): nothing to keep.
    fn snapshot(&self) -> Result<Option<Value>, BoxError> {
        Ok(None)
    }

    /// Replaces this processor's state by one [`snapshot`](Processor::snapshot)
    /// gave. The default refuses: a processor without state has nothing to
    /// restore.
    fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        let _ = state;
        Err("this processor keeps no state to restore".into())
    }

    /// Figures about what the processor holds (live keys, open windows),
    /// for status views and metrics. None by default.
    fn gauges(&self) -> Vec<Gauge> {
        Vec::new()
    }

    /// This processor's work as [`Stateless`] work, if it is: then the
    /// link may run it on parts of a large batch at once, on several cores
    /// (see [`Stateless`]). `None` by default.
    fn stateless(&self) -> Option<&dyn Stateless> {
        None
    }
}

/// The work of a processor that handles each record on its own: what it
/// does to a record depends on that record only (and on the call's
/// [`Context`]), never on the records around it or on earlier calls, and
/// it holds nothing between calls (`select`, `set`, jq `map`).
///
/// A link may then split a large batch into parts and run a chain of such
/// processors on several parts at once, each part on one core, and
/// concatenate what comes out in the order of the parts: the same records,
/// in the same order, as [`Processor::process`] on the whole batch gives.
/// A failure is the failure the whole batch would have met: the first
/// failing stage of the chain, and in it the first failing record, with a
/// [`RecordError`]'s `index` and `count` counted in the whole batch.
///
/// The parts run on the compute pool's threads ([`crate::compute::split`]),
/// outside the async runtime: [`Stateless::process_part`] is synchronous
/// work and must not use tokio (no `Handle::current`, no `spawn`).
///
/// ```
/// use databay_core::{BoxError, Context, Record, stateless_processor};
/// use databay_core::processor::{RecordError, Stateless};
///
/// /// Doubles numbers; anything else fails the batch.
/// struct Double;
///
/// impl Stateless for Double {
///     fn process_part(&self, mut records: Vec<Record>, _: &Context<'_>) -> Result<Vec<Record>, BoxError> {
///         let count = records.len();
///         for (index, record) in records.iter_mut().enumerate() {
///             let n = record.payload.as_i64().ok_or_else(|| RecordError::new(index, count, "not an integer"))?;
///             record.payload = (2 * n).into();
///         }
///         Ok(records)
///     }
/// }
///
/// // `process` runs `process_part` on the whole batch; `stateless` is
/// // `Some(self)`.
/// stateless_processor!(Double);
/// ```
pub trait Stateless: Send + Sync {
    /// Processes `records`, a part of a batch (or all of it), as
    /// [`Processor::process`] does. A record that cannot be processed
    /// fails the part with a [`RecordError`] that counts in the part: the
    /// link turns its `index` and `count` into the record's place in the
    /// batch.
    fn process_part(&self, records: Vec<Record>, cx: &Context<'_>)
    -> Result<Vec<Record>, BoxError>;
}

/// Implements [`Processor`] for a type that implements [`Stateless`]:
/// `process` is [`Stateless::process_part`] on the whole batch, and
/// `stateless` returns the value itself, so a link may run it in parts.
///
/// ```
/// use databay_core::{BoxError, Context, Record, Stateless, stateless_processor};
///
/// struct Upper;
///
/// impl Stateless for Upper {
///     fn process_part(&self, mut records: Vec<Record>, _: &Context<'_>) -> Result<Vec<Record>, BoxError> {
///         for r in &mut records {
///             if let Some(s) = r.payload.as_str() {
///                 r.payload = s.to_uppercase().into();
///             }
///         }
///         Ok(records)
///     }
/// }
///
/// stateless_processor!(Upper);
/// ```
#[macro_export]
macro_rules! stateless_processor {
    ($type:ty) => {
        #[$crate::async_trait]
        impl $crate::Processor for $type {
            async fn process(
                &mut self,
                records: ::std::vec::Vec<$crate::Record>,
                cx: &$crate::Context<'_>,
            ) -> ::std::result::Result<::std::vec::Vec<$crate::Record>, $crate::BoxError> {
                $crate::Stateless::process_part(self, records, cx)
            }

            fn stateless(&self) -> ::std::option::Option<&dyn $crate::Stateless> {
                ::std::option::Option::Some(self)
            }
        }
    };
}

/// A record a processor or grouper could not handle: the whole batch
/// fails, and the error says which record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {index} of {count}: {message}")]
#[non_exhaustive]
pub struct RecordError {
    /// The record's 0-based position in the batch.
    pub index: usize,
    /// The number of records in the batch.
    pub count: usize,
    /// What went wrong.
    pub message: String,
}

impl RecordError {
    /// Record `index` of the `count` in the batch could not be handled:
    /// `message` says why.
    pub fn new(index: usize, count: usize, message: impl ToString) -> Self {
        RecordError {
            index,
            count,
            message: message.to_string(),
        }
    }
}

#[async_trait]
impl<F> Processor for F
where
    F: FnMut(Vec<Record>) -> Vec<Record> + Send + 'static,
{
    async fn process(
        &mut self,
        records: Vec<Record>,
        _cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        Ok(self(records))
    }
}

#[async_trait]
impl Processor for Box<dyn Processor> {
    async fn process(
        &mut self,
        records: Vec<Record>,
        cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        (**self).process(records, cx).await
    }

    fn next_wakeup(&self) -> Option<Instant> {
        (**self).next_wakeup()
    }

    fn snapshot(&self) -> Result<Option<Value>, BoxError> {
        (**self).snapshot()
    }

    fn restore(&mut self, state: Value) -> Result<(), BoxError> {
        (**self).restore(state)
    }

    fn gauges(&self) -> Vec<Gauge> {
        (**self).gauges()
    }

    fn stateless(&self) -> Option<&dyn Stateless> {
        (**self).stateless()
    }
}

/// A processor from a closure that can fail.
pub fn fallible<F>(f: F) -> Fallible<F>
where
    F: FnMut(Vec<Record>) -> Result<Vec<Record>, BoxError> + Send + 'static,
{
    Fallible(f)
}

/// See [`fallible`].
pub struct Fallible<F>(F);

#[async_trait]
impl<F> Processor for Fallible<F>
where
    F: FnMut(Vec<Record>) -> Result<Vec<Record>, BoxError> + Send + 'static,
{
    async fn process(
        &mut self,
        records: Vec<Record>,
        _cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        (self.0)(records)
    }
}

/// A processor from an async closure.
pub fn from_async<F, Fut>(f: F) -> FromAsync<F>
where
    F: FnMut(Vec<Record>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<Record>, BoxError>> + Send,
{
    FromAsync(f)
}

/// See [`from_async`].
pub struct FromAsync<F>(F);

#[async_trait]
impl<F, Fut> Processor for FromAsync<F>
where
    F: FnMut(Vec<Record>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<Record>, BoxError>> + Send,
{
    async fn process(
        &mut self,
        records: Vec<Record>,
        _cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        (self.0)(records).await
    }
}

/// Splits records into batches; each batch is pushed to the outlets
/// separately, in order. Groupers only batch: flattening the result should
/// give back the same records.
///
/// Any `FnMut(Vec<Vec<Record>>) -> Vec<Vec<Record>>` is a grouper.
pub trait Grouper: Send + 'static {
    /// Reshapes the batches.
    fn group(&mut self, batches: Vec<Vec<Record>>) -> Result<Vec<Vec<Record>>, BoxError>;
}

impl<F> Grouper for F
where
    F: FnMut(Vec<Vec<Record>>) -> Vec<Vec<Record>> + Send + 'static,
{
    fn group(&mut self, batches: Vec<Vec<Record>>) -> Result<Vec<Vec<Record>>, BoxError> {
        Ok(self(batches))
    }
}

impl Grouper for Box<dyn Grouper> {
    fn group(&mut self, batches: Vec<Vec<Record>>) -> Result<Vec<Vec<Record>>, BoxError> {
        (**self).group(batches)
    }
}

/// A named processor, as a link or an outlet holds it.
pub(crate) struct Stage {
    pub(crate) name: String,
    pub(crate) processor: Box<dyn Processor>,
}

impl Stage {
    pub(crate) fn new<P: Processor>(processor: P, position: usize) -> Self {
        let name = crate::node::short_type_name::<P>();
        let name = if name.contains("closure") || name.contains('{') {
            format!("processors[{position}]")
        } else {
            name
        };
        Stage {
            name,
            processor: Box::new(processor),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Overrides every method with a result no default gives.
    struct Everything {
        wakeup: Instant,
        restored: Option<Value>,
    }

    #[async_trait]
    impl Processor for Everything {
        async fn process(
            &mut self,
            mut records: Vec<Record>,
            _cx: &Context<'_>,
        ) -> Result<Vec<Record>, BoxError> {
            records.push(Record::new("processed"));
            Ok(records)
        }

        fn next_wakeup(&self) -> Option<Instant> {
            Some(self.wakeup)
        }

        fn snapshot(&self) -> Result<Option<Value>, BoxError> {
            Ok(Some(Value::from("snapshot")))
        }

        fn restore(&mut self, state: Value) -> Result<(), BoxError> {
            self.restored = Some(state);
            Ok(())
        }

        fn gauges(&self) -> Vec<Gauge> {
            vec![Gauge::new("keys", self.restored.iter().count() as u64 + 7)]
        }

        fn stateless(&self) -> Option<&dyn Stateless> {
            Some(self)
        }
    }

    impl Stateless for Everything {
        fn process_part(
            &self,
            mut records: Vec<Record>,
            _cx: &Context<'_>,
        ) -> Result<Vec<Record>, BoxError> {
            records.push(Record::new("in a part"));
            Ok(records)
        }
    }

    // Generic, so the calls resolve to `impl Processor for Box<dyn Processor>`
    // rather than to the boxed value's own impl.
    async fn process_through<P: Processor>(p: &mut P, cx: &Context<'_>) -> Vec<Record> {
        p.process(Vec::new(), cx).await.unwrap()
    }

    fn next_wakeup_through<P: Processor>(p: &P) -> Option<Instant> {
        p.next_wakeup()
    }

    fn snapshot_through<P: Processor>(p: &P) -> Option<Value> {
        p.snapshot().unwrap()
    }

    fn restore_through<P: Processor>(p: &mut P, state: Value) {
        p.restore(state).unwrap()
    }

    fn gauges_through<P: Processor>(p: &P) -> Vec<Gauge> {
        p.gauges()
    }

    fn part_through<P: Processor>(p: &P, cx: &Context<'_>) -> Option<Vec<Record>> {
        p.stateless()
            .map(|s| s.process_part(Vec::new(), cx).unwrap())
    }

    fn group_through<G: Grouper>(g: &mut G, batches: Vec<Vec<Record>>) -> Vec<Vec<Record>> {
        g.group(batches).unwrap()
    }

    #[tokio::test]
    async fn a_boxed_processor_forwards_every_method() {
        let wakeup = Instant::now() + Duration::from_secs(3600);
        let mut boxed: Box<dyn Processor> = Box::new(Everything {
            wakeup,
            restored: None,
        });
        let update = Update::new(["boxed"], 0);
        let cx = Context::new(&update, Trigger::Transfer);
        let out = process_through(&mut boxed, &cx).await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, "processed");
        assert_eq!(next_wakeup_through(&boxed), Some(wakeup));
        assert_eq!(
            snapshot_through(&boxed),
            Some(Value::from("snapshot")),
            "snapshot"
        );
        assert_eq!(gauges_through(&boxed), [Gauge::new("keys", 7)]);
        restore_through(&mut boxed, Value::from(1));
        assert_eq!(gauges_through(&boxed), [Gauge::new("keys", 8)]);
        let part = part_through(&boxed, &cx).expect("stateless work");
        assert_eq!(part[0].payload, "in a part");
    }

    #[tokio::test]
    async fn defaults_keep_no_state() {
        let mut plain = |records: Vec<Record>| records;
        assert!(plain.stateless().is_none(), "a closure may keep state");
        assert_eq!(snapshot_through(&plain), None);
        assert!(gauges_through(&plain).is_empty());
        let e = Processor::restore(&mut plain, Value::Null).unwrap_err();
        assert_eq!(e.to_string(), "this processor keeps no state to restore");
    }

    #[test]
    fn a_boxed_grouper_forwards_every_method() {
        let split = |batches: Vec<Vec<Record>>| -> Vec<Vec<Record>> {
            batches
                .into_iter()
                .flatten()
                .map(|record| vec![record])
                .collect()
        };
        let mut boxed: Box<dyn Grouper> = Box::new(split);
        let out = group_through(&mut boxed, vec![vec![Record::new(1), Record::new(2)]]);
        assert_eq!(out.len(), 2);
    }

    /// Rust tokens of `src` with comments, whitespace and literals left out:
    /// enough to find items and match their braces.
    fn tokens(src: &str) -> Vec<String> {
        let chars: Vec<char> = src.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if c.is_whitespace() {
                i += 1;
            } else if c == '/' && next == Some('/') {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            } else if c == '/' && next == Some('*') {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            } else if c == 'r' && matches!(next, Some('"' | '#')) {
                // A raw string: r"..." or r#"..."#, closed by as many hashes.
                let mut j = i + 1;
                while chars.get(j) == Some(&'#') {
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    out.push("r".to_owned());
                    i += 1;
                    continue;
                }
                let hashes = j - i - 1;
                i = j + 1;
                while i < chars.len() {
                    if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                        i += 1 + hashes;
                        break;
                    }
                    i += 1;
                }
            } else if c == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
                // A char literal ('{', '\''); a lifetime has no closing quote.
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            } else if c.is_alphanumeric() || c == '_' {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push(chars[start..i].iter().collect());
            } else {
                out.push(c.to_string());
                i += 1;
            }
        }
        out
    }

    /// Names of the functions declared directly in the body of the item
    /// that starts with `header` (e.g. `pub trait Processor`).
    fn fns_of(src: &str, header: &str) -> Vec<String> {
        let toks = tokens(src);
        let head = tokens(header);
        let start = (0..toks.len())
            .find(|&i| toks[i..].starts_with(&head))
            .unwrap_or_else(|| panic!("`{header}` not found"));
        let open = start
            + toks[start..]
                .iter()
                .position(|t| t == "{")
                .unwrap_or_else(|| panic!("`{header}` has no body"));
        let mut names = Vec::new();
        let mut depth = 0;
        for (i, t) in toks.iter().enumerate().skip(open) {
            match t.as_str() {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        names.sort();
                        return names;
                    }
                }
                "fn" if depth == 1 => names.push(toks[i + 1].clone()),
                _ => {}
            }
        }
        panic!("`{header}` has an unclosed body");
    }

    #[test]
    fn box_impls_forward_every_trait_method() {
        let src = include_str!("processor.rs");
        for (trait_header, box_header) in [
            (
                "pub trait Processor",
                "impl Processor for Box<dyn Processor>",
            ),
            ("pub trait Grouper", "impl Grouper for Box<dyn Grouper>"),
        ] {
            let declared = fns_of(src, trait_header);
            assert!(!declared.is_empty(), "no methods found in `{trait_header}`");
            assert_eq!(
                declared,
                fns_of(src, box_header),
                "`{box_header}` must forward every method of `{trait_header}`, defaults included"
            );
        }
    }

    #[test]
    fn the_method_finder_skips_comments_literals_and_nested_bodies() {
        let src = r##"
            // pub trait T { fn commented(); }
            const S: &str = "pub trait T { fn quoted(); }";
            const R: &str = r#"pub trait T { fn raw(); }"#;
            const C: char = '{';
            pub trait T<'a>: Send {
                /// Doc with a brace { and a fake `fn doc()`.
                fn first(&self) -> &'a str;
                fn second(&self) { let _ = '}'; fn nested() {} }
                /* fn blocked() { */
            }
        "##;
        assert_eq!(fns_of(src, "pub trait T"), ["first", "second"]);
    }
}
