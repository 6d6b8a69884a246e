//! [`redact_userinfo`]: the one place that hides the password of a URL before text reaches an
//! error, a log line or a panic message.

use std::borrow::Cow;

/// What replaces a password.
pub const REDACTED: &str = "***";

/// `text` with the password of every URL in it replaced by `***`: `mqtt://user:secret@host/t`
/// becomes `mqtt://user:***@host/t`. The user name stays, to tell logins apart.
///
/// A URL runs from its `scheme://` to the next white space or quote; its login ends at the last
/// `@` in that span, so a password holding `/`, `?` or `#` (which would end the authority of a
/// well-formed URL) is still hidden whole. Text without `://` and `@` comes back borrowed.
///
/// ```
/// use sansmq_driver::redact_userinfo;
///
/// assert_eq!(
///     redact_userinfo("-L \"mqtt://alice:s3/cr@t@broker:99999/t\": bad port"),
///     "-L \"mqtt://alice:***@broker:99999/t\": bad port",
/// );
/// assert_eq!(redact_userinfo("tcp://broker:1883"), "tcp://broker:1883");
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
        match span.rfind('@') {
            Some(at) => {
                let (login, address) = span.split_at(at);
                match login.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(REDACTED);
                    }
                    None => out.push_str(login),
                }
                out.push_str(address);
            }
            None => out.push_str(span),
        }
        rest = after_span;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("no url: a:b@c", "no url: a:b@c"),
            ("", ""),
            ("://", "://"),
            ("x://:@", "x://:***@"),
        ] {
            assert_eq!(redact_userinfo(text), expected, "{text}");
        }
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
