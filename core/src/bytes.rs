//! Bytes a connector moved: what an inlet read from its source in a pull
//! and what an outlet wrote to its destination in a push (Vector's
//! `component_received_bytes` and `component_sent_bytes`).
//!
//! Only the connector knows the size on the wire (a response body, a file's
//! lines, a `COPY` stream), and estimating it in the core would mean
//! encoding every record once more. So a connector counts its bytes with
//! [`add`] from inside `pull` or `push`, and the link adds them to that
//! node's counters; a connector that never calls it reports no bytes
//! (`None`, not 0).

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    /// The bytes counted by the call being metered; `None` until [`add`]
    /// is first called.
    static METER: Cell<Option<u64>>;
}

/// Counts `n` bytes toward the node whose call is running: bytes read from
/// the source in an [`Inlet::pull`](crate::Inlet::pull), or written to the
/// destination in an [`Outlet::push`](crate::Outlet::push). Call it from the
/// pull or push itself (its task): bytes counted in a task it spawns, or
/// outside a pull or push, are not seen, and the call does nothing.
///
/// ```
/// use databay_core::{async_trait, BoxError, Inlet, Pull, Update};
///
/// struct Greeting;
///
/// #[async_trait]
/// impl Inlet for Greeting {
///     async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
///         let body = "\"hello\"";
///         databay_core::bytes::add(body.len() as u64);
///         Ok(Pull::value(serde_json::from_str::<serde_json::Value>(body)?))
///     }
/// }
/// ```
pub fn add(n: u64) {
    // Outside a metered call there is no meter: nothing to count.
    let _ = METER.try_with(|m| m.set(Some(m.get().unwrap_or(0).saturating_add(n))));
}

/// Runs `call` with a fresh meter; returns its output and the bytes it
/// counted (`None` if it called [`add`] not once).
pub(crate) async fn metered<F: Future>(call: F) -> (F::Output, Option<u64>) {
    METER
        .scope(Cell::new(None), async move {
            let out = call.await;
            (out, METER.with(Cell::get))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_inside_a_metered_call_only() {
        add(5);
        let ((), none) = metered(async {}).await;
        assert_eq!(none, None);
        let ((), some) = metered(async {
            add(3);
            tokio::task::yield_now().await;
            add(4);
        })
        .await;
        assert_eq!(some, Some(7));
        let ((), zero) = metered(async { add(0) }).await;
        assert_eq!(zero, Some(0), "reporting 0 bytes is still reporting");
    }

    #[tokio::test]
    async fn concurrent_calls_keep_their_own_count() {
        let a = metered(async {
            for _ in 0..10 {
                add(1);
                tokio::task::yield_now().await;
            }
        });
        let b = metered(async {
            for _ in 0..10 {
                add(100);
                tokio::task::yield_now().await;
            }
        });
        let (((), a), ((), b)) = futures::join!(a, b);
        assert_eq!((a, b), (Some(10), Some(1000)));
    }
}
