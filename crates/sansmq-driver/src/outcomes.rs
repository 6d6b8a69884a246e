//! [`Outcomes`]: the results of many requests of one client, each awaited through a [`Claim`]
//! without an allocation of its own.
//!
//! A one-shot channel per request costs an allocation, freed on another thread, and a program
//! that publishes QoS 0 messages as fast as it can holds thousands of them: measured on the async
//! bench, they were a third of the client's CPU per QoS 0 message. Here a request gets a number
//! instead. Its [`Ticket`] travels with the request to whoever completes it; its [`Claim`] stays
//! with the caller. Requests are settled mostly in the order they were issued, so the board
//! keeps one number below which every request is settled, and stores only what is rare: the
//! failures not yet claimed, the requests settled out of order, and the claims given up before
//! their request was settled. A claim whose request succeeded in order resolves with one atomic
//! load.
//!
//! ```
//! use std::task::{Context, Poll, Waker};
//! use sansmq_driver::outcomes::Outcomes;
//!
//! let outcomes = Outcomes::<String>::new();
//! let (first, mut first_claim) = outcomes.issue();
//! let (second, mut second_claim) = outcomes.issue();
//! let mut cx = Context::from_waker(Waker::noop());
//! assert_eq!(first_claim.poll(&mut cx), Poll::Pending);
//! second.settle(Err("refused".to_owned()));
//! first.settle(Ok(()));
//! assert_eq!(first_claim.poll(&mut cx), Poll::Ready(Some(Ok(()))));
//! assert_eq!(second_claim.poll(&mut cx), Poll::Ready(Some(Err("refused".to_owned()))));
//! let (dropped, mut claim) = outcomes.issue();
//! drop(dropped);
//! assert_eq!(claim.poll(&mut cx), Poll::Ready(None), "a ticket dropped unsettled");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// The board: [`Clone`] shares it. Made by the side that issues requests.
pub struct Outcomes<E> {
    shared: Arc<Shared<E>>,
}

struct Shared<E> {
    /// The next number to issue.
    next: AtomicU64,
    /// Mirrors [`Board::settled_below`], for claims that look without the lock.
    settled_below: AtomicU64,
    /// Mirrors the lowest number in [`Board::failures`] (`u64::MAX` when there is none): a settled
    /// request below it succeeded. A failure kept for a handle that is never awaited slows only
    /// the claims above it.
    first_failure: AtomicU64,
    board: Mutex<Board<E>>,
}

/// What the board holds beyond the one number.
struct Board<E> {
    /// Every request numbered below this is settled.
    settled_below: u64,
    /// Requests above `settled_below` settled out of order, as ranges `start..end` by start.
    ahead: BTreeMap<u64, u64>,
    /// Settled requests that failed, until their claim takes the failure; `None` for a ticket
    /// dropped unsettled.
    failures: BTreeMap<u64, Option<E>>,
    /// Claims given up before their request was settled: its failure is not kept.
    abandoned: BTreeSet<u64>,
    /// Claims waiting for their request, by number, with the task to wake.
    waiters: BTreeMap<u64, Waker>,
}

impl<E> Board<E> {
    fn is_settled(&self, number: u64) -> bool {
        number < self.settled_below
            || self
                .ahead
                .range(..=number)
                .next_back()
                .is_some_and(|(_, &end)| number < end)
    }

    /// Marks `number` settled, merging it into the ranges settled out of order, and moves
    /// `settled_below` past what has become contiguous.
    fn mark_settled(&mut self, number: u64) {
        if number == self.settled_below {
            self.settled_below += 1;
            if let Some(end) = self.ahead.remove(&self.settled_below) {
                self.settled_below = end;
            }
            return;
        }
        let mut start = number;
        let mut end = number + 1;
        if let Some((&before, &before_end)) = self.ahead.range(..number).next_back() {
            if before_end == number {
                start = before;
            }
        }
        if let Some(after_end) = self.ahead.remove(&end) {
            end = after_end;
        }
        self.ahead.insert(start, end);
    }

    /// The outcome of the settled request `number`, taken from the board.
    fn take(&mut self, number: u64) -> Option<Result<(), E>> {
        match self.failures.remove(&number) {
            None => Some(Ok(())),
            Some(Some(error)) => Some(Err(error)),
            Some(None) => None,
        }
    }
}

