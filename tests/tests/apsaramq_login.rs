//! ApsaraMQ's Signature login against a real mosquitto whose password file holds the computed
//! user name and password: the login succeeds only with the right secret and the right client id,
//! and every connect signs afresh.

mod common;

use std::time::Duration;

use sansmq::packet::{ConnectReturnCode, QoS};
use sansmq_apsaramq::{AccessKey, AuthMode, ClientId, apsaramq_options};
use sansmq_e2e::Mosquitto;
use sansmq_mio::{Client, Error};

const INSTANCE: &str = "mqtt-cn-e2e";
const KEY_ID: &str = "LTAIe2eKey";
const SECRET: &str = "e2e-secret";

/// A mosquitto that knows exactly one Signature login: `client_id` signed with [`SECRET`].
fn broker_for(client_id: &ClientId) -> Mosquitto {
    let login = AuthMode::signature(AccessKey::new(KEY_ID, SECRET), INSTANCE)
        .connect_credentials(client_id)
        .unwrap();
    let password = String::from_utf8(login.password.unwrap().to_vec()).unwrap();
    assert_eq!(password.len(), 28, "Base64 of a 20-byte HMAC-SHA1");
    Mosquitto::builder()
        .user(&login.username, &password)
        .start()
}

fn client(broker: &Mosquitto, client_id: &ClientId, secret: &str) -> Client {
    let auth = AuthMode::signature(AccessKey::new(KEY_ID, secret), INSTANCE);
    let options = apsaramq_options(&broker.url(), client_id, auth)
        .unwrap()
        .time_to_wait(common::PATIENCE)
        .connect_timeout(Duration::from_secs(10));
    Client::new(options).unwrap()
}

/// mosquitto refuses a login that is not in its password file with 5 (not authorised).
fn assert_refused(error: &Error) {
    assert!(
        matches!(
            error,
            Error::Refused(
                ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNameOrPassword
            )
        ),
        "{error:?}"
    );
}

#[test]
fn signature_login_succeeds_with_the_right_secret_and_client_id() {
    let client_id = ClientId::new("GID_e2e", "device-1").unwrap();
    let broker = broker_for(&client_id);
    let client = client(&broker, &client_id, SECRET);
    client.connect().unwrap();
    let messages = client.messages(4);
    client
        .subscribe(&[("parent/login", QoS::AtLeastOnce)])
        .unwrap();
    client
        .publish("parent/login", "signed", QoS::AtLeastOnce, false)
        .unwrap()
        .wait()
        .unwrap();
    let message = messages.recv_timeout(common::PATIENCE).unwrap();
    assert_eq!(&message.payload[..], b"signed");
    client.disconnect(Duration::from_secs(5)).unwrap();

    // A second connect signs again and is accepted again.
    client.connect().unwrap();
    client.disconnect(Duration::from_secs(5)).unwrap();
    client.close();
}

#[test]
fn signature_login_is_refused_with_a_wrong_secret() {
    let client_id = ClientId::new("GID_e2e", "device-1").unwrap();
    let broker = broker_for(&client_id);
    let client = client(&broker, &client_id, "not-the-secret");
    assert_refused(&client.connect().unwrap_err());
    client.close();
}

#[test]
fn signature_login_is_refused_for_another_client_id() {
    // The signature covers the whole client id: a device of the same group cannot reuse it.
    let signed_for = ClientId::new("GID_e2e", "device-1").unwrap();
    let broker = broker_for(&signed_for);
    let other = ClientId::new("GID_e2e", "device-2").unwrap();
    let client = client(&broker, &other, SECRET);
    assert_refused(&client.connect().unwrap_err());
    client.close();
}

#[test]
fn the_preset_refuses_what_apsaramq_does_not_support_before_sending() {
    let client_id = ClientId::new("GID_e2e", "device-1").unwrap();
    let broker = broker_for(&client_id);
    let client = client(&broker, &client_id, SECRET);
    client.connect().unwrap();
    for (result, reason) in [
        (
            client
                .publish("parent/a", "x", QoS::AtLeastOnce, true)
                .map(drop),
            "retained",
        ),
        (
            client
                .publish("parent/a", vec![0; 64 * 1024 + 1], QoS::AtLeastOnce, false)
                .map(drop),
            "64 KiB",
        ),
        (
            client
                .subscribe(&[(&format!("parent/{}", "x".repeat(130)), QoS::AtLeastOnce)])
                .map(drop),
            "128",
        ),
    ] {
        match result {
            Err(Error::NotAllowed(message)) => assert!(message.contains(reason), "{message}"),
            other => panic!("expected a refusal mentioning {reason:?}, got {other:?}"),
        }
    }
    // Still connected: nothing reached the broker.
    assert!(client.is_connected());
    client
        .publish("parent/a", "fine", QoS::AtLeastOnce, false)
        .unwrap()
        .wait()
        .unwrap();
    client.close();
}
