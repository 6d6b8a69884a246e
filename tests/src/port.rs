//! Free loopback ports for brokers that cannot be handed an already bound socket.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};

/// Ports this process has handed out already; never handed out twice, so two brokers started by
/// parallel tests cannot be given the same port even if the kernel offers it again.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A 127.0.0.1 TCP port that was free a moment ago and that this process has not handed out before.
///
/// The port is found by binding `127.0.0.1:0` and releasing it, so another process (or an outgoing
/// connection's local port) may still take it before it is used: whoever binds it must be ready to
/// retry with another port, as [`Mosquitto`](crate::Mosquitto) does.
///
/// # Panics
///
/// If no port can be bound on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = bind_unused();
    local_port(&listener)
}

/// A listener on a 127.0.0.1 port this process has not handed out before, and never will again:
/// so a proxy cannot take the port of a broker that is down for a restart.
///
/// # Panics
///
/// If no port can be bound on 127.0.0.1.
pub(crate) fn bind_unused() -> TcpListener {
    // Ports refused stay bound until we return, so the kernel offers a different one each time.
    let mut refused = Vec::new();
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind a port on 127.0.0.1: {e}"));
        if HANDED_OUT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(local_port(&listener))
        {
            return listener;
        }
        refused.push(listener);
    }
    panic!("no free port on 127.0.0.1 that this process has not used yet")
}

fn local_port(listener: &TcpListener) -> u16 {
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("cannot read a bound socket's address: {e}"))
        .port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_hands_out_a_port_twice() {
        let ports: BTreeSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
        assert!(
            ports
                .iter()
                .all(|&port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok())
        );
    }
}
