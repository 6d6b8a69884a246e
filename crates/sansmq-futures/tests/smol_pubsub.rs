//! The futures-io client on smol against a mosquitto the tests start: messages round-trip at
//! every QoS, a cut connection comes back by itself with its subscription, keep-alive notices a
//! black-holed link, and dropping every handle ends the connection.

use std::time::{Duration, Instant};

use sansmq::DisconnectReason;
use sansmq_e2e::{FaultProxy, Mosquitto};
use sansmq_futures::{Client, ConnectOptions, Error, Event, Events, QoS, Runtime, ServerUri};
use smol::net::TcpStream;

/// How long anything that should happen may take on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// smol's sockets (plain TCP) and timer.
#[derive(Clone)]
struct Smol;

impl Runtime for Smol {
    type Stream = TcpStream;

    async fn connect(self, uri: ServerUri) -> std::io::Result<TcpStream> {
        TcpStream::connect((uri.host.as_str(), uri.port)).await
    }

    async fn sleep_until(self, deadline: Instant) {
        smol::Timer::at(deadline).await;
    }
}

/// A client on smol whose connection runs on a task of its own.
fn spawn_client(options: ConnectOptions) -> (Client, Events, smol::Task<()>) {
    let (client, events, connection) = Client::new(options, Smol).expect("valid options");
    (client, events, smol::spawn(connection))
}

/// Runs a test's body on smol, failing it if it has not finished within twice the patience.
fn run(body: impl std::future::Future<Output = ()>) {
    smol::block_on(smol::future::or(body, async {
        smol::Timer::after(2 * PATIENCE).await;
        panic!("the test did not finish within {:?}", 2 * PATIENCE);
    }));
}

fn options(uri: &str, client_id: &str) -> ConnectOptions {
    ConnectOptions::new(uri, client_id)
        .expect("valid options")
        .connect_timeout(Duration::from_secs(10))
}

/// The next event that `pick` wants, within [`PATIENCE`].
async fn next<T>(events: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let event = smol::future::or(async { events.recv().await.ok() }, async {
            smol::Timer::at(deadline).await;
            None
        });
        let event = event.await.expect("an event within the patience");
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

#[test]
fn messages_round_trip_at_qos_0_1_and_2() {
    let broker = Mosquitto::start();
    run(async {
        let (client, mut events, _connection) =
            spawn_client(options(&broker.url(), "futures-echo"));
        assert!(!client.connect().await.expect("connected"), "a new session");
        assert!(client.is_connected());
        let granted = client.subscribe(&[("echo/#", QoS::ExactlyOnce)]).await;
        assert_eq!(granted.expect("SUBACK"), [QoS::ExactlyOnce]);
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let payload = format!("{qos:?}");
            let topic = format!("echo/{}", qos as u8);
            client
                .publish(&topic, payload.clone(), qos, false)
                .await
                .expect("published");
            let message = next(&mut events, |event| match event {
                Event::Message(message) => Some(message),
                _ => None,
            })
            .await;
            assert_eq!(
                (message.topic.as_str(), &message.payload[..]),
                (&*topic, payload.as_bytes())
            );
            assert_eq!(message.qos, qos);
        }
        client.unsubscribe(&["echo/#"]).await.expect("UNSUBACK");
        client
            .disconnect(Duration::from_secs(1))
            .await
            .expect("disconnected");
        assert!(!client.is_connected());
    });
    let log = broker.log();
    assert!(
        log.contains("Received DISCONNECT from futures-echo"),
        "{log}"
    );
}

#[test]
fn reconnects_after_a_cut_and_subscribes_again() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    run(async {
        let reconnecting = options(&proxy.url(), "futures-phoenix")
            .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(500));
        let (client, mut events, _connection) = spawn_client(reconnecting);
        client.connect().await.expect("connected");
        client
            .subscribe(&[("phoenix/#", QoS::AtLeastOnce)])
            .await
            .expect("SUBACK");
        assert_eq!(proxy.cut(), 1);
        let cause = next(&mut events, |event| match event {
            Event::ConnectionLost { cause, .. } => Some(cause),
            _ => None,
        })
        .await;
        assert!(
            matches!(cause, Error::Io { .. } | Error::ConnectionLost(_)),
            "{cause:?}"
        );
        let (reconnect, session_present) = next(&mut events, |event| match event {
            Event::Connected {
                reconnect,
                session_present,
                ..
            } => Some((reconnect, session_present)),
            _ => None,
        })
        .await;
        assert!(reconnect && !session_present, "a new session after the cut");
        // The subscription is back: another client's message arrives.
        let (other, _other_events, _other_connection) =
            spawn_client(options(&broker.url(), "other"));
        other.connect().await.expect("connected");
        other
            .publish("phoenix/1", "risen", QoS::AtLeastOnce, false)
            .await
            .expect("PUBACK");
        let message = next(&mut events, |event| match event {
            Event::Message(message) => Some(message),
            _ => None,
        })
        .await;
        assert_eq!(&message.payload[..], b"risen");
    });
    assert_eq!(proxy.connections_accepted(), 2);
}