impl<E> Shared<E> {
    /// The lock; no code panics while holding it, and a poisoned board is consistent.
    fn lock(&self) -> MutexGuard<'_, Board<E>> {
        self.board.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Updates the mirrors; called with the lock held, after every change. The first failure is
    /// stored before the number it may lie below, and loaded after it.
    fn mirror(&self, board: &Board<E>) {
        let first_failure = board.failures.keys().next().copied().unwrap_or(u64::MAX);
        self.first_failure.store(first_failure, Ordering::Release);
        self.settled_below
            .store(board.settled_below, Ordering::Release);
    }

    /// Settled, and successfully, as far as can be seen without the lock.
    fn succeeded(&self, number: u64) -> bool {
        number < self.settled_below.load(Ordering::Acquire)
            && number < self.first_failure.load(Ordering::Acquire)
    }

    /// What settling takes off the board (an unwanted failure, the wakers to wake) is dropped or
    /// woken once the lock is released: either may run code that takes it again.
    fn settle(&self, number: u64, failure: Option<Option<E>>) {
        let mut board = self.lock();
        if board.is_settled(number) {
            drop(board);
            drop(failure);
            return;
        }
        let abandoned = !board.abandoned.is_empty() && board.abandoned.remove(&number);
        let mut unwanted = None;
        if let Some(failure) = failure {
            if abandoned {
                unwanted = Some(failure);
            } else {
                board.failures.insert(number, failure);
            }
        }
        board.mark_settled(number);
        self.mirror(&board);
        let mut woken = Vec::new();
        if !board.waiters.is_empty() {
            let settled_below = board.settled_below;
            let waiting_above = board.waiters.split_off(&settled_below);
            woken.extend(std::mem::replace(&mut board.waiters, waiting_above).into_values());
            woken.extend(board.waiters.remove(&number));
        }
        drop(board);
        drop(unwanted);
        for waker in woken {
            waker.wake();
        }
    }
}

impl<E> Outcomes<E> {
    /// An empty board.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                next: AtomicU64::new(0),
                settled_below: AtomicU64::new(0),
                first_failure: AtomicU64::new(u64::MAX),
                board: Mutex::new(Board {
                    settled_below: 0,
                    ahead: BTreeMap::new(),
                    failures: BTreeMap::new(),
                    abandoned: BTreeSet::new(),
                    waiters: BTreeMap::new(),
                }),
            }),
        }
    }

    /// A new request's ticket (for whoever completes it) and claim (for whoever awaits it).
    pub fn issue(&self) -> (Ticket<E>, Claim<E>) {
        let number = self.shared.next.fetch_add(1, Ordering::Relaxed);
        (
            Ticket {
                number,
                shared: Some(Arc::clone(&self.shared)),
            },
            Claim {
                number,
                shared: Some(Arc::clone(&self.shared)),
            },
        )
    }
}

impl<E> Default for Outcomes<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> Clone for Outcomes<E> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<E> fmt::Debug for Outcomes<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outcomes")
            .field("issued", &self.shared.next.load(Ordering::Relaxed))
            .field(
                "settled_below",
                &self.shared.settled_below.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

/// The completing side of one request: [`settle`](Self::settle) it once. Dropped unsettled, its
/// claim resolves with `None`, as a dropped one-shot sender would.
pub struct Ticket<E> {
    number: u64,
    /// `None` once settled.
    shared: Option<Arc<Shared<E>>>,
}

impl<E> Ticket<E> {
    /// The request is over, with this outcome.
    pub fn settle(mut self, outcome: Result<(), E>) {
        if let Some(shared) = self.shared.take() {
            shared.settle(self.number, outcome.err().map(Some));
        }
    }
}

impl<E> Drop for Ticket<E> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.settle(self.number, Some(None));
        }
    }
}

impl<E> fmt::Debug for Ticket<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

/// The awaiting side of one request. Dropping it gives the outcome up; the request itself goes on.
pub struct Claim<E> {
    number: u64,
    /// `None` once the outcome was taken.
    shared: Option<Arc<Shared<E>>>,
}

