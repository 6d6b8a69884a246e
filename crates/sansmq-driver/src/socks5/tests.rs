//! The handshake against scripted proxy answers: every reply code, the login, any split.

use super::*;

fn login(user: &str, password: &str) -> ProxyLogin {
    ProxyLogin {
        username: user.into(),
        password: password.into(),
    }
}

/// Takes what the handshake has to send.
fn sent(handshake: &mut Socks5Handshake) -> Vec<u8> {
    let bytes = handshake.poll_transmit().to_vec();
    handshake.handle_transmitted(bytes.len());
    bytes
}

/// A handshake without login whose greeting was answered "no authentication" and whose
/// CONNECT went out.
fn at_reply(host: &str) -> Socks5Handshake {
    let mut handshake = Socks5Handshake::new(host, 1883, None).unwrap();
    sent(&mut handshake);
    handshake.handle_received(&[5, 0]).unwrap();
    sent(&mut handshake);
    handshake
}

#[test]
fn a_host_name_goes_as_a_domain_name_for_the_proxy_to_resolve() {
    let mut handshake = Socks5Handshake::new("broker.example", 8883, None).unwrap();
    assert_eq!(sent(&mut handshake), [5, 1, 0]);
    assert!(
        handshake.poll_transmit().is_empty(),
        "one request at a time"
    );
    handshake.handle_received(&[5, 0]).unwrap();
    let mut expected = vec![5, 1, 0, 3, 14];
    expected.extend_from_slice(b"broker.example");
    expected.extend_from_slice(&8883u16.to_be_bytes());
    assert_eq!(sent(&mut handshake), expected);
    assert!(handshake.bound_address().is_none());
}

#[test]
fn ip_addresses_go_as_addresses() {
    let mut v4 = Socks5Handshake::new("10.1.2.3", 1, None).unwrap();
    sent(&mut v4);
    v4.handle_received(&[5, 0]).unwrap();
    assert_eq!(sent(&mut v4), [5, 1, 0, 1, 10, 1, 2, 3, 0, 1]);
    let mut v6 = Socks5Handshake::new("::1", 1, None).unwrap();
    sent(&mut v6);
    v6.handle_received(&[5, 0]).unwrap();
    let connect = sent(&mut v6);
    assert_eq!(connect[..4], [5, 1, 0, 4]);
    assert_eq!(connect.len(), 4 + 16 + 2);
    assert_eq!(v6.target(), "[::1]:1");
}

#[test]
fn a_successful_reply_gives_the_bound_address_in_any_split() {
    let reply = [5, 0, 0, 1, 192, 0, 2, 7, 0x07, 0x5b];
    for split in 0..reply.len() {
        let mut handshake = at_reply("broker");
        let (a, b) = reply.split_at(split);
        handshake.handle_received(a).unwrap();
        assert!(handshake.bound_address().is_none() || b.is_empty());
        handshake.handle_received(b).unwrap();
        assert_eq!(
            handshake.bound_address(),
            Some(&BoundAddress::Ip("192.0.2.7:1883".parse().unwrap())),
            "split at {split}"
        );
    }
    let mut v6 = at_reply("broker");
    let mut reply = vec![5, 0, 0, 4];
    reply.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    reply.extend_from_slice(&[0, 80]);
    v6.handle_received(&reply).unwrap();
    assert_eq!(
        v6.bound_address(),
        Some(&BoundAddress::Ip("[::1]:80".parse().unwrap()))
    );
    let mut named = at_reply("broker");
    named
        .handle_received(&[5, 0, 0, 3, 5, b'p', b'r', b'o', b'x', b'y', 0, 81])
        .unwrap();
    assert_eq!(
        named.bound_address(),
        Some(&BoundAddress::Domain("proxy".into(), 81))
    );
}

