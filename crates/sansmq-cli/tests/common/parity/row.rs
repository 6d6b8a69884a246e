//! One row of the parity table: the same arguments for mosquitto_pub/sub and `sansmq pub`/`sub`,
//! what to prepare around the run, and whether the two must behave the same.

use std::time::Duration;

/// Which pair of tools a row runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Pub,
    Sub,
    /// mosquitto_rr and `sansmq rr`.
    Rr,
}

impl Tool {
    pub(crate) fn mosquitto(self) -> &'static str {
        match self {
            Self::Pub => "mosquitto_pub",
            Self::Sub => "mosquitto_sub",
            Self::Rr => "mosquitto_rr",
        }
    }

    pub(crate) fn sansmq(self) -> &'static str {
        match self {
            Self::Pub => "pub",
            Self::Sub => "sub",
            Self::Rr => "rr",
        }
    }
}

/// Which broker the watcher, the feeder and the cleaner talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Broker {
    /// The anonymous broker (plain, TLS and unix listeners).
    Main,
    /// The broker with `allow_anonymous false` and a password file.
    Auth,
}

/// What the row's two runs must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Same exit code, stdout bytes, watched messages and retained messages.
    Same,
    /// A deliberate difference, and why.
    Differs(&'static str),
}

/// A message published by the test around a run; `topic` may hold placeholders.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub(crate) topic: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    /// MQTT 5 properties as mosquitto_pub's `-D` flags (placeholders allowed): such a message is
    /// published with `mosquitto_pub -V 5`, the harness's own client speaking only 3.1.1.
    pub(crate) properties: Vec<String>,
}

/// A row. Arguments may hold placeholders, replaced per run (see `Places`): `{t}` the row's own
/// topic, `{id}` the row's client id, `{port}` the main broker, and so on; `{b}` (the main
/// broker, `-h 127.0.0.1 -p {port}`) is expanded before the words are split.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) name: &'static str,
    pub(crate) tool: Tool,
    pub(crate) args: Vec<String>,
    pub(crate) stdin: Vec<u8>,
    /// Published retained before the run.
    pub(crate) retained: Vec<Msg>,
    /// Published once the `sub` holds its subscriptions.
    pub(crate) feed: Vec<Msg>,
    /// After this a run is killed and counts as "timed out".
    pub(crate) timeout: Duration,
    /// The run must end within this (for `-W`); compared as a yes/no.
    pub(crate) within: Option<Duration>,
    /// Replace every digit of stdout by `#` before comparing (times, pids).
    pub(crate) mask_digits: bool,
    /// Compare only whether stdout is empty (for `--help`, `-d`: texts that are our own).
    pub(crate) stdout_presence: bool,
    /// Sent (`TERM`, `INT`) once the tool is ready: subscribed, or `ready_log` is in the log.
    pub(crate) signal: Option<&'static str>,
    /// What the broker's log must show before the feed or the signal (placeholders allowed);
    /// by default, the `sub`'s subscriptions.
    pub(crate) ready_log: Option<String>,
    /// Keep stdin open after writing `stdin`, until the run ends (a `pub -l` that waits).
    pub(crate) keep_stdin_open: bool,
    /// Exit codes that count as one: mosquitto itself picks among them at random.
    pub(crate) exit_alike: Option<&'static [i32]>,
    pub(crate) broker: Broker,
    /// Also watch with an MQTT 5 subscriber (mosquitto_sub -V 5), which shows each message's
    /// properties: for `pub -D publish ...` rows.
    pub(crate) watch_v5: bool,
    pub(crate) expect: Expect,
    /// Kept in the table but not run, and why.
    pub(crate) ignored: Option<&'static str>,
}

/// A `mosquitto_pub`/`sansmq pub` row with these arguments (split like a shell, `'...'` quotes).
pub(crate) fn publish(name: &'static str, args: &str) -> Row {
    Row::new(name, Tool::Pub, args)
}

/// A `mosquitto_rr`/`sansmq rr` row with these arguments.
pub(crate) fn request(name: &'static str, args: &str) -> Row {
    Row::new(name, Tool::Rr, args)
}

/// A `mosquitto_sub`/`sansmq sub` row with these arguments.
pub(crate) fn subscribe(name: &'static str, args: &str) -> Row {
    Row::new(name, Tool::Sub, args)
}

