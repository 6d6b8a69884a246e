//! One e2e scenario, every driver: [`ScenarioClient`] is what a scenario needs of a sansmq client,
//! as blocking calls, so that `tests/tests/scenarios.rs` writes each behaviour once as a generic
//! function and runs it against every driver.
//!
//! An adapter is a thin wrapper over a driver's public API: [`MioClient`] calls the blocking
//! client and collects its callbacks; [`TokioClient`] owns a tokio runtime and blocks on the async
//! client's futures; [`FuturesClient`] runs the futures-io client on smol. A driver for another
//! runtime adds one more adapter in this folder, re-exported below, and one line in
//! `scenarios.rs`.
//!
//! ```no_run
//! use sansmq::packet::QoS;
//! use sansmq_driver::ConnectOptions;
//! use sansmq_e2e::scenario::{MioClient, ScenarioClient};
//! use sansmq_e2e::{Mosquitto, PATIENCE};
//!
//! fn echo<C: ScenarioClient>() {
//!     let broker = Mosquitto::start();
//!     let client = C::new(ConnectOptions::new(&broker.url(), "echo").unwrap()).unwrap();
//!     client.connect().unwrap();
//!     client.subscribe(&[("echo", QoS::AtLeastOnce)]).unwrap();
//!     client.publish("echo", "hi", QoS::AtLeastOnce, false).unwrap();
//!     let message = client.next_message(PATIENCE).expect("the echo");
//!     assert_eq!(&message.payload[..], b"hi");
//! }
//! echo::<MioClient>();
//! ```

mod futures_client;
mod mio_client;
mod tokio_client;

use std::time::{Duration, Instant};

use bytes::Bytes;
use sansmq::packet::{Properties, QoS, SubscribeFilter};
use sansmq_driver::{ConnectOptions, Error, Message};

pub use futures_client::FuturesClient;
pub use mio_client::MioClient;
pub use tokio_client::TokioClient;

use crate::PATIENCE;

/// What a scenario needs of a client. Every call blocks until done (an async driver's adapter
/// runs the future on a runtime it owns) and takes `&self`, so that one thread can consume
/// events while another publishes.
///
/// The driver's own settings stay as they are: the adapter passes the options through, and
/// keeps the driver's backpressure (an adapter that stops being asked for events stops
/// acknowledging messages once the driver's buffer is full, as an application that stops
/// reading does).
pub trait ScenarioClient: Sized + Send + Sync + 'static {
    /// The driver's name, for test output.
    const DRIVER: &'static str;

    /// A publish under way, from [`start_publish`](Self::start_publish).
    type Pending: PendingPublish;

    /// A disconnected client with these options.
    fn new(options: ConnectOptions) -> Result<Self, Error>;

    /// Connects and waits for CONNACK; the broker's session-present flag.
    fn connect(&self) -> Result<bool, Error>;

    /// Whether the client is connected now.
    fn is_connected(&self) -> bool;

    /// Hands a message to the client without waiting for it to complete; many may be under way.
    fn start_publish(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) -> Result<Self::Pending, Error>;

    /// Subscribes and waits for SUBACK; the granted QoS per filter.
    fn subscribe(&self, filters: &[(&str, QoS)]) -> Result<Vec<QoS>, Error>;

    /// MQTT 5: publishes with `properties` and waits (up to [`PATIENCE`]) until it is complete.
    fn publish_with_properties(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        properties: Properties,
    ) -> Result<(), Error>;

    /// MQTT 5: subscribes with each filter's options and `properties`, and waits for SUBACK.
    fn subscribe_with_properties(
        &self,
        filters: &[SubscribeFilter],
        properties: Properties,
    ) -> Result<Vec<QoS>, Error>;

    /// MQTT 5: publishes a request and waits for the response (Response Topic and Correlation
    /// Data, as mosquitto_rr does).
    fn request(&self, topic: &str, payload: Bytes, qos: QoS) -> Result<Received, Error>;

    /// Unsubscribes and waits for UNSUBACK.
    fn unsubscribe(&self, filters: &[&str]) -> Result<(), Error>;

    /// The next thing that happened to the client, in order; `None` after `wait`.
    fn next_event(&self, wait: Duration) -> Option<Seen>;

    /// Waits up to `drain` for messages in flight, then disconnects cleanly.
    fn disconnect(&self, drain: Duration) -> Result<(), Error>;

    /// Publishes and waits (up to [`PATIENCE`]) until it is complete: acknowledged by the broker
    /// (QoS 1: PUBACK, QoS 2: PUBCOMP), or for QoS 0 handed over as the driver defines it.
    fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), Error> {
        self.start_publish(topic, payload.into(), qos, retain)?
            .wait(PATIENCE)
    }

    /// The next event for which `pick` returns something, skipping the others; `None` after
    /// `wait`.
    fn find<T>(&self, wait: Duration, pick: impl FnMut(Seen) -> Option<T>) -> Option<T> {
        first_within(wait, |left| self.next_event(left), pick)
    }

    /// The next message, skipping other events.
    fn next_message(&self, wait: Duration) -> Option<Received> {
        self.find(wait, |seen| match seen {
            Seen::Message(message) => Some(message),
            _ => None,
        })
    }

    /// The next connection made: `(reconnect, uri)`, skipping other events.
    fn next_connected(&self, wait: Duration) -> Option<(bool, String)> {
        self.find(wait, |seen| match seen {
            Seen::Connected { reconnect, uri } => Some((reconnect, uri)),
            _ => None,
        })
    }

    /// The next connection loss's cause, skipping other events.
    fn next_lost(&self, wait: Duration) -> Option<Error> {
        self.find(wait, |seen| match seen {
            Seen::ConnectionLost(cause) => Some(cause),
            _ => None,
        })
    }
}

