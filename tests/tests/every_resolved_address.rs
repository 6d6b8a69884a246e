//! Both clients try every address a host name resolves to (Happy Eyeballs, RFC 8305): with a name
//! that resolves to `::1` first and `127.0.0.1` second, and mosquitto listening on 127.0.0.1 only,
//! `connect` succeeds (it failed when only the first address was used); with nothing listening,
//! the error names both addresses and why each failed; and when `::1` does not answer at all
//! (a full backlog), 127.0.0.1 is tried 250 ms later and wins. And the mio client resolves host
//! names off its IO thread: a DNS server that never answers does not freeze the client.
//!
//! No name on this machine resolves to two addresses (`/etc/hosts` maps `localhost` to 127.0.0.1
//! only), and a test must not edit `/etc/hosts`. So each test runs its scenario again in a child
//! process inside private user, mount and network namespaces (`unshare --user --map-root-user
//! --mount --net`), where temporary files are bind-mounted over `/etc/hosts` and
//! `/etc/resolv.conf` (naming a DNS server on the namespace's own loopback): the machine's files
//! are untouched and nothing outside that process sees them. The drivers' own unit tests check the
//! same fall-through on an injected address list, without a namespace.

mod common;
mod common_async;

use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sansmq_e2e::Mosquitto;

use common::options;

/// The name that resolves to `::1`, then `127.0.0.1`, inside the namespace.
const DUAL_STACK: &str = "dual-stack.sansmq.test";
/// A name that only the namespace's DNS server is asked about, and it never answers.
const UNANSWERED: &str = "unanswered.sansmq.test";
/// Set in the child process that runs the scenario inside the namespace.
const IN_NAMESPACE: &str = "SANSMQ_E2E_DUAL_STACK_NAMESPACE";

/// Whether to run the scenario here: in the child, yes. In the test process, runs `test` (this
/// test's name) in a child inside the namespace, fails if it failed, and returns `false`.
fn run_here(test: &str) -> bool {
    if std::env::var_os(IN_NAMESPACE).is_some() {
        return true;
    }
    let mut hosts = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        hosts,
        "::1 {DUAL_STACK}\n127.0.0.1 {DUAL_STACK}\n127.0.0.1 localhost"
    )
    .unwrap();
    // One try, with a long timeout: a lookup the server does not answer hangs for 30 s.
    let mut resolv = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        resolv,
        "nameserver 127.0.0.1\noptions timeout:30 attempts:1"
    )
    .unwrap();
    let output = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--net", "sh", "-c"])
        .arg(concat!(
            r#"ip link set lo up && mount --bind "$0" /etc/hosts && "#,
            r#"mount --bind "$1" /etc/resolv.conf && shift && exec "$@""#
        ))
        .arg(hosts.path())
        .arg(resolv.path())
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(IN_NAMESPACE, "1")
        .output()
        .unwrap_or_else(|e| panic!("unshare (util-linux) is needed to run {test}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{test} in a namespace ({}):\n{stdout}\n{stderr}",
        output.status
    );
    false
}

/// The URI of `port` on [`DUAL_STACK`], after checking that the name resolves as the test needs.
fn dual_stack_uri(port: u16) -> String {
    let addresses: Vec<SocketAddr> = (DUAL_STACK, port).to_socket_addrs().unwrap().collect();
    let expected: Vec<SocketAddr> =
        vec!["[::1]:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap()]
            .into_iter()
            .map(|mut a: SocketAddr| {
                a.set_port(port);
                a
            })
            .collect();
    assert_eq!(
        addresses, expected,
        "{DUAL_STACK} must resolve to ::1 first"
    );
    format!("tcp://{DUAL_STACK}:{port}")
}

/// A port on which nothing listens, on either address.
fn closed_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// A listener on `[::1]:port` whose backlog is full: a connection attempt to it gets no answer,
/// as from a host that drops packets. Keep it (and the connections) alive while needed.
fn black_hole_on_ipv6(port: u16) -> (TcpListener, Vec<TcpStream>) {
    let listener = TcpListener::bind((Ipv6Addr::LOCALHOST, port)).unwrap();
    // A backlog of 0 (std listens with a large one): once a connection waits, SYNs are dropped.
    rustix::net::listen(&listener, 0).unwrap();
    let address = listener.local_addr().unwrap();
    let mut waiting = Vec::new();
    loop {
        match TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            Ok(stream) => waiting.push(stream),
            Err(_) => return (listener, waiting),
        }
        assert!(waiting.len() < 16, "the backlog never filled");
    }
}

