//! Windower logics: which windows an item's time falls into. Tumbling and
//! sliding windows are fixed slices of time, numbered from `align_to`;
//! session windows grow with their key's items and close after a gap.
//!
//! A window is `[open, close)`. It is *closed* once the watermark has
//! reached `close`; an item that only falls into closed windows is late.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// A window's number within its key.
pub type WindowId = i64;

/// When a window opens and closes: it holds items in `[open, close)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// The window's start (included).
    pub open: DateTime<Utc>,
    /// The window's end (excluded): it closes when the watermark gets here.
    pub close: DateTime<Utc>,
}

/// Where an item goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// The windows it falls into (new ones are opened), with their bounds
    /// after taking it in.
    /// Inline up to two: most items fall into one window (a tumbling or
    /// session windower) and assigning one allocates nothing.
    pub windows: SmallVec<[(WindowId, Bounds); 2]>,
    /// Windows merged by it: `(from, into)`, `from` folded into `into`.
    pub merges: SmallVec<[(WindowId, WindowId); 1]>,
}

impl Assignment {
    /// Whether the item falls into no open window: it is late.
    pub fn is_late(&self) -> bool {
        self.windows.is_empty()
    }
}

/// A bad windower setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WindowerError(String);

/// Assigns items to windows.
pub trait Windower: Send + 'static {
    /// The windows for an item at `ts` when the watermark is `watermark`,
    /// given the key's `open` windows; `next_id` numbers new windows when
    /// the windower does not derive ids from time.
    fn assign(
        &self,
        ts: DateTime<Utc>,
        watermark: DateTime<Utc>,
        open: &BTreeMap<WindowId, Bounds>,
        next_id: &mut WindowId,
    ) -> Assignment;

    /// Whether a key's windows close in the order of their ids (ids are
    /// slice numbers), so that the first open window closes first. The
    /// default, `false`, makes no such promise: the earliest close is then
    /// looked for among all of them.
    fn closes_in_id_order(&self) -> bool {
        false
    }
}

fn nanos(d: TimeDelta) -> i64 {
    d.num_nanoseconds().unwrap_or(i64::MAX)
}

fn positive(what: &str, d: std::time::Duration) -> Result<TimeDelta, WindowerError> {
    match TimeDelta::from_std(d) {
        Ok(d) if d > TimeDelta::zero() && d.num_nanoseconds().is_some() => Ok(d),
        _ => Err(WindowerError(format!(
            "the window {what} must be longer than 0s and at most 292 years"
        ))),
    }
}

/// Fixed windows of `length` one after the other, starting at `align_to`
/// (and every `length` before and after it).
#[derive(Debug, Clone, Copy)]
pub struct Tumbling {
    length: TimeDelta,
    align_to: DateTime<Utc>,
}

impl Tumbling {
    /// Windows of `length` aligned to `align_to`.
    pub fn new(
        length: std::time::Duration,
        align_to: DateTime<Utc>,
    ) -> Result<Self, WindowerError> {
        Ok(Tumbling {
            length: positive("length", length)?,
            align_to,
        })
    }
}

impl Windower for Tumbling {
    fn assign(
        &self,
        ts: DateTime<Utc>,
        watermark: DateTime<Utc>,
        open: &BTreeMap<WindowId, Bounds>,
        _next_id: &mut WindowId,
    ) -> Assignment {
        let mut out = Assignment::default();
        // Most items fall into the latest window their key has open (ids
        // are slice numbers, so in time order): no time arithmetic for
        // them; the others find theirs by its slice number.
        let latest = open
            .last_key_value()
            .filter(|(_, b)| b.open <= ts && ts < b.close);
        let len = nanos(self.length);
        let (id, bounds) = match latest {
            Some((id, bounds)) => (*id, *bounds),
            None => {
                let id = nanos(ts - self.align_to).div_euclid(len);
                let holds = |b: &Bounds| b.open <= ts && ts < b.close;
                match open.get(&id).filter(|b| holds(b)) {
                    Some(bounds) => (id, *bounds),
                    // Windows restored from another length or alignment
                    // are not at their slice numbers: found by their
                    // bounds, as before.
                    None => match open.iter().find(|(_, b)| holds(b)) {
                        Some((id, bounds)) => (*id, *bounds),
                        None => (id, slice(self.align_to, id, len, len)),
                    },
                }
            }
        };
        if bounds.close > watermark {
            out.windows.push((id, bounds));
        }
        out
    }

    fn closes_in_id_order(&self) -> bool {
        true
    }
}

