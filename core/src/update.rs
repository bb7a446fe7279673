//! The identity of one transfer of one link.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// One transfer of one link: the link's tags and a per-link incremental
/// index. `Display` gives `tag.index` (`http_to_mongo.3`), the prefix every
/// log line of the transfer carries.
///
/// ```
/// use databay_core::Update;
/// let update = Update::new(["http_to_mongo"], 3);
/// assert_eq!(update.to_string(), "http_to_mongo.3");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    tags: Arc<[String]>,
    index: u64,
    scheduled: Option<Instant>,
}

impl Update {
    /// An update with the given tags and index.
    pub fn new<I, S>(tags: I, index: u64) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Update {
            tags: tags.into_iter().map(Into::into).collect(),
            index,
            scheduled: None,
        }
    }

    pub(crate) fn for_link(tags: Arc<[String]>, index: u64, scheduled: Option<Instant>) -> Self {
        Update {
            tags,
            index,
            scheduled,
        }
    }

    /// The governing link's tags.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The link's transfer counter: 0 for its first transfer.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// When the schedule wanted this transfer to start; `None` for a transfer
    /// that was not scheduled (forced, or a flush).
    pub fn scheduled_for(&self) -> Option<Instant> {
        self.scheduled
    }
}

impl fmt::Display for Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for tag in self.tags.iter() {
            write!(f, "{tag}.")?;
        }
        write!(f, "{}", self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_joins_tags_and_index() {
        assert_eq!(Update::new(["a", "b"], 7).to_string(), "a.b.7");
        assert_eq!(Update::new(Vec::<String>::new(), 0).to_string(), "0");
    }
}
