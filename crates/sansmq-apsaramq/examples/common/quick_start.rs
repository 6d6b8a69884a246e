//! The quick-start's flow, shared by the blocking examples: the `MqttCallbackExtended`, then
//! connect, subscribe in `connect_complete`, 10 messages and 10 P2P messages, keep running.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use sansmq_apsaramq::{
    ApsaraMqCallback, ApsaraMqCredentials, ApsaraMqEvents, MessageKind, QoS, TokenNotice,
};
use sansmq_mio::{Client, DeliveryToken, Error, Message};

use super::QuickStartArgs;

/// The quick-start's `MqttCallbackExtended`.
pub(crate) struct QuickStartCallback {
    /// Set right after `Client::new`, before `connect`: the callback subscribes through it.
    client: Arc<OnceLock<Client>>,
    /// The quick-start's topic, and on a plain MQTT broker also our P2P topic: ApsaraMQ delivers
    /// P2P messages without a subscription, other brokers only with one.
    filters: Vec<String>,
    qos: QoS,
    received: Arc<AtomicUsize>,
    subscribed: mpsc::SyncSender<()>,
}

impl ApsaraMqCallback for QuickStartCallback {
    fn connect_complete(&self, reconnect: bool, server_uri: &str) {
        println!("connect success (server {server_uri}, reconnect: {reconnect})");
        // Java submits the subscription to an executor because Paho's callback thread must not
        // block on the client; sansmq's may, so it subscribes right here.
        if let Some(client) = self.client.get() {
            let filters: Vec<_> = self
                .filters
                .iter()
                .map(|f| (f.as_str(), self.qos))
                .collect();
            match client.subscribe(&filters) {
                Ok(granted) => {
                    println!("subscribe {:?} succeed, granted {granted:?}", self.filters)
                }
                Err(error) => eprintln!("subscribe {:?} failed: {error}", self.filters),
            }
            let _ = self.subscribed.try_send(());
        }
    }

    fn connection_lost(&self, cause: &Error) {
        eprintln!("connection lost: {cause}");
    }

    fn message_arrived(&self, topic: &str, message: &Message, kind: MessageKind) {
        let kind = match kind {
            MessageKind::PointToPoint => " (p2p)",
            _ => "",
        };
        println!(
            "receive msg from topic {topic}{kind} , body is {}",
            String::from_utf8_lossy(&message.payload)
        );
        self.received.fetch_add(1, Ordering::SeqCst);
    }

    fn delivery_complete(&self, token: &DeliveryToken) {
        if let Some(id) = token.message_id() {
            println!("send msg succeed, message id {id}");
        }
    }

    fn token_notice(&self, notice: &TokenNotice) {
        println!("token notice: {notice:?}");
    }
}

/// Runs the quick-start as `credentials`; `after_sending` runs once the 20 messages are out.
pub(crate) fn run(
    args: &QuickStartArgs,
    credentials: ApsaraMqCredentials,
    after_sending: impl FnOnce(&Client) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let client_id = credentials.client_id().clone();
    let topic = args.topic()?;
    let p2p_topic = args.p2p_topic()?;
    let qos = args.qos();
    sansmq_apsaramq::check_qos(qos, true)?;

    // ConnectionOptionWrapper(instanceId, accessKey, secretKey, clientId): MQTT 3.1.1, keep-alive
    // 90 s, automatic reconnect with jitter, 5 s time-to-wait; the password is computed again on
    // every reconnect.
    let options = args.options(&credentials)?;

    // new MqttClient(uri, clientId, new MemoryPersistence()): sessions live in memory.
    let client = Client::new(options)?;
    let handle = Arc::new(OnceLock::new());
    let received = Arc::new(AtomicUsize::new(0));
    let (subscribed, subscribed_rx) = mpsc::sync_channel(1);
    let mut filters = vec![topic.clone()];
    if args.broker.is_some() {
        filters.push(sansmq_apsaramq::p2p_topic(&args.parent_topic, &client_id)?.to_string());
    }
    // The callback is registered before connecting, as the quick-start does.
    client.set_callback(
        ApsaraMqEvents::new(
            QuickStartCallback {
                client: Arc::clone(&handle),
                filters,
                qos,
                received: Arc::clone(&received),
                subscribed,
            },
            &args.parent_topic,
            client_id,
        )
        .with_credentials(credentials),
    );
    let _ = handle.set(client.clone());
    client.connect()?;
    // Unlike the Java demo, wait for the subscription, so none of our own messages is missed.
    let _ = subscribed_rx.recv_timeout(Duration::from_secs(5));

    for i in 0..10 {
        client.publish(&topic, "hello mq4Iot pub sub msg", qos, false)?;
        client.publish(&p2p_topic, "hello mq4Iot p2p msg", qos, false)?;
        println!("send msg {i} to {topic} and {p2p_topic}");
    }
    after_sending(&client)?;

    args.keep_running();
    client.disconnect(Duration::from_secs(5))?;
    client.close();
    let received = received.load(Ordering::SeqCst);
    println!("received {received} messages");
    // With the defaults (P2P to ourselves) all 20 come back; say so when they did not.
    if args.receiver.is_none() && received < 20 {
        return Err(format!("only {received} of 20 messages came back").into());
    }
    Ok(())
}
