//! CPU-heavy work kept off the threads that drive timers and I/O.
//!
//! The async worker threads run every link's timers, pulls and pushes. A
//! large batch through a jq `map`, or half a million lines parsed from
//! JSON, would hold one of them for a long while and make every other
//! link's transfer late. So heavy work (a link's processors on a batch of
//! at least [`HEAVY_BATCH`] records, and the connectors' parsing and
//! encoding of such batches) runs through [`run`] or [`run_async`]:
//!
//! - on a multi-threaded runtime, in
//!   [`block_in_place`](tokio::task::block_in_place): the worker thread
//!   hands its other tasks to another thread before it starts, so timers
//!   and I/O go on being served;
//! - at most [`threads`] jobs at once (one less than the cores, at least
//!   one; [`set_threads`] changes it): more heavy links queue for a turn
//!   (one job may still spread its parts over every core, see [`split`]);
//! - on a current-thread runtime (tests, `--threads 1`), as is.
//!
//! Heavy work started from inside heavy work runs in place (it already
//! holds a turn).
//!
//! Work that prepares a link's next batch while its current one is
//! processed (an inlet reading and parsing ahead) goes through
//! [`run_ahead`]: the same, with turns of its own, so that it overlaps
//! with the processing instead of queueing behind it, and is bounded the
//! same way.
//!
//! Inside heavy work, [`split`] spreads independent parts of it (pieces
//! of a large batch) over the cores, on one pool of [`split_threads`]
//! threads that every link shares, and gives the results back in order.
//! The parts run outside the async runtime: they are synchronous work.

use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Semaphore;

/// A batch of at least this many records is heavy work.
pub const HEAVY_BATCH: usize = 1024;

/// `usize::MAX` until set: then the default applies.
static THREADS: AtomicUsize = AtomicUsize::new(usize::MAX);
static TURNS: OnceLock<Semaphore> = OnceLock::new();
static AHEAD_TURNS: OnceLock<Semaphore> = OnceLock::new();
/// `usize::MAX` until set: then the default applies.
static SPLIT_THREADS: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The pool [`split`] runs parts on; `None` if it could not be started.
static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// How many heavy jobs may run at once: one less than the cores (at least
/// one), unless [`set_threads`] said otherwise; 0 when heavy work runs in
/// place.
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        usize::MAX => std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .max(1),
        n => n,
    }
}

/// Sets how many heavy jobs may run at once; 0 runs heavy work in place,
/// on the async workers (for comparison: the other links' timers then wait
/// for it). Takes effect only before the first heavy job; returns whether
/// it did.
pub fn set_threads(n: usize) -> bool {
    if TURNS.get().is_some() {
        return false;
    }
    THREADS.store(n, Ordering::Relaxed);
    true
}

/// How many parts of heavy work [`split`] runs at once: the cores this
/// process may use, unless [`set_split_threads`] said otherwise.
pub fn split_threads() -> usize {
    match SPLIT_THREADS.load(Ordering::Relaxed) {
        usize::MAX => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n.max(1),
    }
}

/// Sets how many parts of heavy work [`split`] runs at once (1: one after
/// the other, on the thread doing the work). Takes effect only before the
/// first split; returns whether it did.
pub fn set_split_threads(n: usize) -> bool {
    if POOL.get().is_some() {
        return false;
    }
    SPLIT_THREADS.store(n, Ordering::Relaxed);
    true
}

fn pool() -> Option<&'static rayon::ThreadPool> {
    POOL.get_or_init(|| {
        let threads = split_threads();
        if threads < 2 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("databay-compute-{i}"))
            .build()
            .inspect_err(|e| {
                tracing::warn!(
                    error = %e,
                    "the compute pool could not start: large batches are processed on one core"
                );
            })
            .ok()
    })
    .as_ref()
}

/// Runs `f` on each of `parts` and returns the results in the order of
/// the parts. Inside heavy work (in [`run`], [`run_async`] or
/// [`run_ahead`]) on a multi-threaded runtime, and when [`split_threads`]
/// is above 1, several parts run at once on the compute pool while the
/// caller waits (each part inside the caller's tracing span, but outside
/// the async runtime: `f` must not use tokio); elsewhere they run one
/// after the other, in place. A panic in `f` reaches the caller.
///
/// ```
/// # #[tokio::main] async fn main() {
/// use databay_core::compute::{run, split};
/// let sums = run(|| split(vec![1..4, 4..7], |r| r.sum::<i32>())).await;
/// assert_eq!(sums, [6, 15]);
/// # }
/// ```
pub fn split<T, R, F>(parts: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    use rayon::prelude::*;
    let parallel = parts.len() >= 2 && INSIDE.with(Cell::get);
    // The pool starts with the first split that uses it.
    let Some(pool) = parallel.then(pool).flatten() else {
        return parts.into_iter().map(f).collect();
    };
    let span = tracing::Span::current();
    pool.install(|| {
        parts
            .into_par_iter()
            .map(|part| span.in_scope(|| f(part)))
            .collect()
    })
}

fn turns() -> &'static Semaphore {
    TURNS.get_or_init(|| Semaphore::new(threads()))
}

fn ahead_turns() -> &'static Semaphore {
    // The threads are fixed once the first heavy job of either kind ran.
    let _ = turns();
    AHEAD_TURNS.get_or_init(|| Semaphore::new(threads()))
}

