//! What the quick-start examples share: their arguments (each also read from the environment, as
//! Alibaba's demo reads its AccessKey pair) and the names they derive from them.
#![allow(dead_code)]

pub(crate) mod quick_start;

use std::time::Duration;

use clap::{Parser, ValueEnum};
use sansmq_apsaramq::{
    AccessKey, ApsaraMqCredentials, ClientId, CredentialsError, Endpoint, EnvProblem, Mqtt5Options,
    QoS, TopicRules, Transport, apsaramq_mqtt5_options, apsaramq_options_with, p2p_topic,
};
use sansmq_driver::ConnectOptions;

/// Where and as whom to run the quick-start.
#[derive(Debug, Parser)]
pub(crate) struct QuickStartArgs {
    /// Any MQTT broker instead of the instance's public endpoint, e.g. tcp://127.0.0.1:1883.
    #[arg(long, env = "MQTT_BROKER")]
    pub(crate) broker: Option<String>,
    /// How to reach the instance's public endpoint: tcp (1883), ssl (8883), ws (80) or wss
    /// (443, path /mqtt). A --broker URI names its own.
    #[arg(
        long,
        env = "MQTT_TRANSPORT",
        value_enum,
        default_value = "tcp",
        conflicts_with = "broker"
    )]
    pub(crate) transport: TransportArg,
    /// The ApsaraMQ instance id (console: Instance Details).
    #[arg(long, env = "MQTT_INSTANCE_ID", default_value = "mqtt-cn-local")]
    pub(crate) instance: String,
    /// The group id (console: Groups), GID_ or GID- and letters, digits, - or _.
    #[arg(long, env = "MQTT_GROUP_ID", default_value = "GID_demo")]
    pub(crate) group: String,
    /// This device's id; the client id is <group>@@@<device>.
    #[arg(long, env = "MQTT_DEVICE_ID", default_value = "device-1")]
    pub(crate) device: String,
    /// The parent topic created in the console.
    #[arg(long, env = "MQTT_PARENT_TOPIC", default_value = "demo")]
    pub(crate) parent_topic: String,
    /// The client id P2P messages go to (default: this client, which then receives them).
    #[arg(long)]
    pub(crate) receiver: Option<String>,
    /// QoS of everything sent and subscribed: 0, 1 or 2.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub(crate) qos: u8,
    /// Stop after this many seconds (the Java demo runs until killed; so does this without it).
    #[arg(long, value_parser = parse_seconds)]
    pub(crate) run_for: Option<Duration>,
    /// Speak MQTT 5.0, as ApsaraMQ's Professional, Enterprise Platinum and Serverless instances
    /// do; the logins are the same.
    #[arg(long, env = "MQTT_V5")]
    pub(crate) mqtt5: bool,
}

/// `--transport`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum TransportArg {
    Tcp,
    Ssl,
    Ws,
    Wss,
}

impl From<TransportArg> for Transport {
    fn from(transport: TransportArg) -> Self {
        match transport {
            TransportArg::Tcp => Self::Tcp,
            TransportArg::Ssl => Self::Tls,
            TransportArg::Ws => Self::WebSocket,
            TransportArg::Wss => Self::SecureWebSocket,
        }
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a number of seconds"))
}

impl QuickStartArgs {
    /// `<group>@@@<device>`, checked.
    pub(crate) fn client_id(&self) -> Result<ClientId, Box<dyn std::error::Error>> {
        Ok(ClientId::new(&self.group, &self.device)?)
    }

    /// The broker URI: `--broker`, or the instance's public endpoint over `--transport`.
    pub(crate) fn broker_uri(&self) -> Result<String, Box<dyn std::error::Error>> {
        match &self.broker {
            Some(uri) => Ok(uri.clone()),
            None => Ok(Endpoint::public(&self.instance)?.uri(self.transport.into())),
        }
    }

    /// The preset's connect options for `credentials` at the broker URI: MQTT 3.1.1, or MQTT 5.0
    /// with `--mqtt5`.
    pub(crate) fn options(
        &self,
        credentials: &ApsaraMqCredentials,
    ) -> Result<ConnectOptions, Box<dyn std::error::Error>> {
        let uri = self.broker_uri()?;
        Ok(if self.mqtt5 {
            apsaramq_mqtt5_options(&uri, credentials, Mqtt5Options::new())?
        } else {
            apsaramq_options_with(&uri, credentials)?
        })
    }

    /// `<parent>/testMq4Iot`, the quick-start's topic.
    pub(crate) fn topic(&self) -> Result<String, Box<dyn std::error::Error>> {
        Ok(TopicRules::default()
            .name(&self.parent_topic, "testMq4Iot")?
            .to_string())
    }

    /// `<parent>/p2p/<receiver>`.
    pub(crate) fn p2p_topic(&self) -> Result<String, Box<dyn std::error::Error>> {
        let receiver = match &self.receiver {
            Some(id) => ClientId::parse(id)?,
            None => self.client_id()?,
        };
        Ok(p2p_topic(&self.parent_topic, &receiver)?.to_string())
    }

    /// The AccessKey pair from `MQTT_AK_ENV` / `MQTT_SK_ENV`. With `--broker` and neither set, a
    /// throwaway pair, said so on stderr: a test broker that does not check signatures takes any.
    pub(crate) fn access_key(&self) -> Result<AccessKey, Box<dyn std::error::Error>> {
        match AccessKey::from_env() {
            Err(CredentialsError::Env {
                problem: EnvProblem::NotSet,
                ..
            }) if self.broker.is_some()
                && std::env::var_os("MQTT_AK_ENV").is_none()
                && std::env::var_os("MQTT_SK_ENV").is_none() =>
            {
                eprintln!(
                    "MQTT_AK_ENV and MQTT_SK_ENV are not set: signing with a throwaway AccessKey, \
                     which only a broker that does not check signatures accepts"
                );
                Ok(AccessKey::new("LTAIlocaltest", "local-test-secret"))
            }
            other => Ok(other?),
        }
    }

    /// The QoS.
    pub(crate) fn qos(&self) -> QoS {
        match self.qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        }
    }

    /// Sleeps for `--run-for`, or forever.
    pub(crate) fn keep_running(&self) {
        match self.run_for {
            Some(limit) => std::thread::sleep(limit),
            None => loop {
                std::thread::park();
            },
        }
    }
}
