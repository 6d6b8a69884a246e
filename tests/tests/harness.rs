//! The harness itself works: brokers start, authenticate, persist and serve TLS; the proxy
//! forwards, cuts and black-holes. Spoken with the sansmq codec over plain sockets, so these tests
//! depend on no client crate.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sansmq::packet::{ConnAck, Connect, ConnectReturnCode, Packet, PacketDecoder, Password};
use sansmq_e2e::{FaultProxy, Mosquitto, TestPki, wait_until};

/// Long enough for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// An MQTT conversation over any byte stream, one packet at a time.
struct Raw<S> {
    stream: S,
    decoder: PacketDecoder,
}

impl<S: Read + Write> Raw<S> {
    fn new(stream: S) -> Self {
        Self {
            stream,
            decoder: PacketDecoder::new(64 * 1024),
        }
    }

    fn send(&mut self, packet: &Packet) -> io::Result<()> {
        let mut wire = BytesMut::new();
        packet.encode(&mut wire).expect("test packets are valid");
        self.stream.write_all(&wire)?;
        self.stream.flush()
    }

    /// The next packet; `UnexpectedEof` if the peer closed, `WouldBlock`/`TimedOut` on the
    /// stream's read timeout.
    fn receive(&mut self) -> io::Result<Packet> {
        let mut buf = [0; 4096];
        loop {
            if let Some(packet) = self.decoder.next_packet().expect("mosquitto speaks MQTT") {
                return Ok(packet);
            }
            match self.stream.read(&mut buf)? {
                0 => return Err(ErrorKind::UnexpectedEof.into()),
                n => self.decoder.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Sends `connect` and returns the CONNACK.
    fn connect(&mut self, connect: Connect) -> io::Result<ConnAck> {
        self.send(&Packet::Connect(Box::new(connect)))?;
        match self.receive()? {
            Packet::ConnAck(ack) => Ok(ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }
}

fn tcp(addr: SocketAddr) -> Raw<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    Raw::new(stream)
}

fn connect_packet(client_id: &str) -> Connect {
    Connect::new(client_id.try_into().unwrap())
}

fn with_login(client_id: &str, user: &str, password: &str) -> Connect {
    let mut connect = connect_packet(client_id);
    connect.username = Some(user.try_into().unwrap());
    connect.password = Some(Password::from(password));
    connect
}

fn persistent(client_id: &str) -> Connect {
    let mut connect = connect_packet(client_id);
    connect.clean_session = false;
    connect
}

fn accepted(ack: &ConnAck) -> bool {
    ack.code == ConnectReturnCode::Accepted
}

/// Whether the stream reports its end (EOF or an error other than a read timeout) within
/// `PATIENCE`.
/// Nothing comes through within a second: the read times out (`why` says what must not arrive).
fn assert_nothing_arrives(client: &mut Raw<TcpStream>, why: &str) {
    client
        .stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let error = client.receive().expect_err(why);
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{why}: {error:?}"
    );
}

fn sees_the_end(client: &mut Raw<TcpStream>) -> bool {
    match client.receive() {
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        Ok(packet) => panic!("expected the connection to end, got {packet:?}"),
    }
}

#[test]
fn broker_accepts_a_connect_on_its_own_port() {
    let broker = Mosquitto::start();
    assert_eq!(broker.url(), format!("tcp://127.0.0.1:{}", broker.port()));
    assert_eq!(broker.addr().port(), broker.port());
    let ack = tcp(broker.addr())
        .connect(connect_packet("direct"))
        .unwrap();
    assert!(accepted(&ack), "{ack:?}");
    assert!(!ack.session_present);
    assert!(
        wait_until(PATIENCE, || broker.log().contains("as direct")),
        "{}",
        broker.log()
    );
}

#[test]
fn password_file_accepts_the_right_password_and_refuses_others() {
    // An ApsaraMQ-style user name, with '|'.
    let user = "Signature|LTAI5tAccessKey|mqtt-cn-instance";
    let broker = Mosquitto::builder()
        .user(user, "right password")
        .user("bob", "other")
        .start();

    let right = tcp(broker.addr())
        .connect(with_login("right", user, "right password"))
        .unwrap();
    assert_eq!(right.code, ConnectReturnCode::Accepted);

    // mosquitto 2.0 answers a wrong password with 5, "not authorized", not 4.
    let wrong = tcp(broker.addr())
        .connect(with_login("wrong", user, "wrong password"))
        .unwrap();
    assert_eq!(wrong.code, ConnectReturnCode::NotAuthorized);

    let unknown = tcp(broker.addr())
        .connect(with_login("unknown", "mallory", "right password"))
        .unwrap();
    assert_eq!(unknown.code, ConnectReturnCode::NotAuthorized);

    let anonymous = tcp(broker.addr())
        .connect(connect_packet("anonymous"))
        .unwrap();
    assert_eq!(anonymous.code, ConnectReturnCode::NotAuthorized);
}

#[test]
fn proxy_forwards_and_cut_ends_the_connection() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    assert_eq!(proxy.upstream(), broker.addr());
    assert_eq!(proxy.url(), format!("tcp://127.0.0.1:{}", proxy.port()));

    let mut client = tcp(proxy.addr());
    assert!(accepted(
        &client.connect(connect_packet("proxied")).unwrap()
    ));
    assert_eq!(proxy.live_connections(), 1);

    assert_eq!(proxy.cut(), 1);
    assert!(sees_the_end(&mut client));
    assert_eq!(
        (
            proxy.connections_accepted(),
            proxy.cuts(),
            proxy.connections_cut()
        ),
        (1, 1, 1)
    );
    assert!(wait_until(PATIENCE, || proxy.live_connections() == 0));

    // The broker saw the connection go without DISCONNECT.
    assert!(
        wait_until(PATIENCE, || broker
            .log()
            .contains("proxied closed its connection")
            || broker.log().contains("Client proxied disconnected")),
        "{}",
        broker.log()
    );

    // The proxy goes on accepting.
    let mut again = tcp(proxy.addr());
    assert!(accepted(&again.connect(connect_packet("proxied")).unwrap()));
    assert_eq!(proxy.connections_accepted(), 2);
}

#[test]
fn black_hole_keeps_the_connection_open_but_drops_bytes() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    let mut client = tcp(proxy.addr());
    assert!(accepted(&client.connect(connect_packet("holed")).unwrap()));

    proxy.set_black_hole(true);
    assert!(proxy.is_black_hole());
    client.send(&Packet::PingReq).unwrap();
    assert_nothing_arrives(&mut client, "no PINGRESP through a black hole");
    assert_eq!(proxy.live_connections(), 1);

    // Whole packets were dropped, so the stream is still in step: a new PINGREQ is answered.
    proxy.set_black_hole(false);
    client.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    client.send(&Packet::PingReq).unwrap();
    assert_eq!(client.receive().unwrap(), Packet::PingResp);
}

#[test]
fn cut_every_cuts_periodically_until_stopped() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    proxy.cut_every(Duration::from_millis(100));

