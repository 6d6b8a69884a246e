//! The guarantees every seed checks, each kept apart from the driver loop that feeds it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sansmq::packet::QoS;

use crate::broker::Cluster;

/// A broken guarantee: what, and where in the run.
pub(crate) type Violation = String;

/// What each request was, so its answer can be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Connect,
    Publish(QoS),
    Subscribe,
    Unsubscribe,
    Disconnect,
    /// MQTT 5 request/response.
    Request,
}

/// Every waiter handed to the supervisor, and its answers.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub(crate) issued: BTreeMap<u64, Kind>,
    /// Waiter → whether its answer was Ok.
    pub(crate) answered: HashMap<u64, bool>,
    disconnects_outstanding: usize,
    /// Kept as counts: looking them up in `issued` at every step cost a tenth of a sweep.
    connects_outstanding: usize,
}

impl Ledger {
    pub(crate) fn issue(&mut self, waiter: u64, kind: Kind) {
        self.issued.insert(waiter, kind);
        match kind {
            Kind::Disconnect => self.disconnects_outstanding += 1,
            Kind::Connect => self.connects_outstanding += 1,
            _ => {}
        }
    }

    /// An answer for `waiter` of `kind`, at once (`Rejected`) or in a `Completed`.
    pub(crate) fn answer(&mut self, waiter: u64, kind: Kind, ok: bool) -> Result<(), Violation> {
        match self.issued.get(&waiter) {
            None => return Err(format!("an answer for waiter {waiter} nobody issued")),
            Some(issued) if !same_kind(*issued, kind) => {
                return Err(format!(
                    "waiter {waiter} was a {issued:?} request, answered as {kind:?}"
                ));
            }
            Some(_) => {}
        }
        if self.answered.insert(waiter, ok).is_some() {
            return Err(format!("waiter {waiter} ({kind:?}) answered twice"));
        }
        match kind {
            Kind::Disconnect => self.disconnects_outstanding -= 1,
            Kind::Connect => self.connects_outstanding -= 1,
            _ => {}
        }
        Ok(())
    }

    /// Whether a `disconnect` awaits its answer.
    pub(crate) fn disconnect_outstanding(&self) -> bool {
        self.disconnects_outstanding > 0
    }

    pub(crate) fn connect_outstanding(&self) -> bool {
        self.connects_outstanding > 0
    }

    /// At the end of the run: every waiter answered, and what completed Ok reached the broker
    /// as its QoS promises.
    pub(crate) fn check_end(&self, cluster: &Cluster) -> Result<(), Violation> {
        let unanswered: Vec<_> = self
            .issued
            .iter()
            .filter(|(w, _)| !self.answered.contains_key(w))
            .collect();
        if !unanswered.is_empty() {
            return Err(format!(
                "{} waiter(s) never answered after shut_down: {unanswered:?}",
                unanswered.len()
            ));
        }
        for (waiter, kind) in &self.issued {
            let Kind::Publish(qos) = *kind else { continue };
            let taken = cluster.taken.get(waiter).map_or(&[][..], Vec::as_slice);
            let ok = self.answered.get(waiter) == Some(&true);
            match qos {
                QoS::AtMostOnce if taken.len() > 1 => {
                    return Err(format!(
                        "QoS 0 message {waiter} taken {} times",
                        taken.len()
                    ));
                }
                QoS::AtLeastOnce | QoS::ExactlyOnce if ok && taken.is_empty() => {
                    return Err(format!(
                        "{qos:?} message {waiter} completed Ok but the broker never took it"
                    ));
                }
                _ => {}
            }
            if qos == QoS::ExactlyOnce {
                // Exactly once per broker session: a session the broker lost forgets the
                // identifiers it held, so a message re-sent to the next one may be taken again
                // (the documented default keeps at-least-once then).
                let mut per_epoch: HashMap<u64, usize> = HashMap::new();
                for (_, epoch) in taken {
                    *per_epoch.entry(*epoch).or_default() += 1;
                }
                if let Some((epoch, n)) = per_epoch.iter().find(|(_, n)| **n > 1) {
                    return Err(format!(
                        "QoS 2 message {waiter} taken {n} times in broker session {epoch}"
                    ));
                }
            }
        }
        Ok(())
    }
}

fn same_kind(issued: Kind, answered: Kind) -> bool {
    match (issued, answered) {
        (Kind::Publish(a), Kind::Publish(b)) => a == b,
        (a, b) => a == b,
    }
}

