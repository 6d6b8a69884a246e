//! What each operation sends (its own parameters, checked) and what it answers (the JSON read
//! into typed values, or the service's error).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::actions_param;
use super::error::{OpenApiError, ServiceError};
use super::signature::percent_encode;
use crate::credentials::{Token, TokenType};

/// An `ApplyToken` request: a token for `resources` (topics) on `instance_id`, allowing
/// `actions`, valid until `expire_time`.
///
/// The service issues tokens valid for 60 seconds to 30 days; the client refuses, before
/// sending, an empty instance id or resource list, a resource that is empty or contains `,` (the
/// list's separator), and an expiry that is not in the future.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyToken {
    /// The instance the token is for.
    pub instance_id: String,
    /// The topics it may be used on: parent topics or whole topics, joined by `,` on the wire.
    pub resources: Vec<String>,
    /// What it allows: `R` (subscribe), `W` (publish) or both (`R,W` on the wire).
    pub actions: TokenType,
    /// When it stops being valid (sent in milliseconds since the Unix epoch).
    pub expire_time: SystemTime,
}

impl ApplyToken {
    /// A request for a token on `resources` of `instance_id`.
    pub fn new(
        instance_id: impl Into<String>,
        resources: impl IntoIterator<Item = impl Into<String>>,
        actions: TokenType,
        expire_time: SystemTime,
    ) -> Self {
        Self {
            instance_id: instance_id.into(),
            resources: resources.into_iter().map(Into::into).collect(),
            actions,
            expire_time,
        }
    }

    /// The operation's own parameters, checked against `now`.
    pub(super) fn call(&self, now: SystemTime) -> Result<Call, OpenApiError> {
        const OPERATION: &str = "ApplyToken";
        let refuse = |field, reason: &str| OpenApiError::InvalidRequest {
            operation: OPERATION,
            field,
            reason: reason.to_owned(),
        };
        check_instance(OPERATION, &self.instance_id)?;
        if self.resources.is_empty() {
            return Err(refuse("Resources", "is empty: name at least one topic"));
        }
        for resource in &self.resources {
            if resource.is_empty() {
                return Err(refuse("Resources", "has an empty topic"));
            }
            if resource.contains(',') {
                return Err(OpenApiError::InvalidRequest {
                    operation: OPERATION,
                    field: "Resources",
                    reason: format!("topic {resource:?} contains ',', the list's separator"),
                });
            }
        }
        let expire_millis = match self.expire_time.duration_since(UNIX_EPOCH) {
            Ok(since_epoch) if self.expire_time > now => since_epoch.as_millis(),
            _ => {
                return Err(refuse(
                    "ExpireTime",
                    "is not in the future (it is a point in time: now plus the token's lifetime)",
                ));
            }
        };
        Ok(Call {
            operation: OPERATION,
            params: vec![
                ("InstanceId", self.instance_id.clone()),
                ("Resources", self.resources.join(",")),
                ("Actions", actions_param(self.actions).to_owned()),
                ("ExpireTime", expire_millis.to_string()),
            ],
            secrets: Vec::new(),
        })
    }
}

/// A token the service issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token, typed by the actions it was asked for, ready for
    /// [`AuthMode::token`](crate::AuthMode::token) or an upload. `Debug` does not show it.
    pub token: Token,
    /// The request's id, as the service logged it.
    pub request_id: String,
    /// When it expires: the expiry that was asked for.
    pub expire_time: SystemTime,
}

/// One operation, ready to be signed and sent.
pub(super) struct Call {
    /// `ApplyToken`, `QueryToken` or `RevokeToken`: the `Action` parameter.
    pub(super) operation: &'static str,
    /// Its own parameters, beside the common ones.
    pub(super) params: Vec<(&'static str, String)>,
    /// Values no error message may show (a token), as given.
    pub(super) secrets: Vec<String>,
}

impl std::fmt::Debug for Call {
    /// The operation and its parameters' names: the values may be tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Call")
            .field("operation", &self.operation)
            .field("params", &names)
            .finish_non_exhaustive()
    }
}

/// `QueryToken` or `RevokeToken` of `token` on `instance_id`.
pub(super) fn token_call(
    operation: &'static str,
    instance_id: &str,
    token: &str,
) -> Result<Call, OpenApiError> {
    check_instance(operation, instance_id)?;
    if token.is_empty() {
        return Err(OpenApiError::InvalidRequest {
            operation,
            field: "Token",
            reason: "is empty".to_owned(),
        });
    }
    Ok(Call {
        operation,
        params: vec![
            ("InstanceId", instance_id.to_owned()),
            ("Token", token.to_owned()),
        ],
        secrets: vec![token.to_owned()],
    })
}

