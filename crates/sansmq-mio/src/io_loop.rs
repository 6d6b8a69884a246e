//! The client's IO: the poller and the turns run on it, the IO thread, and the state they share
//! with the application's threads.
//!
//! Whoever holds the [`Poller`] runs the IO. That is the IO thread, except while a thread waits
//! for what the IO brings: a message in [`Messages::recv`](crate::Messages::recv) with nothing
//! queued, an acknowledgement in [`DeliveryToken::wait`](crate::DeliveryToken::wait). That thread
//! takes the poller over and reads what it waits for itself, so it arrives without waking a second
//! thread (see [`IoRole`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use crate::callback::Dispatch;
use crate::completion;
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
    /// Whether the IO thread or a waiting thread holds the poller.
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
    /// thread only when it must see the change: a deadline before the one it sleeps until (a
    /// reconnect after a failed write, a dial, a close) or bytes it may read again.
    pub(crate) fn call<T>(&self, command: impl FnOnce(&mut Shell, Instant) -> T) -> T {
        let mut shell = self.lock();
        let now = Instant::now();
        let readable = shell.read_more && shell.may_read(now);
        let result = command(&mut shell, now);
        shell.drive(now);
        let finished = shell.take_finished();
        let wake = shell.wakes_sooner(now) || (!readable && shell.read_more && shell.may_read(now));
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

    /// A message reached the receiver from another thread than the poller's: a waiting thread
    /// polling the socket for it must look.
    pub(crate) fn wake_receiver(&self) {
        if self.role.caller_polls() {
            let _ = self.waker.wake();
        }
    }

    fn lock_poller(&self) -> MutexGuard<'_, Poller> {
        // Only the owner the role names locks it, so this waits at most for a previous owner
        // to let go of the guard.
        self.poller.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the client's IO on this thread, for a thread that waits for something the IO brings
    /// (a message, an acknowledgement), until `ready()`, the deadline, or the client closes.
    /// The IO thread hands the poller over after its current turn, to a thread that waited
    /// before within [`LEASE`] (a stream of waits); the caller keeps it for a lease after
    /// returning, so a thread that waits again soon does not ask again.
    pub(crate) fn run_io_until(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> IoRun {
        if completion::on_callback_thread() {
            // The callback thread waits as it always did: the IO would hand it callbacks it
            // cannot run while it polls.
            return IoRun::Elsewhere;
        }
        match self.role.acquire(Instant::now(), &self.waker, &self.closed) {
            Acquired::Yes => {}
            Acquired::Busy => return IoRun::Busy,
            Acquired::No => return IoRun::Elsewhere,
        }
        let mut poller = self.lock_poller();
        let mut ran = IoRun::Ran;
        while !ready() && deadline.is_none_or(|deadline| Instant::now() < deadline) {
            if turn(&mut poller, self, deadline) == Turn::Closed {
                ran = IoRun::Elsewhere;
                break;
            }
        }
        drop(poller);
        self.role.leave(Instant::now());
        ran
    }
}

/// What [`Shared::run_io_until`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IoRun {
    /// It ran the IO until the thread's wait was over (ready or the deadline).
    Ran,
    /// Another waiting thread runs the IO: wait a little (at most [`LEASE`]) for what its turns
    /// bring, then try again.
    Busy,
    /// Not on this thread: the callback thread, a wait that comes alone (the IO thread reads for
    /// it with fewer wake-ups than a hand-over costs), or a closed client. Wait as usual.
    Elsewhere,
}

