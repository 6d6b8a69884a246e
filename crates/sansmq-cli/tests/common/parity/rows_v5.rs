//! The MQTT 5 rows: `-D` properties (taken, and refused as mosquitto refuses them) on `pub`
//! and `sub`, and `rr` against mosquitto_rr.

use super::row::{Row, publish, request, subscribe};

/// A `pub` row (`options` + `-t {t} -m x`) and a `sub` row (`options` + `-t {t} -C 1 -v`, sent
/// `x` once subscribed) with the same options.
fn both(name: &'static str, options: &str) -> [Row; 2] {
    [
        publish(name, &format!("{options} -t {{t}} -m x")),
        subscribe(name, &format!("{options} -t {{t}} -C 1 -v")).feed("{t}", "x", 0),
    ]
}

/// mosquitto reads a property's number with C's `atol`: `abc` is 0.
const NOT_A_NUMBER: &str = "mosquitto reads a value that is not a number as 0 and sends it; \
                            sansmq refuses it (exit 1), naming the value";

/// A Session Expiry Interval at DISCONNECT after CONNECT asked for none.
const DISCONNECT_EXPIRY: &str = "mosquitto sends it and its broker closes the connection for the \
                                 protocol error (MQTT-3.14.2-2), after the message went (exit \
                                 0); sansmq refuses the command line (exit 1)";

/// A Subscription Identifier of 0.
const SUBSCRIPTION_ID_0: &str = "mosquitto sends Subscription Identifier 0 and its broker takes \
                                 it; sansmq refuses it (exit 1): MQTT 5 allows 1 to 268,435,455 \
                                 (MQTT 5.0 section 3.8.2.1.2)";

/// mosquitto_rr's -f and -s.
const RR_EMPTY_REQUEST: &str = "mosquitto_rr 2.0.11 publishes an empty request for -f and -s \
                                (it never puts the file or stdin it read into the message); \
                                sansmq sends their bytes";

/// mosquitto_rr's -R.
const RR_NO_RETAINED: &str = "mosquitto_rr accepts -R but prints a retained message on the \
                              response topic as the response; sansmq rr skips it, as -R says";

/// A -V 3.1.x after -D.
const V311_AFTER_D: &str = "mosquitto connects with MQTT 3.1.1 and then fails to send the \
                            properties: pub exits 0 without publishing, sub waits for ever; \
                            sansmq refuses the command line (exit 1)";

