//! [`NullOutlet`]: accepts every record and discards it.
//!
#![doc = include_str!("README.md")]

use databay_core::{BoxError, Outlet, Record, Update, async_trait};

/// An outlet that accepts every batch and does nothing with it, Databay's
/// "no-op" outlet. Useful to measure a pipeline without output costs, or to
/// run a link for the side effects of its processors.
///
/// ```
/// use databay_core::{Outlet, Record, Update};
/// use databay_outlets::NullOutlet;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut outlet = NullOutlet;
/// let pushed = outlet.push(&[Record::new(1)], &Update::new(["t"], 0)).await;
/// assert!(pushed.is_ok());
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NullOutlet;

impl NullOutlet {
    /// A new null outlet.
    pub fn new() -> Self {
        NullOutlet
    }
}

#[async_trait]
impl Outlet for NullOutlet {
    async fn push(&mut self, _records: &[Record], _update: &Update) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A documented config table for this outlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
#[cfg(test)]
mod tests;
pub use options::NullOutletOptions;
pub(crate) use options::register;
