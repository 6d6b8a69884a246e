//! The `pub` rows: where the message comes from (`-m`, `-f`, `-n`, `-s`, `-l`) byte for byte,
//! QoS, retain and repeats.

use super::row::{Row, publish};

pub(crate) fn rows() -> Vec<Row> {
    let long_line: Vec<u8> = (0..300_000u32)
        .map(|i| b'a' + (i % 26) as u8)
        .chain(*b"\nend\n")
        .collect();
    vec![
        publish("-m", "{b} -t {t} -m hello"),
        publish("-m empty", "{b} -t {t} -m ''"),
        publish("-m with spaces and UTF-8", "{b} -t {t}")
            .arg("-m")
            .arg("h\u{e9}llo w\u{f6}rld"),
        publish("-n null message", "{b} -t {t} -n"),
        publish("-f file, bytes as they are", "{b} -t {t} -f {file}"),
        publish("-f a missing file", "{b} -t {t} -f {dir}/no-such-file"),
        publish("-f a 2 MiB file at QoS 1", "{b} -t {t} -f {bigfile} -q 1").timeout(15),
        publish("-m and -f together", "{b} -t {t} -m a -f {file}"),
        publish("-m and -n together", "{b} -t {t} -m a -n"),
        // mosquitto prints its whole usage to stdout here: compared as "some text".
        publish("no message option", "{b} -t {t}")
            .stdout_presence()
            .differs(
                "mosquitto_pub prints its whole usage on stdout besides the error; sansmq \
                 prints one line on stderr naming the missing option (exit 1 for both)",
            ),
        publish("-q 0", "{b} -t {t} -m q0 -q 0"),
        publish("-q 1", "{b} -t {t} -m q1 -q 1"),
        publish("-q 2", "{b} -t {t} -m q2 -q 2"),
        publish("-q 3 is refused", "{b} -t {t} -m x -q 3"),
        publish("-r retains", "{b} -t {t} -m kept -r"),
        publish("-r -q 1 retains", "{b} -t {t} -m kept -r -q 1"),
        publish("-r -n clears a retained message", "{b} -t {t} -r -n").retained("{t}", "old", 0),
        publish("-r -m '' clears a retained message", "{b} -t {t} -r -m ''")
            .retained("{t}", "old", 1),
        publish("wildcard topic is refused", "{b} -t {t}/# -m x"),
        publish("empty topic is refused", "{b} -m x -t ''").differs(
            "mosquitto_pub says the topic is invalid but exits 0; sansmq exits 1, so that a \
             script sees the failure",
        ),
        // stdin, whole (-s).
        publish("-s whole stdin", "{b} -t {t} -s").stdin("line 1\nline 2\n"),
        publish("-s empty stdin", "{b} -t {t} -s"),
        publish("-s without trailing newline", "{b} -t {t} -s").stdin("no newline"),
        publish("-s CRLF", "{b} -t {t} -s").stdin("a\r\nb\r\n"),
        publish("-s NUL bytes", "{b} -t {t} -s").stdin(b"a\0b\0\n\xff".to_vec()),
        publish("-s -r", "{b} -t {t} -s -r").stdin("retained from stdin"),
        // stdin, line by line (-l).
        publish("-l lines", "{b} -t {t} -l").stdin("one\ntwo\nthree\n"),
        publish("-l empty stdin", "{b} -t {t} -l"),
        publish("-l without trailing newline", "{b} -t {t} -l").stdin("a\nb"),
        publish("-l CRLF", "{b} -t {t} -l").stdin("a\r\nb\r\n"),
        publish("-l empty lines", "{b} -t {t} -l").stdin("a\n\n\nb\n"),
        publish("-l NUL bytes", "{b} -t {t} -l")
            .stdin(b"a\0b\n\0\n".to_vec())
            .differs(
                "mosquitto_pub cuts a line at its first NUL and drops a line that starts with \
                 one (it measures lines with strlen); sansmq publishes each line's bytes as \
                 they are",
            ),
        publish("-l a 300 kB line", "{b} -t {t} -l").stdin(long_line),
        publish("-l -q 1", "{b} -t {t} -l -q 1").stdin("x\ny\n"),
        publish("-l -q 2", "{b} -t {t} -l -q 2").stdin("x\ny\n"),
        publish("-l -r", "{b} -t {t} -l -r").stdin("first\nlast\n"),
        // Repeats.
        publish("--repeat 3", "{b} -t {t} -m r --repeat 3"),
        publish("--repeat 3 -q 1", "{b} -t {t} -m r --repeat 3 -q 1"),
        publish(
            "--repeat-delay 0.2",
            "{b} -t {t} -m r --repeat 3 --repeat-delay 0.2",
        ),
        publish("--repeat with -l", "{b} -t {t} -l --repeat 2").stdin("a\n"),
        publish("--repeat 0", "{b} -t {t} -m r --repeat 0"),
        publish("--repeat-delay alone", "{b} -t {t} -m r --repeat-delay 1"),
        publish("--repeat -s", "{b} -t {t} -s --repeat 2").stdin("s"),
        publish("-x session expiry without -V 5", "{b} -t {t} -m x -x 60"),
        publish("-M max inflight", "{b} -t {t} -l -q 1 -M 1").stdin("a\nb\nc\n"),
        publish("-M 0 is refused", "{b} -t {t} -m x -M 0"),
        publish(
            "--max-packet-size is ours",
            "{b} -t {t} -m 0123456789 --max-packet-size 1000",
        )
        .differs(
            "mosquitto_pub 2.0.11 has no --max-packet-size (unknown option, exit 1); sansmq \
             takes it, and refuses a message over it",
        ),
        publish("-d goes to stdout", "{b} -t {t} -m x -i {id} -d").stdout_presence(),
        publish(
            "-k 5 against a silent listener",
            "-h 127.0.0.1 -p {silent} -t {t} -m x -k 5",
        )
        .timeout(15),
    ]
}
