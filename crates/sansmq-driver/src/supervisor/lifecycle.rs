//! The connection's life: attempts over the server URIs, the core's events, reconnecting with
//! jittered backoff, re-subscribing, and turning a [`DisconnectReason`] into the [`Error`] the
//! application sees.

use std::time::Instant;

use sansmq::DisconnectReason;
use sansmq::Event as CoreEvent;

use crate::resubscription::granted_qos;
use crate::{Closing, Error, Message, deadline_after, diagnosis};

use super::{Action, Completed, Event, Link, Requests, Supervisor, Transport};

impl<R: Requests> Supervisor<R> {
    /// Handles what the last input produced: the core's events, QoS 0 writes, a close's progress.
    pub(super) fn process(&mut self, now: Instant) {
        while let Some(event) = self.core.poll_event() {
            self.on_core_event(now, event);
        }
        self.after_writes(now);
        // Before the driver writes what the input produced (a PUBREC, a PUBREL) or hands out its
        // events. A failure stops the client; its waiters hear why.
        let _ = self.persist(now);
    }

    /// Starts an attempt on the next server URI: credentials, CONNECT queued in the core (its
    /// CONNACK timer bounds opening the transport and CONNACK together), then [`Action::Open`].
    pub(super) fn attempt(&mut self, now: Instant) {
        let Some(uri) = self.servers.next(self.options.servers()).cloned() else {
            self.link = Link::Idle;
            return;
        };
        if matches!(self.transport, Transport::Closing(..)) {
            self.finish_close(now);
        }
        self.link = Link::Connecting;
        // Credentials first, asked for again on every attempt (signatures and tokens expire).
        // Without them (tokens the broker declared invalid) no attempt can succeed: open nothing
        // the broker would refuse. The application's `connect` fails; automatic reconnect asks
        // again after the backoff, so new credentials (refreshed tokens) resume it by themselves.
        if let Err(error) = self.options.apply_credentials(self.core.config_mut()) {
            if self.waiters.connect.is_some() {
                self.give_up(error);
            } else {
                tracing::warn!(%error, "no credentials: asking again after the backoff");
                if !self.waiting_for_credentials {
                    self.waiting_for_credentials = true;
                    let cause = error.clone();
                    self.events
                        .push_back(Event::WaitingForCredentials { cause });
                }
                self.schedule_reconnect(now, &error);
            }
            return;
        }
        self.waiting_for_credentials = false;
        if let Err(error) = self.core.connect(now) {
            self.after_failure(now, error.into());
            return;
        }
        tracing::debug!(%uri, "connecting");
        self.transport = Transport::Opening(uri.clone());
        self.actions.push_back(Action::Open { uri });
    }

    /// No attempt will be made until the application's next `connect`: what waits fails with
    /// `cause`.
    fn give_up(&mut self, cause: Error) {
        self.link = Link::Idle;
        self.servers.stop();
        let mut events = std::mem::take(&mut self.events);
        if let Some(waiter) = self.waiters.connect.take() {
            let failed = Completed::Connect(waiter, Err(cause.clone()));
            events.push_back(Event::Completed(failed));
        }
        self.waiters.fail_requests(&cause, &mut events);
        self.events = events;
    }

    /// An attempt failed before CONNACK: try the next URI within `connect`, report the failure to
    /// it, or schedule an automatic reconnect.
    fn after_failure(&mut self, now: Instant, error: Error) {
        let error = self.diagnostics.on_connect_failed(error);
        tracing::debug!(%error, "connection attempt failed");
        self.drop_transport_quietly();
        if self.waiters.connect.is_some() {
            if self.servers.tries_left() {
                self.attempt(now);
                return;
            }
            self.give_up(error);
            return;
        }
        self.schedule_reconnect(now, &error);
    }

    /// Reconnects after the backoff's next delay, if the options ask for automatic reconnect.
    /// Returns when.
    fn schedule_reconnect(&mut self, now: Instant, cause: &Error) -> Option<Instant> {
        if self.link == Link::ShutDown {
            return None;
        }
        if self.options.reconnect_delays().is_none() {
            self.link = Link::Idle;
            let mut events = std::mem::take(&mut self.events);
            self.waiters.fail_requests(cause, &mut events);
            self.events = events;
            return None;
        }
        let delay = self.backoff.delay_after(cause);
        tracing::info!(?delay, %cause, "reconnecting later");
        let at = deadline_after(now, delay);
        // Automatic attempts go on round the list of server URIs.
        self.link = Link::Reconnecting { at };
        Some(at)
    }

