//! `sansmq token apply|query|revoke`: ApsaraMQ tokens from Alibaba Cloud's OpenAPI (`ApplyToken`,
//! `QueryToken`, `RevokeToken`), or from the local broker's, for Token-mode logins.
//!
//! `apply` prints only the token on stdout, so that `TOKEN=$(sansmq token apply ...)` works; what
//! else there is to say (the expiry) goes to stderr. The AccessKey comes from `MQTT_AK_ENV` /
//! `MQTT_SK_ENV`, or `--access-key-id` with the secret from `MQTT_SK_ENV`: never a secret on the
//! command line.

use std::io::{BufRead as _, IsTerminal as _};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use sansmq_apsaramq::credentials::{ACCESS_KEY_SECRET_ENV, TokenType};
use sansmq_apsaramq::openapi::{ApplyToken, OpenApiClient, OpenApiEndpoint, OpenApiError};
use sansmq_apsaramq::{AccessKey, openapi};

use crate::exit::Failure;

/// The environment variable that may name the endpoint's URL instead of `--endpoint`.
const ENDPOINT_ENV: &str = "MQTT_OPENAPI_ENDPOINT";

/// `query`: the token is not valid.
pub(crate) const TOKEN_INVALID: u8 = 1;
/// The request could not be made: no AccessKey in the environment, a bad endpoint, arguments the
/// client refuses before sending.
pub(crate) const CANNOT_REQUEST: u8 = 2;
/// The service refused the request (its error code is in the message).
pub(crate) const REFUSED: u8 = 3;
/// No answer: the endpoint cannot be reached, or did not answer in time.
pub(crate) const NO_ANSWER: u8 = 4;
/// The answer could not be read.
pub(crate) const BAD_ANSWER: u8 = 5;

/// The shortest and longest token lifetimes ApsaraMQ issues.
const LIFETIME: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(30 * 24 * 3600));

/// The exit codes, for `--help`.
const EXIT_CODES: &str = "Exit codes: 0 success (query: the token is valid); 1 query: the token \
    is not valid, or the command line is wrong; 2 the request cannot be made (AccessKey \
    environment, endpoint, arguments); 3 the service refused it (the error's code is shown); 4 \
    no answer (unreachable, timed out); 5 an answer that cannot be read.";

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Have a token issued (ApplyToken) and print it on stdout; its expiry goes to stderr.
    #[command(after_help = EXIT_CODES)]
    Apply(ApplyArgs),
    /// Ask whether a token is valid (QueryToken): prints `valid` (exit 0) or `invalid` (exit 1).
    #[command(after_help = EXIT_CODES)]
    Query(TokenRefArgs),
    /// Revoke a token (RevokeToken): clients using it are told and disconnected. Prints nothing.
    #[command(after_help = EXIT_CODES)]
    Revoke(TokenRefArgs),
}

/// Where to send requests and as whom.
#[derive(Debug, Args)]
struct ApiArgs {
    /// The OpenAPI endpoint's URL, http:// or https:// (the local broker's, say:
    /// http://127.0.0.1:8080/). Default: $MQTT_OPENAPI_ENDPOINT.
    #[arg(long, value_name = "URL", conflicts_with = "region")]
    endpoint: Option<String>,

    /// The instance's region (cn-hangzhou, ap-southeast-1, ...): requests go to
    /// https://onsmqtt.<REGION>.aliyuncs.com/.
    #[arg(long, value_name = "REGION")]
    region: Option<String>,

    /// The AccessKey ID, instead of MQTT_AK_ENV. The secret always comes from MQTT_SK_ENV.
    #[arg(long = "access-key-id", value_name = "ID")]
    access_key_id: Option<String>,

    /// The ApsaraMQ instance id.
    #[arg(long, value_name = "ID", env = "MQTT_INSTANCE_ID")]
    instance: String,

    /// Seconds to wait for an answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    timeout: u64,
}

