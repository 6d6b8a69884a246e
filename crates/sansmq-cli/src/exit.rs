//! Exit codes and error lines, as mosquitto_pub and mosquitto_sub have them: 0 on success, the
//! CONNACK return code when the broker refuses the connection, 7 when it closes the connection
//! before CONNACK, 8 when TLS fails, 19 when no CONNACK comes, 27 when `sub -W` times out, 255
//! when `sub` is stopped (`-W`, a signal) before CONNACK, 1 for anything else (usage errors
//! included). Every error is one line on stderr, `sansmq: error: what failed: why; what to try`.

use std::fmt;
use std::process::ExitCode;

/// `sub -W` ran out of time (mosquitto_sub's "Timed out waiting for message").
pub(crate) const TIMED_OUT: u8 = 27;

/// The broker closed the connection before CONNACK (mosquitto's `MOSQ_ERR_CONN_LOST`).
pub(crate) const CONNECTION_LOST: u8 = 7;

/// No CONNACK within the keep-alive (mosquitto's `MOSQ_ERR_KEEPALIVE`).
pub(crate) const NO_CONNACK: u8 = 19;

/// The TLS handshake failed (mosquitto's `MOSQ_ERR_TLS`).
pub(crate) const TLS_FAILED: u8 = 8;

/// `sub` stopped by `-W` or a signal before CONNACK (mosquitto_sub's `exit(-1)`).
pub(crate) const NOT_CONNECTED: u8 = 255;

/// Any other failure.
const FAILURE: u8 = 1;

/// An error with its own exit code; the rest of the message chain says what happened.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn error(code: u8, message: impl Into<String>) -> anyhow::Error {
        Self {
            code,
            message: message.into(),
        }
        .into()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code for `error`: the first [`Failure`] or broker refusal in its chain, else 1.
pub(crate) fn code(error: &anyhow::Error) -> u8 {
    error
        .chain()
        .find_map(|cause| {
            if let Some(failure) = cause.downcast_ref::<Failure>() {
                return Some(failure.code);
            }
            match cause.downcast_ref::<sansmq_mio::Error>() {
                Some(sansmq_mio::Error::Refused(code)) => Some(*code as u8),
                _ => None,
            }
        })
        .unwrap_or(FAILURE)
}

/// The flags whose values hold a secret: clap's "invalid value 'VALUE' for ..." must not echo
/// them.
const SECRET_FLAGS: [&str; 4] = ["--pw", "--access-key", "--token", "--keypass"];

/// Prints `error` as one line (unless `quiet`, `--quiet`, or `error` is a [`Failure`] without a
/// message, whose command already said what happened) and returns its exit code.
pub(crate) fn report(error: &anyhow::Error, quiet: bool) -> ExitCode {
    let said = error
        .downcast_ref::<Failure>()
        .is_some_and(|failure| failure.message.is_empty());
    if !quiet && !said {
        eprintln!("sansmq: error: {}", one_line(&format!("{error:#}")));
    }
    ExitCode::from(code(error))
}

/// A command line clap refused, or `--help` / `--version`, which print on stdout and succeed
/// — except for `pub` and `sub` (`mosquitto_like`), which exit with 1 there as mosquitto_pub and
/// mosquitto_sub do.
pub(crate) fn usage(error: &clap::Error, mosquitto_like: bool) -> ExitCode {
    if !error.use_stderr() {
        let _ = error.print();
        return match mosquitto_like {
            true => ExitCode::from(FAILURE),
            false => ExitCode::SUCCESS,
        };
    }
    if let Some(what) = secret_value_refused(error) {
        eprintln!("sansmq: error: {} (see --help)", one_line(&what));
        return ExitCode::from(FAILURE);
    }
    // clap's first paragraph says what is wrong (perhaps over several lines); usage follows.
    let rendered = error.render().to_string();
    let what = one_line(
        &rendered
            .lines()
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let what = what.strip_prefix("error: ").unwrap_or(&what);
    eprintln!("sansmq: error: {what} (see --help)");
    ExitCode::from(FAILURE)
}

/// For a value of a [`SECRET_FLAGS`] flag that its parser refused: clap's message without the
/// value (`invalid value for '--access-key <ID:SECRET>': expected ID:SECRET`).
fn secret_value_refused(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::ValueValidation && error.kind() != ErrorKind::InvalidValue {
        return None;
    }
    let Some(ContextValue::String(flag)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let name = flag.split_whitespace().next().unwrap_or_default();
    if !SECRET_FLAGS.contains(&name) {
        return None;
    }
    let why = std::error::Error::source(error)
        .map(|source| format!(": {source}"))
        .unwrap_or_default();
    Some(format!(
        "invalid value for '{flag}'{why} (the value is not shown: it holds a secret)"
    ))
}

/// A bug must still end in one line, not a backtrace.
pub(crate) fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!(
            "sansmq: error: internal error{location}: {}; please report it",
            one_line(&what)
        );
    }));
}

/// Joins the lines of a multi-line message (a TLS or OS error, say) so the error stays one line,
/// and hides the password of any URL in it: the last guard before stderr.
fn one_line(message: &str) -> String {
    let joined = message.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    sansmq_mio::redact_userinfo(&joined).into_owned()
}

#[cfg(test)]
mod tests {
    use sansmq::packet::ConnectReturnCode;

    use super::*;

    #[test]
    fn a_refusal_exits_with_its_return_code_even_under_context() {
        let error = anyhow::Error::from(sansmq_mio::Error::Refused(
            ConnectReturnCode::BadUserNameOrPassword,
        ))
        .context("connecting to tcp://localhost:1883");
        assert_eq!(code(&error), 4);
    }

    #[test]
    fn a_failure_carries_its_code_and_others_exit_1() {
        assert_eq!(code(&Failure::error(TIMED_OUT, "timed out")), 27);
        assert_eq!(code(&anyhow::anyhow!("no topic")), 1);
    }

    #[test]
    fn multi_line_messages_become_one_line() {
        assert_eq!(one_line("a\n  b\nc"), "a b c");
    }

    #[test]
    fn no_line_shows_the_password_of_a_url() {
        assert_eq!(
            one_line("cannot use \"mqtt://u:S3CRET@h/t\"\nat all"),
            "cannot use \"mqtt://u:***@h/t\" at all"
        );
    }
}
