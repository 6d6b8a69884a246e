//! The IO thread, and the state it shares with the application's threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use mio::{Events, Poll};

use crate::callback::Dispatch;
use crate::dialer::SOCKET;
use crate::shell::Shell;

/// State shared by the handles, the IO thread and the callback thread.
pub(crate) struct Shared {
    pub(crate) shell: Mutex<Shell>,
    pub(crate) dispatch: Arc<Mutex<Dispatch>>,
    /// Shared with the DNS threads, which wake the IO thread when an answer is in (mio allows one
    /// waker per poll).
    pub(crate) waker: Arc<mio::Waker>,
    pub(crate) closed: AtomicBool,
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

    pub(crate) fn wake(&self) {
        let _ = self.waker.wake();
    }
}

/// Runs until the client is closed. No busy loop: between events it sleeps until the next deadline
/// (keep-alive, CONNACK, reconnect), so an idle client costs nothing between pings.
pub(crate) fn run(mut poll: Poll, shared: &Shared) {
    let mut events = Events::with_capacity(16);
    loop {
        let timeout = shared.lock().poll_wait(Instant::now());
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                tracing::error!(%e, "poll failed; the client stops");
                break;
            }
        }
        let mut shell = shared.lock();
        let now = Instant::now();
        if shared.closed.load(Ordering::SeqCst) {
            shell.shut_down(now);
            let finished = shell.take_finished();
            drop(shell);
            finished.finish();
            break;
        }
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
    }
}
