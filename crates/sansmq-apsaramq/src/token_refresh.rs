//! Token refresh without reconnecting: `$SYS/uploadToken` (see `shared/apsaramq.md`).

#[cfg(any(feature = "mio", feature = "tokio"))]
use crate::Error;
#[cfg(any(feature = "mio", feature = "tokio"))]
use crate::credentials::ApsaraMqCredentials;
use crate::credentials::Token;

/// The topic ApsaraMQ takes new tokens on.
pub const UPLOAD_TOKEN_TOPIC: &str = "$SYS/uploadToken";

/// Sends `token` to the broker and, once it acknowledged it, makes later reconnects use it.
///
/// The message goes out as a barrier ([`sansmq_mio::Client::publish_barrier`]): QoS 1, and no other
/// PUBLISH or SUBSCRIBE is sent until its PUBACK arrives, as ApsaraMQ requires. Blocks until then,
/// at most the client's time-to-wait. On a timeout or error the old tokens stay in use.
///
/// Needs the `mio` feature (on by default).
#[cfg(feature = "mio")]
pub fn upload_token(
    client: &sansmq_mio::Client,
    credentials: &ApsaraMqCredentials,
    token: Token,
) -> Result<(), Error> {
    let payload = upload_token_payload(&token);
    client
        .publish_barrier(UPLOAD_TOKEN_TOPIC, payload)?
        .wait()?;
    credentials.update_token(token)?;
    Ok(())
}

/// [`upload_token`] for the async client: resolves once the broker acknowledged the upload
/// (bound it with `tokio::time::timeout`); nothing else is sent meanwhile.
///
/// Needs the `tokio` feature (on by default).
#[cfg(feature = "tokio")]
pub async fn upload_token_async(
    client: &sansmq_tokio::Client,
    credentials: &ApsaraMqCredentials,
    token: Token,
) -> Result<(), Error> {
    let payload = upload_token_payload(&token);
    client
        .publish_barrier(UPLOAD_TOKEN_TOPIC, payload)
        .await?
        .await?;
    credentials.update_token(token)?;
    Ok(())
}

/// The JSON ApsaraMQ expects: `{"token":"<token>","type":"R|W|RW"}`.
pub fn upload_token_payload(token: &Token) -> String {
    format!(
        r#"{{"token":"{}","type":"{}"}}"#,
        json_escape(token.value().expose()),
        token.kind().as_str()
    )
}

/// Escapes a string for a JSON string literal (RFC 8259, section 7).
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::TokenType;

    #[test]
    fn payload_is_the_documented_json() {
        let token = Token::new(TokenType::RW, "abc.def=").unwrap();
        assert_eq!(
            upload_token_payload(&token),
            r#"{"token":"abc.def=","type":"RW"}"#
        );
    }

    #[test]
    fn payload_escapes_what_json_needs() {
        let token = Token::new(TokenType::R, "a\"b\\c\n").unwrap();
        assert_eq!(
            upload_token_payload(&token),
            r#"{"token":"a\"b\\c\u000a","type":"R"}"#
        );
    }
}
