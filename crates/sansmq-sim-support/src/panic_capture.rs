//! Panics caught per seed: a sweep reports each with its message and place instead of letting
//! the default hook print every one.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};

thread_local! {
    /// The message of the last panic on this thread, while [`Quiet`] is installed.
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic hook, as `std::panic::take_hook` hands it back.
type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Keeps panics quiet while it lives: the hook records each panic's message and place for
/// [`catch`] instead of printing it; dropping it puts the previous hook back.
pub(crate) struct Quiet {
    previous: Option<Hook>,
}

impl Quiet {
    pub(crate) fn install() -> Self {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{payload}{location}")));
        }));
        Self {
            previous: Some(previous),
        }
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        // `set_hook` panics on a panicking thread: a sweep that is unwinding keeps the quiet hook.
        if let Some(previous) = self.previous.take().filter(|_| !std::thread::panicking()) {
            panic::set_hook(previous);
        }
    }
}

/// Runs `f`; a panic becomes `Err("panicked: {message}")` (the message is known while [`Quiet`]
/// is installed, "a panic" otherwise).
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        let message = PANIC_MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| "a panic".into());
        format!("panicked: {message}")
    })
}
