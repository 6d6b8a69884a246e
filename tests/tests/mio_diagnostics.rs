//! The blocking client explains a broker that hangs up: two clients with one client id take the
//! connection from each other (mosquitto closes the older one, MQTT-3.1.4-2), and after a few short
//! connections in a row the cause reads "probably a duplicate client id".

mod common;

use std::time::Duration;

use common::{PATIENCE, Recorder, Seen, options};
use sansmq_e2e::Mosquitto;
use sansmq_mio::{Client, Diagnosis, Error};

#[test]
fn two_clients_with_one_id_are_told_it_is_probably_a_duplicate_client_id() {
    let broker = Mosquitto::start();
    let twin = || {
        let client = Client::new(
            options(&broker.url(), "GID_twin@@@device-1")
                .automatic_reconnect(Duration::from_millis(100), Duration::from_millis(300)),
        )
        .unwrap();
        let (recorder, events) = Recorder::new();
        client.set_callback(recorder);
        client.connect().unwrap();
        (client, events)
    };
    let (first, first_events) = twin();
    let (second, _second_events) = twin();

    // The first twin is kicked again and again; within a few rounds it says why.
    let diagnosis = first_events.find(PATIENCE, |seen| match seen {
        Seen::Lost {
            cause: Error::ClosedByBroker(diagnosis),
            ..
        } => Some(diagnosis),
        _ => None,
    });
    match diagnosis {
        Some(Diagnosis::DuplicateClientId {
            client_id,
            short_connections,
        }) => {
            assert_eq!(client_id, "GID_twin@@@device-1");
            assert!(short_connections >= 3);
        }
        other => panic!("expected a duplicate-client-id diagnosis, got {other:?}"),
    }
    let message = Error::ClosedByBroker(Diagnosis::DuplicateClientId {
        client_id: "GID_twin@@@device-1".into(),
        short_connections: 3,
    })
    .to_string();
    assert!(
        message.contains("probably a duplicate client id"),
        "{message}"
    );
    first.close();
    second.close();
}
