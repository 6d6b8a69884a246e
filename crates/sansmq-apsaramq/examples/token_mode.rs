//! Token mode from end to end, as Alibaba's quick-start sets it up with an application server:
//!
//! 1. the **app server** applies for a token (OpenAPI `ApplyToken`, signed with its AccessKey);
//! 2. the **device** logs in with it (`Token|<AccessKey id>|<instance>`, password `RW|<token>`);
//! 3. the broker says the token expires soon (`$SYS/tokenExpireNotice`): the app server applies
//!    for a fresh one and the device uploads it (`$SYS/uploadToken`) without reconnecting;
//! 4. messages are published with a message id, and the device handles them slowly, so the
//!    broker re-delivers them: the device processes each once (the quick-start's
//!    "deduplication to ensure idempotent consumption");
//! 5. the app server revokes the token (`RevokeToken`): the broker says so
//!    (`$SYS/tokenInvalidNotice`) and disconnects the device, which does not reconnect with it.
//!
//! Locally, with no cloud account: start the broker in ApsaraMQ mode and export what it prints
//! (the MQTT address, the instance, a generated AccessKey and the OpenAPI endpoint), then run this:
//!
//! ```text
//! cargo run -p sansmq-cli -- broker --apsaramq mqtt-cn-local      # prints `export ...` lines
//! export MQTT_BROKER=... MQTT_INSTANCE_ID=... MQTT_AK_ENV=... MQTT_SK_ENV=... MQTT_OPENAPI_ENDPOINT=...
//! cargo run -p sansmq-apsaramq --example token_mode
//! ```
//!
//! Against the cloud service: `MQTT_AK_ENV` / `MQTT_SK_ENV` hold an AccessKey allowed to call
//! ApsaraMQ's OpenAPI, `--instance` and `--region` (e.g. `cn-hangzhou`) name the instance.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Parser;
use sansmq_apsaramq::dedup::{Deduplicator, MessageIds, Seen};
use sansmq_apsaramq::openapi::{ApplyToken, OpenApiClient, OpenApiEndpoint};
use sansmq_apsaramq::{
    AccessKey, ApsaraMqCallback, ApsaraMqCredentials, ApsaraMqEvents, AuthMode, ClientError,
    MessageKind, QoS, Token, TokenNotice, TokenType, apsaramq_options_with, upload_token,
};
use sansmq_mio::{Client, Message};

use common::QuickStartArgs;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    quick_start: QuickStartArgs,
    /// The OpenAPI endpoint the app server calls: `sansmq broker --apsaramq` prints it.
    #[arg(long, env = "MQTT_OPENAPI_ENDPOINT", conflicts_with = "region")]
    openapi_endpoint: Option<String>,
    /// The region of the cloud instance (its OpenAPI is onsmqtt.<region>.aliyuncs.com).
    #[arg(long)]
    region: Option<String>,
    /// Seconds the first token lives (the service grants 60 s to 30 days). Under 5 minutes, the
    /// broker announces its expiry as soon as the device logs in.
    #[arg(long, default_value_t = 90)]
    token_life: u64,
    /// Messages to publish (each to the parent topic and point to point).
    #[arg(long, default_value_t = 5)]
    messages: usize,
    /// Seconds the device takes over the first message, so the broker (every 5 to 10 s)
    /// re-delivers what it has not acknowledged yet.
    #[arg(long, default_value_t = 7.0)]
    slow_for: f64,
}

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

/// What the device's callback tells the main thread.
#[derive(Debug)]
enum DeviceEvent {
    Notice(TokenNotice),
    Lost(String),
}

/// The device: it processes each message once, however often the broker delivers it.
struct Device {
    dedup: Mutex<Deduplicator>,
    processed: Arc<AtomicUsize>,
    duplicates: Arc<AtomicUsize>,
    slow_for: Duration,
    events: Mutex<Sender<DeviceEvent>>,
}

impl ApsaraMqCallback for Device {
    fn message_arrived(&self, topic: &str, message: &Message, kind: MessageKind) {
        let seen = self
            .dedup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check_message(message);
        let kind = match kind {
            MessageKind::PointToPoint => "p2p",
            _ => "subscribed",
        };
        match seen {
            Seen::Duplicate { key } => {
                self.duplicates.fetch_add(1, Ordering::SeqCst);
                println!(
                    "[device]     re-delivered {kind} message {} on {topic} (DUP {}): already processed, acknowledged only",
                    String::from_utf8_lossy(key.as_bytes()),
                    message.duplicate
                );
            }
            seen => {
                let body = seen.into_body().unwrap_or_default();
                let first = self.processed.fetch_add(1, Ordering::SeqCst) == 0;
                println!(
                    "[device]     processing {kind} message on {topic}: {}",
                    String::from_utf8_lossy(&body)
                );
                if first {
                    println!(
                        "[device]     (slow: {:.0} s on this one; the broker re-delivers what is not acknowledged meanwhile)",
                        self.slow_for.as_secs_f64()
                    );
                    std::thread::sleep(self.slow_for);
                }
            }
        }
    }

    fn token_notice(&self, notice: &TokenNotice) {
        println!("[broker]     {notice}");
        let _ = self
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(DeviceEvent::Notice(notice.clone()));
    }

