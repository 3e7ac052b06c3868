//! Waiting for a peer's outbound queue to empty (crossws's `peer.waitForDrain()`).
//!
//! A waiter registers its waker while the queue holds bytes; the writer wakes every waiter
//! when the queue reaches zero, and the connection task when the peer is gone. The writer
//! pays one atomic load per frame while nobody waits: the lock is taken only when the
//! `waiting` flag is set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::Waker;

#[derive(Debug, Default)]
pub(crate) struct Drain {
    /// Set (before the queue is checked) by a waiter that registered; cleared by `wake`.
    waiting: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Drain {
    /// Whether the wait is over (`done()`: the queue is empty or the peer is gone); when not,
    /// keeps `waker` to wake once it is.
    ///
    /// No wake-up is lost: the flag is set before `done` is checked, so a writer that empties
    /// the queue after that check sees the flag and takes the lock, which this call holds
    /// until the waker is stored.
    pub(crate) fn poll(&self, waker: &Waker, done: impl Fn() -> bool) -> bool {
        let mut wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        self.waiting.store(true, Ordering::SeqCst);
        if done() {
            return true;
        }
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
        false
    }

    /// Wakes every waiter (the queue just emptied, or the peer is gone).
    pub(crate) fn wake(&self) {
        if !self.waiting.load(Ordering::SeqCst) {
            return;
        }
        let wakers = {
            let mut wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
            self.waiting.store(false, Ordering::SeqCst);
            std::mem::take(&mut *wakers)
        };
        for waker in wakers {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn waiters_are_woken_once_when_done() {
        let drain = Drain::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        assert!(drain.poll(&waker, || true));
        assert!(!drain.poll(&waker, || false));
        assert!(!drain.poll(&waker, || false), "registered once");
        drain.wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        drain.wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "nobody waits any more");
    }

    #[test]
    fn no_lost_wake_ups_across_threads() {
        for _ in 0..200 {
            let drain = Arc::new(Drain::default());
            let queued = Arc::new(AtomicUsize::new(1));
            let count = Arc::new(Count(AtomicUsize::new(0)));
            let waker = Waker::from(count.clone());
            let writer = {
                let (drain, queued) = (drain.clone(), queued.clone());
                std::thread::spawn(move || {
                    queued.store(0, Ordering::SeqCst);
                    drain.wake();
                })
            };
            let done = drain.poll(&waker, || queued.load(Ordering::SeqCst) == 0);
            writer.join().unwrap();
            assert!(done || count.0.load(Ordering::SeqCst) == 1);
        }
    }
}
