//! ApsaraMQ mode's watch over the tokens connected clients hold, as the service does it:
//! `$SYS/tokenExpireNotice` (`{"expireTime":<ms since the epoch>,"type":"R|W|RW"}`) a while
//! before a token expires, and `$SYS/tokenInvalidNotice` (`{"code":"…","type":"R|W|RW"}`) when
//! one expired or was revoked, after which the connection is closed. Both are sent unsubscribed,
//! at QoS 0.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mio::Token;
use sansmq::TopicName;
use sansmq::packet::Publish;

use crate::apsaramq::TokenKind;
use crate::connection::Phase;
use crate::server::{CloseReason, Server};
use crate::tokens::TokenRefusal;

/// Where the broker announces a token about to expire.
const EXPIRE_NOTICE_TOPIC: &str = "$SYS/tokenExpireNotice";
/// Where the broker announces a token that is no longer valid.
const INVALID_NOTICE_TOPIC: &str = "$SYS/tokenInvalidNotice";
/// How often held tokens are looked at (revocations are acted on at once).
const WATCH_TICK: Duration = Duration::from_millis(250);

impl Server {
    /// When the token watch next looks, in ApsaraMQ mode.
    pub(crate) fn token_watch_deadline(&self) -> Option<Instant> {
        self.config.apsaramq.as_ref().map(|_| self.next_token_watch)
    }

    /// Looks at the held tokens if the watch is due.
    pub(crate) fn watch_tokens(&mut self, now: Instant) {
        if self.config.apsaramq.is_none() || now < self.next_token_watch {
            return;
        }
        self.next_token_watch = now + WATCH_TICK;
        self.check_held_tokens();
    }

    /// Announces tokens about to expire, and closes the connections holding one that expired or
    /// was revoked, after telling them why.
    pub(crate) fn check_held_tokens(&mut self) {
        let Some(mode) = &self.config.apsaramq else {
            return;
        };
        let now = SystemTime::now();
        let mut invalid: Vec<(Token, TokenKind, TokenRefusal)> = Vec::new();
        for (&token, conn) in &mut self.conns {
            let Phase::Connected(client) = &mut conn.phase else {
                continue;
            };
            let Some(login) = &mut client.grant.token_login else {
                continue;
            };
            let mut notices = Vec::new();
            for held in &mut login.held {
                if let Err(refusal) = held.state(&self.tokens, now) {
                    invalid.push((token, held.kind, refusal));
                    break;
                }
                let Some(expires_at) = held.expires_at else {
                    continue;
                };
                let announce_at = expires_at
                    .checked_sub(mode.token_expire_notice)
                    .unwrap_or(UNIX_EPOCH);
                if !held.expiry_announced && announce_at <= now {
                    held.expiry_announced = true;
                    let expire_time = expires_at
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |since| since.as_millis());
                    tracing::info!(client_id = %client.client_id, kind = %held.kind, "token expires soon");
                    notices.push(notice(
                        EXPIRE_NOTICE_TOPIC,
                        format!(r#"{{"expireTime":{expire_time},"type":"{}"}}"#, held.kind),
                    ));
                }
            }
            for packet in notices.into_iter().flatten() {
                conn.send(packet);
            }
        }
        for (token, kind, refusal) in invalid {
            if let Some(packet) = notice(
                INVALID_NOTICE_TOPIC,
                format!(r#"{{"code":"{}","type":"{kind}"}}"#, refusal.notice_code()),
            ) {
                if let Some(conn) = self.conns.get_mut(&token) {
                    conn.send(packet);
                }
            }
            self.close(token, CloseReason::Policy(format!("{kind} {refusal}")));
        }
    }
}

/// A QoS 0 notice on `topic` (a constant, so always a valid topic name).
fn notice(topic: &'static str, json: String) -> Option<Publish> {
    let topic = TopicName::try_from(topic).ok()?;
    Some(Publish::new(topic, Bytes::from(json)))
}
