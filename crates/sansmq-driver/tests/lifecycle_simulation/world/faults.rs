//! The faults: transports cut, brokers gone silent or restarted, URIs failing, tokens
//! invalidated, and MQTT 5.0 brokers ending connections with a DISCONNECT of their own.

use sansmq::packet::ReasonCode;
use sansmq_driver::Error;

use super::{Net, World};
use crate::scenario::Reach;

impl World {
    pub(super) fn fault(&mut self) {
        let now = self.now;
        match self.rng.below(100) {
            // MQTT 5.0: the broker ends the connection with a DISCONNECT of its own.
            0..=9 if self.protocol.is_v5() => {
                let code = *self.rng.pick(&[
                    ReasonCode::ServerShuttingDown,
                    ReasonCode::SessionTakenOver,
                    ReasonCode::AdministrativeAction,
                ]);
                let Some(id) = self.current else { return };
                let Some(conn) = self.conns.get_mut(&id) else {
                    return;
                };
                let latency = conn.latency;
                let Some(broker) = conn.broker.as_mut() else {
                    return;
                };
                let Some(bytes) = broker.server_disconnect(&mut self.cluster, now, code) else {
                    return;
                };
                self.log(|| format!("fault: the broker sends DISCONNECT {code:?} on #{id}"));
                self.count("server DISCONNECTs");
                self.schedule(latency, Net::ToClient(id, bytes.freeze()));
                self.broker_close(id);
            }
            // Cut the transport: both ends see a reset.
            0..=29 => {
                let Some(id) = self.current else { return };
                let open = self.conns.get(&id).is_some_and(|c| c.open);
                if !open {
                    return;
                }
                self.log(|| format!("fault: cut #{id}"));
                self.count("cuts");
                if let Some(conn) = self.conns.get_mut(&id) {
                    if let Some(mut broker) = conn.broker.take() {
                        broker.closed(&mut self.cluster, now);
                    }
                    conn.client_alive = false;
                }
                self.current = None;
                self.transport_ended(id);
                let error = Error::Io {
                    context: "reading".into(),
                    reason: "connection reset by peer".into(),
                };
                self.sup.handle_closed(now, Some(error));
            }
            // The broker goes silent on this connection (hung, or a black-holed route).
            30..=39 => {
                let Some(id) = self.current else { return };
                if let Some(conn) = self.conns.get_mut(&id) {
                    if let Some(broker) = conn.broker.as_mut() {
                        broker.silent = true;
                        conn.silent_since = Some(now);
                        self.log(|| format!("fault: broker silent on #{id}"));
                        self.count("silent brokers");
                    }
                }
            }
            // A server URI changes how it answers.
            40..=54 => {
                let index = self.rng.below(self.reach.len() as u64) as usize;
                let reach = *self.rng.pick(&[
                    Reach::Up,
                    Reach::Up,
                    Reach::NoDns,
                    Reach::Refused,
                    Reach::BlackHole,
                ]);
                self.log(|| format!("fault: URI {index} now {reach:?}"));
                self.reach[index] = reach;
            }
            // The brokers refuse CONNECTs for a while ("server unavailable"), or stop.
            55..=62 => {
                self.cluster.unavailable = !self.cluster.unavailable;
                let unavailable = self.cluster.unavailable;
                self.log(|| format!("fault: brokers unavailable {unavailable}"));
            }
            // The brokers lose the session.
            63..=72 => {
                self.log(|| "fault: the brokers restart and lose the session".into());
                self.count("broker restarts");
                let open: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.broker.is_some())
                    .map(|(id, _)| *id)
                    .collect();
                for id in open {
                    self.broker_close(id);
                }
                self.cluster.session = None;
            }
            // Tokens: rotated (the provider follows), handed out stale once, declared invalid,
            // or issued again (the application's next connect picks them up).
            _ => {
                if !self.sc.provider {
                    return;
                }
                let mut tokens = self.tokens.lock().expect("tokens");
                match self.rng.below(4) {
                    0 => {
                        self.password_generation += 1;
                        tokens.password = format!("token-{}", self.password_generation);
                        self.cluster.valid_password = tokens.password.clone();
                    }
                    1 => tokens.stale_once = true,
                    2 => tokens.invalid = true,
                    _ => tokens.invalid = false,
                }
                let what = format!("{tokens:?}");
                drop(tokens);
                self.log(|| format!("fault: tokens {what}"));
            }
        }
    }
}
