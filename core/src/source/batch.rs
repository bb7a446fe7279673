//! Batching helpers for partitions: from an iterator, from a getter that
//! may have nothing yet, and from an async `Stream` with a time limit.

use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::Value;

use crate::inlet::Pull;

/// The items of one batch, and whether the source has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batched<T> {
    /// The items, at most the batch size.
    pub items: Vec<T>,
    /// The source has ended: these are its last items.
    pub ended: bool,
}

impl<T: Into<Value>> Batched<T> {
    /// The batch as a pull: [`Pull::Exhausted`] when the source ended,
    /// otherwise [`Pull::Records`], one record per item.
    pub fn into_pull(self) -> Pull {
        let records = Pull::values(self.items).into_records();
        if self.ended {
            Pull::Exhausted(records)
        } else {
            Pull::Records(records)
        }
    }
}

/// Splits `items` into batches of at most `size` (0 is taken as 1).
///
/// ```
/// let batches: Vec<Vec<u32>> = databay_core::source::batch(1..=5, 2).collect();
/// assert_eq!(batches, [vec![1, 2], vec![3, 4], vec![5]]);
/// ```
pub fn batch<I: IntoIterator>(items: I, size: usize) -> impl Iterator<Item = Vec<I::Item>> {
    let size = size.max(1);
    let mut items = items.into_iter();
    std::iter::from_fn(move || {
        let chunk: Vec<I::Item> = items.by_ref().take(size).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
}

/// What a getter passed to [`batch_getter`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<T> {
    /// An item.
    Item(T),
    /// Nothing yet: end this batch.
    Empty,
    /// The source has ended.
    End,
}

/// Calls `getter` until it has nothing yet ([`Next::Empty`]), has ended
/// ([`Next::End`]), or `size` items were gathered (0 is taken as 1). It
/// never waits: a getter over a queue that returns `Empty` at once gives an
/// empty batch.
///
/// ```
/// use databay_core::source::{Next, batch_getter};
/// use std::collections::VecDeque;
///
/// let mut queue: VecDeque<u32> = (1..=3).collect();
/// let first = batch_getter(|| queue.pop_front().map_or(Next::Empty, Next::Item), 2);
/// assert_eq!(first.items, [1, 2]);
/// let second = batch_getter(|| queue.pop_front().map_or(Next::Empty, Next::Item), 2);
/// assert_eq!(second.items, [3]);
/// assert!(!second.ended);
/// ```
pub fn batch_getter<T>(mut getter: impl FnMut() -> Next<T>, size: usize) -> Batched<T> {
    let size = size.max(1);
    let mut items = Vec::new();
    while items.len() < size {
        match getter() {
            Next::Item(item) => items.push(item),
            Next::Empty => break,
            Next::End => return Batched { items, ended: true },
        }
    }
    Batched {
        items,
        ended: false,
    }
}

/// [`batch_getter`] for a getter that reports "nothing yet" as an error
/// (`is_empty` says which errors mean that, like a queue's `Empty`) and
/// the end as `Ok(None)`. Any other error is returned, and the items
/// gathered before it are returned with it so that none is lost.
///
/// ```
/// use databay_core::source::batch_getter_ex;
/// use std::sync::mpsc::{channel, TryRecvError};
///
/// let (tx, rx) = channel();
/// tx.send(1).unwrap();
/// let got = batch_getter_ex(
///     || match rx.try_recv() {
///         Ok(item) => Ok(Some(item)),
///         Err(TryRecvError::Disconnected) => Ok(None),
///         Err(e) => Err(e),
///     },
///     10,
///     |e| *e == TryRecvError::Empty,
/// );
/// assert_eq!(got.unwrap().items, [1]);
/// ```
pub fn batch_getter_ex<T, E>(
    mut getter: impl FnMut() -> Result<Option<T>, E>,
    size: usize,
    is_empty: impl Fn(&E) -> bool,
) -> Result<Batched<T>, (Vec<T>, E)> {
    let size = size.max(1);
    let mut items = Vec::new();
    while items.len() < size {
        match getter() {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return Ok(Batched { items, ended: true }),
            Err(e) if is_empty(&e) => break,
            Err(e) => return Err((items, e)),
        }
    }
    Ok(Batched {
        items,
        ended: false,
    })
}

/// Gathers items from `stream` for at most `timeout`, or until `size`
/// items arrived (0 is taken as 1), or the stream ended: the bridge from an
/// async client library (a WebSocket, a subscription) to a partition's
/// `next_batch`, which must not wait on its source indefinitely. The
/// stream is borrowed, so the next call carries on where this one stopped;
/// an item that arrives as the time runs out is not lost (the stream's
/// `next` is only dropped between items, and `Stream::next` is cancel
/// safe).
///
/// ```
/// use databay_core::source::batch_async;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut stream = futures::stream::iter(1..=5);
/// let first = batch_async(&mut stream, Duration::from_millis(50), 3).await;
/// assert_eq!(first.items, [1, 2, 3]);
/// let rest = batch_async(&mut stream, Duration::from_millis(50), 3).await;
/// assert_eq!(rest.items, [4, 5]);
/// assert!(rest.ended);
/// # }
/// ```
pub async fn batch_async<S>(stream: &mut S, timeout: Duration, size: usize) -> Batched<S::Item>
where
    S: Stream + Unpin,
{
    let size = size.max(1);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut items = Vec::new();
    while items.len() < size {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return Batched { items, ended: true },
            Err(_) => break,
        }
    }
    Batched {
        items,
        ended: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn batch_async_stops_at_the_timeout_and_keeps_what_is_late() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<u32>();
        let mut rx = rx;
        tx.unbounded_send(1).unwrap();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tx.unbounded_send(2).unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            tx.unbounded_send(3).unwrap();
            // `tx` dropped: the stream ends.
        });
        let start = tokio::time::Instant::now();
        let first = batch_async(&mut rx, Duration::from_millis(50), 10).await;
        assert_eq!(first.items, [1, 2]);
        assert!(!first.ended);
        assert_eq!(start.elapsed(), Duration::from_millis(50));
        // Item 3 arrives at 130 ms, inside the second window.
        let second = batch_async(&mut rx, Duration::from_millis(100), 10).await;
        assert_eq!(second.items, [3]);
        assert!(second.ended, "the stream ended with the sender");
        sender.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn batch_async_returns_as_soon_as_the_batch_is_full() {
        let mut stream = futures::stream::iter(0..100u32);
        let start = tokio::time::Instant::now();
        let got = batch_async(&mut stream, Duration::from_secs(60), 7).await;
        assert_eq!(got.items, (0..7).collect::<Vec<_>>());
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[test]
    fn batch_getter_stops_at_size_empty_and_end() {
        let mut n = 0;
        let got = batch_getter(
            || {
                n += 1;
                Next::Item(n)
            },
            3,
        );
        assert_eq!(got.items, [1, 2, 3]);
        let mut items = vec![Next::Item(1), Next::End, Next::Item(2)].into_iter();
        let got = batch_getter(|| items.next().unwrap_or(Next::Empty), 10);
        assert_eq!(
            got,
            Batched {
                items: vec![1],
                ended: true
            }
        );
        let got = batch_getter(|| Next::<u8>::Empty, 10);
        assert!(got.items.is_empty() && !got.ended);
    }

    #[test]
    fn batch_getter_ex_returns_the_items_before_an_error() {
        let mut calls = 0;
        let got = batch_getter_ex(
            || {
                calls += 1;
                if calls < 3 {
                    Ok(Some(calls))
                } else {
                    Err("broken")
                }
            },
            10,
            |e| *e == "empty",
        );
        assert_eq!(got, Err((vec![1, 2], "broken")));
        let mut left = 2;
        let got = batch_getter_ex(
            || {
                if left == 0 {
                    return Err("empty");
                }
                left -= 1;
                Ok(Some(left))
            },
            10,
            |e| *e == "empty",
        );
        assert_eq!(
            got,
            Ok(Batched {
                items: vec![1, 0],
                ended: false
            })
        );
    }
}
