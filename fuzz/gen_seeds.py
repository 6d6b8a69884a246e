#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets: fuzz/corpus/<target>/seed-<name>.

The packets are assembled here byte by byte from MQTT 3.1.1 (and 3.1 for the MQIsdp CONNECT) and
MQTT 5.0, independently of sansmq's encoder, so the seeds also check the decoder against the spec:
the `decode` target replaying them must decode every packet. The `decode` and `decode_fragments`
inputs start with a byte whose low bit picks the protocol the stream is read as (MQTT_311 or
MQTT_5 below).

The `client` seeds are action sequences in the layout documented in fuzz_targets/client.rs (a
config, then opcodes and operands), written with the small helpers below.

    python3 fuzz/gen_seeds.py        # from anywhere; rewrites the seed-* files, nothing else

Only `seed-*` files are committed (see the root .gitignore); what the fuzzer adds to
fuzz/corpus/<target>/ stays local.
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def remaining_length(n):
    """MQTT 2.2.3: seven bits per byte, least significant first, high bit = more."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def frame(first_byte, body):
    return bytes([first_byte]) + remaining_length(len(body)) + body


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def string(s):
    """MQTT 1.5.3: two-byte length, then UTF-8 (also used for binary data)."""
    data = s.encode() if isinstance(s, str) else s
    return u16(len(data)) + data


# CONNECT flags (MQTT 3.1.2.3).
USERNAME, PASSWORD, WILL_RETAIN, WILL, CLEAN_SESSION = 0x80, 0x40, 0x20, 0x04, 0x02


def will_qos(qos):
    return qos << 3


PACKETS = {
    # MQTT 3.1.1, will (QoS 1, retained), user name and password, keep-alive 60 s.
    "connect-311-will-user-password": frame(
        0x10,
        string("MQTT") + bytes([4])
        + bytes([USERNAME | PASSWORD | WILL_RETAIN | will_qos(1) | WILL | CLEAN_SESSION])
        + u16(60)
        + string("sansmq-1")
        + string("clients/sansmq-1/status") + string(b"offline")
        + string("user") + string(b"secret"),
    ),
    # MQTT 3.1.1, the smallest: empty client id with a clean session (MQTT-3.1.3-6).
    "connect-311-minimal": frame(0x10, string("MQTT") + bytes([4, CLEAN_SESSION]) + u16(0) + string("")),
    # MQTT 3.1: protocol name MQIsdp, level 3; user name only, persistent session.
    "connect-31-mqisdp": frame(
        0x10,
        string("MQIsdp") + bytes([3, USERNAME]) + u16(30) + string("paho-31") + string("user"),
    ),
    "connack-accepted-session-present": frame(0x20, bytes([0x01, 0x00])),
    "connack-not-authorized": frame(0x20, bytes([0x00, 0x05])),
    "publish-qos0": frame(0x30, string("sensors/kitchen/temp") + b"21.5"),
    "publish-qos0-retain-empty-payload": frame(0x31, string("a/b")),
    "publish-qos1": frame(0x32, string("cmd/led") + u16(1) + b"on"),
    # QoS 2 with DUP and RETAIN set, 200-byte payload: a two-byte remaining length.
    "publish-qos2-dup-retain": frame(0x3D, string("$SYS/broker/uptime") + u16(0xFFFF) + bytes(range(200))),
    "puback": frame(0x40, u16(1)),
    "pubrec": frame(0x50, u16(2)),
    "pubrel": frame(0x62, u16(2)),  # flags 0b0010 (MQTT-3.6.1-1)
    "pubcomp": frame(0x70, u16(2)),
    "subscribe": frame(
        0x82,
        u16(10)
        + string("sport/tennis/+") + bytes([0])
        + string("sensors/#") + bytes([1])
        + string("$SYS/#") + bytes([2])
        + string("+/+") + bytes([1]),
    ),
    "suback": frame(0x90, u16(10) + bytes([0x00, 0x01, 0x02, 0x80])),
    "unsubscribe": frame(0xA2, u16(11) + string("sport/tennis/+") + string("#")),
    "unsuback": frame(0xB0, u16(11)),
    "pingreq": frame(0xC0, b""),
    "pingresp": frame(0xD0, b""),
    "disconnect": frame(0xE0, b""),
}

P = PACKETS
STREAMS = {
    # What a client sends in a session.
    "stream-client": b"".join(
        P[n] for n in ["connect-311-will-user-password", "subscribe", "publish-qos1", "puback",
                       "publish-qos2-dup-retain", "pubrec", "pubcomp", "unsubscribe", "pingreq", "disconnect"]
    ),
    # What a broker sends back.
    "stream-server": b"".join(
        P[n] for n in ["connack-accepted-session-present", "suback", "puback", "pubrec", "pubrel",
                       "pubcomp", "publish-qos0", "publish-qos1", "unsuback", "pingresp"]
    ),
    # Every packet type, in spec order.
    "stream-every-type": b"".join(PACKETS.values()),
    # Packets, then a frame cut short: the decoder must wait for more.
    "stream-truncated": P["publish-qos1"] + P["pingresp"] + P["subscribe"][:7],
    # Packets, then a reserved packet type: the stream is broken after two packets.
    "stream-then-reserved-type": P["puback"] + P["pingresp"] + bytes([0xF0, 0x00]) + P["pingreq"],
    # A remaining length in five bytes (MQTT 2.2.3 allows four).
    "stream-then-malformed-length": P["pingreq"] + bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
}


def var_int(n):
    """MQTT 5.0 section 1.5.5: the remaining length's encoding, used for property lengths too."""
    return remaining_length(n)


