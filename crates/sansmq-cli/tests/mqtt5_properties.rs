//! MQTT 5 on the command line, through a mosquitto each test starts: `-D` properties from
//! `sansmq pub` reach `mosquitto_sub -V 5 -F %j` exactly as mosquitto_pub's do, mosquitto_pub's
//! reach `sansmq sub -F` as they reach mosquitto_sub, a will's properties arrive with it,
//! `sansmq rr` gets a responder's answer as mosquitto_rr does, and `-D` mistakes are refused.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use sansmq::packet::{Properties, QoS};
use sansmq_e2e::{Mosquitto, wait_until};
use sansmq_mio::{Client, ConnectOptions, Mqtt5Options};

use common::{PATIENCE, Subscriber, run, sansmq};

/// The properties of a PUBLISH as `-D` flags, in identifier order (the order sansmq sends
/// them in, see the README): mosquitto forwards them in the order they came.
fn publish_properties() -> Vec<&'static str> {
    [
        ["publish", "payload-format-indicator", "1"].as_slice(),
        &["publish", "message-expiry-interval", "3600"],
        &["publish", "content-type", "text/plain"],
        &["publish", "response-topic", "v5/reply"],
        &["publish", "correlation-data", "req 42"],
        &["publish", "user-property", "a", "b"],
        &["publish", "user-property", "a", "c"],
    ]
    .iter()
    .flat_map(|flag| std::iter::once("-D").chain(flag.iter().copied()))
    .collect()
}

/// A `mosquitto_sub` (or another tool) in the background, with its output collected.
fn spawn(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"))
}

/// Waits until the broker's log shows `count` subscriptions to `filter`.
fn subscribed(broker: &Mosquitto, filter: &str, count: usize) {
    let needle = format!("\t{filter} (QoS");
    assert!(
        wait_until(PATIENCE, || broker.log().matches(&needle).count() >= count),
        "no {count} subscriptions to {filter}:\n{}",
        broker.log()
    );
}

/// stdout without the `"tst":"..."` member, whose time differs from run to run.
fn without_time(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(
            |line| match (line.find("\"tst\":\""), line.find("\",\"topic\"")) {
                (Some(start), Some(end)) => format!("{}{}", &line[..start], &line[end + 2..]),
                _ => line.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}

fn finished(child: Child, what: &str) -> std::process::Output {
    let output = child.wait_with_output().expect("its output");
    assert!(output.status.success(), "{what}: {output:?}");
    output
}

#[test]
fn sansmq_pub_properties_reach_mosquitto_sub_as_mosquitto_pubs_do() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let watcher = spawn(
        "mosquitto_sub",
        &[
            "-p",
            &port,
            "-V",
            "5",
            "-t",
            "v5/pub",
            "-F",
            "%j",
            "-C",
            "2",
            "-W",
            "20",
            "-D",
            "subscribe",
            "subscription-identifier",
            "7",
        ],
    );
    subscribed(&broker, "v5/pub", 1);
    let mut theirs = vec!["-p", &port, "-t", "v5/pub", "-m", "hello", "-q", "1"];
    theirs.extend(publish_properties());
    let status = Command::new("mosquitto_pub")
        .args(&theirs)
        .status()
        .expect("mosquitto_pub runs");
    assert!(status.success());
    let mut ours = vec!["pub"];
    ours.extend(&theirs);
    let outcome = run(&ours);
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");

    let seen = without_time(&finished(watcher, "mosquitto_sub").stdout);
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines.len(), 2, "{seen}");
    assert_eq!(lines[0], lines[1], "mosquitto_pub's, then sansmq's");
    // The message expiry left is 3600 or, a second later, 3599.
    let line = lines[1].replace("3599", "3600");
    assert_eq!(
        line,
        "{\"topic\":\"v5/pub\",\"qos\":0,\"retain\":0,\"payloadlen\":5,\"properties\":\
         {\"subscription-identifier\":7,\"payload-format-indicator\":1,\"content-type\":\
         \"text/plain\",\"response-topic\":\"v5/reply\",\"correlation-data\":\"req 42\",\
         \"user-properties\":{\"a\":\"b\",\"a\":\"c\"},\"message-expiry-interval\":3600},\
         \"payload\":\"hello\"}"
    );
}