#[derive(Debug, Args)]
struct ApplyArgs {
    #[command(flatten)]
    api: ApiArgs,

    /// A topic the token is for (a parent topic, or a whole topic); repeat it or give a
    /// comma-separated list.
    #[arg(
        long = "resource",
        value_name = "TOPIC",
        required = true,
        value_delimiter = ','
    )]
    resources: Vec<String>,

    /// What the token allows: R (subscribe), W (publish) or RW (both).
    #[arg(long, value_name = "R|W|RW", value_parser = parse_actions)]
    actions: TokenType,

    /// How long the token is valid, 60s to 30d: a number and s, m, h or d (90s, 10m, 2h, 7d).
    #[arg(long = "expire-in", value_name = "DURATION", value_parser = parse_lifetime)]
    expire_in: Duration,
}

#[derive(Debug, Args)]
struct TokenRefArgs {
    #[command(flatten)]
    api: ApiArgs,

    /// The token; `-` reads it from the first line of stdin, which keeps it out of the process
    /// list.
    #[arg(value_name = "TOKEN")]
    token: String,
}

pub(crate) fn run(args: &TokenArgs) -> anyhow::Result<()> {
    match &args.command {
        TokenCommand::Apply(args) => apply(args),
        TokenCommand::Query(args) => query(args),
        TokenCommand::Revoke(args) => revoke(args),
    }
}

fn apply(args: &ApplyArgs) -> anyhow::Result<()> {
    let client = client(&args.api, std::env::var(ENDPOINT_ENV).ok())?;
    let request = ApplyToken::new(
        &args.api.instance,
        args.resources.iter().cloned(),
        args.actions,
        SystemTime::now() + args.expire_in,
    );
    let issued = client.apply_token(&request).map_err(failure)?;
    println!("{}", issued.token.value().expose());
    let expires = jiff::Timestamp::try_from(issued.expire_time)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .unwrap_or_default();
    eprintln!(
        "{} token for {} on {}, expires {expires} (in {}); request id {}",
        args.actions,
        args.resources.join(","),
        args.api.instance,
        show_lifetime(args.expire_in),
        issued.request_id,
    );
    Ok(())
}

fn query(args: &TokenRefArgs) -> anyhow::Result<()> {
    let client = client(&args.api, std::env::var(ENDPOINT_ENV).ok())?;
    let token = token_argument(&args.token)?;
    if client
        .query_token(&args.api.instance, &token)
        .map_err(failure)?
    {
        println!("valid");
        Ok(())
    } else {
        println!("invalid");
        // stdout said it: an empty message prints no error line.
        Err(Failure::error(TOKEN_INVALID, ""))
    }
}

fn revoke(args: &TokenRefArgs) -> anyhow::Result<()> {
    let client = client(&args.api, std::env::var(ENDPOINT_ENV).ok())?;
    let token = token_argument(&args.token)?;
    client
        .revoke_token(&args.api.instance, &token)
        .map_err(failure)?;
    Ok(())
}

/// The client for `api`: the endpoint from `--endpoint`, `--region` or `env_endpoint`
/// (`MQTT_OPENAPI_ENDPOINT`), the AccessKey from the environment.
fn client(api: &ApiArgs, env_endpoint: Option<String>) -> anyhow::Result<OpenApiClient> {
    let endpoint = endpoint(api, env_endpoint)?;
    let key = match &api.access_key_id {
        Some(id) => AccessKey::from_env_secret(id, ACCESS_KEY_SECRET_ENV),
        None => AccessKey::from_env(),
    }
    .map_err(|error| Failure::error(CANNOT_REQUEST, format!("the AccessKey: {error}")))?;
    Ok(OpenApiClient::new(key, endpoint).timeout(Duration::from_secs(api.timeout)))
}