impl Row {
    fn new(name: &'static str, tool: Tool, args: &str) -> Self {
        Self {
            name,
            tool,
            args: split(&args.replace("{b}", "-h 127.0.0.1 -p {port}")),
            stdin: Vec::new(),
            retained: Vec::new(),
            feed: Vec::new(),
            timeout: Duration::from_secs(10),
            within: None,
            mask_digits: false,
            stdout_presence: false,
            signal: None,
            ready_log: None,
            keep_stdin_open: false,
            exit_alike: None,
            broker: Broker::Main,
            watch_v5: false,
            expect: Expect::Same,
            ignored: None,
        }
    }

    /// Appends one argument as is (for values with spaces or quotes).
    pub(crate) fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub(crate) fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    /// A retained message on `topic`, published before the run.
    pub(crate) fn retained(mut self, topic: &str, payload: impl Into<Vec<u8>>, qos: u8) -> Self {
        self.retained.push(Msg {
            topic: topic.to_owned(),
            payload: payload.into(),
            qos,
            retain: true,
            properties: Vec::new(),
        });
        self
    }

    /// A message published once the `sub` has subscribed.
    pub(crate) fn feed(mut self, topic: &str, payload: impl Into<Vec<u8>>, qos: u8) -> Self {
        self.feed.push(Msg {
            topic: topic.to_owned(),
            payload: payload.into(),
            qos,
            retain: false,
            properties: Vec::new(),
        });
        self
    }

    /// A retained message published once the `sub` has subscribed.
    pub(crate) fn feed_retained(mut self, topic: &str, payload: &str, qos: u8) -> Self {
        self.feed.push(Msg {
            topic: topic.to_owned(),
            payload: payload.as_bytes().to_vec(),
            qos,
            retain: true,
            properties: Vec::new(),
        });
        self
    }

    /// A message with MQTT 5 properties (`-D` flags, split like a shell) published once the tool
    /// is ready.
    pub(crate) fn feed_v5(mut self, topic: &str, payload: &str, qos: u8, properties: &str) -> Self {
        self.feed.push(Msg {
            topic: topic.to_owned(),
            payload: payload.as_bytes().to_vec(),
            qos,
            retain: false,
            properties: split(properties),
        });
        self
    }

    pub(crate) fn timeout(mut self, seconds: u64) -> Self {
        self.timeout = Duration::from_secs(seconds);
        self
    }

    pub(crate) fn within(mut self, limit: Duration) -> Self {
        self.within = Some(limit);
        self
    }

    pub(crate) fn mask_digits(mut self) -> Self {
        self.mask_digits = true;
        self
    }

    pub(crate) fn stdout_presence(mut self) -> Self {
        self.stdout_presence = true;
        self
    }

    /// Sends `signal` (as `kill -s` names it) once the tool is ready.
    pub(crate) fn signal(mut self, signal: &'static str) -> Self {
        self.signal = Some(signal);
        self
    }

    /// The tool is ready once the broker's log holds `needle`.
    pub(crate) fn ready_when_logged(mut self, needle: &str) -> Self {
        self.ready_log = Some(needle.to_owned());
        self
    }

    pub(crate) fn keep_stdin_open(mut self) -> Self {
        self.keep_stdin_open = true;
        self
    }

    /// Any of `codes` counts as the same exit code (the first is recorded).
    pub(crate) fn exit_alike(mut self, codes: &'static [i32]) -> Self {
        self.exit_alike = Some(codes);
        self
    }

    pub(crate) fn on_auth_broker(mut self) -> Self {
        self.broker = Broker::Auth;
        self
    }

    pub(crate) fn watch_v5(mut self) -> Self {
        self.watch_v5 = true;
        self
    }

    pub(crate) fn differs(mut self, why: &'static str) -> Self {
        self.expect = Expect::Differs(why);
        self
    }

    /// No row needs it today; kept so that a row waiting for a harness piece stays in the table.
    #[allow(dead_code)]
    pub(crate) fn ignore(mut self, why: &'static str) -> Self {
        self.ignored = Some(why);
        self
    }

    /// How many subscriptions the broker's log must show before the feed is published.
    pub(crate) fn subscriptions(&self) -> usize {
        let flags = self
            .args
            .iter()
            .filter(|a| *a == "-t" || *a == "--topic")
            .count();
        let url_topic = self
            .args
            .windows(2)
            .filter(|w| (w[0] == "-L" || w[0] == "--url") && w[1].contains("{t}"))
            .count();
        (flags + url_topic).max(1)
    }
}

/// Splits like a shell: on spaces, except inside single quotes.
fn split(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in args.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    out.push(std::mem::take(&mut word));
                }
                started = false;
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(word);
    }
    out
}

#[test]
fn split_keeps_quoted_spaces_and_empty_words() {
    assert_eq!(
        split("-F '%t %p' -m '' -t x"),
        ["-F", "%t %p", "-m", "", "-t", "x"]
    );
}
