//! The quick-start in Token mode: the login carries tokens issued by your server (OpenAPI
//! `ApplyToken`) instead of a signature, token notices from the broker are printed, and
//! `--refresh TYPE=TOKEN` uploads a new token over `$SYS/uploadToken` without reconnecting (nothing
//! else is sent until the broker acknowledges it; later reconnects use the new token).
//!
//! ```text
//! export MQTT_AK_ENV=<AccessKey ID>     # Token mode needs only the AccessKey ID
//! cargo run -p sansmq-apsaramq --example token_mode -- --instance mqtt-cn-xxx \
//!     --token RW=<token> [--refresh RW=<new token>]
//! ```

mod common;

use std::process::ExitCode;

use clap::Parser;
use sansmq_apsaramq::credentials::{Token, TokenType};
use sansmq_apsaramq::{ApsaraMqCredentials, AuthMode, upload_token};

use common::QuickStartArgs;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    quick_start: QuickStartArgs,
    /// A token for the login, TYPE=TOKEN with TYPE R, W or RW; repeat for several.
    #[arg(long = "token", required = true, value_parser = parse_token)]
    tokens: Vec<Token>,
    /// A token to upload once the messages are sent.
    #[arg(long, value_parser = parse_token)]
    refresh: Option<Token>,
}

fn parse_token(arg: &str) -> Result<Token, String> {
    let (kind, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("expected TYPE=TOKEN, got {arg:?}"))?;
    let kind = match kind {
        "R" => TokenType::R,
        "W" => TokenType::W,
        "RW" => TokenType::RW,
        other => return Err(format!("token type {other:?}: use R, W or RW")),
    };
    Token::new(kind, value).map_err(|e| e.to_string())
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

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let access_key_id = std::env::var("MQTT_AK_ENV").map_err(
        |_| "set MQTT_AK_ENV to your AccessKey ID (Token mode signs nothing with the secret)",
    )?;
    // Token mode: user name `Token|<AccessKeyId>|<InstanceId>`, password `<type>|<token>|...`.
    let credentials = ApsaraMqCredentials::new(
        AuthMode::token(access_key_id, &args.quick_start.instance, args.tokens),
        args.quick_start.client_id()?,
    );
    let refresh = args.refresh;
    let kept = credentials.clone();
    common::quick_start::run(&args.quick_start, credentials, move |client| {
        if let Some(token) = refresh {
            upload_token(client, &kept, token)?;
            println!("token uploaded; reconnects use it from now on");
        }
        Ok(())
    })
}
