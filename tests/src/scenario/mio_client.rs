//! [`MioClient`]: the blocking `sansmq-mio` client as a [`ScenarioClient`].

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use sansmq::packet::{Properties, QoS, SubscribeFilter};
use sansmq_driver::{ConnectOptions, Error};
use sansmq_mio::{Callback, Client, DeliveryToken, Message};

use super::{PendingPublish, Received, ScenarioClient, Seen};
use crate::PATIENCE;

/// Events held for the scenario before the callback thread waits, as the client's own
/// `messages(capacity)` receiver does: past it, the client stops acknowledging.
const EVENT_CAPACITY: usize = 1024;

/// A `sansmq_mio::Client` whose callback hands everything to the scenario, in order.
#[derive(Debug)]
pub struct MioClient {
    client: Client,
    events: Mutex<Receiver<Seen>>,
}

/// The callback: each call becomes a [`Seen`].
struct Forward(SyncSender<Seen>);

impl Forward {
    fn send(&self, seen: Seen) {
        // The scenario may have dropped its client: nothing to report to then.
        let _ = self.0.send(seen);
    }
}

impl Callback for Forward {
    fn connect_complete(&self, reconnect: bool, server_uri: &str) {
        self.send(Seen::Connected {
            reconnect,
            uri: server_uri.to_owned(),
        });
    }

    fn connection_lost(&self, cause: &Error) {
        self.send(Seen::ConnectionLost(cause.clone()));
    }

    fn message_arrived(&self, _topic: &str, message: &Message) {
        self.send(Seen::Message(Received::from(message)));
    }
}

impl ScenarioClient for MioClient {
    const DRIVER: &'static str = "mio";
    type Pending = DeliveryToken;

    fn new(options: ConnectOptions) -> Result<Self, Error> {
        let client = Client::new(options)?;
        let (tx, rx) = sync_channel(EVENT_CAPACITY);
        client.set_callback(Forward(tx));
        Ok(Self {
            client,
            events: Mutex::new(rx),
        })
    }

    fn connect(&self) -> Result<bool, Error> {
        self.client.connect()
    }

    fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    fn start_publish(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) -> Result<DeliveryToken, Error> {
        self.client.publish(topic, payload, qos, retain)
    }

    fn subscribe(&self, filters: &[(&str, QoS)]) -> Result<Vec<QoS>, Error> {
        self.client.subscribe(filters)
    }

    fn publish_with_properties(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        properties: Properties,
    ) -> Result<(), Error> {
        self.client
            .publish_with_properties(topic, payload, qos, false, properties)?
            .wait_timeout(PATIENCE)
    }

    fn subscribe_with_properties(
        &self,
        filters: &[SubscribeFilter],
        properties: Properties,
    ) -> Result<Vec<QoS>, Error> {
        self.client.subscribe_with_properties(filters, properties)
    }

    fn request(&self, topic: &str, payload: Bytes, qos: QoS) -> Result<Received, Error> {
        self.client
            .request(topic, payload, qos)
            .map(|message| Received::from(&message))
    }

    fn unsubscribe(&self, filters: &[&str]) -> Result<(), Error> {
        self.client.unsubscribe(filters)
    }

    fn next_event(&self, wait: Duration) -> Option<Seen> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv_timeout(wait)
            .ok()
    }

    fn disconnect(&self, drain: Duration) -> Result<(), Error> {
        self.client.disconnect(drain)
    }
}

impl Drop for MioClient {
    fn drop(&mut self) {
        // Stop the client's threads now rather than when its last handle goes.
        self.client.close();
    }
}

impl PendingPublish for DeliveryToken {
    fn wait(self, timeout: Duration) -> Result<(), Error> {
        self.wait_timeout(timeout)
    }
}
