//! An unbounded many-to-one queue for the driver's own channels: what a connection's writer
//! is given to write, and what a node's I/O tasks report to its loop.
//!
//! tokio's unbounded channel allocates a block of 32 slots when it is created, whether or
//! not anything is ever sent; with a node per member and four MSRP connections per member
//! those empty blocks were a large part of a big group's memory (README, "The bench
//! table"). This queue allocates nothing until the first item and holds only what waits.
//! Same rules as the channel it replaces: items come out in the order they went in; a send
//! fails once the receiver is gone (and hands the item back); the receiver gets every item
//! sent before the last sender went, then `None`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    receiver: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// One permit at most: a send while the receiver is not waiting is kept for its next wait.
    ready: Notify,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock leaves the queue as it was (push and pop only).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing queued; a sender is still there.
    Empty,
    /// Nothing queued and every sender is gone.
    Disconnected,
}

pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            receiver: true,
        }),
        ready: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Queues `item`, or gives it back when the receiver is gone.
    pub fn send(&self, item: T) -> Result<(), T> {
        {
            let mut s = self.shared.lock();
            if !s.receiver {
                return Err(item);
            }
            s.items.push_back(item);
        }
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let last = {
            let mut s = self.shared.lock();
            s.senders -= 1;
            s.senders == 0
        };
        if last {
            self.shared.ready.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut s = self.shared.lock();
        match s.items.pop_front() {
            Some(item) => {
                // A burst's room goes back once it is over (an idle member holds none).
                if s.items.is_empty() && s.items.capacity() > 64 {
                    s.items = VecDeque::new();
                }
                Ok(item)
            }
            None if s.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// The next item; `None` once every sender is gone and nothing is left. Cancel-safe: an
    /// item is taken only when this returns it.
    pub async fn recv(&mut self) -> Option<T> {
        // Takes a unit of the task's cooperative budget, as tokio's own channels do: a loop
        // that always finds an item still yields to the runtime now and then (before an item
        // is taken, so a cancelled wait loses nothing).
        tokio::task::coop::consume_budget().await;
        loop {
            // Registered before looking, so a send between the look and the wait is not
            // missed (it leaves a permit when nobody waits).
            let ready = self.shared.ready.notified();
            match self.try_recv() {
                Ok(item) => return Some(item),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => ready.await,
            }
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // What is still queued goes now (it may pin read slabs), outside the lock.
        let items = {
            let mut s = self.shared.lock();
            s.receiver = false;
            std::mem::take(&mut s.items)
        };
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_order_then_none_after_the_last_sender() {
        let (tx, mut rx) = unbounded();
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        tx2.send(2).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        drop(tx);
        tx2.send(3).unwrap();
        drop(tx2);
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(3));
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn a_send_after_the_receiver_went_fails_and_gives_the_item_back() {
        let (tx, rx) = unbounded();
        drop(rx);
        assert_eq!(tx.send(7), Err(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_receiver_is_woken_by_senders_on_other_threads() {
        let (tx, mut rx) = unbounded::<u32>();
        let mut joins = Vec::new();
        for t in 0..4u32 {
            let tx = tx.clone();
            joins.push(tokio::spawn(async move {
                for i in 0..10_000u32 {
                    tx.send(t * 100_000 + i).unwrap();
                    if i % 1000 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        drop(tx);
        let mut last = [None::<u32>; 4];
        let mut n = 0;
        while let Some(v) = rx.recv().await {
            let t = (v / 100_000) as usize;
            assert!(
                last[t].is_none_or(|p| p < v),
                "one sender's items stay in order"
            );
            last[t] = Some(v);
            n += 1;
        }
        assert_eq!(n, 40_000);
        for j in joins {
            j.await.unwrap();
        }
    }
}
