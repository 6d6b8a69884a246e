//! How `sub` prints a message: the payload (mosquitto_sub's default), `topic payload` (`-v`),
//! mosquitto_sub's `-F` template, or one JSON object per line (`--json`).

use std::io::{self, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sansmq::packet::{PacketId, Properties, QoS};
use sansmq_apsaramq::ClientId;

use crate::format::Template;

/// A received message, as much of it as is printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printed<'a> {
    pub(crate) topic: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    /// The broker's packet identifier; none for QoS 0.
    pub(crate) id: Option<PacketId>,
    /// MQTT 5 properties (none for MQTT 3.1.1).
    pub(crate) properties: &'a Properties,
}

/// The output format.
#[derive(Debug, Clone)]
pub(crate) enum Format {
    /// The payload alone; nothing at all for an empty payload (as mosquitto_sub 2.0).
    Payload,
    /// `topic payload`, or `topic (null)` for an empty payload (nothing for it with `-N`).
    Verbose,
    /// A `-F` template; `quiet` (`--quiet`) keeps its complaints about payloads that are not
    /// JSON (`%J`) off stderr.
    Template { template: Template, quiet: bool },
    /// `{"topic":..,"payload":..,"encoding":"utf8"|"base64","qos":..,"retain":..,"p2p":..}`,
    /// and `"properties":{..}` for an MQTT 5 message that has any (mosquitto's names); `p2p`
    /// says whether the topic is `<parent>/p2p/<client_id>`, a point-to-point message to this
    /// client.
    Json { client_id: Option<ClientId> },
}

