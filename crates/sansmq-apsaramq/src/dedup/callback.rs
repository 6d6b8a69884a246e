//! [`Deduplicated`]: the blocking client's callbacks, with `message_arrived` once per message id.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use sansmq_mio::{Callback, DeliveryToken, Message};

use super::{Deduplicator, Seen};
use crate::ClientError;
use crate::events::{ApsaraMqCallback, ApsaraMqEvents, MessageKind};
use crate::token_notice::{NoticeError, TokenNotice};

/// A callback whose `message_arrived` runs once per message id, with the payload's header
/// stripped; duplicates return at once, which acknowledges them. Every other callback passes
/// through untouched. It wraps an [`ApsaraMqCallback`] (see [`ApsaraMqEvents::deduplicate`]) or a
/// plain [`sansmq_mio::Callback`], for the Paho-style `Callback` your client already has.
///
/// With manual acknowledgements ([`sansmq_mio::Client::set_manual_acks`]) a duplicate is not
/// acknowledged by returning: acknowledge it in [`on_duplicate`](Self::on_duplicate), or it holds
/// back every acknowledgement after it (they leave in arrival order) and the broker keeps
/// re-delivering it.
///
/// Messages taken by a per-subscription handler or the `messages()` receiver do not pass
/// through callbacks: use [`Deduplicator::check_message`] there.
pub struct Deduplicated<C> {
    callback: C,
    dedup: Arc<Mutex<Deduplicator>>,
    on_duplicate: Option<DuplicateHook>,
}

/// What runs for each duplicate: its topic and the message as received.
type DuplicateHook = Box<dyn Fn(&str, &Message) + Send + Sync>;

impl<C: fmt::Debug> fmt::Debug for Deduplicated<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deduplicated")
            .field("callback", &self.callback)
            .field("dedup", &self.dedup)
            .field("on_duplicate", &self.on_duplicate.is_some())
            .finish()
    }
}

impl<C> Deduplicated<C> {
    /// `callback`, behind `dedup`.
    pub fn new(callback: C, dedup: Deduplicator) -> Self {
        Self::shared(callback, Arc::new(Mutex::new(dedup)))
    }

    /// `callback`, behind a deduplicator shared with others: one window for several clients of
    /// a process (a client built anew after a fatal error keeps knowing what the old one saw).
    pub fn shared(callback: C, dedup: Arc<Mutex<Deduplicator>>) -> Self {
        Self {
            callback,
            dedup,
            on_duplicate: None,
        }
    }

    /// Runs `hook` with each duplicate (its topic, and the message as received, header and all)
    /// instead of nothing: to acknowledge it with manual acknowledgements, or to count it.
    ///
    /// ```no_run
    /// use sansmq_apsaramq::dedup::{Deduplicated, Deduplicator};
    /// use sansmq_mio::{Callback, Client, ConnectOptions};
    ///
    /// struct App;
    /// impl Callback for App {}
    ///
    /// # fn main() -> Result<(), sansmq_mio::Error> {
    /// let client = Client::new(ConnectOptions::new("tcp://127.0.0.1:1883", "consumer")?)?;
    /// client.set_manual_acks(true);
    /// let acker = client.clone();
    /// client.set_callback(Deduplicated::new(App, Deduplicator::default()).on_duplicate(
    ///     move |_topic, message| {
    ///         let _ = acker.ack(message);
    ///     },
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn on_duplicate(mut self, hook: impl Fn(&str, &Message) + Send + Sync + 'static) -> Self {
        self.on_duplicate = Some(Box::new(hook));
        self
    }

    /// The wrapped callback.
    pub fn callback(&self) -> &C {
        &self.callback
    }

    /// The deduplicator (to [`forget`](Deduplicator::forget) a key whose handling failed, say).
    pub fn deduplicator(&self) -> &Arc<Mutex<Deduplicator>> {
        &self.dedup
    }

    /// `message` as the wrapped callback should see it, or `None` for a duplicate (after the
    /// hook ran). The lock is released before any of them runs, so they may use the deduplicator.
    fn first_time(&self, topic: &str, message: &Message) -> Option<Message> {
        let seen = self
            .dedup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check_message(message);
        match seen {
            Seen::New { body, .. } | Seen::Unkeyed { body } => {
                let mut message = message.clone();
                message.payload = body;
                Some(message)
            }
            Seen::Duplicate { .. } => {
                if let Some(hook) = &self.on_duplicate {
                    hook(topic, message);
                }
                None
            }
        }
    }
}