/// The first of the items `next` gives (each within what is left of `wait`) for which `pick`
/// returns something, skipping the others; `None` once `wait` has passed or `next` has nothing.
fn first_within<E, T>(
    wait: Duration,
    mut next: impl FnMut(Duration) -> Option<E>,
    mut pick: impl FnMut(E) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        if let Some(found) = pick(next(left)?) {
            return Some(found);
        }
    }
}

/// A publish under way.
pub trait PendingPublish: Send + 'static {
    /// Waits up to `timeout` until the publish is complete; [`Error::Timeout`] if it is not.
    fn wait(self, timeout: Duration) -> Result<(), Error>;
}

/// Something that happened to a client, as every driver reports it.
#[derive(Debug, Clone)]
pub enum Seen {
    /// A connection was made: by `connect`, or (`reconnect`) automatically after a loss.
    Connected {
        /// Whether it was an automatic reconnect.
        reconnect: bool,
        /// The server URI connected to.
        uri: String,
    },
    /// The connection ended without being asked to.
    ConnectionLost(Error),
    /// A message arrived.
    Message(Received),
}

/// A received message, as every driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The topic it was published to.
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
    /// The QoS it was delivered at.
    pub qos: QoS,
    /// Whether the broker sent it because it was retained.
    pub retained: bool,
    /// Whether the broker says it may have delivered it before (DUP).
    pub duplicate: bool,
    /// MQTT 5 properties (empty for MQTT 3.1.1), Subscription Identifiers among them.
    pub properties: Properties,
}

impl From<&Message> for Received {
    fn from(message: &Message) -> Self {
        Self {
            topic: message.topic.as_str().to_owned(),
            payload: message.payload.clone(),
            qos: message.qos,
            retained: message.retained,
            duplicate: message.duplicate,
            properties: message.properties().clone(),
        }
    }
}

/// A client made with `options` and connected; panics naming the driver when either fails.
///
/// # Panics
///
/// When the client cannot be made or connect.
pub fn connected<C: ScenarioClient>(options: ConnectOptions) -> C {
    let client = C::new(options).unwrap_or_else(|e| panic!("{}: {e}", C::DRIVER));
    client
        .connect()
        .unwrap_or_else(|e| panic!("{}: connect: {e}", C::DRIVER));
    assert!(
        client.is_connected(),
        "{}: connected but says not",
        C::DRIVER
    );
    client
}

/// The error that making or connecting a client with `options` fails with.
///
/// # Panics
///
/// When the client connects.
pub fn connect_error<C: ScenarioClient>(options: ConnectOptions) -> Error {
    let client = match C::new(options) {
        Ok(client) => client,
        Err(error) => return error,
    };
    match client.connect() {
        Ok(_) => panic!("{}: connected", C::DRIVER),
        Err(error) => error,
    }
}

/// A `#[test]` per scenario in a module named after the driver, each calling the generic
/// scenario function (in the parent module) with the driver's client:
/// `scenario_tests!(mio: sansmq_e2e::scenario::MioClient => round_trip, reconnects);`.
#[macro_export]
macro_rules! scenario_tests {
    ($driver:ident: $client:ty => $($scenario:ident),* $(,)?) => {
        mod $driver {
            $(
                #[test]
                fn $scenario() {
                    super::$scenario::<$client>();
                }
            )*
        }
    };
}
