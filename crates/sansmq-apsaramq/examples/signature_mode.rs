//! Alibaba's quick-start `MQ4IoTSendMessageToMQ4IoTUseSignatureMode`, step by step, on sansmq's
//! blocking client: Signature login from the AccessKey pair in `MQTT_AK_ENV` / `MQTT_SK_ENV`,
//! callbacks registered before connecting, a subscription made in `connect_complete` (so every
//! reconnect has it), 10 messages to `<parent>/testMq4Iot` and 10 point-to-point messages, and then
//! it keeps running.
//!
//! ```text
//! export MQTT_AK_ENV=<AccessKey ID> MQTT_SK_ENV=<AccessKey secret>
//! cargo run -p sansmq-apsaramq --example signature_mode -- \
//!     --instance mqtt-cn-xxx --group GID_demo --device device-1 --parent-topic demo
//! # over WebSocket (port 80; wss: 443, ssl: 8883): add --transport ws
//! # MQTT 5.0 (Professional, Enterprise Platinum and Serverless instances): add --mqtt5
//! # or against any broker:
//! cargo run -p sansmq-apsaramq --example signature_mode -- --broker tcp://127.0.0.1:1883 --run-for 5
//! ```

mod common;

use std::process::ExitCode;

use clap::Parser;
use sansmq_apsaramq::{ApsaraMqCredentials, AuthMode};

use common::QuickStartArgs;

fn main() -> ExitCode {
    // Errors as one readable line (Display), not as a Debug dump.
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = QuickStartArgs::parse();
    // Signature mode: user name `Signature|<AccessKeyId>|<InstanceId>`, password
    // Base64(HMAC-SHA1(secret, client id)). The secret never leaves the credentials.
    let access_key = args.access_key()?;
    let credentials = ApsaraMqCredentials::new(
        AuthMode::signature(access_key, &args.instance),
        args.client_id()?,
    );
    common::quick_start::run(&args, credentials, |_| Ok(()))
}
