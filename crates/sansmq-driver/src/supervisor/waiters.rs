//! [`Waiters`]: the requests the supervisor owes an answer, by what will complete them.

use std::collections::VecDeque;

use sansmq::packet::QoS;

use crate::Error;
use crate::resubscription::Resubscription;

use super::by_packet_id::ByPacketId;
use super::responses::Responses;
use super::{Completed, Event, Requests};

/// A QoS 0 message awaiting its write.
#[derive(Debug)]
struct Written<W> {
    /// Its place among the QoS 0 messages accepted (counted from 0).
    seq: u64,
    waiter: W,
}

/// Who waits for what.
pub(super) struct Waiters<R: Requests> {
    /// `connect`, until the first CONNACK or the last attempt's failure.
    pub(super) connect: Option<R::Connect>,
    /// QoS 1/2 messages, until PUBACK / PUBCOMP.
    pub(super) publishes: ByPacketId<(QoS, R::Publish)>,
    /// QoS 0 messages, oldest first, until written.
    written: VecDeque<Written<R::Publish>>,
    /// For the messages of `written` encoded at once: `(seq, end)`, where `end` is the place of
    /// their last byte in the connection's byte stream (the supervisor counts written bytes up to
    /// it). The others wait in the core's queue, where their place is not known; they are out
    /// once a message encoded after them is.
    ends: VecDeque<(u64, u64)>,
    /// The `seq` of the next QoS 0 message.
    next_seq: u64,
    pub(super) subscribes: ByPacketId<R::Subscribe>,
    /// Subscribes that joined the SUBSCRIBE restoring the session's subscriptions.
    pub(super) restore: Resubscription<R::Subscribe>,
    pub(super) unsubscribes: ByPacketId<R::Unsubscribe>,
    /// `disconnect`s, until the connection is closed (a second one joins the first's close).
    pub(super) disconnect: Vec<R::Disconnect>,
    /// MQTT 5 requests waiting for their response.
    pub(super) responses: Responses<R>,
}

impl<R: Requests> Default for Waiters<R> {
    fn default() -> Self {
        Self {
            connect: None,
            publishes: ByPacketId::default(),
            written: VecDeque::new(),
            ends: VecDeque::new(),
            next_seq: 0,
            subscribes: ByPacketId::default(),
            restore: Resubscription::default(),
            unsubscribes: ByPacketId::default(),
            disconnect: Vec::new(),
            responses: Responses::default(),
        }
    }
}

impl<R: Requests> Waiters<R> {
    /// Whether the application awaits something only the broker's packets can complete: a driver
    /// must go on reading then, however backed up the application's message queues are.
    pub(super) fn await_broker(&self) -> bool {
        !self.publishes.is_empty()
            || !self.subscribes.is_empty()
            || self.restore.has_joined()
            || !self.unsubscribes.is_empty()
            || self.connect.is_some()
            || !self.disconnect.is_empty()
    }

    /// A QoS 0 message whose last byte is `end` in the stream (`None`: queued in the core).
    pub(super) fn await_written(&mut self, end: Option<u64>, waiter: R::Publish) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.written.push_back(Written { seq, waiter });
        if let Some(end) = end {
            self.ends.push_back((seq, end));
        }
    }

    /// SUBSCRIBE and UNSUBSCRIBE requests that no connection will answer.
    pub(super) fn fail_requests(&mut self, cause: &Error, out: &mut VecDeque<Event<R>>) {
        for (_, waiter) in self.subscribes.drain() {
            out.push_back(Event::Completed(Completed::Subscribe(
                waiter,
                Err(cause.clone()),
            )));
        }
        for waiter in self.restore.drain() {
            out.push_back(Event::Completed(Completed::Subscribe(
                waiter,
                Err(cause.clone()),
            )));
        }
        for (_, waiter) in self.unsubscribes.drain() {
            out.push_back(Event::Completed(Completed::Unsubscribe(
                waiter,
                Err(cause.clone()),
            )));
        }
    }

    /// QoS 0 messages whose connection ended before they were written: lost with it.
    pub(super) fn fail_written(&mut self, cause: &Error, out: &mut VecDeque<Event<R>>) {
        self.ends.clear();
        for written in self.written.drain(..) {
            out.push_back(Event::Completed(Completed::Publish(
                written.waiter,
                QoS::AtMostOnce,
                Err(cause.clone()),
            )));
        }
    }

    /// The connection's first `written` bytes are out: so is every QoS 0 message that ends there
    /// or before, and every one queued before those (they are written in order). With `all`,
    /// everything accepted so far is out.
    pub(super) fn complete_written(
        &mut self,
        written: u64,
        all: bool,
        out: &mut VecDeque<Event<R>>,
    ) {
        // Ends only grow along the queue: pop those written, in O(messages completed). (Scanning
        // the queue on every write cost a pass over every message waiting in the core's queue.)
        let mut upto = None;
        while let Some(&(seq, end)) = self.ends.front() {
            if end > written && !all {
                break;
            }
            upto = Some(seq);
            self.ends.pop_front();
        }
        if all {
            upto = self.written.back().map(|w| w.seq);
        }
        let Some(upto) = upto else {
            return;
        };
        let done = self.written.partition_point(|w| w.seq <= upto);
        for written in self.written.drain(..done) {
            out.push_back(Event::Completed(Completed::Publish(
                written.waiter,
                QoS::AtMostOnce,
                Ok(()),
            )));
        }
    }

    /// Whether QoS 0 messages wait for their write.
    pub(super) fn awaits_writes(&self) -> bool {
        !self.written.is_empty()
    }

    /// The client is shut down: every waiter gets `cause`.
    pub(super) fn fail_all(&mut self, cause: &Error, out: &mut VecDeque<Event<R>>) {
        if let Some(waiter) = self.connect.take() {
            out.push_back(Event::Completed(Completed::Connect(
                waiter,
                Err(cause.clone()),
            )));
        }
        for (_, (qos, waiter)) in self.publishes.drain() {
            out.push_back(Event::Completed(Completed::Publish(
                waiter,
                qos,
                Err(cause.clone()),
            )));
        }
        self.fail_written(cause, out);
        self.fail_requests(cause, out);
        for waiter in self.responses.drain() {
            out.push_back(Event::Completed(Completed::Request(
                waiter,
                Err(cause.clone()),
            )));
        }
    }
}
