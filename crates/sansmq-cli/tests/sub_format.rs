//! `sansmq sub -F FORMAT` against mosquitto_sub 2.0 itself: for each case both subscribe to the
//! same mosquitto with the same arguments, one message is published, and their stdout bytes
//! (and stderr, exit code) must be identical. Times differ by the moments each received the
//! message, so for formats that print them the digits are compared as their shape only, and
//! `%U` is checked to be within seconds of mosquitto_sub's.

use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sansmq_e2e::Mosquitto;

/// How long a subscriber may take to get its message on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// How often a non-retained message is published until both subscribers have it.
const REPUBLISH: Duration = Duration::from_millis(100);

/// One `-F` comparison.
#[derive(Debug, Clone)]
struct Case {
    format: &'static str,
    /// More `sub` arguments (`--pretty`, `-N`, `-v`).
    extra: &'static [&'static str],
    topic: &'static str,
    /// `None`: an empty message (`-n`).
    payload: Option<&'static [u8]>,
    /// The QoS it is published with (subscribers ask for 2).
    qos: u8,
    retain: bool,
    /// The `TZ` of both subscribers.
    tz: &'static str,
    /// Whether the output holds the time of arrival: digits are then compared as shape only.
    timed: bool,
}

impl Case {
    const fn new(format: &'static str, payload: &'static [u8]) -> Self {
        Self {
            format,
            extra: &[],
            topic: "fmt/t",
            payload: Some(payload),
            qos: 0,
            retain: false,
            tz: "UTC",
            timed: false,
        }
    }

    const fn qos(mut self, qos: u8) -> Self {
        self.qos = qos;
        self
    }

    const fn extra(mut self, extra: &'static [&'static str]) -> Self {
        self.extra = extra;
        self
    }

    const fn topic(mut self, topic: &'static str) -> Self {
        self.topic = topic;
        self
    }

    const fn empty(mut self) -> Self {
        self.payload = None;
        self
    }

    const fn retained(mut self) -> Self {
        self.retain = true;
        self
    }

    const fn tz(mut self, tz: &'static str) -> Self {
        self.tz = tz;
        self
    }

    const fn timed(mut self) -> Self {
        self.timed = true;
        self
    }
}

/// Starts `program` (mosquitto_sub or `sansmq sub`) for `case`, taking one message.
fn subscriber(program: &[&str], broker: &Mosquitto, topic: &str, case: &Case) -> Child {
    let port = broker.port().to_string();
    let (command, leading) = program.split_first().expect("a program");
    Command::new(command)
        .args(leading)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            topic,
            "-q",
            "2",
            "-C",
            "1",
        ])
        .args(["-F", case.format])
        .args(case.extra)
        .env("TZ", case.tz)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command} runs: {e}"))
}

/// Publishes `case`'s message to `topic` with mosquitto_pub.
fn publish(broker: &Mosquitto, topic: &str, case: &Case, payload_file: &std::path::Path) {
    let port = broker.port().to_string();
    let qos = case.qos.to_string();
    let mut command = Command::new("mosquitto_pub");
    command.args(["-h", "127.0.0.1", "-p", &port, "-t", topic, "-q", &qos]);
    match case.payload {
        Some(payload) => {
            std::fs::write(payload_file, payload).expect("writing the payload");
            command.arg("-f").arg(payload_file);
        }
        None => {
            command.arg("-n");
        }
    }
    if case.retain {
        command.arg("-r");
    }
    let status = command.status().expect("mosquitto_pub runs");
    assert!(status.success(), "mosquitto_pub failed for {case:?}");
}

fn has_exited(child: &mut Child) -> bool {
    !matches!(child.try_wait(), Ok(None))
}

