//! Poison-tolerant locking for the engine's short critical sections.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking over a poisoned lock. The engine never panics while
/// holding one of its locks, and user code that runs under one (a buffer's
/// controllers) is caught and leaves the data consistent, so poisoning
/// carries no information here: propagating it would only turn one caught
/// panic into a panic in every later caller.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_taken_over() {
        let m = Mutex::new(1);
        let poisoned = std::panic::catch_unwind(|| {
            let _guard = m.lock();
            panic!("poison it");
        });
        assert!(poisoned.is_err());
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
    }
}
