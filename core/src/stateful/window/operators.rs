//! The windowed operators: [`window`] composes a clock, a windower and a
//! window logic; the others are that with a ready-made logic.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::logic::{CollectWindow, CountWindow, FoldWindow, JoinWindow, ReduceWindow, WindowLogic};
use super::{Clock, Window, Windower};
use crate::stateful::join::Join;
use crate::stateful::{KeyFn, Stateful};

/// Bytewax's `window`: per key, `clock` times each record, `windower`
/// assigns it to windows and `logic` aggregates each window.
///
/// ```
/// use chrono::DateTime;
/// use databay_core::Record;
/// use databay_core::stateful::key_text;
/// use databay_core::stateful::window::{window, CountWindow, EventClock, Tumbling, timestamp_of};
/// use std::time::Duration;
///
/// let per_minute = window(
///     |r: &Record| key_text(r.payload.get("user")),
///     EventClock::new(|r: &Record| timestamp_of(r.payload.get("at")), Duration::from_secs(5)),
///     Tumbling::new(Duration::from_secs(60), DateTime::UNIX_EPOCH).unwrap(),
///     CountWindow,
/// );
/// assert!(per_minute.is_empty());
/// ```
pub fn window<K, C, W, L>(key: K, clock: C, windower: W, logic: L) -> Stateful<K, Window<C, W, L>>
where
    K: KeyFn,
    C: Clock,
    W: Windower,
    L: WindowLogic,
{
    Stateful::new(key, Window::new(clock, windower, logic))
}

/// Bytewax's `fold_window`: `builder()` per window, `folder(acc, payload)`
/// per record, `merger(a, b)` when sessions merge; emits the accumulator.
#[allow(clippy::type_complexity)]
pub fn fold_window<K, C, W, S, B, F, M>(
    key: K,
    clock: C,
    windower: W,
    builder: B,
    folder: F,
    merger: M,
) -> Stateful<K, Window<C, W, FoldWindow<S, B, F, M>>>
where
    K: KeyFn,
    C: Clock,
    W: Windower,
    S: Serialize + DeserializeOwned + Send + 'static,
    B: FnMut() -> S + Send + 'static,
    F: FnMut(S, Value) -> S + Send + 'static,
    M: FnMut(S, S) -> S + Send + 'static,
{
    window(
        key,
        clock,
        windower,
        FoldWindow {
            builder,
            folder,
            merger,
            state: PhantomData,
        },
    )
}

/// Bytewax's `count_window`: the number of records per window.
pub fn count_window<K: KeyFn, C: Clock, W: Windower>(
    key: K,
    clock: C,
    windower: W,
) -> Stateful<K, Window<C, W, CountWindow>> {
    window(key, clock, windower, CountWindow)
}

/// Bytewax's `collect_window`: the list of payloads per window.
pub fn collect_window<K: KeyFn, C: Clock, W: Windower>(
    key: K,
    clock: C,
    windower: W,
) -> Stateful<K, Window<C, W, CollectWindow>> {
    window(key, clock, windower, CollectWindow)
}

/// Bytewax's `reduce_window`: `reducer(acc, payload)` over each window.
pub fn reduce_window<K, C, W, F>(
    key: K,
    clock: C,
    windower: W,
    reducer: F,
) -> Stateful<K, Window<C, W, ReduceWindow<F>>>
where
    K: KeyFn,
    C: Clock,
    W: Windower,
    F: FnMut(Value, Value) -> Value + Send + 'static,
{
    window(key, clock, windower, ReduceWindow { reducer })
}

/// Bytewax's `max_window`: the payload with the greatest `by` per window
/// (the first of equals).
pub fn max_window<K, C, W, T, F>(
    key: K,
    clock: C,
    windower: W,
    by: F,
) -> Stateful<K, Window<C, W, impl WindowLogic>>
where
    K: KeyFn,
    C: Clock,
    W: Windower,
    T: PartialOrd,
    F: Fn(&Value) -> T + Send + Sync + 'static,
{
    extreme(key, clock, windower, by, std::cmp::Ordering::Greater)
}

/// Bytewax's `min_window`: the payload with the least `by` per window (the
/// first of equals).
pub fn min_window<K, C, W, T, F>(
    key: K,
    clock: C,
    windower: W,
    by: F,
) -> Stateful<K, Window<C, W, impl WindowLogic>>
where
    K: KeyFn,
    C: Clock,
    W: Windower,
    T: PartialOrd,
    F: Fn(&Value) -> T + Send + Sync + 'static,
{
    extreme(key, clock, windower, by, std::cmp::Ordering::Less)
}

fn extreme<K, C, W, T, F>(
    key: K,
    clock: C,
    windower: W,
    by: F,
    wins: std::cmp::Ordering,
) -> Stateful<K, Window<C, W, impl WindowLogic>>
where
    K: KeyFn,
    C: Clock,
    W: Windower,
    T: PartialOrd,
    F: Fn(&Value) -> T + Send + Sync + 'static,
{
    let by = std::sync::Arc::new(by);
    let pick = move |best: Option<Value>, value: Option<Value>| match (best, value) {
        (Some(best), Some(value)) => {
            if by(&value).partial_cmp(&by(&best)) == Some(wins) {
                Some(value)
            } else {
                Some(best)
            }
        }
        (best, value) => best.or(value),
    };
    let merge = pick.clone();
    fold_window(
        key,
        clock,
        windower,
        || None,
        move |best: Option<Value>, value| pick(best, Some(value)),
        merge,
    )
}

/// Bytewax's `join_window`: joins each window's records by side (see
/// [`JoinWindow`] for the emit modes; the join's own `emit_mode` applies).
pub fn join_window<K: KeyFn, C: Clock, W: Windower>(
    key: K,
    clock: C,
    windower: W,
    join: Join,
) -> Stateful<K, Window<C, W, JoinWindow>> {
    window(key, clock, windower, JoinWindow { join })
}