#[test]
fn a_publish_awaited_across_a_cut_resolves_after_the_reconnect() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    run(async {
        let patient = options(&proxy.url(), "futures-patient")
            .clean_session(false)
            .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(500));
        let (client, _events, _connection) = spawn_client(patient);
        client.connect().await.expect("connected");
        proxy.set_black_hole(true);
        let pending = client.publish_later("patient", "through".into(), QoS::ExactlyOnce, false);
        let pending = pending.await.expect("handed over");
        smol::Timer::after(Duration::from_millis(200)).await;
        proxy.set_black_hole(false);
        proxy.cut();
        pending.await.expect("PUBCOMP after the reconnect");
    });
    let log = broker.log();
    assert!(
        log.contains("Received PUBLISH from futures-patient (d1"),
        "{log}"
    );
}

#[test]
fn keep_alive_notices_a_black_holed_link() {
    const KEEP_ALIVE: Duration = Duration::from_secs(2);
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    run(async {
        let holed = options(&proxy.url(), "futures-holed").keep_alive(KEEP_ALIVE);
        let (client, mut events, _connection) = spawn_client(holed);
        client.connect().await.expect("connected");
        proxy.set_black_hole(true);
        let start = Instant::now();
        let cause = next(&mut events, |event| match event {
            Event::ConnectionLost { cause, .. } => Some(cause),
            _ => None,
        })
        .await;
        let took = start.elapsed();
        let keep_alive_expired = Error::ConnectionLost(DisconnectReason::KeepAliveTimeout);
        assert_eq!(cause.to_string(), keep_alive_expired.to_string());
        assert!(
            took <= KEEP_ALIVE.mul_f64(1.5) + Duration::from_millis(250),
            "{took:?}"
        );
    });
}

#[test]
fn dropping_every_handle_ends_the_connection_and_fails_what_waits() {
    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    run(async {
        let (client, mut events, connection) =
            spawn_client(options(&proxy.url(), "futures-dropped"));
        client.connect().await.expect("connected");
        proxy.set_black_hole(true);
        let pending = client.publish_later("t", "never acked".into(), QoS::AtLeastOnce, false);
        let pending = pending.await.expect("handed over");
        drop(client);
        let ended = smol::future::or(
            async {
                connection.await;
                true
            },
            async {
                smol::Timer::after(PATIENCE).await;
                false
            },
        );
        assert!(ended.await, "the connection ends with its last handle");
        assert!(matches!(pending.await, Err(Error::Closed)));
        while let Ok(event) = events.recv().await {
            assert!(matches!(event, Event::Connected { .. }), "{event:?}");
        }
    });
}

#[test]
fn acknowledges_what_it_hands_over_so_more_than_the_brokers_window_arrives() {
    // mosquitto sends a client at most 20 unacknowledged QoS 1 messages at a time.
    const MESSAGES: usize = 60;
    let broker = Mosquitto::start();
    run(async {
        let (client, mut events, _connection) =
            spawn_client(options(&broker.url(), "futures-acks"));
        client.connect().await.expect("connected");
        client
            .subscribe(&[("window", QoS::AtLeastOnce)])
            .await
            .expect("SUBACK");
        let (other, _other_events, _other_connection) = spawn_client(options(&broker.url(), "pub"));
        other.connect().await.expect("connected");
        for n in 0..MESSAGES {
            let handed =
                other.publish_later("window", n.to_string().into(), QoS::AtLeastOnce, false);
            drop(handed.await.expect("handed over"));
        }
        for n in 0..MESSAGES {
            let message = next(&mut events, |event| match event {
                Event::Message(message) => Some(message),
                _ => None,
            })
            .await;
            assert_eq!(&message.payload[..], n.to_string().as_bytes(), "in order");
        }
    });
}

#[test]
fn publishing_to_itself_without_reading_events_never_deadlocks() {
    // More than `Events` holds: the connection must go on reading for the PUBACKs.
    const MESSAGES: usize = 3_000;
    let broker = Mosquitto::start();
    run(async {
        let (client, mut events, _connection) =
            spawn_client(options(&broker.url(), "futures-self"));
        client.connect().await.expect("connected");
        client
            .subscribe(&[("self", QoS::AtLeastOnce)])
            .await
            .expect("SUBACK");
        for n in 0..MESSAGES {
            let published = client.publish("self", n.to_string(), QoS::AtLeastOnce, false);
            published.await.expect("PUBACK while the events pile up");
        }
        for n in 0..MESSAGES {
            let message = next(&mut events, |event| match event {
                Event::Message(message) => Some(message),
                _ => None,
            })
            .await;
            assert_eq!(&message.payload[..], n.to_string().as_bytes(), "none lost");
        }
    });
}
