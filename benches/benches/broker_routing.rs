//! Broker routing bench: finding the sessions a PUBLISH goes to, as the number of sessions grows.
//!
//! Run with `cargo bench -p sansmq-benches --bench broker_routing`. Each case is measured twice,
//! side by side:
//!
//! - `trie`: [`sansmq_broker::TopicTree::subscribers`], the index the broker routes with;
//! - `linear`: what the broker did before it, kept here as the baseline: every filter of every
//!   session tried with `TopicFilter::matches`, the highest matching QoS taken per session.
//!
//! Cases (criterion reports messages per second, `Throughput::Elements(1)`):
//!
//! - `broker_routing/sessions/{trie,linear}/N`, N = 10 … 100,000: every session has three
//!   filters (`home/<i>/+/temp`, `devices/<i>/cmd`, `alerts/<i>/#`) and the message,
//!   `home/<N/2>/kitchen/temp`, matches exactly one of them;
//! - `broker_routing/deep_wildcards/{trie,linear}`: 1,000 sessions, each with one filter of 128
//!   levels (the broker's default `max_topic_levels`), `+` for the first 127 and its own last
//!   level; the 128-level message matches one.
//!
//! What is measured is the lookup alone: handing the message to the one matching session costs
//! the same either way.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sansmq::packet::QoS;
use sansmq::{TopicFilter, TopicName};
use sansmq_broker::TopicTree;

const SESSION_COUNTS: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];
const DEEP_SESSIONS: usize = 1_000;
const DEEP_LEVELS: usize = 128;

/// The router before the index: each session's subscriptions in a list, all of them tried.
struct LinearRouter {
    sessions: HashMap<String, Vec<(TopicFilter, QoS)>>,
}

impl LinearRouter {
    fn subscribers(&self, topic: &TopicName) -> Vec<(&String, QoS)> {
        self.sessions
            .iter()
            .filter_map(|(client_id, subscriptions)| {
                let granted = subscriptions
                    .iter()
                    .filter(|(filter, _)| filter.matches(topic))
                    .map(|&(_, qos)| qos)
                    .max()?;
                Some((client_id, granted))
            })
            .collect()
    }
}

/// Both routers holding the same subscriptions.
struct Routers {
    trie: TopicTree<String>,
    linear: LinearRouter,
}

impl Routers {
    fn new(sessions: impl Iterator<Item = (String, Vec<TopicFilter>)>) -> Self {
        let mut trie = TopicTree::new();
        let mut linear = HashMap::new();
        for (client_id, filters) in sessions {
            for filter in &filters {
                trie.insert(filter, client_id.clone(), QoS::AtLeastOnce);
            }
            let granted = filters.into_iter().map(|f| (f, QoS::AtLeastOnce)).collect();
            linear.insert(client_id, granted);
        }
        Self {
            trie,
            linear: LinearRouter { sessions: linear },
        }
    }

    /// Checks both find exactly the one expected session for `topic`.
    fn check(&self, topic: &TopicName, expected: &str) {
        for (name, found) in [
            ("trie", self.trie.subscribers(topic)),
            ("linear", self.linear.subscribers(topic)),
        ] {
            let found: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(found, [expected], "{name} router, topic {}", topic.as_str());
        }
    }

    fn bench(&self, c: &mut Criterion, group: &str, parameter: Option<usize>, topic: &TopicName) {
        let mut group = c.benchmark_group(group);
        group.throughput(Throughput::Elements(1));
        let id = |router: &str| match parameter {
            Some(p) => BenchmarkId::new(router, p),
            None => BenchmarkId::from_parameter(router),
        };
        group.bench_function(id("trie"), |b| {
            b.iter(|| black_box(self.trie.subscribers(black_box(topic))).len())
        });
        group.bench_function(id("linear"), |b| {
            b.iter(|| black_box(self.linear.subscribers(black_box(topic))).len())
        });
        group.finish();
    }
}

fn filter(text: &str) -> TopicFilter {
    TopicFilter::try_from(text).expect("a valid filter")
}

fn sessions(c: &mut Criterion) {
    for count in SESSION_COUNTS {
        let routers = Routers::new((0..count).map(|i| {
            let filters = [
                format!("home/{i}/+/temp"),
                format!("devices/{i}/cmd"),
                format!("alerts/{i}/#"),
            ];
            (
                format!("client-{i}"),
                filters.iter().map(|f| filter(f)).collect(),
            )
        }));
        let target = count / 2;
        let topic = TopicName::try_from(format!("home/{target}/kitchen/temp").as_str()).unwrap();
        routers.check(&topic, &format!("client-{target}"));
        routers.bench(c, "broker_routing/sessions", Some(count), &topic);
    }
}

fn deep_wildcards(c: &mut Criterion) {
    let wildcards = vec!["+"; DEEP_LEVELS - 1].join("/");
    let routers = Routers::new((0..DEEP_SESSIONS).map(|i| {
        let deep = filter(&format!("{wildcards}/{i}"));
        (format!("client-{i}"), vec![deep])
    }));
    let target = DEEP_SESSIONS / 2;
    let levels = vec!["level"; DEEP_LEVELS - 1].join("/");
    let topic = TopicName::try_from(format!("{levels}/{target}").as_str()).unwrap();
    routers.check(&topic, &format!("client-{target}"));
    routers.bench(c, "broker_routing/deep_wildcards", None, &topic);
}

criterion_group! {
    name = broker_routing;
    // Modest defaults for a small shared machine (the linear router at 100,000 sessions takes
    // milliseconds per message); criterion's flags override them.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    targets = sessions, deep_wildcards
}
criterion_main!(broker_routing);
