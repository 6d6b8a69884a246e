//! [`Endpoint`]: an instance id turned into the broker's domain name and URIs.
//!
//! | network | host |
//! |---|---|
//! | public | `<instance-id>.mqtt.aliyuncs.com` |
//! | VPC | `<instance-id>-internal-vpc.mqtt.aliyuncs.com` |
//!
//! | transport | port | URI |
//! |---|---|---|
//! | MQTT over TCP | 1883 | [`Endpoint::tcp_uri`] `tcp://<host>:1883` |
//! | MQTT over TLS | 8883 | [`Endpoint::tls_uri`] `ssl://<host>:8883` |
//! | MQTT over WebSocket | 80 | [`Endpoint::ws_uri`] `ws://<host>:80/mqtt` |
//! | MQTT over secure WebSocket | 443 | [`Endpoint::wss_uri`] `wss://<host>:443/mqtt` |
//!
//! [`Endpoint::uri`] picks one by [`Transport`]. The WebSocket path is `/mqtt`, the path of
//! Alibaba's quick-start examples for every SDK (and the common default of MQTT brokers).
//!
//! Always connect by domain name, never by a resolved IP address: the addresses behind the name
//! change, and TLS checks the name.

use std::fmt;

/// The MQTT-over-TCP port.
pub const TCP_PORT: u16 = 1883;

/// The MQTT-over-TLS port.
pub const TLS_PORT: u16 = 8883;

/// The MQTT-over-WebSocket port.
pub const WS_PORT: u16 = 80;

/// The MQTT-over-secure-WebSocket port.
pub const WSS_PORT: u16 = 443;

/// The WebSocket path of both WebSocket ports.
pub const WS_PATH: &str = "/mqtt";

/// The public domain suffix.
const DOMAIN: &str = "mqtt.aliyuncs.com";

/// Which network reaches the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The Internet.
    #[default]
    Public,
    /// The instance's VPC (Alibaba Cloud's private network).
    Vpc,
}

/// How MQTT reaches the instance: one port each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// MQTT over TCP, port 1883.
    #[default]
    Tcp,
    /// MQTT over TLS, port 8883.
    Tls,
    /// MQTT over WebSocket, port 80, path `/mqtt`: for networks that only let HTTP out.
    WebSocket,
    /// MQTT over WebSocket over TLS, port 443, path `/mqtt`.
    SecureWebSocket,
}

/// The address of an ApsaraMQ instance.
///
/// ```
/// use sansmq_apsaramq::Endpoint;
///
/// let endpoint = Endpoint::public("mqtt-cn-test").unwrap();
/// assert_eq!(endpoint.host(), "mqtt-cn-test.mqtt.aliyuncs.com");
/// assert_eq!(endpoint.tcp_uri(), "tcp://mqtt-cn-test.mqtt.aliyuncs.com:1883");
/// assert_eq!(endpoint.tls_uri(), "ssl://mqtt-cn-test.mqtt.aliyuncs.com:8883");
/// assert_eq!(endpoint.ws_uri(), "ws://mqtt-cn-test.mqtt.aliyuncs.com:80/mqtt");
/// assert_eq!(endpoint.wss_uri(), "wss://mqtt-cn-test.mqtt.aliyuncs.com:443/mqtt");
///
/// let vpc = Endpoint::vpc("mqtt-cn-test").unwrap();
/// assert_eq!(vpc.host(), "mqtt-cn-test-internal-vpc.mqtt.aliyuncs.com");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    instance_id: String,
    network: Network,
    host: String,
}

impl Endpoint {
    /// The endpoint of `instance_id` on `network`; the id must be usable as a DNS label (letters,
    /// digits and inner `-`, at most 63 characters).
    pub fn new(instance_id: &str, network: Network) -> Result<Self, EndpointError> {
        check_instance_id(instance_id)?;
        let host = match network {
            Network::Public => format!("{instance_id}.{DOMAIN}"),
            Network::Vpc => format!("{instance_id}-internal-vpc.{DOMAIN}"),
        };
        Ok(Self {
            instance_id: instance_id.to_owned(),
            network,
            host,
        })
    }

