//! [`BrokerRules`]: what a particular broker refuses, checked by the client before anything is
//! sent, so a message the broker would drop (or answer by hanging up) fails at the call with the
//! reason instead.

use sansmq::packet::QoS;

use crate::Will;

/// A PUBLISH about to be sent.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingPublish<'a> {
    /// The topic name.
    pub topic: &'a str,
    /// The payload's length in bytes.
    pub payload_len: usize,
    /// The QoS.
    pub qos: QoS,
    /// The retain flag.
    pub retain: bool,
    /// Whether the session ends with the connection: a clean session in MQTT 3.1.1, a Session
    /// Expiry Interval of 0 in MQTT 5.0
    /// ([`ConnectOptions::session_ends_with_connection`](crate::ConnectOptions::session_ends_with_connection)).
    pub clean_session: bool,
}

/// A broker's limits beyond MQTT's, installed with
/// [`ConnectOptions::broker_rules`](crate::ConnectOptions::broker_rules). Each check returns why
/// the broker would refuse, as a sentence for the error message.
pub trait BrokerRules: Send + Sync {
    /// Checked by `Client::new` (and `connect`): the will and session settings. `clean_session`
    /// here and in the other checks says whether the session ends with the connection.
    fn check_connect(&self, will: Option<&Will>, clean_session: bool) -> Result<(), String> {
        let _ = (will, clean_session);
        Ok(())
    }

    /// Checked by every `publish`.
    fn check_publish(&self, publish: &OutgoingPublish<'_>) -> Result<(), String> {
        let _ = publish;
        Ok(())
    }

    /// Checked by every `subscribe`, per filter.
    fn check_subscribe(&self, filter: &str, qos: QoS, clean_session: bool) -> Result<(), String> {
        let _ = (filter, qos, clean_session);
        Ok(())
    }
}
