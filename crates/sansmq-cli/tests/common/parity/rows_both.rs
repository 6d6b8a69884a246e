//! The rows for the options `pub` and `sub` share: transports, identity, login, will, TLS, the
//! protocol version, and how the command line and connection failures end.

use std::time::Duration;

use super::row::{Row, publish, subscribe};

/// The row for `pub` (`options` + `-t {t} -m x`) and for `sub` (`options` + `-t {t} -C 1 -v`,
/// with a message `x` published once it has subscribed).
fn both(name: &'static str, options: &str) -> [Row; 2] {
    pair(
        name,
        &format!("{options} -t {{t}} -m x"),
        &format!("{options} -t {{t}} -C 1 -v"),
    )
}

/// A `pub` row and a `sub` row with their own arguments; the `sub` is sent a message `x` on
/// `{t}` once it has subscribed.
fn pair(name: &'static str, pub_args: &str, sub_args: &str) -> [Row; 2] {
    [
        publish(name, pub_args),
        subscribe(name, sub_args).feed("{t}", "x", 0),
    ]
}

/// The same arguments for both.
fn both_bare(name: &'static str, args: &str) -> [Row; 2] {
    pair(name, args, args)
}

/// --insecure.
const NO_INSECURE: &str = "sansmq refuses --insecure (exit 1): it always checks that the \
                           certificate names the host; use -h with a name the certificate holds";

/// An empty client id.
const EMPTY_ID: &str = "libmosquitto refuses an empty client id (exit 1); MQTT 3.1.1 allows it \
                        with a clean session (MQTT-3.1.3-6), and sansmq sends it: the broker \
                        assigns one";

/// Keep-alive 0.
const KEEP_ALIVE_0: &str = "mosquitto refuses a keep-alive under 5 s (exit 1); sansmq takes 0, \
                            MQTT's \"no keep-alive\" (MQTT-3.1.2-24 allows it)";

/// -L with a topic from -t.
const URL_WITHOUT_TOPIC: &str = "mosquitto refuses a -L URL without a topic even when -t gives \
                                 one (exit 1); sansmq takes the topic from -t";

/// A broker that closes the connection before CONNACK.
const CLOSED_BEFORE_CONNACK: &str = "mosquitto_sub retries a connection the broker closes \
                                     before CONNACK until -W ends it (255), forever without \
                                     -W; sansmq exits 7 (MOSQ_ERR_CONN_LOST) at once, saying \
                                     the port may be a TLS listener";

/// mosquitto_pub's usage on stdout for a missing topic or message.
const NO_USAGE_DUMP: &str = "mosquitto_pub prints its whole usage on stdout besides the error; \
                             sansmq prints one line on stderr naming the missing option (exit 1 \
                             for both)";

/// mosquitto exits 1 ("Unable to connect (A TLS error occurred.)") or 8 ("Error: A TLS error
/// occurred.") at random when it refuses the broker's certificate: libmosquitto's connect
/// sometimes returns before the handshake fails and sometimes after.
const TLS_VERIFY_FAILED: &[i32] = &[1, 8];