#[test]
fn mosquitto_pub_properties_reach_sansmq_sub_as_they_reach_mosquitto_sub() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let format = "%j|%A|%C|%D|%E|%F|%P|%R|%S|%-6C|%5S|%03F";
    let args = [
        "-p",
        &port,
        "-V",
        "5",
        "-t",
        "v5/sub",
        "-F",
        format,
        "-C",
        "2",
        "-W",
        "20",
        "-D",
        "subscribe",
        "subscription-identifier",
        "9",
        "-D",
        "subscribe",
        "user-property",
        "k",
        "v",
    ];
    let theirs = spawn("mosquitto_sub", &args);
    let mut our_args = vec!["sub"];
    our_args.extend(args);
    let mut command = sansmq(&our_args);
    command.env("TZ", "UTC");
    let ours = Subscriber::spawn(command);
    subscribed(&broker, "v5/sub", 2);

    let mut publish = vec!["-p", &port, "-t", "v5/sub", "-m", "hello"];
    publish.extend(publish_properties());
    for extra in [&[][..], &["-V", "5"][..]] {
        let status = Command::new("mosquitto_pub")
            .args(&publish)
            .args(extra)
            .status()
            .expect("mosquitto_pub runs");
        assert!(status.success());
        if !extra.is_empty() {
            break;
        }
        // The second message has no properties but the subscription's identifier.
        publish.truncate(6);
    }
    let theirs = without_time(&finished(theirs, "mosquitto_sub").stdout);
    let ours = ours.finish();
    assert_eq!(ours.code, Some(0), "{ours:#?}");
    let ours = without_time(ours.stdout.as_bytes());
    assert_eq!(ours.replace("3599", "3600"), theirs.replace("3599", "3600"));
    let first = ours.lines().next().unwrap_or_default();
    assert!(
        first.ends_with("|text/plain|req 42|3600|1|a:b a:c|v5/reply|9|text/plain|    9|001")
            || first.ends_with("|text/plain|req 42|3599|1|a:b a:c|v5/reply|9|text/plain|    9|001"),
        "{first}"
    );
    let second = ours.lines().nth(1).unwrap_or_default();
    assert!(
        second.contains("\"properties\":{\"subscription-identifier\":9}")
            && second.ends_with("||||||||9|      |    9|000"),
        "{second}"
    );
}

#[test]
fn a_will_carries_its_properties() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let watcher = spawn(
        "mosquitto_sub",
        &[
            "-p",
            &port,
            "-V",
            "5",
            "-t",
            "v5/will",
            "-F",
            "%p|%C|%P|%D",
            "-C",
            "1",
            "-W",
            "20",
        ],
    );
    subscribed(&broker, "v5/will", 1);
    let sub = Subscriber::start(&[
        "sub",
        "-p",
        &port,
        "-t",
        "v5/other",
        "--will-topic",
        "v5/will",
        "--will-payload",
        "gone",
        "-D",
        "will",
        "content-type",
        "text/plain",
        "-D",
        "will",
        "user-property",
        "why",
        "killed",
        "-D",
        "will",
        "correlation-data",
        "w1",
    ]);
    // Killed: no DISCONNECT, so the broker publishes the will.
    sub.kill();
    let seen = finished(watcher, "mosquitto_sub").stdout;
    assert_eq!(
        String::from_utf8_lossy(&seen),
        "gone|text/plain|why:killed|w1\n"
    );
}

