//! [`Dispatch`]: hands incoming messages and connection events to the application's streams, in
//! arrival order, and acknowledges each QoS 1/2 message once the application has it.
//!
//! The streams are bounded channels. What does not fit waits here, in order, and is moved on as
//! room appears (the task waits for that room in its `select!`). Whether the task keeps reading
//! from the broker meanwhile is decided by [`Dispatch::is_backed_up`] together with what the
//! application awaits: see the task.

use std::collections::VecDeque;
use std::time::Instant;

use sansmq::TopicFilter;
use sansmq::packet::QoS;
use sansmq_driver::channel::{Sender, TrySendError};

use crate::command::Supervisor;
use crate::{Event, Message};

/// QoS 0 messages held beyond this many times the channel capacity are dropped.
const QOS0_HOLD_FACTOR: usize = 8;

/// Where one item goes.
#[derive(Debug)]
enum Delivery {
    Event(Event),
    Routed(Sender<Message>, Message),
}

/// The application's side of incoming traffic.
#[derive(Debug)]
pub(crate) struct Dispatch {
    events: Sender<Event>,
    /// Per-subscription streams, first match wins.
    routes: Vec<(TopicFilter, Sender<Message>)>,
    /// Items the channels had no room for, oldest first.
    held: VecDeque<Delivery>,
    capacity: usize,
    manual_acks: bool,
    dropped_qos0: u64,
}

impl Dispatch {
    pub(crate) fn new(events: Sender<Event>, capacity: usize, manual_acks: bool) -> Self {
        Self {
            events,
            routes: Vec::new(),
            held: VecDeque::new(),
            capacity,
            manual_acks,
            dropped_qos0: 0,
        }
    }

    pub(crate) fn add_route(&mut self, filter: TopicFilter, tx: Sender<Message>) {
        self.routes.push((filter, tx));
    }

    /// Unsubscribed: those streams end (their senders are dropped).
    pub(crate) fn remove_routes(&mut self, filters: &[TopicFilter]) {
        self.routes.retain(|(f, _)| !filters.contains(f));
    }

    /// As many items are held as the channel holds: stop reading unless something awaits the
    /// broker.
    pub(crate) fn is_backed_up(&self) -> bool {
        self.held.len() >= self.capacity
    }

    pub(crate) fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// A connection event.
    pub(crate) fn event(&mut self, supervisor: &mut Supervisor, now: Instant, event: Event) {
        self.push(supervisor, now, Delivery::Event(event));
    }

    /// A message: to the first live subscription stream whose filter matches it, else to events.
    pub(crate) fn message(&mut self, supervisor: &mut Supervisor, now: Instant, message: Message) {
        if message.qos == QoS::AtMostOnce
            && self.held.len() >= self.capacity.saturating_mul(QOS0_HOLD_FACTOR)
        {
            self.dropped_qos0 += 1;
            if self.dropped_qos0.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped_qos0,
                    "the application is not reading messages while awaiting the broker: dropping QoS 0 messages"
                );
            }
            return;
        }
        self.routes.retain(|(_, tx)| !tx.is_closed());
        let route = self
            .routes
            .iter()
            .find(|(filter, _)| filter.matches(&message.topic))
            .map(|(_, tx)| tx.clone());
        let delivery = match route {
            Some(tx) => Delivery::Routed(tx, message),
            None => Delivery::Event(Event::Message(message)),
        };
        self.push(supervisor, now, delivery);
    }

    fn push(&mut self, supervisor: &mut Supervisor, now: Instant, delivery: Delivery) {
        if self.held.is_empty() {
            if let Some(held) = self.try_deliver(supervisor, now, delivery) {
                self.held.push_back(held);
            }
        } else {
            self.held.push_back(delivery);
        }
    }

    /// Moves held items into channels with room, in order.
    pub(crate) fn release(&mut self, supervisor: &mut Supervisor, now: Instant) {
        while let Some(delivery) = self.held.pop_front() {
            if let Some(back) = self.try_deliver(supervisor, now, delivery) {
                self.held.push_front(back);
                return;
            }
        }
    }

    /// Gives back what a burst grew: the room of empty channels and of the held items.
    pub(crate) fn shrink(&mut self) {
        self.events.shrink();
        for (_, tx) in &self.routes {
            tx.shrink();
        }
        if self.held.is_empty() {
            self.held = VecDeque::new();
        }
    }

    /// Waits until the oldest held item's channel has room (or is gone).
    pub(crate) async fn room(&self) {
        match self.held.front() {
            Some(Delivery::Event(_)) => drop(self.events.ready().await),
            Some(Delivery::Routed(tx, _)) => drop(tx.ready().await),
            None => std::future::pending().await,
        }
    }

    /// Delivers one item or gives it back when its channel is full. A message is acknowledged once
    /// delivered (unless acks are manual) or when nobody listens; the supervisor refuses the ack of
    /// a message from a session the broker forgot, and sends acks in arrival order whatever the
    /// order they are given in (MQTT-4.6.0-2).
    fn try_deliver(
        &mut self,
        supervisor: &mut Supervisor,
        now: Instant,
        delivery: Delivery,
    ) -> Option<Delivery> {
        let key = match &delivery {
            Delivery::Event(Event::Message(m)) | Delivery::Routed(_, m) => m.ack_key(),
            Delivery::Event(_) => None,
        };
        let delivered = match delivery {
            Delivery::Event(event) => match self.events.try_send(event) {
                Ok(()) => true,
                Err(TrySendError::Full(event)) => return Some(Delivery::Event(event)),
                // Nobody listens: acknowledge and forget.
                Err(TrySendError::Closed(_)) => false,
            },
            Delivery::Routed(tx, message) => match tx.try_send(message) {
                Ok(()) => true,
                Err(TrySendError::Full(message)) => return Some(Delivery::Routed(tx, message)),
                // The stream was dropped: the message goes to the events instead.
                Err(TrySendError::Closed(message)) => {
                    let delivery = Delivery::Event(Event::Message(message));
                    return self.try_deliver(supervisor, now, delivery);
                }
            },
        };
        if let Some(key) = key {
            if !(delivered && self.manual_acks) {
                let _ = supervisor.ack(now, key);
            }
        }
        None
    }
}
