//! [`redact_userinfo`]: the one place that hides the password of a URL before text reaches an
//! error, a log line or a panic message.

use std::borrow::Cow;

/// What replaces a password.
pub const REDACTED: &str = "***";

/// `text` with the password of every URL in it replaced by `***`: `mqtt://user:secret@host/t`
/// becomes `mqtt://user:***@host/t`. The user name stays, to tell logins apart.
///
/// A URL runs from its `scheme://` to the next white space or quote, and its login is what
/// [`split_login`] finds, so a password holding `/`, `?` or `#` (which would end the authority of
/// a well-formed URL) is still hidden whole. Text without `://` and `@` comes back borrowed.
///
/// ```
/// use sansmq_driver::redact_userinfo;
///
/// assert_eq!(
///     redact_userinfo("-L \"mqtt://alice:s3/cr@t@broker:99999/t\": bad port"),
///     "-L \"mqtt://alice:***@broker:99999/t\": bad port",
/// );
/// assert_eq!(redact_userinfo("tcp://broker:1883"), "tcp://broker:1883");
/// // An '@' in a topic is no login.
/// assert_eq!(redact_userinfo("mqtt://h:1883/p2p/GID_a@@@dev"), "mqtt://h:1883/p2p/GID_a@@@dev");
/// ```
pub fn redact_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after_scheme) = rest.split_at(start + "://".len());
        out.push_str(before);
        let span_end = after_scheme
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .unwrap_or(after_scheme.len());
        let (span, after_span) = after_scheme.split_at(span_end);
        match split_login(span) {
            (Some(login), address) => {
                match login.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(REDACTED);
                    }
                    None => out.push_str(login),
                }
                out.push('@');
                out.push_str(address);
            }
            (None, address) => out.push_str(address),
        }
        rest = after_span;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `uri`, a single URI as a user gave it, with its password replaced by `***`, even when it lacks
/// its `scheme://` (`user:secret@host` is shown as `user:***@host`).
///
/// The whole text is the URI, so a password is hidden whole even where it holds white space or
/// quotes, which end a URL in running text ([`redact_userinfo`]).
///
/// ```
/// use sansmq_driver::redact_uri;
///
/// assert_eq!(redact_uri("user:secret@host:1883"), "user:***@host:1883");
/// assert_eq!(redact_uri("tcp://user:secret@host"), "tcp://user:***@host");
/// assert_eq!(redact_uri("mqtt://u:my \"pass\"@h:99999/t"), "mqtt://u:***@h:99999/t");
/// ```
pub fn redact_uri(uri: &str) -> Cow<'_, str> {
    let (scheme, after_scheme) = match uri.find("://") {
        Some(start) => uri.split_at(start + "://".len()),
        None => ("", uri),
    };
    let (Some(login), address) = split_login(after_scheme) else {
        return Cow::Borrowed(uri);
    };
    let user = login.split_once(':').map(|(user, _password)| user);
    let mut out = String::with_capacity(uri.len());
    out.push_str(scheme);
    match user {
        Some(user) => {
            out.push_str(user);
            out.push(':');
            out.push_str(REDACTED);
        }
        None => out.push_str(login),
    }
    out.push('@');
    out.push_str(address);
    Cow::Owned(out)
}

