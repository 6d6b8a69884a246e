//! A build without the `rustls` feature (`cargo test -p sansmq-tokio --no-default-features
//! --test tls_not_built`, as CI's feature-sets step runs it): a TLS URI is refused as the client
//! is made, with an error naming the URI and the feature; plain TCP and WebSocket still work.
#![cfg(not(feature = "rustls"))]

use sansmq_tokio::{Client, ConnectOptions, Error};

#[tokio::test]
async fn a_tls_uri_is_refused_as_the_client_is_made_naming_the_feature() {
    for (uri, shown) in [
        ("ssl://127.0.0.1:8883", "TLS to ssl://127.0.0.1:8883"),
        ("mqtts://broker", "TLS to ssl://broker:8883"),
        ("wss://broker/mqtt", "TLS to wss://broker:443/mqtt"),
    ] {
        let options = ConnectOptions::new(uri, "c").unwrap();
        let Err(error) = Client::new(options) else {
            panic!("{uri}: a client was made without TLS");
        };
        match &error {
            Error::FeatureNotBuilt { what, feature } => {
                assert_eq!((what.as_str(), *feature), (shown, "rustls"));
            }
            other => panic!("{uri}: expected FeatureNotBuilt, got {other}"),
        }
        assert!(
            error.to_string().contains("cargo feature `rustls`"),
            "{error}"
        );
    }
    for uri in ["tcp://127.0.0.1:1883", "ws://127.0.0.1:8080/mqtt"] {
        Client::new(ConnectOptions::new(uri, "c").unwrap()).unwrap();
    }
}