    // Reconnect after every cut until three connections have been cut.
    let deadline = Instant::now() + PATIENCE * 3;
    while proxy.connections_cut() < 3 {
        assert!(Instant::now() < deadline, "{proxy:?}");
        let mut client = tcp(proxy.addr());
        if client.connect(connect_packet("churn")).is_ok() {
            assert!(sees_the_end(&mut client));
        }
    }
    proxy.stop_cutting();

    let cuts = proxy.cuts();
    let mut client = tcp(proxy.addr());
    assert!(accepted(&client.connect(connect_packet("calm")).unwrap()));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(proxy.cuts(), cuts, "a cut after stop_cutting");
    client.send(&Packet::PingReq).unwrap();
    assert_eq!(client.receive().unwrap(), Packet::PingResp);
}

#[test]
fn proxy_resets_clients_while_the_broker_is_down() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    broker.kill();
    assert!(!broker.is_running());
    // The proxy accepts and resets at once: the client's connect or its first exchange fails.
    let early = TcpStream::connect_timeout(&proxy.addr(), PATIENCE).and_then(|stream| {
        stream.set_read_timeout(Some(PATIENCE))?;
        Raw::new(stream).connect(connect_packet("early"))
    });
    assert!(early.is_err(), "{early:?}");

    broker.restart();
    let ack = tcp(proxy.addr()).connect(connect_packet("later")).unwrap();
    assert!(accepted(&ack));
}

