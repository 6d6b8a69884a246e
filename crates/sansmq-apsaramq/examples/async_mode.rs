//! The quick-start on the async client: Signature login, subscribe on every (re)connect, 10
//! messages and 10 P2P messages each awaited until the broker has it, then consume — P2P messages
//! and token notices told apart with `classify` — until `--run-for` is up (or forever).
//!
//! ```text
//! export MQTT_AK_ENV=<AccessKey ID> MQTT_SK_ENV=<AccessKey secret>
//! cargo run -p sansmq-apsaramq --example async_mode -- --instance mqtt-cn-xxx --group GID_demo
//! cargo run -p sansmq-apsaramq --example async_mode -- --broker tcp://127.0.0.1:1883 --run-for 2
//! ```

mod common;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sansmq_apsaramq::{
    ApsaraMqCredentials, AuthMode, Incoming, MessageKind, TokenNotice, classify,
};
use sansmq_tokio::{Client, Event};

use common::QuickStartArgs;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = QuickStartArgs::parse();
    let client_id = args.client_id()?;
    let topic = args.topic()?;
    let p2p_topic = args.p2p_topic()?;
    let qos = args.qos();
    let credentials = ApsaraMqCredentials::new(
        AuthMode::signature(args.access_key()?, &args.instance),
        client_id.clone(),
    );
    let options = args.options(&credentials)?;
    let (client, mut events) = Client::new(options)?;

    // ApsaraMQ delivers P2P messages unsubscribed; a plain broker needs a subscription.
    let mut filters = vec![topic.clone()];
    if args.broker.is_some() {
        filters.push(sansmq_apsaramq::p2p_topic(&args.parent_topic, &client_id)?.to_string());
    }
    let subscribe = |client: Client, filters: Vec<String>| async move {
        let filters: Vec<_> = filters.iter().map(|f| (f.as_str(), qos)).collect();
        match client.subscribe(&filters).await {
            Ok(granted) => println!("subscribe succeed, granted {granted:?}"),
            Err(error) => eprintln!("subscribe failed: {error}"),
        }
    };

    client.connect().await?;
    println!("connect success");
    subscribe(client.clone(), filters.clone()).await;

    for i in 0..10 {
        client
            .publish(&topic, "hello mq4Iot pub sub msg", qos, false)
            .await?;
        client
            .publish(&p2p_topic, "hello mq4Iot p2p msg", qos, false)
            .await?;
        println!("send msg {i} succeed to {topic} and {p2p_topic}");
    }

    let limit = args.run_for.unwrap_or(Duration::MAX);
    let deadline = tokio::time::Instant::now()
        .checked_add(limit)
        .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
    let mut received = 0;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        match event {
            Event::Message(message) => {
                match classify(
                    &message.topic,
                    &message.payload,
                    &args.parent_topic,
                    &client_id,
                ) {
                    Incoming::Notice(Ok(TokenNotice::Expiring { expire_time, .. })) => {
                        println!("token expires at {expire_time}: upload a new one");
                    }
                    Incoming::Notice(notice) => println!("token notice: {notice:?}"),
                    Incoming::Message(kind) => {
                        let kind = if kind == MessageKind::PointToPoint {
                            " (p2p)"
                        } else {
                            ""
                        };
                        println!(
                            "receive msg from topic {}{kind} , body is {}",
                            message.topic,
                            String::from_utf8_lossy(&message.payload)
                        );
                        received += 1;
                    }
                    _ => {}
                }
            }
            Event::Reconnected { .. } => subscribe(client.clone(), filters.clone()).await,
            Event::ConnectionLost { cause } => eprintln!("connection lost: {cause}"),
            _ => {}
        }
    }
    client.disconnect(Duration::from_secs(5)).await?;
    println!("received {received} messages");
    if args.receiver.is_none() && received < 20 {
        return Err(format!("only {received} of 20 messages came back").into());
    }
    Ok(())
}
