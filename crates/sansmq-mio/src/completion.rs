//! [`Completion`]: a one-shot result one thread sets and others wait for, with a timeout.

use std::cell::RefCell;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A value set once and awaited by any number of threads.
pub(crate) type Completion<T> = Arc<Once<T>>;

/// A value set once, in place (a delivery token keeps it beside its other fields, in one
/// allocation).
#[derive(Debug)]
pub(crate) struct Once<T> {
    slot: Mutex<Slot<T>>,
    set: Condvar,
}

/// The value and how many threads sleep waiting for it: `complete` only pays for a wake-up (a
/// futex call) when someone waits, which for most delivery tokens is nobody.
#[derive(Debug)]
struct Slot<T> {
    value: Option<T>,
    waiters: usize,
}

/// Told `true` before the thread blocks on the client and `false` after.
type BlockingHook = Box<dyn Fn(bool)>;

thread_local! {
    /// The callback thread's hook.
    static WHILE_BLOCKED: RefCell<Option<BlockingHook>> = const { RefCell::new(None) };
}

/// Calls `hook(true)` whenever this thread starts waiting for a [`Once`], and `hook(false)` when
/// the wait ends: the callback thread tells the IO thread so to read on (see `Shell::may_read`).
pub(crate) fn on_blocking(hook: impl Fn(bool) + 'static) {
    WHILE_BLOCKED.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
}

/// Whether this thread is a client's callback thread (it has a blocking hook).
pub(crate) fn on_callback_thread() -> bool {
    WHILE_BLOCKED.with(|h| h.borrow().is_some())
}

fn blocked(blocked: bool) {
    WHILE_BLOCKED.with(|h| h.borrow().as_ref().map(|hook| hook(blocked)));
}

impl<T> Default for Once<T> {
    fn default() -> Self {
        let slot = Slot {
            value: None,
            waiters: 0,
        };
        Self {
            slot: Mutex::new(slot),
            set: Condvar::new(),
        }
    }
}

impl<T: Clone> Once<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the value, unless it was set already; wakes every waiter.
    pub(crate) fn complete(&self, value: T) {
        let mut slot = self.lock();
        if slot.value.is_none() {
            slot.value = Some(value);
            if slot.waiters > 0 {
                self.set.notify_all();
            }
        }
    }

    /// The value, if set.
    pub(crate) fn peek(&self) -> Option<T> {
        self.lock().value.clone()
    }

    /// Waits for the value, at most `timeout` (forever with a timeout beyond what the clock can
    /// count, such as `Duration::MAX`).
    pub(crate) fn wait(&self, timeout: Duration) -> Option<T> {
        if let Some(value) = self.peek() {
            return Some(value);
        }
        let deadline = sansmq_driver::deadline_after(Instant::now(), timeout);
        blocked(true);
        let mut slot = self.lock();
        slot.waiters += 1;
        let value = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match &slot.value {
                Some(value) => break Some(value.clone()),
                None if left.is_zero() => break None,
                None => {}
            }
            slot = self
                .set
                .wait_timeout(slot, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        slot.waiters -= 1;
        drop(slot);
        blocked(false);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_beyond_the_clock_waits_for_the_value_instead_of_panicking() {
        let completion = Completion::default();
        let setter = completion.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            setter.complete(7);
        });
        assert_eq!(completion.wait(Duration::MAX), Some(7));
        let _ = thread.join();
    }
}
