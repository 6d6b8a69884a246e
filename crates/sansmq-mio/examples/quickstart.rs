//! Connect, subscribe, publish, receive, disconnect: `cargo run -p sansmq-mio --example quickstart
//! -- tcp://127.0.0.1:1883`.

use std::process::ExitCode;
use std::time::Duration;

use sansmq_mio::{Client, ConnectOptions, Error, QoS};

fn main() -> ExitCode {
    // An error as one readable line (its Display), not the Debug dump `main -> Result` prints.
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("quickstart: error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://127.0.0.1:1883".into());
    let options = ConnectOptions::new(&uri, "sansmq-quickstart")?
        .time_to_wait(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5));
    let client = Client::new(options)?;
    let messages = client.messages(16);

    let session_present = client.connect()?;
    println!("connected to {uri} (session present: {session_present})");

    let granted = client.subscribe(&[("sansmq/quickstart/#", QoS::ExactlyOnce)])?;
    println!("subscribed, granted {granted:?}");

    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let token = client.publish(
            "sansmq/quickstart/hello",
            format!("hello at {qos}"),
            qos,
            false,
        )?;
        token.wait()?;
        let message = messages
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| Error::Timeout(Duration::from_secs(5)))?;
        println!(
            "received on {}: {} ({})",
            message.topic,
            String::from_utf8_lossy(&message.payload),
            message.qos
        );
    }

    client.disconnect(Duration::from_secs(5))?;
    println!("disconnected");
    client.close();
    Ok(())
}
