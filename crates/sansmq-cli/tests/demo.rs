//! `sansmq demo`: Alibaba's quick-start, on the embedded broker and against a broker given with
//! `--broker`.

mod common;

use common::{BrokerProcess, Outcome, run, sansmq};

/// The value after `label` on the summary line that starts with it.
fn summary<'a>(outcome: &'a Outcome, label: &str) -> &'a str {
    outcome
        .stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in {outcome:#?}"))
        .trim()
}

fn assert_everything_received(outcome: &Outcome, qos: u8) {
    assert_eq!(outcome.code, Some(0), "{outcome:#?}");
    assert!(
        summary(outcome, "sent:").starts_with(&format!(
            "20 at QoS {qos} (10 to demo/testMq4Iot, 10 P2P to demo/p2p/GID_demo@@@demo-sub-"
        )),
        "{outcome:#?}"
    );
    assert_eq!(summary(outcome, "received:"), "20 of 20");
    assert_eq!(summary(outcome, "P2P received:"), "10 of 10");
    let latency = summary(outcome, "round trip:");
    for part in ["p50 ", "p90 ", "p99 ", "max "] {
        assert!(latency.contains(part), "{latency}");
    }
    assert!(outcome.stdout.contains("every message sent was received"));
    // Every message is shown as the quick-start shows it.
    let sends = outcome.stdout.matches("[publisher] send msg: ").count();
    let receipts = outcome
        .stdout
        .matches("[subscriber] receive msg from topic demo/")
        .count();
    assert_eq!((sends, receipts), (20, 20), "{outcome:#?}");
    assert!(outcome.stdout.contains("[subscriber] connect complete"));
}

#[test]
fn demo_without_arguments_exits_0_and_prints_the_summary() {
    let outcome = run(&["demo"]);
    assert_everything_received(&outcome, 1);
    assert!(
        outcome.stdout.contains("embedded local broker"),
        "{outcome:#?}"
    );
    assert!(
        outcome.stdout.contains("summary (MQTT 3.1.1):"),
        "{outcome:#?}"
    );
    assert!(!outcome.stdout.contains("user property"), "{outcome:#?}");
    assert!(outcome.elapsed.as_secs() < 10, "{outcome:#?}");
}

#[test]
fn demo_in_mqtt_5_carries_each_messages_properties() {
    for (extra, qos) in [(&[][..], 1), (&["--transport", "ws", "--qos", "2"][..], 2)] {
        let mut args = vec!["demo", "--mqtt5"];
        args.extend_from_slice(extra);
        let outcome = run(&args);
        assert_everything_received(&outcome, qos);
        assert!(
            outcome
                .stdout
                .contains("(instance mqtt-local-demo, MQTT 5.0)")
                && outcome.stdout.contains("summary (MQTT 5.0):"),
            "{outcome:#?}"
        );
        // The properties the publisher set, as the subscriber received them.
        let count = |needle: &str| outcome.stdout.matches(needle).count();
        assert_eq!(
            count("[subscriber]   content type: text/plain; charset=utf-8"),
            20,
            "{outcome:#?}"
        );
        assert_eq!(count("[subscriber]   user property: kind=p2p"), 10);
        assert_eq!(count("[subscriber]   user property: kind=pub sub"), 10);
        assert_eq!(count("[subscriber]   user property: run="), 20);
    }
}

#[test]
fn demo_at_qos_0_and_2() {
    for qos in [0, 2] {
        let outcome = run(&["demo", "--qos", &qos.to_string()]);
        assert_everything_received(&outcome, qos);
    }
}

#[test]
fn demo_against_a_broker_signs_with_the_environments_access_key() {
    let broker = BrokerProcess::start(&[
        "--apsaramq",
        "mqtt-x",
        "--access-key",
        "LTAI-env:env-secret",
    ]);
    let uri = format!("tcp://{}", broker.addr);
    let mut command = sansmq(&["demo", "--broker", &uri, "--instance", "mqtt-x"]);
    command
        .env("MQTT_AK_ENV", "LTAI-env")
        .env("MQTT_SK_ENV", "env-secret");
    let outcome = common::run_with_input(command, b"");
    assert_everything_received(&outcome, 1);
    assert!(!outcome.stdout.contains("env-secret"));

    let mut command = sansmq(&["demo", "--broker", &uri, "--instance", "mqtt-x"]);
    command.env_remove("MQTT_AK_ENV").env_remove("MQTT_SK_ENV");
    let outcome = common::run_with_input(command, b"");
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(outcome.error_line().contains("MQTT_AK_ENV"), "{outcome:#?}");
}

#[test]
fn demo_over_websocket_on_the_embedded_broker() {
    let outcome = run(&["demo", "--transport", "ws"]);
    assert_everything_received(&outcome, 1);
    assert!(
        outcome.stdout.contains("ws://127.0.0.1:") && outcome.stdout.contains("/mqtt"),
        "{outcome:#?}"
    );
}

#[test]
fn demo_over_tls_transports_on_the_embedded_broker_asks_for_a_broker() {
    for transport in ["ssl", "wss"] {
        let outcome = run(&["demo", "--transport", transport]);
        assert_ne!(outcome.code, Some(0), "{outcome:#?}");
        assert!(outcome.stderr.contains("no TLS"), "{outcome:#?}");
        assert!(outcome.stderr.contains("--broker"), "{outcome:#?}");
    }
}