impl IoRun {
    /// How long the waiting thread then waits the plain way (on its channel or token) before it
    /// looks again: `None` to look again at once, `Some(None)` for as long as it takes.
    pub(crate) fn then_wait_until(
        self,
        now: Instant,
        deadline: Option<Instant>,
    ) -> Option<Option<Instant>> {
        match self {
            IoRun::Ran => None,
            // What the other thread's turns bring arrives on the channel or token meanwhile.
            IoRun::Busy => {
                let lease = now + LEASE;
                Some(Some(deadline.map_or(lease, |deadline| deadline.min(lease))))
            }
            IoRun::Elsewhere => Some(deadline),
        }
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

/// The IO thread: runs turns until the client is closed, handing the poller to a thread that
/// waits for what the IO brings when one asks for it, and taking it back when that thread is done.
pub(crate) fn run(shared: &Shared) {
    loop {
        shared.role.wait_while_lent(&shared.closed);
        let mut poller = shared.lock_poller();
        let mut turned = match shared.closed.load(Ordering::SeqCst) {
            true => Turn::Closed,
            false => Turn::Ran,
        };
        while turned == Turn::Ran && !shared.role.hand_over() {
            turned = turn(&mut poller, shared, None);
        }
        drop(poller);
        if turned == Turn::Closed {
            let mut shell = shared.lock();
            shell.shut_down(Instant::now());
            let finished = shell.take_finished();
            drop(shell);
            finished.finish();
            shared.role.closed();
            return;
        }
    }
}

/// How long the IO thread leaves the IO to a thread whose wait ended (its `recv` returned, its
/// token completed): one that waits again within it keeps the poller, so a stream of messages or
/// acknowledgements wakes the IO thread about once per lease instead of once per packet. What
/// nobody polls for meanwhile (another thread's acknowledgements, which a waiting thread
/// reclaims anyway; a timer) is late by at most this.
pub(crate) const LEASE: Duration = Duration::from_millis(2);

/// After a caller has run the IO this long in one wait, the IO thread stops looking every
/// [`LEASE`] and sleeps until the caller gives the poller back (an idle client costs no
/// wake-ups).
const LONG_HOLD: Duration = Duration::from_millis(50);

/// Who runs the IO: the IO thread, or a thread waiting for what the IO brings.
///
/// A waiting thread asks for the poller ([`acquire`](Self::acquire)); the IO thread lets go after
/// its turn ([`hand_over`](Self::hand_over)). When the wait ends the caller lends the poller on
/// ([`leave`](Self::leave)): the IO thread takes it back when the lease ends, or at once when
/// someone needs it to ([`reclaim`](Self::reclaim)). Neither side wakes the other per packet: the
/// IO thread sleeps on a timer while the poller is out, and only a caller that held it past
/// [`LONG_HOLD`] wakes it when leaving. Only one caller runs the IO at a time; another waiting
/// thread waits for what that one's turns bring. Nobody waits on the poller's lock itself.
#[derive(Debug, Default)]
pub(crate) struct IoRole {
    state: Mutex<Lending>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Lending {
    holder: Holder,
    /// A caller waits for the IO thread to hand the poller over.
    wanted: bool,
    /// The IO thread handed it over to the caller that wanted it.
    handed: bool,
    /// The IO thread was asked to take the poller back now.
    reclaim: bool,
    /// The IO thread waits on `changed`: until then, or (`None`) until told.
    io_waiting: Option<Option<Instant>>,
    /// The IO thread has shut the client down.
    closed: bool,
    /// When a thread last asked for the poller.
    last_asked: Option<Instant>,
}

#[derive(Debug, Default, Clone, Copy)]
enum Holder {
    /// The IO thread (or nobody, between its turns).
    #[default]
    Io,
    /// A waiting thread, since then.
    Caller(Instant),
    /// Nobody; the IO thread takes it back then.
    Lent(Instant),
}

/// What [`IoRole::acquire`] got.
enum Acquired {
    Yes,
    /// Another caller runs the IO, or is being handed it.
    Busy,
    /// Not worth a hand-over: the last wait was longer ago than a lease, so this one is likely
    /// alone, and the IO thread reads for it with fewer wake-ups. Or the client closed.
    No,
}

impl IoRole {
    fn lock(&self) -> MutexGuard<'_, Lending> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A waiting thread asks for the poller: at once while it is lent, after the IO thread's turn
    /// (woken with `waker`) while that thread runs the IO. `now` is when it asks.
    fn acquire(&self, now: Instant, waker: &mio::Waker, closed: &AtomicBool) -> Acquired {
        let mut state = self.lock();
        let streaming = state
            .last_asked
            .is_some_and(|last| now.duration_since(last) <= LEASE);
        state.last_asked = Some(now);
        let mut asked = false;
        loop {
            if asked && state.handed {
                state.handed = false;
                return Acquired::Yes;
            }
            if state.closed || closed.load(Ordering::SeqCst) {
                if asked {
                    state.wanted = false;
                }
                return Acquired::No;
            }
            match state.holder {
                Holder::Lent(_) => {
                    state.holder = Holder::Caller(Instant::now());
                    return Acquired::Yes;
                }
                Holder::Caller(_) => return Acquired::Busy,
                Holder::Io if state.wanted && !asked => return Acquired::Busy,
                // A hand-over costs the IO thread a turn and each side a wake-up: it pays off only
                // when this thread keeps the poller over several waits.
                Holder::Io if !streaming && !asked => return Acquired::No,
                Holder::Io => {
                    if !asked {
                        asked = true;
                        state.wanted = true;
                        let _ = waker.wake();
                    }
                    // The IO thread's turn ends (the waker) and it hands over, or the client
                    // closes (it says so): both notify.
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }

    /// The IO thread, after a turn: whether it gives the poller to a caller that asked.
    fn hand_over(&self) -> bool {
        let mut state = self.lock();
        if !state.wanted {
            return false;
        }
        state.wanted = false;
        state.handed = true;
        state.holder = Holder::Caller(Instant::now());
        self.changed.notify_all();
        true
    }

    /// Whether a waiting thread runs the IO.
    fn caller_polls(&self) -> bool {
        matches!(self.lock().holder, Holder::Caller(_))
    }

    /// The caller is done with the poller.
    fn leave(&self, now: Instant) {
        let mut state = self.lock();
        state.holder = Holder::Lent(now + LEASE);
        if state.io_waiting == Some(None) {
            // The IO thread sleeps until told; nobody would poll otherwise.
            self.changed.notify_all();
        }
    }

    /// Someone needs the IO thread to run the IO now (a thread starts waiting on the client, a
    /// close, an earlier deadline): it takes the poller back if it is lent. Free when the IO
    /// thread holds it.
    pub(crate) fn reclaim(&self) {
        let mut state = self.lock();
        if !matches!(state.holder, Holder::Io) {
            state.reclaim = true;
            if state.io_waiting.is_some() {
                self.changed.notify_all();
            }
        }
    }

    /// The IO thread has shut the client down: callers waiting for a hand-over stop waiting.
    fn closed(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// The IO thread: returns when it should run the IO (again): the poller is not out, the
    /// lease ended, a reclaim came while it is lent, or the client closed and no caller holds
    /// it. While a caller holds the poller it looks again every [`LEASE`], or sleeps until told
    /// once the caller held it past [`LONG_HOLD`].
    fn wait_while_lent(&self, closed: &AtomicBool) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let reclaim = std::mem::take(&mut state.reclaim) || closed.load(Ordering::SeqCst);
            let until = match state.holder {
                Holder::Io => return,
                Holder::Lent(until) if reclaim || now >= until => {
                    state.holder = Holder::Io;
                    return;
                }
                Holder::Lent(until) => Some(until),
                Holder::Caller(since) if now.duration_since(since) >= LONG_HOLD => None,
                Holder::Caller(_) => Some(now + LEASE),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn waker() -> (Poll, mio::Waker) {
        let poll = Poll::new().expect("a poll");
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).expect("a waker");
        (poll, waker)
    }

    #[test]
    fn a_lone_wait_is_left_to_the_io_thread_and_a_stream_of_waits_is_handed_the_poller() {
        let role = Arc::new(IoRole::default());
        let (_poll, waker) = waker();
        let waker = Arc::new(waker);
        let closed = Arc::new(AtomicBool::new(false));
        let asked = Instant::now();
        assert!(matches!(role.acquire(asked, &waker, &closed), Acquired::No));

        // Asked again within a lease (the same instant: however late the thread starts on a
        // loaded machine): it waits until the IO thread's turn hands it over.
        let asker = {
            let (role, waker, closed) =
                (Arc::clone(&role), Arc::clone(&waker), Arc::clone(&closed));
            std::thread::spawn(move || {
                matches!(role.acquire(asked, &waker, &closed), Acquired::Yes)
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !role.hand_over() {
            assert!(Instant::now() < deadline, "nobody asked for the poller");
            std::thread::yield_now();
        }
        assert!(asker.join().expect("the asker"));
        assert!(role.caller_polls());
        // While it runs the IO, another waiting thread waits for what its turns bring.
        assert!(matches!(
            role.acquire(Instant::now(), &waker, &closed),
            Acquired::Busy
        ));

        // Done: lent for a lease, in which a new wait takes it without a hand-over.
        role.leave(Instant::now());
        assert!(!role.caller_polls());
        assert!(matches!(
            role.acquire(Instant::now(), &waker, &closed),
            Acquired::Yes
        ));
        let lent = Instant::now();
        role.leave(lent);

        // The IO thread takes it back when the lease ends, or at once when reclaimed.
        role.wait_while_lent(&closed);
        assert!(
            Instant::now() >= lent + LEASE,
            "returned before the lease ended"
        );
        assert!(matches!(role.lock().holder, Holder::Io));
        // Lent again, as after another wait, with a lease a minute long: a reclaim cuts it short.
        role.leave(Instant::now() + Duration::from_secs(60));
        role.reclaim();
        let started = Instant::now();
        role.wait_while_lent(&closed);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a reclaim waited for the lease"
        );
    }
}
