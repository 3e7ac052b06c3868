//! A single-producer, single-consumer async queue that holds no memory while it is empty.
//!
//! Each peer has two queues (frames to write, events for its hooks). tokio's `mpsc` allocates a
//! block of 32 slots per channel up front, about 3 KiB per peer for the two, which is a fifth
//! of what an idle peer costs; this queue allocates on the first item and frees its buffer
//! whenever it is drained, so 10 000 idle peers hold nothing here.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    sender_gone: bool,
    receiver_gone: bool,
}

#[derive(Debug)]
struct Inner<T> {
    state: Mutex<State<T>>,
    /// At most this many items wait (`None`: no bound).
    capacity: Option<usize>,
    item_ready: Notify,
    space_ready: Notify,
}

impl<T> Inner<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // Nothing can panic while the lock is held.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending half.
#[derive(Debug)]
pub(crate) struct Sender<T> {
    inner: Arc<Inner<T>>,
}

/// The receiving half.
#[derive(Debug)]
pub(crate) struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

/// A queue of at most `capacity` items (`None`: unbounded).
pub(crate) fn queue<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            items: VecDeque::new(),
            sender_gone: false,
            receiver_gone: false,
        }),
        capacity,
        item_ready: Notify::new(),
        space_ready: Notify::new(),
    });
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

impl<T> Sender<T> {
    /// Queues `item` at once, ignoring the bound. `Err` gives it back when the receiver is gone.
    pub(crate) fn send_now(&self, item: T) -> Result<(), T> {
        let mut state = self.inner.lock();
        if state.receiver_gone {
            return Err(item);
        }
        state.items.push_back(item);
        drop(state);
        self.inner.item_ready.notify_one();
        Ok(())
    }

    /// Queues `item`, waiting while the queue is full. `Err` when the receiver is gone.
    pub(crate) async fn send(&self, item: T) -> Result<(), T> {
        loop {
            let space = self.inner.space_ready.notified();
            {
                let mut state = self.inner.lock();
                if state.receiver_gone {
                    return Err(item);
                }
                if self
                    .inner
                    .capacity
                    .is_none_or(|capacity| state.items.len() < capacity)
                {
                    state.items.push_back(item);
                    drop(state);
                    self.inner.item_ready.notify_one();
                    return Ok(());
                }
            }
            space.await;
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.inner.lock().sender_gone = true;
        self.inner.item_ready.notify_one();
    }
}

impl<T> Receiver<T> {
    /// The next item, or `None` once the sender is gone and the queue is empty.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        loop {
            let ready = self.inner.item_ready.notified();
            {
                let mut state = self.inner.lock();
                if let Some(item) = pop(&mut state) {
                    drop(state);
                    self.inner.space_ready.notify_one();
                    return Some(item);
                }
                if state.sender_gone {
                    return None;
                }
            }
            ready.await;
        }
    }

    /// The next item if one is waiting.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        let item = pop(&mut self.inner.lock());
        if item.is_some() {
            self.inner.space_ready.notify_one();
        }
        item
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        state.receiver_gone = true;
        // What is still queued is never read: free it now.
        let items = std::mem::take(&mut state.items);
        drop(state);
        drop(items);
        self.inner.space_ready.notify_one();
    }
}

/// Pops the front item; a drained queue gives its buffer back.
fn pop<T>(state: &mut State<T>) -> Option<T> {
    let item = state.items.pop_front();
    if state.items.is_empty() && state.items.capacity() > 0 {
        state.items = VecDeque::new();
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn order_bound_and_ends() {
        let (tx, mut rx) = queue(Some(2));
        tx.send(1).await.unwrap();
        tx.send(2).await.unwrap();
        tx.send_now(3).unwrap(); // past the bound on purpose
        let blocked = tokio::spawn(async move {
            tx.send(4).await.unwrap();
            tx
        });
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.recv().await, Some(3));
        let tx = blocked.await.unwrap();
        assert_eq!(rx.recv().await, Some(4));
        assert_eq!(rx.try_recv(), None);
        assert_eq!(rx.inner.lock().items.capacity(), 0, "drained: no buffer");
        drop(tx);
        assert_eq!(rx.recv().await, None);

        let (tx, rx) = queue::<u8>(None);
        drop(rx);
        assert_eq!(tx.send_now(1), Err(1));
        assert_eq!(tx.send(2).await, Err(2));
    }
}
