//! MQTT 5.0 with sansmq-tokio: properties both ways, a Subscription Identifier, and a broker's
//! Reason Code when it refuses a message.
//!
//! ```text
//! mosquitto -p 1883 &            # mosquitto 2 speaks MQTT 5
//! cargo run -p sansmq-tokio --example async_mqtt5 [tcp://127.0.0.1:1883]
//! ```
//!
//! It connects with MQTT 5 (a session kept for an hour after a disconnect), subscribes to
//! `mqtt5-demo/#` with Subscription Identifier 42, publishes a request-shaped message (User
//! Properties, Content Type, Response Topic, Correlation Data, Message Expiry Interval), and
//! prints what arrives: the properties as sent, and the identifier of the subscription it matched.

use std::process::ExitCode;
use std::time::Duration;

use sansmq_tokio::{
    Bytes, Client, ConnectOptions, Error, Event, Mqtt5Options, MqttString, Properties, QoS,
    SubscribeFilter, SubscriptionId, TopicFilter, TopicName,
};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mqtt5: error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://127.0.0.1:1883".to_owned());
    let v5 = Mqtt5Options::new()
        .session_expiry(Duration::from_secs(3600))
        .user_property("app", "sansmq-example")?;
    let options = ConnectOptions::new(&uri, format!("mqtt5-{}", std::process::id()))?.mqtt5(v5);
    let (client, mut events) = Client::new(options)?;
    client.connect().await?;

    // A Subscription Identifier comes back with every message this subscription matches.
    let mut subscription = Properties::new();
    subscription.push_subscription_identifier(SubscriptionId::new(42).expect("not 0"));
    let filter = SubscribeFilter::new(TopicFilter::try_from("mqtt5-demo/#")?, QoS::AtLeastOnce);
    client
        .subscribe_with_properties(&[filter], subscription)
        .await?;

    let mut request = Properties::new();
    request.push_user_property(string("unit")?, string("celsius")?);
    request.set_content_type(Some(string("text/plain")?));
    request.set_response_topic(Some(TopicName::try_from("mqtt5-demo/replies")?));
    request.set_correlation_data(Some(Bytes::from_static(b"request-1")));
    request.message_expiry_interval = Some(60);
    // Resolves at PUBACK; a broker that refuses it answers Error::PublishRefused with its code.
    client
        .publish_with_properties(
            "mqtt5-demo/temperature",
            "21.5",
            QoS::AtLeastOnce,
            false,
            request,
        )
        .await?;

    while let Some(event) = events.recv().await {
        if let Event::Message(message) = event {
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
            break;
        }
    }
    client.disconnect(Duration::from_secs(1)).await
}

fn string(s: &str) -> Result<MqttString, Error> {
    MqttString::try_from(s).map_err(|e| Error::InvalidString {
        field: "property",
        reason: e.to_string(),
    })
}
