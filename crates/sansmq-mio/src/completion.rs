//! [`Completion`]: a one-shot result one thread sets and others wait for, with a timeout.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A value set once and awaited by any number of threads.
#[derive(Debug)]
pub(crate) struct Completion<T> {
    inner: Arc<(Mutex<Slot<T>>, Condvar)>,
}

/// The value and how many threads sleep waiting for it: `complete` only pays for a wake-up (a
/// futex call) when someone waits, which for most delivery tokens is nobody.
#[derive(Debug)]
struct Slot<T> {
    value: Option<T>,
    waiters: usize,
}

impl<T> Clone for Completion<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Clone> Completion<T> {
    pub(crate) fn new() -> Self {
        Self {
            inner: Arc::new((
                Mutex::new(Slot {
                    value: None,
                    waiters: 0,
                }),
                Condvar::new(),
            )),
        }
    }

    /// Sets the value, unless it was set already; wakes every waiter.
    pub(crate) fn complete(&self, value: T) {
        let (lock, cond) = &*self.inner;
        let mut slot = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.value.is_none() {
            slot.value = Some(value);
            if slot.waiters > 0 {
                cond.notify_all();
            }
        }
    }

    /// The value, if set.
    pub(crate) fn peek(&self) -> Option<T> {
        let (lock, _) = &*self.inner;
        lock.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .value
            .clone()
    }

    /// Waits for the value, at most `timeout` (forever with `None`, or with a timeout beyond what
    /// the clock can count, such as `Duration::MAX`).
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Option<T> {
        if let Some(value) = self.peek() {
            return Some(value);
        }
        crate::callback::blocking(|| self.wait_here(timeout))
    }

    fn wait_here(&self, timeout: Option<Duration>) -> Option<T> {
        let (lock, cond) = &*self.inner;
        let deadline = timeout.map(|t| sansmq_driver::deadline_after(Instant::now(), t));
        let mut slot = lock.lock().unwrap_or_else(PoisonError::into_inner);
        slot.waiters += 1;
        let result = loop {
            if let Some(value) = slot.value.as_ref() {
                break Some(value.clone());
            }
            match deadline {
                None => slot = cond.wait(slot).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break None;
                    }
                    slot = cond
                        .wait_timeout(slot, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        };
        slot.waiters -= 1;
        result
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    #[test]
    fn a_timeout_beyond_the_clock_waits_for_the_value_instead_of_panicking() {
        let completion = Completion::new();
        let setter = completion.clone();
        let thread = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            setter.complete(7);
        });
        assert_eq!(completion.wait(Some(Duration::MAX)), Some(7));
        let _ = thread.join();
    }
}
