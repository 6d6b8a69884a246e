//! What only the futures-io client's API shows, on smol against a mosquitto the tests start: a
//! publish awaited across a cut, dropping every handle, acknowledging what reaches `Events`, and
//! publishing without reading events. The behaviour every driver shares (QoS 0/1/2, reconnect with
//! re-subscribe, keep-alive, no loss across cuts) is in `scenarios.rs`.

use std::time::{Duration, Instant};

use sansmq_e2e::{FaultProxy, Mosquitto, PATIENCE};
use sansmq_futures::{Client, ConnectOptions, Error, Event, Events, QoS, Runtime, ServerUri};
use smol::net::TcpStream;

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
        let event = smol::future::or(events.recv(), async {
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
        while let Some(event) = events.recv().await {
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
