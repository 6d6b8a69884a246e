//! The parity table of `sansmq pub`/`sub` against mosquitto_pub/mosquitto_sub: rows of command
//! pairs ([`row`], with the tables in `rows_*`), how one side of a row runs beside a watcher
//! ([`run`]), the raw MQTT client the watcher is made of ([`mqtt`]), the places a row may need (a
//! SOCKS5 proxy, a listener that never answers) and the report ([`report`]).

pub(crate) mod mqtt;
pub(crate) mod report;
pub(crate) mod row;
mod rows_both;
mod rows_pub;
mod rows_signal;
mod rows_sub;
mod rows_v5;
pub(crate) mod run;

use std::net::{Ipv4Addr, TcpListener};
use std::thread;

pub(crate) use row::Row;

/// Every row: sub, pub, the options both share, MQTT 5's, then signals.
pub(crate) fn rows() -> Vec<Row> {
    let mut rows = rows_sub::rows();
    rows.extend(rows_pub::rows());
    rows.extend(rows_both::rows());
    rows.extend(rows_v5::rows());
    rows.extend(rows_signal::rows());
    rows
}

/// A TCP listener that accepts every connection and never sends a byte: a broker that hangs.
/// Returns its port; it lives as long as the test process.
pub(crate) fn silent_listener() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a silent listener");
    let port = listener.local_addr().expect("its address").port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            held.push(stream);
        }
    });
    port
}
