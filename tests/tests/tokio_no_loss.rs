//! No message is lost between two async clients with persistent sessions while the network or the
//! broker keeps failing: QoS 1 arrives at least once, QoS 2 exactly once. The scenarios of
//! `mio_no_loss.rs` (same counts, same faults, same `Tally`), driven through futures: the
//! publisher keeps up to 500 publish handles in flight and awaits the oldest, a task counts what
//! the subscriber's `Events` yield, and the fault runs on a blocking thread of its own.
//!
//! At full speed a run is over in under a second, after two or three of the proxy's cuts; so under
//! the cutting proxy the publisher spreads its messages over 2.5 s, and the test checks that at
//! least five cuts hit it while messages were under way. Run with `--nocapture` to read the
//! counts; `SANSMQ_NO_LOSS_MESSAGES` sets how many messages (default 10,000).

mod common;
mod common_async;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sansmq::packet::QoS;
use sansmq_e2e::{FaultProxy, Mosquitto, MosquittoBuilder, wait_until};
use sansmq_tokio::{Client, ConnectOptions, Event, Events, PublishHandle};
use tokio::time::{Instant, sleep_until, timeout_at};

use common::{Delivery, Tally, options, seq_payload};
use common_async::{count_losses, until};

const TOPIC: &str = "no-loss/stream";
/// Each run must end well within a minute on a loaded 2-core machine.
const RUN_LIMIT: Duration = Duration::from_secs(50);
/// Publish handles kept before awaiting the oldest: below the offline queue (1,000), so no
/// publish is refused while the broker is away.
const IN_FLIGHT: usize = 500;
const CUT_PERIOD: Duration = Duration::from_millis(300);
/// What the publisher spreads its messages over under the cutting proxy: about eight periods.
const CUT_RUN: Duration = Duration::from_millis(2500);
/// Cuts that must hit the publisher's connection while messages are under way.
const MIN_CUTS: usize = 5;

/// Messages per run: 10,000 unless `SANSMQ_NO_LOSS_MESSAGES` says otherwise.
fn messages() -> u32 {
    std::env::var("SANSMQ_NO_LOSS_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn persistent(uri: &str, client_id: &str) -> ConnectOptions {
    options(uri, client_id)
        .clean_session(false)
        .automatic_reconnect(Duration::from_millis(20), Duration::from_millis(500))
}

/// How the run goes and where it stands, shared by the publisher, the subscriber's task and the
/// fault's thread.
#[derive(Debug, Default)]
struct Progress {
    /// The publisher hands message `i` over no earlier than `i / n` of this after it started.
    publish_over: Duration,
    /// Messages the publisher has handed to `publish_later`.
    published: AtomicUsize,
    /// The publisher is done (the broker acknowledged everything) or has failed.
    done: AtomicBool,
    /// Once this many are published, the publisher waits until the broker has them all, sets
    /// `publisher_quiet`, and goes on only after `publisher_go`.
    publisher_pause_at: Option<usize>,
    publisher_quiet: AtomicBool,
    publisher_go: AtomicBool,
    /// The subscriber's task stops reading at this message number until `subscriber_go`.
    subscriber_hold_at: Option<u32>,
    subscriber_holding: AtomicBool,
    subscriber_go: AtomicBool,
}

impl Progress {
    /// On the fault's thread: waits until `condition` holds, or the publisher is done (it may
    /// have failed); whether `condition` held.
    fn wait_for(&self, condition: impl Fn(&Self) -> bool) -> bool {
        let _ = wait_until(RUN_LIMIT, || {
            condition(self) || self.done.load(Ordering::SeqCst)
        });
        condition(self)
    }
}

/// Sets `done` when dropped, so that a fault waiting for a publisher that panicked ends too (the
/// runtime waits for its blocking threads).
#[derive(Debug)]
struct Finish<'a>(&'a Progress);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::SeqCst);
    }
}

/// What a run found.
#[derive(Debug)]
struct Outcome {
    delivery: Delivery,
    /// Connections the publisher lost before the broker had acknowledged every message.
    publisher_losses: usize,
}