    /// The public endpoint.
    pub fn public(instance_id: &str) -> Result<Self, EndpointError> {
        Self::new(instance_id, Network::Public)
    }

    /// The VPC endpoint.
    pub fn vpc(instance_id: &str) -> Result<Self, EndpointError> {
        Self::new(instance_id, Network::Vpc)
    }

    /// The instance id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The domain name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `tcp://<host>:1883`.
    pub fn tcp_uri(&self) -> String {
        format!("tcp://{}:{TCP_PORT}", self.host)
    }

    /// `ssl://<host>:8883`.
    pub fn tls_uri(&self) -> String {
        format!("ssl://{}:{TLS_PORT}", self.host)
    }

    /// `ws://<host>:80/mqtt`.
    pub fn ws_uri(&self) -> String {
        format!("ws://{}:{WS_PORT}{WS_PATH}", self.host)
    }

    /// `wss://<host>:443/mqtt`.
    pub fn wss_uri(&self) -> String {
        format!("wss://{}:{WSS_PORT}{WS_PATH}", self.host)
    }

    /// The URI for `transport`.
    pub fn uri(&self, transport: Transport) -> String {
        match transport {
            Transport::Tcp => self.tcp_uri(),
            Transport::Tls => self.tls_uri(),
            Transport::WebSocket => self.ws_uri(),
            Transport::SecureWebSocket => self.wss_uri(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)
    }
}

fn check_instance_id(instance_id: &str) -> Result<(), EndpointError> {
    let reason = if instance_id.is_empty() {
        "is empty"
    } else if !instance_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        "may hold only letters, digits and '-'"
    } else if instance_id.starts_with('-') || instance_id.ends_with('-') {
        "may not start or end with '-'"
    } else if instance_id.len() > 63 {
        "is longer than 63 characters, too long for a domain name label"
    } else {
        return Ok(());
    };
    Err(EndpointError::InvalidInstanceId {
        instance_id: instance_id.to_owned(),
        reason,
    })
}

