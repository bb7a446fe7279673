//! Carrying processors over from a link to its replacement: a reload that
//! leaves an operator unchanged keeps its state, even when other parts of
//! its link changed.
//!
//! The old link is told which processors carry over
//! ([`Link::spare_on_flush`]); removing it then flushes the others (their
//! stream ends) and passes the spared ones what the others released,
//! without ending theirs. Then [`Link::swap_processors`] trades the
//! spared processors for the replacement's fresh ones of the same names,
//! state and timers included. Swapping back undoes it, should the
//! replacement fail to start and the old link return.

use super::Link;
use crate::sync::lock;

impl Link {
    /// Names the processors that carry over to a replacement: a flush of
    /// this link (as removing it does) runs them as a timer call on what
    /// the processors before them release, and does not end their stream.
    /// An empty list (the default) makes a flush end every processor.
    pub fn spare_on_flush<I, S>(&self, names: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        *lock(&self.inner.spared) = names.into_iter().map(Into::into).collect();
    }

    /// The names of the link's processors, in order.
    pub async fn processor_names(&self) -> Vec<String> {
        let pipeline = self.inner.pipeline.lock().await;
        pipeline.processors.iter().map(|s| s.name.clone()).collect()
    }

    /// Trades the processors called `names` with `other`'s processors of
    /// the same names, with their state and timers. A name is traded only
    /// when it names exactly one processor in each link; the names traded
    /// are returned. Waits for a running transfer of either link.
    pub async fn swap_processors(&self, other: &Link, names: &[String]) -> Vec<String> {
        if std::sync::Arc::ptr_eq(&self.inner, &other.inner) {
            return Vec::new();
        }
        let mut mine = self.inner.pipeline.lock().await;
        let mut theirs = other.inner.pipeline.lock().await;
        let mut swapped = Vec::new();
        for name in names {
            let find = |stages: &[crate::processor::Stage]| {
                let mut at = stages.iter().enumerate().filter(|(_, s)| s.name == *name);
                match (at.next(), at.next()) {
                    (Some((i, _)), None) => Some(i),
                    _ => None,
                }
            };
            let (Some(a), Some(b)) = (find(&mine.processors), find(&theirs.processors)) else {
                continue;
            };
            std::mem::swap(
                &mut mine.processors[a].processor,
                &mut theirs.processors[b].processor,
            );
            swapped.push(name.clone());
        }
        if !swapped.is_empty() {
            // Gauges and wake-ups follow the processors (a carried-over
            // window still closes on time in the replacement).
            let (a, b) = (self.note_processors(&mine), other.note_processors(&theirs));
            self.note_wakeup(a, None).await;
            other.note_wakeup(b, None).await;
        }
        swapped
    }
}
