//! [`Resubscription`]: the SUBSCRIBE that restores the session's subscriptions after a reconnect
//! (the core sends it right after CONNACK, per
//! [`Config::restore_subscriptions`](sansmq::Config::restore_subscriptions), and announces it
//! with `Event::Resubscribing`), and the application's subscribes that join it instead of
//! sending their own.
//!
//! Paho's and Alibaba's examples subscribe in `connectComplete`, on every connection. With a
//! driver that also restores the subscriptions of a lost session, that pattern would send every
//! filter twice per reconnect, and the broker would deliver each retained message twice
//! (MQTT-3.3.1-6: a retained message goes out for every new SUBSCRIBE). So a subscribe whose
//! filters the restore already asks for joins it: it sends nothing and resolves with the
//! restore's SUBACK, with the granted codes of its own filters.
//!
//! The bookkeeping is the same for every driver; the driver keeps a `W` (its way of answering
//! one subscribe call) and calls, in order:
//!
//! ```
//! use sansmq::packet::{PacketId, QoS, SubscribeFilter};
//! use sansmq::TopicFilter;
//! use sansmq_driver::resubscription::{Join, Resubscription};
//!
//! let filter = TopicFilter::try_from("sensors/#").unwrap();
//! let mut restore: Resubscription<&str> = Resubscription::default();
//!
//! // First connection: the application subscribes; nothing to join, the driver sends it.
//! let ask = [SubscribeFilter::new(filter.clone(), QoS::AtLeastOnce)];
//! assert!(matches!(restore.join(&ask, "first call"), Join::Send("first call")));
//!
//! // A reconnect without a session: the driver restores the subscriptions...
//! restore.on_connected();
//! let id = PacketId::new(7).unwrap();
//! restore.on_restore(id, [(&filter, QoS::AtLeastOnce)]);
//! // ...and the application's `connectComplete` subscribes again: it joins the restore.
//! assert!(matches!(restore.join(&ask, "second call"), Join::Joined));
//!
//! // The restore's SUBACK answers the joined call with its filters' codes.
//! let answered = restore.on_subscribed(id, &[(filter.clone(), Ok(QoS::AtLeastOnce))]);
//! assert_eq!(answered, [("second call", vec![(filter, Ok(QoS::AtLeastOnce))])]);
//! ```

use std::collections::HashMap;

use sansmq::TopicFilter;
use sansmq::client::SubscribeRefused;
use sansmq::packet::{PacketId, QoS, SubscribeFilter};

use crate::Error;

/// One filter's answer in a SUBACK.
pub type Granted = Result<QoS, SubscribeRefused>;

/// What to do with an application's subscribe (see [`Resubscription::join`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Join<W> {
    /// No restore covers these filters: send a SUBSCRIBE as usual.
    Send(W),
    /// Joined the restore in flight; [`Resubscription::on_subscribed`] hands the waiter back
    /// with its answer.
    Joined,
    /// The restore of this connection was already granted these filters: answer now, with the
    /// codes in the order the filters were asked.
    Granted {
        /// The caller's waiter.
        waiter: W,
        /// Each filter's answer.
        results: Vec<(TopicFilter, Granted)>,
    },
}

/// A restore SUBSCRIBE awaiting its SUBACK.
#[derive(Debug)]
struct Restore<W> {
    id: PacketId,
    /// Each filter, the QoS the restore asks for it, and whether a subscribe joined for it.
    filters: Vec<(TopicFilter, QoS, bool)>,
    /// Application subscribes waiting for this SUBACK, with their filters.
    joined: Vec<(Vec<TopicFilter>, W)>,
}

/// The restores in flight and the subscribes that joined them; one per client. `W` is how the
/// driver answers one subscribe call (a one-shot sender, a completion).
#[derive(Debug)]
pub struct Resubscription<W> {
    /// Restores awaiting SUBACK. The core keeps an unanswered one across a reconnect and sends it
    /// again, so more than one can be in flight.
    restores: Vec<Restore<W>>,
    /// Filters the current connection's restore was granted that no subscribe has claimed yet,
    /// with the QoS the restore asked for.
    granted: HashMap<TopicFilter, (QoS, Granted)>,
    /// The QoS the application last asked for each filter: a restore asks for what the broker
    /// granted, which may be less, and asking again for the same is still a join.
    requested: HashMap<TopicFilter, QoS>,
}

