//! MQTT 5.0 with the blocking client: properties both ways, a Subscription Identifier, and a
//! broker's Reason Code when it refuses a message.
//!
//! ```text
//! mosquitto -p 1883 &            # mosquitto 2 speaks MQTT 5
//! cargo run -p sansmq-mio --example mqtt5 [tcp://127.0.0.1:1883]
//! ```
//!
//! It connects with MQTT 5 (a session kept for an hour after a disconnect), subscribes to
//! `mqtt5-demo/#` with Subscription Identifier 42, publishes a request-shaped message (User
//! Properties, Content Type, Response Topic, Correlation Data, Message Expiry Interval), and
//! prints what arrives: the properties as sent, and the identifier of the subscription it matched.

use std::process::ExitCode;
use std::time::Duration;

use sansmq_mio::{
    Bytes, Client, ConnectOptions, Error, Mqtt5Options, MqttString, Properties, QoS,
    SubscribeFilter, SubscriptionId, TopicFilter, TopicName,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mqtt5: error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://127.0.0.1:1883".into());
    let v5 = Mqtt5Options::new()
        .session_expiry(Duration::from_secs(3600))
        .user_property("app", "sansmq-example")?;
    let options = ConnectOptions::new(&uri, format!("mqtt5-{}", std::process::id()))?
        .time_to_wait(Duration::from_secs(5))
        .mqtt5(v5);
    let client = Client::new(options)?;
    let messages = client.messages(16);
    client.connect()?;

    // A Subscription Identifier comes back with every message this subscription matches.
    let mut subscription = Properties::new();
    subscription.push_subscription_identifier(SubscriptionId::new(42).expect("not 0"));
    let filter = SubscribeFilter::new(TopicFilter::try_from("mqtt5-demo/#")?, QoS::AtLeastOnce);
    client.subscribe_with_properties(&[filter], subscription)?;

    let mut request = Properties::new();
    request.push_user_property(string("unit")?, string("celsius")?);
    request.set_content_type(Some(string("text/plain")?));
    request.set_response_topic(Some(TopicName::try_from("mqtt5-demo/replies")?));
    request.set_correlation_data(Some(Bytes::from_static(b"request-1")));
    request.message_expiry_interval = Some(60);
    // Completes at PUBACK; a broker that refuses it fails the token with Error::PublishRefused.
    client
        .publish_with_properties(
            "mqtt5-demo/temperature",
            "21.5",
            QoS::AtLeastOnce,
            false,
            request,
        )?
        .wait()?;

    let message = messages
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| Error::Timeout(Duration::from_secs(5)))?;
    let properties = message.properties();
    println!(
        "{} {:?}",
        message.topic,
        String::from_utf8_lossy(&message.payload)
    );
    for (name, value) in properties.user_properties() {
        println!("  user property {name}={value}");
    }
    println!("  content type {:?}", properties.content_type());
    println!("  response topic {:?}", properties.response_topic());
    println!("  correlation data {:?}", properties.correlation_data());
    let ids: Vec<u32> = message
        .subscription_identifiers()
        .map(|id| id.get())
        .collect();
    println!("  matched subscription {ids:?}");
    client.disconnect(Duration::from_secs(1))
}

fn string(s: &str) -> Result<MqttString, Error> {
    MqttString::try_from(s).map_err(|e| Error::InvalidString {
        field: "property",
        reason: e.to_string(),
    })
}