fn slice(align: DateTime<Utc>, id: i64, step: i64, len: i64) -> Bounds {
    let open = align + TimeDelta::nanoseconds(id.saturating_mul(step));
    Bounds {
        open,
        close: open + TimeDelta::nanoseconds(len),
    }
}

/// Overlapping windows of `length`, a new one every `offset`, starting at
/// `align_to`: an item falls into `length / offset` windows.
#[derive(Debug, Clone, Copy)]
pub struct Sliding {
    length: TimeDelta,
    offset: TimeDelta,
    align_to: DateTime<Utc>,
}

impl Sliding {
    /// Windows of `length` opening every `offset` (at most `length`, so
    /// that every time falls into a window), aligned to `align_to`.
    pub fn new(
        length: std::time::Duration,
        offset: std::time::Duration,
        align_to: DateTime<Utc>,
    ) -> Result<Self, WindowerError> {
        let length = positive("length", length)?;
        let offset = positive("offset", offset)?;
        if offset > length {
            return Err(WindowerError(
                "the window offset must be at most its length: items between windows would belong to none".to_owned(),
            ));
        }
        Ok(Sliding {
            length,
            offset,
            align_to,
        })
    }
}

impl Windower for Sliding {
    fn assign(
        &self,
        ts: DateTime<Utc>,
        watermark: DateTime<Utc>,
        _open: &BTreeMap<WindowId, Bounds>,
        _next_id: &mut WindowId,
    ) -> Assignment {
        let (len, off) = (nanos(self.length), nanos(self.offset));
        let d = nanos(ts - self.align_to);
        // Window i holds [i*off, i*off + len): d - len < i*off <= d.
        let last = d.div_euclid(off);
        let first = d.saturating_sub(len).div_euclid(off) + 1;
        let mut out = Assignment::default();
        for id in first..=last {
            let bounds = slice(self.align_to, id, off, len);
            if bounds.close > watermark {
                out.windows.push((id, bounds));
            }
        }
        out
    }

    fn closes_in_id_order(&self) -> bool {
        true
    }
}

/// A window per burst of a key's items: an item within `gap` of a session
/// joins it (and may bridge two, which merge); the session closes `gap`
/// after its last item.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    gap: TimeDelta,
}

impl Session {
    /// Sessions separated by at least `gap` without items.
    pub fn new(gap: std::time::Duration) -> Result<Self, WindowerError> {
        Ok(Session {
            gap: positive("gap", gap)?,
        })
    }
}

