//! The connection's life in the background task: attempts over the server URIs, the core's events,
//! reconnecting with jittered backoff, re-subscribing, and turning a
//! [`DisconnectReason`] into the [`Error`] the application sees. The same rules as the blocking
//! client's (`sansmq-mio`).

use std::sync::atomic::Ordering;
use std::time::Instant;

use sansmq::client::DisconnectReason;
use sansmq::{CommandError, Event as CoreEvent};
use sansmq_driver::Closing;
use sansmq_driver::diagnosis;
use sansmq_driver::resubscription::granted_qos;

use crate::command::Reply;
use crate::task::{Link, Task};
use crate::transport::Transport;
use crate::{Error, Event, Message};

impl Task {
    /// The application's `connect`: one attempt per server URI, in order.
    pub(crate) fn start_connect(&mut self, now: Instant, reply: Reply<bool>) {
        match self.link {
            Link::Connected | Link::Connecting => {
                let _ = reply.send(Err(CommandError::AlreadyConnected.into()));
                return;
            }
            Link::Idle | Link::Reconnecting { .. } => {}
        }
        if self.closing.is_some() {
            self.finish_close(now);
        }
        self.waiters.connect = Some(reply);
        self.servers.start(self.options.servers());
        self.attempt(now);
    }

    /// Starts opening a transport to the next server URI.
    pub(crate) fn attempt(&mut self, now: Instant) {
        let Some(uri) = self.servers.next(self.options.servers()).cloned() else {
            self.link = Link::Idle;
            return;
        };
        self.link = Link::Connecting;
        // Credentials first, computed again for every connect (signatures and tokens expire):
        // without them (tokens the broker invalidated) there is no point in opening a connection.
        if let Err(error) = self.options.apply_credentials(self.core.config_mut()) {
            self.after_failure(now, error);
            return;
        }
        self.opening = Some(Box::pin(Transport::open(
            uri,
            self.tls.clone(),
            self.options.connect_timeout_limit(),
        )));
    }

    /// The transport is open (or failed to): send CONNECT.
    pub(crate) fn on_opened(&mut self, now: Instant, opened: Result<Transport, Error>) {
        let result = opened.and_then(|transport| {
            self.core.connect(now)?;
            tracing::debug!(uri = %transport.uri, "transport open, CONNECT queued");
            self.transport = Some(transport);
            Ok(())
        });
        if let Err(error) = result {
            self.after_failure(now, error);
        }
    }

    /// An attempt failed before CONNACK: try the next URI within `connect`, report the failure to
    /// it, or schedule an automatic reconnect.
    fn after_failure(&mut self, now: Instant, error: Error) {
        let error = self.diagnostics.on_connect_failed(error);
        tracing::debug!(%error, "connection attempt failed");
        self.transport = None;
        if self.waiters.connect.is_some() {
            if self.servers.tries_left() {
                self.attempt(now);
                return;
            }
            if let Some(reply) = self.waiters.connect.take() {
                let _ = reply.send(Err(error.clone()));
            }
            self.link = Link::Idle;
            self.waiters.fail_requests(&error);
        } else {
            self.schedule_reconnect(now, &error);
        }
        self.last_error = Some(error);
    }

    fn schedule_reconnect(&mut self, now: Instant, cause: &Error) {
        if self.options.reconnect_delays().is_none() {
            self.link = Link::Idle;
            self.waiters.fail_requests(cause);
            return;
        }
        let delay = self.backoff.delay_after(cause);
        tracing::info!(?delay, %cause, "reconnecting later");
        self.link = Link::Reconnecting {
            at: sansmq_driver::deadline_after(now, delay),
        };
    }

    /// The socket failed or closed: the core turns that into `Disconnected`, handled in
    /// [`on_disconnected`](Self::on_disconnected) with `error` as the precise cause.
    pub(crate) fn transport_failed(&mut self, now: Instant, error: Option<Error>) {
        if let Some(e) = &error {
            tracing::debug!(%e, "transport failed");
        }
        self.last_error = error;
        self.transport = None;
        self.core.handle_closed(now);
        // The read buffer is empty now but keeps the capacity a flood gave it: give it back.
        *self.core.read_buffer() = bytes::BytesMut::new();
    }