impl<E> Claim<E> {
    /// The outcome once the request is settled: `Some(result)`, or `None` if its ticket was
    /// dropped unsettled. Ready once; polled again after that, it is `Ready(None)`.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<(), E>>> {
        self.outcome(Some(cx.waker()))
    }

    /// The outcome if the request is settled, without waiting; see [`poll`](Self::poll).
    pub fn try_outcome(&mut self) -> Option<Option<Result<(), E>>> {
        match self.outcome(None) {
            Poll::Ready(outcome) => Some(outcome),
            Poll::Pending => None,
        }
    }

    fn outcome(&mut self, waker: Option<&Waker>) -> Poll<Option<Result<(), E>>> {
        let Some(shared) = self.shared.as_ref() else {
            return Poll::Ready(None);
        };
        if shared.succeeded(self.number) {
            self.shared = None;
            return Poll::Ready(Some(Ok(())));
        }
        let mut board = shared.lock();
        if board.is_settled(self.number) {
            let outcome = board.take(self.number);
            shared.mirror(&board);
            drop(board);
            self.shared = None;
            return Poll::Ready(outcome);
        }
        let mut replaced = None;
        if let Some(waker) = waker {
            match board.waiters.get(&self.number) {
                Some(old) if old.will_wake(waker) => {}
                _ => replaced = board.waiters.insert(self.number, waker.clone()),
            }
        }
        drop(board);
        drop(replaced);
        Poll::Pending
    }
}

impl<E> Drop for Claim<E> {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        if shared.succeeded(self.number) {
            return;
        }
        let mut board = shared.lock();
        let number = self.number;
        // Dropped once the lock is released, as in `settle`.
        let (failure, waker) = if board.is_settled(number) {
            let failure = board.failures.remove(&number);
            shared.mirror(&board);
            (failure, None)
        } else {
            board.abandoned.insert(number);
            (None, board.waiters.remove(&number))
        };
        drop(board);
        drop((failure, waker));
    }
}

