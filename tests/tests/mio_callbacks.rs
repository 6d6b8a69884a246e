//! Callbacks may call the client: publishing from `message_arrived` (even waiting for the broker's
//! acknowledgement there) and subscribing from `connect_complete` work without deadlock, and a
//! slow callback slows reading without killing the connection.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sansmq::packet::QoS;
use sansmq_e2e::{FaultProxy, Mosquitto, wait_until};
use sansmq_mio::{Callback, Client, DeliveryToken, Error, Message};

use common::{PATIENCE, Recorder, Seen, options};

/// Answers every "ping/..." message with a "pong" carrying the same payload.
struct Echo {
    client: Client,
    qos: QoS,
    /// Wait for the broker's acknowledgement inside the callback, as Paho's blocking
    /// `MqttClient.publish` does (which deadlocks in Paho when the inflight window is full).
    wait: bool,
    errors: Arc<Mutex<Vec<Error>>>,
}

impl Callback for Echo {
    fn message_arrived(&self, _topic: &str, message: &Message) {
        let result = self
            .client
            .publish("pong", message.payload.clone(), self.qos, false)
            .and_then(|token| if self.wait { token.wait() } else { Ok(()) });
        if let Err(error) = result {
            self.errors.lock().unwrap().push(error);
        }
    }
}

fn echo_round_trip(ping_qos: QoS, pong_qos: QoS, wait: bool, count: u32) {
    let broker = Mosquitto::builder().log_types(["warning"]).start();
    let echo = Client::new(options(&broker.url(), "echo").offline_queue(10_000)).unwrap();
    let errors = Arc::new(Mutex::new(Vec::new()));
    echo.set_callback(Echo {
        client: echo.clone(),
        qos: pong_qos,
        wait,
        errors: Arc::clone(&errors),
    });
    echo.connect().unwrap();
    echo.subscribe(&[("ping/#", QoS::ExactlyOnce)]).unwrap();

    let tester = Client::new(options(&broker.url(), "tester").offline_queue(10_000)).unwrap();
    tester.connect().unwrap();
    let pongs = tester.messages(count as usize + 16);
    tester.subscribe(&[("pong", QoS::ExactlyOnce)]).unwrap();

    let start = Instant::now();
    let tokens: Vec<DeliveryToken> = (0..count)
        .map(|n| {
            tester
                .publish("ping/1", n.to_string(), ping_qos, false)
                .unwrap()
        })
        .collect();
    for token in &tokens {
        token.wait().unwrap();
    }
    let mut received = 0;
    while received < count {
        match pongs.recv_timeout(PATIENCE) {
            Ok(_) => received += 1,
            Err(_) => panic!(
                "{received} of {count} pongs after {:?}; echo errors: {:?}",
                start.elapsed(),
                errors.lock().unwrap()
            ),
        }
    }
    println!(
        "echo ({ping_qos:?} ping, {pong_qos:?} pong, waiting: {wait}): {count} round trips in {:?}",
        start.elapsed()
    );
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );
    assert!(echo.is_connected());
    echo.close();
}

#[test]
fn a_callback_that_publishes_keeps_working() {
    echo_round_trip(QoS::AtLeastOnce, QoS::AtLeastOnce, false, 2_000);
}

#[test]
fn a_callback_that_waits_for_its_publish_to_be_acknowledged_keeps_working() {
    echo_round_trip(QoS::AtLeastOnce, QoS::AtLeastOnce, true, 1_000);
    echo_round_trip(QoS::ExactlyOnce, QoS::ExactlyOnce, true, 300);
}

#[test]
fn a_callback_waiting_on_its_publish_under_a_flood_does_not_deadlock() {
    // QoS 0 pings are not limited by the broker's window: they fill the callback queue (1,024)
    // while the callback waits for each pong's PUBACK, which arrives on the same socket.
    echo_round_trip(QoS::AtMostOnce, QoS::AtLeastOnce, true, 3_000);
}

