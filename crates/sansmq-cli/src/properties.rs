//! `-D command identifier value`: MQTT 5 properties from the command line, named, allowed and
//! refused as mosquitto_pub, mosquitto_sub and mosquitto_rr 2.0 do.
//!
//! Each `-D` names a packet (`connect`, `publish`, `subscribe`, `unsubscribe`, `disconnect`,
//! `will`; case does not matter), a property by mosquitto's name (`content-type`,
//! `user-property`...) and its value (`user-property` takes a name and a value). What mosquitto
//! refuses is refused here with exit code 1: an unknown packet or property, a property MQTT 5
//! does not allow in that packet, a number out of its type's range, a 0 where MQTT forbids it
//! (Receive Maximum, Topic Alias, Maximum Packet Size), a flag above 1, and a property given twice
//! (only User Properties repeat). sansmq refuses a little more, where mosquitto would send what
//! the broker refuses or silently take a mistake: a value that is not a number (mosquitto reads
//! it as 0), a Payload Format Indicator other than 0 or 1, a Response Topic with wildcards, and
//! the enhanced authentication properties (an authenticator is a library matter).

use std::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;
use sansmq::packet::{PayloadFormat, Properties, SubscriptionId};
use sansmq::{MqttString, TopicName};

/// The properties of every packet the command sends, from its `-D` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CommandProperties {
    pub(crate) connect: ConnectProperties,
    pub(crate) publish: Properties,
    pub(crate) subscribe: Properties,
    pub(crate) unsubscribe: Properties,
    pub(crate) disconnect: Properties,
    pub(crate) will: Properties,
}

/// The CONNECT properties, as the client's options take them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConnectProperties {
    pub(crate) session_expiry_interval: Option<u32>,
    pub(crate) receive_maximum: Option<u16>,
    pub(crate) maximum_packet_size: Option<u32>,
    pub(crate) topic_alias_maximum: Option<u16>,
    pub(crate) request_problem_information: Option<bool>,
    pub(crate) request_response_information: Option<bool>,
    pub(crate) user_properties: Vec<(String, String)>,
}

/// Why a `-D` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PropertyError {
    #[error(
        "-D {given}: expected -D COMMAND IDENTIFIER VALUE (-D COMMAND user-property NAME VALUE)"
    )]
    Arguments { given: String },
    #[error(
        "-D {command:?}: unknown command; use connect, publish, subscribe, unsubscribe, \
         disconnect or will"
    )]
    UnknownCommand { command: String },
    #[error(
        "-D {command} {name:?}: unknown property; mosquitto's names are content-type, \
         correlation-data, message-expiry-interval, payload-format-indicator, response-topic, \
         topic-alias, user-property, session-expiry-interval, receive-maximum, \
         maximum-packet-size, topic-alias-maximum, request-problem-information, \
         request-response-information, will-delay-interval, subscription-identifier, \
         reason-string..."
    )]
    UnknownProperty { command: String, name: String },
    #[error("-D {command} {name}: MQTT 5 allows no {name} in {command}")]
    NotAllowed { command: String, name: String },
    #[error("-D {command} {name}: not supported for {command}, as with mosquitto{why}")]
    NotSupported {
        command: String,
        name: String,
        why: &'static str,
    },
    #[error("-D {command} {name}: takes one value, {given} given")]
    TooManyValues {
        command: String,
        name: String,
        given: usize,
    },
    #[error("-D {command} {name} {value:?}: not a number")]
    NotANumber {
        command: String,
        name: String,
        value: String,
    },
    #[error("-D {command} {name} {value}: out of range (0 to {max})")]
    OutOfRange {
        command: String,
        name: String,
        value: String,
        max: u64,
    },
    #[error("-D {command} {name} {value}: {why}")]
    Invalid {
        command: String,
        name: String,
        value: String,
        why: String,
    },
    #[error("-D {command} {name} given twice: only user-property may repeat")]
    Duplicate { command: String, name: String },
}

/// The packets `-D` names (mosquitto's `mosquitto_string_to_command`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Connect,
    Connack,
    Publish,
    Puback,
    Pubrec,
    Pubrel,
    Pubcomp,
    Subscribe,
    Suback,
    Unsubscribe,
    Unsuback,
    Disconnect,
    Auth,
    Will,
}

