//! What inlet and outlet handles share: a name, a start/shutdown lifecycle
//! counted across the links that use the instance, and guarded calls into
//! user code (panics caught, timeouts enforced).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;

use crate::error::{BoxError, Failure};

/// Runs one call into user code: a panic becomes [`Failure::Panic`], an
/// overrun of `timeout` becomes [`Failure::Timeout`].
pub(crate) async fn guarded<T, F>(fut: F, timeout: Option<Duration>) -> Result<T, Failure>
where
    F: Future<Output = Result<T, BoxError>>,
{
    let fut = AssertUnwindSafe(fut).catch_unwind();
    let caught = match timeout {
        Some(limit) => tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| Failure::Timeout(limit))?,
        None => fut.await,
    };
    match caught {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failure::Error(e)),
        Err(panic) => Err(Failure::Panic(panic_message(panic.as_ref()))),
    }
}

/// Runs synchronous user code with panics caught.
pub(crate) fn guarded_sync<T>(f: impl FnOnce() -> Result<T, BoxError>) -> Result<T, Failure> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failure::Error(e)),
        Err(panic) => Err(Failure::Panic(panic_message(panic.as_ref()))),
    }
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// The short name of a type: `databay_inlets::FileInlet` -> `FileInlet`.
pub(crate) fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

/// Start/shutdown bookkeeping of one node instance: `on_start` runs when
/// the first link starts using it, `on_shutdown` when the last one stops.
#[derive(Default)]
pub(crate) struct Lifecycle {
    users: tokio::sync::Mutex<usize>,
    active: AtomicBool,
}

impl Lifecycle {
    pub(crate) fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Registers one more user; runs `start` if it is the first.
    pub(crate) async fn acquire<F, Fut>(&self, start: F) -> Result<(), Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), Failure>>,
    {
        let mut users = self.users.lock().await;
        if *users == 0 {
            start().await?;
            self.active.store(true, Ordering::Release);
        }
        *users += 1;
        Ok(())
    }

    /// Unregisters one user; runs `stop` if it was the last.
    pub(crate) async fn release<F, Fut>(&self, stop: F) -> Result<(), Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), Failure>>,
    {
        let mut users = self.users.lock().await;
        match *users {
            0 => Ok(()),
            1 => {
                *users = 0;
                self.active.store(false, Ordering::Release);
                stop().await
            }
            _ => {
                *users -= 1;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn guarded_catches_panics_and_timeouts() {
        let r: Result<(), _> = guarded(async { panic!("boom") }, None).await;
        assert!(matches!(r, Err(Failure::Panic(m)) if m == "boom"));
        let r: Result<(), _> = guarded(
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            },
            Some(Duration::from_millis(10)),
        )
        .await;
        assert!(matches!(r, Err(Failure::Timeout(_))));
        let r = guarded_sync(|| -> Result<u8, BoxError> { panic!("{}", 42) });
        assert!(matches!(r, Err(Failure::Panic(m)) if m == "42"));
    }

    #[test]
    fn short_names() {
        assert_eq!(short_type_name::<Lifecycle>(), "Lifecycle");
        assert_eq!(short_type_name::<Vec<u8>>(), "Vec");
    }
}