/// `--endpoint URL`, `--region REGION`, or the URL in `MQTT_OPENAPI_ENDPOINT`.
fn endpoint(api: &ApiArgs, env_endpoint: Option<String>) -> anyhow::Result<OpenApiEndpoint> {
    match (&api.endpoint, &api.region, env_endpoint) {
        (Some(url), _, _) => OpenApiEndpoint::url(url).map_err(failure),
        (None, Some(region), _) => OpenApiEndpoint::region(region).map_err(failure),
        (None, None, Some(url)) if !url.is_empty() => OpenApiEndpoint::url(&url)
            .map_err(|error| Failure::error(CANNOT_REQUEST, format!("{ENDPOINT_ENV}: {error}"))),
        _ => Err(Failure::error(
            CANNOT_REQUEST,
            format!(
                "no OpenAPI endpoint: give --region REGION (Alibaba Cloud) or --endpoint URL \
                 (the local broker's, say), or set {ENDPOINT_ENV}"
            ),
        )),
    }
}

/// The token argument, or the first line of stdin for `-`.
fn token_argument(token: &str) -> anyhow::Result<String> {
    if token != "-" {
        return Ok(token.to_owned());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("token (one line):");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the token from stdin")?;
    let line = line.trim();
    if line.is_empty() {
        return Err(Failure::error(
            CANNOT_REQUEST,
            "TOKEN is -, but stdin's first line is empty",
        ));
    }
    Ok(line.to_owned())
}

/// An [`OpenApiError`] with the exit code for its kind.
fn failure(error: OpenApiError) -> anyhow::Error {
    let code = match &error {
        OpenApiError::Service(_) => REFUSED,
        OpenApiError::Timeout { .. } | OpenApiError::Transport { .. } => NO_ANSWER,
        OpenApiError::InvalidResponse { .. } => BAD_ANSWER,
        _ => CANNOT_REQUEST,
    };
    Failure::error(code, error.to_string())
}

/// `--actions`: `R`, `W` or `RW` (`R,W` as the API spells it is taken too).
fn parse_actions(value: &str) -> Result<TokenType, String> {
    match value {
        "RW" => Ok(TokenType::RW),
        other => openapi::parse_actions(other)
            .ok_or_else(|| format!("{other:?} must be R (subscribe), W (publish) or RW (both)")),
    }
}

/// `--expire-in`: a whole number and a unit, s, m, h or d, from 60 s to 30 days.
fn parse_lifetime(value: &str) -> Result<Duration, String> {
    let unit = value
        .chars()
        .last()
        .filter(|c| !c.is_ascii_digit())
        .ok_or_else(|| format!("{value:?} needs a unit: s, m, h or d (90s, 10m, 2h, 7d)"))?;
    let seconds_per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 24 * 3600,
        _ => {
            return Err(format!(
                "{value:?}: the unit must be s, m, h or d (90s, 10m, 2h, 7d)"
            ));
        }
    };
    let number = value.get(..value.len() - 1).unwrap_or_default();
    let lifetime = number
        .parse::<u64>()
        .ok()
        .filter(|_| number.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.checked_mul(seconds_per))
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{value:?} needs a whole number before its unit"))?;
    if lifetime < LIFETIME.0 || lifetime > LIFETIME.1 {
        return Err(format!(
            "{value:?} is outside what ApsaraMQ issues: 60s to 30d"
        ));
    }
    Ok(lifetime)
}