/// Runs `case` through mosquitto_sub and `sansmq sub`; returns their outputs.
fn outputs(broker: &Mosquitto, index: usize, case: &Case) -> (Output, Output) {
    // A topic of its own per case, so no message of another case arrives.
    let topic = format!("{}/{index}", case.topic);
    let payload_file = broker.dir().join(format!("payload-{index}"));
    if case.retain {
        publish(broker, &topic, case, &payload_file);
    }
    let mut theirs = subscriber(&["mosquitto_sub"], broker, &topic, case);
    let mut ours = subscriber(&[env!("CARGO_BIN_EXE_sansmq"), "sub"], broker, &topic, case);
    let started = Instant::now();
    // Neither says when it is subscribed: publish until both have a message.
    while !(has_exited(&mut theirs) && has_exited(&mut ours)) {
        assert!(
            started.elapsed() < PATIENCE,
            "no message within {PATIENCE:?} for {case:?}"
        );
        if !case.retain {
            publish(broker, &topic, case, &payload_file);
        }
        thread::sleep(REPUBLISH);
    }
    if case.retain {
        let port = broker.port().to_string();
        let cleared = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port, "-t", &topic, "-n", "-r"])
            .status()
            .expect("mosquitto_pub runs");
        assert!(cleared.success());
    }
    let theirs = theirs.wait_with_output().expect("mosquitto_sub output");
    let ours = ours.wait_with_output().expect("sansmq output");
    (theirs, ours)
}

/// Digits as `0`: the shape of a time, not its value.
fn shape(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&b| if b.is_ascii_digit() { b'0' } else { b })
        .collect()
}

fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Runs every case against one mosquitto and asserts identical output.
fn compare(cases: &[Case]) {
    let broker = Mosquitto::start();
    let mut differences = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let (theirs, ours) = outputs(&broker, index, case);
        let (their_out, our_out) = if case.timed {
            (shape(&theirs.stdout), shape(&ours.stdout))
        } else {
            (theirs.stdout.clone(), ours.stdout.clone())
        };
        if their_out != our_out
            || theirs.stderr != ours.stderr
            || theirs.status.code() != ours.status.code()
        {
            differences.push(format!(
                "-F {:?} {:?}:\n  mosquitto_sub: {:?} {} {}\n  sansmq sub:    {:?} {} {}",
                case.format,
                case.extra,
                theirs.status.code(),
                show(&theirs.stdout),
                show(&theirs.stderr),
                ours.status.code(),
                show(&ours.stdout),
                show(&ours.stderr),
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} formats differ:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
}

#[test]
fn message_fields_widths_and_escapes_print_as_mosquitto_sub_prints_them() {
    compare(&[
        Case::new("%t|%p|%l|%q|%r|%m|%%", b"hello"),
        Case::new("%t|%p|%l|%q|%r|%m|%%", b"hello").qos(1),
        Case::new("%t|%p|%l|%q|%r|%m|%%", b"hello").qos(2),
        Case::new("%A|%C|%D|%E|%F|%P|%R|%S", b"hello"),
        Case::new("%5A|%05E|%-5F|%-05S|%5C|%05C|%5D|%5P|%5R", b"hello"),
        Case::new("%10p|%-10p|%010p|%3p|%.2p|%-05p|%-p|%05p", b"hello"),
        Case::new("%x|%X|%4x|%5X|%-4x|%012x|%-x|%-012x|%-10X", b"hello"),
        Case::new("%5x|%10x|%-3x|%01x", b"A"),
        Case::new(
            "%10t|%-10t|%.2t|%.3t|%8.3t|%-8.3t|%5p|%2p|%l|%014t|%-014.1t",
            "ünï".as_bytes(),
        )
        .topic("héllo/wörld"),
        Case::new("%5l|%-5l|%05l|%-05l|%m|%5m|%05m|%-5m|%.1l|%5.1q", b"hello").qos(1),
        Case::new(r"\\|\0|\a|\e|\n|\r|\t|\v|@@|a@@b|100%%", b"hello"),
        Case::new("%p|%x|%X|%l|%3p|%-6p|%6x|%-p|", b"\xff\x00\xfe\x80\n"),
        Case::new("[%p][%x][%l][%5p][%-3p][%-p][%m]", b"").empty(),
        Case::new("%r %q %m %t %p", b"kept").qos(1).retained(),
        Case::new("%r %q %m %t %p", b"kept").qos(2).retained(),
        Case::new("%p", b"no line end").extra(&["-N"]),
        Case::new("%p", b"v is ignored").extra(&["-v"]),
        Case::new("%t %p", b"v and N").extra(&["-v", "-N"]),
        Case::new("", b"an empty format prints empty lines"),
        Case::new("-%t-", b"a leading hyphen is a format, not a flag"),
        Case::new("%t", b"the last -F counts").extra(&["-F", "%p"]),
    ]);
}

#[test]
fn json_conversions_print_as_mosquitto_sub_prints_them() {
    compare(&[
        Case::new("%j", b"hello").timed(),
        Case::new("%j", b"hello").qos(1).timed(),
        Case::new("%j", b"").empty().qos(2).timed(),
        Case::new("%j", b"a\"b\\c\n\t\x01\x1f\x7f\xc3\xa9\xff/").timed(),
        Case::new("%j", b"stops\0here").timed(),
        Case::new("%j|%j", b"hello")
            .qos(1)
            .extra(&["--pretty"])
            .timed(),
        Case::new("%j", b"no newline").extra(&["-N"]).timed(),
        Case::new(
            "%J",
            br#" {"b":1,"a":[1, 2.50,{},[]],"b":{}, "n":null,"t":true,"f":false,
                "e":"\u00e9\ud83d\ude00\/","x":1e400,"y":0.1,"z":123456789.123456789,"w":01} "#,
        )
        .timed(),
        Case::new("%J", br#"{"a":[1,{"x":{"y":[]}}],"b":{},"c":"d"}"#)
            .extra(&["--pretty"])
            .timed(),
        Case::new("%J", b"[]").extra(&["--pretty"]).timed(),
        Case::new("%J", b"").empty().timed(),
        Case::new("%J", b"\"just a string\"").retained().timed(),
        Case::new("<%J>%t", b"{not json"),
        Case::new("<%J>%t%J", b"1\x002"),
    ]);
}

#[test]
fn times_print_as_mosquitto_sub_prints_them() {
    compare(&[
        Case::new("%I", b"x").timed(),
        Case::new("%30I|%-30I|%.10I|%5.4I", b"x").timed(),
        Case::new("%I", b"x").tz("ABC-5:30").timed(),
        Case::new("%U|%5U", b"x").timed(),
        Case::new("@Y-@m-@dT@H:@M:@S.@N", b"x").timed(),
        Case::new(
            "@a @A @b @B @c @C @d @D @e @F @g @G @h @H @I @j @k @l @m @M @n @p @P @r @R @s @S @t @T @u @U @V @w @W @x @X @y @Y",
            b"x",
        )
        .timed(),
        Case::new("@z @Z|@Q @E @O @+ @% @1 @5 @@", b"x").tz("ABC-5:30"),
        Case::new("@z @Z", b"x").tz("XYZ3"),
        Case::new("@z @Z", b"x").tz("UTC"),
        Case::new("@z @Z", b"x").tz("Asia/Kolkata"),
        Case::new("@z @Z", b"x").tz("Europe/Berlin"),
        Case::new("@H:@M @z", b"x").tz("Asia/Kolkata").timed(),
    ]);
}

#[test]
fn unix_time_is_the_moment_of_arrival() {
    let broker = Mosquitto::start();
    let (theirs, ours) = outputs(&broker, 0, &Case::new("%U", b"x"));
    let seconds = |output: &Output| -> f64 {
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{output:?}: {e}"))
    };
    let apart = (seconds(&theirs) - seconds(&ours)).abs();
    assert!(apart < 10.0, "{theirs:?} and {ours:?} are {apart} s apart");
}

#[test]
fn formats_mosquitto_sub_refuses_are_refused() {
    for format in ["%", "%y", "50%", "%-", "%5.", "@", "\\", r"\z", "%0-5p"] {
        let theirs = Command::new("mosquitto_sub")
            .args(["-t", "t", "-F", format])
            .output()
            .expect("mosquitto_sub runs");
        let ours = Command::new(env!("CARGO_BIN_EXE_sansmq"))
            .args(["sub", "-t", "t", "-F", format])
            .output()
            .expect("sansmq runs");
        assert_eq!(theirs.status.code(), Some(1), "{format:?}: {theirs:?}");
        assert_eq!(ours.status.code(), Some(1), "{format:?}: {ours:?}");
        let said = String::from_utf8_lossy(&ours.stderr);
        assert!(
            said.contains(&format!("-F {format:?}")),
            "{format:?}: {said}"
        );
    }
}
