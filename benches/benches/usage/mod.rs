//! What the end-to-end benches (`broker.rs`, `store_cost.rs`) read to tell the CPU a run cost:
//! `getrusage` of this process or of its waited-for children, and a broker process's CPU time
//! from `/proc`.

use std::time::Instant;

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeValLike as _;

/// Process and broker counters at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    pub(crate) at: Instant,
    pub(crate) user_us: i64,
    pub(crate) sys_us: i64,
    pub(crate) voluntary_switches: i64,
    pub(crate) involuntary_switches: i64,
    pub(crate) broker_ticks: Option<u64>,
}

impl Snapshot {
    /// `who`'s counters (`RUSAGE_SELF`: this process; `RUSAGE_CHILDREN`: its children that ended
    /// and were waited for), and the broker's if its pid is known.
    pub(crate) fn take(who: UsageWho, broker_pid: Option<u32>) -> Self {
        let usage = getrusage(who).expect("getrusage");
        Self {
            at: Instant::now(),
            user_us: usage.user_time().num_microseconds(),
            sys_us: usage.system_time().num_microseconds(),
            voluntary_switches: usage.voluntary_context_switches(),
            involuntary_switches: usage.involuntary_context_switches(),
            broker_ticks: broker_pid.and_then(process_ticks),
        }
    }
}

/// utime + stime of another process, in clock ticks, from `/proc/<pid>/stat`.
pub(crate) fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are plain.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace();
    // After the name: state(3) ... utime(14) stime(15), so utime is the 12th from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second, the unit of [`process_ticks`].
pub(crate) fn clock_ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100)
}
