//! [`Mosquitto`]: a private mosquitto broker for one test, on a free 127.0.0.1 port.

mod binary;
mod config;
mod passwd;

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use rustix::process::{Pid, Signal};
use tempfile::TempDir;

use config::Files;
pub use config::MosquittoBuilder;

use crate::certs::TestPki;
use crate::port::free_port;
use crate::wait::wait_until;

/// How long a broker may take to accept connections: generous, for a loaded 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a broker may take to save its database and exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Fresh ports tried when another process takes the one picked before mosquitto binds it.
const START_ATTEMPTS: usize = 5;
/// How much of the log a failing test prints.
const LOG_TAIL_BYTES: usize = 64 * 1024;

/// A mosquitto broker of its own for one test, listening on 127.0.0.1 only, with every file
/// (config, log, password file, persistence, certificates) in a temporary directory.
///
/// [`Mosquitto::start`] runs one with the defaults; [`Mosquitto::builder`] sets users, persistence,
/// TLS and limits. The broker is killed when this value is dropped, and if the test is panicking
/// the tail of the broker's log is printed to stderr first, so a failing test shows it.
///
/// ```
/// use sansmq_e2e::Mosquitto;
///
/// let broker = Mosquitto::builder().user("alice", "secret").persistence(true).start();
/// assert_eq!(broker.url(), format!("tcp://127.0.0.1:{}", broker.port()));
/// broker.stop(); // SIGTERM: mosquitto saves its sessions
/// broker.restart(); // same port, same persistence directory
/// assert!(broker.log().contains("Saving in-memory database"));
/// ```
///
/// The methods that change the process take `&self`, so a test may kill or restart the broker from
/// another thread while clients run.
pub struct Mosquitto {
    options: MosquittoBuilder,
    binary: PathBuf,
    files: Files,
    config_path: PathBuf,
    /// mosquitto's stdout and stderr: what it says before its log file is open.
    console_path: PathBuf,
    port: u16,
    tls_port: Option<u16>,
    child: Mutex<Option<Child>>,
    /// Last, so the files outlive everything that names them.
    dir: TempDir,
}

/// mosquitto could not bind a port: someone took it between [`free_port`] and the bind.
#[derive(Debug)]
struct PortInUse;

impl Mosquitto {
    /// Starts a broker with the default options (see [`MosquittoBuilder`]).
    ///
    /// # Panics
    ///
    /// If mosquitto is not installed, exits, or does not accept connections within 10 s; the panic
    /// message holds its log.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// The options of a broker to start.
    pub fn builder() -> MosquittoBuilder {
        MosquittoBuilder::new()
    }

    pub(crate) fn launch(options: MosquittoBuilder) -> Self {
        let binary = binary::mosquitto();
        let dir = tempfile::Builder::new()
            .prefix("sansmq-mosquitto-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a directory for mosquitto: {e}"));
        let files = Files {
            log: dir.path().join("mosquitto.log"),
            password_file: dir.path().join("passwd"),
            persistence_dir: dir.path().join("data"),
            unix_socket: dir.path().join("mosquitto.sock"),
        };
        fs::create_dir(&files.persistence_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", files.persistence_dir.display()));
        if !options.users.is_empty() {
            passwd::write(&files.password_file, &options.users);
        }
        let mut broker = Self {
            binary,
            config_path: dir.path().join("mosquitto.conf"),
            console_path: dir.path().join("console.log"),
            files,
            port: 0,
            tls_port: None,
            child: Mutex::new(None),
            options,
            dir,
        };
        for _ in 0..START_ATTEMPTS {
            broker.port = free_port();
            broker.tls_port = broker.options.tls.as_ref().map(|_| free_port());
            let config = broker
                .options
                .render(&broker.files, broker.port, broker.tls_port);
            fs::write(&broker.config_path, config)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", broker.config_path.display()));
            match broker.spawn_until_ready() {
                Ok(child) => {
                    *broker.lock_child() = Some(child);
                    return broker;
                }
                Err(PortInUse) => continue,
            }
        }
        panic!(
            "mosquitto found its port taken {START_ATTEMPTS} times in a row\n{}",
            broker.report()
        )
    }

