//! A background thread that cuts the proxy's connections periodically.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::link::Shared;

/// Cuts every live connection about every `period`, until stopped or dropped.
#[derive(Debug)]
pub(super) struct Cutter {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Cutter {
    /// Starts cutting. Each pause is `period` ± 20 %, so cuts do not line up with a client's
    /// keep-alive or retry timers and land at every point of the protocol over a long run.
    pub(super) fn start(shared: Arc<Shared>, period: Duration) -> Self {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("fault-proxy-cutter".into())
                .spawn(move || {
                    let (stopped, wake) = &*stop;
                    loop {
                        let pause = period.mul_f64(fastrand::f64().mul_add(0.4, 0.8));
                        let guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
                        let (guard, _) = wake
                            .wait_timeout_while(guard, pause, |stopped| !*stopped)
                            .unwrap_or_else(PoisonError::into_inner);
                        if *guard {
                            return;
                        }
                        drop(guard);
                        shared.cut();
                    }
                })
                .unwrap_or_else(|e| panic!("cannot spawn the proxy's cutter thread: {e}"))
        };
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Cutter {
    /// Stops cutting and waits for the thread to end.
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