impl Command {
    fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "connect" => Self::Connect,
            "connack" => Self::Connack,
            "publish" => Self::Publish,
            "puback" => Self::Puback,
            "pubrec" => Self::Pubrec,
            "pubrel" => Self::Pubrel,
            "pubcomp" => Self::Pubcomp,
            "subscribe" => Self::Subscribe,
            "suback" => Self::Suback,
            "unsubscribe" => Self::Unsubscribe,
            "unsuback" => Self::Unsuback,
            "disconnect" => Self::Disconnect,
            "auth" => Self::Auth,
            "will" => Self::Will,
            _ => return None,
        })
    }
}

/// How a property's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Byte,
    TwoBytes,
    FourBytes,
    VarInt,
    Binary,
    Text,
    Pair,
}

impl Kind {
    fn max(self) -> u64 {
        match self {
            Self::Byte => u8::MAX.into(),
            Self::TwoBytes => u16::MAX.into(),
            _ => u32::MAX.into(),
        }
    }
}

/// The properties by mosquitto's names (`mosquitto_string_to_property_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Prop {
    PayloadFormatIndicator,
    MessageExpiryInterval,
    ContentType,
    ResponseTopic,
    CorrelationData,
    SubscriptionIdentifier,
    SessionExpiryInterval,
    AssignedClientIdentifier,
    ServerKeepAlive,
    AuthenticationMethod,
    AuthenticationData,
    RequestProblemInformation,
    WillDelayInterval,
    RequestResponseInformation,
    ResponseInformation,
    ServerReference,
    ReasonString,
    ReceiveMaximum,
    TopicAliasMaximum,
    TopicAlias,
    MaximumQos,
    RetainAvailable,
    UserProperty,
    MaximumPacketSize,
    WildcardSubscriptionAvailable,
    SubscriptionIdentifierAvailable,
    SharedSubscriptionAvailable,
}

const PROPERTIES: [(&str, Prop, Kind); 27] = [
    (
        "payload-format-indicator",
        Prop::PayloadFormatIndicator,
        Kind::Byte,
    ),
    (
        "message-expiry-interval",
        Prop::MessageExpiryInterval,
        Kind::FourBytes,
    ),
    ("content-type", Prop::ContentType, Kind::Text),
    ("response-topic", Prop::ResponseTopic, Kind::Text),
    ("correlation-data", Prop::CorrelationData, Kind::Binary),
    (
        "subscription-identifier",
        Prop::SubscriptionIdentifier,
        Kind::VarInt,
    ),
    (
        "session-expiry-interval",
        Prop::SessionExpiryInterval,
        Kind::FourBytes,
    ),
    (
        "assigned-client-identifier",
        Prop::AssignedClientIdentifier,
        Kind::Text,
    ),
    ("server-keep-alive", Prop::ServerKeepAlive, Kind::TwoBytes),
    (
        "authentication-method",
        Prop::AuthenticationMethod,
        Kind::Text,
    ),
    (
        "authentication-data",
        Prop::AuthenticationData,
        Kind::Binary,
    ),
    (
        "request-problem-information",
        Prop::RequestProblemInformation,
        Kind::Byte,
    ),
    (
        "will-delay-interval",
        Prop::WillDelayInterval,
        Kind::FourBytes,
    ),
    (
        "request-response-information",
        Prop::RequestResponseInformation,
        Kind::Byte,
    ),
    (
        "response-information",
        Prop::ResponseInformation,
        Kind::Text,
    ),
    ("server-reference", Prop::ServerReference, Kind::Text),
    ("reason-string", Prop::ReasonString, Kind::Text),
    ("receive-maximum", Prop::ReceiveMaximum, Kind::TwoBytes),
    (
        "topic-alias-maximum",
        Prop::TopicAliasMaximum,
        Kind::TwoBytes,
    ),
    ("topic-alias", Prop::TopicAlias, Kind::TwoBytes),
    ("maximum-qos", Prop::MaximumQos, Kind::Byte),
    ("retain-available", Prop::RetainAvailable, Kind::Byte),
    ("user-property", Prop::UserProperty, Kind::Pair),
    (
        "maximum-packet-size",
        Prop::MaximumPacketSize,
        Kind::FourBytes,
    ),
    (
        "wildcard-subscription-available",
        Prop::WildcardSubscriptionAvailable,
        Kind::Byte,
    ),
    (
        "subscription-identifier-available",
        Prop::SubscriptionIdentifierAvailable,
        Kind::Byte,
    ),
    (
        "shared-subscription-available",
        Prop::SharedSubscriptionAvailable,
        Kind::Byte,
    ),
];

