//! [`FuturesClient`]: the runtime-agnostic `sansmq-futures` client as a [`ScenarioClient`], on
//! smol: its connection runs on a thread of its own, and each call blocks on its future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansmq::packet::{Properties, QoS, SubscribeFilter};
use sansmq_driver::{ConnectOptions, Error, ServerUri};
use sansmq_futures::{Client, Event, Events, Runtime};

use super::{PendingPublish, Received, ScenarioClient, Seen, first_within};
use crate::PATIENCE;

/// smol's sockets (plain TCP) and timer.
#[derive(Debug, Clone)]
pub(crate) struct Smol;

impl Runtime for Smol {
    type Stream = smol::net::TcpStream;

    async fn connect(self, uri: ServerUri) -> std::io::Result<Self::Stream> {
        smol::net::TcpStream::connect((uri.host.as_str(), uri.port)).await
    }

    async fn sleep_until(self, deadline: Instant) {
        smol::Timer::at(deadline).await;
    }
}

/// A `sansmq_futures::Client` and its event stream; its connection runs on its own thread until
/// the client is dropped.
#[derive(Debug)]
pub struct FuturesClient {
    client: Client,
    events: Mutex<Events>,
}

/// A publish handed over: its delivery, to block on.
pub struct FuturesPending(Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>);

impl fmt::Debug for FuturesPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FuturesPending")
    }
}

/// `future`'s output, or `None` once `wait` has passed.
fn within<T>(wait: Duration, future: impl Future<Output = T>) -> Option<T> {
    smol::block_on(smol::future::or(async { Some(future.await) }, async {
        smol::Timer::after(wait).await;
        None
    }))
}

impl ScenarioClient for FuturesClient {
    const DRIVER: &'static str = "futures";
    type Pending = FuturesPending;

    fn new(options: ConnectOptions) -> Result<Self, Error> {
        let (client, events, connection) = Client::new(options, Smol)?;
        std::thread::Builder::new()
            .name("scenario-futures".into())
            .spawn(move || smol::block_on(connection))
            .map_err(|e| Error::io("spawning the connection's thread", &e))?;
        Ok(Self {
            client,
            events: Mutex::new(events),
        })
    }

    fn connect(&self) -> Result<bool, Error> {
        smol::block_on(self.client.connect())
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
    ) -> Result<FuturesPending, Error> {
        // `publish_later` waits for room among the commands, across reconnects.
        let handed_over = within(
            PATIENCE,
            self.client.publish_later(topic, payload, qos, retain),
        );
        let delivery = handed_over.ok_or(Error::Timeout(PATIENCE))??;
        Ok(FuturesPending(Box::pin(delivery)))
    }

    fn subscribe(&self, filters: &[(&str, QoS)]) -> Result<Vec<QoS>, Error> {
        smol::block_on(self.client.subscribe(filters))
    }

    fn publish_with_properties(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        properties: Properties,
    ) -> Result<(), Error> {
        let publish = self
            .client
            .publish_with_properties(topic, payload, qos, false, properties);
        within(PATIENCE, publish).ok_or(Error::Timeout(PATIENCE))?
    }

    fn subscribe_with_properties(
        &self,
        filters: &[SubscribeFilter],
        properties: Properties,
    ) -> Result<Vec<QoS>, Error> {
        smol::block_on(self.client.subscribe_with_properties(filters, properties))
    }

    fn request(&self, topic: &str, payload: Bytes, qos: QoS) -> Result<Received, Error> {
        let request = self.client.request(topic, payload, qos, Properties::new());
        let response = within(PATIENCE * 2, request).ok_or(Error::Timeout(PATIENCE * 2))?;
        response.map(|message| Received::from(&message))
    }

    fn unsubscribe(&self, filters: &[&str]) -> Result<(), Error> {
        smol::block_on(self.client.unsubscribe(filters))
    }

    fn next_event(&self, wait: Duration) -> Option<Seen> {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let next = |left| within(left, events.recv())?;
        first_within(wait, next, |event| match event {
            Event::Connected { uri, reconnect, .. } => Some(Seen::Connected {
                reconnect,
                uri: uri.to_string(),
            }),
            Event::ConnectionLost { cause, .. } => Some(Seen::ConnectionLost(cause)),
            Event::Message(message) => Some(Seen::Message(Received::from(&message))),
            // An event this adapter does not know yet (`Event` is non-exhaustive).
            _ => None,
        })
    }

    fn disconnect(&self, drain: Duration) -> Result<(), Error> {
        smol::block_on(self.client.disconnect(drain))
    }
}

impl PendingPublish for FuturesPending {
    fn wait(self, timeout: Duration) -> Result<(), Error> {
        within(timeout, self.0).unwrap_or(Err(Error::Timeout(timeout)))
    }
}
