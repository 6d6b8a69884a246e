//! Subscribing on every connection — in mio's `connect_complete` or on tokio's
//! `Connected`/`Reconnected` event, the pattern of Paho's and Alibaba's examples — gives exactly one
//! SUBSCRIBE per reconnect with the default `ResubscribePolicy::WhenSessionLost`: the
//! application's subscribe joins the one restoring the lost session, and resolves with its SUBACK.
//! So a retained message arrives once after a reconnect, not twice.
//!
//! Each scenario runs against both clients.

mod common;

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use sansmq::packet::{Packet, QoS, SubAck, SubscribeReturnCode};
use sansmq_e2e::{FaultProxy, Mosquitto, Peer, ScriptedBroker};

use common::{PATIENCE, options};

const FILTER: &str = "pattern/#";
const RETAINED_TOPIC: &str = "pattern/retained";

/// A client that subscribes to [`FILTER`] on every connection, as Paho users do.
struct SubscribesOnConnect {
    /// The outcome of each of those subscribes.
    subscribed: Receiver<Result<Vec<QoS>, String>>,
    /// The payloads of the messages received.
    messages: Receiver<Vec<u8>>,
    stop: Box<dyn FnOnce()>,
}

impl SubscribesOnConnect {
    fn next_subscribe(&self) -> Result<Vec<QoS>, String> {
        self.subscribed
            .recv_timeout(PATIENCE)
            .expect("a subscribe on (re)connect")
    }
}

/// Options that reconnect quickly (both clients take the same options).
fn reconnecting(url: &str, client_id: &str) -> sansmq_mio::ConnectOptions {
    options(url, client_id)
        .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(200))
}

fn send<T>(tx: &Mutex<Sender<T>>, value: T) {
    let _ = tx
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(value);
}

/// mio: `client.subscribe` from `connect_complete`.
struct MioPattern {
    client: sansmq_mio::Client,
    subscribed: Mutex<Sender<Result<Vec<QoS>, String>>>,
    messages: Mutex<Sender<Vec<u8>>>,
}

impl sansmq_mio::Callback for MioPattern {
    fn connect_complete(&self, _reconnect: bool, _server_uri: &str) {
        let outcome = self.client.subscribe(&[(FILTER, QoS::AtLeastOnce)]);
        send(&self.subscribed, outcome.map_err(|e| e.to_string()));
    }

    fn message_arrived(&self, _topic: &str, message: &sansmq_mio::Message) {
        send(&self.messages, message.payload.to_vec());
    }
}

fn mio_client(url: &str, client_id: &str) -> SubscribesOnConnect {
    let client = sansmq_mio::Client::new(reconnecting(url, client_id)).unwrap();
    let (subscribed_tx, subscribed) = mpsc::channel();
    let (messages_tx, messages) = mpsc::channel();
    client.set_callback(MioPattern {
        client: client.clone(),
        subscribed: Mutex::new(subscribed_tx),
        messages: Mutex::new(messages_tx),
    });
    client.connect().unwrap();
    SubscribesOnConnect {
        subscribed,
        messages,
        stop: Box::new(move || client.close()),
    }
}

/// tokio: `client.subscribe(..).await` on every `Connected`/`Reconnected` event.
fn tokio_client(url: &str, client_id: &str) -> SubscribesOnConnect {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (client, mut events) = {
        let _context = runtime.enter();
        sansmq_tokio::Client::new(reconnecting(url, client_id)).unwrap()
    };
    let (subscribed_tx, subscribed) = mpsc::channel();
    let (messages_tx, messages) = mpsc::channel();
    let subscriber = client.clone();
    runtime.spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                sansmq_tokio::Event::Connected { .. } | sansmq_tokio::Event::Reconnected { .. } => {
                    let outcome = subscriber.subscribe(&[(FILTER, QoS::AtLeastOnce)]).await;
                    let _ = subscribed_tx.send(outcome.map_err(|e| e.to_string()));
                }
                sansmq_tokio::Event::Message(message) => {
                    let _ = messages_tx.send(message.payload.to_vec());
                }
                _ => {}
            }
        }
    });
    runtime.block_on(client.connect()).unwrap();
    SubscribesOnConnect {
        subscribed,
        messages,
        stop: Box::new(move || {
            drop(client);
            runtime.shutdown_background();
        }),
    }
}