impl<C: ApsaraMqCallback> ApsaraMqEvents<C> {
    /// Calls `message_arrived` once per message id, with the header stripped (subscribed and
    /// point-to-point messages alike); token notices and the other callbacks are unchanged.
    /// ([`Deduplicated::new`] inside [`ApsaraMqEvents::new`] is the same, with room for
    /// [`Deduplicated::on_duplicate`]: needed with manual acknowledgements.)
    ///
    /// ```
    /// use sansmq_apsaramq::dedup::Deduplicator;
    /// use sansmq_apsaramq::{ApsaraMqCallback, ApsaraMqEvents, ClientId};
    ///
    /// struct App;
    /// impl ApsaraMqCallback for App {}
    ///
    /// let me = ClientId::new("GID_demo", "consumer").unwrap();
    /// let events = ApsaraMqEvents::new(App, "parent", me).deduplicate(Deduplicator::default());
    /// # let _ = events;
    /// ```
    #[must_use]
    pub fn deduplicate(self, dedup: Deduplicator) -> ApsaraMqEvents<Deduplicated<C>> {
        self.map_callback(|callback| Deduplicated::new(callback, dedup))
    }
}

impl<C: ApsaraMqCallback> ApsaraMqCallback for Deduplicated<C> {
    fn connect_complete(&self, reconnect: bool, server_uri: &str) {
        self.callback.connect_complete(reconnect, server_uri);
    }

    fn connection_lost(&self, cause: &ClientError) {
        self.callback.connection_lost(cause);
    }

    fn message_arrived(&self, topic: &str, message: &Message, kind: MessageKind) {
        if let Some(message) = self.first_time(topic, message) {
            self.callback.message_arrived(topic, &message, kind);
        }
    }

    fn delivery_complete(&self, token: &DeliveryToken) {
        self.callback.delivery_complete(token);
    }

    fn token_notice(&self, notice: &TokenNotice) {
        self.callback.token_notice(notice);
    }

    fn notice_error(&self, error: &NoticeError) {
        self.callback.notice_error(error);
    }
}

impl<C: Callback> Callback for Deduplicated<C> {
    fn connect_complete(&self, reconnect: bool, server_uri: &str) {
        self.callback.connect_complete(reconnect, server_uri);
    }

    fn connection_lost(&self, cause: &ClientError) {
        self.callback.connection_lost(cause);
    }

    fn message_arrived(&self, topic: &str, message: &Message) {
        if let Some(message) = self.first_time(topic, message) {
            self.callback.message_arrived(topic, &message);
        }
    }

