//! Idempotent consumption end to end, on the local broker in ApsaraMQ mode re-delivering
//! unacknowledged QoS 1 messages every 200 ms: a publisher tags N messages to a subscribed topic
//! and N point to point ([`MessageIds`]), and sends each twice, as a publisher that missed a
//! PUBACK does. The first consumer handles slowly (its first message takes several re-delivery
//! intervals, so the broker sends copies meanwhile, which the client drops: see
//! `apsaramq_redelivery.rs`) and never acknowledges, as one that dies before it does; a second
//! one takes over its session, and the broker delivers everything unacknowledged again. The
//! application behind the deduplicator (shared by both consumers) sees each message exactly once,
//! with the right kind and the header stripped, while the clients received far more copies than
//! messages; the second consumer, with manual acks too, acknowledges the copies it does not
//! handle, so the broker ends up holding nothing. For the blocking client ([`Deduplicated`]
//! behind [`ApsaraMqEvents`], duplicates acknowledged in `on_duplicate`) and the async one
//! ([`Deduplicator::check_message`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use sansmq_apsaramq::dedup::{Deduplicated, Deduplicator, MessageIds};
use sansmq_apsaramq::{
    AccessKey, ApsaraMqCallback, ApsaraMqEvents, AuthMode, ClientId, MessageKind, QoS,
    apsaramq_options, is_p2p_for, p2p_topic,
};
use sansmq_broker::{ApsaraMqMode, Broker, BrokerConfig};
use sansmq_e2e::{PATIENCE, wait_until};
use sansmq_mio::{Callback, ConnectOptions, DeliveryToken, Error, Message};

const INSTANCE: &str = "mqtt-cn-dedup";
const KEY_ID: &str = "LTAIdedup";
const SECRET: &str = "dedup-secret";
const PARENT: &str = "parent";
const TOPIC: &str = "parent/dedup";
/// Messages per path (subscribed, point to point).
const N: usize = 4;
/// How often the broker re-delivers what a connected client has not acknowledged.
const REDELIVERY: Duration = Duration::from_millis(200);
/// How long the first consumer takes over its first message: several re-delivery intervals.
const SLOW: Duration = Duration::from_millis(700);

fn broker() -> Broker {
    sansmq_broker::start(BrokerConfig {
        apsaramq: Some(
            ApsaraMqMode::new(INSTANCE)
                .access_key(KEY_ID, SECRET)
                .redelivery_interval(REDELIVERY),
        ),
        // Every copy sent stays unacknowledged at once: the window must hold them all.
        max_inflight: 8 * N,
        ..Default::default()
    })
    .expect("the broker starts")
}

/// A persistent session, so unacknowledged messages outlive the first consumer.
fn options(broker: SocketAddr, client_id: &ClientId) -> ConnectOptions {
    let auth = AuthMode::signature(AccessKey::new(KEY_ID, SECRET), INSTANCE);
    apsaramq_options(&format!("tcp://{broker}"), client_id, auth)
        .unwrap()
        .clean_session(false)
        .time_to_wait(PATIENCE)
}

/// Publishes N tagged messages to [`TOPIC`] and N to `consumer`'s P2P topic, each twice with the
/// same id, each copy acknowledged by the broker before the next; returns the bodies.
fn publish_each_twice(broker: SocketAddr, consumer: &ClientId) -> Vec<String> {
    let publisher = ClientId::new("GID_e2e", "publisher").unwrap();
    let client = sansmq_mio::Client::new(options(broker, &publisher).clean_session(true)).unwrap();
    client.connect().unwrap();
    let p2p = p2p_topic(PARENT, consumer).unwrap();
    let mut ids = MessageIds::new(&publisher);
    let mut bodies = Vec::new();
    for n in 0..N {
        for (topic, body) in [
            (TOPIC, format!("sub-{n}")),
            (p2p.as_str(), format!("p2p-{n}")),
        ] {
            let payload = ids.tag(&body);
            for _ in 0..2 {
                client
                    .publish(topic, payload.clone(), QoS::AtLeastOnce, false)
                    .unwrap()
                    .wait()
                    .unwrap();
            }
            bodies.push(body);
        }
    }
    client.disconnect(PATIENCE).unwrap();
    client.close();
    bodies.sort();
    bodies
}