impl<W> Default for Resubscription<W> {
    fn default() -> Self {
        Self {
            restores: Vec::new(),
            granted: HashMap::new(),
            requested: HashMap::new(),
        }
    }
}

impl<W> Resubscription<W> {
    /// A CONNACK accepted a new connection: what an earlier connection's restore granted is no
    /// longer the broker's answer for this one.
    pub fn on_connected(&mut self) {
        self.granted.clear();
    }

    /// The driver restored the subscriptions in the SUBSCRIBE `id`, asking for `filters` (the
    /// core's `resubscribe`).
    pub fn on_restore<'a>(
        &mut self,
        id: PacketId,
        filters: impl IntoIterator<Item = (&'a TopicFilter, QoS)>,
    ) {
        let filters = filters
            .into_iter()
            .map(|(filter, qos)| (filter.clone(), qos, false))
            .collect();
        self.restores.push(Restore {
            id,
            filters,
            joined: Vec::new(),
        });
    }

    /// The application subscribes to `filters`. Joins a restore in flight that asks for every
    /// one of them (each filter joins at most once per restore: a second subscribe is sent, as
    /// the application asked), or answers from the restore this connection was granted; else
    /// `Send`. A subscribe asking for a higher QoS than the restore and than the application asked
    /// before is sent too: it is a new request.
    pub fn join(&mut self, filters: &[SubscribeFilter], waiter: W) -> Join<W> {
        if filters.is_empty() {
            return Join::Send(waiter); // the core refuses it with the reason
        }
        let requested = &self.requested;
        let covers = |restored: QoS, asked: &SubscribeFilter| {
            asked.qos <= restored
                || requested
                    .get(&asked.filter)
                    .is_some_and(|&q| asked.qos <= q)
        };
        let in_flight = self.restores.iter_mut().find(|restore| {
            filters.iter().all(|asked| {
                restore
                    .filters
                    .iter()
                    .any(|(f, qos, claimed)| *f == asked.filter && !claimed && covers(*qos, asked))
            })
        });
        if let Some(restore) = in_flight {
            for (filter, _, claimed) in &mut restore.filters {
                if filters.iter().any(|asked| asked.filter == *filter) {
                    *claimed = true;
                }
            }
            let own = filters.iter().map(|asked| asked.filter.clone()).collect();
            restore.joined.push((own, waiter));
            return Join::Joined;
        }
        let answered = filters.iter().all(|asked| {
            self.granted
                .get(&asked.filter)
                .is_some_and(|(qos, _)| covers(*qos, asked))
        });
        if answered {
            let results = filters
                .iter()
                .filter_map(|asked| {
                    let (_, granted) = self.granted.remove(&asked.filter)?;
                    Some((asked.filter.clone(), granted))
                })
                .collect();
            return Join::Granted { waiter, results };
        }
        for asked in filters {
            self.requested.insert(asked.filter.clone(), asked.qos);
        }
        Join::Send(waiter)
    }

    /// The application unsubscribes from `filters`: a later subscribe to them must reach the
    /// broker after the UNSUBSCRIBE, so it may no longer join a restore sent before it.
    pub fn on_unsubscribe(&mut self, filters: &[TopicFilter]) {
        for filter in filters {
            self.requested.remove(filter);
            self.granted.remove(filter);
        }
        for restore in &mut self.restores {
            for (filter, _, claimed) in &mut restore.filters {
                if filters.contains(filter) {
                    *claimed = true;
                }
            }
        }
    }