/// Splits what follows a URL's `scheme://` into its login (`user[:password]`, without the `@`)
/// and the rest (`host[:port][/path]`).
///
/// The login ends at the last `@` of the authority (up to the first `/`, `?` or `#`). When the
/// authority has no `@` but looks like `user:password` cut short (a "port" that is not a number)
/// and an `@` follows, the password is taken to hold `/`, `?` or `#`, and the login runs to the
/// last `@`: a parser that gets this wrong would show the password as a host or port.
pub fn split_login(after_scheme: &str) -> (Option<&str>, &str) {
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let authority = after_scheme.get(..authority_end).unwrap_or(after_scheme);
    let at = authority.rfind('@').or_else(|| {
        let cut_short = authority
            .split_once(':')
            .is_some_and(|(_, port)| !port.bytes().all(|b| b.is_ascii_digit()) || port.is_empty());
        if cut_short {
            after_scheme.rfind('@')
        } else {
            None
        }
    });
    match at {
        Some(at) => (
            after_scheme.get(..at),
            after_scheme.get(at + 1..).unwrap_or_default(),
        ),
        None => (None, after_scheme),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_uri_hides_a_password_with_spaces_or_quotes_whole() {
        for (uri, expected) in [
            ("mqtt://u:my pass@h:99999/t", "mqtt://u:***@h:99999/t"),
            ("tcp://u:p\"q@h", "tcp://u:***@h"),
            ("u:it's secret@h:1883", "u:***@h:1883"),
            ("tcp://h:1883", "tcp://h:1883"),
            ("ssl://user@h", "ssl://user@h"),
        ] {
            let redacted = redact_uri(uri);
            assert_eq!(redacted, expected, "{uri}");
            for secret in ["pass", "p\"q", "secret"] {
                assert!(
                    !redacted.contains(secret),
                    "{uri} shows {secret:?}: {redacted}"
                );
            }
        }
    }

    #[test]
    fn hides_the_password_and_keeps_the_rest() {
        for (text, expected) in [
            ("mqtt://u:p@h:1/t", "mqtt://u:***@h:1/t"),
            ("mqtts://u:p:q@h", "mqtts://u:***@h"),
            ("mqtt://u:p@q@h/t", "mqtt://u:***@h/t"),
            ("mqtt://u:pa/ss#x?y@h/t", "mqtt://u:***@h/t"),
            ("mqtt://user@h/t", "mqtt://user@h/t"),
            (
                "see \"tcp://a:b@h\" and 'ssl://c:d@i'.",
                "see \"tcp://a:***@h\" and 'ssl://c:***@i'.",
            ),
            ("mqtt://h/t and a@b", "mqtt://h/t and a@b"),
            ("mqtt://h:1883/p2p/G@@@d", "mqtt://h:1883/p2p/G@@@d"),
            ("mqtt://h/p2p/G@@@d:x", "mqtt://h/p2p/G@@@d:x"),
            ("no url: a:b@c", "no url: a:b@c"),
            ("", ""),
            ("://", "://"),
            ("x://:@", "x://:***@"),
        ] {
            assert_eq!(redact_userinfo(text), expected, "{text}");
        }
    }

    #[test]
    fn the_login_ends_at_the_last_at_sign_of_the_authority() {
        assert_eq!(split_login("u:p@h:1/t"), (Some("u:p"), "h:1/t"));
        assert_eq!(split_login("u:p@q@h"), (Some("u:p@q"), "h"));
        assert_eq!(split_login("u:pa/ss@h/t"), (Some("u:pa/ss"), "h/t"));
        assert_eq!(split_login("u:@h"), (Some("u:"), "h"));
        assert_eq!(split_login("h:1883/a@b"), (None, "h:1883/a@b"));
        assert_eq!(split_login("h/a@b"), (None, "h/a@b"));
        assert_eq!(split_login("h"), (None, "h"));
    }

    #[test]
    fn a_uri_without_its_scheme_is_redacted_too() {
        assert_eq!(redact_uri("u:S3CRET@h/t"), "u:***@h/t");
        assert_eq!(redact_uri("u:S3/CRET@h"), "u:***@h");
        assert_eq!(redact_uri("h:1883"), "h:1883");
        assert_eq!(redact_uri("mqtt://u:S3CRET@h"), "mqtt://u:***@h");
    }

    #[test]
    fn never_returns_the_password_of_any_url() {
        let secret = "S3CRET";
        for url in [
            format!("mqtt://user:{secret}@host:99999/t"),
            format!("http://user:{secret}@h/t"),
            format!("mqtt://user:{secret}/x@h"),
            format!("mqtt://user:{secret}"),
            format!("prefix mqtt://a:{secret}@h mqtt://b:{secret}@i suffix"),
        ] {
            let redacted = redact_userinfo(&url);
            // A URL without '@' has no login to hide: its text stays (a bare `user:secret` is
            // a host and port to any parser).
            if url.contains('@') {
                assert!(!redacted.contains(secret), "{url} -> {redacted}");
            }
        }
    }
}