/// Refuses an instance id that is empty or has spaces or control characters.
fn check_instance(operation: &'static str, instance_id: &str) -> Result<(), OpenApiError> {
    let reason = if instance_id.is_empty() {
        "is empty"
    } else if instance_id
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        "contains spaces or control characters"
    } else {
        return Ok(());
    };
    Err(OpenApiError::InvalidRequest {
        operation,
        field: "InstanceId",
        reason: format!("{instance_id:?} {reason}"),
    })
}

/// The longest part of an unexpected body an error quotes.
const BODY_EXCERPT: usize = 200;

/// Reads an answer: the JSON object of a 2xx answer, or the service's error.
fn answer(call: &Call, status: u16, body: &str) -> Result<Map<String, Value>, OpenApiError> {
    let invalid = |reason: String| OpenApiError::InvalidResponse {
        operation: call.operation,
        status,
        reason,
    };
    let json = serde_json::from_str::<Value>(body);
    if !(200..300).contains(&status) {
        let error = json
            .ok()
            .and_then(|json| service_error(status, &json, call));
        return Err(match error {
            Some(error) => OpenApiError::from(error),
            None => invalid(format!(
                "an error status without an OpenAPI error: {}",
                excerpt(&redact(body, call))
            )),
        });
    }
    match json {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(invalid(format!(
            "not a JSON object: {}",
            excerpt(&redact(body, call))
        ))),
    }
}

/// The service's error in `json`, if it is one (it has a `Code`).
fn service_error(status: u16, json: &Value, call: &Call) -> Option<ServiceError> {
    let text = |name: &str| json.get(name).and_then(Value::as_str).map(str::to_owned);
    Some(ServiceError {
        status,
        code: text("Code")?,
        message: redact(&text("Message").unwrap_or_default(), call),
        request_id: text("RequestId"),
        host_id: text("HostId"),
        recommend: text("Recommend"),
    })
}

/// `text` with what may not be shown cut out: the string to sign some services quote on a
/// signature mismatch (it holds every parameter), and the call's secrets in any encoding.
fn redact(text: &str, call: &Call) -> String {
    let mut text = match text.to_ascii_lowercase().find("string to sign") {
        Some(at) => format!(
            "{}(string to sign not shown)",
            text.get(..at).unwrap_or_default()
        ),
        None => text.to_owned(),
    };
    for secret in &call.secrets {
        let once = percent_encode(secret);
        for form in [percent_encode(&once), once, secret.clone()] {
            if !form.is_empty() {
                text = text.replace(&form, "***");
            }
        }
    }
    text
}

/// At most [`BODY_EXCERPT`] characters of `text`, marked when cut.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(BODY_EXCERPT) {
        Some((at, _)) => format!("{}...", text.get(..at).unwrap_or_default()),
        None => text.to_owned(),
    }
}

/// A string member of an answer.
fn field<'a>(
    call: &Call,
    status: u16,
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, OpenApiError> {
    object
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| OpenApiError::InvalidResponse {
            operation: call.operation,
            status,
            reason: format!("no {name} string in the answer"),
        })
}

/// `ApplyToken`'s answer: `{"RequestId":"…","Token":"…"}`.
pub(super) fn parse_apply(
    call: &Call,
    request: &ApplyToken,
    status: u16,
    body: &str,
) -> Result<IssuedToken, OpenApiError> {
    let object = answer(call, status, body)?;
    let request_id = field(call, status, &object, "RequestId")?.to_owned();
    let value = field(call, status, &object, "Token")?;
    let token =
        Token::new(request.actions, value).map_err(|error| OpenApiError::InvalidResponse {
            operation: call.operation,
            status,
            reason: format!("the issued token cannot be used: {error}"),
        })?;
    Ok(IssuedToken {
        token,
        request_id,
        expire_time: request.expire_time,
    })
}

/// `QueryToken`'s answer: `{"RequestId":"…","TokenStatus":true|false}`.
pub(super) fn parse_query(call: &Call, status: u16, body: &str) -> Result<bool, OpenApiError> {
    let object = answer(call, status, body)?;
    field(call, status, &object, "RequestId")?;
    object
        .get("TokenStatus")
        .and_then(Value::as_bool)
        .ok_or_else(|| OpenApiError::InvalidResponse {
            operation: call.operation,
            status,
            reason: "no TokenStatus true or false in the answer".to_owned(),
        })
}

