//! When the credentials provider has nothing to give (ApsaraMQ tokens the broker declared invalid),
//! automatic reconnect says so once on the events stream and opens no connection until the
//! provider has credentials again; then it reconnects by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sansmq_tokio::{Client, ConnectOptions, Credentials, Error, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CONNACK_ACCEPTED: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

#[tokio::test]
async fn without_credentials_reconnect_waits_says_so_once_and_resumes_with_new_ones() {
    let broker = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = broker.local_addr().unwrap().port();
    let valid = Arc::new(AtomicBool::new(true));
    let provider = {
        let valid = Arc::clone(&valid);
        move || match valid.load(Ordering::SeqCst) {
            true => Ok(Credentials {
                username: "device".into(),
                password: None,
            }),
            false => Err("the tokens were declared invalid".to_owned()),
        }
    };
    let options = ConnectOptions::new(&format!("tcp://127.0.0.1:{port}"), "stopped")
        .unwrap()
        .automatic_reconnect(Duration::from_millis(10), Duration::from_millis(20))
        .credentials_provider(provider);
    let (client, mut events) = Client::new(options).unwrap();

    // Accept, answer CONNECT, then drop the connection once the tokens are gone.
    let (connect, ()) = tokio::join!(client.connect(), async {
        let (mut socket, _) = broker.accept().await.unwrap();
        let mut connect = [0; 64];
        let _ = socket.read(&mut connect).await.unwrap();
        socket.write_all(&CONNACK_ACCEPTED).await.unwrap();
        valid.store(false, Ordering::SeqCst);
        drop(socket);
    });
    connect.unwrap();

    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        let mut seen = Vec::new();
        while let Some(event) = events.recv().await {
            let waiting = matches!(event, Event::WaitingForCredentials { .. });
            seen.push(event);
            if waiting {
                return seen;
            }
        }
        seen
    })
    .await
    .expect("WaitingForCredentials within 5 s");
    assert!(
        matches!(
            seen.as_slice(),
            [
                Event::Connected { .. },
                Event::ConnectionLost { .. },
                Event::WaitingForCredentials {
                    cause: Error::InvalidString {
                        field: "credentials",
                        ..
                    }
                }
            ]
        ),
        "{seen:?}"
    );
    assert!(!client.is_connected());
    let again = tokio::time::timeout(Duration::from_millis(300), broker.accept()).await;
    assert!(again.is_err(), "no attempt without credentials");

    // New credentials: the client comes back by itself, and the outage was reported only once.
    valid.store(true, Ordering::SeqCst);
    let (mut socket, _) = tokio::time::timeout(Duration::from_secs(5), broker.accept())
        .await
        .expect("a new attempt once the provider has credentials")
        .unwrap();
    let mut connect = [0; 64];
    let _ = socket.read(&mut connect).await.unwrap();
    socket.write_all(&CONNACK_ACCEPTED).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s");
    assert!(matches!(next, Some(Event::Reconnected { .. })), "{next:?}");
}