/// Whether MQTT 5 allows `prop` in `command` (mosquitto's `mosquitto_property_check_command`).
fn allowed(command: Command, prop: Prop) -> bool {
    use Command as C;
    use Prop as P;
    match prop {
        P::PayloadFormatIndicator
        | P::MessageExpiryInterval
        | P::ContentType
        | P::ResponseTopic
        | P::CorrelationData => matches!(command, C::Publish | C::Will),
        P::SubscriptionIdentifier => matches!(command, C::Publish | C::Subscribe),
        P::SessionExpiryInterval => matches!(command, C::Connect | C::Connack | C::Disconnect),
        P::AuthenticationMethod | P::AuthenticationData => {
            matches!(command, C::Connect | C::Connack | C::Auth)
        }
        P::AssignedClientIdentifier
        | P::ServerKeepAlive
        | P::ResponseInformation
        | P::MaximumQos
        | P::RetainAvailable
        | P::WildcardSubscriptionAvailable
        | P::SubscriptionIdentifierAvailable
        | P::SharedSubscriptionAvailable => command == C::Connack,
        P::WillDelayInterval => command == C::Will,
        P::RequestProblemInformation | P::RequestResponseInformation => command == C::Connect,
        P::ServerReference => matches!(command, C::Connack | C::Disconnect),
        P::ReasonString => !matches!(
            command,
            C::Connect | C::Publish | C::Subscribe | C::Unsubscribe
        ),
        P::ReceiveMaximum | P::TopicAliasMaximum | P::MaximumPacketSize => {
            matches!(command, C::Connect | C::Connack)
        }
        P::TopicAlias => command == C::Publish,
        P::UserProperty => true,
    }
}

/// One `-D`, checked, before it joins the others.
struct Given<'a> {
    command: Command,
    command_name: &'a str,
    prop: Prop,
    name: &'a str,
    kind: Kind,
    values: &'a [String],
}

impl Given<'_> {
    fn at(&self) -> (String, String) {
        (self.command_name.to_owned(), self.name.to_owned())
    }

    fn value(&self) -> &str {
        self.values.last().map_or("", String::as_str)
    }

    /// The value as a number of the property's type.
    fn number(&self) -> Result<u64, PropertyError> {
        let (command, name) = self.at();
        let value = self.value().to_owned();
        let number = value
            .trim_start()
            .parse::<i128>()
            .map_err(|_| PropertyError::NotANumber {
                command: command.clone(),
                name: name.clone(),
                value: value.clone(),
            })?;
        let max = self.kind.max();
        u64::try_from(number)
            .ok()
            .filter(|&n| n <= max)
            .ok_or(PropertyError::OutOfRange {
                command,
                name,
                value,
                max,
            })
    }

    fn invalid(&self, why: impl Into<String>) -> PropertyError {
        let (command, name) = self.at();
        PropertyError::Invalid {
            command,
            name,
            value: self.value().to_owned(),
            why: why.into(),
        }
    }

    fn text(&self, value: &str) -> Result<MqttString, PropertyError> {
        MqttString::try_from(value).map_err(|e| self.invalid(e.to_string()))
    }

    fn binary(&self) -> Result<Bytes, PropertyError> {
        let bytes = self.value().as_bytes();
        if bytes.len() > usize::from(u16::MAX) {
            return Err(self.invalid("longer than 65535 bytes"));
        }
        Ok(Bytes::copy_from_slice(bytes))
    }

    /// 0 or 1, refused above 1 as mosquitto refuses it.
    fn flag(&self) -> Result<bool, PropertyError> {
        match self.number()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.invalid("must be 0 or 1")),
        }
    }

    fn four_bytes(&self) -> Result<u32, PropertyError> {
        // `number` keeps it within the type's range.
        Ok(u32::try_from(self.number()?).unwrap_or(u32::MAX))
    }

    fn two_bytes(&self) -> Result<u16, PropertyError> {
        Ok(u16::try_from(self.number()?).unwrap_or(u16::MAX))
    }

    fn nonzero_two_bytes(&self) -> Result<NonZeroU16, PropertyError> {
        NonZeroU16::new(self.two_bytes()?).ok_or_else(|| self.invalid("must not be 0"))
    }
}