/// Whether the broker holds nothing unacknowledged for `consumer`: every copy was acknowledged.
fn all_acknowledged(broker: &Broker, consumer: &ClientId) -> bool {
    broker
        .stats()
        .client(consumer.as_str())
        .is_some_and(|c| c.inflight_messages == 0 && c.queued_messages == 0)
}

/// What the application saw, sorted: (body, point to point).
type Handled = Arc<Mutex<Vec<(String, bool)>>>;

fn sorted(handled: &Handled) -> Vec<(String, bool)> {
    let mut handled = handled
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    handled.sort();
    handled
}

/// Each body once, P2P exactly for the `p2p-` ones.
fn once_each(bodies: &[String]) -> Vec<(String, bool)> {
    bodies
        .iter()
        .map(|body| (body.clone(), body.starts_with("p2p-")))
        .collect()
}

/// The application: records what it handles; the first message takes [`SLOW`].
#[derive(Clone, Default)]
struct App {
    handled: Handled,
    slowed: Arc<AtomicBool>,
}

impl ApsaraMqCallback for App {
    fn message_arrived(&self, _topic: &str, message: &Message, kind: MessageKind) {
        let body = String::from_utf8_lossy(&message.payload).into_owned();
        self.handled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((body, kind == MessageKind::PointToPoint));
        if !self.slowed.swap(true, Ordering::SeqCst) {
            thread::sleep(SLOW);
        }
    }
}

/// Counts every message the client hands to its callback, before deduplication.
struct Counting<C> {
    inner: C,
    raw: Arc<AtomicUsize>,
}

impl<C: Callback> Callback for Counting<C> {
    fn connect_complete(&self, reconnect: bool, server_uri: &str) {
        self.inner.connect_complete(reconnect, server_uri);
    }

    fn connection_lost(&self, cause: &Error) {
        self.inner.connection_lost(cause);
    }

    fn message_arrived(&self, topic: &str, message: &Message) {
        self.raw.fetch_add(1, Ordering::SeqCst);
        self.inner.message_arrived(topic, message);
    }

    fn delivery_complete(&self, token: &DeliveryToken) {
        self.inner.delivery_complete(token);
    }
}

/// A blocking consumer with manual acknowledgements whose callback counts deliveries into `raw`
/// and hands them to `app` through the shared deduplicator; `ack_duplicates`: it acknowledges
/// the duplicates (the app acknowledges nothing).
fn mio_consumer(
    broker: SocketAddr,
    client_id: &ClientId,
    app: &App,
    dedup: &Arc<Mutex<Deduplicator>>,
    raw: &Arc<AtomicUsize>,
    ack_duplicates: bool,
) -> sansmq_mio::Client {
    let client = sansmq_mio::Client::new(options(broker, client_id)).unwrap();
    client.set_manual_acks(true);
    let mut deduplicated = Deduplicated::shared(app.clone(), Arc::clone(dedup));
    if ack_duplicates {
        let acker = client.clone();
        deduplicated = deduplicated.on_duplicate(move |_, message| acker.ack(message).unwrap());
    }
    client.set_callback(Counting {
        inner: ApsaraMqEvents::new(deduplicated, PARENT, client_id.clone()),
        raw: Arc::clone(raw),
    });
    client
}

