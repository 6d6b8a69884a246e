//! The client's IO: the poller and the turns run on it, the IO thread, and the state they share
//! with the application's threads.
//!
//! Whoever holds the [`Poller`] runs the IO. That is the IO thread, except while a thread waits in
//! [`Messages::recv`](crate::Messages::recv) with nothing queued: that thread takes the poller
//! over and reads the messages it waits for itself, so a message reaches it without waking a
//! second thread (see [`IoRole`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use crate::callback::Dispatch;
use crate::dialer::SOCKET;
use crate::shell::Shell;

/// State shared by the handles, the IO thread and the callback thread.
pub(crate) struct Shared {
    pub(crate) shell: Mutex<Shell>,
    pub(crate) dispatch: Arc<Mutex<Dispatch>>,
    /// Shared with the DNS threads, which wake the poller when an answer is in (mio allows one
    /// waker per poll).
    pub(crate) waker: Arc<mio::Waker>,
    pub(crate) closed: AtomicBool,
    /// The poll and its events: whoever holds it runs the client's IO.
    pub(crate) poller: Mutex<Poller>,
    /// Whether the IO thread or a receiving thread holds the poller.
    pub(crate) role: IoRole,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shell> {
        // Nothing panics while holding the lock on purpose; if something did, the state is still
        // the supervisor's, which stays consistent between calls.
        self.shell.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `command` on the shell from an application thread and carries out what it asked for
    /// there (a publish is written from the calling thread, without a hand-off). Wakes the IO
    /// thread only when it must see the change: an earlier deadline (a reconnect after a failed
    /// write, a dial, a close) or bytes it may read again.
    pub(crate) fn call<T>(&self, command: impl FnOnce(&mut Shell, Instant) -> T) -> T {
        let mut shell = self.lock();
        let now = Instant::now();
        let (deadline, readable) = (
            shell.next_wakeup(now),
            shell.read_more && shell.may_read(now),
        );
        let result = command(&mut shell, now);
        shell.drive(now);
        let finished = shell.take_finished();
        let sooner = match (deadline, shell.next_wakeup(now)) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(before), Some(after)) => after < before,
        };
        let wake = sooner || (!readable && shell.read_more && shell.may_read(now));
        drop(shell);
        finished.finish();
        if wake {
            self.wake();
        }
        result
    }

    /// Wakes whoever polls, and the IO thread if the poller is lent out and nobody polls.
    pub(crate) fn wake(&self) {
        let _ = self.waker.wake();
        self.role.reclaim();
    }

    /// A message reached the receiver from another thread than the poller's: a receiving thread
    /// polling the socket for it must look.
    pub(crate) fn wake_receiver(&self) {
        if self.role.receiver_polls() {
            let _ = self.waker.wake();
        }
    }

    fn lock_poller(&self) -> MutexGuard<'_, Poller> {
        self.poller.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The poller if nobody holds it.
    pub(crate) fn try_lock_poller(&self) -> Option<MutexGuard<'_, Poller>> {
        match self.poller.try_lock() {
            Ok(poller) => Some(poller),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// The poller for a receiving thread: at once if it is free, else from the IO thread, which
    /// hands it over after its current turn.
    pub(crate) fn take_poller(&self) -> MutexGuard<'_, Poller> {
        let poller = match self.try_lock_poller() {
            Some(poller) => poller,
            None => {
                self.role.want();
                let _ = self.waker.wake();
                self.lock_poller()
            }
        };
        self.role.enter(Instant::now());
        poller
    }

    /// A receiving thread is done with the poller: the IO thread takes it back unless the
    /// receiver calls again within [`LEASE`].
    pub(crate) fn give_back_poller(&self, poller: MutexGuard<'_, Poller>) {
        self.role.leave(Instant::now());
        drop(poller);
    }
}

/// The poll and its event buffer.
pub(crate) struct Poller {
    poll: Poll,
    events: Events,
}

impl Poller {
    pub(crate) fn new(poll: Poll) -> Self {
        Self {
            poll,
            events: Events::with_capacity(16),
        }
    }
}