/// Parses every `-D` (each one's words after `-D`), in order.
pub(crate) fn parse(flags: &[Vec<String>]) -> Result<CommandProperties, PropertyError> {
    let mut out = CommandProperties::default();
    let mut seen: Vec<(Command, Prop)> = Vec::new();
    for words in flags {
        let given = check(words)?;
        if given.prop != Prop::UserProperty {
            if seen.contains(&(given.command, given.prop)) {
                let (command, name) = given.at();
                return Err(PropertyError::Duplicate { command, name });
            }
            seen.push((given.command, given.prop));
        }
        add(&mut out, &given)?;
    }
    Ok(out)
}

/// Reads one `-D`: its command, property and number of values, as mosquitto checks them.
fn check(words: &[String]) -> Result<Given<'_>, PropertyError> {
    let arguments = || PropertyError::Arguments {
        given: words.join(" "),
    };
    let [command_name, name, values @ ..] = words else {
        return Err(arguments());
    };
    let command = Command::parse(command_name).ok_or_else(|| PropertyError::UnknownCommand {
        command: command_name.clone(),
    })?;
    let &(_, prop, kind) = PROPERTIES
        .iter()
        .find(|(known, ..)| known.eq_ignore_ascii_case(name))
        .ok_or_else(|| PropertyError::UnknownProperty {
            command: command_name.clone(),
            name: name.clone(),
        })?;
    let at = || (command_name.clone(), name.clone());
    if !allowed(command, prop) {
        let (command, name) = at();
        return Err(PropertyError::NotAllowed { command, name });
    }
    let wanted = if kind == Kind::Pair { 2 } else { 1 };
    if values.len() < wanted {
        return Err(arguments());
    }
    if values.len() > wanted {
        let (command, name) = at();
        return Err(PropertyError::TooManyValues {
            command,
            name,
            given: values.len(),
        });
    }
    let not_supported = |why: &'static str| {
        let (command, name) = at();
        PropertyError::NotSupported { command, name, why }
    };
    match command {
        Command::Publish if prop == Prop::SubscriptionIdentifier => {
            return Err(not_supported(": the broker sets it"));
        }
        Command::Subscribe
            if !matches!(prop, Prop::SubscriptionIdentifier | Prop::UserProperty) =>
        {
            return Err(not_supported(""));
        }
        Command::Auth
        | Command::Puback
        | Command::Pubrec
        | Command::Pubrel
        | Command::Pubcomp
        | Command::Suback
        | Command::Unsuback => return Err(not_supported("")),
        Command::Connack => return Err(not_supported(": the broker sends CONNACK")),
        _ => {}
    }
    if matches!(prop, Prop::AuthenticationMethod | Prop::AuthenticationData) {
        return Err(not_supported(
            " (sansmq: enhanced authentication needs the library's authenticator)",
        ));
    }
    Ok(Given {
        command,
        command_name,
        prop,
        name,
        kind,
        values,
    })
}

/// Adds a checked `-D` to its packet's properties.
fn add(out: &mut CommandProperties, given: &Given<'_>) -> Result<(), PropertyError> {
    if given.command == Command::Connect {
        return add_connect(&mut out.connect, given);
    }
    let properties = match given.command {
        Command::Publish => &mut out.publish,
        Command::Subscribe => &mut out.subscribe,
        Command::Unsubscribe => &mut out.unsubscribe,
        Command::Disconnect => &mut out.disconnect,
        _ => &mut out.will,
    };
    match given.prop {
        Prop::PayloadFormatIndicator => {
            properties.payload_format_indicator = Some(match given.number()? {
                0 => PayloadFormat::Unspecified,
                1 => PayloadFormat::Utf8,
                _ => return Err(given.invalid("MQTT 5 knows 0 (bytes) and 1 (UTF-8) only")),
            });
        }
        Prop::MessageExpiryInterval => {
            properties.message_expiry_interval = Some(given.four_bytes()?);
        }
        Prop::ContentType => properties.set_content_type(Some(given.text(given.value())?)),
        Prop::ResponseTopic => {
            let topic = TopicName::try_from(given.value())
                .map_err(|e| given.invalid(format!("not a topic name: {e}")))?;
            properties.set_response_topic(Some(topic));
        }
        Prop::CorrelationData => properties.set_correlation_data(Some(given.binary()?)),
        Prop::SubscriptionIdentifier => {
            let id = SubscriptionId::new(given.four_bytes()?)
                .ok_or_else(|| given.invalid("must be 1 to 268435455"))?;
            properties.push_subscription_identifier(id);
        }
        Prop::SessionExpiryInterval => {
            properties.session_expiry_interval = Some(given.four_bytes()?);
        }
        Prop::WillDelayInterval => properties.will_delay_interval = Some(given.four_bytes()?),
        Prop::ReasonString => properties.set_reason_string(Some(given.text(given.value())?)),
        Prop::ServerReference => {
            properties.set_server_reference(Some(given.text(given.value())?));
        }
        Prop::TopicAlias => properties.topic_alias = Some(given.nonzero_two_bytes()?),
        Prop::UserProperty => {
            let (name, value) = match given.values {
                [name, value] => (name.as_str(), value.as_str()),
                _ => ("", ""),
            };
            properties.push_user_property(given.text(name)?, given.text(value)?);
        }
        // `allowed` and `check` keep the others (CONNECT's and CONNACK's) away.
        _ => {}
    }
    Ok(())
}