/// `RevokeToken`'s answer: `{"RequestId":"…"}`.
pub(super) fn parse_revoke(call: &Call, status: u16, body: &str) -> Result<(), OpenApiError> {
    let object = answer(call, status, body)?;
    field(call, status, &object, "RequestId")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const TOKEN: &str = "LzMT+XLFl5s/YWJ/MlDz4t/Lq5HC1iGU1P28HAMaxYxn8aQbALNtml7QZKl9L9kPe6LqUb95tEVo+zUqOogs1q5EBxT8BlrE";

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn apply() -> ApplyToken {
        ApplyToken::new(
            "mqtt-cn-test",
            ["parent/a", "parent/b/#"],
            TokenType::RW,
            now() + Duration::from_secs(3600),
        )
    }

    fn invalid_field(error: OpenApiError) -> (&'static str, String) {
        match error {
            OpenApiError::InvalidRequest { field, reason, .. } => (field, reason),
            other => panic!("not InvalidRequest: {other:?}"),
        }
    }

    #[test]
    fn apply_token_params() {
        let call = apply().call(now()).unwrap();
        assert_eq!(call.operation, "ApplyToken");
        assert_eq!(
            call.params,
            [
                ("InstanceId", "mqtt-cn-test".to_owned()),
                ("Resources", "parent/a,parent/b/#".to_owned()),
                ("Actions", "R,W".to_owned()),
                ("ExpireTime", "1700003600000".to_owned()),
            ]
        );
        for (kind, actions) in [(TokenType::R, "R"), (TokenType::W, "W")] {
            let request = ApplyToken {
                actions: kind,
                ..apply()
            };
            assert_eq!(request.call(now()).unwrap().params[2].1, actions);
        }
    }

    #[test]
    fn apply_token_checks_its_fields() {
        let past = ApplyToken {
            expire_time: now(),
            ..apply()
        };
        let (field, reason) = invalid_field(past.call(now()).unwrap_err());
        assert_eq!(field, "ExpireTime");
        assert!(reason.contains("not in the future"), "{reason}");
        let before_epoch = ApplyToken {
            expire_time: UNIX_EPOCH - Duration::from_secs(1),
            ..apply()
        };
        assert_eq!(
            invalid_field(
                before_epoch
                    .call(UNIX_EPOCH - Duration::from_secs(9))
                    .unwrap_err()
            )
            .0,
            "ExpireTime"
        );

        for (resources, reason) in [
            (vec![], "at least one topic"),
            (vec!["a".to_owned(), String::new()], "empty topic"),
            (vec!["a,b".to_owned()], "\"a,b\" contains ','"),
        ] {
            let request = ApplyToken {
                resources,
                ..apply()
            };
            let (field, got) = invalid_field(request.call(now()).unwrap_err());
            assert_eq!(field, "Resources");
            assert!(got.contains(reason), "{got}");
        }
        for instance in ["", "mqtt cn", "mqtt\n"] {
            let request = ApplyToken {
                instance_id: instance.to_owned(),
                ..apply()
            };
            assert_eq!(
                invalid_field(request.call(now()).unwrap_err()).0,
                "InstanceId"
            );
        }
    }

    #[test]
    fn token_calls_keep_the_token_secret() {
        let call = token_call("QueryToken", "mqtt-cn-test", TOKEN).unwrap();
        assert_eq!(
            call.params,
            [
                ("InstanceId", "mqtt-cn-test".to_owned()),
                ("Token", TOKEN.to_owned())
            ]
        );
        assert_eq!(call.secrets, [TOKEN]);
        let shown = format!("{call:?}");
        assert!(
            shown.contains("QueryToken") && shown.contains("\"Token\""),
            "{shown}"
        );
        assert!(!shown.contains(TOKEN), "{shown}");
        let error = token_call("RevokeToken", "mqtt-cn-test", "").unwrap_err();
        assert_eq!(error.to_string(), "RevokeToken: Token is empty");
    }

    #[test]
    fn answers_are_read() {
        let call = apply().call(now()).unwrap();
        let issued = parse_apply(
            &call,
            &apply(),
            200,
            &format!(r#"{{"RequestId":"RID-1","Token":"{TOKEN}"}}"#),
        )
        .unwrap();
        assert_eq!(issued.token.value().expose(), TOKEN);
        assert_eq!(issued.token.kind(), TokenType::RW);
        assert_eq!(issued.request_id, "RID-1");
        assert_eq!(issued.expire_time, apply().expire_time);
        assert!(!format!("{issued:?}").contains(TOKEN));

        let query = token_call("QueryToken", "mqtt-cn-test", TOKEN).unwrap();
        assert!(parse_query(&query, 200, r#"{"RequestId":"R","TokenStatus":true}"#).unwrap());
        assert!(!parse_query(&query, 200, r#"{"RequestId":"R","TokenStatus":false}"#).unwrap());
        let revoke = token_call("RevokeToken", "mqtt-cn-test", TOKEN).unwrap();
        parse_revoke(&revoke, 200, r#"{"RequestId":"R"}"#).unwrap();
    }

    #[test]
    fn malformed_answers_are_refused() {
        let call = apply().call(now()).unwrap();
        for (body, reason) in [
            ("", "not a JSON object"),
            ("[1]", "not a JSON object"),
            (r#"{"RequestId":"R"}"#, "no Token string"),
            (r#"{"Token":"abc"}"#, "no RequestId string"),
            (r#"{"RequestId":"R","Token":""}"#, "cannot be used"),
            (r#"{"RequestId":"R","Token":"a|b"}"#, "cannot be used"),
        ] {
            match parse_apply(&call, &apply(), 200, body).unwrap_err() {
                OpenApiError::InvalidResponse {
                    status: 200,
                    reason: got,
                    ..
                } => {
                    assert!(got.contains(reason), "{body}: {got}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        let query = token_call("QueryToken", "mqtt-cn-test", TOKEN).unwrap();
        for body in [
            r#"{"RequestId":"R"}"#,
            r#"{"RequestId":"R","TokenStatus":"true"}"#,
            r#"{"TokenStatus":true}"#,
        ] {
            assert!(
                matches!(
                    parse_query(&query, 200, body),
                    Err(OpenApiError::InvalidResponse { .. })
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn service_errors_are_typed() {
        let call = apply().call(now()).unwrap();
        let body = r#"{"RequestId":"RID-9","HostId":"onsmqtt.cn-hangzhou.aliyuncs.com","Code":"InvalidAccessKeyId.NotFound","Message":"Specified access key is not found.","Recommend":"https://example.invalid/diagnose"}"#;
        let error = parse_apply(&call, &apply(), 404, body).unwrap_err();
        assert_eq!(
            error,
            OpenApiError::from(ServiceError {
                status: 404,
                code: "InvalidAccessKeyId.NotFound".to_owned(),
                message: "Specified access key is not found.".to_owned(),
                request_id: Some("RID-9".to_owned()),
                host_id: Some("onsmqtt.cn-hangzhou.aliyuncs.com".to_owned()),
                recommend: Some("https://example.invalid/diagnose".to_owned()),
            })
        );
        assert!(error.to_string().contains("check MQTT_AK_ENV"), "{error}");
    }

    #[test]
    fn error_statuses_without_an_error_body_are_invalid_answers() {
        let call = apply().call(now()).unwrap();
        let long = "x".repeat(1000);
        for body in [
            "<html>bad gateway</html>",
            r#"{"RequestId":"R"}"#,
            long.as_str(),
        ] {
            match parse_apply(&call, &apply(), 502, body).unwrap_err() {
                OpenApiError::InvalidResponse {
                    status: 502,
                    reason,
                    ..
                } => {
                    assert!(reason.contains("without an OpenAPI error"), "{reason}");
                    assert!(reason.len() < 300, "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn error_messages_never_show_the_token() {
        let call = token_call("RevokeToken", "mqtt-cn-test", TOKEN).unwrap();
        let encoded = percent_encode(TOKEN);
        let twice = percent_encode(&encoded);
        let body = serde_json::json!({
            "RequestId": "R",
            "Code": "InvalidParameter",
            "Message": format!("token {TOKEN} or {encoded} or {twice} is bad"),
        })
        .to_string();
        let shown = parse_revoke(&call, 400, &body).unwrap_err().to_string();
        assert!(shown.contains("token *** or *** or *** is bad"), "{shown}");
        let body = serde_json::json!({
            "RequestId": "R",
            "Code": "SignatureDoesNotMatch",
            "Message": format!("Specified signature is not matched with our calculation. server string to sign is:GET&%2F&Token%3D{twice}"),
        })
        .to_string();
        let shown = parse_revoke(&call, 400, &body).unwrap_err().to_string();
        assert!(
            shown.contains("our calculation. server (string to sign not shown)"),
            "{shown}"
        );
        assert!(!shown.contains("GET&"), "{shown}");
        let shown = parse_revoke(&call, 500, &format!("oops {TOKEN}"))
            .unwrap_err()
            .to_string();
        assert!(
            !shown.contains(TOKEN) && shown.contains("oops ***"),
            "{shown}"
        );
    }
}