def properties(*props):
    """MQTT 5.0 section 2.2.2: Property Length, then the properties, each an identifier and its
    value (already encoded), in the order given (the spec does not fix one)."""
    body = b"".join(props)
    return var_int(len(body)) + body


# MQTT 5.0 property identifiers (table 2-4), as (identifier byte + value) builders.
def p_payload_format(v): return bytes([0x01, v])
def p_message_expiry(v): return bytes([0x02]) + u32(v)
def p_content_type(v): return bytes([0x03]) + string(v)
def p_response_topic(v): return bytes([0x08]) + string(v)
def p_correlation_data(v): return bytes([0x09]) + string(v)
def p_subscription_id(v): return bytes([0x0B]) + var_int(v)
def p_session_expiry(v): return bytes([0x11]) + u32(v)
def p_assigned_client_id(v): return bytes([0x12]) + string(v)
def p_server_keep_alive(v): return bytes([0x13]) + u16(v)
def p_auth_method(v): return bytes([0x15]) + string(v)
def p_auth_data(v): return bytes([0x16]) + string(v)
def p_will_delay(v): return bytes([0x18]) + u32(v)
def p_reason_string(v): return bytes([0x1F]) + string(v)
def p_receive_maximum(v): return bytes([0x21]) + u16(v)
def p_topic_alias_maximum(v): return bytes([0x22]) + u16(v)
def p_topic_alias(v): return bytes([0x23]) + u16(v)
def p_maximum_qos(v): return bytes([0x24, v])
def p_user(k, v): return bytes([0x26]) + string(k) + string(v)
def p_maximum_packet_size(v): return bytes([0x27]) + u32(v)


# Subscription options (MQTT 5.0 section 3.8.3.1): QoS, No Local, Retain As Published, Retain Handling.
NO_LOCAL, RETAIN_AS_PUBLISHED = 0x04, 0x08


def retain_handling(n):
    return n << 4