    /// SUBACK for packet `id` with `results`. If `id` is a restore, the subscribes that joined it,
    /// each with the answers for its own filters (in the order it asked them); the filters no
    /// subscribe claimed may still answer one later in this connection. Empty for any other `id`.
    #[must_use]
    pub fn on_subscribed(
        &mut self,
        id: PacketId,
        results: &[(TopicFilter, Granted)],
    ) -> Vec<(W, Vec<(TopicFilter, Granted)>)> {
        let Some(at) = self.restores.iter().position(|restore| restore.id == id) else {
            return Vec::new();
        };
        let restore = self.restores.remove(at);
        for (filter, qos, claimed) in &restore.filters {
            let result = results.iter().find(|(f, _)| f == filter);
            if let (false, Some((_, granted))) = (claimed, result) {
                self.granted.insert(filter.clone(), (*qos, *granted));
            }
        }
        restore
            .joined
            .into_iter()
            .map(|(own, waiter)| {
                let answers = own
                    .into_iter()
                    .filter_map(|filter| {
                        let (_, granted) = results.iter().find(|(f, _)| *f == filter)?;
                        Some((filter, *granted))
                    })
                    .collect();
                (waiter, answers)
            })
            .collect()
    }

    /// Whether a subscribe that joined a restore still waits for its SUBACK.
    pub fn has_joined(&self) -> bool {
        self.restores
            .iter()
            .any(|restore| !restore.joined.is_empty())
    }

    /// No connection will answer: the waiters of every joined subscribe, to be failed. The
    /// restores themselves stay known: the core keeps their SUBSCRIBEs and sends them again
    /// after the next CONNACK, so a new restore must not ask for their filters too.
    pub fn drain(&mut self) -> Vec<W> {
        self.granted.clear();
        self.restores
            .iter_mut()
            .flat_map(|restore| restore.joined.drain(..))
            .map(|(_, waiter)| waiter)
            .collect()
    }
}