/// How a turn of the IO ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Events and timers were handled (or the wait ran out).
    Ran,
    /// The client is closed: the IO thread shuts it down.
    Closed,
}

/// One turn of the IO: wait for readiness (until the shell's next deadline, or `until`), then
/// read, write, and run the timers. No busy loop: between events it sleeps until the next
/// deadline (keep-alive, CONNACK, reconnect), so an idle client costs nothing between pings.
pub(crate) fn turn(poller: &mut Poller, shared: &Shared, until: Option<Instant>) -> Turn {
    let now = Instant::now();
    let mut timeout = shared.lock().poll_wait(now);
    if let Some(until) = until {
        let left = until.saturating_duration_since(now);
        timeout = Some(timeout.map_or(left, |timeout| timeout.min(left)));
    }
    let Poller { poll, events } = poller;
    if let Err(e) = poll.poll(events, timeout) {
        if e.kind() != std::io::ErrorKind::Interrupted {
            tracing::error!(%e, "poll failed; the client stops");
            shared.closed.store(true, Ordering::SeqCst);
            return Turn::Closed;
        }
    }
    if shared.closed.load(Ordering::SeqCst) {
        return Turn::Closed;
    }
    let mut shell = shared.lock();
    let now = Instant::now();
    shell.handoff.release();
    let mut read = false;
    // The waker's token needs nothing (a DNS answer is picked up below), nor do connection
    // attempts' tokens: `advance_opening` checks every attempt.
    for event in events.iter().filter(|event| event.token() == SOCKET) {
        if event.is_writable() {
            shell.write(now);
        }
        let ended = event.is_read_closed() || event.is_error();
        if event.is_readable() || ended {
            shell.read(now, ended);
            read = true;
        }
    }
    if !read && shell.read_more {
        // Reading stopped at its budget or paused for callbacks; edge-triggered readiness
        // will not repeat.
        shell.read(now, true);
    }
    shell.advance_opening(now);
    shell.sup.handle_timeout(now);
    shell.drive(now);
    let finished = shell.take_finished();
    drop(shell);
    finished.finish();
    Turn::Ran
}

/// The IO thread: runs turns until the client is closed, lending the poller to a thread waiting
/// for messages when one asks for it.
pub(crate) fn run(shared: &Shared) {
    loop {
        shared.role.wait_while_lent(&shared.closed);
        let closed = shared.closed.load(Ordering::SeqCst);
        let poller = match closed {
            // A receiver holding the poller sees the close after its current wait and lets go.
            true => Some(shared.lock_poller()),
            false => shared.try_lock_poller(),
        };
        let Some(mut poller) = poller else {
            // A receiver took it between the lease's end and here.
            continue;
        };
        let mut turned = if closed { Turn::Closed } else { Turn::Ran };
        while turned == Turn::Ran && !shared.role.hand_over() {
            turned = turn(&mut poller, shared, None);
        }
        if turned == Turn::Closed {
            let mut shell = shared.lock();
            shell.shut_down(Instant::now());
            let finished = shell.take_finished();
            drop(shell);
            finished.finish();
            return;
        }
    }
}

/// How long the IO thread leaves the IO to a receiving thread after its `recv` returned: a
/// receiver that calls again within it keeps the poller, so a stream of messages wakes the IO
/// thread about once per lease instead of once per message. Longer would delay what a lent-out
/// poller does not see (the broker's acks to another thread's publishes, which the waiting
/// thread reclaims anyway): at most this long.
pub(crate) const LEASE: Duration = Duration::from_millis(2);

/// After a receiver has waited this long in `recv`, the IO thread stops looking every [`LEASE`]
/// and sleeps until the receiver gives the poller back (an idle client costs no wake-ups).
const LONG_HOLD: Duration = Duration::from_millis(50);