#[test]
fn dropping_the_proxy_closes_its_connections() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    let mut client = tcp(proxy.addr());
    assert!(accepted(&client.connect(connect_packet("orphan")).unwrap()));
    let addr = proxy.addr();
    drop(proxy);
    assert!(sees_the_end(&mut client));
    assert!(TcpStream::connect_timeout(&addr, PATIENCE).is_err());
}

#[test]
fn stop_and_restart_keep_a_persistent_session() {
    let broker = Mosquitto::builder()
        .persistence(true)
        .autosave_interval(Duration::from_secs(3600))
        .start();
    let first = tcp(broker.addr()).connect(persistent("keeper")).unwrap();
    assert!(accepted(&first) && !first.session_present, "{first:?}");

    let port = broker.port();
    broker.stop();
    assert!(!broker.is_running());
    assert!(TcpStream::connect_timeout(&broker.addr(), PATIENCE).is_err());
    broker.restart();
    assert_eq!(broker.port(), port);

    let second = tcp(broker.addr()).connect(persistent("keeper")).unwrap();
    assert!(accepted(&second) && second.session_present, "{second:?}");
    assert!(broker.log().contains("Saving in-memory database"));
}

#[test]
fn kill_after_an_autosave_keeps_a_persistent_session() {
    let broker = Mosquitto::builder().persistence(true).start();
    let first = tcp(broker.addr()).connect(persistent("survivor")).unwrap();
    assert!(accepted(&first) && !first.session_present, "{first:?}");

    broker.wait_for_autosave();
    let pid = broker.pid().unwrap();
    broker.kill();
    assert!(broker.pid().is_none());
    broker.restart();
    assert_ne!(broker.pid(), Some(pid));

    let second = tcp(broker.addr()).connect(persistent("survivor")).unwrap();
    assert!(accepted(&second) && second.session_present, "{second:?}");
}

#[test]
fn kill_without_persistence_forgets_the_session() {
    let broker = Mosquitto::start();
    let first = tcp(broker.addr()).connect(persistent("amnesiac")).unwrap();
    assert!(accepted(&first));
    broker.kill();
    broker.restart();
    let second = tcp(broker.addr()).connect(persistent("amnesiac")).unwrap();
    assert!(accepted(&second) && !second.session_present, "{second:?}");
}

#[test]
fn dropping_the_broker_kills_it() {
    let broker = Mosquitto::start();
    let addr = broker.addr();
    let pid = broker.pid().unwrap();
    let dir = broker.dir().to_owned();
    drop(broker);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(!dir.exists());
    assert!(TcpStream::connect_timeout(&addr, PATIENCE).is_err());
}

#[test]
#[should_panic(expected = "mosquitto exited while starting")]
fn a_broker_that_cannot_start_panics_with_its_log() {
    let _broker = Mosquitto::builder().config_line("no_such_option 1").start();
}

fn tls_config(ca: &str, client: Option<&TestPki>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(pki) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(pki.client_cert_pem_path()).unwrap()],
                PrivateKeyDer::from_pem_file(pki.client_key_pem_path()).unwrap(),
            )
            .unwrap(),
    };
    Arc::new(config)
}