impl Windower for Session {
    fn assign(
        &self,
        ts: DateTime<Utc>,
        watermark: DateTime<Utc>,
        open: &BTreeMap<WindowId, Bounds>,
        next_id: &mut WindowId,
    ) -> Assignment {
        // A session's bounds are [first item, last item + gap).
        let own_close = ts + self.gap;
        let mut out = Assignment::default();
        let touching: Vec<(WindowId, Bounds)> = open
            .iter()
            .filter(|(_, b)| b.close > watermark && ts > b.open - self.gap && ts < b.close)
            .map(|(id, b)| (*id, *b))
            .collect();
        match touching.split_first() {
            Some((&(into, first), rest)) => {
                let mut bounds = Bounds {
                    open: first.open.min(ts),
                    close: first.close.max(own_close),
                };
                for &(from, b) in rest {
                    bounds.open = bounds.open.min(b.open);
                    bounds.close = bounds.close.max(b.close);
                    out.merges.push((from, into));
                }
                out.windows.push((into, bounds));
            }
            None if own_close > watermark => {
                let id = *next_id;
                *next_id += 1;
                out.windows.push((
                    id,
                    Bounds {
                        open: ts,
                        close: own_close,
                    },
                ));
            }
            None => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(s)
    }

    fn b(open: i64, close: i64) -> Bounds {
        Bounds {
            open: t(open),
            close: t(close),
        }
    }

    const MIN: DateTime<Utc> = DateTime::<Utc>::MIN_UTC;

    #[test]
    fn tumbling_windows_are_aligned_slices() {
        let w = Tumbling::new(Duration::from_secs(10), t(3)).unwrap();
        let none = BTreeMap::new();
        let assign = |ts, wm| w.assign(t(ts), wm, &none, &mut 0);
        assert_eq!(assign(3, MIN).windows[..], [(0, b(3, 13))]);
        assert_eq!(assign(12, MIN).windows[..], [(0, b(3, 13))]);
        assert_eq!(assign(13, MIN).windows[..], [(1, b(13, 23))]);
        assert_eq!(assign(2, MIN).windows[..], [(-1, b(-7, 3))]);
        assert!(assign(5, t(13)).is_late(), "its window closed at 13");
        assert!(!assign(5, t(12)).is_late());
        assert!(Tumbling::new(Duration::ZERO, t(0)).is_err());
        // A key's open window is reused as it is; other times get their
        // own slice, and a closed open window makes the item late.
        let open = BTreeMap::from([(1, b(13, 23))]);
        let with = |ts, wm| w.assign(t(ts), wm, &open, &mut 0);
        assert_eq!(with(13, MIN).windows[..], [(1, b(13, 23))]);
        assert_eq!(with(22, MIN).windows[..], [(1, b(13, 23))]);
        assert_eq!(with(23, MIN).windows[..], [(2, b(23, 33))]);
        assert_eq!(with(12, MIN).windows[..], [(0, b(3, 13))]);
        assert!(with(20, t(23)).is_late());
    }

    #[test]
    fn sliding_windows_overlap() {
        let w = Sliding::new(Duration::from_secs(10), Duration::from_secs(5), t(0)).unwrap();
        let none = BTreeMap::new();
        let a = w.assign(t(7), MIN, &none, &mut 0);
        assert_eq!(a.windows[..], [(0, b(0, 10)), (1, b(5, 15))]);
        let a = w.assign(t(10), MIN, &none, &mut 0);
        assert_eq!(a.windows[..], [(1, b(5, 15)), (2, b(10, 20))]);
        let a = w.assign(t(-1), MIN, &none, &mut 0);
        assert_eq!(a.windows[..], [(-2, b(-10, 0)), (-1, b(-5, 5))]);
        let a = w.assign(t(7), t(10), &none, &mut 0);
        assert_eq!(a.windows[..], [(1, b(5, 15))], "the first window closed");
        assert!(w.assign(t(7), t(15), &none, &mut 0).is_late());
        let e = Sliding::new(Duration::from_secs(5), Duration::from_secs(10), t(0)).unwrap_err();
        assert!(e.to_string().contains("offset must be at most"), "{e}");
    }

    /// What `closes_in_id_order` promises: the first open window by id is
    /// the one that closes first, whatever order the items came in.
    #[test]
    fn tumbling_and_sliding_windows_close_in_id_order() {
        let tumbling = Tumbling::new(Duration::from_secs(10), t(3)).unwrap();
        let sliding = Sliding::new(Duration::from_secs(10), Duration::from_secs(3), t(1)).unwrap();
        let windowers: [&dyn Windower; 2] = [&tumbling, &sliding];
        for w in windowers {
            assert!(w.closes_in_id_order());
            let mut open = BTreeMap::new();
            let mut seed = 7u64;
            for _ in 0..200 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let ts = t((seed >> 33) as i64 % 500 - 250);
                for (id, bounds) in w.assign(ts, MIN, &open, &mut 0).windows {
                    open.insert(id, bounds);
                }
                let first = open.first_key_value().map(|(_, b)| b.close);
                assert_eq!(first, open.values().map(|b| b.close).min());
            }
        }
        assert!(
            !Session::new(Duration::from_secs(5))
                .unwrap()
                .closes_in_id_order()
        );
    }

    #[test]
    fn sessions_grow_bridge_and_close_after_the_gap() {
        let w = Session::new(Duration::from_secs(5)).unwrap();
        let mut open = BTreeMap::new();
        let mut next = 0;
        let a = w.assign(t(10), MIN, &open, &mut next);
        assert_eq!(a.windows[..], [(0, b(10, 15))]);
        open.insert(0, b(10, 15));
        let a = w.assign(t(14), MIN, &open, &mut next);
        assert_eq!(a.windows[..], [(0, b(10, 19))], "within the gap: extends");
        open.insert(0, b(10, 19));
        let a = w.assign(t(22), MIN, &open, &mut next);
        assert_eq!(
            a.windows[..],
            [(1, b(22, 27))],
            "past the gap: a new session"
        );
        open.insert(1, b(22, 27));
        let a = w.assign(t(18), MIN, &open, &mut next);
        assert_eq!(a.windows[..], [(0, b(10, 27))]);
        assert_eq!(a.merges[..], [(1, 0)], "bridges both");
        let a = w.assign(t(6), MIN, &open, &mut next);
        assert_eq!(a.windows[..], [(0, b(6, 19))], "extends backwards");
        assert!(w.assign(t(12), t(19), &open, &mut next).is_late());
        assert!(w.assign(t(1), t(7), &BTreeMap::new(), &mut next).is_late());
    }
}