/// Why an endpoint cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The instance id cannot be part of a domain name.
    #[error("instance id {instance_id:?} {reason}")]
    InvalidInstanceId {
        /// The instance id.
        instance_id: String,
        /// What is wrong.
        reason: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_vpc_hosts_and_uris() {
        let public = Endpoint::public("mqtt-cn-0pp0abc").unwrap();
        assert_eq!(public.instance_id(), "mqtt-cn-0pp0abc");
        assert_eq!(public.network(), Network::Public);
        assert_eq!(public.host(), "mqtt-cn-0pp0abc.mqtt.aliyuncs.com");
        assert_eq!(public.to_string(), "mqtt-cn-0pp0abc.mqtt.aliyuncs.com");
        assert_eq!(
            public.tcp_uri(),
            "tcp://mqtt-cn-0pp0abc.mqtt.aliyuncs.com:1883"
        );
        assert_eq!(
            public.tls_uri(),
            "ssl://mqtt-cn-0pp0abc.mqtt.aliyuncs.com:8883"
        );

        let vpc = Endpoint::new("mqtt-cn-0pp0abc", Network::Vpc).unwrap();
        assert_eq!(vpc.network(), Network::Vpc);
        assert_eq!(vpc.host(), "mqtt-cn-0pp0abc-internal-vpc.mqtt.aliyuncs.com");
        assert_eq!(
            vpc.tcp_uri(),
            "tcp://mqtt-cn-0pp0abc-internal-vpc.mqtt.aliyuncs.com:1883"
        );
        assert_eq!(
            vpc.tls_uri(),
            "ssl://mqtt-cn-0pp0abc-internal-vpc.mqtt.aliyuncs.com:8883"
        );
    }

    #[test]
    fn websocket_uris_use_ports_80_and_443_and_path_mqtt_on_both_networks() {
        let public = Endpoint::public("mqtt-cn-0pp0abc").unwrap();
        assert_eq!(
            public.ws_uri(),
            "ws://mqtt-cn-0pp0abc.mqtt.aliyuncs.com:80/mqtt"
        );
        assert_eq!(
            public.wss_uri(),
            "wss://mqtt-cn-0pp0abc.mqtt.aliyuncs.com:443/mqtt"
        );
        let vpc = Endpoint::vpc("mqtt-cn-0pp0abc").unwrap();
        assert_eq!(
            vpc.ws_uri(),
            "ws://mqtt-cn-0pp0abc-internal-vpc.mqtt.aliyuncs.com:80/mqtt"
        );
        assert_eq!(
            vpc.wss_uri(),
            "wss://mqtt-cn-0pp0abc-internal-vpc.mqtt.aliyuncs.com:443/mqtt"
        );
        for (transport, uri) in [
            (Transport::Tcp, vpc.tcp_uri()),
            (Transport::Tls, vpc.tls_uri()),
            (Transport::WebSocket, vpc.ws_uri()),
            (Transport::SecureWebSocket, vpc.wss_uri()),
        ] {
            assert_eq!(vpc.uri(transport), uri);
        }
        assert_eq!(Transport::default(), Transport::Tcp);
    }

    #[test]
    fn websocket_uris_parse_as_server_uris_with_their_path() {
        let endpoint = Endpoint::public("mqtt-cn-test").unwrap();
        let ws: sansmq_driver::ServerUri = endpoint.ws_uri().parse().unwrap();
        assert_eq!(
            (
                ws.host.as_str(),
                ws.port,
                ws.tls,
                ws.websocket_path.as_deref()
            ),
            ("mqtt-cn-test.mqtt.aliyuncs.com", 80, false, Some("/mqtt"))
        );
        let wss: sansmq_driver::ServerUri = endpoint.wss_uri().parse().unwrap();
        assert_eq!(
            (
                wss.host.as_str(),
                wss.port,
                wss.tls,
                wss.websocket_path.as_deref()
            ),
            ("mqtt-cn-test.mqtt.aliyuncs.com", 443, true, Some("/mqtt"))
        );
    }

    #[test]
    fn uris_parse_as_sansmq_mio_server_uris() {
        let endpoint = Endpoint::public("mqtt-cn-test").unwrap();
        let tcp: sansmq_driver::ServerUri = endpoint.tcp_uri().parse().unwrap();
        assert_eq!(
            (tcp.host.as_str(), tcp.port, tcp.tls),
            ("mqtt-cn-test.mqtt.aliyuncs.com", 1883, false)
        );
        let tls: sansmq_driver::ServerUri = endpoint.tls_uri().parse().unwrap();
        assert_eq!(
            (tls.host.as_str(), tls.port, tls.tls),
            ("mqtt-cn-test.mqtt.aliyuncs.com", 8883, true)
        );
    }

    #[test]
    fn refuses_instance_ids_that_are_not_dns_labels() {
        let long = "a".repeat(64);
        for (id, reason) in [
            ("", "is empty"),
            ("mqtt cn", "letters, digits"),
            ("mqtt.cn", "letters, digits"),
            ("mqtt/cn", "letters, digits"),
            ("mqtt_cn", "letters, digits"),
            ("-mqtt", "start or end"),
            ("mqtt-", "start or end"),
            (long.as_str(), "longer than 63"),
        ] {
            let error = Endpoint::public(id).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(reason), "{message}");
            assert!(message.contains(&format!("{id:?}")), "{message}");
            assert!(Endpoint::vpc(id).is_err());
        }
        assert!(Endpoint::public(&"a".repeat(63)).is_ok());
    }
}
