//! Retrying a failed push: transient errors and timeouts are tried again
//! with backoff, permanent ones are not, and the deadline bounds it all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{
    BoxError, Link, Outlet, OutletHandle, Permanent, Record, RetryPolicy, Update, async_trait,
};

/// Fails its first `failures` pushes (permanently if told), then collects.
#[derive(Clone)]
struct Flaky {
    failures: usize,
    permanent: bool,
    calls: Arc<AtomicUsize>,
    out: CollectOutlet,
}

#[async_trait]
impl Outlet for Flaky {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            if self.permanent {
                return Err(Permanent::new("credentials refused").into());
            }
            return Err("connection reset".into());
        }
        self.out.push(records, update).await
    }
}

fn flaky(failures: usize, permanent: bool) -> Flaky {
    Flaky {
        failures,
        permanent,
        calls: Arc::default(),
        out: CollectOutlet::new(),
    }
}

fn link(outlet: OutletHandle) -> Link {
    Link::builder("retrying")
        .inlet(StaticInlet::values([1, 2]))
        .outlet(outlet)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_is_tried_again_with_backoff() {
    let f = flaky(2, false);
    let handle = OutletHandle::builder(f.clone())
        .retry(RetryPolicy::new(3).initial(Duration::from_millis(100)))
        .build();
    let l = link(handle.clone());
    let start = tokio::time::Instant::now();
    l.transfer().await.unwrap();
    let waited = start.elapsed();
    // 50..100 ms, then 100..200 ms.
    assert!(
        waited >= Duration::from_millis(150) && waited <= Duration::from_millis(300),
        "{waited:?}"
    );
    assert_eq!(f.calls.load(Ordering::SeqCst), 3);
    assert_eq!(handle.retries(), 2);
    assert_eq!(f.out.len(), 2, "delivered once");
}

#[tokio::test(start_paused = true)]
async fn the_attempts_run_out_and_the_error_says_how_many() {
    let f = flaky(10, false);
    let handle = OutletHandle::builder(f.clone())
        .retry(RetryPolicy::new(3))
        .build();
    let e = link(handle).transfer().await.unwrap_err().to_string();
    assert!(
        e.contains("connection reset") && e.contains("after 3 attempts"),
        "{e}"
    );
    assert_eq!(f.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_not_tried_again() {
    let f = flaky(10, true);
    let handle = OutletHandle::builder(f.clone())
        .retry(RetryPolicy::new(5))
        .build();
    let e = link(handle.clone())
        .transfer()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("credentials refused") && !e.contains("attempts"),
        "{e}"
    );
    assert_eq!(f.calls.load(Ordering::SeqCst), 1);
    assert_eq!(handle.retries(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_the_retries_early() {
    let f = flaky(100, false);
    let handle = OutletHandle::builder(f.clone())
        .retry(
            RetryPolicy::new(100)
                .initial(Duration::from_millis(100))
                .max_delay(Duration::from_millis(100))
                .deadline(Duration::from_millis(450)),
        )
        .build();
    let start = tokio::time::Instant::now();
    assert!(link(handle).transfer().await.is_err());
    assert!(
        start.elapsed() <= Duration::from_millis(450),
        "{:?}",
        start.elapsed()
    );
    let calls = f.calls.load(Ordering::SeqCst);
    assert!(
        (5..=10).contains(&calls),
        "{calls} calls within the deadline"
    );
}
