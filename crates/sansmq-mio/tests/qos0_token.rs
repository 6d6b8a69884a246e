//! A QoS 0 message has no acknowledgement: its delivery token completes once the message is
//! written to the socket, not when `publish` queues it (it used to complete at once, even for a
//! message waiting offline that a lost connection could still drop).

mod fake_broker;

use std::time::Duration;

use sansmq_mio::{Client, ConnectOptions, QoS};

use fake_broker::{ACCEPTED, serve};

#[test]
fn a_qos0_token_completes_once_the_message_is_written_not_when_queued() {
    let (uri, sent) = serve(ACCEPTED, false);
    let options = ConnectOptions::new(&uri, "qos0-token")
        .expect("valid options")
        .connect_timeout(Duration::from_secs(5))
        .automatic_reconnect(Duration::from_secs(1), Duration::from_secs(2));
    let client = Client::new(options).expect("client");
    let token = client
        .publish("offline/qos0", "waits", QoS::AtMostOnce, false)
        .expect("queued offline");
    assert_eq!(token.message_id(), None);
    assert!(!token.is_complete(), "nothing was written yet");
    assert!(token.wait_timeout(Duration::from_millis(100)).is_err());

    client.connect().expect("connects");
    token.wait_timeout(Duration::from_secs(5)).expect("written");
    let mut received = Vec::new();
    while !received.windows(12).any(|w| w == b"offline/qos0") {
        let bytes = sent.recv_timeout(Duration::from_secs(5));
        received.extend(bytes.expect("the broker reads the PUBLISH"));
    }
    client.close();
}