#[test]
fn every_failure_reply_code_is_typed_and_names_the_broker() {
    for (byte, code, words) in [
        (1, ReplyCode::GeneralFailure, "general SOCKS server failure"),
        (2, ReplyCode::NotAllowed, "not allowed"),
        (3, ReplyCode::NetworkUnreachable, "network unreachable"),
        (4, ReplyCode::HostUnreachable, "host unreachable"),
        (5, ReplyCode::ConnectionRefused, "connection refused"),
        (6, ReplyCode::TtlExpired, "TTL expired"),
        (7, ReplyCode::CommandNotSupported, "command not supported"),
        (
            8,
            ReplyCode::AddressTypeNotSupported,
            "address type not supported",
        ),
        (0x42, ReplyCode::Other(0x42), "undefined reply code"),
    ] {
        let mut handshake = at_reply("broker.example");
        let error = handshake
            .handle_received(&[5, byte, 0, 1, 0, 0, 0, 0, 0, 0])
            .unwrap_err();
        assert_eq!(
            error,
            Socks5Error::ConnectFailed {
                target: "broker.example:1883".into(),
                code
            }
        );
        let message = error.to_string();
        assert!(message.contains(words), "{message}");
        assert!(
            message.contains(&format!("(reply {byte:#04x})")),
            "{message}"
        );
        assert!(
            message.starts_with("the proxy could not connect to broker.example:1883: "),
            "{message}"
        );
        assert!(handshake.bound_address().is_none());
    }
}

#[test]
fn a_login_is_offered_and_sent_when_the_proxy_chooses_it() {
    let login = login("alice", "S3CRET");
    let mut handshake = Socks5Handshake::new("broker", 1883, Some(&login)).unwrap();
    assert_eq!(sent(&mut handshake), [5, 2, 0, 2]);
    handshake.handle_received(&[5, 2]).unwrap();
    let mut expected = vec![1, 5];
    expected.extend_from_slice(b"alice");
    expected.push(6);
    expected.extend_from_slice(b"S3CRET");
    assert_eq!(sent(&mut handshake), expected);
    handshake.handle_received(&[1, 0]).unwrap();
    assert_eq!(sent(&mut handshake)[..4], [5, 1, 0, 3]);
    handshake
        .handle_received(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 1])
        .unwrap();
    assert!(handshake.bound_address().is_some());
    assert!(!format!("{handshake:?}").contains("S3CRET"));
}

#[test]
fn a_refused_login_names_the_user_and_never_the_password() {
    let login = login("alice", "S3CRET");
    let mut handshake = Socks5Handshake::new("broker", 1883, Some(&login)).unwrap();
    sent(&mut handshake);
    handshake.handle_received(&[5, 2]).unwrap();
    sent(&mut handshake);
    let error = handshake.handle_received(&[1, 1]).unwrap_err();
    assert_eq!(
        error,
        Socks5Error::LoginRefused {
            username: "alice".into(),
            status: 1
        }
    );
    let message = error.to_string();
    assert!(message.contains("\"alice\""), "{message}");
    assert!(!message.contains("S3CRET"), "{message}");
    assert!(
        handshake.poll_transmit().is_empty(),
        "no CONNECT after a refusal"
    );
    assert_eq!(handshake.handle_received(&[5, 0]), Err(Socks5Error::Closed));
}

