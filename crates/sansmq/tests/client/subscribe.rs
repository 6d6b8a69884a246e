use sansmq::client::{RestoreSubscriptions, SubscribeRefused};
use sansmq::packet::{
    Packet, QoS, SubAck, SubscribeFilter, SubscribeReturnCode, UnsubAck, Unsubscribe,
};
use sansmq::{CommandError, Event, TopicFilter};

use crate::util::{Scripted, config};

fn filter(v: &str) -> TopicFilter {
    TopicFilter::try_from(v).unwrap()
}

fn sub(v: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter::new(filter(v), qos)
}

#[test]
fn suback_reports_granted_qos_and_failures_per_filter() {
    let mut s = Scripted::connected(config());
    let pid = s
        .client
        .subscribe(
            s.now,
            vec![
                sub("a/#", QoS::ExactlyOnce),
                sub("forbidden", QoS::AtLeastOnce),
            ],
        )
        .unwrap();
    let Packet::Subscribe(subscribe) = s.sent_one() else {
        panic!()
    };
    assert_eq!(subscribe.packet_id, pid);
    assert_eq!(subscribe.filters.len(), 2);
    s.deliver(SubAck::new(
        pid,
        vec![
            SubscribeReturnCode::Success(QoS::AtLeastOnce),
            SubscribeReturnCode::Failure,
        ],
    ));
    assert_eq!(
        s.events(),
        [Event::Subscribed {
            packet_id: pid,
            results: vec![
                (filter("a/#"), Ok(QoS::AtLeastOnce)),
                (filter("forbidden"), Err(SubscribeRefused::UNSPECIFIED)),
            ],
        }]
    );
    let active: Vec<_> = s
        .client
        .subscriptions()
        .map(|(f, q)| (f.clone(), q))
        .collect();
    assert_eq!(active, [(filter("a/#"), QoS::AtLeastOnce)]);
}

#[test]
fn unsubscribe_removes_from_the_registry() {
    let mut s = Scripted::connected(config());
    let pid = s
        .client
        .subscribe(
            s.now,
            vec![sub("a", QoS::AtMostOnce), sub("b", QoS::AtMostOnce)],
        )
        .unwrap();
    let _ = s.sent();
    s.deliver(SubAck::new(
        pid,
        vec![SubscribeReturnCode::Success(QoS::AtMostOnce); 2],
    ));
    let _ = s.events();
    let pid = s.client.unsubscribe(s.now, vec![filter("a")]).unwrap();
    assert_eq!(
        s.sent(),
        [Packet::Unsubscribe(Unsubscribe::new(
            pid,
            vec![filter("a")]
        ))]
    );
    s.deliver(UnsubAck::new(pid));
    assert_eq!(s.events(), [Event::Unsubscribed { packet_id: pid }]);
    assert_eq!(s.client.subscriptions().count(), 1);
}

#[test]
fn resubscribe_after_a_lost_session_asks_for_every_granted_filter() {
    let mut s = client_cut_off(RestoreSubscriptions::Never);
    let restored = s.connect(false);
    assert!(
        restored.is_empty(),
        "the core restores nothing itself: {restored:?}"
    );
    let pid = s.client.resubscribe(s.now).unwrap().unwrap();
    let Packet::Subscribe(subscribe) = s.sent_one() else {
        panic!()
    };
    assert_eq!(subscribe.packet_id, pid);
    assert_eq!(subscribe.filters, [sub("x/+", QoS::AtLeastOnce)]);
}

#[test]
fn subscribe_before_connack_goes_out_after_it() {
    let mut s = Scripted::new(config());
    s.client.connect(s.now).unwrap();
    let pid = s
        .client
        .subscribe(s.now, vec![sub("early", QoS::AtLeastOnce)])
        .unwrap();
    let sent = s.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Connect(_)]),
        "nothing before CONNACK: {sent:?}"
    );
    s.deliver(sansmq::packet::ConnAck::new(
        sansmq::packet::ConnectReturnCode::Accepted,
    ));
    let Packet::Subscribe(subscribe) = s.sent_one() else {
        panic!()
    };
    assert_eq!(subscribe.packet_id, pid);
    assert_eq!(subscribe.filters, [sub("early", QoS::AtLeastOnce)]);
}