pub(crate) fn rows() -> Vec<Row> {
    let groups: Vec<[Row; 2]> = vec![
        // Transports.
        both("-A bind address", "{b} -A 127.0.0.1"),
        both("-A an address not on this host", "{b} -A 192.0.2.1"),
        both("--unix socket", "--unix {sock}"),
        both("--nodelay", "{b} --nodelay"),
        both("--proxy SOCKS5", "{b} --proxy socks5h://127.0.0.1:{socks}"),
        both(
            "--proxy SOCKS5 that refuses",
            "{b} --proxy socks5h://127.0.0.1:{closed}",
        ),
        both("-M max inflight", "{b} -M 5"),
        // Identity and session.
        both("-i client id", "{b} -i {id}"),
        both("-I client id prefix", "{b} -I parity-prefix-"),
        both("-i and -I together", "{b} -i {id} -I prefix-"),
        both("-i empty", "{b} -i ''").map(|row| row.differs(EMPTY_ID)),
        both("-k 5", "{b} -k 5"),
        both("-k 0", "{b} -k 0").map(|row| row.differs(KEEP_ALIVE_0)),
        both("-k 65536", "{b} -k 65536"),
        both("-c with -i", "{b} -c -i {id}"),
        both("-c without -i", "{b} -c"),
        // Protocol versions.
        both("-V mqttv31", "{b} -V mqttv31"),
        both("-V 311", "{b} -V 311"),
        both("-V bogus", "{b} -V mqttv4"),
        both(
            "-D without -V 5",
            "{b} -D connect session-expiry-interval 10",
        ),
        both(
            "-D with -V 5",
            "{b} -V 5 -D connect session-expiry-interval 10",
        ),
        both("-V 5", "{b} -V mqttv5"),
        both("-V 5 -x", "{b} -V 5 -x 60"),
        // Login, on the broker that wants one.
        both(
            "-u -P accepted",
            "-h 127.0.0.1 -p {auth} -u alice -P secret",
        )
        .map(Row::on_auth_broker),
        both(
            "-u -P wrong password",
            "-h 127.0.0.1 -p {auth} -u alice -P wrong",
        )
        .map(Row::on_auth_broker),
        both("no login refused", "-h 127.0.0.1 -p {auth}").map(Row::on_auth_broker),
        both("-P without -u", "-h 127.0.0.1 -p {auth} -P secret").map(Row::on_auth_broker),
        // URLs.
        pair(
            "-L URL with topic",
            "-L mqtt://127.0.0.1:{port}/{t} -m x",
            "-L mqtt://127.0.0.1:{port}/{t} -C 1 -v",
        ),
        pair(
            "-L URL with login",
            "-L mqtt://alice:secret@127.0.0.1:{auth}/{t} -m x",
            "-L mqtt://alice:secret@127.0.0.1:{auth}/{t} -C 1 -v",
        )
        .map(Row::on_auth_broker),
        pair(
            "-L URL without topic",
            "-L mqtt://127.0.0.1:{port} -m x",
            "-L mqtt://127.0.0.1:{port} -C 1 -v",
        ),
        pair(
            "-L URL without topic, -t given",
            "-L mqtt://127.0.0.1:{port} -t {t} -m x",
            "-L mqtt://127.0.0.1:{port} -t {t} -C 1 -v",
        )
        .map(|row| row.differs(URL_WITHOUT_TOPIC)),
        pair(
            "-L unknown scheme",
            "-L http://127.0.0.1:{port}/{t} -m x",
            "-L http://127.0.0.1:{port}/{t} -C 1 -v",
        ),
        pair(
            "-L mqtts URL",
            "-L mqtts://127.0.0.1:{tls}/{t} --cafile {ca} -m x",
            "-L mqtts://127.0.0.1:{tls}/{t} --cafile {ca} -C 1 -v",
        ),
        // Will.
        both(
            "--will-* on a clean exit",
            "{b} --will-topic {t}/will --will-payload bye --will-qos 1 --will-retain",
        ),
        both("--will-payload without topic", "{b} --will-payload bye"),
        both("--will-qos 3", "{b} --will-topic {t}/will --will-qos 3"),
        both("--will-topic with wildcard", "{b} --will-topic {t}/#"),
        // TLS.
        both("--cafile", "-h 127.0.0.1 -p {tls} --cafile {ca}"),
        both(
            "--cafile -h localhost",
            "-h localhost -p {tls} --cafile {ca}",
        ),
        both("--capath", "-h 127.0.0.1 -p {tls} --capath {capath}"),
        both(
            "--cert --key",
            "-h 127.0.0.1 -p {tls} --cafile {ca} --cert {cert} --key {key}",
        ),
        both(
            "--cafile wrong CA",
            "-h 127.0.0.1 -p {tls} --cafile {wrong_ca}",
        )
        .map(|row| row.exit_alike(TLS_VERIFY_FAILED)),
        both(
            "--cafile missing file",
            "-h 127.0.0.1 -p {tls} --cafile {dir}/none.pem",
        ),
        both(
            "--insecure",
            "-h 127.0.0.1 -p {tls} --cafile {ca} --insecure",
        )
        .map(|row| row.differs(NO_INSECURE)),
        both(
            "TLS to a plain listener",
            "-h 127.0.0.1 -p {port} --cafile {ca}",
        ),
        [
            publish(
                "plain to a TLS listener",
                "-h 127.0.0.1 -p {tls} -k 5 -t {t} -m x",
            )
            .timeout(12),
            subscribe(
                "plain to a TLS listener",
                "-h 127.0.0.1 -p {tls} -t {t} -W 3",
            )
            .timeout(12)
            .differs(CLOSED_BEFORE_CONNACK),
        ],
        // The command line.
        both_bare("--help", "--help").map(Row::stdout_presence),
        both_bare("--version", "--version").map(Row::stdout_presence),
        both("unknown flag -Z", "{b} -Z"),
        both("unknown long flag", "{b} --no-such-flag"),
        both_bare("-t without value", "{b} -t"),
        pair("-p without value", "-t {t} -m x -p", "-t {t} -p"),
        pair("-q without value", "{b} -t {t} -m x -q", "{b} -t {t} -q"),
        // mosquitto_pub prints its whole usage to stdout here: compared as "some text".
        [
            publish("no topic", "{b} -m x")
                .stdout_presence()
                .differs(NO_USAGE_DUMP),
            subscribe("no topic", "{b} -C 1")
                .feed("{t}", "x", 0)
                .stdout_presence(),
        ],
        // Connection failures.
        both("connection refused", "-h 127.0.0.1 -p {closed}"),
        both(
            "--quiet connection refused",
            "-h 127.0.0.1 -p {closed} --quiet",
        ),
        both("--quiet success", "{b} --quiet"),
        both("port 70000", "-h 127.0.0.1 -p 70000"),
        both("port not a number", "-h 127.0.0.1 -p abc"),
        both("port 0", "-h 127.0.0.1 -p 0"),
        both("unknown host", "-h no-such-host.invalid -p {port}"),
    ];
    let mut rows: Vec<Row> = groups.into_iter().flatten().collect();
    // Both `sub -W 2` forms must also hold against a silent listener when TLS is asked for.
    rows.push(
        subscribe(
            "-W 2 TLS against a silent listener",
            "-h 127.0.0.1 -p {silent} --cafile {ca} -t {t} -W 2",
        )
        .within(Duration::from_millis(3_500))
        .differs(super::rows_sub::SAYS_WHY_W_ENDED),
    );
    rows
}