/// A lifetime in its largest whole unit: `7d`, `90m`, `90s`.
fn show_lifetime(lifetime: Duration) -> String {
    let seconds = lifetime.as_secs();
    for (unit, per) in [("d", 24 * 3600), ("h", 3600), ("m", 60)] {
        if seconds % per == 0 {
            return format!("{}{unit}", seconds / per);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// `sansmq token ...` alone.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        token: TokenArgs,
    }

    fn parse(args: &[&str]) -> Result<TokenCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("token").chain(args.iter().copied()))
            .map(|cli| cli.token.command)
    }

    fn code(error: &anyhow::Error) -> u8 {
        crate::exit::code(error)
    }

    #[test]
    fn apply_takes_repeated_and_comma_separated_resources() {
        let command = parse(&[
            "apply",
            "--region",
            "cn-hangzhou",
            "--instance",
            "mqtt-cn-x",
            "--resource",
            "a/1,a/2",
            "--resource",
            "b",
            "--actions",
            "W",
            "--expire-in",
            "2h",
        ])
        .unwrap();
        let TokenCommand::Apply(apply) = command else {
            panic!("{command:?}");
        };
        assert_eq!(apply.resources, ["a/1", "a/2", "b"]);
        assert_eq!(apply.actions, TokenType::W);
        assert_eq!(apply.expire_in, Duration::from_secs(7200));
        assert_eq!(apply.api.instance, "mqtt-cn-x");
        assert_eq!(apply.api.region.as_deref(), Some("cn-hangzhou"));
        assert_eq!(apply.api.timeout, 10);
    }

    #[test]
    fn apply_needs_its_arguments() {
        let full = [
            "apply",
            "--instance",
            "i",
            "--resource",
            "t",
            "--actions",
            "R",
            "--expire-in",
            "1h",
        ];
        assert!(parse(&full).is_ok());
        for (drop, flag) in [
            (1, "--instance"),
            (3, "--resource"),
            (5, "--actions"),
            (7, "--expire-in"),
        ] {
            let args: Vec<&str> = full
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != drop && *i != drop + 1)
                .map(|(_, a)| *a)
                .collect();
            let error = parse(&args).unwrap_err().to_string();
            assert!(error.contains(flag), "{flag}: {error}");
        }
    }

    #[test]
    fn endpoint_and_region_exclude_each_other() {
        let error = parse(&[
            "query",
            "--instance",
            "i",
            "--endpoint",
            "http://127.0.0.1:1/",
            "--region",
            "cn",
            "t",
        ])
        .unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn query_and_revoke_take_the_token_as_an_argument() {
        for name in ["query", "revoke"] {
            let command = parse(&[name, "--instance", "i", "--timeout", "3", "TOK+/="]).unwrap();
            let (TokenCommand::Query(args) | TokenCommand::Revoke(args)) = command else {
                panic!("{command:?}");
            };
            assert_eq!((args.token.as_str(), args.api.timeout), ("TOK+/=", 3));
            assert!(parse(&[name, "--instance", "i"]).is_err());
        }
    }

    #[test]
    fn actions_are_r_w_or_rw() {
        assert_eq!(parse_actions("R"), Ok(TokenType::R));
        assert_eq!(parse_actions("W"), Ok(TokenType::W));
        assert_eq!(parse_actions("RW"), Ok(TokenType::RW));
        assert_eq!(parse_actions("R,W"), Ok(TokenType::RW));
        for bad in ["", "r", "WR", "X", "R W"] {
            let error = parse_actions(bad).unwrap_err();
            assert!(
                error.contains("must be R (subscribe), W (publish) or RW"),
                "{error}"
            );
        }
    }

    #[test]
    fn lifetimes_have_a_unit_and_stay_within_what_apsaramq_issues() {
        for (given, seconds) in [
            ("60s", 60),
            ("90s", 90),
            ("10m", 600),
            ("2h", 7200),
            ("7d", 604_800),
            ("30d", 2_592_000),
        ] {
            assert_eq!(
                parse_lifetime(given),
                Ok(Duration::from_secs(seconds)),
                "{given}"
            );
        }
        for (given, reason) in [
            ("59s", "60s to 30d"),
            ("31d", "60s to 30d"),
            ("0m", "60s to 30d"),
            ("90", "needs a unit"),
            ("", "needs a unit"),
            ("5w", "unit must be"),
            ("1h30m", "whole number"),
            ("5 m", "whole number"),
            ("+5m", "whole number"),
            ("m", "whole number"),
            ("99999999999999999999d", "whole number"),
            ("-5m", "whole number"),
        ] {
            let error = parse_lifetime(given).unwrap_err();
            assert!(error.contains(reason), "{given}: {error}");
        }
    }

    #[test]
    fn lifetimes_show_in_their_largest_whole_unit() {
        for (seconds, shown) in [(604_800, "7d"), (7200, "2h"), (5400, "90m"), (90, "90s")] {
            assert_eq!(show_lifetime(Duration::from_secs(seconds)), shown);
        }
    }

    fn api(endpoint: Option<&str>, region: Option<&str>) -> ApiArgs {
        ApiArgs {
            endpoint: endpoint.map(str::to_owned),
            region: region.map(str::to_owned),
            access_key_id: None,
            instance: "i".to_owned(),
            timeout: 10,
        }
    }

    #[test]
    fn the_endpoint_comes_from_a_flag_or_the_environment() {
        let env = Some("http://127.0.0.1:2/".to_owned());
        let from_flag = endpoint(&api(Some("http://127.0.0.1:1"), None), env.clone()).unwrap();
        assert_eq!(from_flag.as_str(), "http://127.0.0.1:1/");
        let from_region = endpoint(&api(None, Some("cn-shanghai")), env.clone()).unwrap();
        assert_eq!(
            from_region.as_str(),
            "https://onsmqtt.cn-shanghai.aliyuncs.com/"
        );
        let from_env = endpoint(&api(None, None), env).unwrap();
        assert_eq!(from_env.as_str(), "http://127.0.0.1:2/");

        for env in [None, Some(String::new())] {
            let error = endpoint(&api(None, None), env).unwrap_err();
            assert_eq!(code(&error), CANNOT_REQUEST);
            assert!(error.to_string().contains("--region REGION"), "{error}");
        }
        let error = endpoint(&api(None, None), Some("ftp://x/".to_owned())).unwrap_err();
        assert!(
            error.to_string().starts_with("MQTT_OPENAPI_ENDPOINT: "),
            "{error}"
        );
        let error = endpoint(&api(Some("127.0.0.1:1"), None), None).unwrap_err();
        assert_eq!(code(&error), CANNOT_REQUEST);
        assert!(error.to_string().contains("http:// or https://"), "{error}");
        let error = endpoint(&api(None, Some("CN")), None).unwrap_err();
        assert!(error.to_string().contains("region id"), "{error}");
    }

    #[test]
    fn each_kind_of_openapi_error_has_its_exit_code() {
        let service = OpenApiError::from(sansmq_apsaramq::openapi::ServiceError {
            status: 403,
            code: "Forbidden.RAM".to_owned(),
            message: String::new(),
            request_id: None,
            host_id: None,
            recommend: None,
        });
        let timeout = OpenApiError::Timeout {
            operation: "QueryToken",
            endpoint: "http://127.0.0.1:1/".to_owned(),
            timeout: Duration::from_secs(1),
        };
        let transport = OpenApiError::Transport {
            operation: "QueryToken",
            endpoint: "http://127.0.0.1:1/".to_owned(),
            message: "refused".to_owned(),
        };
        let answer = OpenApiError::InvalidResponse {
            operation: "QueryToken",
            status: 200,
            reason: "no".to_owned(),
        };
        let request = OpenApiError::InvalidRequest {
            operation: "ApplyToken",
            field: "Resources",
            reason: "is empty".to_owned(),
        };
        for (error, expected) in [
            (service, REFUSED),
            (timeout, NO_ANSWER),
            (transport, NO_ANSWER),
            (answer, BAD_ANSWER),
            (request, CANNOT_REQUEST),
        ] {
            let shown = error.to_string();
            let failure = failure(error);
            assert_eq!(code(&failure), expected, "{shown}");
            assert_eq!(failure.to_string(), shown);
        }
    }
}