#[test]
fn subscribe_needs_a_filter_and_no_disconnect_under_way() {
    let mut s = Scripted::connected(config());
    assert!(matches!(
        s.client.subscribe(s.now, vec![]),
        Err(CommandError::Encode(_))
    ));
    assert!(matches!(
        s.client.unsubscribe(s.now, vec![]),
        Err(CommandError::Encode(_))
    ));
    s.publish("t", QoS::AtLeastOnce, b"x");
    s.client
        .disconnect(s.now, std::time::Duration::from_secs(1))
        .unwrap();
    assert_eq!(
        s.client.subscribe(s.now, vec![sub("a", QoS::AtMostOnce)]),
        Err(CommandError::NotConnected)
    );
}

#[test]
fn unanswered_subscribe_is_sent_again_after_reconnect() {
    let mut s = Scripted::connected(config());
    let pid = s
        .client
        .subscribe(s.now, vec![sub("a", QoS::AtMostOnce)])
        .unwrap();
    let _ = s.sent();
    s.drop_connection();
    let _ = s.events();
    let sent = s.connect(false);
    assert!(
        matches!(sent.as_slice(), [Packet::Subscribe(x)] if x.packet_id == pid),
        "{sent:?}"
    );
}

/// A client with the `restore` policy, subscribed to `x/+` (asked at QoS 2, granted QoS 1), then
/// cut off.
fn client_cut_off(restore: RestoreSubscriptions) -> Scripted {
    let mut config = config();
    config.restore_subscriptions = restore;
    let mut s = Scripted::connected(config);
    let pid = s
        .client
        .subscribe(s.now, vec![sub("x/+", QoS::ExactlyOnce)])
        .unwrap();
    let _ = s.sent();
    s.deliver(SubAck::new(
        pid,
        vec![SubscribeReturnCode::Success(QoS::AtLeastOnce)],
    ));
    let _ = s.events();
    s.drop_connection();
    let _ = s.events();
    s
}

#[test]
fn a_lost_session_is_restored_before_the_messages_queued_while_disconnected() {
    let mut s = client_cut_off(RestoreSubscriptions::WhenSessionLost);
    // Published while away: it must not reach the broker before the subscription does, or a
    // message to one's own subscription is missed.
    s.publish("x/1", QoS::AtLeastOnce, b"while away");
    let events = s.accept(false);
    let sent = s.sent();
    let Some(Packet::Subscribe(restore)) = sent.first() else {
        panic!("the restore goes out first: {sent:?}");
    };
    assert_eq!(
        restore.filters,
        [sub("x/+", QoS::AtLeastOnce)],
        "as granted"
    );
    assert!(
        matches!(sent.get(1), Some(Packet::Publish(p)) if p.topic() == "x/1"),
        "{sent:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Resubscribing { packet_id, filters }
                if *packet_id == restore.packet_id && filters == &restore.filters
        )),
        "{events:?}"
    );
}

#[test]
fn a_kept_session_is_restored_only_when_asked_always() {
    let mut s = client_cut_off(RestoreSubscriptions::WhenSessionLost);
    let sent = s.connect(true);
    assert!(
        !sent.iter().any(|p| matches!(p, Packet::Subscribe(_))),
        "{sent:?}"
    );
    let mut s = client_cut_off(RestoreSubscriptions::Always);
    let sent = s.connect(true);
    assert!(
        matches!(sent.first(), Some(Packet::Subscribe(_))),
        "{sent:?}"
    );
}

#[test]
fn a_filter_an_unanswered_subscribe_asks_for_again_is_not_restored_twice() {
    let mut config = config();
    config.restore_subscriptions = RestoreSubscriptions::WhenSessionLost;
    let mut s = Scripted::connected(config);
    let pid = s
        .client
        .subscribe(
            s.now,
            vec![sub("a", QoS::AtLeastOnce), sub("b", QoS::AtLeastOnce)],
        )
        .unwrap();
    let _ = s.sent();
    s.deliver(SubAck::new(
        pid,
        vec![SubscribeReturnCode::Success(QoS::AtLeastOnce); 2],
    ));
    // `a` again, unanswered when the connection drops: the core sends it again after CONNACK.
    s.client
        .subscribe(s.now, vec![sub("a", QoS::ExactlyOnce)])
        .unwrap();
    let _ = s.sent();
    s.drop_connection();
    let _ = s.events();
    let sent = s.connect(false);
    let asked: Vec<Vec<SubscribeFilter>> = sent
        .iter()
        .filter_map(|p| match p {
            Packet::Subscribe(s) => Some(s.filters.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        asked,
        [
            vec![sub("a", QoS::ExactlyOnce)],
            vec![sub("b", QoS::AtLeastOnce)]
        ],
        "each filter asked once"
    );
}