fn add_connect(connect: &mut ConnectProperties, given: &Given<'_>) -> Result<(), PropertyError> {
    match given.prop {
        Prop::SessionExpiryInterval => {
            connect.session_expiry_interval = Some(given.four_bytes()?);
        }
        Prop::ReceiveMaximum => {
            connect.receive_maximum = Some(given.nonzero_two_bytes()?.get());
        }
        Prop::TopicAliasMaximum => connect.topic_alias_maximum = Some(given.two_bytes()?),
        Prop::MaximumPacketSize => {
            let size = NonZeroU32::new(given.four_bytes()?)
                .ok_or_else(|| given.invalid("must not be 0"))?;
            connect.maximum_packet_size = Some(size.get());
        }
        Prop::RequestProblemInformation => {
            connect.request_problem_information = Some(given.flag()?);
        }
        Prop::RequestResponseInformation => {
            connect.request_response_information = Some(given.flag()?);
        }
        Prop::UserProperty => {
            if let [name, value] = given.values {
                given.text(name)?;
                given.text(value)?;
                connect.user_properties.push((name.clone(), value.clone()));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(flags: &[&[&str]]) -> Result<CommandProperties, PropertyError> {
        let flags: Vec<Vec<String>> = flags
            .iter()
            .map(|words| words.iter().map(|w| (*w).to_owned()).collect())
            .collect();
        parse(&flags)
    }

    fn refused(flags: &[&[&str]]) -> String {
        parsed(flags).unwrap_err().to_string()
    }

    #[test]
    fn publish_properties_of_every_kind() {
        let properties = parsed(&[
            &["publish", "user-property", "a", "b"],
            &["PUBLISH", "Content-Type", "text/plain"],
            &["publish", "payload-format-indicator", "1"],
            &["publish", "message-expiry-interval", "4294967295"],
            &["publish", "response-topic", "r/1"],
            &["publish", "correlation-data", "c d"],
            &["publish", "topic-alias", "3"],
            &["publish", "user-property", "a", "c"],
        ])
        .unwrap()
        .publish;
        assert_eq!(properties.content_type().unwrap(), "text/plain");
        assert_eq!(
            properties.payload_format_indicator,
            Some(PayloadFormat::Utf8)
        );
        assert_eq!(properties.message_expiry_interval, Some(u32::MAX));
        assert_eq!(properties.response_topic().unwrap().as_str(), "r/1");
        assert_eq!(
            properties.correlation_data().unwrap().as_ref(),
            b"c d".as_slice()
        );
        assert_eq!(properties.topic_alias.map(NonZeroU16::get), Some(3));
        let users: Vec<(&str, &str)> = properties
            .user_properties()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .collect();
        assert_eq!(users, [("a", "b"), ("a", "c")]);
    }

    #[test]
    fn connect_will_subscribe_unsubscribe_and_disconnect_properties() {
        let all = parsed(&[
            &["connect", "session-expiry-interval", "10"],
            &["connect", "receive-maximum", "5"],
            &["connect", "maximum-packet-size", "1000"],
            &["connect", "topic-alias-maximum", "0"],
            &["connect", "request-problem-information", "0"],
            &["connect", "request-response-information", "1"],
            &["connect", "user-property", "k", "v"],
            &["will", "will-delay-interval", "30"],
            &["will", "content-type", "json"],
            &["subscribe", "subscription-identifier", "268435455"],
            &["unsubscribe", "user-property", "u", "1"],
            &["disconnect", "reason-string", "bye"],
        ])
        .unwrap();
        assert_eq!(
            all.connect,
            ConnectProperties {
                session_expiry_interval: Some(10),
                receive_maximum: Some(5),
                maximum_packet_size: Some(1000),
                topic_alias_maximum: Some(0),
                request_problem_information: Some(false),
                request_response_information: Some(true),
                user_properties: vec![("k".into(), "v".into())],
            }
        );
        assert_eq!(all.will.will_delay_interval, Some(30));
        assert_eq!(all.will.content_type().unwrap(), "json");
        let ids: Vec<u32> = all
            .subscribe
            .subscription_identifiers()
            .map(SubscriptionId::get)
            .collect();
        assert_eq!(ids, [268_435_455]);
        assert_eq!(all.unsubscribe.user_properties().count(), 1);
        assert_eq!(all.disconnect.reason_string().unwrap(), "bye");
    }

    #[test]
    fn names_and_places_are_refused_as_mosquitto_refuses_them() {
        assert!(refused(&[&["bogus", "user-property", "a", "b"]]).contains("unknown command"));
        assert!(refused(&[&["publish", "bogus", "1"]]).contains("unknown property"));
        assert_eq!(
            refused(&[&["connect", "content-type", "x"]]),
            "-D connect content-type: MQTT 5 allows no content-type in connect"
        );
        assert!(refused(&[&["publish", "subscription-identifier", "3"]]).contains("not supported"));
        assert!(refused(&[&["subscribe", "content-type", "x"]]).contains("allows no"));
        assert!(refused(&[&["auth", "authentication-data", "x"]]).contains("not supported"));
        assert!(refused(&[&["puback", "reason-string", "x"]]).contains("not supported"));
        assert!(refused(&[&["connack", "maximum-qos", "1"]]).contains("not supported"));
        assert!(refused(&[&["publish", "user-property", "a"]]).contains("expected -D COMMAND"));
        assert!(refused(&[&["publish", "content-type", "a", "b"]]).contains("takes one value"));
    }

    #[test]
    fn numbers_are_checked_against_their_type() {
        assert_eq!(
            refused(&[&["publish", "message-expiry-interval", "-5"]]),
            "-D publish message-expiry-interval -5: out of range (0 to 4294967295)"
        );
        assert!(
            refused(&[&["publish", "message-expiry-interval", "4294967296"]])
                .contains("out of range")
        );
        assert!(refused(&[&["connect", "receive-maximum", "65536"]]).contains("out of range"));
        assert!(
            refused(&[&["publish", "payload-format-indicator", "256"]]).contains("out of range")
        );
        assert!(
            refused(&[&["publish", "message-expiry-interval", "abc"]]).contains("not a number")
        );
        assert!(refused(&[&["publish", "topic-alias", "0"]]).contains("must not be 0"));
        assert!(refused(&[&["connect", "receive-maximum", "0"]]).contains("must not be 0"));
        assert!(refused(&[&["connect", "maximum-packet-size", "0"]]).contains("must not be 0"));
        assert!(refused(&[&["connect", "request-problem-information", "2"]]).contains("0 or 1"));
        assert!(
            refused(&[&["subscribe", "subscription-identifier", "268435456"]])
                .contains("268435455")
        );
        assert!(refused(&[&["publish", "payload-format-indicator", "5"]]).contains("MQTT 5"));
    }

    #[test]
    fn only_user_properties_repeat() {
        assert_eq!(
            refused(&[
                &["publish", "content-type", "a"],
                &["publish", "content-type", "b"]
            ]),
            "-D publish content-type given twice: only user-property may repeat"
        );
        // The same property in two packets is no repeat.
        assert!(
            parsed(&[
                &["publish", "content-type", "a"],
                &["will", "content-type", "b"]
            ])
            .is_ok()
        );
    }

    #[test]
    fn response_topics_are_topic_names() {
        assert!(refused(&[&["publish", "response-topic", "a/#"]]).contains("not a topic name"));
    }
}
