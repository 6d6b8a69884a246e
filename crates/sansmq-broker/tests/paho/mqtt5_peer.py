"""An MQTT 5 peer on Python's paho-mqtt (1.6+), for tests/paho_mqtt5.rs.

    mqtt5_peer.py PORT responder REQUEST_FILTER COUNT
        Subscribes to REQUEST_FILTER, prints "ready", then answers COUNT requests: each response
        goes to the request's Response Topic with its Correlation Data, the request's User
        Properties and ("served-by", "paho"), payload "re:" + the request's payload. Prints
        "request <topic> <payload> <user properties as JSON>" for each.

    mqtt5_peer.py PORT requester REQUEST_TOPIC RESPONSE_TOPIC
        Subscribes to RESPONSE_TOPIC, publishes "ping" to REQUEST_TOPIC at QoS 1 with that
        Response Topic, Correlation Data "paho-1" and User Property ("asked-by", "paho"), waits for
        the response and prints it as one JSON line.

Exits 0 when done, 1 on a timeout or a refusal.
"""

import json
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

port = int(sys.argv[1])
mode = sys.argv[2]
done = threading.Event()
failed = []


def say(*words):
    print(*words, flush=True)


def user_properties(props):
    return [list(p) for p in getattr(props, "UserProperty", [])]


def on_connect(client, userdata, flags, reason_code, properties):
    if reason_code != 0:
        failed.append("CONNACK %s" % reason_code)
        done.set()
        return
    topic = sys.argv[3] if mode == "responder" else sys.argv[4]
    client.subscribe(topic, qos=1)


def on_subscribe(client, userdata, mid, reason_codes, properties):
    if any(code.value >= 0x80 for code in reason_codes):
        failed.append("SUBACK %s" % reason_codes)
        done.set()
        return
    if mode == "responder":
        say("ready")
        return
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = sys.argv[4]
    props.CorrelationData = b"paho-1"
    props.UserProperty = ("asked-by", "paho")
    client.publish(sys.argv[3], b"ping", qos=1, properties=props)


answered = 0


def on_message(client, userdata, msg):
    global answered
    props = msg.properties
    if mode == "responder":
        say("request", msg.topic, msg.payload.decode(), json.dumps(user_properties(props)))
        response = Properties(PacketTypes.PUBLISH)
        response.CorrelationData = props.CorrelationData
        response.UserProperty = [tuple(p) for p in user_properties(props)] + [("served-by", "paho")]
        client.publish(props.ResponseTopic, b"re:" + msg.payload, qos=1, properties=response)
        answered += 1
        if answered >= int(sys.argv[4]):
            # Let the last PUBACK arrive before leaving.
            threading.Timer(0.5, done.set).start()
        return
    say(json.dumps({
        "topic": msg.topic,
        "payload": msg.payload.decode(),
        "correlation_data": getattr(props, "CorrelationData", b"").decode(),
        "user_properties": user_properties(props),
        "content_type": getattr(props, "ContentType", None),
    }))
    done.set()


client = mqtt.Client(client_id="paho-" + mode, protocol=mqtt.MQTTv5)
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect("127.0.0.1", port, keepalive=30, clean_start=True)
client.loop_start()
finished = done.wait(10)
client.disconnect()
client.loop_stop()
if failed or not finished:
    say("failed:", failed or "timeout")
    sys.exit(1)
