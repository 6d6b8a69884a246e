//! Messages go through a real mosquitto between mio clients: retained messages, the will, a 1 MiB
//! payload, per-subscription handlers, unsubscribe, and 100 clients at once. Every QoS, in order,
//! is a scenario of `scenarios.rs`, run for every driver.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sansmq::CommandError;
use sansmq::packet::{EncodeError, QoS};
use sansmq_e2e::{FaultProxy, Mosquitto, wait_until};
use sansmq_mio::{Client, Error, Message, Will};

use common::{PATIENCE, Recorder, options};

fn connected(uri: &str, client_id: &str) -> Client {
    let client = Client::new(options(uri, client_id)).unwrap();
    client.connect().unwrap();
    client
}

#[test]
fn a_retained_message_reaches_a_later_subscriber() {
    let broker = Mosquitto::start();
    let publisher = connected(&broker.url(), "pub");
    publisher
        .publish("status/door", "open", QoS::AtLeastOnce, true)
        .unwrap()
        .wait()
        .unwrap();

    let late = connected(&broker.url(), "late");
    let messages = late.messages(4);
    late.subscribe(&[("status/+", QoS::AtLeastOnce)]).unwrap();
    let message = messages
        .recv_timeout(PATIENCE)
        .expect("the retained message");
    assert_eq!(message.topic.as_str(), "status/door");
    assert_eq!(&message.payload[..], b"open");
    assert!(message.retained);

    // An empty retained message clears it.
    publisher
        .publish("status/door", "", QoS::AtLeastOnce, true)
        .unwrap()
        .wait()
        .unwrap();
    let cleared = messages.recv_timeout(PATIENCE).unwrap();
    assert!(cleared.payload.is_empty());
    let later = connected(&broker.url(), "later");
    let later_messages = later.messages(4);
    later.subscribe(&[("status/+", QoS::AtLeastOnce)]).unwrap();
    assert!(
        later_messages
            .recv_timeout(Duration::from_millis(300))
            .is_err()
    );
}

#[test]
fn the_will_is_published_when_the_client_vanishes() {
    let broker = Mosquitto::start();
    let watcher = connected(&broker.url(), "watcher");
    let messages = watcher.messages(4);
    watcher.subscribe(&[("wills/#", QoS::AtLeastOnce)]).unwrap();

    let proxy = FaultProxy::start(broker.addr());
    let will = Will {
        topic: "wills/device-1".into(),
        payload: "gone".into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    };
    let mortal = Client::new(options(&proxy.url(), "device-1").will(will)).unwrap();
    mortal.connect().unwrap();
    // Nothing while it lives.
    assert!(messages.recv_timeout(Duration::from_millis(200)).is_err());

    assert_eq!(proxy.cut(), 1);
    let message = messages.recv_timeout(PATIENCE).expect("the will");
    assert_eq!(message.topic.as_str(), "wills/device-1");
    assert_eq!(&message.payload[..], b"gone");
    assert_eq!(message.qos, QoS::AtLeastOnce);
}

#[test]
fn a_clean_disconnect_does_not_publish_the_will() {
    let broker = Mosquitto::start();
    let watcher = connected(&broker.url(), "watcher");
    let messages = watcher.messages(4);
    watcher.subscribe(&[("wills/#", QoS::AtLeastOnce)]).unwrap();
    let will = Will {
        topic: "wills/polite".into(),
        payload: "gone".into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    };
    let polite = Client::new(options(&broker.url(), "polite").will(will)).unwrap();
    polite.connect().unwrap();
    polite.disconnect(Duration::from_secs(5)).unwrap();
    // A message published after the disconnect arrives after any will would have.
    watcher
        .publish("wills/marker", "after", QoS::AtLeastOnce, false)
        .unwrap()
        .wait()
        .unwrap();
    let message = messages.recv_timeout(PATIENCE).unwrap();
    assert_eq!(message.topic.as_str(), "wills/marker", "{message:?}");
}