    /// The transport failed or closed (`error`: the transport's own account): the core turns
    /// that into `Disconnected`, handled with `error` as the precise cause.
    pub(super) fn transport_ended(&mut self, now: Instant, error: Option<Error>) {
        if let Some(e) = &error {
            tracing::debug!(%e, "transport failed");
        }
        self.transport_error = error.map(Box::new);
        self.transport = Transport::None;
        self.core.handle_closed(now);
        // The read buffer is empty now but keeps the capacity a flood gave it: give it back.
        *self.core.read_buffer() = bytes::BytesMut::new();
        self.process(now);
    }

    fn on_core_event(&mut self, now: Instant, event: CoreEvent) {
        match event {
            CoreEvent::Connected { session_present } => self.on_connected(now, session_present),
            CoreEvent::Message(publish) => {
                let message = Message::new(publish, self.session);
                match self.response_waiter(&message) {
                    Some(waiter) => {
                        // Handed to the request, not to the application: acknowledged here.
                        if let Some(key) = message.ack_key() {
                            if let Err(error) = self.ack(now, key) {
                                tracing::debug!(%error, "acknowledging a response");
                            }
                        }
                        self.complete(Completed::Request(waiter, Ok(message)));
                    }
                    None => self.events.push_back(Event::Message(message)),
                }
            }
            CoreEvent::Published { packet_id, .. } => {
                self.diagnostics.on_acknowledged(packet_id);
                if let Some((qos, waiter)) = self.waiters.publishes.remove(&packet_id) {
                    self.complete(Completed::Publish(waiter, qos, Ok(())));
                }
                self.waiters.responses.delivered(packet_id);
            }
            CoreEvent::Dropped { packet_id } => {
                let lost = Error::ConnectionLost(DisconnectReason::TransportClosed);
                self.fail_publish(packet_id, lost);
            }
            CoreEvent::PublishRefused {
                packet_id, reason, ..
            } => {
                self.diagnostics.on_acknowledged(packet_id);
                self.fail_publish(packet_id, Error::PublishRefused(reason));
            }
            CoreEvent::Expired {
                packet_id: Some(packet_id),
                ..
            } => self.fail_publish(packet_id, Error::Expired),
            CoreEvent::Unsendable {
                packet_id: Some(packet_id),
                error,
                ..
            } => self.fail_publish(packet_id, Error::Command(*error)),
            CoreEvent::RequestUnsendable { packet_id, error } => {
                let error = Error::Command(error);
                if let Some(waiter) = self.waiters.subscribes.remove(&packet_id) {
                    self.complete(Completed::Subscribe(waiter, Err(error)));
                } else if let Some(waiter) = self.waiters.unsubscribes.remove(&packet_id) {
                    self.complete(Completed::Unsubscribe(waiter, Err(error)));
                }
            }
            CoreEvent::Subscribed { packet_id, results } => {
                self.diagnostics.on_acknowledged(packet_id);
                for (waiter, own) in self.waiters.restore.on_subscribed(packet_id, &results) {
                    self.complete(Completed::Subscribe(waiter, granted_qos(own)));
                }
                if let Some(waiter) = self.waiters.subscribes.remove(&packet_id) {
                    self.complete(Completed::Subscribe(waiter, granted_qos(results)));
                }
            }
            CoreEvent::Unsubscribed { packet_id } => {
                if let Some(waiter) = self.waiters.unsubscribes.remove(&packet_id) {
                    self.complete(Completed::Unsubscribe(waiter, Ok(())));
                }
            }
            CoreEvent::Resubscribing { packet_id, filters } => {
                // Sent right after CONNACK, ahead of the messages queued while disconnected.
                let names = filters.iter().map(|f| &*f.filter);
                self.diagnostics.on_resubscribed(now, packet_id, names);
                let restored = filters.iter().map(|f| (&f.filter, f.qos));
                self.waiters.restore.on_restore(packet_id, restored);
            }
            CoreEvent::Disconnected { reason } => self.on_disconnected(now, reason),
            CoreEvent::Reauthenticated => tracing::info!("re-authenticated"),
            _ => {}
        }
    }

    /// Completes the QoS 1/2 publish `packet_id` with `error`: a publish, or a request whose
    /// message will not reach the responder.
    fn fail_publish(&mut self, packet_id: sansmq::packet::PacketId, error: Error) {
        if let Some((qos, waiter)) = self.waiters.publishes.remove(&packet_id) {
            self.complete(Completed::Publish(waiter, qos, Err(error)));
        } else if let Some(waiter) = self.waiters.responses.lost(packet_id) {
            self.complete(Completed::Request(waiter, Err(error)));
        }
    }

    /// The waiter of the request `message` answers: a message on the response topic whose
    /// Correlation Data is a waiting request's.
    fn response_waiter(&mut self, message: &Message) -> Option<R::Request> {
        let responses = &mut self.waiters.responses;
        if responses.topic() != Some(&message.topic) {
            return None;
        }
        let correlation = message.properties().correlation_data()?;
        responses.answered(correlation)
    }

