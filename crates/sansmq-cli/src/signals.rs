//! Ctrl-C and SIGTERM as a request to stop: `sub` and `pub -l` then end as they do at the end
//! of their input (`-C`, end of stdin), with a DISCONNECT, so that the broker does not publish
//! the will. Killed by the signal instead, the connection would just break.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use signal_hook::consts::{SIGINT, SIGTERM};

/// A flag that SIGINT and SIGTERM set from now on, instead of ending the process. Repeated
/// signals only set it again: the command is already on its way out, within its own deadlines.
pub(crate) fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .with_context(|| format!("handling signal {signal}"))?;
    }
    Ok(stop)
}