/// Connects over TLS to `addr` as `server_name` and exchanges CONNECT/CONNACK.
fn tls_connect(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> io::Result<ConnAck> {
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let tls = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = TcpStream::connect_timeout(&addr, PATIENCE)?;
    tcp.set_read_timeout(Some(PATIENCE))?;
    Raw::new(rustls::StreamOwned::new(tls, tcp)).connect(connect_packet("tls"))
}

fn tls_error(error: &io::Error) -> Option<&rustls::Error> {
    error.get_ref()?.downcast_ref::<rustls::Error>()
}

#[test]
fn tls_listener_serves_a_certificate_signed_by_the_generated_ca() {
    let broker = Mosquitto::builder().tls().start();
    let pki = broker.pki().unwrap();
    assert_eq!(
        broker.tls_url(),
        format!("ssl://127.0.0.1:{}", broker.tls_port())
    );
    assert_ne!(broker.tls_port(), broker.port());

    for name in ["127.0.0.1", "localhost"] {
        let ack = tls_connect(broker.tls_addr(), name, tls_config(pki.ca_pem(), None)).unwrap();
        assert!(accepted(&ack), "{name}: {ack:?}");
    }

    let error = tls_connect(
        broker.tls_addr(),
        "127.0.0.1",
        tls_config(pki.wrong_ca_pem(), None),
    )
    .unwrap_err();
    assert!(
        matches!(
            tls_error(&error),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ),
        "{error:?}"
    );

    // TLS passes through the proxy untouched.
    let proxy = FaultProxy::start(broker.tls_addr());
    assert_eq!(proxy.tls_url(), format!("ssl://127.0.0.1:{}", proxy.port()));
    let ack = tls_connect(proxy.addr(), "127.0.0.1", tls_config(pki.ca_pem(), None)).unwrap();
    assert!(accepted(&ack));
}

#[test]
fn a_certificate_for_another_name_fails_host_name_verification() {
    let broker = Mosquitto::builder()
        .tls_with(TestPki::with_server_names(&["broker.invalid"]))
        .start();
    let ca = broker.pki().unwrap().ca_pem().to_owned();
    let error = tls_connect(broker.tls_addr(), "127.0.0.1", tls_config(&ca, None)).unwrap_err();
    assert!(
        matches!(
            tls_error(&error),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{error:?}"
    );
}

#[test]
fn mutual_tls_requires_the_client_certificate() {
    let broker = Mosquitto::builder()
        .require_client_certificate(true)
        .start();
    let pki = broker.pki().unwrap();

    let ack = tls_connect(
        broker.tls_addr(),
        "localhost",
        tls_config(pki.ca_pem(), Some(pki)),
    )
    .unwrap();
    assert!(accepted(&ack), "{ack:?}");

    let refused = tls_connect(
        broker.tls_addr(),
        "localhost",
        tls_config(pki.ca_pem(), None),
    );
    assert!(refused.is_err(), "{refused:?}");
}

#[test]
fn every_option_makes_a_config_mosquitto_accepts() {
    let broker = Mosquitto::builder()
        .user("carol", "pw")
        .allow_anonymous(true)
        .persistence(true)
        .autosave_interval(Duration::from_secs(5))
        .max_queued_messages(100)
        .max_inflight_messages(5)
        .require_client_certificate(true)
        .log_types(["warning", "notice"])
        .config_line("set_tcp_nodelay true")
        .start();
    let conf = std::fs::read_to_string(broker.dir().join("mosquitto.conf")).unwrap();
    for line in [
        "max_queued_messages 100",
        "max_inflight_messages 5",
        "autosave_interval 5",
        "require_certificate true",
        "log_type notice",
        "set_tcp_nodelay true",
    ] {
        assert!(
            conf.lines().any(|l| l == line),
            "{line:?} missing from\n{conf}"
        );
    }
    let anonymous = tcp(broker.addr()).connect(connect_packet("anon")).unwrap();
    assert!(accepted(&anonymous));
    let carol = tcp(broker.addr())
        .connect(with_login("carol", "carol", "pw"))
        .unwrap();
    assert!(accepted(&carol));
}

#[test]
fn broker_and_proxy_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Mosquitto>();
    send_sync::<FaultProxy>();
    send_sync::<TestPki>();
}

#[test]
fn black_hole_hides_the_broker_giving_up_on_a_silent_client() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    let mut client = tcp(proxy.addr());
    let mut connect = connect_packet("silent");
    connect.keep_alive = 1;
    assert!(accepted(&client.connect(connect).unwrap()));

    proxy.set_black_hole(true);
    // mosquitto drops a client silent for 1.5 x its keep-alive.
    assert!(
        wait_until(PATIENCE, || broker
            .log()
            .contains("silent has exceeded timeout")),
        "{}",
        broker.log()
    );
    assert_nothing_arrives(&mut client, "the broker's close must not come through");

    // When the link comes back, the first packet meets the closed connection.
    proxy.set_black_hole(false);
    let _ = client.send(&Packet::PingReq);
    client.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    assert!(sees_the_end(&mut client));
}