pub(crate) fn rows() -> Vec<Row> {
    let groups: Vec<[Row; 2]> = vec![
        // Taken.
        both(
            "-D connect properties",
            "{b} -D connect receive-maximum 10 -D connect maximum-packet-size 100000 -D connect \
                topic-alias-maximum 5 -D connect request-problem-information 1 -D connect \
                request-response-information 0 -D connect user-property k v",
        ),
        both(
            "-D connect session-expiry-interval -i",
            "{b} -i {id} -D connect session-expiry-interval 0",
        ),
        both(
            "-D will properties",
            "{b} --will-topic {t}/will -D will will-delay-interval 5 -D will content-type \
                text/plain -D will user-property k v",
        ),
        both(
            "-D will without --will-topic",
            "{b} -D will content-type text/plain",
        ),
        both(
            "-D disconnect properties",
            // A DISCONNECT the broker refused would have it publish the will.
            "{b} --will-topic {t}/will -D disconnect reason-string bye -D disconnect \
             user-property k v",
        ),
        both("-D then -V 5", "{b} -D connect user-property k v -V 5"),
        both(
            "-D disconnect session-expiry-interval with -x",
            "{b} -i {id} -x 60 -D disconnect session-expiry-interval 0",
        ),
        both(
            "-D disconnect session-expiry-interval without a session",
            "{b} -D disconnect session-expiry-interval 5",
        )
        .map(|row| row.differs(DISCONNECT_EXPIRY)),
        both(
            "-V 311 then -D (MQTT 5)",
            "{b} -V 311 -D connect user-property k v",
        ),
        both("-D names in capitals", "{b} -D CONNECT User-Property k v"),
        // Refused.
        both("-D unknown command", "{b} -D bogus user-property a b"),
        both("-D unknown property", "{b} -D connect bogus 1"),
        both(
            "-D property not allowed in connect",
            "{b} -D connect content-type x",
        ),
        both("-D connack", "{b} -D connack maximum-qos 1"),
        both("-D auth", "{b} -D auth authentication-data x"),
        both("-D puback", "{b} -D puback reason-string x"),
        both(
            "-D subscribe content-type",
            "{b} -D subscribe content-type x",
        ),
        both(
            "-D publish subscription-identifier",
            "{b} -D publish subscription-identifier 3",
        ),
        both(
            "-D user-property without value",
            "{b} -D connect user-property a",
        ),
        both("-D negative number", "{b} -D connect receive-maximum -5"),
        both(
            "-D number out of range",
            "{b} -D connect receive-maximum 65536",
        ),
        both("-D receive-maximum 0", "{b} -D connect receive-maximum 0"),
        both(
            "-D maximum-packet-size 0",
            "{b} -D connect maximum-packet-size 0",
        ),
        both(
            "-D request-problem-information 2",
            "{b} -D connect request-problem-information 2",
        ),
        both(
            "-D twice",
            "{b} -D connect receive-maximum 5 -D connect receive-maximum 6",
        ),
        both(
            "-D session expiry and -x",
            "{b} -x 60 -D connect session-expiry-interval 10",
        ),
        both(
            "-D session expiry and -c",
            "{b} -c -i {id} -D connect session-expiry-interval 10",
        ),
        both("-D not a number", "{b} -D connect topic-alias-maximum abc")
            .map(|row| row.differs(NOT_A_NUMBER)),
    ];
    let mut rows: Vec<Row> = groups.into_iter().flatten().collect();
    rows.extend([
        publish(
            "-D publish properties",
            "{b} -t {t} -m x -q 1 -D publish payload-format-indicator 1 -D publish \
                message-expiry-interval 60 -D publish content-type text/plain -D publish \
                response-topic {t}/r -D publish correlation-data c1 -D publish user-property a b \
                -D publish user-property a c",
        )
        .watch_v5(),
        publish(
            "-D publish topic-alias",
            "{b} -t {t} -m x -D publish topic-alias 1",
        )
        .watch_v5(),
        publish(
            "-D publish properties on every -l line",
            "{b} -t {t} -l -q 1 -D publish content-type text/plain -D publish user-property k v",
        )
        .stdin("one\ntwo\n")
        .watch_v5(),
        publish(
            "-D publish properties on every --repeat",
            "{b} -t {t} -m x --repeat 3 -D publish correlation-data c9 -D publish response-topic \
                {t}/r",
        )
        .watch_v5(),
        publish(
            "-D publish correlation-data with spaces and UTF-8",
            "{b} -t {t} -m x -D publish correlation-data 'h\u{e9}llo w\u{f6}rld'",
        )
        .watch_v5(),
        publish(
            "-D publish topic-alias 0",
            "{b} -t {t} -m x -D publish topic-alias 0",
        ),
        publish(
            "-D publish message-expiry-interval too large",
            "{b} -t {t} -m x -D publish \
            message-expiry-interval 4294967296",
        ),
        publish(
            "-D publish then -V 311",
            "{b} -t {t} -m x -D publish content-type x -V 311",
        )
        .differs(V311_AFTER_D),
        subscribe(
            "-D subscribe subscription-identifier",
            "{b} -t {t} -C 1 -v -D subscribe \
            subscription-identifier 9",
        )
        .feed("{t}", "x", 0),
        subscribe(
            "-D subscribe user-property",
            "{b} -t {t} -C 1 -v -D subscribe user-property k v",
        )
        .feed("{t}", "x", 0),
        subscribe(
            "-D subscribe subscription-identifier 0",
            "{b} -t {t} -C 1 -v -D subscribe \
            subscription-identifier 0",
        )
        .feed("{t}", "x", 0)
        .differs(SUBSCRIPTION_ID_0),
        subscribe(
            "-D unsubscribe user-property with -U",
            "{b} -t {t} -U {t}/old -E -D \
            unsubscribe user-property k v",
        ),
    ]);
    rows.extend(format_rows());
    rows.extend(rr_rows());
    rows
}

/// `sub -F` with the MQTT 5 specifiers, fed a message with properties by mosquitto_pub -V 5.
fn format_rows() -> Vec<Row> {
    const PROPERTIES: &str = "-D publish payload-format-indicator 1 -D publish content-type \
                              text/plain -D publish response-topic {t}/reply -D publish \
                              correlation-data 'req 1' -D publish user-property a b -D publish \
                              user-property a c";
    let fed = |name: &'static str, args: &str| {
        subscribe(name, &format!("{{b}} -t {{t}} -C 1 {args}")).feed_v5("{t}", "x", 1, PROPERTIES)
    };
    vec![
        fed(
            "-V 5 -F %A %C %D %F %P %R %S",
            "-V 5 -F '%A|%C|%D|%F|%P|%R|%S'",
        ),
        fed(
            "-V 5 -F widths of v5 specifiers",
            "-V 5 -F '%5A|%-12C|%14C|%.4C|%3D|%03F|%-4F|%5P|%.3R|%8R|%05S'",
        ),
        fed("-V 5 -F %E message expiry", "-V 5 -F '%E|%5E|%-5E|'"),
        fed("-V 5 -F %j with properties", "-V 5 -q 1 -F %j").mask_digits(),
        fed("-V 5 -F %J --pretty with properties", "-V 5 -F %J --pretty").mask_digits(),
        fed(
            "-V 5 -D subscribe subscription-identifier -F %S %j",
            "-V 5 -D subscribe subscription-identifier 42 -F '%S|%j'",
        )
        .mask_digits(),
        fed(
            "-F v5 specifiers on a 3.1.1 subscription",
            "-F '%C|%D|%P|%R|%5S|%j'",
        )
        .mask_digits(),
        fed("-V 5 -v with properties", "-V 5 -v"),
        subscribe(
            "-V 5 -F %E with message-expiry-interval",
            "{b} -t {t} -C 1 -V 5 -F '%E|%j'",
        )
        .feed_v5("{t}", "x", 0, "-D publish message-expiry-interval 3600")
        .mask_digits(),
    ]
}

