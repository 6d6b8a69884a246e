//! A broker that refuses the CONNECT and closes at once: its CONNACK and its end of stream arrive
//! in one read. `connect` must go on to the next server URI. When the end of stream was reported
//! after the refusal, it was taken for the failure of that next attempt, and `connect` failed
//! without trying it.

mod fake_broker;

use std::time::Duration;

use sansmq_mio::{Client, ConnectOptions};

use fake_broker::{ACCEPTED, NOT_AUTHORISED, serve};

#[test]
fn a_refused_connack_with_the_close_in_one_read_moves_on_to_the_next_uri() {
    let (refusing, _) = serve(NOT_AUTHORISED, true);
    let (accepting, _) = serve(ACCEPTED, false);
    let options = ConnectOptions::new(&refusing, "refused-then-next")
        .and_then(|o| o.server_uris(&[refusing.as_str(), accepting.as_str()]))
        .expect("valid options")
        .connect_timeout(Duration::from_secs(5));
    let client = Client::new(options).expect("client");
    assert_eq!(client.connect().map_err(|e| e.to_string()), Ok(false));
    assert!(client.is_connected());
    client.close();
}