#[test]
fn subscribing_from_connect_complete_holds_on_every_connection() {
    struct Resubscriber {
        client: Client,
        connections: AtomicUsize,
        recorder: Recorder,
    }
    impl Callback for Resubscriber {
        fn connect_complete(&self, reconnect: bool, server_uri: &str) {
            self.connections.fetch_add(1, Ordering::SeqCst);
            // Blocks this thread until SUBACK: the IO thread must go on meanwhile.
            self.client
                .subscribe(&[("news", QoS::AtLeastOnce)])
                .expect("subscribe from connect_complete");
            self.recorder.connect_complete(reconnect, server_uri);
        }
        fn message_arrived(&self, topic: &str, message: &Message) {
            self.recorder.message_arrived(topic, message);
        }
    }

    let broker = Mosquitto::start();
    let proxy = FaultProxy::start(broker.addr());
    // Never re-subscribe by itself: the callback does it.
    let client = Client::new(
        options(&proxy.url(), "reader")
            .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(500))
            .resubscribe(sansmq_mio::ResubscribePolicy::Never),
    )
    .unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(Resubscriber {
        client: client.clone(),
        connections: AtomicUsize::new(0),
        recorder,
    });
    client.connect().unwrap();
    assert_eq!(events.connected(PATIENCE), Some((false, proxy.url())));
    let publisher = Client::new(options(&broker.url(), "press")).unwrap();
    publisher.connect().unwrap();
    for round in 0..3 {
        publisher
            .publish("news", format!("edition {round}"), QoS::AtLeastOnce, false)
            .unwrap()
            .wait()
            .unwrap();
        let message = events.message(PATIENCE).expect("the news");
        assert_eq!(message.payload, format!("edition {round}").as_bytes());
        proxy.cut();
        assert_eq!(events.connected(PATIENCE), Some((true, proxy.url())));
    }
    client.close();
}

#[test]
fn delivery_complete_reports_each_acknowledged_message() {
    let broker = Mosquitto::start();
    let client = Client::new(options(&broker.url(), "reporter")).unwrap();
    let (recorder, events) = Recorder::new();
    client.set_callback(recorder);
    client.connect().unwrap();
    let tokens: Vec<DeliveryToken> = [QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtMostOnce]
        .into_iter()
        .map(|qos| client.publish("reports", "r", qos, false).unwrap())
        .collect();
    for token in &tokens {
        token.wait().unwrap();
    }
    let mut delivered = Vec::new();
    while delivered.len() < 2 {
        match events.find(PATIENCE, |seen| match seen {
            Seen::Delivered(id) => Some(id),
            _ => None,
        }) {
            Some(id) => delivered.push(id),
            None => panic!("delivery_complete missing: {delivered:?}"),
        }
    }
    // QoS 1 and 2 only: a QoS 0 message has no acknowledgement.
    assert_eq!(
        delivered,
        [tokens[0].message_id(), tokens[1].message_id()],
        "{tokens:?}"
    );
    assert!(
        events
            .drain()
            .iter()
            .all(|s| !matches!(s, Seen::Delivered(_)))
    );
}

#[test]
fn a_slow_callback_does_not_kill_the_connection() {
    // Keep-alive 1 s: PINGRESP is due 0.5 s after PINGREQ. The callback takes 2 ms per message,
    // so 2,000 messages keep it busy for 4 s, and the queue to it (1,024) stays full for most of
    // that time.
    const MESSAGES: u32 = 2_000;
    struct Slow {
        seen: Arc<AtomicUsize>,
    }
    impl Callback for Slow {
        fn message_arrived(&self, _topic: &str, _message: &Message) {
            thread::sleep(Duration::from_millis(2));
            self.seen.fetch_add(1, Ordering::SeqCst);
        }
    }
    let broker = Mosquitto::builder().log_types(["warning"]).start();
    let slow =
        Client::new(options(&broker.url(), "slow").keep_alive(Duration::from_secs(1))).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    slow.set_callback(Slow {
        seen: Arc::clone(&seen),
    });
    slow.connect().unwrap();
    slow.subscribe(&[("flood", QoS::AtMostOnce)]).unwrap();
    let publisher = Client::new(options(&broker.url(), "flood")).unwrap();
    publisher.connect().unwrap();
    for n in 0..MESSAGES {
        publisher
            .publish("flood", n.to_string(), QoS::AtMostOnce, false)
            .unwrap();
    }
    publisher.disconnect(Duration::from_secs(5)).unwrap();
    assert!(
        wait_until(PATIENCE, || seen.load(Ordering::SeqCst)
            == MESSAGES as usize),
        "{} of {MESSAGES} messages",
        seen.load(Ordering::SeqCst)
    );
    assert!(slow.is_connected(), "the slow client lost its connection");
    // A QoS 0 flood arrives whole: nothing is lost to backpressure.
}
