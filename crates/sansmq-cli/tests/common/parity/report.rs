//! The parity table as text (every row, both results, the verdict) and as the Markdown summary for
//! the README.

use std::fmt::Write as _;

use super::mqtt::Seen;
use super::row::{Expect, Row};
use super::run::{Extra, Observed};

/// How a row came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Expected the same, and it was.
    Identical,
    /// A deliberate difference, and it differed.
    Deliberate,
    /// Expected the same, and it was not.
    Mismatch,
    /// Marked as a difference, yet the same: promote it to `Same`.
    Promote,
    /// Not run.
    Ignored,
}

impl Verdict {
    pub(crate) fn of(row: &Row, results: Option<&Results>) -> Self {
        let Some(results) = results else {
            return Self::Ignored;
        };
        let same = results.mosquitto.0 == results.sansmq.0;
        match (&row.expect, same) {
            (Expect::Same, true) => Self::Identical,
            (Expect::Same, false) => Self::Mismatch,
            (Expect::Differs(_), false) => Self::Deliberate,
            (Expect::Differs(_), true) => Self::Promote,
        }
    }

    pub(crate) fn is_failure(self) -> bool {
        matches!(self, Self::Mismatch | Self::Promote)
    }

    fn label(self) -> &'static str {
        match self {
            Self::Identical => "same",
            Self::Deliberate => "differs (deliberate)",
            Self::Mismatch => "MISMATCH",
            Self::Promote => "PROMOTE to Same",
            Self::Ignored => "ignored",
        }
    }
}

/// Both runs of a row.
#[derive(Debug, Clone)]
pub(crate) struct Results {
    pub(crate) mosquitto: (Observed, Extra),
    pub(crate) sansmq: (Observed, Extra),
}