    fn delivery_complete(&self, token: &DeliveryToken) {
        self.callback.delivery_complete(token);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use sansmq::TopicName;
    use sansmq::packet::{PacketId, Publish, QoS};

    use super::*;
    use crate::ClientId;
    use crate::dedup::{MessageId, tag};

    /// A message as the wrapped callback saw it: topic, payload, and the kind if it was told.
    type Arrival = (String, Bytes, Option<MessageKind>);

    /// What the wrapped callback saw.
    #[derive(Default, Clone)]
    struct Recorder {
        messages: Arc<Mutex<Vec<Arrival>>>,
        notices: Arc<Mutex<Vec<TokenNotice>>>,
    }

    impl ApsaraMqCallback for Recorder {
        fn message_arrived(&self, topic: &str, message: &Message, kind: MessageKind) {
            let entry = (topic.to_owned(), message.payload.clone(), Some(kind));
            self.messages.lock().unwrap().push(entry);
        }

        fn token_notice(&self, notice: &TokenNotice) {
            self.notices.lock().unwrap().push(notice.clone());
        }
    }

    impl Callback for Recorder {
        fn message_arrived(&self, topic: &str, message: &Message) {
            let entry = (topic.to_owned(), message.payload.clone(), None);
            self.messages.lock().unwrap().push(entry);
        }
    }

    /// A QoS 1 delivery of `payload` on `topic` with packet id `id`.
    fn message(topic: &str, payload: Bytes, id: u16) -> Message {
        Message::from({
            let mut publish = Publish::new(TopicName::try_from(topic).unwrap(), payload);
            publish.qos = QoS::AtLeastOnce;
            publish.packet_id = PacketId::new(id);
            publish
        })
    }

    fn tagged(id: &str, body: &'static [u8]) -> Bytes {
        tag(&MessageId::new(id).unwrap(), body)
    }

    #[test]
    fn message_arrived_runs_once_per_id_for_p2p_and_subscribed_messages() {
        let me = ClientId::new("GID_test", "consumer").unwrap();
        let recorder = Recorder::default();
        let events = ApsaraMqEvents::new(recorder.clone(), "parent", me)
            .deduplicate(Deduplicator::default());
        let p2p = "parent/p2p/GID_test@@@consumer";
        let deliveries = [
            message("parent/a", tagged("s-1", b"one"), 1),
            message(p2p, tagged("p-1", b"two"), 2),
            // Re-deliveries and resends: same ids, other packet ids.
            message("parent/a", tagged("s-1", b"one"), 3),
            message(p2p, tagged("p-1", b"two"), 1),
            message("parent/a", tagged("s-2", b""), 4),
            message("parent/a", tagged("s-1", b"one"), 5),
        ];
        for delivery in &deliveries {
            Callback::message_arrived(&events, delivery.topic.as_str(), delivery);
        }
        let seen = recorder.messages.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                (
                    "parent/a".to_owned(),
                    Bytes::from_static(b"one"),
                    Some(MessageKind::Subscribed)
                ),
                (
                    p2p.to_owned(),
                    Bytes::from_static(b"two"),
                    Some(MessageKind::PointToPoint)
                ),
                (
                    "parent/a".to_owned(),
                    Bytes::new(),
                    Some(MessageKind::Subscribed)
                ),
            ]
        );
    }

    #[test]
    fn token_notices_pass_through_untouched() {
        let me = ClientId::new("GID_test", "consumer").unwrap();
        let recorder = Recorder::default();
        let events = ApsaraMqEvents::new(recorder.clone(), "parent", me)
            .deduplicate(Deduplicator::default());
        let notice = Bytes::from_static(br#"{"expireTime":1700000000000,"type":"RW"}"#);
        for id in [1, 2] {
            let m = message("$SYS/tokenExpireNotice", notice.clone(), id);
            Callback::message_arrived(&events, m.topic.as_str(), &m);
        }
        assert_eq!(
            recorder.notices.lock().unwrap().len(),
            2,
            "notices are not deduplicated"
        );
        assert!(recorder.messages.lock().unwrap().is_empty());
    }

    #[test]
    fn a_plain_callback_is_deduplicated_too() {
        let wrapped = Deduplicated::new(Recorder::default(), Deduplicator::default());
        for (payload, id) in [
            (tagged("m-1", b"x"), 1),
            (tagged("m-1", b"x"), 2),
            (Bytes::from_static(b"untagged"), 3),
            (Bytes::from_static(b"untagged"), 4),
        ] {
            let m = message("t", payload, id);
            Callback::message_arrived(&wrapped, "t", &m);
        }
        let payloads: Vec<Bytes> = wrapped
            .callback()
            .messages
            .lock()
            .unwrap()
            .iter()
            .map(|(_, payload, _)| payload.clone())
            .collect();
        assert_eq!(
            payloads,
            [&b"x"[..], b"untagged", b"untagged"].map(Bytes::from_static)
        );
        assert_eq!(wrapped.deduplicator().lock().unwrap().len(), 1);
    }

    #[test]
    fn duplicates_go_to_the_hook_as_received() {
        let duplicates = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&duplicates);
        let wrapped = Deduplicated::new(Recorder::default(), Deduplicator::default()).on_duplicate(
            move |topic, message| {
                let entry = (topic.to_owned(), message.payload.clone(), message.id);
                recorded.lock().unwrap().push(entry);
            },
        );
        let payload = tagged("m-1", b"x");
        for id in [1, 2, 3] {
            let m = message("t", payload.clone(), id);
            Callback::message_arrived(&wrapped, "t", &m);
        }
        assert_eq!(wrapped.callback().messages.lock().unwrap().len(), 1);
        assert_eq!(
            *duplicates.lock().unwrap(),
            [
                ("t".to_owned(), payload.clone(), PacketId::new(2)),
                ("t".to_owned(), payload, PacketId::new(3)),
            ]
        );
    }

    #[test]
    fn a_shared_deduplicator_spans_clients() {
        let dedup = Arc::new(Mutex::new(Deduplicator::default()));
        let first = Deduplicated::shared(Recorder::default(), Arc::clone(&dedup));
        let second = Deduplicated::shared(Recorder::default(), dedup);
        let m = message("t", tagged("m-1", b"x"), 1);
        Callback::message_arrived(&first, "t", &m);
        Callback::message_arrived(&second, "t", &m);
        assert_eq!(first.callback().messages.lock().unwrap().len(), 1);
        assert!(second.callback().messages.lock().unwrap().is_empty());
    }
}
