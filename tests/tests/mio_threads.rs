//! The blocking client's threads: one IO thread per client, and a callback thread only once
//! there is work for one (a callback, or a `messages()` receiver that is full). One test in its
//! own binary, so that no other client's threads are counted.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_e2e::{Mosquitto, wait_until};
use sansmq_mio::{Callback, Client, Message};

use common::{PATIENCE, options};

/// How many of this process's threads carry `name` (as the kernel keeps it: its first 15 bytes).
fn threads_named(name: &str) -> usize {
    let kept = name.get(..15).unwrap_or(name);
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == kept)
        .count()
}

/// Records the payloads `message_arrived` sees.
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Callback for Recorder {
    fn message_arrived(&self, _topic: &str, message: &Message) {
        let payload = String::from_utf8_lossy(&message.payload).into_owned();
        self.0.lock().unwrap().push(payload);
    }
}

fn publish_numbered(client: &Client, range: std::ops::Range<u32>) {
    for n in range {
        let token = client
            .publish("threads/t", n.to_string(), QoS::AtLeastOnce, false)
            .unwrap();
        token.wait().unwrap();
    }
}

#[test]
fn the_callback_thread_starts_only_when_there_is_work_for_it() {
    let broker = Mosquitto::builder().log_types(["warning"]).start();
    let client = Client::new(options(&broker.url(), "threads")).unwrap();
    let received = client.messages(1);
    client.connect().unwrap();
    client
        .subscribe(&[("threads/#", QoS::AtLeastOnce)])
        .unwrap();
    // Publishing through the subscriber itself would stall on the full receiver: reading (the
    // PUBACKs too) waits for the application, by design.
    let publisher = Client::new(options(&broker.url(), "threads-publisher")).unwrap();
    publisher.connect().unwrap();

    // A receiver with room: the IO thread hands messages over itself.
    publish_numbered(&publisher, 0..1);
    let first = received.recv_timeout(PATIENCE).unwrap();
    assert_eq!(&first.payload[..], b"0");
    assert_eq!(threads_named("sansmq-io"), 2, "one per client");
    assert_eq!(
        threads_named("sansmq-callbacks"),
        0,
        "clients without callbacks run their IO thread only"
    );

    // A full receiver: what it cannot take waits on the callback thread, in order, nothing lost.
    publish_numbered(&publisher, 1..6);
    let later: Vec<String> = (1..6)
        .map(|_| {
            let message = received.recv_timeout(PATIENCE).unwrap();
            String::from_utf8_lossy(&message.payload).into_owned()
        })
        .collect();
    assert_eq!(later, ["1", "2", "3", "4", "5"]);
    assert_eq!(threads_named("sansmq-callbacks"), 1);

    // A callback set after connecting sees the next messages.
    let seen = Arc::new(Mutex::new(Vec::new()));
    client.set_callback(Recorder(Arc::clone(&seen)));
    publish_numbered(&publisher, 6..8);
    assert!(wait_until(PATIENCE, || seen.lock().unwrap().len() == 2));
    assert_eq!(*seen.lock().unwrap(), ["6", "7"]);

    for client in [client, publisher] {
        client.disconnect(Duration::from_secs(5)).unwrap();
        client.close();
    }
    assert!(
        wait_until(PATIENCE, || threads_named("sansmq-io") == 0
            && threads_named("sansmq-callbacks") == 0),
        "closing ends both threads"
    );
}
