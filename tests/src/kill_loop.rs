//! [`KillLoop`]: runs a program again and again, killing it with `SIGKILL` at random moments, for
//! crash tests of what a process leaves on disk.

use std::fs::File;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A test's scale from the environment variable `name` (a number), or `default`: CI runs the
/// crash tests small, `cargo xtask crash` at full size.
pub fn scale_from_env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One run of the program: what it printed, and whether it was killed or ended by itself.
#[derive(Debug, Clone)]
pub struct Life {
    /// Its standard output, complete up to the kill (written to a file, so nothing is lost in a
    /// pipe's buffer when it dies).
    pub output: String,
    /// `SIGKILL` ended it.
    pub killed: bool,
    /// How long it ran.
    pub lasted: Duration,
}

impl Life {
    fn ended_by_itself(&self) -> bool {
        !self.killed
    }
}

impl Life {
    /// Its output's lines.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.output.lines()
    }
}

/// Runs a program, kills it (`SIGKILL`: no handler, no flush, no destructor) after a random time,
/// starts it again, and so on for `kills` kills; the last run ends by itself.
///
/// Lifetimes are drawn uniformly between the bounds, with a seeded generator (the seed is printed,
/// and `SANSMQ_KILL_SEED` replays one), so the kills land everywhere: while connecting, while
/// recovering the store, in the middle of a burst. A run that ends by itself before its kill (it
/// had little left to do) narrows the bounds to within its own length, so the kills still to come
/// land in such short runs too.
#[derive(Debug)]
pub struct KillLoop {
    rng: fastrand::Rng,
    seed: u64,
    kills: usize,
    life: (Duration, Duration),
    last_run_limit: Duration,
}

impl KillLoop {
    /// `kills` kills, each after 20 to 400 ms of life; the last run may take 60 s.
    pub fn new(kills: usize) -> Self {
        let seed = std::env::var("SANSMQ_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fastrand::u64(..));
        eprintln!("kill loop: seed {seed} (SANSMQ_KILL_SEED={seed} replays it)");
        Self {
            rng: fastrand::Rng::with_seed(seed),
            seed,
            kills,
            life: (Duration::from_millis(20), Duration::from_millis(400)),
            last_run_limit: Duration::from_secs(60),
        }
    }

    /// Each killed run lives between `min` and `max`.
    #[must_use]
    pub fn lifetimes(mut self, min: Duration, max: Duration) -> Self {
        self.life = (min, max.max(min));
        self
    }

    /// The seed of the kill times.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Runs `command(lives so far)` until `kills` runs were killed and one more ended by itself,
    /// and returns every run. `command` sees the earlier runs' output, to carry on where they
    /// stopped. A run that ends by itself before its kill is kept, and the loop goes on.
    ///
    /// # Panics
    ///
    /// If the program cannot be started, a run that ends by itself fails (its output is shown),
    /// or the last run outlives its limit (it is killed first).
    pub fn run(&mut self, mut command: impl FnMut(&[Life]) -> Command) -> Vec<Life> {
        let mut lives: Vec<Life> = Vec::new();
        loop {
            let killing = lives.iter().filter(|l| l.killed).count() < self.kills;
            if let Some(short) = lives.last().filter(|l| l.ended_by_itself()) {
                let (min, max) = self.life;
                let max = max.min(short.lasted);
                self.life = (min.min(max / 2), max);
            }
            let limit = if killing {
                let (min, max) = self.life;
                let span = (max - min).as_micros() as u64;
                min + Duration::from_micros(self.rng.u64(0..=span))
            } else {
                self.last_run_limit
            };
            let out = tempfile::tempfile().expect("a temporary file");
            let mut child = command(&lives)
                .stdout(Stdio::from(out.try_clone().expect("a second handle")))
                .stdin(Stdio::null())
                .spawn()
                .expect("the program starts");
            let started = Instant::now();
            let status = wait_at_most(&mut child, limit);
            if status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            let ended = status.is_some();
            let life = Life {
                output: read_all(out),
                killed: !ended,
                lasted: started.elapsed(),
            };
            if let Some(status) = status.filter(|s| !s.success()) {
                panic!(
                    "run {} failed ({status}) after {:?}; its output:\n{}",
                    lives.len() + 1,
                    life.lasted,
                    life.output
                );
            }
            if !killing {
                assert!(
                    ended,
                    "the last run did not end within {limit:?}; its output:\n{}",
                    life.output
                );
                lives.push(life);
                return lives;
            }
            lives.push(life);
        }
    }
}

/// Waits for `child` to exit, up to `limit`; its status if it did.
fn wait_at_most(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(2)));
    }
}

fn read_all(mut file: File) -> String {
    use std::io::Seek;
    let mut output = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut output);
    output
}
