//! [`channel`]: a bounded queue from any number of senders to one receiver, for async drivers,
//! that holds memory only for what it holds.
//!
//! An async client keeps two queues for as long as it lives (commands from its handles to its
//! task, events from the task to the application), and most of that time they are empty. tokio's
//! bounded `mpsc` allocates a block of 32 slots when it is made and keeps one block however empty
//! it gets: 3 KiB for a 96-byte command, a fifth of an idle client. This queue is a `VecDeque`
//! behind a mutex: it starts with no allocation, grows with what is queued, and
//! [`Sender::shrink`]/[`Receiver::shrink`] give the room back once it is empty again.
//!
//! It is runtime-agnostic (a mutex and [`Waker`]s). Each side takes the lock once per operation,
//! and wakes the other only when it waits: a receiver that found the queue empty, senders that
//! found it full. [`Receiver::recv_many`] takes a whole burst in one lock.
//!
//! Two ways around the order and the bound serve a client whose task stops taking publishes
//! while the broker's window is full: [`Receiver::poll_recv_first`] takes the first item of a kind
//! out of turn, and [`Sender::send_past_capacity`] queues an item that must not wait for room.
//!
//! For drivers: [`PollSender`] waits for room from a hand-written future's `poll`, and
//! [`FairReceiver`] makes a stream that always finds items waiting yield now and then.
//!
//! ```
//! use sansmq_driver::channel::{self, TryRecvError, TrySendError};
//!
//! let (tx, mut rx) = channel::channel::<u32>(2);
//! tx.try_send(1).unwrap();
//! tx.try_send(2).unwrap();
//! assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
//! assert_eq!(rx.try_recv(), Ok(1));
//! drop(tx);
//! assert_eq!(rx.try_recv(), Ok(2), "what was sent is received after the senders are gone");
//! assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// A queue holding at most `capacity` items (at least 1), and its two ends.
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            receiver: None,
            senders_waiting: Vec::new(),
            next_waiter: 0,
        }),
        capacity: capacity.max(1),
        senders: AtomicUsize::new(1),
        receiver_gone: AtomicBool::new(false),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    )
}

/// Why [`Sender::try_send`] gave its item back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue holds its capacity.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// [`Sender::send`]'s item, given back because the receiver is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// The receiver is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Why [`Receiver::try_recv`] has nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued; senders remain.
    Empty,
    /// Nothing is queued and every sender is gone.
    Disconnected,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    /// Counted outside the lock, so that cloning a sender (a route per message) costs no lock.
    senders: AtomicUsize,
    /// Set under the lock, read outside it by [`Sender::is_closed`].
    receiver_gone: AtomicBool,
}

struct State<T> {
    queue: VecDeque<T>,
    /// The receiver found the queue empty and waits.
    receiver: Option<Waker>,
    /// Senders that found the queue full, by the number of their wait: all are woken when room
    /// appears. A wait that ends otherwise (a `send` given up, under a timeout) takes its entry
    /// out, so a long stall cannot pile up wakers.
    senders_waiting: Vec<(u64, Waker)>,
    next_waiter: u64,
}

impl<T> Shared<T> {
    /// The lock; no code panics while holding it, and a poisoned one holds a consistent queue.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Empties the queue's allocation if it holds nothing; what it held is dropped by the caller,
    /// outside the lock.
    fn shrink(&self) -> Option<VecDeque<T>> {
        let mut state = self.lock();
        if !state.queue.is_empty() || state.queue.capacity() == 0 {
            return None;
        }
        if state.senders_waiting.is_empty() {
            state.senders_waiting = Vec::new();
        }
        Some(std::mem::take(&mut state.queue))
    }
}

/// Stores `waker` in `slot` unless it wakes the same task; returns the one it replaced, to be
/// dropped once the lock is released (dropping a waker may drop a task, and what it holds).
fn register(slot: &mut Option<Waker>, waker: &Waker) -> Option<Waker> {
    match slot {
        Some(old) if old.will_wake(waker) => None,
        _ => slot.replace(waker.clone()),
    }
}

/// Queues `value` and wakes the receiver if it waits, after releasing the lock.
fn push<T>(mut state: MutexGuard<'_, State<T>>, value: T) {
    state.queue.push_back(value);
    let receiver = state.receiver.take();
    drop(state);
    if let Some(waker) = receiver {
        waker.wake();
    }
}

