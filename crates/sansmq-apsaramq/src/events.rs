//! [`ApsaraMqCallback`]: Paho's callbacks plus what ApsaraMQ adds — point-to-point messages told
//! apart from subscribed ones, and the broker's token notices as typed values — for the blocking
//! client. Wrap it in [`ApsaraMqEvents`] and hand that to `sansmq_mio::Client::set_callback`.
//! Both need the `mio` feature (on by default); [`classify`], which sorts messages for any
//! client, does not.

#[cfg(feature = "mio")]
use sansmq_mio::{Callback, DeliveryToken, Message};

#[cfg(feature = "mio")]
use crate::ClientError;
use crate::client_id::ClientId;
#[cfg(feature = "mio")]
use crate::credentials::ApsaraMqCredentials;
use crate::token_notice::{NoticeError, TokenNotice, parse_token_notice};
use crate::topic::is_p2p_for;

/// How a message reached this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageKind {
    /// Through a subscription.
    Subscribed,
    /// Point to point: published to `<parent>/p2p/<our client id>`, delivered without a
    /// subscription.
    PointToPoint,
}

/// What an incoming message is to an ApsaraMQ client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// An application message, subscribed or point to point.
    Message(MessageKind),
    /// A token notice from the broker, or why its JSON could not be read.
    Notice(Result<TokenNotice, NoticeError>),
}

/// Sorts a received message for the client `client_id` whose P2P messages arrive under
/// `parent_topic`: a token notice, a P2P message or a subscribed one. For clients without
/// [`ApsaraMqEvents`] (the async client's message stream, say).
///
/// ```
/// use sansmq_apsaramq::{ClientId, Incoming, MessageKind, classify};
///
/// let me = ClientId::new("GID_demo", "device-1").unwrap();
/// let p2p = classify("parent/p2p/GID_demo@@@device-1", b"hi", "parent", &me);
/// assert_eq!(p2p, Incoming::Message(MessageKind::PointToPoint));
/// let notice = classify("$SYS/tokenExpireNotice", br#"{"expireTime":1,"type":"R"}"#, "parent", &me);
/// assert!(matches!(notice, Incoming::Notice(Ok(_))));
/// ```
pub fn classify(topic: &str, payload: &[u8], parent_topic: &str, client_id: &ClientId) -> Incoming {
    match parse_token_notice(topic, payload) {
        Some(notice) => Incoming::Notice(notice),
        None if is_p2p_for(topic, parent_topic, client_id) => {
            Incoming::Message(MessageKind::PointToPoint)
        }
        None => Incoming::Message(MessageKind::Subscribed),
    }
}

/// What happens to an ApsaraMQ connection; every method has an empty default. The methods run on
/// the client's callback thread, as [`sansmq_mio::Callback`]'s do, and may call the client.
#[cfg(feature = "mio")]
pub trait ApsaraMqCallback: Send + Sync + 'static {
    /// A connection was made (`reconnect` is true for automatic reconnects). Subscribe here.
    fn connect_complete(&self, reconnect: bool, server_uri: &str) {
        let _ = (reconnect, server_uri);
    }

    /// The connection was lost. A broker that hung up because of a forbidden topic or a duplicate
    /// client id is [`ClientError::ClosedByBroker`] with the diagnosis. `ClientError` is the
    /// clients' error type ([`sansmq_mio::Error`]), re-exported here under that name.
    fn connection_lost(&self, cause: &ClientError) {
        let _ = cause;
    }

    /// An application message arrived; returning acknowledges it. The same message may arrive
    /// again (after a reconnect or a lost acknowledgement, or resent by its publisher, not always
    /// with `message.duplicate` set): handle it idempotently, or let
    /// [`ApsaraMqEvents::deduplicate`] call this once per message id ([`crate::dedup`]).
    fn message_arrived(&self, topic: &str, message: &Message, kind: MessageKind) {
        let _ = (topic, message, kind);
    }

    /// The broker acknowledged a QoS 1/2 message this client published.
    fn delivery_complete(&self, token: &DeliveryToken) {
        let _ = token;
    }

    /// The broker sent a token notice. After [`TokenNotice::Invalid`] the credentials (when
    /// [`ApsaraMqEvents::with_credentials`] has them) refuse to sign with the old tokens, so the
    /// client does not reconnect with them: upload or set new ones.
    fn token_notice(&self, notice: &TokenNotice) {
        let _ = notice;
    }

    /// A message on a notice topic could not be read.
    fn notice_error(&self, error: &NoticeError) {
        let _ = error;
    }
}

/// Adapts an [`ApsaraMqCallback`] to the blocking client's [`Callback`]: recognises token notices
/// and point-to-point messages for `parent_topic`.
#[cfg(feature = "mio")]
#[derive(Debug)]
pub struct ApsaraMqEvents<C> {
    callback: C,
    parent_topic: String,
    client_id: ClientId,
    credentials: Option<ApsaraMqCredentials>,
}

#[cfg(feature = "mio")]
impl<C: ApsaraMqCallback> ApsaraMqEvents<C> {
    /// Events for the client `client_id`, whose point-to-point messages arrive under
    /// `parent_topic`.
    pub fn new(callback: C, parent_topic: impl Into<String>, client_id: ClientId) -> Self {
        Self {
            callback,
            parent_topic: parent_topic.into(),
            client_id,
            credentials: None,
        }
    }

    /// Invalidates these credentials' tokens when the broker says they are invalid, so automatic
    /// reconnects stop instead of retrying with a token the broker refuses.
    #[must_use]
    pub fn with_credentials(mut self, credentials: ApsaraMqCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Whether `topic` is a point-to-point topic addressed to this client.
    pub fn is_p2p(&self, topic: &str) -> bool {
        is_p2p_for(topic, &self.parent_topic, &self.client_id)
    }

    /// The same events for the callback `wrap` makes of this one.
    pub(crate) fn map_callback<D>(self, wrap: impl FnOnce(C) -> D) -> ApsaraMqEvents<D> {
        ApsaraMqEvents {
            callback: wrap(self.callback),
            parent_topic: self.parent_topic,
            client_id: self.client_id,
            credentials: self.credentials,
        }
    }
}

#[cfg(feature = "mio")]
impl<C: ApsaraMqCallback> Callback for ApsaraMqEvents<C> {
    fn connect_complete(&self, reconnect: bool, server_uri: &str) {
        self.callback.connect_complete(reconnect, server_uri);
    }

    fn connection_lost(&self, cause: &ClientError) {
        self.callback.connection_lost(cause);
    }

    fn message_arrived(&self, topic: &str, message: &Message) {
        match classify(topic, &message.payload, &self.parent_topic, &self.client_id) {
            Incoming::Notice(Ok(notice)) => {
                if let Some(credentials) = &self.credentials {
                    credentials.observe(&notice);
                }
                self.callback.token_notice(&notice);
            }
            Incoming::Notice(Err(error)) => self.callback.notice_error(&error),
            Incoming::Message(kind) => self.callback.message_arrived(topic, message, kind),
        }
    }

    fn delivery_complete(&self, token: &DeliveryToken) {
        self.callback.delivery_complete(token);
    }
}