#[test]
fn the_blocking_client_handles_each_message_once() {
    let broker = broker();
    let addr = broker.local_addr();
    let consumer = ClientId::new("GID_e2e", "consumer-mio").unwrap();
    let app = App::default();
    let dedup = Arc::new(Mutex::new(Deduplicator::default()));
    let (first_raw, second_raw) = (Arc::default(), Arc::default());

    // Handles, slowly, but never acknowledges.
    let first = mio_consumer(addr, &consumer, &app, &dedup, &first_raw, false);
    first.connect().unwrap();
    first.subscribe(&[(TOPIC, QoS::AtLeastOnce)]).unwrap();
    let bodies = publish_each_twice(addr, &consumer);
    let every_copy = 4 * N;
    assert!(
        wait_until(PATIENCE, || first_raw.load(Ordering::SeqCst) >= every_copy),
        "the first consumer got {} of {every_copy} copies",
        first_raw.load(Ordering::SeqCst)
    );
    thread::sleep(3 * REDELIVERY); // re-deliveries to the first consumer, while it holds the acks
    assert_eq!(sorted(&app.handled), once_each(&bodies));
    first.close();

    // Takes the session over: the broker delivers everything unacknowledged again, and this
    // consumer acknowledges the copies it does not handle.
    let second = mio_consumer(addr, &consumer, &app, &dedup, &second_raw, true);
    assert!(second.connect().unwrap(), "the session is resumed");
    assert!(
        wait_until(PATIENCE, || second_raw.load(Ordering::SeqCst) >= every_copy),
        "the second consumer got {} of {every_copy} copies again",
        second_raw.load(Ordering::SeqCst)
    );
    thread::sleep(3 * REDELIVERY);

    let raw = first_raw.load(Ordering::SeqCst) + second_raw.load(Ordering::SeqCst);
    assert!(
        raw >= 2 * every_copy,
        "{raw} deliveries of {} messages",
        bodies.len()
    );
    assert_eq!(
        sorted(&app.handled),
        once_each(&bodies),
        "each message handled once, P2P ones as P2P, without the header"
    );
    assert!(
        wait_until(PATIENCE, || all_acknowledged(&broker, &consumer)),
        "the duplicates were acknowledged"
    );
    second.disconnect(PATIENCE).unwrap();
    second.close();
}

/// The next message, within [`PATIENCE`].
async fn next(events: &mut sansmq_tokio::Events) -> sansmq_tokio::Message {
    tokio::time::timeout(PATIENCE, events.next_message())
        .await
        .expect("a message in time")
        .expect("the client runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_client_handles_each_message_once() {
    let broker = broker();
    let addr = broker.local_addr();
    let consumer = ClientId::new("GID_e2e", "consumer-tokio").unwrap();
    let mut dedup = Deduplicator::default();
    let mut handled = Vec::new();
    let mut raw = 0;

    // Handles, slowly, but never acknowledges (manual acks).
    let (first, mut events) = sansmq_tokio::Client::builder(options(addr, &consumer))
        .manual_acks(true)
        .build()
        .unwrap();
    first.connect().await.unwrap();
    first.subscribe(&[(TOPIC, QoS::AtLeastOnce)]).await.unwrap();
    let target = consumer.clone();
    let publisher = tokio::task::spawn_blocking(move || publish_each_twice(addr, &target));
    let every_copy = 4 * N;
    while raw < every_copy {
        let message = next(&mut events).await;
        raw += 1;
        if let Some(body) = dedup.check_message(&message).into_body() {
            let p2p = is_p2p_for(message.topic.as_str(), PARENT, &consumer);
            handled.push((String::from_utf8_lossy(&body).into_owned(), p2p));
            if handled.len() == 1 {
                tokio::time::sleep(SLOW).await;
            }
        }
    }
    let bodies = publisher.await.unwrap();
    tokio::time::sleep(3 * REDELIVERY).await;
    first.disconnect(Duration::from_secs(1)).await.unwrap();
    drop((first, events));

    // Takes the session over: the broker delivers everything unacknowledged again, and this
    // consumer acknowledges every copy, handled or not, as it must with manual acks.
    let (second, mut events) = sansmq_tokio::Client::builder(options(addr, &consumer))
        .manual_acks(true)
        .build()
        .unwrap();
    assert!(second.connect().await.unwrap(), "the session is resumed");
    let mut again = 0;
    while again < every_copy {
        let message = next(&mut events).await;
        again += 1;
        assert!(
            dedup.check_message(&message).is_duplicate(),
            "{:?} handled twice",
            message.payload
        );
        second.ack(&message).await.unwrap();
    }
    tokio::time::sleep(3 * REDELIVERY).await;
    while let Some(sansmq_tokio::Event::Message(message)) = events.try_recv() {
        again += 1;
        assert!(dedup.check_message(&message).is_duplicate());
        second.ack(&message).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !all_acknowledged(&broker, &consumer) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the duplicates were acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert!(raw + again >= 2 * every_copy, "{} deliveries", raw + again);
    handled.sort();
    assert_eq!(handled, once_each(&bodies));
    second.disconnect(PATIENCE).await.unwrap();
}