/// The command line as the table shows it, placeholders kept.
pub(crate) fn command(row: &Row) -> String {
    let args: Vec<String> = row
        .args
        .iter()
        .map(|a| {
            if a.is_empty() || a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect();
    let signal = row
        .signal
        .map(|signal| format!(", then SIG{signal}"))
        .unwrap_or_default();
    format!("{} {}{signal}", row.tool.sansmq(), args.join(" "))
}

/// One line about a run.
pub(crate) fn summary(observed: &Observed) -> String {
    let exit = match (observed.code, observed.timed_out) {
        (_, true) => "TIMED OUT (killed)".to_owned(),
        (Some(code), false) => match observed.code_alike {
            Some(alike) if alike.first() == Some(&code) => format!("exit one of {alike:?}"),
            _ => format!("exit {code}"),
        },
        (None, false) => "killed by a signal".to_owned(),
    };
    let mut line = format!(
        "{exit}, stdout {}, stderr {}",
        bytes(&observed.stdout),
        if observed.stderr_empty {
            "empty"
        } else {
            "non-empty"
        }
    );
    if let Some(on_time) = observed.on_time {
        let _ = write!(line, ", {}", if on_time { "on time" } else { "LATE" });
    }
    if !observed.watched.is_empty() {
        let _ = write!(line, ", watched {}", messages(&observed.watched));
    }
    if let Some(seen) = &observed.watched_v5 {
        let _ = write!(line, ", watched with MQTT 5 {}", bytes(seen));
    }
    if !observed.retained.is_empty() {
        let _ = write!(line, ", retained after {}", messages(&observed.retained));
    }
    line
}

/// What differs between the two runs, part by part.
pub(crate) fn differences(m: &Observed, s: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    if (m.code, m.timed_out) != (s.code, s.timed_out) {
        out.push(format!(
            "exit: mosquitto {:?}{} vs sansmq {:?}{}",
            m.code,
            if m.timed_out { " (timed out)" } else { "" },
            s.code,
            if s.timed_out { " (timed out)" } else { "" }
        ));
    }
    if m.stdout != s.stdout {
        out.push(format!(
            "stdout: mosquitto {} vs sansmq {}",
            bytes(&m.stdout),
            bytes(&s.stdout)
        ));
    }
    if m.stderr_empty != s.stderr_empty {
        out.push(format!(
            "stderr empty: mosquitto {} vs sansmq {}",
            m.stderr_empty, s.stderr_empty
        ));
    }
    if m.on_time != s.on_time {
        out.push(format!(
            "on time: mosquitto {:?} vs sansmq {:?}",
            m.on_time, s.on_time
        ));
    }
    if m.watched != s.watched {
        out.push(format!(
            "watched: mosquitto {} vs sansmq {}",
            messages(&m.watched),
            messages(&s.watched)
        ));
    }
    if m.watched_v5 != s.watched_v5 {
        let shown = |seen: &Option<Vec<u8>>| seen.as_deref().map_or("-".to_owned(), bytes);
        out.push(format!(
            "watched with MQTT 5: mosquitto {} vs sansmq {}",
            shown(&m.watched_v5),
            shown(&s.watched_v5)
        ));
    }
    if m.retained != s.retained {
        out.push(format!(
            "retained after: mosquitto {} vs sansmq {}",
            messages(&m.retained),
            messages(&s.retained)
        ));
    }
    out
}

/// `N B "text..."`, escaped and cut at 60 characters.
pub(crate) fn bytes(data: &[u8]) -> String {
    const SHOWN: usize = 60;
    let text: String = data.escape_ascii().to_string();
    let cut: String = text.chars().take(SHOWN).collect();
    let more = if text.chars().count() > SHOWN {
        "..."
    } else {
        ""
    };
    format!("{} B \"{cut}{more}\"", data.len())
}

fn messages(seen: &[Seen]) -> String {
    let shown: Vec<String> = seen
        .iter()
        .take(4)
        .map(|m| {
            format!(
                "{} q{} r{} {}",
                m.topic,
                m.qos,
                u8::from(m.retain),
                bytes(&m.payload)
            )
        })
        .collect();
    let more = if seen.len() > 4 {
        format!(" +{} more", seen.len() - 4)
    } else {
        String::new()
    };
    format!("{} [{}{more}]", seen.len(), shown.join("; "))
}

/// The whole table, one block per row.
pub(crate) fn table(rows: &[Row], results: &[Option<Results>]) -> String {
    let mut out = String::new();
    for (index, (row, result)) in rows.iter().zip(results).enumerate() {
        let verdict = Verdict::of(row, result.as_ref());
        let _ = writeln!(
            out,
            "#{index:03} {:<22} {}\n     {}",
            verdict.label(),
            row.name,
            command(row)
        );
        match result {
            None => {
                let _ = writeln!(out, "     ignored: {}", row.ignored.unwrap_or_default());
            }
            Some(results) => {
                let (m, me) = &results.mosquitto;
                let (s, se) = &results.sansmq;
                let _ = writeln!(
                    out,
                    "     mosquitto ({:.1} s): {}\n     sansmq    ({:.1} s): {}",
                    me.elapsed.as_secs_f64(),
                    summary(m),
                    se.elapsed.as_secs_f64(),
                    summary(s)
                );
                if let Expect::Differs(why) = &row.expect {
                    let _ = writeln!(out, "     deliberate: {why}");
                }
                if verdict == Verdict::Mismatch {
                    for difference in differences(m, s) {
                        let _ = writeln!(out, "     ! {difference}");
                    }
                    for (who, extra) in [("mosquitto", me), ("sansmq", se)] {
                        let first = extra.stderr.lines().next().unwrap_or_default();
                        if !first.is_empty() {
                            let _ = writeln!(out, "     {who} stderr: {first}");
                        }
                    }
                }
            }
        }
    }
    out
}

/// The README summary: how many rows are identical, and the deliberate differences with why.
pub(crate) fn markdown(rows: &[Row], results: &[Option<Results>]) -> String {
    let verdicts: Vec<Verdict> = rows
        .iter()
        .zip(results)
        .map(|(row, result)| Verdict::of(row, result.as_ref()))
        .collect();
    let run = verdicts.iter().filter(|v| **v != Verdict::Ignored).count();
    let identical = verdicts
        .iter()
        .filter(|v| **v == Verdict::Identical)
        .count();
    let mut out = format!(
        "`sansmq pub`/`sub`/`rr` against `mosquitto_pub`/`mosquitto_sub`/`mosquitto_rr` 2.0.11 \
         (`cargo test -p sansmq-cli --test mosquitto_parity`): **{identical} of {run} command \
         pairs identical** (exit code, stdout bytes, what a second subscriber received, what \
         stays retained).\n\n"
    );
    let mut section = |title: &str, wanted: Verdict, why: &dyn Fn(&Row) -> String| {
        let picked: Vec<&Row> = rows
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| **v == wanted)
            .map(|(row, _)| row)
            .collect();
        if picked.is_empty() {
            return;
        }
        let _ = writeln!(out, "{title}\n\n| Command | Why |\n|---|---|");
        for row in picked {
            let _ = writeln!(
                out,
                "| `{}` | {} |",
                command(row).replace('|', "\\|"),
                why(row).replace('|', "\\|")
            );
        }
        out.push('\n');
    };
    section(
        "Deliberate differences:",
        Verdict::Deliberate,
        &|row| match &row.expect {
            Expect::Differs(why) => (*why).to_owned(),
            Expect::Same => String::new(),
        },
    );
    section("Not yet identical:", Verdict::Mismatch, &|row| {
        row.name.to_owned()
    });
    section("Not run:", Verdict::Ignored, &|row| {
        row.ignored.unwrap_or_default().to_owned()
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::row::publish;

    fn observed(code: i32) -> (Observed, Extra) {
        let observed = Observed {
            code: Some(code),
            code_alike: None,
            timed_out: false,
            stdout: Vec::new(),
            stderr_empty: true,
            on_time: None,
            watched: Vec::new(),
            watched_v5: None,
            retained: Vec::new(),
        };
        let extra = Extra {
            stderr: String::new(),
            elapsed: std::time::Duration::ZERO,
        };
        (observed, extra)
    }

    fn results(mosquitto: i32, sansmq: i32) -> Results {
        Results {
            mosquitto: observed(mosquitto),
            sansmq: observed(sansmq),
        }
    }

    #[test]
    fn a_deliberate_difference_that_vanished_asks_to_be_promoted() {
        let row = publish("r", "-t x -m y").differs("because");
        assert_eq!(Verdict::of(&row, Some(&results(0, 0))), Verdict::Promote);
        assert_eq!(Verdict::of(&row, Some(&results(0, 1))), Verdict::Deliberate);
        assert!(Verdict::Promote.is_failure());
    }

    #[test]
    fn a_row_expected_the_same_fails_on_any_difference() {
        let row = publish("r", "-t x -m y");
        assert_eq!(Verdict::of(&row, Some(&results(5, 5))), Verdict::Identical);
        assert_eq!(Verdict::of(&row, Some(&results(5, 1))), Verdict::Mismatch);
        assert_eq!(
            differences(&observed(5).0, &observed(1).0),
            ["exit: mosquitto Some(5) vs sansmq Some(1)"]
        );
        assert_eq!(Verdict::of(&row, None), Verdict::Ignored);
    }
}
