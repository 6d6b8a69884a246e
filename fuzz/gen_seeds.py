#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets: fuzz/corpus/<target>/seed-<name>.

The packets are assembled here byte by byte from MQTT 3.1.1 (and 3.1 for the MQIsdp CONNECT),
independently of sansmq's encoder, so the seeds also check the decoder against the spec: the
`decode` target replaying them must decode every packet.

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

# decode_fragments: [control][cut sizes][stream]; see fuzz_targets/decode_fragments.rs.
# control & 0x0F = number of cut sizes (none: one byte at a time), control >> 4 = max size / 32.
BYTE_AT_A_TIME = bytes([0x00])
CUTS_1_2_5 = bytes([0x03, 1, 2, 5])
CUTS_WITH_EMPTY = bytes([0x04, 3, 0, 7, 64])
MAX_64 = bytes([0x20, 2])  # 64-byte limit, pieces of 2: big frames refused before their body

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


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    for name, data in {**PACKETS, **STREAMS}.items():
        write("decode", name, data)
    for name, data in PACKETS.items():
        write("decode_fragments", name, BYTE_AT_A_TIME + data)
    for name, data in STREAMS.items():
        write("decode_fragments", name + "-bytewise", BYTE_AT_A_TIME + data)
        write("decode_fragments", name + "-cuts-1-2-5", CUTS_1_2_5 + data)
        write("decode_fragments", name + "-cuts-with-empty", CUTS_WITH_EMPTY + data)
    write("decode_fragments", "stream-client-max-64", MAX_64 + STREAMS["stream-client"])
    for name, data in TOPICS.items():
        write("topic", name, data)


if __name__ == "__main__":
    main()
