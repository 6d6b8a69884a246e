use super::*;

fn login(username: &str, password: &str) -> ProxyLogin {
    ProxyLogin {
        username: username.into(),
        password: password.into(),
    }
}

/// A handshake to broker.example:1883 whose request was written.
fn sent(login: Option<&ProxyLogin>) -> HttpConnectHandshake {
    let mut handshake = HttpConnectHandshake::new("broker.example", 1883, login).unwrap();
    let n = handshake.poll_transmit().len();
    handshake.handle_transmitted(n);
    handshake
}

fn answer(login: Option<&ProxyLogin>, response: &str) -> Result<(), HttpConnectError> {
    sent(login).handle_received(response.as_bytes())
}

#[test]
fn the_request_names_the_broker_in_the_request_line_and_host() {
    let handshake = HttpConnectHandshake::new("broker.example", 1883, None).unwrap();
    assert_eq!(
        handshake.poll_transmit(),
        b"CONNECT broker.example:1883 HTTP/1.1\r\nHost: broker.example:1883\r\n\r\n"
    );
    let v6 = HttpConnectHandshake::new("::1", 8883, None).unwrap();
    assert!(
        v6.poll_transmit()
            .starts_with(b"CONNECT [::1]:8883 HTTP/1.1\r\n")
    );
    assert_eq!(v6.target(), "[::1]:8883");
}

#[test]
fn a_login_goes_as_basic_proxy_authorization() {
    let handshake =
        HttpConnectHandshake::new("b", 1, Some(&login("Aladdin", "open sesame"))).unwrap();
    let request = String::from_utf8(handshake.poll_transmit().to_vec()).unwrap();
    assert!(
        request.contains("\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"),
        "{request}"
    );
    assert!(request.ends_with("\r\n\r\n"));
}

#[test]
fn debug_never_shows_the_request_with_its_password() {
    let handshake = HttpConnectHandshake::new("b", 1, Some(&login("alice", "S3CRET"))).unwrap();
    let shown = format!("{handshake:?}");
    assert!(
        !shown.contains("S3CRET") && !shown.contains("UzNDUkVU"),
        "{shown}"
    );
    assert!(shown.contains("alice"), "{shown}");
}

#[test]
fn partial_writes_are_resumed() {
    let mut handshake = HttpConnectHandshake::new("b", 1, None).unwrap();
    let whole = handshake.poll_transmit().to_vec();
    handshake.handle_transmitted(5);
    assert_eq!(handshake.poll_transmit(), &whole[5..]);
    handshake.handle_transmitted(usize::MAX);
    assert!(handshake.poll_transmit().is_empty());
}

#[test]
fn a_200_in_any_split_connects() {
    let response = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: test\r\n\r\n";
    for split in 1..response.len() {
        let mut handshake = sent(None);
        for piece in response.chunks(split) {
            assert!(!handshake.is_connected());
            handshake.handle_received(piece).unwrap();
        }
        assert!(handshake.is_connected(), "split {split}");
    }
    // HTTP/1.0 proxies answer 1.0.
    let mut handshake = sent(None);
    handshake
        .handle_received(b"HTTP/1.0 200 OK\r\n\r\n")
        .unwrap();
    assert!(handshake.is_connected());
}

#[test]
fn a_407_without_a_login_asks_for_one() {
    let response = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n\r\n";
    assert_eq!(answer(None, response), Err(HttpConnectError::LoginRequired));
}

#[test]
fn a_407_with_a_login_says_it_was_refused_without_the_password() {
    let response = "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n";
    let error = answer(Some(&login("alice", "S3CRET")), response).unwrap_err();
    assert_eq!(
        error,
        HttpConnectError::LoginRefused {
            username: "alice".into()
        }
    );
    assert!(!error.to_string().contains("S3CRET"));
}

#[test]
fn a_403_names_the_forbidden_target() {
    let error = answer(None, "HTTP/1.1 403 Forbidden\r\n\r\n").unwrap_err();
    assert_eq!(
        error,
        HttpConnectError::Forbidden {
            target: "broker.example:1883".into()
        }
    );
}

#[test]
fn a_502_503_or_504_says_the_proxy_cannot_reach_the_broker() {
    for (status, reason) in [
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
    ] {
        let error = answer(None, &format!("HTTP/1.1 {status} {reason}\r\n\r\n")).unwrap_err();
        assert_eq!(
            error,
            HttpConnectError::Unreachable {
                target: "broker.example:1883".into(),
                status,
                reason: reason.into(),
            }
        );
        assert!(
            error
                .to_string()
                .contains("cannot reach the broker broker.example:1883")
        );
    }
}

#[test]
fn another_status_is_a_refusal_with_it() {
    let error = answer(None, "HTTP/1.1 405 Method Not Allowed\r\n\r\n").unwrap_err();
    assert!(
        matches!(error, HttpConnectError::Refused { status: 405, .. }),
        "{error}"
    );
}

#[test]
fn an_answer_that_is_not_http_is_said_so() {
    for answer_bytes in [
        &b"SSH-2.0-OpenSSH\r\n"[..],
        &[5, 0][..],
        b"\x20\x02\x00\x00",
    ] {
        let error = sent(None).handle_received(answer_bytes).unwrap_err();
        assert!(matches!(error, HttpConnectError::NotHttp { .. }), "{error}");
    }
}

#[test]
fn bytes_after_the_200_are_refused() {
    let error = answer(None, "HTTP/1.1 200 OK\r\n\r\n\x20\x02\x00\x00").unwrap_err();
    assert_eq!(error, HttpConnectError::BytesAfterResponse { count: 4 });
    let mut handshake = sent(None);
    handshake
        .handle_received(b"HTTP/1.1 200 OK\r\n\r\n")
        .unwrap();
    assert_eq!(
        handshake.handle_received(b"x"),
        Err(HttpConnectError::BytesAfterResponse { count: 1 })
    );
}

#[test]
fn an_endless_head_is_cut_off() {
    let mut handshake = sent(None);
    handshake.handle_received(b"HTTP/1.1 200 OK\r\n").unwrap();
    let header = b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut result = Ok(());
    for _ in 0..1000 {
        result = handshake.handle_received(header);
        if result.is_err() {
            break;
        }
    }
    assert!(
        matches!(
            result,
            Err(HttpConnectError::ResponseTooLong { .. }) | Err(HttpConnectError::NotHttp { .. })
        ),
        "{result:?}"
    );
}

#[test]
fn a_close_before_the_answer_is_an_error() {
    let mut handshake = sent(None);
    handshake.handle_received(b"HTTP/1.1 2").unwrap();
    assert_eq!(handshake.handle_closed(), HttpConnectError::Closed);
    assert!(!handshake.is_connected());
}

#[test]
fn hosts_and_logins_basic_cannot_carry_are_refused() {
    for host in ["", "a b", "a\r\nX: y", "a/b", "user@host"] {
        assert!(
            matches!(
                HttpConnectHandshake::new(host, 1, None),
                Err(HttpConnectError::InvalidHost { .. })
            ),
            "{host:?}"
        );
    }
    assert!(matches!(
        HttpConnectHandshake::new("b", 1, Some(&login("a:b", "c"))),
        Err(HttpConnectError::InvalidUsername { .. })
    ));
}