/// The senders waiting for room, taken out to be woken once the lock is released, if a receive
/// left room (the queue can be past its capacity after [`Sender::send_past_capacity`]); they stay
/// listed otherwise, for the receive that does.
fn senders_to_wake<T>(state: &mut State<T>, capacity: usize) -> Vec<(u64, Waker)> {
    if state.queue.len() < capacity {
        std::mem::take(&mut state.senders_waiting)
    } else {
        Vec::new()
    }
}

fn wake_all(wakers: Vec<(u64, Waker)>) {
    for (_, waker) in wakers {
        waker.wake();
    }
}

/// A sender's wait for room: its entry in [`State::senders_waiting`], taken out when the wait
/// ends, however it ends.
struct Waiting<'a, T> {
    shared: &'a Shared<T>,
    /// The wait's number once it registered.
    id: Option<u64>,
}

impl<'a, T> Waiting<'a, T> {
    fn new(shared: &'a Shared<T>) -> Self {
        Self { shared, id: None }
    }

    fn register(&mut self, state: &mut State<T>, waker: &Waker) -> Option<Waker> {
        register_wait(state, &mut self.id, waker)
    }
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        end_wait(self.shared, &mut self.id);
    }
}

/// Registers (again) the wait numbered `id` (numbered now if it has no number yet) to be woken
/// when room appears; returns a replaced waker to drop once the lock is released.
fn register_wait<T>(state: &mut State<T>, id: &mut Option<u64>, waker: &Waker) -> Option<Waker> {
    if let Some(id) = *id {
        if let Some((_, old)) = state.senders_waiting.iter_mut().find(|(i, _)| *i == id) {
            return (!old.will_wake(waker)).then(|| std::mem::replace(old, waker.clone()));
        }
    }
    let id = *id.get_or_insert_with(|| {
        state.next_waiter += 1;
        state.next_waiter
    });
    state.senders_waiting.push((id, waker.clone()));
    None
}

/// Takes the wait numbered `id` out of the list, if it registered.
fn end_wait<T>(shared: &Shared<T>, id: &mut Option<u64>) {
    let Some(id) = id.take() else {
        return;
    };
    let mut state = shared.lock();
    let position = state.senders_waiting.iter().position(|(i, _)| *i == id);
    let entry = position.map(|at| state.senders_waiting.swap_remove(at));
    drop(state);
    drop(entry);
}

