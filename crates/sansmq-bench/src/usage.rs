//! [`Usage`]: a process's CPU time and resident memory, read from `/proc` (Linux), so that a
//! bench reports what it cost and a harness can read a broker's cost the same way.

use std::time::Duration;

/// CPU time (user + system) and resident set size of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// User plus system CPU time.
    pub cpu: Duration,
    /// Resident set size, in bytes.
    pub rss: u64,
}

impl Usage {
    /// This process's usage; `None` without `/proc`.
    pub fn current() -> Option<Self> {
        Self::read("self")
    }

    /// Process `pid`'s usage; `None` when it is gone (or without `/proc`).
    pub fn of(pid: u32) -> Option<Self> {
        Self::read(&pid.to_string())
    }

    fn read(pid: &str) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
        Self::parse(
            &stat,
            &statm,
            rustix::param::clock_ticks_per_second(),
            rustix::param::page_size(),
        )
    }

    /// From the texts of `/proc/<pid>/stat` and `/proc/<pid>/statm`.
    fn parse(stat: &str, statm: &str, ticks_per_second: u64, page_size: usize) -> Option<Self> {
        // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
        let after_name = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let ticks = utime + stime;
        let per = ticks_per_second.max(1);
        let cpu = Duration::from_secs(ticks / per)
            + Duration::from_nanos((ticks % per) * 1_000_000_000 / per);
        let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(Self {
            cpu,
            rss: resident * page_size as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_statm_are_read_past_a_strange_command_name() {
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 130 0 0 20 0 1 0";
        let usage = Usage::parse(stat, "1000 300 20 1 0 50 0", 100, 4096).unwrap();
        assert_eq!(usage.cpu, Duration::from_millis(3800));
        assert_eq!(usage.rss, 300 * 4096);
    }

    #[test]
    fn this_process_has_some_memory() {
        let usage = Usage::current().unwrap();
        assert!(usage.rss > 0);
        assert!(Usage::of(std::process::id()).is_some());
    }
}