impl Format {
    /// Writes one message; `newline` is false with `-N`.
    pub(crate) fn write(
        &self,
        out: &mut impl Write,
        message: &Printed<'_>,
        newline: bool,
    ) -> io::Result<()> {
        let eol: &[u8] = if newline { b"\n" } else { b"" };
        match self {
            Self::Payload => {
                if !message.payload.is_empty() {
                    out.write_all(message.payload)?;
                    out.write_all(eol)?;
                }
            }
            Self::Verbose => {
                if message.payload.is_empty() {
                    // mosquitto_sub prints `(null)` only as a whole line.
                    if newline {
                        out.write_all(message.topic.as_bytes())?;
                        out.write_all(b" (null)\n")?;
                    }
                } else {
                    out.write_all(message.topic.as_bytes())?;
                    out.write_all(b" ")?;
                    out.write_all(message.payload)?;
                    out.write_all(eol)?;
                }
            }
            Self::Template { template, quiet } => {
                for not_json in template.write(out, message, jiff::Timestamp::now())? {
                    if !quiet {
                        let _ = writeln!(io::stderr(), "{not_json}");
                    }
                }
                out.write_all(eol)?;
            }
            Self::Json { client_id } => {
                let (payload, encoding) = match std::str::from_utf8(message.payload) {
                    Ok(text) => (text.to_owned(), "utf8"),
                    Err(_) => (STANDARD.encode(message.payload), "base64"),
                };
                let string = |s: &str| serde_json::Value::from(s).to_string();
                let properties = match message.properties.is_empty() {
                    true => String::new(),
                    false => format!(r#","properties":{}"#, json_properties(message.properties)),
                };
                writeln!(
                    out,
                    r#"{{"topic":{},"payload":{},"encoding":"{encoding}","qos":{},"retain":{},"p2p":{}{properties}}}"#,
                    string(message.topic),
                    string(&payload),
                    message.qos as u8,
                    message.retain,
                    is_p2p_for(message.topic, client_id.as_ref()),
                )?;
            }
        }
        out.flush()
    }
}

/// `--json`'s `"properties"`: the MQTT 5 properties under mosquitto_sub's names and in `%j`'s
/// order, but valid JSON whatever they hold: Correlation Data that is not UTF-8 is base64, and
/// `"correlation-data-encoding":"base64"` says so.
fn json_properties(properties: &Properties) -> String {
    let string = |s: &str| serde_json::Value::from(s).to_string();
    let mut members: Vec<String> = properties
        .subscription_identifiers()
        .map(|id| format!(r#""subscription-identifier":{}"#, id.get()))
        .collect();
    if let Some(format) = properties.payload_format_indicator {
        members.push(format!(r#""payload-format-indicator":{}"#, format as u8));
    }
    if let Some(content_type) = properties.content_type() {
        members.push(format!(r#""content-type":{}"#, string(content_type)));
    }
    if let Some(topic) = properties.response_topic() {
        members.push(format!(r#""response-topic":{}"#, string(topic.as_str())));
    }
    if let Some(data) = properties.correlation_data() {
        match std::str::from_utf8(data) {
            Ok(text) => members.push(format!(r#""correlation-data":{}"#, string(text))),
            Err(_) => {
                members.push(format!(r#""correlation-data":"{}""#, STANDARD.encode(data)));
                members.push(r#""correlation-data-encoding":"base64""#.to_owned());
            }
        }
    }
    if let Some(alias) = properties.topic_alias {
        members.push(format!(r#""topic-alias":{alias}"#));
    }
    let users: Vec<String> = properties
        .user_properties()
        .map(|(name, value)| format!("{}:{}", string(name), string(value)))
        .collect();
    if !users.is_empty() {
        members.push(format!(r#""user-properties":{{{}}}"#, users.join(",")));
    }
    if let Some(seconds) = properties.message_expiry_interval {
        members.push(format!(r#""message-expiry-interval":{seconds}"#));
    }
    format!("{{{}}}", members.join(","))
}

/// Whether `topic` is `<parent>/p2p/<client_id>`, how ApsaraMQ addresses one client (whose id is
/// `<GroupID>@@@<DeviceID>`; other ids get no P2P messages).
pub(crate) fn is_p2p_for(topic: &str, client_id: Option<&ClientId>) -> bool {
    let parent = topic.split('/').next().unwrap_or_default();
    client_id.is_some_and(|id| sansmq_apsaramq::is_p2p_for(topic, parent, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_PROPERTIES: Properties = Properties::new();

    fn printed(format: &Format, payload: &[u8], newline: bool) -> String {
        let message = Printed {
            topic: "parent/p2p/GID_a@@@b",
            payload,
            qos: QoS::AtLeastOnce,
            retain: false,
            id: None,
            properties: &NO_PROPERTIES,
        };
        let mut out = Vec::new();
        format.write(&mut out, &message, newline).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn payload_format_prints_the_payload_and_nothing_for_an_empty_one() {
        assert_eq!(printed(&Format::Payload, b"hi", true), "hi\n");
        assert_eq!(printed(&Format::Payload, b"hi", false), "hi");
        assert_eq!(printed(&Format::Payload, b"", true), "");
    }

    #[test]
    fn verbose_format_prefixes_the_topic_and_shows_null() {
        assert_eq!(
            printed(&Format::Verbose, b"hi", true),
            "parent/p2p/GID_a@@@b hi\n"
        );
        assert_eq!(
            printed(&Format::Verbose, b"", true),
            "parent/p2p/GID_a@@@b (null)\n"
        );
        assert_eq!(
            printed(&Format::Verbose, b"hi", false),
            "parent/p2p/GID_a@@@b hi"
        );
    }

    #[test]
    fn verbose_format_prints_nothing_for_an_empty_payload_with_no_newline() {
        assert_eq!(printed(&Format::Verbose, b"", false), "");
    }

    #[test]
    fn template_format_ends_the_line_unless_no_newline() {
        let template = Format::Template {
            template: crate::format::parse("%t:%p", false).unwrap(),
            quiet: false,
        };
        assert_eq!(printed(&template, b"hi", true), "parent/p2p/GID_a@@@b:hi\n");
        assert_eq!(printed(&template, b"", false), "parent/p2p/GID_a@@@b:");
    }

    #[test]
    fn json_is_one_line_with_utf8_or_base64_and_the_p2p_flag() {
        let format = Format::Json {
            client_id: ClientId::parse("GID_a@@@b").ok(),
        };
        let line = printed(&format, "q\"uote\n".as_bytes(), true);
        assert_eq!(line.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["topic"], "parent/p2p/GID_a@@@b");
        assert_eq!(value["payload"], "q\"uote\n");
        assert_eq!(value["encoding"], "utf8");
        assert_eq!(value["qos"], 1);
        assert_eq!(value["retain"], false);
        assert_eq!(value["p2p"], true);

        let other = Format::Json {
            client_id: ClientId::parse("GID_a@@@c").ok(),
        };
        let value: serde_json::Value =
            serde_json::from_str(&printed(&other, &[0xff, 0x00], true)).unwrap();
        assert_eq!(value["payload"], "/wA=");
        assert_eq!(value["encoding"], "base64");
        assert_eq!(value["p2p"], false);
    }

    #[test]
    fn json_carries_the_mqtt5_properties_under_mosquittos_names() {
        let mut properties = Properties::new();
        properties.push_subscription_identifier(sansmq::packet::SubscriptionId::new(3).unwrap());
        properties.set_content_type(Some("text/plain".try_into().unwrap()));
        properties.set_correlation_data(Some(bytes::Bytes::from_static(&[0xff, 0x00])));
        properties.push_user_property("a".try_into().unwrap(), "\"q\"".try_into().unwrap());
        properties.message_expiry_interval = Some(30);
        let message = Printed {
            topic: "t",
            payload: b"x",
            qos: QoS::AtMostOnce,
            retain: false,
            id: None,
            properties: &properties,
        };
        let mut out = Vec::new();
        Format::Json { client_id: None }
            .write(&mut out, &message, true)
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            value["properties"],
            serde_json::json!({
                "subscription-identifier": 3,
                "content-type": "text/plain",
                "correlation-data": "/wA=",
                "correlation-data-encoding": "base64",
                "user-properties": {"a": "\"q\""},
                "message-expiry-interval": 30,
            })
        );
        let plain = printed(&Format::Json { client_id: None }, b"x", true);
        assert!(!plain.contains("properties"), "{plain}");
    }

    #[test]
    fn p2p_needs_the_p2p_level_right_after_the_parent() {
        let me = ClientId::parse("GID_a@@@me").ok();
        assert!(is_p2p_for("parent/p2p/GID_a@@@me", me.as_ref()));
        assert!(!is_p2p_for("parent/p2p/GID_a@@@me/more", me.as_ref()));
        assert!(!is_p2p_for("parent/x/p2p/GID_a@@@me", me.as_ref()));
        assert!(!is_p2p_for("parent/p2p/GID_a@@@me", None));
    }
}
