//! Alibaba Cloud OpenAPI for ApsaraMQ for MQTT: the request [`signature`] (always built) and,
//! with the `openapi` feature, `OpenApiClient`, which issues, checks and revokes tokens
//! (`ApplyToken`, `QueryToken`, `RevokeToken`, API version [`API_VERSION`]) over HTTPS.
//!
//! A token is issued by the service for an instance, a list of topics (resources), what it allows
//! on them ([`TokenType`]: `R`, `W` or both) and an absolute expiry; the client logs in with it in
//! Token mode ([`AuthMode::token`](crate::AuthMode::token)) and may replace it before it expires
//! ([`upload_token_payload`](crate::upload_token_payload)).
//!
//! ```no_run
//! # #[cfg(feature = "openapi")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::{Duration, SystemTime};
//!
//! use sansmq_apsaramq::openapi::{ApplyToken, OpenApiClient, OpenApiEndpoint};
//! use sansmq_apsaramq::{AccessKey, TokenType};
//!
//! let client = OpenApiClient::new(AccessKey::from_env()?, OpenApiEndpoint::region("cn-hangzhou")?);
//! let request = ApplyToken::new(
//!     "mqtt-cn-xxx",
//!     ["parent/device-1"],
//!     TokenType::RW,
//!     SystemTime::now() + Duration::from_secs(3600),
//! );
//! let issued = client.apply_token(&request)?;
//! assert!(client.query_token("mqtt-cn-xxx", issued.token.value().expose())?);
//! client.revoke_token("mqtt-cn-xxx", issued.token.value().expose())?;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "openapi"))]
//! # fn main() {}
//! ```

use crate::credentials::TokenType;

pub mod signature;

#[cfg(feature = "openapi")]
mod client;
#[cfg(feature = "openapi")]
mod endpoint;
#[cfg(feature = "openapi")]
mod error;
#[cfg(feature = "openapi")]
mod request;

#[cfg(feature = "openapi")]
pub use client::OpenApiClient;
#[cfg(feature = "openapi")]
pub use endpoint::OpenApiEndpoint;
#[cfg(feature = "openapi")]
pub use error::{OpenApiError, ServiceError};
#[cfg(feature = "openapi")]
pub use request::{ApplyToken, IssuedToken};

/// The version of ApsaraMQ for MQTT's OpenAPI this crate speaks (the `Version` parameter).
pub const API_VERSION: &str = "2020-04-20";

/// The `Actions` parameter of `ApplyToken` for tokens of type `kind`: `R`, `W`, or `R,W` for
/// [`TokenType::RW`].
///
/// ```
/// use sansmq_apsaramq::TokenType;
/// use sansmq_apsaramq::openapi::actions_param;
///
/// assert_eq!(actions_param(TokenType::RW), "R,W");
/// ```
pub const fn actions_param(kind: TokenType) -> &'static str {
    match kind {
        TokenType::R => "R",
        TokenType::W => "W",
        TokenType::RW => "R,W",
    }
}

/// Reads an `Actions` parameter: `R`, `W`, or both as `R,W` or `W,R`; `None` for anything else
/// (lower case, spaces, repeats, an empty list).
///
/// ```
/// use sansmq_apsaramq::TokenType;
/// use sansmq_apsaramq::openapi::parse_actions;
///
/// assert_eq!(parse_actions("W,R"), Some(TokenType::RW));
/// assert_eq!(parse_actions("r"), None);
/// ```
pub fn parse_actions(actions: &str) -> Option<TokenType> {
    match actions {
        "R" => Some(TokenType::R),
        "W" => Some(TokenType::W),
        "R,W" | "W,R" => Some(TokenType::RW),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        for kind in [TokenType::R, TokenType::W, TokenType::RW] {
            assert_eq!(parse_actions(actions_param(kind)), Some(kind));
        }
        for bad in ["", "RW", "R,", "R,R", "R, W", "w", "X"] {
            assert_eq!(parse_actions(bad), None, "{bad:?}");
        }
    }
}
