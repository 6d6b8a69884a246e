//! [`MosquittoBuilder`]: the options of a test broker, and the `mosquitto.conf` they make.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Mosquitto;
use crate::certs::TestPki;

/// The options of a [`Mosquitto`], from [`Mosquitto::builder`]; [`start`](Self::start) runs it.
///
/// The defaults suit tests: anonymous clients allowed, no persistence, `max_queued_messages 0`
/// (mosquitto's default of 1000 drops messages for a slow subscriber, which a no-loss test would
/// blame on the client), mosquitto's own `max_inflight_messages` (20), no TLS, `log_type all`.
#[must_use = "a builder does nothing until `start` is called"]
pub struct MosquittoBuilder {
    pub(super) users: Vec<(String, String)>,
    pub(super) allow_anonymous: Option<bool>,
    pub(super) persistence: bool,
    pub(super) autosave_interval: Duration,
    pub(super) max_queued_messages: u32,
    pub(super) max_inflight_messages: Option<u16>,
    pub(super) tls: Option<TestPki>,
    pub(super) require_certificate: bool,
    pub(super) log_types: Vec<String>,
    pub(super) extra_lines: Vec<String>,
    pub(super) unix_socket: bool,
}

/// Where a broker's files are, for [`MosquittoBuilder::render`].
#[derive(Debug)]
pub(super) struct Files {
    pub(super) log: PathBuf,
    pub(super) password_file: PathBuf,
    pub(super) persistence_dir: PathBuf,
    pub(super) unix_socket: PathBuf,
}

impl MosquittoBuilder {
    pub(super) fn new() -> Self {
        Self {
            users: Vec::new(),
            allow_anonymous: None,
            persistence: false,
            autosave_interval: Duration::from_secs(1),
            max_queued_messages: 0,
            max_inflight_messages: None,
            tls: None,
            require_certificate: false,
            log_types: vec!["all".to_owned()],
            extra_lines: Vec::new(),
            unix_socket: false,
        }
    }