    fn on_connected(&mut self, now: Instant, session_present: bool) {
        self.link = Link::Connected;
        if let Some(diagnosis) = self.diagnostics.on_connected(now) {
            tracing::warn!(%diagnosis, "the broker is up: the previous connection's reset was probably its answer");
        }
        self.backoff.reset();
        // The core voided the acknowledgements it held: the broker forgot those messages and may
        // reuse their identifiers.
        self.session += u64::from(!session_present);
        // CONNACK is read from an open transport, so there is a server.
        let uri = self.server().cloned();
        tracing::info!(?uri, session_present, "connected");
        let requested = self.waiters.connect.take();
        let answers_connect = requested.is_some();
        if let Some(waiter) = requested {
            self.complete(Completed::Connect(waiter, Ok(session_present)));
        }
        self.waiters.restore.on_connected();
        let reconnect = self.ever_connected;
        self.ever_connected = true;
        if let Some(uri) = uri {
            self.events.push_back(Event::Connected {
                uri,
                session_present,
                reconnect,
                requested: answers_connect,
            });
        }
    }

    fn on_disconnected(&mut self, now: Instant, reason: DisconnectReason) {
        if reason == DisconnectReason::Requested {
            // DISCONNECT is queued: the driver writes it, shuts down its write side and reads
            // until the broker's end of stream, so that the broker reads the DISCONNECT and drops
            // the will (see `Closing`).
            self.link = Link::Idle;
            self.transport = match std::mem::replace(&mut self.transport, Transport::None) {
                Transport::Open(uri) => Transport::Closing(uri, Closing::new(now)),
                other => other,
            };
            if !matches!(self.transport, Transport::Closing(..)) {
                self.drop_transport_quietly();
                self.finish_close(now);
            }
            return;
        }
        if self.link == Link::Connected && !self.waiters.disconnect.is_empty() {
            // It ended while a requested disconnect drained it: that ends the disconnect, and
            // the application asked for no reconnect.
            tracing::debug!(%reason, "connection ended while disconnecting");
            self.link = Link::Idle;
            self.transport_error = None;
            self.finish_close(now);
            return;
        }
        let broke_protocol = diagnosis::broke_protocol(&reason);
        let error = self.diagnostics.on_disconnected(
            now,
            reason,
            self.transport_error.take().map(|error| *error),
            self.link == Link::Connected,
            self.options.connect_timeout_limit(),
        );
        self.drop_transport_quietly();
        let mut events = std::mem::take(&mut self.events);
        self.waiters.fail_written(&error, &mut events);
        self.events = events;
        match self.link {
            Link::Connecting => self.after_failure(now, error),
            Link::Connected => {
                tracing::warn!(%error, "connection lost");
                if broke_protocol {
                    // Report the broker's fault now rather than re-send the requests to it.
                    let mut events = std::mem::take(&mut self.events);
                    self.waiters.fail_requests(&error, &mut events);
                    self.events = events;
                }
                let reconnect_at = self.schedule_reconnect(now, &error);
                self.events.push_back(Event::ConnectionLost {
                    cause: error,
                    reconnect_at,
                });
            }
            Link::Idle | Link::Reconnecting { .. } | Link::ShutDown => {}
        }
    }

    /// A requested close is over (the broker's end of stream, a failure, or the deadline):
    /// close the transport and answer `disconnect`.
    pub(super) fn finish_close(&mut self, now: Instant) {
        self.drop_transport_quietly();
        self.core.handle_closed(now);
        // Nothing more comes from that connection.
        while self.core.poll_event().is_some() {}
        *self.core.read_buffer() = bytes::BytesMut::new();
        let lost = Error::ConnectionLost(DisconnectReason::Requested);
        let mut events = std::mem::take(&mut self.events);
        self.waiters.fail_written(&lost, &mut events);
        self.events = events;
        if let Some(waiter) = self.waiters.connect.take() {
            self.complete(Completed::Connect(waiter, Err(lost)));
        }
        for waiter in std::mem::take(&mut self.waiters.disconnect) {
            self.complete(Completed::Disconnect(waiter, Ok(())));
        }
    }

    /// Asks the driver to drop the transport it holds or is opening, if any.
    fn drop_transport_quietly(&mut self) {
        if !matches!(self.transport, Transport::None) {
            self.transport = Transport::None;
            self.actions.push_back(Action::Close);
        }
    }

    /// Drops the transport and tells the core (for `disconnect` while not connected and
    /// `shut_down`).
    pub(super) fn drop_transport(&mut self, now: Instant) {
        let had_transport = !matches!(self.transport, Transport::None);
        self.drop_transport_quietly();
        if had_transport || self.core.is_connected() {
            self.core.handle_closed(now);
            *self.core.read_buffer() = bytes::BytesMut::new();
        }
    }
}
