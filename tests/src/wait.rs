//! Waiting for a condition with a deadline, for tests on a loaded machine.

use std::thread;
use std::time::{Duration, Instant};

/// How long anything that should happen may take on a loaded 2-core machine: the bound on every
/// wait for something that should happen in an e2e test.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `condition` until it holds, sleeping a little more between polls each time (1 ms up to
/// 50 ms), and returns whether it held before `timeout`.
///
/// For conditions nothing can signal (a file appearing, a counter in another process); use a
/// channel or a condition variable when there is one.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if condition() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_true_once_the_condition_holds() {
        let mut calls = 0;
        assert!(wait_until(Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        }));
    }

    #[test]
    fn gives_up_at_the_deadline() {
        let start = Instant::now();
        assert!(!wait_until(Duration::from_millis(30), || false));
        assert!(start.elapsed() >= Duration::from_millis(30));
    }
}