    fn connection_lost(&self, cause: &ClientError) {
        let _ = self
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(DeviceEvent::Lost(cause.to_string()));
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let endpoint = match (&args.openapi_endpoint, &args.region) {
        (Some(url), _) => OpenApiEndpoint::url(url)?,
        (None, Some(region)) => OpenApiEndpoint::region(region)?,
        (None, None) => {
            return Err("no OpenAPI endpoint: start `sansmq broker --apsaramq mqtt-cn-local` and \
                        export the lines it prints (MQTT_BROKER, MQTT_INSTANCE_ID, MQTT_AK_ENV, \
                        MQTT_SK_ENV, MQTT_OPENAPI_ENDPOINT), or give --region for the cloud service"
                .into());
        }
    };
    let access_key = AccessKey::from_env()?;
    let access_key_id = access_key.id().to_owned();
    let instance = args.quick_start.instance.clone();
    let parent = args.quick_start.parent_topic.clone();
    let app_server = OpenApiClient::new(access_key, endpoint);
    let apply = |life: Duration| -> Result<Token, Box<dyn std::error::Error>> {
        let request = ApplyToken::new(
            &instance,
            [format!("{parent}/#")],
            TokenType::RW,
            SystemTime::now() + life,
        );
        let issued = app_server.apply_token(&request)?;
        println!(
            "[app server] ApplyToken: an RW token on {parent}/# for {} s (request {})",
            life.as_secs(),
            issued.request_id
        );
        Ok(issued.token)
    };

    // 1-2. The app server issues a token; the device logs in with it.
    let token = apply(Duration::from_secs(args.token_life))?;
    let client_id = args.quick_start.client_id()?;
    let credentials = ApsaraMqCredentials::new(
        AuthMode::token(&access_key_id, &instance, [token]),
        client_id.clone(),
    );
    let options = apsaramq_options_with(&args.quick_start.broker_uri()?, &credentials)?;
    let client = Client::new(options)?;
    let (events_tx, events) = mpsc::channel();
    let processed = Arc::new(AtomicUsize::new(0));
    let duplicates = Arc::new(AtomicUsize::new(0));
    client.set_callback(
        ApsaraMqEvents::new(
            Device {
                dedup: Mutex::new(Deduplicator::default()),
                processed: Arc::clone(&processed),
                duplicates: Arc::clone(&duplicates),
                slow_for: Duration::try_from_secs_f64(args.slow_for)?,
                events: Mutex::new(events_tx),
            },
            &parent,
            client_id.clone(),
        )
        // After $SYS/tokenInvalidNotice the credentials stop signing: no reconnect with it.
        .with_credentials(credentials.clone()),
    );
    client.connect()?;
    println!("[device]     connected as {client_id} with the token (user name Token|{access_key_id}|{instance})");
    let topic = format!("{parent}/tokens");
    client.subscribe(&[(&format!("{parent}/#"), QoS::AtLeastOnce)])?;

    // 3. The expiry notice; a fresh token, uploaded without reconnecting.
    let DeviceEvent::Notice(TokenNotice::Expiring { .. }) = next_event(&events, Duration::from_secs(30))? else {
        return Err("expected $SYS/tokenExpireNotice first".into());
    };
    let fresh = apply(Duration::from_secs(3600))?;
    let fresh_value = fresh.value().expose().to_owned();
    upload_token(&client, &credentials, fresh)?;
    println!("[device]     uploaded the fresh token to $SYS/uploadToken; reconnects use it too");

    // 4. Messages with ids; the slow device sees re-deliveries and processes each once.
    let p2p = sansmq_apsaramq::p2p_topic(&parent, &client_id)?.to_string();
    let mut ids = MessageIds::new(&client_id);
    for i in 0..args.messages {
        client.publish(&topic, ids.tag(format!("reading {i}")), QoS::AtLeastOnce, false)?;
        client.publish(&p2p, ids.tag(format!("command {i}")), QoS::AtLeastOnce, false)?;
    }
    println!("[device]     published {} messages with message ids", 2 * args.messages);
    let expected = 2 * args.messages;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while processed.load(Ordering::SeqCst) < expected && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // The re-deliveries of the last messages may still be on their way.
    std::thread::sleep(Duration::from_secs(1));

    // 5. Revoked: the broker tells the device and disconnects it.
    app_server.revoke_token(&instance, &fresh_value)?;
    println!("[app server] RevokeToken");
    loop {
        match next_event(&events, Duration::from_secs(30))? {
            DeviceEvent::Notice(TokenNotice::Invalid { .. }) => {}
            DeviceEvent::Lost(cause) => {
                println!("[device]     disconnected ({cause}); not reconnecting with a revoked token");
                break;
            }
            DeviceEvent::Notice(other) => println!("[device]     also: {other}"),
        }
    }
    let valid = app_server.query_token(&instance, &fresh_value)?;
    println!("[app server] QueryToken: the token is {}", if valid { "valid" } else { "invalid" });
    client.close();

    let processed = processed.load(Ordering::SeqCst);
    let duplicates = duplicates.load(Ordering::SeqCst);
    println!(
        "processed {processed} of {expected} messages once each; {duplicates} re-deliveries were acknowledged without processing them again"
    );
    if processed != expected {
        return Err(format!("processed {processed} messages, expected {expected}").into());
    }
    if valid {
        return Err("the revoked token is still valid".into());
    }
    Ok(())
}

/// The device's next event, within `wait`.
fn next_event(events: &Receiver<DeviceEvent>, wait: Duration) -> Result<DeviceEvent, String> {
    events
        .recv_timeout(wait)
        .map_err(|_| format!("nothing from the broker within {} s", wait.as_secs()))
}
