//! A run of [`Stateless`] processors over a large batch, part by part:
//! each part goes through the whole run while it is hot in the cache, and
//! inside heavy work the parts are spread over the cores
//! ([`compute::split`]). What comes out, and how a failure is reported,
//! is what running the stages one after the other on the whole batch
//! gives (see [`Stateless`]).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::compute;
use crate::error::Failure;
use crate::processor::{Context, RecordError, Stateless};
use crate::record::Record;

/// A batch of at least this many records goes through a run of stateless
/// stages in parts.
pub(super) const PARTED: usize = compute::HEAVY_BATCH;

/// Records per part: small enough that a part's records stay in the
/// cache from one stage to the next, large enough that handing a part to
/// another core costs little beside its work.
const PART: usize = 256;

/// The stage of a run that failed, as the whole batch would have met it.
#[derive(Debug)]
pub(super) struct RunFailure {
    /// The stage's index in the run.
    pub(super) stage: usize,
    /// What failed, a [`RecordError`] counted in the whole batch.
    pub(super) failure: Failure,
    /// How many records the stage was given in all: dropped with the batch.
    pub(super) held: usize,
}

/// What one part went through.
struct Outcome {
    /// The records each stage it reached was given.
    sizes: Vec<usize>,
    /// What the run gave, or the stage that failed and how.
    result: Result<Vec<Record>, (usize, Failure)>,
}

/// Runs `stages`, each with its context, over `records` in parts.
pub(super) fn run(
    stages: &[(&dyn Stateless, &Context<'_>)],
    records: Vec<Record>,
) -> Result<Vec<Record>, RunFailure> {
    let parts: Vec<Vec<Record>> = crate::source::batch(records, PART).collect();
    // The earliest stage a part failed at so far: parts past it stop, as
    // what they would give is dropped.
    let failed_at = AtomicUsize::new(usize::MAX);
    let outcomes = compute::split(parts, |part| run_part(stages, part, &failed_at));
    // The batch fails where the earliest failing stage meets its first
    // failing record: in the first part that failed there.
    let mut sizes = Vec::with_capacity(outcomes.len());
    let mut outputs = Vec::with_capacity(outcomes.len());
    let mut first: Option<(usize, usize, Failure)> = None;
    for (part, outcome) in outcomes.into_iter().enumerate() {
        sizes.push(outcome.sizes);
        match outcome.result {
            Ok(records) => outputs.push(records),
            Err((stage, failure)) => {
                if first
                    .as_ref()
                    .is_none_or(|(earliest, _, _)| stage < *earliest)
                {
                    first = Some((stage, part, failure));
                }
            }
        }
    }
    let Some((stage, part, mut failure)) = first else {
        let mut out = Vec::with_capacity(outputs.iter().map(Vec::len).sum());
        for records in outputs {
            out.extend(records);
        }
        return Ok(out);
    };
    // Every part reached `stage`: none failed before it.
    let given = |sizes: &Vec<usize>| sizes.get(stage).copied().unwrap_or(0);
    let held = sizes.iter().map(given).sum();
    let before: usize = sizes[..part].iter().map(given).sum();
    if let Failure::Error(e) = &mut failure
        && let Some(e) = e.downcast_mut::<RecordError>()
    {
        e.index += before;
        e.count = held;
    }
    Err(RunFailure {
        stage,
        failure,
        held,
    })
}

/// Runs one part through `stages`, unless an earlier stage failed in
/// another part.
fn run_part(
    stages: &[(&dyn Stateless, &Context<'_>)],
    mut records: Vec<Record>,
    failed_at: &AtomicUsize,
) -> Outcome {
    let mut sizes = Vec::with_capacity(stages.len());
    for (i, (stage, cx)) in stages.iter().enumerate() {
        sizes.push(records.len());
        if i > failed_at.load(Ordering::Relaxed) {
            break;
        }
        match crate::node::guarded_sync(|| stage.process_part(records, cx)) {
            Ok(out) => records = out,
            Err(failure) => {
                failed_at.fetch_min(i, Ordering::Relaxed);
                return Outcome {
                    sizes,
                    result: Err((i, failure)),
                };
            }
        }
    }
    Outcome {
        sizes,
        result: Ok(records),
    }
}
