//! [`RandomIntInlet`]: one random integer per transfer (Databay's
//! `RandomIntInlet`), for demos, load tests and exercising pipelines.

use databay_core::{BoxError, Inlet, Pull, Update, async_trait};

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::RandomIntOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// The lower bound [`RandomIntInlet::default`] uses, as in Databay.
pub const DEFAULT_MIN: i64 = 0;
/// The upper bound [`RandomIntInlet::default`] uses, as in Databay.
pub const DEFAULT_MAX: i64 = 100;

/// Why a [`RandomIntInlet`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RandomIntError {
    /// The range is empty: `min` is greater than `max`.
    #[error("RandomIntInlet: min ({min}) is greater than max ({max}); the range must not be empty")]
    EmptyRange {
        /// The requested lower bound.
        min: i64,
        /// The requested upper bound.
        max: i64,
    },
}

/// Produces one record per pull whose payload is a random integer in
/// `[min, max]`, both bounds included (defaults `0` and `100`, as Databay's
/// `random.randint(min, max)`).
///
/// Give it a [seed](RandomIntInlet::seed) to make the sequence reproducible.
///
/// ```
/// use databay_core::{Inlet, Update};
/// use databay_inlets::RandomIntInlet;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), databay_core::BoxError> {
/// let mut dice = RandomIntInlet::new(1, 6)?.seed(7);
/// let pull = dice.pull(&Update::new(["dice"], 0)).await?;
/// let roll = pull.records()[0].payload.as_i64().unwrap();
/// assert!((1..=6).contains(&roll));
///
/// assert!(RandomIntInlet::new(6, 1).is_err());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RandomIntInlet {
    min: i64,
    max: i64,
    rng: fastrand::Rng,
}

impl RandomIntInlet {
    /// An inlet drawing from `[min, max]`, or [`RandomIntError::EmptyRange`]
    /// naming both values when `min > max`. `min == max` is allowed (the
    /// inlet then always produces that value).
    pub fn new(min: i64, max: i64) -> Result<Self, RandomIntError> {
        if min > max {
            return Err(RandomIntError::EmptyRange { min, max });
        }
        Ok(RandomIntInlet {
            min,
            max,
            rng: fastrand::Rng::new(),
        })
    }

    /// Seeds the generator: two inlets with the same range and seed produce
    /// the same sequence. Without a seed each instance starts from fresh
    /// entropy.
    pub fn seed(mut self, seed: u64) -> Self {
        self.rng = fastrand::Rng::with_seed(seed);
        self
    }

    /// The lower bound (inclusive).
    pub fn min(&self) -> i64 {
        self.min
    }

    /// The upper bound (inclusive).
    pub fn max(&self) -> i64 {
        self.max
    }
}

impl Default for RandomIntInlet {
    /// `[0, 100]`, unseeded.
    fn default() -> Self {
        RandomIntInlet {
            min: DEFAULT_MIN,
            max: DEFAULT_MAX,
            rng: fastrand::Rng::new(),
        }
    }
}

#[async_trait]
impl Inlet for RandomIntInlet {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        Ok(Pull::value(self.rng.i64(self.min..=self.max)))
    }
}