    /// The address of the plain MQTT listener, `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The port of the plain MQTT listener.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The plain listener as a client URI: `tcp://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// The path of the Unix socket listener.
    ///
    /// # Panics
    ///
    /// If the broker was built without [`unix_socket`](MosquittoBuilder::unix_socket).
    pub fn unix_socket(&self) -> &Path {
        assert!(
            self.options.unix_socket,
            "this broker has no Unix socket: build it with Mosquitto::builder().unix_socket(true)"
        );
        &self.files.unix_socket
    }

    /// The Unix socket listener as a client URI: `unix:///tmp/…/mosquitto.sock`.
    ///
    /// # Panics
    ///
    /// If the broker was built without [`unix_socket`](MosquittoBuilder::unix_socket).
    pub fn unix_url(&self) -> String {
        format!("unix://{}", self.unix_socket().display())
    }

    /// The address of the TLS listener, `127.0.0.1:tls_port`.
    ///
    /// # Panics
    ///
    /// If the broker was built without [`tls`](MosquittoBuilder::tls).
    pub fn tls_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.tls_port()))
    }

    /// The port of the TLS listener.
    ///
    /// # Panics
    ///
    /// If the broker was built without [`tls`](MosquittoBuilder::tls).
    pub fn tls_port(&self) -> u16 {
        self.tls_port
            .expect("this broker has no TLS listener: build it with Mosquitto::builder().tls()")
    }

    /// The TLS listener as a client URI: `ssl://127.0.0.1:tls_port`. The server certificate is
    /// valid for `127.0.0.1` and `localhost` (mosquitto listens on IPv4 only, so `127.0.0.1` is
    /// the name that always reaches it).
    ///
    /// # Panics
    ///
    /// If the broker was built without [`tls`](MosquittoBuilder::tls).
    pub fn tls_url(&self) -> String {
        format!("ssl://127.0.0.1:{}", self.tls_port())
    }

    /// The certificates of the TLS listener, if it has one: trust
    /// [`ca_pem_path`](TestPki::ca_pem_path) to connect.
    pub fn pki(&self) -> Option<&TestPki> {
        self.options.tls.as_ref()
    }

    /// The directory holding the config, the log, the password file and the persistence data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of the running broker, if it runs.
    pub fn pid(&self) -> Option<u32> {
        let mut child = self.lock_child();
        reap_if_exited(&mut child);
        child.as_ref().map(Child::id)
    }

    /// Whether the broker process is alive (it may have exited on its own).
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// Kills the broker at once with SIGKILL, as a crash would: with persistence, what changed since
    /// the last autosave is lost (see [`wait_for_autosave`](Self::wait_for_autosave)). Does nothing
    /// if it is not running.
    pub fn kill(&self) {
        if let Some(mut child) = self.lock_child().take() {
            // Fails only if it has exited already, which is what we want.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker gracefully with SIGTERM and waits for it to exit, so that with persistence
    /// its database is written. Does nothing if it is not running.
    ///
    /// # Panics
    ///
    /// If it has not exited 10 s after SIGTERM (it is then killed).
    pub fn stop(&self) {
        let Some(mut child) = self.lock_child().take() else {
            return;
        };
        // Fails only if it has exited already (ESRCH).
        let _ = rustix::process::kill_process(Pid::from_child(&child), Signal::TERM);
        let exited = wait_until(STOP_TIMEOUT, || !matches!(child.try_wait(), Ok(None)));
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "mosquitto did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}",
                self.report()
            );
        }
    }

    /// Starts the broker again on the same ports, with the same files: a persistent broker resumes
    /// the sessions it saved. A running broker is [`stop`](Self::stop)ped first; after
    /// [`kill`](Self::kill) it restarts from its last autosave.
    ///
    /// # Panics
    ///
    /// If it does not accept connections within 10 s, or its port stays taken by another process
    /// for as long.
    pub fn restart(&self) {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn_until_ready() {
                Ok(child) => {
                    *self.lock_child() = Some(child);
                    return;
                }
                // Ports cannot change under the clients' feet: wait for it to be released.
                Err(PortInUse) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(100));
                }
                Err(PortInUse) => panic!(
                    "mosquitto cannot restart: port {} stays taken\n{}",
                    self.port,
                    self.report()
                ),
            }
        }
    }

    /// Waits until a persistent broker has saved its database after this call began: sessions and
    /// messages it had when this was called survive a [`kill`](Self::kill) from then on.
    ///
    /// # Panics
    ///
    /// Without [`persistence`](MosquittoBuilder::persistence), or if no save happens within the
    /// autosave interval plus 10 s.
    pub fn wait_for_autosave(&self) {
        let file = self
            .options
            .persistence_file(&self.files.persistence_dir)
            .expect("wait_for_autosave needs a broker built with persistence(true)");
        let since = SystemTime::now();
        let saved = || {
            fs::metadata(&file)
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| modified > since)
        };
        let timeout = self.options.autosave_interval + Duration::from_secs(10);
        assert!(
            wait_until(timeout, saved),
            "mosquitto did not save {} within {timeout:?}\n{}",
            file.display(),
            self.report()
        );
    }

    /// The broker's log so far (all runs, with [`restart`](Self::restart)).
    pub fn log(&self) -> String {
        read_lossy(&self.files.log, 0)
    }

    /// The path of the broker's log file.
    pub fn log_path(&self) -> &Path {
        &self.files.log
    }

    /// Starts mosquitto with the config as written and waits until it logs that it runs and both
    /// listeners accept a connection.
    fn spawn_until_ready(&self) -> Result<Child, PortInUse> {
        let log_start = file_len(&self.files.log);
        let console = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.console_path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.console_path.display()));
        let console_start = file_len(&self.console_path);
        let mut child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(clone_file(&console))
            .stderr(console)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));

        let this_run = || {
            let mut output = read_lossy(&self.files.log, log_start);
            output.push_str(&read_lossy(&self.console_path, console_start));
            output
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut pause = Duration::from_millis(5);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                if this_run().contains("Address already in use") {
                    return Err(PortInUse);
                }
                panic!(
                    "mosquitto exited while starting ({status})\n{}",
                    self.report()
                );
            }
            // "running" is logged once every listener is bound; the connects confirm it.
            if this_run().contains(" running\n")
                && self.accepts(self.port)
                && self.tls_port.is_none_or(|port| self.accepts(port))
            {
                return Ok(child);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mosquitto did not accept connections on 127.0.0.1:{} within {START_TIMEOUT:?}\n{}",
                    self.port,
                    self.report()
                );
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    fn accepts(&self, port: u16) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
    }

    /// The config, the end of the log and the console output, for a panic message.
    fn report(&self) -> String {
        format!(
            "--- {} ---\n{}--- {} (end) ---\n{}--- mosquitto's stdout and stderr ---\n{}",
            self.config_path.display(),
            read_lossy(&self.config_path, 0),
            self.files.log.display(),
            self.log_tail(),
            read_lossy(&self.console_path, 0),
        )
    }

    /// The last [`LOG_TAIL_BYTES`] of the log, from a line start.
    fn log_tail(&self) -> String {
        let len = file_len(&self.files.log);
        let tail = read_lossy(&self.files.log, len.saturating_sub(LOG_TAIL_BYTES as u64));
        if len as usize > LOG_TAIL_BYTES {
            let start = tail.find('\n').map_or(0, |i| i + 1);
            format!("[...]\n{}", &tail[start..])
        } else {
            tail
        }
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let tail = if thread::panicking() {
            self.log_tail()
        } else {
            String::new()
        };
        if !tail.is_empty() {
            eprintln!(
                "--- mosquitto on 127.0.0.1:{}, log {} (end) ---\n{tail}--- end of mosquitto log ---",
                self.port,
                self.files.log.display(),
            );
        }
        self.kill();
    }
}

impl std::fmt::Debug for Mosquitto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mosquitto")
            .field("port", &self.port)
            .field("tls_port", &self.tls_port)
            .field("dir", &self.dir.path())
            .field("pid", &self.lock_child().as_ref().map(Child::id))
            .field("options", &self.options)
            .finish()
    }
}

/// Forgets a child that has exited on its own (reaping it).
fn reap_if_exited(child: &mut Option<Child>) {
    if let Some(process) = child {
        if !matches!(process.try_wait(), Ok(None)) {
            *child = None;
        }
    }
}

fn clone_file(file: &File) -> File {
    file.try_clone()
        .unwrap_or_else(|e| panic!("cannot duplicate a file handle: {e}"))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |meta| meta.len())
}

/// The file's text from byte `start` on (a log may be large: only that part is read); empty if it
/// does not exist.
fn read_lossy(path: &Path, start: u64) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = File::open(path) {
        if file.seek(SeekFrom::Start(start)).is_ok() {
            let _ = file.read_to_end(&mut bytes);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
