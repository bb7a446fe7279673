//! The deadlines of one operator's keys, in one ordered set: setting,
//! moving or clearing a key's deadline and taking the due ones cost
//! O(log n), and the earliest is at hand, whatever the number of keys.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// At most one deadline per key; the caller remembers each key's current
/// deadline (it lives beside the key's state) and passes it back to move
/// or clear it.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    due: BTreeSet<(DateTime<Utc>, Arc<str>)>,
}

impl Timers {
    /// Moves `key`'s deadline from `old` to `new` (either may be `None`).
    pub(crate) fn set(
        &mut self,
        key: &Arc<str>,
        old: Option<DateTime<Utc>>,
        new: Option<DateTime<Utc>>,
    ) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.due.remove(&(old, key.clone()));
        }
        if let Some(new) = new {
            self.due.insert((new, key.clone()));
        }
    }

    /// The earliest deadline.
    pub(crate) fn first(&self) -> Option<DateTime<Utc>> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Removes and returns the keys due at `now` (deadline at or before
    /// it), earliest first; equal deadlines in key order.
    pub(crate) fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Arc<str>> {
        let mut keys = Vec::new();
        while let Some((at, _)) = self.due.first()
            && *at <= now
        {
            if let Some((_, key)) = self.due.pop_first() {
                keys.push(key);
            }
        }
        keys
    }

    /// Number of keys with a deadline.
    pub(crate) fn len(&self) -> usize {
        self.due.len()
    }

    pub(crate) fn clear(&mut self) {
        self.due.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn due_keys_come_earliest_first_and_moved_deadlines_follow() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let s = |n| t0 + TimeDelta::seconds(n);
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
        let mut timers = Timers::default();
        timers.set(&a, None, Some(s(5)));
        timers.set(&b, None, Some(s(3)));
        timers.set(&c, None, Some(s(3)));
        timers.set(&a, Some(s(5)), Some(s(1)));
        assert_eq!(timers.first(), Some(s(1)));
        assert_eq!(timers.len(), 3);
        assert_eq!(timers.take_due(s(0)), Vec::<Arc<str>>::new());
        assert_eq!(timers.take_due(s(3)), [a.clone(), b.clone(), c.clone()]);
        assert_eq!(timers.first(), None);
        timers.set(&a, None, Some(s(9)));
        timers.set(&a, Some(s(9)), None);
        assert_eq!(timers.len(), 0);
    }

    #[test]
    fn a_hundred_thousand_keys_wake_in_deadline_order() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut timers = Timers::default();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut want = Vec::new();
        for i in 0..100_000 {
            let key: Arc<str> = format!("k{i}").into();
            let at = t0 + TimeDelta::milliseconds(rng.i64(0..1_000_000));
            timers.set(&key, None, Some(at));
            want.push((at, key));
        }
        want.sort();
        let cut = want[50_000].0;
        let due = timers.take_due(cut);
        let expect: Vec<Arc<str>> = want
            .iter()
            .take_while(|(at, _)| *at <= cut)
            .map(|(_, k)| k.clone())
            .collect();
        assert_eq!(due, expect);
        assert_eq!(timers.len(), 100_000 - expect.len());
        assert_eq!(timers.first(), want.get(expect.len()).map(|(at, _)| *at));
    }
}
