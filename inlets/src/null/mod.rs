//! [`NullInlet`]: an inlet that never produces anything (Databay's
//! `NullInlet`), for links under construction and for tests of outlets,
//! processors and schedules that need an inlet to exist.

use databay_core::{BoxError, Inlet, Pull, Update, async_trait};

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::NullInletOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// Produces nothing: every pull returns [`Pull::Nothing`]. It never fails
/// and never reports exhaustion, so a link holding only a `NullInlet` keeps
/// running on its schedule.
///
/// ```
/// use databay_core::{Inlet, Pull, Update};
/// use databay_inlets::NullInlet;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut inlet = NullInlet::new();
/// let pull = inlet.pull(&Update::new(["demo"], 0)).await.unwrap();
/// assert!(matches!(pull, Pull::Nothing));
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NullInlet;

impl NullInlet {
    /// A new `NullInlet` (the same as `NullInlet` or `NullInlet::default()`).
    pub fn new() -> Self {
        NullInlet
    }
}

#[async_trait]
impl Inlet for NullInlet {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        Ok(Pull::Nothing)
    }
}