/// A responder on the sansmq-mio client: answers each request on `topic` on its Response
/// Topic, with its Correlation Data, `pong:` and the request's payload.
fn responder(port: u16, topic: &str) -> (Client, Arc<AtomicBool>) {
    let options = ConnectOptions::new(&format!("tcp://127.0.0.1:{port}"), "responder")
        .expect("options")
        .mqtt5(Mqtt5Options::new());
    let client = Client::new(options).expect("a client");
    let requests = client.messages(16);
    client.connect().expect("the responder connects");
    client
        .subscribe(&[(topic, QoS::AtLeastOnce)])
        .expect("the responder subscribes");
    let stop = Arc::new(AtomicBool::new(false));
    let answering = client.clone();
    let stopped = Arc::clone(&stop);
    thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) {
            let Ok(request) = requests.recv_timeout(Duration::from_millis(50)) else {
                continue;
            };
            let Some(reply_to) = request.properties().response_topic() else {
                continue;
            };
            let mut properties = Properties::new();
            properties.set_correlation_data(request.properties().correlation_data().cloned());
            let mut payload = b"pong:".to_vec();
            payload.extend_from_slice(&request.payload);
            let _ = answering.publish_with_properties(
                reply_to.as_str(),
                Bytes::from(payload),
                QoS::AtLeastOnce,
                false,
                properties,
            );
        }
    });
    (client, stop)
}

#[test]
fn rr_prints_the_response_of_a_responder_as_mosquitto_rr_does() {
    let broker = Mosquitto::start();
    let (client, stop) = responder(broker.port(), "v5/req");
    let port = broker.port().to_string();
    let args = [
        "-p",
        &port,
        "-t",
        "v5/req",
        "-e",
        "v5/resp",
        "-m",
        "ping",
        "-q",
        "1",
        "-W",
        "20",
        "-F",
        "%t|%p|%D|%q",
        "-D",
        "publish",
        "correlation-data",
        "c7",
    ];
    let theirs = Command::new("mosquitto_rr")
        .args(args)
        .output()
        .expect("mosquitto_rr runs");
    let mut ours_args = vec!["rr"];
    ours_args.extend(args);
    let ours = run(&ours_args);
    stop.store(true, Ordering::Relaxed);
    client.close();
    assert!(theirs.status.success(), "{theirs:?}");
    assert_eq!(ours.code, Some(0), "{ours:#?}");
    assert_eq!(ours.stdout, "v5/resp|pong:ping|c7|1\n");
    assert_eq!(ours.stdout.as_bytes(), theirs.stdout);
}

#[test]
fn rr_times_out_with_27_without_a_responder() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let outcome = run(&[
        "rr", "-p", &port, "-t", "v5/req", "-e", "v5/resp", "-m", "ping", "-W", "1",
    ]);
    assert_eq!(outcome.code, Some(27), "{outcome:#?}");
    assert!(outcome.error_line().contains("-W"), "{outcome:#?}");
}

#[test]
fn property_mistakes_are_refused_before_connecting() {
    // Nothing listens on port 1: each must fail on its command line, with exit code 1.
    for (flags, says) in [
        (
            &["-D", "bogus", "user-property", "a", "b"][..],
            "unknown command",
        ),
        (&["-D", "publish", "bogus", "1"], "unknown property"),
        (
            &["-D", "connect", "content-type", "x"],
            "allows no content-type",
        ),
        (
            &["-D", "publish", "user-property", "a"],
            "expected -D COMMAND",
        ),
        (
            &["-D", "publish", "message-expiry-interval", "-5"],
            "out of range",
        ),
        (&["-D", "publish", "topic-alias", "0"], "must not be 0"),
        (
            &["-D", "publish", "message-expiry-interval", "soon"],
            "not a number",
        ),
        (
            &[
                "-D",
                "publish",
                "content-type",
                "a",
                "-D",
                "publish",
                "content-type",
                "b",
            ],
            "given twice",
        ),
        (
            &["-D", "publish", "content-type", "x", "-V", "311"],
            "MQTT 3.1.x",
        ),
        (
            &["-x", "60", "-D", "connect", "session-expiry-interval", "5"],
            "both set the Session Expiry Interval",
        ),
    ] {
        let mut args = vec!["pub", "-p", "1", "-t", "t", "-m", "x"];
        args.extend(flags);
        let outcome = run(&args);
        assert_eq!(outcome.code, Some(1), "{flags:?}: {outcome:#?}");
        assert!(
            outcome.error_line().contains(says),
            "{flags:?}: {outcome:#?}"
        );
    }
}
