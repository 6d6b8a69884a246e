//! [`Completion`]: a one-shot result one thread sets and others wait for, with a timeout.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A value set once and awaited by any number of threads.
#[derive(Debug)]
pub(crate) struct Completion<T> {
    inner: Arc<(Mutex<Option<T>>, Condvar)>,
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
            inner: Arc::new((Mutex::new(None), Condvar::new())),
        }
    }

    /// Sets the value, unless it was set already; wakes every waiter.
    pub(crate) fn complete(&self, value: T) {
        let (lock, cond) = &*self.inner;
        let mut slot = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(value);
            cond.notify_all();
        }
    }

    /// The value, if set.
    pub(crate) fn peek(&self) -> Option<T> {
        let (lock, _) = &*self.inner;
        lock.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Waits for the value, at most `timeout` (forever with `None`).
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Option<T> {
        if let Some(value) = self.peek() {
            return Some(value);
        }
        crate::callback::blocking(|| self.wait_here(timeout))
    }

    fn wait_here(&self, timeout: Option<Duration>) -> Option<T> {
        let (lock, cond) = &*self.inner;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut slot = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(value) = slot.as_ref() {
                return Some(value.clone());
            }
            match deadline {
                None => slot = cond.wait(slot).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    slot = cond
                        .wait_timeout(slot, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }
}