    /// Drains the core's events into replies, the application's streams and reconnects.
    pub(crate) fn handle_events(&mut self, now: Instant) {
        while let Some(event) = self.core.poll_event() {
            match event {
                CoreEvent::Connected { session_present } => self.on_connected(now, session_present),
                CoreEvent::Message(publish) => {
                    let message = Message::new(publish, self.dispatch.session());
                    self.deliver(now, message);
                }
                CoreEvent::Published { packet_id, .. } => {
                    self.diagnostics.on_acknowledged(packet_id);
                    if let Some(reply) = self.waiters.publishes.remove(&packet_id) {
                        let _ = reply.send(Ok(()));
                    }
                }
                CoreEvent::Dropped { packet_id } => {
                    if let Some(reply) = self.waiters.publishes.remove(&packet_id) {
                        let _ = reply.send(Err(Error::ConnectionLost(
                            DisconnectReason::TransportClosed,
                        )));
                    }
                }
                CoreEvent::Subscribed { packet_id, results } => {
                    self.diagnostics.on_acknowledged(packet_id);
                    for (reply, own) in self.waiters.restore.on_subscribed(packet_id, &results) {
                        let _ = reply.send(granted_qos(own));
                    }
                    if let Some(reply) = self.waiters.subscribes.remove(&packet_id) {
                        let _ = reply.send(granted_qos(results));
                    }
                }
                CoreEvent::Unsubscribed { packet_id } => {
                    if let Some(reply) = self.waiters.unsubscribes.remove(&packet_id) {
                        let _ = reply.send(Ok(()));
                    }
                }
                CoreEvent::Disconnected { reason } => self.on_disconnected(now, reason),
                _ => {}
            }
        }
    }

    fn on_connected(&mut self, now: Instant, session_present: bool) {
        self.link = Link::Connected;
        if let Some(diagnosis) = self.diagnostics.on_connected(now) {
            tracing::warn!(%diagnosis, "the broker is up: the previous connection's reset was probably its answer");
        }
        self.connected.store(true, Ordering::Relaxed);
        self.backoff.reset();
        let uri = self
            .transport
            .as_ref()
            .map(|t| t.uri.to_string())
            .unwrap_or_default();
        tracing::info!(%uri, session_present, "connected");
        if !session_present {
            // The core voided the acknowledgements it held; messages still in the streams carry
            // identifiers the broker may now reuse.
            self.dispatch.new_session();
        }
        let requested = self.waiters.connect.take();
        let explicit = requested.is_some();
        if let Some(reply) = requested {
            let _ = reply.send(Ok(session_present));
        }
        let resubscribe = self
            .options
            .resubscribe_policy()
            .resubscribes(session_present);
        self.waiters.restore.on_connected();
        if resubscribe && self.ever_connected {
            if let Ok(Some(id)) = self.core.resubscribe(now) {
                let filters = self.core.subscriptions().map(|(filter, _)| &**filter);
                self.diagnostics.on_resubscribed(now, id, filters);
                self.waiters
                    .restore
                    .on_restore(id, self.core.subscriptions());
            }
        }
        self.ever_connected = true;
        let event = if explicit {
            Event::Connected {
                session_present,
                uri,
            }
        } else {
            Event::Reconnected {
                session_present,
                uri,
            }
        };
        self.dispatch.event(&mut self.core, now, event);
    }

    fn on_disconnected(&mut self, now: Instant, reason: DisconnectReason) {
        self.connected.store(false, Ordering::Relaxed);
        if reason == DisconnectReason::Requested {
            // DISCONNECT is queued: the task writes it, shuts down its write side and reads until
            // the broker's end of stream, then closes (`finish_close`), so that the broker reads
            // the DISCONNECT and drops the will (see `Closing`).
            self.link = Link::Idle;
            self.closing = Some(Closing::new(now));
            return;
        }
        let broke_protocol = diagnosis::broke_protocol(&reason);
        let error = self.diagnostics.on_disconnected(
            now,
            reason,
            self.last_error.take(),
            self.link == Link::Connected,
            self.options.connect_timeout_limit(),
        );
        self.transport = None;
        self.waiters.fail_written(&error);
        match self.link {
            Link::Connecting => self.after_failure(now, error),
            Link::Connected => {
                tracing::warn!(%error, "connection lost");
                if broke_protocol {
                    // Report the broker's fault now rather than re-send the requests to it.
                    self.waiters.fail_requests(&error);
                }
                self.dispatch.event(
                    &mut self.core,
                    now,
                    Event::ConnectionLost {
                        cause: error.clone(),
                    },
                );
                self.schedule_reconnect(now, &error);
                self.last_error = Some(error);
            }
            Link::Idle | Link::Reconnecting { .. } => {}
        }
    }

    /// A requested close is over (the broker's end of stream, a failure, or the deadline): close
    /// the socket.
    pub(crate) fn finish_close(&mut self, now: Instant) {
        self.closing = None;
        self.transport = None;
        self.core.handle_closed(now);
        // Nothing more comes from that connection.
        while self.core.poll_event().is_some() {}
        self.waiters
            .fail_written(&Error::ConnectionLost(DisconnectReason::Requested));
        if let Some(reply) = self.waiters.connect.take() {
            let _ = reply.send(Err(Error::ConnectionLost(DisconnectReason::Requested)));
        }
        if let Some(reply) = self.waiters.disconnect.take() {
            let _ = reply.send(Ok(()));
        }
    }
}