    /// Adds a user to the broker's password file (made with `mosquitto_passwd -b`). Once there is a
    /// user, anonymous clients are refused unless [`allow_anonymous`](Self::allow_anonymous) says
    /// otherwise. Names may contain `|` but not `:`.
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((name.into(), password.into()));
        self
    }

    /// Whether clients without a user name may connect. Default: yes without users, no with them.
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = Some(allow);
        self
    }

    /// Keeps sessions and queued QoS 1/2 messages in `persistence_location` so they survive
    /// [`Mosquitto::stop`] and [`Mosquitto::restart`].
    ///
    /// mosquitto writes its database on a graceful stop (SIGTERM) and every
    /// [`autosave_interval`](Self::autosave_interval); [`Mosquitto::kill`] (SIGKILL) loses whatever
    /// changed since the last save, as a real crash would.
    pub fn persistence(mut self, on: bool) -> Self {
        self.persistence = on;
        self
    }

    /// How often a persistent broker saves its database; whole seconds, rounded up. Default 1 s
    /// (mosquitto's own default is 30 minutes); zero saves only on a graceful stop.
    pub fn autosave_interval(mut self, interval: Duration) -> Self {
        self.autosave_interval = interval;
        self
    }

    /// mosquitto's `max_queued_messages`: how many QoS 1/2 messages it queues per client before it
    /// drops them. Default 0, unlimited.
    pub fn max_queued_messages(mut self, max: u32) -> Self {
        self.max_queued_messages = max;
        self
    }

    /// mosquitto's `max_inflight_messages`. Unset, mosquitto uses 20, and disconnects an MQTT 3.1.1
    /// publisher with more than that many QoS 2 messages awaiting PUBREL.
    pub fn max_inflight_messages(mut self, max: u16) -> Self {
        self.max_inflight_messages = Some(max);
        self
    }

    /// Adds a TLS listener on a second port, with a freshly generated [`TestPki`] (server
    /// certificate for `localhost` and `127.0.0.1`); see [`Mosquitto::pki`].
    pub fn tls(self) -> Self {
        self.tls_with(TestPki::generate())
    }

    /// Adds a TLS listener on a second port, serving `pki`'s server certificate.
    pub fn tls_with(mut self, pki: TestPki) -> Self {
        self.tls = Some(pki);
        self
    }

    /// Makes the TLS listener require a client certificate signed by the PKI's CA (mutual TLS).
    /// Adds a TLS listener with a generated PKI if there is none yet.
    pub fn require_client_certificate(mut self, require: bool) -> Self {
        if require && self.tls.is_none() {
            self = self.tls();
        }
        self.require_certificate = require;
        self
    }

    /// Adds a listener on a Unix domain socket in the broker's directory (`listener 0 PATH`),
    /// beside the TCP one; see [`Mosquitto::unix_socket`].
    pub fn unix_socket(mut self, on: bool) -> Self {
        self.unix_socket = on;
        self
    }

    /// mosquitto's `log_type`s (`all`, `debug`, `error`, `warning`, `notice`, `information`,
    /// `subscribe`, `unsubscribe`, `websockets`). Default `all`, which logs every packet:
    /// a bench may prefer fewer. `error` and `information` are always added, because starting a
    /// broker reads its "running" and "Address already in use" lines.
    pub fn log_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.log_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Appends a raw line to `mosquitto.conf`, after the listeners: a general option, or one for
    /// the last listener (the TLS one when there is TLS). A line mosquitto refuses makes
    /// [`start`](Self::start) panic with the broker's output.
    pub fn config_line(mut self, line: impl Into<String>) -> Self {
        self.extra_lines.push(line.into());
        self
    }

    /// Starts the broker and waits until it accepts connections; see [`Mosquitto`].
    ///
    /// # Panics
    ///
    /// If mosquitto is not installed, exits, or does not accept connections within 10 s; the panic
    /// message holds its log.
    pub fn start(self) -> Mosquitto {
        Mosquitto::launch(self)
    }

    /// The `mosquitto.conf` for these options, listening on `port` and, with TLS, `tls_port`.
    pub(super) fn render(&self, files: &Files, port: u16, tls_port: Option<u16>) -> String {
        let mut conf = String::from("# Generated by sansmq-e2e for one test.\n");
        let mut line = |args: fmt::Arguments<'_>| {
            conf.write_fmt(args)
                .expect("writing to a String cannot fail");
            conf.push('\n');
        };
        if rustix::process::getuid().is_root() {
            // Started as root, mosquitto 2.0 switches to the `mosquitto` user, who cannot write
            // to our temporary directory.
            line(format_args!("user root"));
        }
        let anonymous = self.allow_anonymous.unwrap_or(self.users.is_empty());
        line(format_args!("allow_anonymous {anonymous}"));
        if !self.users.is_empty() {
            line(format_args!(
                "password_file {}",
                files.password_file.display()
            ));
        }
        line(format_args!(
            "max_queued_messages {}",
            self.max_queued_messages
        ));
        if let Some(max) = self.max_inflight_messages {
            line(format_args!("max_inflight_messages {max}"));
        }
        if self.persistence {
            line(format_args!("persistence true"));
            // mosquitto appends the file name to the location as is: the trailing '/' matters.
            line(format_args!(
                "persistence_location {}/",
                files.persistence_dir.display()
            ));
            let seconds = self.autosave_interval.as_secs()
                + u64::from(self.autosave_interval.subsec_nanos() > 0);
            line(format_args!("autosave_interval {seconds}"));
        }
        line(format_args!("log_dest file {}", files.log.display()));
        line(format_args!("log_timestamp_format %H:%M:%S"));
        for log_type in ["error", "information"]
            .iter()
            .copied()
            .chain(self.log_types.iter().map(String::as_str))
        {
            line(format_args!("log_type {log_type}"));
        }
        if self.unix_socket {
            // Before the TCP listener: the options that follow a listener are the last one's.
            line(format_args!("listener 0 {}", files.unix_socket.display()));
        }
        line(format_args!("listener {port} 127.0.0.1"));
        if let (Some(pki), Some(tls_port)) = (&self.tls, tls_port) {
            line(format_args!("listener {tls_port} 127.0.0.1"));
            line(format_args!("cafile {}", pki.ca_pem_path().display()));
            line(format_args!(
                "certfile {}",
                pki.server_cert_pem_path().display()
            ));
            line(format_args!(
                "keyfile {}",
                pki.server_key_pem_path().display()
            ));
            line(format_args!(
                "require_certificate {}",
                self.require_certificate
            ));
        }
        for extra in &self.extra_lines {
            line(format_args!("{extra}"));
        }
        conf
    }

    /// Whether a persistent database is kept, and where its file is in `dir`.
    pub(super) fn persistence_file(&self, dir: &Path) -> Option<PathBuf> {
        self.persistence.then(|| dir.join("mosquitto.db"))
    }
}

