//! [`Template`]: emqtt-bench's topic and message templates: `%i` (the client's sequence number),
//! `%c` (its client id), `%u` (its user name) and `%rand_N` (a random number from 1 to N, drawn
//! anew for every message).

use std::fmt::Write as _;

use crate::error::Error;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Sequence,
    ClientId,
    Username,
    Random(u64),
}

/// A parsed template. `%%` is a literal `%`; any other `%` that starts none of the placeholders
/// is kept as it is, as emqtt-bench does.
///
/// ```
/// use sansmq_bench::{Template, TemplateVars};
///
/// let topic = Template::parse("bench/%c/%i").unwrap();
/// let vars = TemplateVars { sequence: 7, client_id: "dev7", username: None };
/// assert_eq!(topic.render(&vars), "bench/dev7/7");
/// assert!(!topic.is_random());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template's placeholders stand for, for one client.
#[derive(Debug, Clone, Copy)]
pub struct TemplateVars<'a> {
    /// `%i`: the client's sequence number (from `-n`, counting up).
    pub sequence: u32,
    /// `%c`: the client id.
    pub client_id: &'a str,
    /// `%u`: the user name (empty when there is none).
    pub username: Option<&'a str>,
}

impl Template {
    /// Parses `source`; `%rand_N` needs a number N ≥ 1.
    pub fn parse(source: &str) -> Result<Self, Error> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(at) = rest.find('%') {
            text.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (part, skip) = if after.starts_with('%') {
                text.push('%');
                (None, 1)
            } else if after.starts_with('i') {
                (Some(Part::Sequence), 1)
            } else if after.starts_with('c') {
                (Some(Part::ClientId), 1)
            } else if after.starts_with('u') {
                (Some(Part::Username), 1)
            } else if let Some(digits) = after.strip_prefix("rand_") {
                let len = digits.bytes().take_while(u8::is_ascii_digit).count();
                let n = digits[..len]
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| Error::Template {
                        template: source.to_owned(),
                        problem: "%rand_N needs a number N of at least 1",
                    })?;
                (Some(Part::Random(n)), "rand_".len() + len)
            } else {
                text.push('%');
                (None, 0)
            };
            if let Some(part) = part {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(part);
            }
            rest = &after[skip..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self { parts })
    }

    /// Whether rendering twice may give different strings (`%rand_N`): such a topic is rendered
    /// for every message, any other once per client.
    pub fn is_random(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Random(_)))
    }

    /// Whether the template uses `%i`, so that every client gets its own string.
    pub fn is_per_client(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Sequence | Part::ClientId))
    }

    /// The string for one client (and one message, with `%rand_N`).
    pub fn render(&self, vars: &TemplateVars<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                // Writing to a String cannot fail.
                Part::Sequence => {
                    let _ = write!(out, "{}", vars.sequence);
                }
                Part::ClientId => out.push_str(vars.client_id),
                Part::Username => out.push_str(vars.username.unwrap_or("")),
                Part::Random(n) => {
                    let _ = write!(out, "{}", fastrand::u64(1..=*n));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars<'static> {
        TemplateVars {
            sequence: 42,
            client_id: "bench_42",
            username: Some("alice"),
        }
    }

    #[test]
    fn placeholders_are_replaced_and_the_rest_kept() {
        let t = Template::parse("a/%i/%c/%u/%%/%x/50%").unwrap();
        assert_eq!(t.render(&vars()), "a/42/bench_42/alice/%/%x/50%");
        assert!(t.is_per_client());
        assert!(!t.is_random());
    }

    #[test]
    fn rand_draws_from_one_to_n() {
        let t = Template::parse("t/%rand_3/x").unwrap();
        assert!(t.is_random());
        for _ in 0..100 {
            let s = t.render(&vars());
            let n: u64 = s
                .trim_start_matches("t/")
                .trim_end_matches("/x")
                .parse()
                .unwrap();
            assert!((1..=3).contains(&n), "{s}");
        }
        assert_eq!(Template::parse("%rand_1").unwrap().render(&vars()), "1");
    }

    #[test]
    fn a_rand_without_a_number_is_refused_with_the_template() {
        for bad in ["t/%rand_", "t/%rand_0", "%rand_x"] {
            let error = Template::parse(bad).unwrap_err();
            assert!(error.to_string().contains(bad), "{error}");
        }
    }

    #[test]
    fn a_plain_template_is_shared_and_a_missing_username_is_empty() {
        let t = Template::parse("plain/topic").unwrap();
        assert!(!t.is_per_client());
        let v = TemplateVars {
            username: None,
            ..vars()
        };
        assert_eq!(Template::parse("u=%u").unwrap().render(&v), "u=");
        assert_eq!(t.render(&v), "plain/topic");
    }
}