/// A broker without sessions that counts the SUBSCRIBEs of each connection. The first connection
/// is closed right after its first SUBACK; the second one answers SUBSCRIBEs only after a while,
/// so the application's subscribe comes while the restore is in flight.
fn one_subscribe_per_reconnect(start: fn(&str, &str) -> SubscribesOnConnect, client_id: &str) {
    let (counted_tx, counted) = mpsc::channel();
    let counted_tx = Arc::new(Mutex::new(counted_tx));
    let broker = ScriptedBroker::start(move |mut peer: Peer| {
        if peer.accept().is_none() {
            return;
        }
        let answer_after = match peer.index() {
            0 => Duration::ZERO,
            1 => Duration::from_millis(300),
            _ => {
                while !peer.is_closed() {
                    let _ = peer.recv();
                }
                return;
            }
        };
        let watch_until = Instant::now() + Duration::from_secs(2);
        let mut subscribes = 0;
        while let Some(left) = watch_until.checked_duration_since(Instant::now()) {
            let Some(Packet::Subscribe(subscribe)) = peer.recv_within(left) else {
                if peer.is_closed() {
                    break;
                }
                continue;
            };
            subscribes += 1;
            thread::sleep(answer_after);
            peer.send(&Packet::SubAck(SubAck::new(
                subscribe.packet_id,
                subscribe
                    .filters
                    .iter()
                    .map(|f| SubscribeReturnCode::Success(f.qos))
                    .collect(),
            )));
            if peer.index() == 0 {
                thread::sleep(Duration::from_millis(100));
                break;
            }
        }
        send(&counted_tx, (peer.index(), subscribes));
        if peer.index() == 0 {
            peer.close();
        } else {
            while !peer.is_closed() {
                let _ = peer.recv();
            }
        }
    });
    let client = start(&broker.url(), client_id);
    let first = counted
        .recv_timeout(PATIENCE)
        .expect("the first connection");
    let second = counted.recv_timeout(PATIENCE).expect("the reconnect");
    assert_eq!(first, (0, 1), "(connection, SUBSCRIBEs)");
    assert_eq!(
        second,
        (1, 1),
        "(connection, SUBSCRIBEs): the application's subscribe and the restore went out separately"
    );
    assert_eq!(client.next_subscribe(), Ok(vec![QoS::AtLeastOnce]));
    assert_eq!(
        client.next_subscribe(),
        Ok(vec![QoS::AtLeastOnce]),
        "the subscribe that joined the restore resolves with its SUBACK"
    );
    (client.stop)();
}

/// Through mosquitto: a retained message arrives once per connection, also after a reconnect
/// without a session.
fn retained_once_per_reconnect(start: fn(&str, &str) -> SubscribesOnConnect, client_id: &str) {
    let broker = Mosquitto::start();
    let retainer = sansmq_mio::Client::new(options(&broker.url(), "retainer")).unwrap();
    retainer.connect().unwrap();
    retainer
        .publish(RETAINED_TOPIC, "kept", QoS::AtLeastOnce, true)
        .unwrap()
        .wait()
        .unwrap();
    retainer.disconnect(Duration::from_secs(1)).unwrap();
    retainer.close();

    let proxy = FaultProxy::start(broker.addr());
    let client = start(&proxy.url(), client_id);
    assert_eq!(client.next_subscribe(), Ok(vec![QoS::AtLeastOnce]));
    assert_eq!(
        client.messages.recv_timeout(PATIENCE).as_deref(),
        Ok(&b"kept"[..])
    );
    assert_eq!(proxy.cut(), 1);
    assert_eq!(client.next_subscribe(), Ok(vec![QoS::AtLeastOnce]));
    assert_eq!(
        client.messages.recv_timeout(PATIENCE).as_deref(),
        Ok(&b"kept"[..])
    );
    assert!(
        client
            .messages
            .recv_timeout(Duration::from_millis(1500))
            .is_err(),
        "the retained message came twice after the reconnect"
    );
    let subscribes = broker
        .log()
        .matches(&format!("Received SUBSCRIBE from {client_id}"))
        .count();
    assert_eq!(subscribes, 2, "one SUBSCRIBE per connection");
    (client.stop)();
}

#[test]
fn mio_subscribing_in_connect_complete_joins_the_restore() {
    one_subscribe_per_reconnect(mio_client, "pattern-mio");
}

#[test]
fn tokio_subscribing_on_reconnected_joins_the_restore() {
    one_subscribe_per_reconnect(tokio_client, "pattern-tokio");
}

#[test]
fn mio_retained_message_arrives_once_after_a_reconnect() {
    retained_once_per_reconnect(mio_client, "retained-mio");
}

#[test]
fn tokio_retained_message_arrives_once_after_a_reconnect() {
    retained_once_per_reconnect(tokio_client, "retained-tokio");
}