/// The documented reconnect delays (`Backoff`), written from its contract: each delay is drawn
/// between the current step and half as much again, the step doubles up to `max`, at the cap
/// the window is `[3/4 max, max]` (never below `min`), a refusal jumps to `max`, a successful
/// CONNACK starts again from `min`.
#[derive(Debug)]
pub(crate) struct BackoffModel {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl BackoffModel {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            step: min,
        }
    }

    pub(crate) fn connected(&mut self) {
        self.step = self.min;
    }

    /// A delay of `delay` was chosen after a failure (`refused`: the broker's CONNACK refused).
    pub(crate) fn check(&mut self, delay: Duration, refused: bool) -> Result<(), Violation> {
        if refused {
            self.step = self.max;
        }
        let step = self.step;
        self.step = (step * 2).min(self.max);
        let mut low = step;
        let high = (step + step / 2).min(self.max);
        if high <= low {
            low = (self.max - self.max / 4).max(self.min);
        }
        let high = high.max(low);
        if delay < self.min || delay > self.max {
            return Err(format!(
                "reconnect delay {delay:?} outside [{:?}, {:?}]",
                self.min, self.max
            ));
        }
        if delay < low || delay > high {
            return Err(format!(
                "reconnect delay {delay:?} outside this step's jitter window [{low:?}, {high:?}] \
                 (step {step:?}, refused {refused})"
            ));
        }
        Ok(())
    }
}

/// The order of server URIs: a `connect` tries each once from the first; automatic attempts go
/// on round the list.
#[derive(Debug, Default)]
pub(crate) struct RotationCheck {
    /// The URI index of the last attempt.
    last: Option<usize>,
    /// Tries the current `connect` has made.
    requested_tries: Option<usize>,
}

impl RotationCheck {
    pub(crate) fn connect_called(&mut self) {
        self.requested_tries = Some(0);
    }

    pub(crate) fn connect_answered(&mut self) {
        self.requested_tries = None;
    }

    /// An automatic attempt found no credentials and opened nothing: it used its URI's turn.
    pub(crate) fn attempted_without_credentials(&mut self, servers: usize) {
        if self.requested_tries.is_none() {
            self.last = Some(self.last.map_or(0, |last| (last + 1) % servers));
        }
    }

    pub(crate) fn opened(&mut self, index: usize, servers: usize) -> Result<(), Violation> {
        let result = match &mut self.requested_tries {
            Some(tries) => {
                let expected = *tries;
                *tries += 1;
                if expected >= servers {
                    Err(format!(
                        "connect tried a URI {} times for {servers} URIs",
                        *tries
                    ))
                } else if index != expected {
                    Err(format!(
                        "connect's try {expected} went to URI {index}, not URI {expected}"
                    ))
                } else {
                    Ok(())
                }
            }
            None => {
                let expected = self.last.map_or(0, |last| (last + 1) % servers);
                if index == expected {
                    Ok(())
                } else {
                    Err(format!(
                        "an automatic attempt went to URI {index} after URI {:?}, not to URI \
                         {expected}",
                        self.last
                    ))
                }
            }
        };
        self.last = Some(index);
        result
    }
}

/// Credentials: a transport is opened only right after the provider gave credentials (never
/// while it fails), and each outage (from a failing call to the next successful one) is
/// reported: by the stop event at most once, or by the error of the `connect` it failed.
#[derive(Debug, Default)]
pub(crate) struct TokenCheck {
    outage: Option<Outage>,
}

#[derive(Debug)]
struct Outage {
    /// When the provider first failed, into the run.
    since: Duration,
    stop_events: u32,
    reported: bool,
}

impl TokenCheck {
    pub(crate) fn provider_failed(&mut self, now: Duration) {
        self.outage.get_or_insert(Outage {
            since: now,
            stop_events: 0,
            reported: false,
        });
    }

    /// The provider gave credentials again: the outage is over, and must have been reported.
    pub(crate) fn provider_succeeded(&mut self) -> Result<(), Violation> {
        match self.outage.take() {
            Some(outage) if !outage.reported => Err(format!(
                "the credentials provider failed at {:?} and nobody was told",
                outage.since
            )),
            _ => Ok(()),
        }
    }

    /// A transport is opened; `credentials_ok`: the provider's latest call succeeded (always
    /// true without a provider).
    pub(crate) fn opened(&self, credentials_ok: bool) -> Result<(), Violation> {
        match &self.outage {
            Some(outage) => Err(format!(
                "a transport was opened while the credentials provider fails (since {:?})",
                outage.since
            )),
            None if !credentials_ok => {
                Err("a transport was opened without asking the provider first".into())
            }
            None => Ok(()),
        }
    }

    /// The supervisor's event that automatic reconnect has no credentials.
    pub(crate) fn stop_event(&mut self) -> Result<(), Violation> {
        let Some(outage) = &mut self.outage else {
            return Err("a no-credentials event without a failing provider".into());
        };
        outage.stop_events += 1;
        outage.reported = true;
        if outage.stop_events > 1 {
            return Err(format!(
                "the no-credentials event reported {} times for the outage since {:?}",
                outage.stop_events, outage.since
            ));
        }
        Ok(())
    }

    /// A `connect` was answered with an error.
    pub(crate) fn connect_failed(&mut self) {
        if let Some(outage) = &mut self.outage {
            outage.reported = true;
        }
    }

    pub(crate) fn check_end(&self) -> Result<(), Violation> {
        match &self.outage {
            Some(outage) if !outage.reported => Err(format!(
                "the credentials provider failed at {:?} and the outage was never reported",
                outage.since
            )),
            _ => Ok(()),
        }
    }
}