/// The sending end: [`Clone`] for more senders. The receiver sees the queue end when the last one
/// is dropped, after receiving what they sent.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `value` if there is room.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let state = self.shared.lock();
        if self.shared.receiver_gone.load(Ordering::Relaxed) {
            return Err(TrySendError::Closed(value));
        }
        if state.queue.len() >= self.shared.capacity {
            return Err(TrySendError::Full(value));
        }
        push(state, value);
        Ok(())
    }

    /// Queues `value`, waiting for room; gives it back if the receiver is gone.
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let mut value = Some(value);
        let mut waiting = Waiting::new(&self.shared);
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            if self.shared.receiver_gone.load(Ordering::Relaxed) {
                return Poll::Ready(value.take().map_or(Ok(()), |v| Err(SendError(v))));
            }
            if state.queue.len() >= self.shared.capacity {
                let replaced = waiting.register(&mut state, cx.waker());
                drop(state);
                drop(replaced);
                return Poll::Pending;
            }
            if let Some(value) = value.take() {
                push(state, value);
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Queues `value` whether or not there is room: for the few items that must not wait behind
    /// the queue's capacity, such as a client's `disconnect` while its task has stopped taking
    /// publishes (see [`Receiver::poll_recv_first`]). Capacity still bounds every other send, so
    /// the queue exceeds it by at most the number of such items queued. Gives `value` back if the
    /// receiver is gone.
    pub fn send_past_capacity(&self, value: T) -> Result<(), SendError<T>> {
        let state = self.shared.lock();
        if self.shared.receiver_gone.load(Ordering::Relaxed) {
            return Err(SendError(value));
        }
        push(state, value);
        Ok(())
    }

    /// Waits until the queue has room (a [`try_send`](Self::try_send) from this task then
    /// succeeds unless another sender took the room first), or fails with [`Closed`] once the
    /// receiver is gone.
    ///
    /// Senders waiting for room are all woken when some appears, and the first to take it has
    /// it: unlike tokio's `mpsc`, waiting senders are not served in the order they came.
    pub async fn ready(&self) -> Result<(), Closed> {
        let mut waiting = Waiting::new(&self.shared);
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            if self.shared.receiver_gone.load(Ordering::Relaxed) {
                return Poll::Ready(Err(Closed));
            }
            if state.queue.len() < self.shared.capacity {
                return Poll::Ready(Ok(()));
            }
            let replaced = waiting.register(&mut state, cx.waker());
            drop(state);
            drop(replaced);
            Poll::Pending
        })
        .await
    }

    /// The receiver is gone: nothing sent will be received.
    pub fn is_closed(&self) -> bool {
        self.shared.receiver_gone.load(Ordering::Acquire)
    }

    /// How many items the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Gives back the queue's allocation if it is empty (after a burst).
    pub fn shrink(&self) {
        drop(self.shared.shrink());
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // The last sender: a receiver waiting for more learns that none will come. Taking the
        // waker under the lock orders this after any registration that saw a sender left.
        let receiver = self.shared.lock().receiver.take();
        if let Some(waker) = receiver {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.shared.capacity)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// A [`Sender`] for a hand-written future: [`poll_room`](Self::poll_room) waits for room without
/// a future to keep, as a `poll` loop needs. Its wait is taken out of the queue's list when room
/// is found, the receiver goes, or it is dropped.
pub struct PollSender<T> {
    sender: Sender<T>,
    wait: Option<u64>,
}

impl<T> PollSender<T> {
    /// Wraps `sender`.
    pub fn new(sender: Sender<T>) -> Self {
        Self { sender, wait: None }
    }

    /// `Ready(Ok)` when the queue has room (a [`try_send`](Self::try_send) then succeeds unless
    /// another sender took the room first), `Ready(Err)` once the receiver is gone; otherwise
    /// `cx` is woken when room appears.
    pub fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        let shared = &self.sender.shared;
        let mut state = shared.lock();
        let ready = if shared.receiver_gone.load(Ordering::Relaxed) {
            Err(Closed)
        } else if state.queue.len() < shared.capacity {
            Ok(())
        } else {
            let replaced = register_wait(&mut state, &mut self.wait, cx.waker());
            drop(state);
            drop(replaced);
            return Poll::Pending;
        };
        drop(state);
        end_wait(shared, &mut self.wait);
        Poll::Ready(ready)
    }

    /// See [`Sender::try_send`].
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.sender.try_send(value)
    }

    /// See [`Sender::shrink`].
    pub fn shrink(&self) {
        self.sender.shrink();
    }
}

impl<T> Drop for PollSender<T> {
    fn drop(&mut self) {
        end_wait(&self.sender.shared, &mut self.wait);
    }
}

impl<T> fmt::Debug for PollSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollSender")
            .field("sender", &self.sender)
            .field("waiting", &self.wait.is_some())
            .finish()
    }
}