fn offloads() -> bool {
    threads() > 0
        && !INSIDE.with(Cell::get)
        && Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
}

/// Marks the thread as inside heavy work for as long as it lives.
struct Inside;

impl Inside {
    fn enter() -> Self {
        INSIDE.with(|i| i.set(true));
        Inside
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.with(|i| i.set(false));
    }
}

/// Runs `f`, heavy synchronous work, where it does not hold up timers and
/// I/O (see the module docs), after waiting for a turn.
///
/// ```
/// # #[tokio::main] async fn main() {
/// let sum = databay_core::compute::run(|| (0..1_000_000u64).sum::<u64>()).await;
/// assert_eq!(sum, 499_999_500_000);
/// # }
/// ```
pub async fn run<T>(f: impl FnOnce() -> T) -> T {
    if !offloads() {
        return f();
    }
    // The semaphore is never closed: the error arm cannot happen, and
    // would only mean running without a turn.
    let _turn = turns().acquire().await.ok();
    tokio::task::block_in_place(|| {
        let _inside = Inside::enter();
        f()
    })
}

/// Runs `fut`, a future doing heavy work (a link's processors), as [`run`]
/// does: driven to its end on the worker that left the runtime's other
/// tasks to another thread.
pub async fn run_async<F: Future>(fut: F) -> F::Output {
    offload(turns(), fut).await
}

/// Drives `fut` to its end off the async workers, after taking one of
/// `turns`; as is where heavy work runs in place.
async fn offload<F: Future>(turns: &Semaphore, fut: F) -> F::Output {
    if !offloads() {
        return fut.await;
    }
    let _turn = turns.acquire().await.ok();
    tokio::task::block_in_place(|| {
        let _inside = Inside::enter();
        Handle::current().block_on(fut)
    })
}

/// Runs `fut`, heavy work that prepares the next batch of a link (an
/// inlet reading and parsing ahead, in a task of its own) while the link
/// processes its current one, as [`run_async`] does but with turns of its
/// own: at most [`threads`] such jobs at once, beside as many of
/// [`run_async`]'s.
///
/// ```
/// # #[tokio::main] async fn main() {
/// let next = tokio::spawn(databay_core::compute::run_ahead(async { 40 + 2 }));
/// assert_eq!(next.await.unwrap(), 42);
/// # }
/// ```
pub async fn run_ahead<F: Future>(fut: F) -> F::Output {
    offload(ahead_turns(), fut).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spins for `ms` milliseconds on the calling thread.
    fn spin(ms: u64) -> u64 {
        let start = std::time::Instant::now();
        let mut spins = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(ms) {
            spins = spins.wrapping_add(1);
        }
        spins
    }

    /// The longest wait between ticks of a 10 ms timer over 600 ms, on a
    /// runtime with one worker that `busy` occupies for 800 ms.
    async fn longest_gap_beside(busy: impl Future<Output = u64> + Send + 'static) -> u128 {
        let ticker = tokio::spawn(async {
            let mut longest = 0;
            let start = std::time::Instant::now();
            let mut last = start;
            while start.elapsed() < std::time::Duration::from_millis(600) {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                longest = longest.max(last.elapsed().as_millis());
                last = std::time::Instant::now();
            }
            longest
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let busy = tokio::spawn(busy);
        assert!(busy.await.unwrap() > 0);
        ticker.await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn heavy_work_leaves_the_timers_running() {
        // The one worker is busy for 800 ms: the timer keeps ticking only
        // because the heavy work left the worker's other tasks to another
        // thread.
        let gap = longest_gap_beside(run(|| spin(800))).await;
        assert!(gap < 400, "the timer stalled for {gap} ms");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_same_work_in_place_stalls_them() {
        // What the test above guards against: without `run`, the timer
        // waits for the busy worker.
        let gap = longest_gap_beside(async { spin(800) }).await;
        assert!(gap >= 400, "a gap of {gap} ms: the worker was not held");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nested_heavy_work_runs_in_place() {
        let inner = run_async(async { run(|| 7).await }).await;
        assert_eq!(inner, 7);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_ahead_overlaps_with_heavy_work() {
        // One turn of each kind at least: the work ahead does not wait for
        // the heavy job to end. Each tells the other it started, then
        // waits (a bounded while) to hear that the other did too.
        use std::sync::mpsc;
        use std::time::Duration;
        let (to_ahead, from_heavy) = mpsc::channel();
        let (to_heavy, from_ahead) = mpsc::channel();
        let meet = |tell: mpsc::Sender<()>, hear: mpsc::Receiver<()>| {
            let _ = tell.send(());
            hear.recv_timeout(Duration::from_secs(10)).is_ok()
        };
        let heavy = tokio::spawn(run(move || meet(to_ahead, from_ahead)));
        let ahead = tokio::spawn(run_ahead(async move { meet(to_heavy, from_heavy) }));
        assert!(
            heavy.await.unwrap(),
            "the heavy job never saw the work ahead start"
        );
        assert!(
            ahead.await.unwrap(),
            "the work ahead never saw the heavy job start"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_current_thread_runtime_runs_it_as_is() {
        assert_eq!(run(|| 1 + 1).await, 2);
        assert_eq!(run_async(async { 3 }).await, 3);
        assert_eq!(run_ahead(async { 4 }).await, 4);
    }
}