#[test]
fn a_one_mebibyte_payload_goes_through() {
    const MIB: usize = 1024 * 1024;
    let broker = Mosquitto::start();
    // 1 MiB of payload plus topic and headers is over the default 1 MiB packet limit, both ways.
    let big = |id| options(&broker.url(), id).max_packet_size(2 * MIB);
    let subscriber = Client::new(big("sub")).unwrap();
    subscriber.connect().unwrap();
    let messages = subscriber.messages(4);
    subscriber.subscribe(&[("big", QoS::AtLeastOnce)]).unwrap();
    let publisher = Client::new(big("pub")).unwrap();
    publisher.connect().unwrap();

    let payload: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    publisher
        .publish("big", payload.clone(), QoS::AtLeastOnce, false)
        .unwrap()
        .wait()
        .unwrap();
    let message = messages.recv_timeout(PATIENCE).expect("the big message");
    assert_eq!(message.payload.len(), MIB);
    assert!(message.payload == payload, "the payload changed on the way");

    // With the default limit, the same publish is refused up front, naming the sizes.
    let small = connected(&broker.url(), "small");
    let error = small
        .publish("big", payload, QoS::AtLeastOnce, false)
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Command(CommandError::Encode(EncodeError::PacketTooLarge { max, .. })) if max == MIB
        ),
        "{error:?}"
    );
}

#[test]
fn a_handler_gets_its_subscription_and_unsubscribe_stops_delivery() {
    let broker = Mosquitto::start();
    let client = connected(&broker.url(), "handlers");
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    let (tx, handled) = mpsc::channel::<Message>();
    let tx = std::sync::Mutex::new(tx);
    let granted = client
        .subscribe_with("alerts/#", QoS::AtLeastOnce, move |m| {
            let _ = tx.lock().unwrap().send(m.clone());
        })
        .unwrap();
    assert_eq!(granted, QoS::AtLeastOnce);
    client.subscribe(&[("other", QoS::AtLeastOnce)]).unwrap();

    let publisher = connected(&broker.url(), "pub");
    let send = |topic: &str, payload: &str| {
        publisher
            .publish(topic, payload.to_owned(), QoS::AtLeastOnce, false)
            .unwrap()
            .wait()
            .unwrap();
    };
    send("alerts/fire", "1");
    send("other", "2");
    let message = handled.recv_timeout(PATIENCE).unwrap();
    assert_eq!(message.topic.as_str(), "alerts/fire");
    // The handler took it; `message_arrived` only sees the other one.
    let message = events.message(PATIENCE).unwrap();
    assert_eq!(message.topic.as_str(), "other");

    client.unsubscribe(&["alerts/#"]).unwrap();
    send("alerts/fire", "3");
    send("other", "4");
    // "other" was published after "alerts/fire": once it is here, the other would be too.
    let message = events.message(PATIENCE).unwrap();
    assert_eq!(&message.payload[..], b"4", "{message:?}");
    assert!(handled.try_recv().is_err());
}

#[test]
fn a_hundred_clients_in_one_process() {
    const CLIENTS: usize = 100;
    let broker = Mosquitto::builder().log_types(["warning"]).start();
    let url = broker.url();
    // Connect in parallel, as a fleet coming online would.
    // A count rather than a barrier: one client failing must fail the test, not hang it.
    let ready = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let url = url.clone();
            let ready = Arc::clone(&ready);
            thread::spawn(move || {
                let client = Client::new(options(&url, &format!("fleet-{i}"))).unwrap();
                client.connect().unwrap();
                let messages = client.messages(4);
                client
                    .subscribe(&[(&format!("fleet/{i}"), QoS::AtLeastOnce)])
                    .unwrap();
                ready.fetch_add(1, Ordering::SeqCst);
                assert!(
                    wait_until(PATIENCE, || ready.load(Ordering::SeqCst) == CLIENTS),
                    "not every client subscribed"
                );
                // Everyone is subscribed: greet the next client.
                let next = (i + 1) % CLIENTS;
                client
                    .publish(
                        &format!("fleet/{next}"),
                        format!("from {i}"),
                        QoS::AtLeastOnce,
                        false,
                    )
                    .unwrap()
                    .wait()
                    .unwrap();
                let message = messages.recv_timeout(PATIENCE).expect("a greeting");
                let previous = (i + CLIENTS - 1) % CLIENTS;
                assert_eq!(&message.payload[..], format!("from {previous}").as_bytes());
                client
            })
        })
        .collect();
    let clients: Vec<Client> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(clients.iter().all(Client::is_connected));
    for client in &clients {
        client.disconnect(Duration::from_secs(5)).unwrap();
        client.close();
    }
}
