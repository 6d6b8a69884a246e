//! The WebSocket bridge the WebSocket transports are tested against is itself checked with an
//! independent client: Python's paho-mqtt over `transport="websockets"`, through the bridge to
//! mosquitto, with the broker's bytes cut into 7-byte frames.

use sansmq_e2e::{Framing, Mosquitto, WsBridge, run_paho};

/// Subscribes to argv[3], publishes three QoS 1 messages to it (the last 100 kB), and prints
/// what comes back, one line per message: `topic qos length`.
const ROUND_TRIP: &str = r#"
import sys, threading
import paho.mqtt.client as mqtt
host, port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
got, done = [], threading.Event()
def on_message(client, userdata, msg):
    got.append(f"{msg.topic} {msg.qos} {len(msg.payload)}")
    if len(got) == 3:
        done.set()
def on_subscribe(client, userdata, mid, granted):
    for size in (5, 300, 100_000):
        client.publish(topic, b"x" * size, qos=1)
client = mqtt.Client(client_id="paho-ws", transport="websockets")
client.ws_set_options(path="/mqtt")
client.on_message = on_message
client.on_subscribe = on_subscribe
client.on_connect = lambda c, u, f, rc: c.subscribe(topic, qos=1)
client.connect(host, port, keepalive=30)
client.loop_start()
ok = done.wait(20)
client.disconnect()
client.loop_stop()
print("\n".join(got))
sys.exit(0 if ok else 1)
"#;

#[test]
fn paho_reaches_mosquitto_through_the_bridge_over_frames_of_any_size() {
    let broker = Mosquitto::start();
    let bridge = WsBridge::start_with(broker.addr(), Framing::Split(7), None);
    let port = bridge.addr().port().to_string();
    let output = run_paho(ROUND_TRIP, &["127.0.0.1", &port, "bridge/t"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "bridge/t 1 5\nbridge/t 1 300\nbridge/t 1 100000\n"
    );
    let upgrades = bridge.upgrades();
    assert_eq!(upgrades.len(), 1, "{upgrades:?}");
    assert_eq!(upgrades[0].path, "/mqtt");
    assert_eq!(upgrades[0].protocols, ["mqtt"]);
}
