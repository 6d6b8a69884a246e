//! [`OpenApiError`]: why an OpenAPI call failed, and [`ServiceError`], the service's own refusal.

use std::fmt;
use std::time::Duration;

/// Why an OpenAPI call failed. Messages never show the AccessKey secret, a token or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenApiError {
    /// The endpoint cannot be used.
    #[error("OpenAPI endpoint {endpoint:?} {reason}")]
    InvalidEndpoint {
        /// The endpoint as given (any user info replaced by `***`).
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request was refused locally, before anything was sent.
    #[error("{operation}: {field} {reason}")]
    InvalidRequest {
        /// The operation, `ApplyToken` say.
        operation: &'static str,
        /// The parameter at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The service answered with an error (boxed: it is by far the largest variant).
    #[error(transparent)]
    Service(Box<ServiceError>),
    /// No answer within the client's timeout.
    #[error("{operation}: no answer from {endpoint} within {timeout:?}")]
    Timeout {
        /// The operation.
        operation: &'static str,
        /// The endpoint's base URL.
        endpoint: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The request could not be sent or its answer not received: DNS, connection, TLS, HTTP.
    #[error("{operation}: cannot reach {endpoint}: {message}")]
    Transport {
        /// The operation.
        operation: &'static str,
        /// The endpoint's base URL.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// An answer arrived but is not what the operation returns.
    #[error("{operation}: unexpected answer (HTTP {status}): {reason}")]
    InvalidResponse {
        /// The operation.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<ServiceError> for OpenApiError {
    fn from(error: ServiceError) -> Self {
        Self::Service(Box::new(error))
    }
}

/// The service refused a request: a non-2xx answer with Alibaba Cloud's error JSON
/// (`{"RequestId":…,"HostId":…,"Code":…,"Message":…,"Recommend":…}`).
///
/// Its `Display` is `<Code> (HTTP <status>): <Message>`, a hint for the common codes
/// ([`hint`](Self::hint)) and the request id, which Alibaba Cloud's support asks for.
///
/// ```
/// use sansmq_apsaramq::openapi::ServiceError;
///
/// let error = ServiceError {
///     status: 400,
///     code: "InvalidTimeStamp.Expired".into(),
///     message: "Specified time stamp or date value is expired.".into(),
///     request_id: Some("5B6B6EE2-3C3F-4F2B-9A43-0C4DF2B8C5D1".into()),
///     host_id: None,
///     recommend: None,
/// };
/// assert!(error.to_string().contains("clock"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The HTTP status.
    pub status: u16,
    /// The error code, `InvalidAccessKeyId.NotFound` say.
    pub code: String,
    /// The service's explanation (anything quoting the signed request is cut off).
    pub message: String,
    /// The request's id.
    pub request_id: Option<String>,
    /// The host that answered.
    pub host_id: Option<String>,
    /// Where the service suggests looking (a diagnosis URL).
    pub recommend: Option<String>,
}

impl ServiceError {
    /// What to do about the common codes: a wrong secret or clock, an unknown or disabled
    /// AccessKey, a missing permission, throttling.
    pub fn hint(&self) -> Option<&'static str> {
        let code = self.code.as_str();
        let family = |name: &str| {
            code == name
                || code
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('.'))
        };
        Some(match code {
            "SignatureDoesNotMatch" => {
                "check the AccessKey secret (MQTT_SK_ENV) and that this machine's clock is right"
            }
            "InvalidAccessKeyId.NotFound" => {
                "no such AccessKey ID: check MQTT_AK_ENV or --access-key-id"
            }
            "InvalidAccessKeyId.Inactive" => "this AccessKey is disabled: enable it or use another",
            "InvalidTimeStamp.Expired" => {
                "the request's time is too far from the service's: correct this machine's clock (UTC)"
            }
            "SignatureNonceUsed" => "a nonce was used twice: send the request again",
            _ if family("Forbidden.RAM") || family("Forbidden") => {
                "this AccessKey's RAM user or role lacks permission for the operation on this instance: grant it in the RAM console"
            }
            _ if family("Throttling") => "too many requests: wait a moment and retry",
            _ => return None,
        })
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", self.code, self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(hint) = self.hint() {
            write!(f, "; {hint}")?;
        }
        if let Some(request_id) = &self.request_id {
            write!(f, " [request id {request_id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServiceError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str) -> ServiceError {
        ServiceError {
            status: 400,
            code: code.to_owned(),
            message: "Explained.".to_owned(),
            request_id: Some("RID-1".to_owned()),
            host_id: None,
            recommend: None,
        }
    }

    #[test]
    fn common_codes_have_hints() {
        for (code, words) in [
            ("SignatureDoesNotMatch", "AccessKey secret"),
            ("InvalidAccessKeyId.NotFound", "no such AccessKey ID"),
            ("InvalidAccessKeyId.Inactive", "disabled"),
            ("Forbidden.RAM", "permission"),
            ("Forbidden", "permission"),
            ("Forbidden.AccessKey", "permission"),
            ("InvalidTimeStamp.Expired", "clock"),
            ("Throttling", "retry"),
            ("Throttling.User", "retry"),
        ] {
            let shown = service(code).to_string();
            assert!(
                shown.starts_with(&format!("{code} (HTTP 400): Explained.; ")),
                "{shown}"
            );
            assert!(shown.contains(words), "{shown}");
            assert!(shown.ends_with(" [request id RID-1]"), "{shown}");
        }
    }

    #[test]
    fn other_codes_have_none() {
        for code in ["InvalidParameter", "ThrottlingX", "ForbiddenX", "Unknown"] {
            assert_eq!(service(code).hint(), None, "{code}");
        }
        assert_eq!(
            service("InvalidParameter").to_string(),
            "InvalidParameter (HTTP 400): Explained. [request id RID-1]"
        );
    }
}