# MQTT 5.0 packets. Some properties are deliberately out of identifier order, and some
# acknowledgements use the long forms (Reason Code 0x00 written out, an empty property section), so
# the fuzzer starts from frames sansmq re-encodes in a shorter, normalised form.
PACKETS_5 = {
    # Will (QoS 1, retained) with properties, user name and password, clean start; CONNECT
    # properties in descending identifier order.
    "connect-5-will-properties": frame(
        0x10,
        string("MQTT") + bytes([5])
        + bytes([USERNAME | PASSWORD | WILL_RETAIN | will_qos(1) | WILL | CLEAN_SESSION])
        + u16(60)
        + properties(p_user("region", "eu-west"), p_topic_alias_maximum(16), p_receive_maximum(20),
                     p_session_expiry(3600))
        + string("sansmq-5")
        + properties(p_will_delay(30), p_payload_format(1), p_content_type("text/plain"))
        + string("clients/sansmq-5/status") + string(b"offline")
        + string("user") + string(b"secret"),
    ),
    # Enhanced authentication starts in CONNECT (MQTT 5.0 section 4.12).
    "connect-5-auth-method": frame(
        0x10,
        string("MQTT") + bytes([5, CLEAN_SESSION]) + u16(30)
        + properties(p_auth_method("SCRAM-SHA-1"), p_auth_data(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"))
        + string(""),
    ),
    "connack-5-properties": frame(
        0x20,
        bytes([0x00, 0x00])
        + properties(p_assigned_client_id("auto-7F3A"), p_server_keep_alive(120), p_receive_maximum(32),
                     p_topic_alias_maximum(10), p_maximum_qos(1), p_maximum_packet_size(1 << 20)),
    ),
    "connack-5-not-authorized": frame(0x20, bytes([0x00, 0x87]) + properties(p_reason_string("bad token"))),
    # QoS 1 with a Topic Alias, Message Expiry, Response Topic, Correlation Data and a User Property.
    "publish-5-qos1-alias-properties": frame(
        0x32,
        string("sensors/kitchen/temp") + u16(1)
        + properties(p_user("unit", "celsius"), p_topic_alias(1), p_message_expiry(60),
                     p_response_topic("replies/sansmq-5"), p_correlation_data(b""))
        + b"21.5",
    ),
    # The topic left empty: the alias stands for it (MQTT 5.0 section 3.3.2.3.4).
    "publish-5-qos0-alias-only": frame(0x30, string("") + properties(p_topic_alias(1)) + b"21.6"),
    # As a server forwards it to a subscription with an identifier.
    "publish-5-qos2-subscription-id": frame(
        0x34, string("alerts/fire") + u16(9) + properties(p_subscription_id(268_435_455), p_payload_format(1))
        + b"evacuate",
    ),
    "puback-5-short": frame(0x40, u16(1)),
    # The long form of a plain PUBACK: Reason Code 0x00 and an empty property section.
    "puback-5-success-long": frame(0x40, u16(1) + bytes([0x00]) + properties()),
    "puback-5-no-subscribers": frame(0x40, u16(2) + bytes([0x10])),
    "pubrec-5-quota-exceeded": frame(0x50, u16(3) + bytes([0x97]) + properties(p_reason_string("slow down"))),
    "pubrel-5-id-not-found": frame(0x62, u16(4) + bytes([0x92])),
    "pubcomp-5-success-reason-only": frame(0x70, u16(4) + bytes([0x00])),
    "subscribe-5-options": frame(
        0x82,
        u16(10) + properties(p_subscription_id(5), p_user("tag", "a"))
        + string("sport/tennis/+") + bytes([1 | NO_LOCAL | RETAIN_AS_PUBLISHED | retain_handling(2)])
        + string("$share/group/sensors/#") + bytes([0 | retain_handling(1)])
        + string("alerts/#") + bytes([2]),
    ),
    "suback-5-codes": frame(0x90, u16(10) + properties() + bytes([0x00, 0x01, 0x02, 0x80, 0x87, 0x9E])),
    "unsubscribe-5": frame(0xA2, u16(11) + properties(p_user("why", "done")) + string("sport/tennis/+") + string("#")),
    "unsuback-5-codes": frame(0xB0, u16(11) + properties() + bytes([0x00, 0x11])),
    "disconnect-5-short": frame(0xE0, b""),
    "disconnect-5-with-will": frame(0xE0, bytes([0x04]) + properties(p_session_expiry(0))),
    "disconnect-5-session-taken-over": frame(0xE0, bytes([0x8E])),
    "auth-5-continue": frame(
        0xF0, bytes([0x18]) + properties(p_auth_method("SCRAM-SHA-1"), p_auth_data(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")),
    ),
    "auth-5-success-short": frame(0xF0, b""),
}

P5 = PACKETS_5

STREAMS_5 = {
    # What an MQTT 5 client sends in a session.
    "stream-5-client": b"".join(
        P5[n] for n in ["connect-5-will-properties", "subscribe-5-options", "publish-5-qos1-alias-properties",
                        "publish-5-qos0-alias-only", "puback-5-short", "pubrec-5-quota-exceeded",
                        "pubcomp-5-success-reason-only", "unsubscribe-5", "disconnect-5-with-will"]
    ) + P["pingreq"],
    # What an MQTT 5 server sends back, with enhanced authentication first.
    "stream-5-server": b"".join(
        P5[n] for n in ["auth-5-continue", "connack-5-properties", "suback-5-codes",
                        "publish-5-qos2-subscription-id", "puback-5-success-long", "puback-5-no-subscribers",
                        "pubrel-5-id-not-found", "unsuback-5-codes", "disconnect-5-session-taken-over"]
    ),
    # Every MQTT 5 seed packet.
    "stream-5-every-type": b"".join(PACKETS_5.values()),
    # An empty topic without a Topic Alias is a protocol error (MQTT 5.0 section 3.3.2.1).
    "stream-5-then-empty-topic": P5["puback-5-short"] + frame(0x30, string("") + properties() + b"x"),
    # A CONNECT at level 4 in an MQTT 5 stream still decodes as 3.1.1 (its level says which).
    "stream-5-connect-311": P["connect-311-will-user-password"] + P5["auth-5-success-short"],
}

# decode and decode_fragments: the first byte's low bit picks the protocol.
MQTT_311 = bytes([0x00])
MQTT_5 = bytes([0x01])

# decode_fragments: [protocol][control][cut sizes][stream]; see fuzz_targets/decode_fragments.rs.
# control & 0x0F = number of cut sizes (none: one byte at a time), control >> 4 = max size / 32.
BYTE_AT_A_TIME = bytes([0x00])
CUTS_1_2_5 = bytes([0x03, 1, 2, 5])
CUTS_WITH_EMPTY = bytes([0x04, 3, 0, 7, 64])
MAX_64 = bytes([0x21, 2])  # 64-byte limit, pieces of 2: big frames refused before their body

TOPICS = {
    "exact": b"sport/tennis/player1\0sport/tennis/player1",
    "plus": b"sport/+/player1\0sport/tennis/player1",
    "hash-parent": b"sport/tennis/#\0sport/tennis",
    "hash-root": b"#\0a/b/c",
    "sys-hash": b"#\0$SYS/broker/load",
    "sys-plus": b"+/broker/load\0$SYS/broker/load",
    "sys-explicit": b"$SYS/#\0$SYS/broker/load",
    "empty-levels": b"+/+\0/finance",
    "plus-empty-level": b"a/+\0a/",
    "plus-not-parent": b"a/+\0a",
    "misplaced-hash": b"sport/#/ranking\0sport/tennis/ranking",
    "misplaced-plus": b"sport+\0sport",
    "utf8": "capteurs/cuisine/température\0capteurs/+/température".encode(),
    "invalid-utf8": b"a/\xff\0a/b",
    "nul-in-name": b"a/+\0a/\0b",
}


# client: [config: 8 bytes][action]*; see the layout in fuzz_targets/client.rs. Each seed drives a
# connection through a successful flow, so the fuzzer starts from deep states.
C_CONNECT = bytes([0])
C_RESUBSCRIBE = bytes([6])
C_WRITE_ALL = bytes([9, 0xFF])
C_TIMEOUT = bytes([11])
C_JUMP = bytes([12, 0])
C_CLOSED = bytes([13])
WHOLE, COALESCED = 0x00, 0x80


def c_config(flags=0, inflight=0, queued=0, transmit=0, out=0, incoming=0, keep_alive=0, connack=0):
    return bytes([flags, inflight, queued, transmit, out, incoming, keep_alive, connack])


def c_publish(qos, topic=1, length=5, retain=False):
    return bytes([1, qos | (4 if retain else 0) | (topic << 3), length])


def c_subscribe(*filters):  # (filter index, qos)
    return bytes([2, len(filters)]) + bytes(f | (q << 3) for f, q in filters)


def c_unsubscribe(*filters):
    return bytes([3, len(filters)]) + bytes(filters)


def c_ack_held(index):
    return bytes([4, 1 | (index << 1)])


def c_disconnect(drain_100ms=0):
    return bytes([5, drain_100ms])


def c_write(n):
    return bytes([9, n])


def c_advance(millis):
    return bytes([10]) + u16(millis)


def c_receive(data, delivery=WHOLE):
    return bytes([7, len(data), delivery]) + data


# Packet identifier selectors: one of our outgoing ids (by index), an id the broker used before
# (by index), or a small id 1..8.
def ours(i=0):
    return i << 2


def theirs(i=0):
    return 1 | (i << 2)


def small(n):
    return 2 | ((n - 1) << 2)


def c_connack(code=0, session_present=False, delivery=WHOLE):
    return bytes([8, 0, code | (0x10 if session_present else 0), delivery])


def c_in_publish(qos, sel=0, topic=1, length=3, dup=False, delivery=WHOLE):
    head = bytes([8, 1, qos | (4 if dup else 0) | (topic << 4)])
    return head + (bytes([sel]) if qos else b"") + bytes([length, delivery])


def c_in_ack(kind, sel, delivery=WHOLE):
    kinds = {"puback": 2, "pubrec": 3, "pubrel": 4, "pubcomp": 5, "unsuback": 7}
    return bytes([8, kinds[kind], sel, delivery])


def c_suback(sel, codes=None, delivery=WHOLE):
    # codes: 0, 1, 2 grant that QoS, 3 refuses (0x80); None: as many return codes as the SUBSCRIBE
    # had filters, each granted QoS 0.
    if codes is None:
        return bytes([8, 6, sel, 0x00]) + bytes(8) + bytes([delivery])
    return bytes([8, 6, sel, 0x80 | (len(codes) - 1)]) + bytes(codes) + bytes([delivery])


def c_pingresp(delivery=WHOLE):
    return bytes([8, 8, delivery])


CLIENT = {
    # QoS 1 and 2 out, with partial writes: PUBLISH, PUBACK; PUBLISH, PUBREC, PUBREL, PUBCOMP.
    "publish-qos0-1-2": c_config() + C_CONNECT + c_write(3) + C_WRITE_ALL + c_connack()
    + c_publish(1) + C_WRITE_ALL + c_in_ack("puback", ours())
    + c_publish(0, topic=2, length=40) + c_write(7) + C_WRITE_ALL
    + c_publish(2, topic=0) + C_WRITE_ALL + c_in_ack("pubrec", ours()) + C_WRITE_ALL
    + c_in_ack("pubcomp", ours()) + c_disconnect() + C_WRITE_ALL,
    # Subscribe, messages in at QoS 1 and 2 acknowledged by the application (in arrival order),
    # PUBREL, keep-alive PINGREQ/PINGRESP, unsubscribe, then the transport closes.
    "manual-acks-subscribe-keepalive": c_config(flags=0x01) + C_CONNECT + C_WRITE_ALL
    + c_connack() + c_subscribe((1, 1), (2, 2)) + C_WRITE_ALL + c_suback(ours(), [1, 3])
    + c_in_publish(1, small(1)) + c_in_publish(2, small(2), length=200)
    + c_ack_held(1) + c_ack_held(0) + C_WRITE_ALL + c_in_ack("pubrel", theirs(1)) + C_WRITE_ALL
    + C_JUMP + C_WRITE_ALL + c_pingresp() + c_unsubscribe(1) + C_WRITE_ALL
    + c_in_ack("unsuback", ours()) + C_RESUBSCRIBE + C_WRITE_ALL + C_CLOSED,
    # A kept session: QoS 1 and a PUBREC'd QoS 2 in flight when the transport closes; after
    # CONNACK with session present the PUBLISH goes again with DUP and the PUBREL again.
    "resume-session-present": c_config(flags=0x02) + C_CONNECT + C_WRITE_ALL + c_connack()
    + c_publish(1) + c_publish(2) + C_WRITE_ALL + c_in_ack("pubrec", ours(1)) + C_WRITE_ALL
    + C_CLOSED + C_CONNECT + C_WRITE_ALL + c_connack(session_present=True) + C_WRITE_ALL
    + c_in_ack("puback", ours(0)) + c_in_ack("pubcomp", ours(0)) + c_disconnect() + C_WRITE_ALL,
    # The broker lost the session: the discard policy drops what was in flight.
    "resume-discard": c_config(flags=0x06) + C_CONNECT + C_WRITE_ALL + c_connack()
    + c_publish(1) + c_publish(2) + C_WRITE_ALL + C_CLOSED + c_publish(1)
    + C_CONNECT + C_WRITE_ALL + c_connack() + C_WRITE_ALL + c_in_ack("puback", ours()),
    # CONNACK and a QoS 0 message in one read, then a drained disconnect that ends on PUBACK.
    "coalesced-connack-drain": c_config() + C_CONNECT + C_WRITE_ALL
    + c_receive(bytes([0x20, 0x02, 0x00, 0x00, 0x30, 0x05, 0x00, 0x01, 0x61, 0x68, 0x69]), COALESCED)
    + c_publish(1) + c_disconnect(10) + c_write(4) + c_in_ack("puback", ours()) + C_WRITE_ALL,
    # Backpressure: a 16-byte transmit buffer holds QoS 0 messages back, one queue slot, window 1.
    "backpressure": c_config(inflight=1, queued=2, transmit=3) + C_CONNECT + C_WRITE_ALL
    + c_connack() + c_publish(0, length=20) + c_publish(0) + c_publish(1) + c_publish(1)
    + c_write(10) + C_WRITE_ALL + C_WRITE_ALL + c_in_ack("puback", ours()) + C_WRITE_ALL
    + c_advance(10_000) + C_TIMEOUT + C_WRITE_ALL + c_advance(5_000) + C_TIMEOUT,
    # The broker lost the session: the QoS 1 PUBLISH goes again with DUP, the PUBREC'd QoS 2's
    # PUBREL again; the broker answers the PUBREL with PUBCOMP, which alone completes it.
    "resume-lost-session-pubrel": c_config(flags=0x02) + C_CONNECT + C_WRITE_ALL + c_connack()
    + c_publish(1) + c_publish(2) + C_WRITE_ALL + c_in_ack("pubrec", ours(1)) + C_WRITE_ALL
    + C_CLOSED + C_CONNECT + C_WRITE_ALL + c_connack() + C_WRITE_ALL
    + c_in_ack("pubcomp", ours(1)) + c_in_ack("puback", ours(0)),
    # A broker that stops reading: a 16-byte transmit buffer, a QoS 2 message re-sent over and
    # over and PUBRELs repeated (one answer each while unwritten); reads stop once the buffer is
    # full, and the stalled transmit ends the connection at the keep-alive.
    "peer-stops-reading": c_config(transmit=3) + C_CONNECT + C_WRITE_ALL + c_connack()
    + c_in_publish(2, small(1)) + c_in_publish(2, small(1), dup=True)
    + c_in_publish(2, small(1), dup=True) + c_in_ack("pubrel", small(2))
    + c_in_ack("pubrel", small(2)) + c_in_ack("pubrel", small(3)) + c_in_ack("pubrel", small(4))
    + c_in_ack("pubrel", small(5)) + c_in_ack("pubrel", small(6)) + c_write(1) + C_JUMP
    + C_JUMP + C_JUMP,
    # Regressions the target found (both fixed in e91fad7). Manual acks: a QoS 1 message whose ack
    # the application still holds, then a new connection with session_present = 0; the broker's new
    # session reuses the identifier for a new message, which must be delivered.
    "regress-held-ack-across-new-session": c_config(flags=0x01) + C_CONNECT + c_connack()
    + c_in_publish(1, small(1)) + c_connack() + C_CONNECT + c_connack() + c_in_publish(1, small(1)),
    # Manual acks: QoS 2 acknowledged, a QoS 1 held, then the QoS 2 re-sent: its repeated PUBREC
    # must wait behind the held PUBACK (MQTT-4.6.0-2).
    "regress-repeated-pubrec-keeps-ack-order": c_config(flags=0x01) + C_CONNECT + c_connack()
    + c_in_publish(2, small(2)) + c_ack_held(0) + c_in_publish(1, small(1))
    + c_in_publish(2, small(2), dup=True) + c_ack_held(0) + C_WRITE_ALL,
}


# MQTT 5 (config byte 1 0x40): op 8 reads more operands; see Harness::incoming_packet.
V5 = 0x40


def c_publish5(qos, topic=1, length=5, retain=False, expiry=0):
    # expiry: Message Expiry Interval [-, 1, 2, 60] s by index.
    return c_publish(qos, topic, length, retain) + bytes([expiry])


def c_connack5(code=0, session_present=False, receive_max=0, max_packet=0, alias_max=0,
               no_retain=False, keep_alive=0, max_qos=None, no_wildcards=False, delivery=WHOLE):
    # receive_max 1..4 (0: absent); max_packet [-, 16, 40, 100] by index; alias_max 0..3; keep_alive
    # [-, 0, 1, 5] s by index; code 10..15 refuses with [0x80, 0x84, 0x85, 0x86, 0x87, 0x88].
    b = code | (0x10 if session_present else 0)
    p1 = receive_max | (max_packet << 3) | (alias_max << 5) | (0x80 if no_retain else 0)
    p2 = keep_alive | {None: 0, 1: 4, 0: 8}[max_qos] | (0x10 if no_wildcards else 0)
    return bytes([8, 0, b, p1, p2, delivery])


def c_in_publish5(qos, sel=0, topic=1, length=3, alias=None, alias_only=False, delivery=WHOLE):
    a = 0 if alias is None else 4 | ((alias - 1) << 3) | (0x20 if alias_only else 0)
    head = bytes([8, 1, qos | (topic << 4)])
    return head + (bytes([sel]) if qos else b"") + bytes([length, a, delivery])


def c_in_ack5(kind, sel, code=0, delivery=WHOLE):
    # code: PUBACK/PUBREC [0x00, 0x00, 0x10, 0x80, 0x87, 0x91, 0x97, 0x99] by index.
    kinds = {"puback": 2, "pubrec": 3, "pubrel": 4, "pubcomp": 5, "unsuback": 7}
    return bytes([8, kinds[kind], sel, code, delivery])


def c_suback5(sel, codes, delivery=WHOLE):
    # codes: 0, 1, 2 grant that QoS; ("refuse", i) refuses with [0x80, 0x87, 0x8F, 0xA2][i].
    code_bytes = bytes(3 | (c[1] << 2) if isinstance(c, tuple) else c for c in codes)
    return bytes([8, 6, sel, 0x80 | (len(codes) - 1)]) + code_bytes + bytes([delivery])


def c_server_disconnect5(code=1, delivery=WHOLE):  # [0x00, 0x8B, 0x8E, 0x89] by index
    return bytes([8, 13, code, delivery])


def c_auth5(delivery=WHOLE):
    return bytes([8, 14, 0, delivery])


CLIENT_V5 = {
    # CONNACK terms: Receive Maximum 1 (the second QoS 1 waits for the first's PUBACK), Maximum
    # Packet Size 100 (a big message is refused up front), two Topic Aliases (a topic once, then
    # its alias alone), Server Keep Alive 5 s (PINGREQ then), Retain Available 0.
    "v5-connack-terms": c_config(inflight=V5 | 3) + C_CONNECT + C_WRITE_ALL
    + c_connack5(receive_max=1, max_packet=3, alias_max=2, keep_alive=3, no_retain=True)
    + c_publish5(1, topic=1) + c_publish5(1, topic=1) + c_publish5(0, length=150)
    + c_publish5(0, retain=True) + C_WRITE_ALL + c_in_ack5("puback", ours()) + C_WRITE_ALL
    + c_publish5(0, topic=2) + c_publish5(0, topic=1) + C_WRITE_ALL + C_JUMP + C_WRITE_ALL
    + c_pingresp() + c_in_ack5("puback", ours()) + c_disconnect() + C_WRITE_ALL,
    # Failure Reason Codes: PUBACK 0x87 and PUBREC 0x97 refuse the messages (no PUBREL), SUBACK
    # refuses one filter with 0x87; Maximum QoS 1 refuses QoS 2 then; the server disconnects 0x8B.
    "v5-failure-reason-codes": c_config(inflight=V5) + C_CONNECT + C_WRITE_ALL + c_connack5()
    + c_publish5(1) + c_publish5(2) + C_WRITE_ALL + c_in_ack5("puback", ours(0), code=4)
    + c_in_ack5("pubrec", ours(0), code=6) + C_WRITE_ALL + c_subscribe((1, 1), (3, 2))
    + C_WRITE_ALL + c_suback5(ours(), [1, ("refuse", 1)]) + c_server_disconnect5(1)
    + C_CONNECT + C_WRITE_ALL + c_connack5(max_qos=1, no_wildcards=True) + c_publish5(2)
    + c_subscribe((1, 0)) + c_subscribe((0, 0)) + C_WRITE_ALL,
    # Inbound Topic Aliases (our maximum 2): set, used alone, then alias 4 ends the connection with
    # DISCONNECT 0x94, which the driver writes.
    "v5-inbound-aliases": c_config(inflight=V5, transmit=2 << 3) + C_CONNECT + C_WRITE_ALL
    + c_connack5() + c_in_publish5(0, topic=2, alias=1) + c_in_publish5(1, small(1), alias=1,
                                                                          alias_only=True)
    + C_WRITE_ALL + c_in_publish5(0, topic=1, alias=2) + c_in_publish5(0, alias=2, alias_only=True)
    + c_in_publish5(0, topic=0, alias=4) + C_WRITE_ALL,
    # Our Receive Maximum 1 (manual acks): a second unacknowledged QoS 1 message ends the
    # connection with 0x93; an unknown alias with 0x82 on the next connection; AUTH unasked.
    "v5-receive-maximum": c_config(flags=0x01, inflight=V5, queued=1 << 3, transmit=1 << 3)
    + C_CONNECT + C_WRITE_ALL + c_connack5() + c_in_publish5(1, small(1))
    + c_in_publish5(1, small(1))
    + c_ack_held(0) + C_WRITE_ALL + c_in_publish5(2, small(2)) + c_in_publish5(1, small(3))
    + C_WRITE_ALL + C_CONNECT + C_WRITE_ALL + c_connack5(session_present=True)
    + c_in_publish5(0, alias=1, alias_only=True) + C_CONNECT + c_auth5(),
    # A kept session with aliases: the QoS 1 message in flight goes again after the reconnect
    # with its alias set again (aliases start afresh on every connection).
    "v5-resume-aliases": c_config(flags=0x02, inflight=V5 | 3) + C_CONNECT + C_WRITE_ALL
    + c_connack5(alias_max=1) + c_publish5(1, topic=2) + c_publish5(0, topic=2) + C_WRITE_ALL
    + C_CLOSED + C_CONNECT + C_WRITE_ALL + c_connack5(session_present=True, alias_max=1)
    + C_WRITE_ALL + c_in_ack5("puback", ours()) + C_CLOSED + C_CONNECT + c_connack5(code=14),
    # Message expiry: with a window of 1, queued behind a QoS 1 message: a QoS 1 message with 1 s to
    # live, a QoS 0 one with 60 s, a QoS 2 one with 2 s. 2 s later the PUBACK lets the queue move:
    # the QoS 1 and 2 messages are given up (Expired), the QoS 0 one goes out with 58 s left.
    "v5-message-expiry": c_config(inflight=V5 | 1) + C_CONNECT + C_WRITE_ALL + c_connack5()
    + c_publish5(1) + c_publish5(1, expiry=1) + c_publish5(0, topic=2, expiry=3)
    + c_publish5(2, expiry=2) + c_advance(2_000) + C_WRITE_ALL + c_in_ack5("puback", ours())
    + C_WRITE_ALL,
}


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    for protocol, packets, streams in [(MQTT_311, PACKETS, STREAMS), (MQTT_5, PACKETS_5, STREAMS_5)]:
        for name, data in {**packets, **streams}.items():
            write("decode", name, protocol + data)
        if protocol == MQTT_311:  # the MQTT 5 packets reach decode_fragments in the streams
            for name, data in packets.items():
                write("decode_fragments", name, protocol + BYTE_AT_A_TIME + data)
        for name, data in streams.items():
            write("decode_fragments", name + "-bytewise", protocol + BYTE_AT_A_TIME + data)
            write("decode_fragments", name + "-cuts-1-2-5", protocol + CUTS_1_2_5 + data)
            write("decode_fragments", name + "-cuts-with-empty", protocol + CUTS_WITH_EMPTY + data)
    write("decode_fragments", "stream-client-max-64", MQTT_311 + MAX_64 + STREAMS["stream-client"])
    write("decode_fragments", "stream-5-client-max-64", MQTT_5 + MAX_64 + STREAMS_5["stream-5-client"])
    for name, data in TOPICS.items():
        write("topic", name, data)
    for name, data in {**CLIENT, **CLIENT_V5}.items():
        write("client", name, data)


if __name__ == "__main__":
    main()