impl fmt::Debug for MosquittoBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&str> = self.users.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("MosquittoBuilder")
            .field("users", &users)
            .field("allow_anonymous", &self.allow_anonymous)
            .field("persistence", &self.persistence)
            .field("autosave_interval", &self.autosave_interval)
            .field("max_queued_messages", &self.max_queued_messages)
            .field("max_inflight_messages", &self.max_inflight_messages)
            .field("tls", &self.tls)
            .field("require_certificate", &self.require_certificate)
            .field("log_types", &self.log_types)
            .field("extra_lines", &self.extra_lines)
            .field("unix_socket", &self.unix_socket)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Files {
        Files {
            log: "/t/mosquitto.log".into(),
            password_file: "/t/passwd".into(),
            persistence_dir: "/t/data".into(),
            unix_socket: "/t/mosquitto.sock".into(),
        }
    }

    #[test]
    fn defaults_allow_anonymous_and_never_drop() {
        let conf = MosquittoBuilder::new().render(&files(), 1234, None);
        assert!(conf.contains("\nallow_anonymous true\n"), "{conf}");
        assert!(conf.contains("\nmax_queued_messages 0\n"), "{conf}");
        assert!(conf.contains("\nlistener 1234 127.0.0.1\n"), "{conf}");
        assert!(!conf.contains("password_file"), "{conf}");
        assert!(!conf.contains("persistence"), "{conf}");
        assert!(!conf.contains("max_inflight_messages"), "{conf}");
    }

    #[test]
    fn users_turn_anonymous_off_and_name_the_password_file() {
        let conf = MosquittoBuilder::new()
            .user("a|b", "pw")
            .render(&files(), 1, None);
        assert!(conf.contains("\nallow_anonymous false\n"), "{conf}");
        assert!(conf.contains("\npassword_file /t/passwd\n"), "{conf}");
    }

    #[test]
    fn persistence_location_ends_with_a_slash_and_autosave_rounds_up() {
        let conf = MosquittoBuilder::new()
            .persistence(true)
            .autosave_interval(Duration::from_millis(1500))
            .render(&files(), 1, None);
        assert!(conf.contains("\npersistence_location /t/data/\n"), "{conf}");
        assert!(conf.contains("\nautosave_interval 2\n"), "{conf}");
    }

    #[test]
    fn a_unix_socket_listener_comes_before_the_tcp_one() {
        let conf = MosquittoBuilder::new()
            .unix_socket(true)
            .render(&files(), 1, None);
        assert!(
            conf.contains("\nlistener 0 /t/mosquitto.sock\nlistener 1 127.0.0.1\n"),
            "{conf}"
        );
        let conf = MosquittoBuilder::new().render(&files(), 1, None);
        assert!(!conf.contains("listener 0"), "{conf}");
    }

    #[test]
    fn extra_lines_come_after_the_listeners() {
        let conf = MosquittoBuilder::new()
            .config_line("set_tcp_nodelay true")
            .render(&files(), 1, None);
        assert!(
            conf.ends_with("listener 1 127.0.0.1\nset_tcp_nodelay true\n"),
            "{conf}"
        );
    }
}
