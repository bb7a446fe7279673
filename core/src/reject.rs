//! Per-record rejects: how an outlet says "I wrote all of the batch but
//! these records".
//!
//! An outlet that cannot write some records of a push (a payload that is not
//! an object for a CSV row, a duplicate key in a database) writes the others
//! and returns a [`Rejected`] as its error. The link then counts the push as
//! delivered except for those records: they are counted
//! (`records_rejected`, per link and per outlet) and logged with their
//! position, and the transfer carries on. Any other error still means the
//! whole push failed.
//!
//! ```
//! use databay_core::{async_trait, BoxError, Outlet, Record, Rejected, Update};
//!
//! struct Numbers(Vec<i64>);
//!
//! #[async_trait]
//! impl Outlet for Numbers {
//!     async fn push(&mut self, records: &[Record], _: &Update) -> Result<(), BoxError> {
//!         let mut rejected = Rejected::new();
//!         for (index, record) in records.iter().enumerate() {
//!             match record.payload.as_i64() {
//!                 Some(n) => self.0.push(n),
//!                 None => rejected.reject(index, "payload is not an integer"),
//!             }
//!         }
//!         rejected.into_result()
//!     }
//! }
//! ```

use std::fmt;

use crate::error::BoxError;
use crate::record::Record;

/// How many rejects a [`Rejected`]'s message lists before summarising.
const LISTED: usize = 3;

/// One record an outlet refused.
#[derive(Debug)]
#[non_exhaustive]
pub struct Reject {
    /// The record's position in the batch given to `push`, from 0.
    pub index: usize,
    /// Why it was refused.
    pub error: BoxError,
}

/// The records of one push that an outlet did not write; every other
/// record of the push was written. Return it as the push's error.
#[derive(Debug, Default)]
pub struct Rejected {
    rejects: Vec<Reject>,
}

impl Rejected {
    /// No rejects yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses the record at `index` of the pushed batch.
    pub fn reject(&mut self, index: usize, error: impl Into<BoxError>) {
        self.rejects.push(Reject {
            index,
            error: error.into(),
        });
    }

    /// Whether no record was refused.
    pub fn is_empty(&self) -> bool {
        self.rejects.is_empty()
    }

    /// How many records were refused.
    pub fn len(&self) -> usize {
        self.rejects.len()
    }

    /// The refused records, in the order they were refused.
    pub fn iter(&self) -> impl Iterator<Item = &Reject> {
        self.rejects.iter()
    }

    /// Whether the record at `index` was refused.
    pub fn contains(&self, index: usize) -> bool {
        self.rejects.iter().any(|r| r.index == index)
    }

    /// `Ok(())` when nothing was refused, the rejects as the error otherwise:
    /// the return value of a push.
    pub fn into_result(self) -> Result<(), BoxError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Box::new(self))
        }
    }

    /// The rejects, in the order they were refused.
    pub fn into_rejects(self) -> Vec<Reject> {
        self.rejects
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.rejects.len();
        write!(f, "{n} record{} rejected: ", if n == 1 { "" } else { "s" })?;
        for (i, r) in self.rejects.iter().take(LISTED).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            // Outlets' errors usually name the record already.
            let message = r.error.to_string();
            if message.starts_with(&format!("record {}", r.index)) {
                f.write_str(&message)?;
            } else {
                write!(f, "record {}: {message}", r.index)?;
            }
        }
        if n > LISTED {
            write!(f, "; and {} more", n - LISTED)?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}

/// A record an outlet refused, as the link reports it.
#[derive(Debug)]
#[non_exhaustive]
pub struct RejectedRecord {
    /// The record, as it was pushed (after the outlet's own processors).
    pub record: Record,
    /// Its position in the pushed batch, from 0.
    pub index: usize,
    /// Why the outlet refused it.
    pub error: BoxError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_lists_the_first_rejects_and_counts_the_rest() {
        let mut rejected = Rejected::new();
        for i in [1, 4, 6, 7, 9] {
            rejected.reject(i, format!("bad {i}"));
        }
        assert_eq!(
            rejected.to_string(),
            "5 records rejected: record 1: bad 1; record 4: bad 4; record 6: bad 6; and 2 more"
        );
        let mut one = Rejected::new();
        one.reject(0, "no");
        assert_eq!(one.to_string(), "1 record rejected: record 0: no");
        let mut named = Rejected::new();
        named.reject(3, "record 3 for `x.csv`: bad");
        assert_eq!(
            named.to_string(),
            "1 record rejected: record 3 for `x.csv`: bad"
        );
    }

    #[test]
    fn no_rejects_is_success() {
        assert!(Rejected::new().into_result().is_ok());
        let mut some = Rejected::new();
        some.reject(2, "x");
        let err = some.into_result().unwrap_err();
        let back = err.downcast::<Rejected>().unwrap();
        assert!(back.contains(2) && !back.contains(1));
    }
}
