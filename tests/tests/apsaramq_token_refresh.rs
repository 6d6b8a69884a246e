//! ApsaraMQ token refresh through a real broker: the upload goes out as a barrier and completes on
//! its PUBACK, and the next connect signs with the new token.
//!
//! mosquitto acknowledges a PUBLISH to `$SYS/uploadToken` and then drops the connection (it denies
//! client publishes to `$SYS`), which conveniently exercises the reconnect that must use the new
//! token.

mod common;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_apsaramq::credentials::{AuthMode, Token, TokenType};
use sansmq_apsaramq::{ApsaraMqCredentials, ClientId, upload_token, upload_token_async};
use sansmq_e2e::{Mosquitto, wait_until};
use sansmq_mio::{Credentials, CredentialsProvider};

/// Remembers the password of every connect.
#[derive(Clone)]
struct Recording {
    inner: ApsaraMqCredentials,
    passwords: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl CredentialsProvider for Recording {
    fn credentials(&self) -> Result<Credentials, String> {
        let credentials = self.inner.credentials()?;
        let password = credentials.password.as_deref().unwrap_or_default().to_vec();
        self.passwords
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(password);
        Ok(credentials)
    }
}

#[test]
fn upload_token_completes_and_the_next_connect_uses_the_new_token() {
    let client_id = ClientId::new("GID_e2e", "device-1").unwrap();
    let old = Token::new(TokenType::RW, "old-token").unwrap();
    let credentials = ApsaraMqCredentials::new(
        AuthMode::token("LTAIe2e", "mqtt-cn-e2e", [old]),
        client_id.clone(),
    );
    let recording = Recording {
        inner: credentials.clone(),
        passwords: Arc::default(),
    };
    let broker = Mosquitto::start();
    let options = common::options(&broker.url(), client_id.as_str())
        .credentials_provider(recording.clone())
        .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(200));
    let client = sansmq_mio::Client::new(options).unwrap();
    let messages = client.messages(16);
    client.connect().unwrap();
    client
        .subscribe(&[("after/refresh", QoS::AtLeastOnce)])
        .unwrap();

    let new = Token::new(TokenType::RW, "new-token").unwrap();
    upload_token(&client, &credentials, new).unwrap();

    let passwords = || {
        recording
            .passwords
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    };
    assert!(
        wait_until(Duration::from_secs(20), || passwords().len() >= 2),
        "no reconnect after mosquitto dropped the $SYS publish"
    );
    assert_eq!(passwords()[0], b"RW|old-token");
    assert_eq!(
        passwords()[1],
        b"RW|new-token",
        "the reconnect signs with the new token"
    );

    // Publishing works again after the barrier was acknowledged.
    client
        .publish("after/refresh", "still here", QoS::AtLeastOnce, false)
        .unwrap()
        .wait()
        .unwrap();
    let message = messages.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(&message.payload[..], b"still here");
    client.disconnect(Duration::from_secs(5)).unwrap();
    client.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_upload_token_completes_and_the_next_connect_uses_the_new_token() {
    let client_id = ClientId::new("GID_e2e", "device-async").unwrap();
    let credentials = ApsaraMqCredentials::new(
        AuthMode::token(
            "LTAIe2e",
            "mqtt-cn-e2e",
            [Token::new(TokenType::RW, "old-token").unwrap()],
        ),
        client_id.clone(),
    );
    let recording = Recording {
        inner: credentials.clone(),
        passwords: Arc::default(),
    };
    let broker = Mosquitto::start();
    let options = common::options(&broker.url(), client_id.as_str())
        .credentials_provider(recording.clone())
        .automatic_reconnect(Duration::from_millis(50), Duration::from_millis(200));
    let (client, _events) = sansmq_tokio::Client::new(options).unwrap();
    client.connect().await.unwrap();

    let new = Token::new(TokenType::RW, "new-token").unwrap();
    tokio::time::timeout(
        common::PATIENCE,
        upload_token_async(&client, &credentials, new),
    )
    .await
    .expect("the upload's PUBACK")
    .unwrap();

    let passwords = || {
        recording
            .passwords
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    };
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while passwords().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        passwords().first().map(Vec::as_slice),
        Some(&b"RW|old-token"[..])
    );
    assert_eq!(
        passwords().get(1).map(Vec::as_slice),
        Some(&b"RW|new-token"[..]),
        "the reconnect signs with the new token"
    );
    client.disconnect(Duration::from_secs(5)).await.unwrap();
}