#[test]
fn a_proxy_that_wants_a_login_says_so_when_none_was_given() {
    let mut handshake = Socks5Handshake::new("broker", 1883, None).unwrap();
    sent(&mut handshake);
    let error = handshake.handle_received(&[5, 0xFF]).unwrap_err();
    assert!(
        matches!(
            error,
            Socks5Error::NoAcceptableMethod {
                login_offered: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("may need a user name and password"),
        "{error}"
    );
    // A login offered and still refused: no hint to add one.
    let mut handshake = Socks5Handshake::new("broker", 1883, Some(&login("a", "b"))).unwrap();
    sent(&mut handshake);
    let error = handshake.handle_received(&[5, 0xFF]).unwrap_err();
    assert!(!error.to_string().contains("may need"), "{error}");
}

#[test]
fn a_method_not_offered_is_refused() {
    let mut handshake = Socks5Handshake::new("broker", 1883, None).unwrap();
    sent(&mut handshake);
    // User name/password chosen although no login was offered; GSSAPI likewise.
    assert_eq!(
        handshake.handle_received(&[5, 2]),
        Err(Socks5Error::UnexpectedMethod { method: 2 })
    );
    let mut handshake = Socks5Handshake::new("broker", 1883, None).unwrap();
    assert_eq!(
        handshake.handle_received(&[5, 1]),
        Err(Socks5Error::UnexpectedMethod { method: 1 })
    );
}

#[test]
fn a_peer_that_is_not_a_socks5_proxy_is_named_so() {
    let mut handshake = Socks5Handshake::new("broker", 1883, None).unwrap();
    sent(&mut handshake);
    // An MQTT broker dialed as a proxy would answer nothing; an HTTP proxy says "HTTP/1.1".
    assert_eq!(
        handshake.handle_received(b"HTTP/1.1 400"),
        Err(Socks5Error::NotSocks5 { version: b'H' })
    );
    let mut handshake = at_reply("broker");
    assert_eq!(
        handshake.handle_received(&[4, 0x5a, 0, 0]),
        Err(Socks5Error::NotSocks5 { version: 4 })
    );
}

#[test]
fn a_reply_with_an_undefined_address_type_is_refused() {
    let mut handshake = at_reply("broker");
    assert_eq!(
        handshake.handle_received(&[5, 0, 0, 9, 0, 0]),
        Err(Socks5Error::BadAddressType { atyp: 9 })
    );
}

#[test]
fn bytes_past_the_reply_are_refused() {
    let mut handshake = at_reply("broker");
    let error = handshake
        .handle_received(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0x20, 2])
        .unwrap_err();
    assert_eq!(error, Socks5Error::UnexpectedData);
}

#[test]
fn what_socks5_cannot_carry_is_refused_up_front() {
    let long = "h".repeat(256);
    assert_eq!(
        Socks5Handshake::new(&long, 1, None).unwrap_err(),
        Socks5Error::HostTooLong { len: 256 }
    );
    assert!(Socks5Handshake::new(&"h".repeat(255), 1, None).is_ok());
    let error = Socks5Handshake::new("h", 1, Some(&login("u", &"p".repeat(300)))).unwrap_err();
    assert_eq!(
        error,
        Socks5Error::LoginTooLong {
            field: "password",
            len: 300
        }
    );
    assert!(Socks5Handshake::new("h", 1, Some(&login("", "p"))).is_err());
    // An empty password is allowed (`socks5h://user@proxy`).
    assert!(Socks5Handshake::new("h", 1, Some(&login("u", ""))).is_ok());
}

/// Feeds `answers` to a handshake with a login, split where `rng` says; the outcome.
fn outcome(answers: &[u8], rng: &mut fastrand::Rng) -> Result<Option<BoundAddress>, Socks5Error> {
    let mut handshake = Socks5Handshake::new("broker", 1883, Some(&login("u", "p"))).unwrap();
    let mut rest = answers;
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(rng.usize(1..=rest.len()));
        rest = after;
        sent(&mut handshake);
        handshake.handle_received(chunk)?;
    }
    Ok(handshake.bound_address().cloned())
}

#[test]
fn any_answer_in_any_split_gives_one_outcome_and_never_panics() {
    let mut rng = fastrand::Rng::with_seed(1928);
    let valid = [5, 2, 1, 0, 5, 0, 0, 3, 2, b'p', b'x', 0, 80];
    for round in 0..20_000 {
        // Mostly answers that follow the protocol for a while, then anything.
        let mut answers: Vec<u8> = valid[..rng.usize(0..=valid.len())].to_vec();
        for _ in 0..rng.usize(0..8) {
            let byte = match rng.bool() {
                true => rng.u8(..),
                false => rng.u8(0..10),
            };
            answers.push(byte);
        }
        let whole = outcome(&answers, &mut fastrand::Rng::with_seed(0));
        let mut one_at_a_time =
            Socks5Handshake::new("broker", 1883, Some(&login("u", "p"))).unwrap();
        let mut bytewise = Ok(());
        for &byte in &answers {
            sent(&mut one_at_a_time);
            bytewise = bytewise.and_then(|()| one_at_a_time.handle_received(&[byte]));
        }
        let bytewise = bytewise.map(|()| one_at_a_time.bound_address().cloned());
        assert_eq!(whole, bytewise, "round {round}: {answers:?}");
        assert_eq!(
            whole,
            outcome(&answers, &mut rng),
            "round {round}: {answers:?}"
        );
    }
    let done = outcome(&valid, &mut rng).unwrap();
    assert_eq!(done, Some(BoundAddress::Domain("px".into(), 80)));
}

#[test]
fn a_close_during_the_handshake_is_an_error() {
    let mut handshake = at_reply("broker");
    assert_eq!(handshake.handle_closed(), Socks5Error::Closed);
    assert!(handshake.bound_address().is_none());
}
