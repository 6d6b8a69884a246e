//! Everything the client's API takes or returns is named by `sansmq_mio`: its users need no
//! `sansmq` dependency.

use sansmq_mio::{
    AckKey, Bytes, CommandError, ConnectReturnCode, DecodeError, DisconnectReason, Error,
    KeyProblem, Message, PacketId, Protocol, ProtocolViolation, QoS, TopicError, TopicFilter,
    TopicName,
};

#[test]
fn every_type_of_the_api_is_named_by_this_crate() {
    fn explain(error: &Error) -> String {
        match error {
            Error::Refused(ConnectReturnCode::BadUserNameOrPassword) => "wrong login".into(),
            Error::Command(CommandError::NotConnected) => "not connected".into(),
            Error::ConnectionLost(reason) => format!("lost: {reason}"),
            Error::InvalidTopic(error) => format!("{error}"),
            Error::ClientKey {
                problem: KeyProblem::PasswordNeeded,
                ..
            } => "key password?".into(),
            other => other.to_string(),
        }
    }
    let _: (QoS, Option<PacketId>, Bytes) = (QoS::AtLeastOnce, PacketId::new(1), Bytes::new());
    let _: Result<TopicName, TopicError> = TopicName::try_from("a/b");
    let _: Result<TopicFilter, TopicError> = TopicFilter::try_from("a/#");
    fn peer_fault(reason: &DisconnectReason) -> Option<String> {
        match reason {
            DisconnectReason::Malformed(error) => {
                Some(format!("garbage: {}", error as &DecodeError))
            }
            DisconnectReason::ProtocolViolation(v) => Some(format!("{}", v as &ProtocolViolation)),
            _ => None,
        }
    }
    let _ = (
        peer_fault(&DisconnectReason::TransportClosed),
        Protocol::Mqtt311,
    );
    let _: fn(&Message) -> Option<AckKey> = Message::ack_key;
    assert_eq!(
        explain(&Error::Refused(ConnectReturnCode::BadUserNameOrPassword)),
        "wrong login"
    );
}
