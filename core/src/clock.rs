//! The engine's monotonic clock. It reads tokio's clock so that tests can
//! pause and advance time (`tokio::time::pause`) and see schedules, buffers
//! and timers follow; outside tests it is `std::time::Instant::now()`.

use std::time::Instant;

/// The current instant on the engine's clock.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