/// Asserts that `error` says it tried both of [`DUAL_STACK`]'s addresses on `port`, on one line.
fn assert_names_both_addresses(error: &dyn std::fmt::Display, port: u16) {
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "connecting to tcp://{DUAL_STACK}:{port}: [::1]:{port}: "
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!("; 127.0.0.1:{port}: ")),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn mio_client_tries_every_address_a_name_resolves_to() {
    if !run_here("mio_client_tries_every_address_a_name_resolves_to") {
        return;
    }
    let broker = Mosquitto::start();
    let client = sansmq_mio::Client::new(options(&dual_stack_uri(broker.port()), "dual")).unwrap();
    client.connect().expect("connects past the refused ::1");
    assert!(client.is_connected());
    client.disconnect(Duration::from_secs(5)).unwrap();

    // ::1 does not answer at all: 250 ms later 127.0.0.1 is tried too, and wins.
    let _black_hole = black_hole_on_ipv6(broker.port());
    let client = sansmq_mio::Client::new(options(&dual_stack_uri(broker.port()), "dual")).unwrap();
    client.connect().expect("connects past the silent ::1");
    client.disconnect(Duration::from_secs(5)).unwrap();

    let port = closed_port();
    let client = sansmq_mio::Client::new(options(&dual_stack_uri(port), "nowhere")).unwrap();
    let error = client.connect().unwrap_err();
    assert!(matches!(error, sansmq_mio::Error::Io { .. }), "{error:?}");
    assert_names_both_addresses(&error, port);
}

#[test]
fn tokio_client_tries_every_address_a_name_resolves_to() {
    if !run_here("tokio_client_tries_every_address_a_name_resolves_to") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let broker = Mosquitto::start();
        let (client, mut events) =
            sansmq_tokio::Client::new(options(&dual_stack_uri(broker.port()), "dual")).unwrap();
        client
            .connect()
            .await
            .expect("connects past the refused ::1");
        let (_, _, uri) = common_async::connected(&mut events, common::PATIENCE)
            .await
            .expect("Connected");
        assert_eq!(uri, dual_stack_uri(broker.port()));
        client.disconnect(Duration::from_secs(5)).await.unwrap();

        // ::1 does not answer at all: 250 ms later 127.0.0.1 is tried too, and wins.
        let _black_hole = black_hole_on_ipv6(broker.port());
        let (client, _events) =
            sansmq_tokio::Client::new(options(&dual_stack_uri(broker.port()), "dual")).unwrap();
        client
            .connect()
            .await
            .expect("connects past the silent ::1");
        client.disconnect(Duration::from_secs(5)).await.unwrap();

        let port = closed_port();
        let (client, _events) =
            sansmq_tokio::Client::new(options(&dual_stack_uri(port), "nowhere")).unwrap();
        let error = client.connect().await.unwrap_err();
        assert!(matches!(error, sansmq_tokio::Error::Io { .. }), "{error:?}");
        assert_names_both_addresses(&error, port);
    });
}

/// A DNS server on the namespace's loopback that takes queries and never answers; the receiver
/// learns when a query came in.
fn silent_dns_server() -> mpsc::Receiver<()> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 53)).expect("port 53 in the namespace");
    let (asked, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut query = [0; 512];
        while socket.recv_from(&mut query).is_ok() {
            let _ = asked.send(());
        }
    });
    rx
}

/// Runs `f` on a thread of its own; `None` if it did not return within `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

#[test]
fn mio_client_resolves_host_names_off_its_io_thread() {
    if !run_here("mio_client_resolves_host_names_off_its_io_thread") {
        return;
    }
    let dns_asked = silent_dns_server();
    let broker = Mosquitto::start();
    let port = broker.port();
    // The first URI answers; automatic reconnects go round to the second, whose name the DNS
    // server never resolves.
    let first = format!("tcp://127.0.0.1:{port}");
    let second = format!("tcp://{UNANSWERED}:{port}");
    let client = sansmq_mio::Client::new(
        options(&first, "patient")
            .server_uris(&[first.as_str(), second.as_str()])
            .unwrap()
            .automatic_reconnect(Duration::from_millis(10), Duration::from_millis(50)),
    )
    .unwrap();
    client.connect().unwrap();
    // Another client takes the id: mosquitto closes the first, which reconnects to the next URI.
    let thief = sansmq_mio::Client::new(options(&first, "patient")).unwrap();
    thief.connect().unwrap();
    dns_asked
        .recv_timeout(common::PATIENCE)
        .expect("the reconnect looks the name up");

    // The lookup hangs (30 s). Resolved on the IO thread, under the client's lock, it froze every
    // call for that long; now the client answers at once.
    let frozen = client.clone();
    let answered = within(Duration::from_secs(10), move || {
        let queued = frozen.publish(
            "while/resolving",
            "x",
            sansmq::packet::QoS::AtMostOnce,
            false,
        );
        (queued.is_ok(), frozen.is_connected())
    });
    assert_eq!(
        answered,
        Some((true, false)),
        "publish (queued offline) and is_connected must not wait for DNS"
    );
    let closing = client.clone();
    assert!(
        within(Duration::from_secs(10), move || closing.close()).is_some(),
        "close must not wait for DNS"
    );
}