/// Publishes `0..n` at `qos`, then the end marker `n` once `fault` has returned, and waits until the
/// subscriber saw every number; prints and returns the counts. `fault` runs on a blocking thread
/// from the start and must return once `progress.done` is set.
async fn run(
    label: &str,
    qos: QoS,
    uri: &str,
    progress: Progress,
    fault: impl FnOnce(&Progress) + Send + 'static,
) -> Outcome {
    let n = messages();
    let start = Instant::now();
    let deadline = start + RUN_LIMIT;
    let tally = Tally::new(n as usize + 1);
    let progress = Arc::new(progress);

    let (subscriber, events) = Client::new(persistent(uri, "no-loss-sub")).unwrap();
    common_async::connect(&subscriber).await;
    subscriber.subscribe(&[(TOPIC, qos)]).await.unwrap();
    let counting = tokio::spawn(count(events, tally.clone(), Arc::clone(&progress), n));
    let (publisher, publisher_events) = Client::new(persistent(uri, "no-loss-pub")).unwrap();
    common_async::connect(&publisher).await;
    let losses = count_losses(publisher_events);

    let fault = {
        let progress = Arc::clone(&progress);
        tokio::task::spawn_blocking(move || fault(&progress))
    };
    {
        let _finish = Finish(&progress);
        publish_all(label, &publisher, qos, n, &progress, deadline).await;
    }
    let publisher_losses = losses.load(Ordering::SeqCst);
    if let Err(error) = fault.await {
        std::panic::resume_unwind(error.into_panic());
    }
    let published_in = start.elapsed();

    // The faults are over. The marker goes after everything else, so once it is in, every
    // redelivery the broker had to make was made, and the duplicate count is final.
    timeout_at(
        deadline,
        publisher.publish(TOPIC, seq_payload(n), qos, false),
    )
    .await
    .expect("the marker in time")
    .unwrap();
    let complete = matches!(timeout_at(deadline, counting).await, Ok(Ok(())));
    let delivery = tally.check_delivery(
        label,
        n,
        complete,
        &format!(
            "in {:.1?}, published and acknowledged in {published_in:.1?} through \
             {publisher_losses} lost connections",
            start.elapsed()
        ),
    );
    let outcome = Outcome {
        delivery,
        publisher_losses,
    };
    publisher.disconnect(Duration::from_secs(5)).await.unwrap();
    subscriber.disconnect(Duration::from_secs(5)).await.unwrap();
    outcome
}

/// The subscriber's application: records every message until all `0..=n` arrived. At
/// `subscriber_hold_at` it is busy until told to go on, so messages pile up in the client and,
/// unacknowledged, in the broker.
async fn count(mut events: Events, tally: Tally, progress: Arc<Progress>, n: u32) {
    let hold = progress.subscriber_hold_at.map(seq_payload);
    while let Some(event) = events.recv().await {
        if let Event::Message(message) = event {
            tally.record(&message.payload);
            if hold.as_deref() == Some(&message.payload[..]) {
                progress.subscriber_holding.store(true, Ordering::SeqCst);
                until(RUN_LIMIT, || progress.subscriber_go.load(Ordering::SeqCst)).await;
            }
            if tally.distinct() == n as usize + 1 {
                return;
            }
        }
    }
}

/// Publishes `0..n`, at most [`IN_FLIGHT`] unacknowledged, paced by `progress.publish_over`, and
/// waits until the broker has them all.
async fn publish_all(
    label: &str,
    publisher: &Client,
    qos: QoS,
    n: u32,
    progress: &Progress,
    deadline: Instant,
) {
    let start = Instant::now();
    let mut in_flight: VecDeque<(u32, PublishHandle)> = VecDeque::with_capacity(IN_FLIGHT);
    for i in 0..n {
        if !progress.publish_over.is_zero() && i % 50 == 0 {
            sleep_until(start + progress.publish_over * i / n).await;
        }
        if in_flight.len() >= IN_FLIGHT
            && let Some((m, oldest)) = in_flight.pop_front()
        {
            acknowledged(label, m, oldest, deadline).await;
        }
        let handle = timeout_at(
            deadline,
            publisher.publish_later(TOPIC, seq_payload(i), qos, false),
        )
        .await
        .unwrap_or_else(|_| panic!("{label}: only {i} messages published in {RUN_LIMIT:?}"))
        .unwrap_or_else(|error| panic!("{label}: publish {i}: {error}"));
        in_flight.push_back((i, handle));
        let published = i as usize + 1;
        progress.published.store(published, Ordering::SeqCst);
        if progress.publisher_pause_at == Some(published) {
            for (m, handle) in in_flight.drain(..) {
                acknowledged(label, m, handle, deadline).await;
            }
            progress.publisher_quiet.store(true, Ordering::SeqCst);
            assert!(
                until(RUN_LIMIT, || progress.publisher_go.load(Ordering::SeqCst)).await,
                "{label}: the fault never let the publisher go on"
            );
        }
    }
    for (m, handle) in in_flight {
        acknowledged(label, m, handle, deadline).await;
    }
}

async fn acknowledged(label: &str, m: u32, handle: PublishHandle, deadline: Instant) {
    let outcome = timeout_at(deadline, handle).await;
    assert!(
        matches!(outcome, Ok(Ok(()))),
        "{label}: message {m} not acknowledged: {outcome:?}"
    );
}

/// A broker for these runs. The harness sets `max_queued_messages 0`, so it never drops messages
/// for a slow subscriber; logging every packet would slow it down.
fn quiet_broker() -> MosquittoBuilder {
    Mosquitto::builder().log_types(["warning", "notice"])
}

