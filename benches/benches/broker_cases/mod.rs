//! What the two broker benches (`broker.rs`, blocking; `broker_async.rs`, tokio) share: the cases
//! (QoS 0/1/2 × 100 B and 1 KiB), reading settings from the environment, and rumqttc's QoS.

use sansmq::packet::QoS;

/// The payload sizes of the cases.
pub(crate) const PAYLOADS: [(usize, &str); 2] = [(100, "100B"), (1024, "1KiB")];

/// One case: a QoS, a payload size and how many messages a run sends.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) qos: QoS,
    pub(crate) payload: usize,
    pub(crate) messages: usize,
}

impl Case {
    /// The payload every library of a run publishes: `payload` bytes of a repeating pattern.
    pub(crate) fn payload_bytes(&self) -> Vec<u8> {
        (0..self.payload).map(|i| (i % 251) as u8).collect()
    }
}

/// `name` from the environment, parsed; a value that does not parse stops the bench.
pub(crate) fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(v) => Some(v),
        Err(_) => panic!("{name}={value:?} is not a valid value"),
    }
}

/// The case names in `BROKER_BENCH_CASES` (comma-separated), if set.
pub(crate) fn wanted_cases() -> Option<Vec<String>> {
    std::env::var("BROKER_BENCH_CASES")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
}

/// Every case, or those in `wanted`; `messages` per run (default 20,000, 10,000 for QoS 2).
pub(crate) fn cases(messages: Option<usize>, wanted: Option<&[String]>) -> Vec<Case> {
    let mut cases = Vec::new();
    for (qos, level) in [
        (QoS::AtMostOnce, 0),
        (QoS::AtLeastOnce, 1),
        (QoS::ExactlyOnce, 2),
    ] {
        for (payload, label) in PAYLOADS {
            let default = if qos == QoS::ExactlyOnce {
                10_000
            } else {
                20_000
            };
            cases.push(Case {
                name: format!("qos{level}/{label}"),
                qos,
                payload,
                messages: messages.unwrap_or(default),
            });
        }
    }
    if let Some(wanted) = wanted {
        cases.retain(|c| wanted.contains(&c.name));
    }
    cases
}

/// rumqttc's spelling of a QoS.
pub(crate) fn rumqttc_qos(qos: QoS) -> rumqttc::QoS {
    match qos {
        QoS::AtMostOnce => rumqttc::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    }
}