/// The receiving end. Dropping it drops what is queued and makes every send fail.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next item, `Ready(None)` once the queue is empty and every sender gone.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.poll_take(cx, VecDeque::pop_front)
    }

    /// Moves up to `limit` queued items to the end of `buffer`, waiting while there are none;
    /// `Ready(0)` once the queue is empty and every sender gone (or `limit` is 0).
    pub fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        buffer: &mut Vec<T>,
        limit: usize,
    ) -> Poll<usize> {
        if limit == 0 {
            return Poll::Ready(0);
        }
        let take = |queue: &mut VecDeque<T>| {
            let n = queue.len().min(limit);
            buffer.extend(queue.drain(..n));
            (n > 0).then_some(n)
        };
        self.poll_take(cx, take).map(|n| n.unwrap_or(0))
    }

    /// The first queued item for which `wanted` is true, taken out of turn; waits while there is
    /// none (woken by every send meanwhile, to look again). `Ready(None)` once there is none and
    /// every sender is gone, even with unwanted items queued: nobody is left to end the wait (a
    /// client whose handles were all dropped while its publishes waited), and the items go with
    /// the receiver.
    ///
    /// For a receiver that has stopped taking items in order (a client's task whose publish waits
    /// for room) but must still see a few kinds: a `disconnect` or an acknowledgement queued
    /// behind the publishes that wait.
    pub fn poll_recv_first(
        &mut self,
        cx: &mut Context<'_>,
        mut wanted: impl FnMut(&T) -> bool,
    ) -> Poll<Option<T>> {
        self.poll_take(cx, |queue| {
            let at = queue.iter().position(&mut wanted)?;
            queue.remove(at)
        })
    }

    /// What `take` takes from the queue, waking the senders if that left room; otherwise
    /// `Ready(None)` once every sender is gone, or `Pending` until the next send.
    fn poll_take<R>(
        &mut self,
        cx: &mut Context<'_>,
        take: impl FnOnce(&mut VecDeque<T>) -> Option<R>,
    ) -> Poll<Option<R>> {
        let mut state = match self.take(take) {
            Ok(taken) => return Poll::Ready(Some(taken)),
            Err(state) => state,
        };
        if self.shared.senders.load(Ordering::Acquire) == 0 {
            return Poll::Ready(None);
        }
        let replaced = register(&mut state.receiver, cx.waker());
        drop(state);
        drop(replaced);
        Poll::Pending
    }

    /// The next item; `None` once the queue is empty and every sender gone.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// See [`poll_recv_many`](Self::poll_recv_many).
    pub async fn recv_many(&mut self, buffer: &mut Vec<T>, limit: usize) -> usize {
        poll_fn(|cx| self.poll_recv_many(cx, buffer, limit)).await
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.take(VecDeque::pop_front).map_err(|_| {
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                TryRecvError::Disconnected
            } else {
                TryRecvError::Empty
            }
        })
    }

    /// What `take` takes from the queue, waking the senders (after the lock) if that left room;
    /// the lock, still held, when it takes nothing.
    fn take<R>(
        &self,
        take: impl FnOnce(&mut VecDeque<T>) -> Option<R>,
    ) -> Result<R, MutexGuard<'_, State<T>>> {
        let mut state = self.shared.lock();
        let Some(taken) = take(&mut state.queue) else {
            return Err(state);
        };
        let senders = senders_to_wake(&mut state, self.shared.capacity);
        drop(state);
        wake_all(senders);
        Ok(taken)
    }

    /// Gives back the queue's allocation if it is empty (after a burst).
    pub fn shrink(&self) {
        drop(self.shared.shrink());
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        self.shared.receiver_gone.store(true, Ordering::Release);
        let queued = std::mem::take(&mut state.queue);
        let senders = std::mem::take(&mut state.senders_waiting);
        // Its own waker: the task it wakes may be gone, and should not be kept alive by senders.
        let own = state.receiver.take();
        drop(state);
        // Items may own things whose drop takes this lock (a reply to a sender): not under it.
        drop(queued);
        drop(own);
        wake_all(senders);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

/// Items a [`FairReceiver`] takes in a row, each found waiting, before it lets the other tasks of
/// its executor's thread run (tokio's own channels spend the same budget per task poll).
pub const STREAK: u32 = 128;

/// A receiver for a stream that yields now and then: while a client's task refills the queue on
/// another thread as fast as it is read, a task reading it would otherwise never give its thread
/// back. After [`STREAK`] items in a row it returns `Pending` once, having woken itself. A count,
/// not tokio's cooperative budget: asking for that budget per item cost a fifth of the CPU of a
/// 100-byte QoS 0 message on the async bench, and other executors have none.
#[derive(Debug)]
pub struct FairReceiver<T> {
    rx: Receiver<T>,
    streak: u32,
}

impl<T> FairReceiver<T> {
    /// Wraps `rx`.
    pub fn new(rx: Receiver<T>) -> Self {
        Self { rx, streak: 0 }
    }

    /// [`Receiver::poll_recv`], but `Pending` (and woken at once) after [`STREAK`] items in a
    /// row.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if self.streak >= STREAK {
            self.streak = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let received = self.rx.poll_recv(cx);
        match received {
            Poll::Ready(Some(_)) => self.streak += 1,
            _ => self.streak = 0,
        }
        received
    }

    /// The next item; `None` once the queue is empty and every sender gone.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counting_waker::CountingWaker;

    #[test]
    fn items_come_out_in_order_and_a_full_queue_gives_the_item_back() {
        let (tx, mut rx) = channel(3);
        for i in 0..3 {
            tx.try_send(i).unwrap();
        }
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        let (_, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        let mut batch = Vec::new();
        assert_eq!(rx.poll_recv_many(&mut cx, &mut batch, 2), Poll::Ready(2));
        assert_eq!(batch, [0, 1]);
        tx.try_send(3).unwrap();
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(2)));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(tx.capacity(), 3);
    }

    #[test]
    fn a_waiting_receiver_is_woken_by_a_send_and_by_the_last_sender_leaving() {
        let (tx, mut rx) = channel::<u8>(4);
        let (counter, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Pending);
        tx.try_send(7).unwrap();
        assert_eq!(counter.wakes(), 1);
        tx.try_send(8).unwrap();
        assert_eq!(
            counter.wakes(),
            1,
            "a receiver that did not wait again is not woken"
        );
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(7)));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(8)));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Pending);
        let second = tx.clone();
        drop(tx);
        assert_eq!(counter.wakes(), 1, "a sender remains");
        assert_eq!(rx.poll_recv(&mut cx), Poll::Pending);
        drop(second);
        assert_eq!(counter.wakes(), 2);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None));
        let mut batch = Vec::new();
        assert_eq!(rx.poll_recv_many(&mut cx, &mut batch, 8), Poll::Ready(0));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn senders_waiting_for_room_are_woken_when_the_receiver_takes_some() {
        let (tx, mut rx) = channel::<u8>(1);
        tx.try_send(1).unwrap();
        let (first, first_waker) = CountingWaker::new();
        let (second, second_waker) = CountingWaker::new();
        let mut first_wait = std::pin::pin!(tx.ready());
        let mut second_wait = std::pin::pin!(tx.ready());
        let first_cx = &mut Context::from_waker(&first_waker);
        let second_cx = &mut Context::from_waker(&second_waker);
        assert_eq!(first_wait.as_mut().poll(first_cx), Poll::Pending);
        assert_eq!(second_wait.as_mut().poll(second_cx), Poll::Pending);
        assert_eq!(second_wait.as_mut().poll(second_cx), Poll::Pending);
        assert_eq!(
            tx.shared.lock().senders_waiting.len(),
            2,
            "one entry per wait"
        );
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!((first.wakes(), second.wakes()), (1, 1), "each waiter once");
        assert_eq!(first_wait.as_mut().poll(first_cx), Poll::Ready(Ok(())));
    }

    #[test]
    fn a_wait_given_up_leaves_no_waker_behind() {
        let (tx, _rx) = channel::<u8>(1);
        tx.try_send(1).unwrap();
        let (_, waker) = CountingWaker::new();
        let cx = &mut Context::from_waker(&waker);
        for value in 0..100 {
            let mut send = std::pin::pin!(tx.send(value));
            assert_eq!(send.as_mut().poll(cx), Poll::Pending);
            let mut ready = std::pin::pin!(tx.ready());
            assert_eq!(ready.as_mut().poll(cx), Poll::Pending);
            assert_eq!(tx.shared.lock().senders_waiting.len(), 2);
        }
        assert!(
            tx.shared.lock().senders_waiting.is_empty(),
            "each wait dropped (a timeout) took its entry out"
        );
    }

    #[test]
    fn dropping_the_receiver_fails_senders_and_wakes_the_waiting_ones() {
        let (tx, rx) = channel::<Arc<()>>(1);
        let item = Arc::new(());
        tx.try_send(Arc::clone(&item)).unwrap();
        let (counter, waker) = CountingWaker::new();
        let cx = &mut Context::from_waker(&waker);
        let mut wait = std::pin::pin!(tx.ready());
        assert_eq!(wait.as_mut().poll(cx), Poll::Pending);
        assert!(!tx.is_closed());
        drop(rx);
        assert_eq!(counter.wakes(), 1);
        assert_eq!(Arc::strong_count(&item), 1, "what was queued is dropped");
        assert!(tx.is_closed());
        assert!(matches!(
            tx.try_send(Arc::new(())),
            Err(TrySendError::Closed(_))
        ));
        assert_eq!(wait.as_mut().poll(cx), Poll::Ready(Err(Closed)));
    }

    #[test]
    fn an_empty_queue_gives_its_room_back_and_a_full_one_keeps_it() {
        let (tx, mut rx) = channel::<u64>(64);
        assert_eq!(
            tx.shared.lock().queue.capacity(),
            0,
            "nothing allocated when made"
        );
        for i in 0..40 {
            tx.try_send(i).unwrap();
        }
        tx.shrink();
        assert!(
            tx.shared.lock().queue.capacity() >= 40,
            "not while it holds items"
        );
        while rx.try_recv().is_ok() {}
        rx.shrink();
        assert_eq!(tx.shared.lock().queue.capacity(), 0);
        tx.try_send(1).unwrap();
        assert_eq!(rx.try_recv(), Ok(1), "and it grows again");
    }

    #[test]
    fn send_waits_for_room_and_fails_once_the_receiver_is_gone() {
        let (tx, mut rx) = channel::<u8>(1);
        tx.try_send(1).unwrap();
        let (counter, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        let mut send = std::pin::pin!(tx.send(2));
        assert_eq!(send.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(counter.wakes(), 1);
        assert_eq!(send.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Ok(2));
        tx.try_send(3).unwrap();
        let mut blocked = std::pin::pin!(tx.send(4));
        assert_eq!(blocked.as_mut().poll(&mut cx), Poll::Pending);
        drop(rx);
        assert_eq!(
            blocked.as_mut().poll(&mut cx),
            Poll::Ready(Err(SendError(4)))
        );
    }

    #[test]
    fn an_urgent_item_passes_a_full_queue_and_is_taken_out_of_turn() {
        let (tx, mut rx) = channel::<(bool, u8)>(2);
        tx.try_send((false, 1)).unwrap();
        tx.try_send((false, 2)).unwrap();
        assert_eq!(tx.try_send((false, 3)), Err(TrySendError::Full((false, 3))));
        let (counter, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        let urgent = |item: &(bool, u8)| item.0;
        // Nothing urgent queued: the receiver waits, and any send wakes it to look again.
        assert_eq!(rx.poll_recv_first(&mut cx, urgent), Poll::Pending);
        tx.send_past_capacity((true, 4)).unwrap();
        assert_eq!(counter.wakes(), 1);
        assert_eq!(tx.shared.lock().queue.len(), 3, "past the capacity of 2");
        let mut waiting = PollSender::new(tx.clone());
        let (room, room_waker) = CountingWaker::new();
        let mut room_cx = Context::from_waker(&room_waker);
        assert_eq!(waiting.poll_room(&mut room_cx), Poll::Pending);
        assert_eq!(
            rx.poll_recv_first(&mut cx, urgent),
            Poll::Ready(Some((true, 4)))
        );
        assert_eq!(
            room.wakes(),
            0,
            "still full: a sender woken now would find no room"
        );
        assert_eq!(rx.poll_recv_first(&mut cx, urgent), Poll::Pending);
        // The others keep their order, and the bound holds for ordinary sends again.
        assert_eq!(tx.try_send((false, 5)), Err(TrySendError::Full((false, 5))));
        assert_eq!(rx.try_recv(), Ok((false, 1)));
        assert_eq!(room.wakes(), 1, "room at last");
        assert_eq!(waiting.poll_room(&mut room_cx), Poll::Ready(Ok(())));
        drop(waiting);
        assert_eq!(rx.try_recv(), Ok((false, 2)));
        // Every sender gone: the end, though unwanted items remain (nobody is left to send an
        // urgent one); they can still be taken in turn.
        tx.try_send((false, 6)).unwrap();
        drop(tx);
        assert_eq!(rx.poll_recv_first(&mut cx, urgent), Poll::Ready(None));
        assert_eq!(rx.try_recv(), Ok((false, 6)));
    }

    #[test]
    fn an_urgent_send_to_a_dropped_receiver_gives_the_item_back() {
        let (tx, rx) = channel::<u8>(1);
        drop(rx);
        assert_eq!(tx.send_past_capacity(9), Err(SendError(9)));
    }

    #[test]
    fn a_poll_sender_waits_for_room_and_leaves_no_waker_behind() {
        let (tx, mut rx) = channel::<u8>(1);
        let mut sender = PollSender::new(tx.clone());
        let (counter, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(sender.poll_room(&mut cx), Poll::Ready(Ok(())));
        sender.try_send(1).unwrap();
        assert_eq!(sender.poll_room(&mut cx), Poll::Pending);
        assert_eq!(sender.poll_room(&mut cx), Poll::Pending, "asked twice");
        assert_eq!(
            tx.shared.lock().senders_waiting.len(),
            1,
            "one entry per wait"
        );
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(counter.wakes(), 1);
        assert_eq!(sender.poll_room(&mut cx), Poll::Ready(Ok(())));
        // A wait given up with the sender leaves nothing behind.
        sender.try_send(2).unwrap();
        assert_eq!(sender.poll_room(&mut cx), Poll::Pending);
        drop(sender);
        assert!(tx.shared.lock().senders_waiting.is_empty());
        // The receiver gone: the wait ends with Closed.
        let mut sender = PollSender::new(tx);
        assert_eq!(sender.poll_room(&mut cx), Poll::Pending);
        drop(rx);
        assert_eq!(counter.wakes(), 2);
        assert_eq!(sender.poll_room(&mut cx), Poll::Ready(Err(Closed)));
    }

    #[test]
    fn a_fair_receiver_yields_once_after_a_streak() {
        let (tx, rx) = channel::<u32>(1000);
        let mut rx = FairReceiver::new(rx);
        for i in 0..300 {
            tx.try_send(i).unwrap();
        }
        let (counter, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        for expected in 0..STREAK {
            assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(expected)));
        }
        assert_eq!(
            rx.poll_recv(&mut cx),
            Poll::Pending,
            "a yield after the streak"
        );
        assert_eq!(counter.wakes(), 1, "woken at once, to go on");
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(STREAK)));
        assert_eq!(rx.try_recv(), Some(STREAK + 1));
    }

    /// Wakes a parked thread.
    struct Unpark(std::thread::Thread);

    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    /// Polls `poll` on this thread until it is ready, parked in between: a wait that nothing
    /// ends within ten seconds is a lost wake-up.
    fn block_on<R>(mut poll: impl FnMut(&mut Context<'_>) -> Poll<R>) -> R {
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(ready) = poll(&mut cx) {
                return ready;
            }
            let parked = std::time::Instant::now();
            std::thread::park_timeout(std::time::Duration::from_secs(10));
            assert!(
                parked.elapsed() < std::time::Duration::from_secs(10),
                "a lost wake-up"
            );
        }
    }

    #[test]
    fn urgent_items_pass_senders_waiting_for_room_without_a_lost_wake_up() {
        const ORDINARY: u32 = 3_000;
        const URGENT: u32 = 500;
        // Items: (urgent, sender, sequence).
        let (tx, mut rx) = channel::<(bool, u32, u32)>(4);
        let mut threads: Vec<_> = (0..3)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..ORDINARY {
                        let mut send = Box::pin(tx.send((false, t, i)));
                        block_on(|cx| send.as_mut().poll(cx)).expect("the receiver lives");
                    }
                })
            })
            .collect();
        let urgent = tx.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..URGENT {
                urgent
                    .send_past_capacity((true, 9, i))
                    .expect("the receiver lives");
                if i % 16 == 0 {
                    std::thread::yield_now();
                }
            }
        }));
        drop(tx);
        let mut next = [0u32; 3];
        let mut next_urgent = 0;
        let mut x: u32 = 7;
        while next.iter().sum::<u32>() + next_urgent < 3 * ORDINARY + URGENT {
            // As a client's task does: in turn, or (stalled) only the urgent ones.
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let in_turn = x >> 16 & 3 != 0 || next_urgent == URGENT;
            let item = if in_turn {
                block_on(|cx| rx.poll_recv(cx))
            } else {
                block_on(|cx| rx.poll_recv_first(cx, |item| item.0))
            };
            match item.expect("items remain") {
                (true, _, i) => {
                    assert_eq!(i, next_urgent, "urgent items in order");
                    next_urgent += 1;
                }
                (false, t, i) => {
                    assert!(in_turn, "only urgent items out of turn");
                    let t = t as usize;
                    assert_eq!(i, next[t], "each sender's items in order");
                    next[t] += 1;
                }
            }
        }
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(block_on(|cx| rx.poll_recv(cx)), None);
    }

    #[test]
    fn threads_sending_at_once_lose_nothing() {
        let (tx, mut rx) = channel::<u32>(8);
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        let mut value = t * 1000 + i;
                        loop {
                            match tx.try_send(value) {
                                Ok(()) => break,
                                Err(TrySendError::Full(v)) => {
                                    value = v;
                                    std::thread::yield_now();
                                }
                                Err(TrySendError::Closed(_)) => panic!("the receiver lives"),
                            }
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let mut seen = [0u32; 4];
        let mut total = 0;
        loop {
            match rx.try_recv() {
                Ok(value) => {
                    let (t, i) = ((value / 1000) as usize, value % 1000);
                    assert_eq!(seen[t], i, "each sender's items in its order");
                    seen[t] += 1;
                    total += 1;
                }
                Err(TryRecvError::Empty) => std::thread::yield_now(),
                Err(TryRecvError::Disconnected) => break,
            }
        }
        for sender in senders {
            sender.join().unwrap();
        }
        assert_eq!(total, 4000);
    }
}