/// `rr` against mosquitto_rr. The response is the feed: published to the response topic once
/// the broker has the request, as a responder would.
fn rr_rows() -> Vec<Row> {
    let answered = |name: &'static str, args: &str| {
        request(
            name,
            &format!("{{b}} -i {{id}} -t {{t}}/req -e {{t}}/resp {args}"),
        )
        .ready_when_logged("Received PUBLISH from {id}")
        .feed("{t}/resp", "pong", 0)
    };
    vec![
        answered("rr answered", "-m ping -W 5"),
        answered("rr -v", "-m ping -v -W 5"),
        answered("rr -N", "-m ping -N -W 5"),
        answered("rr -F", "-m ping -F '%t|%p|%q|%r|%l|%S|%P' -W 5"),
        answered("rr -q 1", "-m ping -q 1 -W 5"),
        request(
            "rr -q 2 -F %q",
            "{b} -i {id} -t {t}/req -e {t}/resp -m ping -q 2 -F %q -W 5",
        )
        // At QoS 2 mosquitto forwards the request once the PUBREL is in.
        .ready_when_logged("Received PUBREL from {id}")
        .feed("{t}/resp", "pong", 0),
        answered("rr -n", "-n -W 5"),
        answered("rr -f", "-f {file} -W 5").differs(RR_EMPTY_REQUEST),
        answered("rr -s", "-s -W 5")
            .stdin("from stdin")
            .differs(RR_EMPTY_REQUEST),
        answered(
            "rr -D publish properties",
            "-m ping -W 5 -D publish content-type text/plain -D publish correlation-data c1 -D \
                publish user-property k v",
        )
        .watch_v5(),
        answered(
            "rr -D connect and subscribe",
            "-m ping -W 5 -D connect user-property k v -D subscribe user-property k v",
        ),
        answered("rr -V 5", "-m ping -V 5 -W 5"),
        request(
            "rr -F with the response's properties",
            "{b} -i {id} -t {t}/req -e {t}/resp -m ping -W 5 -F '%t|%p|%C|%D|%P|%j'",
        )
        .ready_when_logged("Received PUBLISH from {id}")
        .feed_v5(
            "{t}/resp",
            "pong",
            0,
            "-D publish content-type text/plain -D publish correlation-data c1 -D publish \
             user-property k v",
        )
        .mask_digits(),
        answered("rr -V 311", "-m ping -V 311 -W 5"),
        answered("rr -c -i", "-m ping -c -W 5"),
        answered("rr -x", "-m ping -x 10 -W 5"),
        request(
            "rr -W without a responder",
            "{b} -t {t}/req -e {t}/resp -m ping -W 1",
        ),
        request("rr without -e", "{b} -t {t}/req -m ping -W 1"),
        request("rr without -t", "{b} -e {t}/resp -m ping -W 1"),
        request("rr without a message", "{b} -t {t}/req -e {t}/resp -W 1"),
        request(
            "rr -e with a wildcard",
            "{b} -t {t}/req -e {t}/# -m ping -W 1",
        ),
        request(
            "rr -t with a wildcard",
            "{b} -t {t}/# -e {t}/resp -m ping -W 1",
        ),
        request(
            "rr -D publish response-topic",
            "{b} -t {t}/req -e {t}/resp -m ping -W 1 -D publish response-topic {t}/x",
        ),
        request(
            "rr -D unknown property",
            "{b} -t {t}/req -e {t}/resp -m ping -W 1 -D publish bogus 1",
        ),
        request("rr -m and -n", "{b} -t {t}/req -e {t}/resp -m ping -n -W 1"),
        request("rr -r", "{b} -t {t}/req -e {t}/resp -m ping -r -W 1"),
        request("rr -C", "{b} -t {t}/req -e {t}/resp -m ping -C 1 -W 1"),
        request(
            "rr connection refused",
            "-h 127.0.0.1 -p {closed} -t {t}/req -e {t}/resp -m ping -W 1",
        ),
        request(
            "rr -L URL",
            "-L mqtt://127.0.0.1:{port}/{t}/req -e {t}/resp -m ping -W 1",
        ),
        request("rr --help", "--help").stdout_presence(),
        answered("rr with a retained message on -e", "-m ping -W 5").retained("{t}/resp", "old", 0),
        answered("rr -R with a retained message on -e", "-m ping -R -W 5")
            .retained("{t}/resp", "old", 0)
            .differs(RR_NO_RETAINED),
        request("rr -l", "{b} -t {t}/req -e {t}/resp -l -W 2").stdin("ping\n"),
    ]
}
