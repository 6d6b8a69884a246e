//! [`TokioClient`]: the async `sansmq-tokio` client as a [`ScenarioClient`], its futures run on
//! a runtime of its own.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use sansmq::packet::{Properties, QoS, SubscribeFilter};
use sansmq_driver::{ConnectOptions, Error};
use sansmq_tokio::{Client, Event, Events, PublishHandle};
use tokio::runtime::{Handle, Runtime};

use super::{PendingPublish, Received, ScenarioClient, Seen, first_within};
use crate::PATIENCE;

/// A `sansmq_tokio::Client` with its event stream and the runtime its task runs on.
///
/// Dropping it drops the client, then waits for the client's task to end (its event stream ends
/// with it) before the runtime stops: a runtime that stops cancels its tasks wherever they are,
/// and a task cancelled before it took the commands handed to it (messages published while
/// offline, which it would have put in the session store) loses them. An application that shuts
/// its runtime down has the same choice to make.
#[derive(Debug)]
pub struct TokioClient {
    /// `None` only while dropping.
    client: Option<Client>,
    events: Mutex<Events>,
    runtime: Runtime,
}

impl Drop for TokioClient {
    fn drop(&mut self) {
        drop(self.client.take());
        let events = self
            .events
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        self.runtime.block_on(async {
            let _ =
                tokio::time::timeout(PATIENCE, async { while events.recv().await.is_some() {} })
                    .await;
        });
    }
}

/// A [`PublishHandle`] and the runtime to wait for it on.
#[derive(Debug)]
pub struct TokioPending {
    handle: PublishHandle,
    runtime: Handle,
}

impl TokioClient {
    fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the client lives until the wrapper is dropped")
    }

    /// Runs `future` to completion on the client's runtime, from a thread outside it. A timer
    /// must be made inside `future`, where the runtime is current.
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

impl ScenarioClient for TokioClient {
    const DRIVER: &'static str = "tokio";
    type Pending = TokioPending;

    fn new(options: ConnectOptions) -> Result<Self, Error> {
        // One worker runs the client's task; scenario calls block on their own threads.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("scenario-tokio")
            .enable_all()
            .build()
            .map_err(|e| Error::Io {
                context: "starting a tokio runtime".into(),
                reason: e.to_string(),
            })?;
        // `Client::new` spawns the client's task on the runtime it is called in.
        let (client, events) = {
            let _context = runtime.enter();
            Client::new(options)?
        };
        Ok(Self {
            client: Some(client),
            events: Mutex::new(events),
            runtime,
        })
    }

    fn connect(&self) -> Result<bool, Error> {
        self.block_on(self.client().connect())
    }

    fn is_connected(&self) -> bool {
        self.client().is_connected()
    }

    fn start_publish(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) -> Result<TokioPending, Error> {
        // `publish_later` waits for room in the command channel, across reconnects.
        let handed_over = self.block_on(async {
            tokio::time::timeout(
                PATIENCE,
                self.client().publish_later(topic, payload, qos, retain),
            )
            .await
        });
        let handle = handed_over.map_err(|_| Error::Timeout(PATIENCE))??;
        Ok(TokioPending {
            handle,
            runtime: self.runtime.handle().clone(),
        })
    }

    fn subscribe(&self, filters: &[(&str, QoS)]) -> Result<Vec<QoS>, Error> {
        self.block_on(self.client().subscribe(filters))
    }

    fn publish_with_properties(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        properties: Properties,
    ) -> Result<(), Error> {
        let publish = self
            .client()
            .publish_with_properties(topic, payload, qos, false, properties);
        self.block_on(async { tokio::time::timeout(PATIENCE, publish).await })
            .map_err(|_| Error::Timeout(PATIENCE))?
    }

    fn subscribe_with_properties(
        &self,
        filters: &[SubscribeFilter],
        properties: Properties,
    ) -> Result<Vec<QoS>, Error> {
        self.block_on(self.client().subscribe_with_properties(filters, properties))
    }

    fn request(&self, topic: &str, payload: Bytes, qos: QoS) -> Result<Received, Error> {
        self.block_on(self.client().request(topic, payload, qos))
            .map(|message| Received::from(&message))
    }

    fn unsubscribe(&self, filters: &[&str]) -> Result<(), Error> {
        self.block_on(self.client().unsubscribe(filters))
    }

    fn next_event(&self, wait: Duration) -> Option<Seen> {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let next = |left| {
            self.block_on(async { tokio::time::timeout(left, events.recv()).await })
                .ok()?
        };
        first_within(wait, next, |event| match event {
            Event::Connected { uri, .. } => Some(Seen::Connected {
                reconnect: false,
                uri,
            }),
            Event::Reconnected { uri, .. } => Some(Seen::Connected {
                reconnect: true,
                uri,
            }),
            Event::ConnectionLost { cause } => Some(Seen::ConnectionLost(cause)),
            Event::Message(message) => Some(Seen::Message(Received::from(&message))),
            // An event this adapter does not know yet (`Event` is non-exhaustive).
            _ => None,
        })
    }

    fn disconnect(&self, drain: Duration) -> Result<(), Error> {
        self.block_on(self.client().disconnect(drain))
    }
}

impl PendingPublish for TokioPending {
    fn wait(self, timeout: Duration) -> Result<(), Error> {
        self.runtime
            .block_on(async { tokio::time::timeout(timeout, self.handle).await })
            .unwrap_or(Err(Error::Timeout(timeout)))
    }
}
