//! The `sub` rows: output (`-v`, `-N`, `-F`), retained-message handling, counting and timing.

use std::time::Duration;

use super::row::{Row, subscribe};

/// A JSON payload for `%J` and `--pretty`.
const JSON: &str = r#"{"a":1,"b":[true,null],"c":"x"}"#;

/// `sub -F FORMAT -C 1` on one message `payload` at QoS `qos` (retained if `retained`).
fn format(name: &'static str, format: &str, payload: &[u8], retained: bool) -> Row {
    let row = subscribe(name, "{b} -t {t} -C 1 -F").arg(format);
    if retained {
        row.retained("{t}", payload, 1)
    } else {
        row.feed("{t}", payload, 1)
    }
}

/// `-W` before CONNACK: the same exit code, 255, and a reason on stderr.
pub(crate) const SAYS_WHY_W_ENDED: &str = "mosquitto_sub exits 255 silently when -W ends it \
                                           before CONNACK; sansmq exits 255 too, and says on \
                                           stderr that the broker never answered CONNECT";

pub(crate) fn rows() -> Vec<Row> {
    vec![
        // Plain output.
        subscribe("payload only", "{b} -t {t} -C 2")
            .feed("{t}", "one", 0)
            .feed("{t}", "two", 0),
        subscribe("-v topic and payload", "{b} -t {t} -v -C 1").feed("{t}", "hello world", 0),
        subscribe("-N no newline", "{b} -t {t} -N -C 2")
            .feed("{t}", "a", 0)
            .feed("{t}", "b", 0),
        subscribe("-v -N", "{b} -t {t} -v -N -C 2")
            .feed("{t}", "a", 0)
            .feed("{t}", "b", 0),
        subscribe("-v empty payload prints (null)", "{b} -t {t} -v -C 1").feed("{t}", "", 0),
        subscribe("empty payload", "{b} -t {t} -C 1").feed("{t}", "", 0),
        subscribe("binary payload with NUL", "{b} -t {t} -C 1").feed("{t}", b"a\0b\xff\n", 0),
        subscribe("wildcard filter -C 3", "{b} -t {t}/# -v -C 3")
            .feed("{t}/a", "1", 0)
            .feed("{t}/b/c", "2", 0)
            .feed("{t}", "3", 0),
        subscribe("two -t filters", "{b} -t {t}/a -t {t}/b -v -C 2")
            .feed("{t}/b", "b", 0)
            .feed("{t}/a", "a", 0),
        subscribe("-q 1 receives at QoS 1", "{b} -t {t} -q 1 -F %q -C 1").feed("{t}", "x", 1),
        subscribe("-q 2 receives at QoS 2", "{b} -t {t} -q 2 -F %q -C 1").feed("{t}", "x", 2),
        subscribe("-q 0 downgrades QoS 2", "{b} -t {t} -F %q -C 1").feed("{t}", "x", 2),
        subscribe("-q 3 is refused", "{b} -t {t} -q 3 -E"),
        subscribe("-C 0 is refused", "{b} -t {t} -C 0"),
        // Retained messages.
        subscribe("retained message is printed", "{b} -t {t} -v -C 1").retained("{t}", "old", 0),
        subscribe("-R skips retained", "{b} -t {t} -R -v -C 1")
            .retained("{t}", "stale", 0)
            .feed("{t}", "fresh", 0),
        subscribe(
            "-R prints a retained message published live",
            "{b} -t {t} -R -v -C 1",
        )
        .feed_retained("{t}", "live and retained", 1),
        subscribe("--retained-only", "{b} -t {t}/# --retained-only -v")
            .retained("{t}/a", "ra", 0)
            .retained("{t}/b", "rb", 1)
            .feed("{t}/c", "live", 0)
            .timeout(8),
        subscribe(
            "--retained-only -C 1",
            "{b} -t {t}/# --retained-only -C 1 -v",
        )
        .retained("{t}/a", "ra", 0),
        subscribe(
            "--remove-retained",
            "{b} -t {t}/# --remove-retained -v -W 2",
        )
        .retained("{t}/a", "ra", 0)
        .retained("{t}/b", "rb", 0),
        subscribe(
            "--remove-retained with -T keeps the filtered out",
            "{b} -t {t}/# --remove-retained -T {t}/keep -v -W 2",
        )
        .retained("{t}/keep", "k", 0)
        .retained("{t}/gone", "g", 0),
        subscribe("-T filters out a topic", "{b} -t {t}/# -T {t}/skip -v -C 1")
            .feed("{t}/skip", "no", 0)
            .feed("{t}/keep", "yes", 0),
        subscribe("-T with a wildcard", "{b} -t {t}/# -T {t}/x/# -v -C 1")
            .feed("{t}/x/y", "no", 0)
            .feed("{t}/z", "yes", 0),
        subscribe("-U unsubscribes", "{b} -t {t}/a -U {t}/b -v -C 1").feed("{t}/a", "a", 0),
        subscribe(
            "-U on a persistent session",
            "{b} -c -i {id} -t {t}/a -U {t}/a -W 1",
        )
        .within(Duration::from_secs(4)),
        subscribe("-E exits after SUBACK", "{b} -t {t} -E"),
        subscribe("-E with two filters", "{b} -t {t}/a -t {t}/b -E"),
        // Time limits.
        subscribe("-W 1 without messages exits 27", "{b} -t {t} -W 1")
            .within(Duration::from_millis(2_500)),
        subscribe("-W 2 after one of two messages", "{b} -t {t} -W 2 -C 2")
            .feed("{t}", "only", 0)
            .within(Duration::from_millis(3_500)),
        subscribe("-W 5 -C 1 ends at the message", "{b} -t {t} -W 5 -C 1")
            .feed("{t}", "m", 0)
            .within(Duration::from_millis(4_000)),
        subscribe("-W 0 is refused", "{b} -t {t} -W 0"),
        subscribe(
            "-W 2 against a silent listener",
            "-h 127.0.0.1 -p {silent} -t {t} -W 2",
        )
        .within(Duration::from_millis(3_500))
        .differs(SAYS_WHY_W_ENDED),
        // MQTT 5 only flags on a 3.1.1 connection.
        subscribe("-x session expiry without -V 5", "{b} -t {t} -x 60 -C 1").feed("{t}", "x", 0),
        // -F: every specifier, widths, precision, escapes and times.
        format("-F %t", "%t", b"p", false),
        format("-F %p", "%p", b"payload", false),
        format("-F %q %r %l %m", "%q %r %l %m", b"four", false),
        format("-F %r on a retained message", "%r %p", b"kept", true),
        format("-F %x", "%x", b"\x00\x01\xabz", false),
        format("-F %X", "%X", b"\x00\x01\xabz", false),
        format("-F %j", "%j", b"text", false).mask_digits(),
        format("-F %j binary payload", "%j", b"\xff\xfe", false).mask_digits(),
        format("-F %J JSON payload", "%J", JSON.as_bytes(), false).mask_digits(),
        format("-F %J non-JSON payload", "%J", b"not json", false).mask_digits(),
        subscribe("-F %J --pretty", "{b} -t {t} -C 1 -F %J --pretty")
            .feed("{t}", JSON, 0)
            .mask_digits(),
        format("-F %I %U times", "%I|%U|", b"t", false).mask_digits(),
        format("-F @ strftime", "@Y-@m-@dT@H:@M:@S @z", b"t", false).mask_digits(),
        format("-F %% and @@", "100%% @@ %%p", b"p", false),
        format("-F unknown %e is refused", "%e", b"p", false),
        format("-F unknown %z is refused", "[%z]", b"p", false),
        format("-F trailing % is refused", "p=%p %", b"p", false),
        format("-F trailing @ is refused", "p=%p @", b"p", false),
        format("-F unknown escape \\z is refused", "%p\\z", b"p", false),
        format("-F widths", "[%10t][%-10t][%5p][%-5p]", b"ab", false),
        format(
            "-F precision",
            "[%.2p][%8.3p][%-8.3p][%.1t]",
            b"abcdef",
            false,
        ),
        format("-F numeric widths", "[%3q][%-3l][%05m][%04l]", b"xy", false),
        format("-F escapes", "%t\\t%p\\n\\\\\\e\\a|", b"esc", false),
        format(
            "-F hex with precision",
            "[%10.3x][%-6X]",
            b"abcdefgh",
            false,
        ),
        format("-F width on %q", "[%-5q][%3r]", b"q", false),
        subscribe("-F with -N", "{b} -t {t} -C 1 -N -F %p").feed("{t}", "n", 0),
        subscribe("-F with -v", "{b} -t {t} -C 1 -v -F [%p]").feed("{t}", "v", 0),
        format("-F %p binary", "<%p>", b"\x00\xff\x01", false),
        // A big message on a persistent session at QoS 1.
        subscribe(
            "2 MiB message to sub -c -q 1",
            "{b} -t {t} -c -i {id} -q 1 -C 1",
        )
        .feed("{t}", vec![b'm'; 2 * 1024 * 1024], 1)
        .timeout(15),
        subscribe(
            "--max-packet-size is ours",
            "{b} -t {t} --max-packet-size 1000 -C 1",
        )
        .feed("{t}", vec![b'x'; 200], 1)
        .differs(
            "mosquitto_sub 2.0.11 has no --max-packet-size (unknown option, exit 1); sansmq \
             takes it, and ends with a clear error on a message over it instead of \
             reconnecting forever",
        ),
        subscribe("-d goes to stdout", "{b} -t {t} -i {id} -d -W 1").stdout_presence(),
    ]
}