/// A SUBACK's answers as a subscribe call returns them: the granted QoS per filter, or the first
/// refused filter as [`Error::SubscribeRefused`].
pub fn granted_qos(
    results: impl IntoIterator<Item = (TopicFilter, Granted)>,
) -> Result<Vec<QoS>, Error> {
    results
        .into_iter()
        .map(|(filter, result)| {
            result.map_err(|refused| Error::SubscribeRefused {
                filter: filter.to_string(),
                reason_code: refused.reason_code,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(f: &str) -> TopicFilter {
        TopicFilter::try_from(f).unwrap_or_else(|e| panic!("{f}: {e}"))
    }

    fn ask(f: &str, qos: QoS) -> SubscribeFilter {
        SubscribeFilter::new(filter(f), qos)
    }

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap_or(PacketId::MIN)
    }

    /// A reconnect restoring `filters` as packet 9.
    fn restoring(filters: &[(&str, QoS)]) -> Resubscription<u32> {
        let mut restore = Resubscription::default();
        restore.on_connected();
        let filters: Vec<_> = filters.iter().map(|(f, q)| (filter(f), *q)).collect();
        restore.on_restore(id(9), filters.iter().map(|(f, q)| (f, *q)));
        restore
    }

    #[test]
    fn a_subscribe_for_restored_filters_joins_and_gets_its_own_codes() {
        let mut restore = restoring(&[("a", QoS::AtLeastOnce), ("b", QoS::ExactlyOnce)]);
        assert_eq!(restore.join(&[ask("b", QoS::ExactlyOnce)], 1), Join::Joined);
        assert_eq!(restore.join(&[ask("a", QoS::AtMostOnce)], 2), Join::Joined);
        let answered = restore.on_subscribed(
            id(9),
            &[
                (filter("a"), Ok(QoS::AtLeastOnce)),
                (filter("b"), Err(SubscribeRefused::UNSPECIFIED)),
            ],
        );
        assert_eq!(
            answered,
            [
                (1, vec![(filter("b"), Err(SubscribeRefused::UNSPECIFIED))]),
                (2, vec![(filter("a"), Ok(QoS::AtLeastOnce))]),
            ]
        );
    }

    #[test]
    fn a_filter_joins_once_per_restore() {
        let mut restore = restoring(&[("a", QoS::AtLeastOnce)]);
        assert_eq!(restore.join(&[ask("a", QoS::AtLeastOnce)], 1), Join::Joined);
        assert_eq!(
            restore.join(&[ask("a", QoS::AtLeastOnce)], 2),
            Join::Send(2)
        );
    }

    #[test]
    fn a_subscribe_partly_outside_the_restore_is_sent() {
        let mut restore = restoring(&[("a", QoS::AtLeastOnce)]);
        let both = [ask("a", QoS::AtLeastOnce), ask("new", QoS::AtLeastOnce)];
        assert_eq!(restore.join(&both, 1), Join::Send(1));
        // It claimed nothing: the restored filter alone still joins.
        assert_eq!(restore.join(&[ask("a", QoS::AtLeastOnce)], 2), Join::Joined);
    }

    #[test]
    fn asking_more_than_before_is_a_new_request() {
        let mut restore: Resubscription<u32> = Resubscription::default();
        // The application asked for QoS 2; the broker granted 1, which the restore asks for.
        assert_eq!(
            restore.join(&[ask("a", QoS::ExactlyOnce)], 1),
            Join::Send(1)
        );
        restore.on_connected();
        restore.on_restore(id(9), [(&filter("a"), QoS::AtLeastOnce)]);
        // The same request as before joins...
        assert_eq!(restore.join(&[ask("a", QoS::ExactlyOnce)], 2), Join::Joined);
        // ...an upgrade the application never asked for would not have.
        let mut fresh = restoring(&[("a", QoS::AtMostOnce)]);
        assert_eq!(fresh.join(&[ask("a", QoS::AtLeastOnce)], 3), Join::Send(3));
    }

    #[test]
    fn a_subscribe_after_the_restore_was_granted_is_answered_at_once() {
        let mut restore = restoring(&[("a", QoS::AtLeastOnce)]);
        assert!(
            restore
                .on_subscribed(id(9), &[(filter("a"), Ok(QoS::AtLeastOnce))])
                .is_empty()
        );
        assert_eq!(
            restore.join(&[ask("a", QoS::AtLeastOnce)], 1),
            Join::Granted {
                waiter: 1,
                results: vec![(filter("a"), Ok(QoS::AtLeastOnce))]
            }
        );
        // Once only, and not in the next connection.
        assert_eq!(
            restore.join(&[ask("a", QoS::AtLeastOnce)], 2),
            Join::Send(2)
        );
        let mut restore = restoring(&[("a", QoS::AtLeastOnce)]);
        let _ = restore.on_subscribed(id(9), &[(filter("a"), Ok(QoS::AtLeastOnce))]);
        restore.on_connected();
        assert_eq!(
            restore.join(&[ask("a", QoS::AtLeastOnce)], 3),
            Join::Send(3)
        );
    }

    #[test]
    fn an_unsubscribe_in_between_keeps_a_later_subscribe_separate() {
        let mut restore = restoring(&[("a", QoS::AtLeastOnce)]);
        restore.on_unsubscribe(&[filter("a")]);
        assert_eq!(
            restore.join(&[ask("a", QoS::AtLeastOnce)], 1),
            Join::Send(1)
        );
    }

    #[test]
    fn other_subacks_and_drained_waiters() {
        let mut restore = restoring(&[("a", QoS::AtLeastOnce)]);
        assert_eq!(restore.join(&[ask("a", QoS::AtLeastOnce)], 1), Join::Joined);
        assert!(restore.on_subscribed(id(3), &[]).is_empty());
        assert_eq!(restore.drain(), [1]);
        assert!(restore.drain().is_empty());
    }

    #[test]
    fn granted_qos_names_the_refused_filter() {
        assert_eq!(
            granted_qos([(filter("a"), Ok(QoS::AtLeastOnce))]).ok(),
            Some(vec![QoS::AtLeastOnce])
        );
        let refused = granted_qos([
            (filter("a"), Ok(QoS::AtLeastOnce)),
            (filter("x/#"), Err(SubscribeRefused::UNSPECIFIED)),
        ]);
        assert!(
            matches!(&refused, Err(Error::SubscribeRefused { filter, .. }) if filter == "x/#"),
            "{refused:?}"
        );
    }
}