impl<E> fmt::Debug for Claim<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counting_waker::CountingWaker;

    fn board_of<'a>(outcomes: &'a Outcomes<&'static str>) -> MutexGuard<'a, Board<&'static str>> {
        outcomes.shared.lock()
    }

    #[test]
    fn in_order_successes_keep_nothing_but_one_number() {
        let outcomes = Outcomes::<&'static str>::new();
        let mut claims = Vec::new();
        for _ in 0..100 {
            let (ticket, claim) = outcomes.issue();
            ticket.settle(Ok(()));
            claims.push(claim);
        }
        {
            let board = board_of(&outcomes);
            assert_eq!(board.settled_below, 100);
            assert!(board.ahead.is_empty() && board.failures.is_empty());
        }
        for mut claim in claims {
            assert_eq!(claim.try_outcome(), Some(Some(Ok(()))));
            assert_eq!(claim.try_outcome(), Some(None), "taken once");
        }
    }

    #[test]
    fn out_of_order_settlements_merge_into_ranges_and_close_the_gap() {
        let outcomes = Outcomes::<&'static str>::new();
        let issued: Vec<_> = (0..6).map(|_| outcomes.issue()).collect();
        let (tickets, mut claims): (Vec<_>, Vec<_>) = issued.into_iter().unzip();
        let mut tickets: Vec<_> = tickets.into_iter().map(Some).collect();
        for i in [2, 4, 3] {
            tickets[i].take().unwrap().settle(Ok(()));
        }
        {
            let board = board_of(&outcomes);
            assert_eq!(board.settled_below, 0);
            assert_eq!(board.ahead.iter().collect::<Vec<_>>(), [(&2, &5)]);
        }
        assert_eq!(claims[3].try_outcome(), Some(Some(Ok(()))), "settled ahead");
        assert_eq!(claims[1].try_outcome(), None);
        tickets[1].take().unwrap().settle(Err("late"));
        tickets[0].take().unwrap().settle(Ok(()));
        {
            let board = board_of(&outcomes);
            assert_eq!(board.settled_below, 5);
            assert!(board.ahead.is_empty());
        }
        assert_eq!(claims[1].try_outcome(), Some(Some(Err("late"))));
        assert_eq!(claims[0].try_outcome(), Some(Some(Ok(()))));
        drop(tickets);
        assert_eq!(claims[5].try_outcome(), Some(None), "dropped unsettled");
        assert!(board_of(&outcomes).failures.is_empty());
    }

    #[test]
    fn a_waiting_claim_is_woken_by_its_settlement_only() {
        let outcomes = Outcomes::<&'static str>::new();
        let (first, mut first_claim) = outcomes.issue();
        let (second, mut second_claim) = outcomes.issue();
        let (counter, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(second_claim.poll(&mut cx), Poll::Pending);
        assert_eq!(second_claim.poll(&mut cx), Poll::Pending);
        assert_eq!(board_of(&outcomes).waiters.len(), 1, "registered once");
        first.settle(Ok(()));
        assert_eq!(counter.wakes(), 0);
        second.settle(Ok(()));
        assert_eq!(counter.wakes(), 1);
        assert_eq!(second_claim.poll(&mut cx), Poll::Ready(Some(Ok(()))));
        assert_eq!(first_claim.poll(&mut cx), Poll::Ready(Some(Ok(()))));
        assert!(board_of(&outcomes).waiters.is_empty());
    }

    #[test]
    fn failures_of_claims_given_up_are_not_kept() {
        let outcomes = Outcomes::<&'static str>::new();
        let (before, claim) = outcomes.issue();
        drop(claim);
        before.settle(Err("nobody listens"));
        let (after, claim) = outcomes.issue();
        after.settle(Err("given up later"));
        assert_eq!(board_of(&outcomes).failures.len(), 1);
        drop(claim);
        let board = board_of(&outcomes);
        assert!(board.failures.is_empty());
        assert!(board.abandoned.is_empty());
        assert_eq!(
            outcomes.shared.first_failure.load(Ordering::SeqCst),
            u64::MAX
        );
    }

    #[test]
    fn a_failure_kept_for_a_claim_slows_only_the_claims_above_it() {
        let outcomes = Outcomes::<&'static str>::new();
        let (tickets, mut claims): (Vec<_>, Vec<_>) = (0..4).map(|_| outcomes.issue()).unzip();
        for (i, ticket) in tickets.into_iter().enumerate() {
            ticket.settle(if i == 2 { Err("kept") } else { Ok(()) });
        }
        let shared = &outcomes.shared;
        assert!(
            shared.succeeded(0) && shared.succeeded(1),
            "below the failure: no lock"
        );
        assert!(!shared.succeeded(2) && !shared.succeeded(3));
        assert_eq!(
            claims[3].try_outcome(),
            Some(Some(Ok(()))),
            "above it: from the board"
        );
        assert_eq!(claims[2].try_outcome(), Some(Some(Err("kept"))));
        assert!(shared.succeeded(3), "the failure taken, all fast again");
    }

    #[test]
    fn a_waiting_claim_given_up_leaves_no_waker() {
        let outcomes = Outcomes::<&'static str>::new();
        let (ticket, mut claim) = outcomes.issue();
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(claim.poll(&mut cx), Poll::Pending);
        drop(claim);
        assert!(board_of(&outcomes).waiters.is_empty());
        ticket.settle(Ok(()));
        assert!(board_of(&outcomes).abandoned.is_empty());
    }

    #[test]
    fn threads_settling_and_claiming_at_once_see_every_outcome() {
        let outcomes = Outcomes::<u64>::new();
        let (tickets, claims): (Vec<_>, Vec<_>) = (0..4000).map(|_| outcomes.issue()).unzip();
        let mut tickets: Vec<_> = tickets.into_iter().enumerate().collect();
        // Settle from the back half first so that many settle out of order.
        tickets.rotate_left(2000);
        let settling = std::thread::spawn(move || {
            for (i, ticket) in tickets {
                if i % 7 == 0 {
                    ticket.settle(Err(i as u64));
                } else {
                    ticket.settle(Ok(()));
                }
            }
        });
        let mut claims: Vec<_> = claims.into_iter().enumerate().collect();
        let mut done = 0;
        while done < claims.len() {
            done = 0;
            for (i, claim) in &mut claims {
                match claim.try_outcome() {
                    Some(Some(Ok(()))) => assert_ne!(*i % 7, 0),
                    Some(Some(Err(e))) => assert_eq!(e, *i as u64),
                    Some(None) => done += 1,
                    None => {}
                }
            }
            std::thread::yield_now();
        }
        settling.join().unwrap();
        let board = outcomes.shared.lock();
        assert_eq!(board.settled_below, 4000);
        assert!(board.ahead.is_empty() && board.failures.is_empty());
    }
}