/// Runs `qos` through a proxy that cuts every connection about every 300 ms, and once more as
/// soon as a third of the messages are out, with the messages spread over [`CUT_RUN`] so that
/// at least [`MIN_CUTS`] cuts land mid-stream.
async fn with_cuts(label: &str, qos: QoS) -> Outcome {
    let broker = quiet_broker().start();
    let proxy = Arc::new(FaultProxy::start(broker.addr()));
    let progress = Progress {
        publish_over: CUT_RUN,
        ..Progress::default()
    };
    let cutter = Arc::clone(&proxy);
    let outcome = run(label, qos, &proxy.url(), progress, move |progress| {
        cutter.cut_every(CUT_PERIOD);
        let third = messages() as usize / 3;
        progress.wait_for(|p| p.published.load(Ordering::SeqCst) >= third);
        cutter.cut();
        progress.wait_for(|p| p.done.load(Ordering::SeqCst));
        cutter.stop_cutting();
    })
    .await;
    println!(
        "{label}: {} cuts closed {} connections; {} of them the publisher's while messages were \
         under way",
        proxy.cuts(),
        proxy.connections_cut(),
        outcome.publisher_losses
    );
    assert!(
        outcome.publisher_losses >= MIN_CUTS,
        "{label}: only {} cuts landed mid-stream: {proxy:?}",
        outcome.publisher_losses
    );
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_loses_nothing_while_the_link_is_cut_every_300_ms() {
    let outcome = with_cuts("tokio qos1", QoS::AtLeastOnce).await;
    assert_eq!(outcome.delivery.distinct, outcome.delivery.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_delivers_exactly_once_while_the_link_is_cut_every_300_ms() {
    let outcome = with_cuts("tokio qos2", QoS::ExactlyOnce).await;
    assert_eq!(outcome.delivery.distinct, outcome.delivery.sent);
    assert_eq!(
        outcome.delivery.duplicates, 0,
        "QoS 2 must arrive exactly once"
    );
}

/// Restarts a persistent broker gracefully (SIGTERM: it saves sessions and queued messages)
/// once half the messages are out: some queued in the broker for the subscriber, some in flight,
/// some in the publisher's queue.
async fn with_broker_restart(label: &str, qos: QoS) -> Outcome {
    let broker = Arc::new(quiet_broker().persistence(true).start());
    let restarter = Arc::clone(&broker);
    let outcome = run(
        label,
        qos,
        &broker.url(),
        Progress::default(),
        move |progress| {
            let half = messages() as usize / 2;
            progress.wait_for(|p| p.published.load(Ordering::SeqCst) >= half);
            restarter.restart();
        },
    )
    .await;
    assert_eq!(
        broker.log().matches(" running\n").count(),
        2,
        "{}",
        broker.log()
    );
    assert!(
        outcome.publisher_losses >= 1,
        "{label}: the restart came after every message was acknowledged"
    );
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_loses_nothing_when_the_broker_restarts_midway() {
    let outcome = with_broker_restart("tokio qos1 broker restart", QoS::AtLeastOnce).await;
    assert_eq!(outcome.delivery.distinct, outcome.delivery.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_loses_nothing_when_the_broker_restarts_midway() {
    let outcome = with_broker_restart("tokio qos2 broker restart", QoS::ExactlyOnce).await;
    assert_eq!(outcome.delivery.distinct, outcome.delivery.sent);
    // Not exactly once across a broker restart: mosquitto 2.0.11 resends some QoS 2 messages
    // whose PUBREL it had sent (see the same test in mio_no_loss.rs). The count is printed above.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_loses_nothing_when_the_broker_is_killed_after_an_autosave() {
    // A crash loses what the broker acknowledged since its last save, which no client can make
    // up for. So the publisher pauses midway until the broker has everything it sent, and the
    // broker is killed (SIGKILL) right after its next save. The subscriber's application is busy
    // meanwhile, with messages piling up unacknowledged in the broker: they must all come, some
    // perhaps twice.
    let n = messages();
    let broker = Arc::new(quiet_broker().persistence(true).start());
    let progress = Progress {
        publisher_pause_at: Some(n as usize / 2),
        subscriber_hold_at: Some(n / 4),
        ..Progress::default()
    };
    let crasher = Arc::clone(&broker);
    let outcome = run(
        "tokio qos1 broker killed",
        QoS::AtLeastOnce,
        &broker.url(),
        progress,
        move |progress| {
            let paused = progress.wait_for(|p| {
                p.publisher_quiet.load(Ordering::SeqCst)
                    && p.subscriber_holding.load(Ordering::SeqCst)
            });
            assert!(paused, "the publisher and the subscriber never both paused");
            crasher.wait_for_autosave();
            crasher.kill();
            crasher.restart();
            progress.subscriber_go.store(true, Ordering::SeqCst);
            progress.publisher_go.store(true, Ordering::SeqCst);
        },
    )
    .await;
    assert_eq!(outcome.delivery.distinct, outcome.delivery.sent);
    assert!(
        outcome.publisher_losses >= 1,
        "the kill came after every message was acknowledged"
    );
}