/// Who runs the IO: the IO thread, or a receiving thread it lent the poller to.
///
/// A receiver with nothing queued asks for the poller ([`want`](Self::want)); the IO thread lets
/// go after its turn ([`hand_over`](Self::hand_over)). When the receiver's `recv` returns it
/// lends the poller on ([`leave`](Self::leave)): the IO thread takes it back when the lease ends,
/// or at once when another thread starts waiting on the client ([`reclaim`](Self::reclaim)).
/// Neither side wakes the other per message: the IO thread sleeps on a timer while the poller is
/// lent, and only a receiver that held it past [`LONG_HOLD`] wakes it when leaving.
#[derive(Debug, Default)]
pub(crate) struct IoRole {
    state: Mutex<Lending>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Lending {
    /// A receiver waits for the IO thread to hand the poller over.
    wanted: bool,
    holder: Holder,
    /// The IO thread was asked to take the poller back now.
    reclaim: bool,
    /// The IO thread waits on `changed` (for how long: `None` until told).
    io_waiting: Option<Option<Instant>>,
}

#[derive(Debug, Default, Clone, Copy)]
enum Holder {
    /// The IO thread (or nobody, between its turns).
    #[default]
    Io,
    /// A receiving thread, since then.
    Receiver(Instant),
    /// Nobody; the IO thread takes it back then.
    Lent(Instant),
}

impl IoRole {
    fn lock(&self) -> MutexGuard<'_, Lending> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver asks the IO thread for the poller.
    fn want(&self) {
        self.lock().wanted = true;
    }

    /// The IO thread, after a turn: whether it gives the poller to a receiver that asked.
    fn hand_over(&self) -> bool {
        let mut state = self.lock();
        if !state.wanted {
            return false;
        }
        state.wanted = false;
        state.holder = Holder::Receiver(Instant::now());
        true
    }

    /// Whether a receiving thread holds the poller.
    fn receiver_polls(&self) -> bool {
        matches!(self.lock().holder, Holder::Receiver(_))
    }

    /// A receiving thread holds the poller.
    fn enter(&self, now: Instant) {
        let mut state = self.lock();
        state.wanted = false;
        state.holder = Holder::Receiver(now);
    }

    /// A receiving thread let go of the poller.
    fn leave(&self, now: Instant) {
        let mut state = self.lock();
        state.holder = Holder::Lent(now + LEASE);
        if state.io_waiting == Some(None) {
            // The IO thread sleeps until told; nobody would poll otherwise.
            self.changed.notify_one();
        }
    }

    /// Someone waits on the client (a token, a close): the IO thread takes the poller back now
    /// if it is lent out. Free when the IO thread holds it.
    pub(crate) fn reclaim(&self) {
        let mut state = self.lock();
        if !matches!(state.holder, Holder::Io) {
            state.reclaim = true;
            if state.io_waiting.is_some() {
                self.changed.notify_one();
            }
        }
    }

    /// The IO thread: returns when it should take the poller (again): it is not lent out, the
    /// lease ended, a reclaim came, or the client closed. While a receiver holds the poller it
    /// looks again every [`LEASE`], or sleeps until told once the receiver held it past
    /// [`LONG_HOLD`].
    fn wait_while_lent(&self, closed: &AtomicBool) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            if closed.load(Ordering::SeqCst) || std::mem::take(&mut state.reclaim) {
                if matches!(state.holder, Holder::Lent(_)) {
                    state.holder = Holder::Io;
                }
                return;
            }
            let until = match state.holder {
                Holder::Io => return,
                Holder::Lent(until) if now >= until => {
                    state.holder = Holder::Io;
                    return;
                }
                Holder::Lent(until) => Some(until),
                Holder::Receiver(since) if now.duration_since(since) >= LONG_HOLD => None,
                Holder::Receiver(_) => Some(now + LEASE),
            };
            state.io_waiting = Some(until);
            state = match until {
                Some(until) => {
                    let left = until.saturating_duration_since(now);
                    let waited = self.changed.wait_timeout(state, left);
                    waited.unwrap_or_else(PoisonError::into_inner).0
                }
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
            state.io_waiting = None;
        }
    }
}
