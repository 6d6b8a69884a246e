//! A normal exit does not fire the will, even while messages keep arriving: the client sends
//! DISCONNECT, shuts down its write side and reads until the broker closes, instead of closing a
//! socket that holds unread bytes (Linux then sends a reset, the broker never reads the
//! DISCONNECT, and publishes the will). One scenario, run against each client and a real
//! mosquitto.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_e2e::{Mosquitto, wait_until};
use sansmq_mio::{ConnectOptions, Will};

use common::{PATIENCE, options};

/// Exits in a row; the bug fired the will on every one of them.
const EXITS: usize = 5;
/// The topic the flood publisher keeps publishing to.
const FLOOD: &str = "flood/data";

/// What each client does once per exit: connect with `options` (which carry a will), subscribe to
/// [`FLOOD`], take one message and then stop reading (so unread bytes pile up in its socket), and
/// disconnect normally.
type LeaveNormally = fn(ConnectOptions);

/// The scenario: a watcher on the will topic, a publisher flooding [`FLOOD`], and [`EXITS`]
/// normal exits by a client with a will. The watcher must see no will, and mosquitto must log
/// each exit as a DISCONNECT.
fn normal_exits_under_traffic_fire_no_will(client: &str, leave: LeaveNormally) {
    let broker = Mosquitto::start();
    let will_topic = format!("will/{client}");

    let watcher = sansmq_mio::Client::new(options(&broker.url(), "watcher")).unwrap();
    let wills = watcher.messages(64);
    watcher.connect().unwrap();
    watcher
        .subscribe(&[(will_topic.as_str(), QoS::AtLeastOnce)])
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let publisher = sansmq_mio::Client::new(options(&broker.url(), "flood")).unwrap();
        publisher.connect().unwrap();
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let payload = vec![b'x'; 1024];
            while !stop.load(Ordering::Relaxed) {
                if publisher
                    .publish(FLOOD, payload.clone(), QoS::AtMostOnce, false)
                    .is_err()
                {
                    // The queue is full: let it drain.
                    thread::sleep(Duration::from_millis(1));
                }
            }
            let _ = publisher.disconnect(Duration::from_secs(1));
        })
    };

    for exit in 0..EXITS {
        let client_id = format!("{client}-{exit}");
        let will = Will {
            topic: will_topic.clone(),
            payload: format!("{client_id} vanished").into(),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Default::default(),
        };
        leave(options(&broker.url(), &client_id).will(will));
        // mosquitto logs how each connection ended: "disconnected." after a DISCONNECT, a socket
        // error after a reset, "closed its connection." at an end of stream without DISCONNECT.
        assert!(
            wait_until(PATIENCE, || ended(&broker.log(), &client_id).is_some()),
            "mosquitto did not log the end of {client_id}:\n{}",
            broker.log()
        );
    }
    // A will is published at once when the broker sees a connection fail; give it a moment.
    let will = wills.recv_timeout(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    let log = broker.log();
    if let Ok(will) = will {
        let fired = 1 + wills.try_iter().count();
        panic!(
            "the will fired on {fired} of {EXITS} normal exits, first {:?}:\n{log}",
            String::from_utf8_lossy(&will.payload),
        );
    }
    for exit in 0..EXITS {
        let client_id = format!("{client}-{exit}");
        let end = ended(&log, &client_id).unwrap_or_default();
        assert!(
            end.ends_with(&format!("Client {client_id} disconnected.")),
            "{client_id} ended without a DISCONNECT the broker read: {end:?}"
        );
    }
}

/// The line of mosquitto's `log` that says how the connection of `client_id` ended, if it has:
/// "Client … disconnected." after a DISCONNECT; "disconnected: Broken pipe.", "closed its
/// connection." or a socket error otherwise.
fn ended<'a>(log: &'a str, client_id: &str) -> Option<&'a str> {
    let client = format!("Client {client_id} ");
    let socket_error = format!("client {client_id}, disconnecting");
    log.lines().find(|line| {
        line.contains(&socket_error)
            || line.find(&client).is_some_and(|at| {
                let rest = &line[at + client.len()..];
                rest.starts_with("disconnected") || rest.starts_with("closed its connection")
            })
    })
}

#[test]
fn mio_client_normal_exit_under_traffic_fires_no_will() {
    normal_exits_under_traffic_fire_no_will("mio", |options| {
        let client = sansmq_mio::Client::new(options).unwrap();
        // A receiver of one: once it is full the client stops reading, and the flood fills its
        // socket.
        let messages = client.messages(1);
        client.connect().unwrap();
        client.subscribe(&[(FLOOD, QoS::AtMostOnce)]).unwrap();
        messages.recv_timeout(PATIENCE).expect("the flood arrives");
        thread::sleep(Duration::from_millis(300));
        client.disconnect(Duration::from_secs(1)).unwrap();
        drop(messages);
        client.close();
    });
}

#[test]
fn tokio_client_normal_exit_under_traffic_fires_no_will() {
    normal_exits_under_traffic_fire_no_will("tokio", |options| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // An event stream of one, not read after the first message: the client stops
            // reading, and the flood fills its socket.
            let (client, mut events) = sansmq_tokio::Client::builder(options)
                .event_capacity(1)
                .build()
                .unwrap();
            client.connect().await.unwrap();
            client.subscribe(&[(FLOOD, QoS::AtMostOnce)]).await.unwrap();
            tokio::time::timeout(PATIENCE, events.next_message())
                .await
                .expect("the flood arrives")
                .expect("the client runs");
            tokio::time::sleep(Duration::from_millis(300)).await;
            client.disconnect(Duration::from_secs(1)).await.unwrap();
        });
    });
}
