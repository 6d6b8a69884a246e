//! Ending a connection on request so that the broker reads the DISCONNECT (see
//! [`Closing`]): write it, shut down the write side, discard what arrives until the broker's end
//! of stream, then close.

use std::time::Instant;

use sansmq_driver::Closing;

use super::{Connection, DUE_READ_BUDGET, Inner};
use crate::transport::ReadOutcome;

impl Inner {
    /// Whether a requested disconnect is ending the connection.
    pub(crate) fn is_closing(&self) -> bool {
        self.connection
            .as_ref()
            .is_some_and(|c| c.closing.is_some())
    }

    /// A requested disconnect: write DISCONNECT, shut down the write side, discard what arrives
    /// until the broker's end of stream, then close (see [`Closing`]), so that the broker reads
    /// the DISCONNECT and drops the will. Closing at once with unread bytes made Linux send a reset
    /// that discarded the DISCONNECT, and the will fired on every normal exit under traffic.
    pub(super) fn start_close(&mut self, now: Instant) {
        match &mut self.connection {
            Some(connection) => connection.closing = Some(Closing::new(now)),
            // Nothing reached the broker: no will to worry about.
            _ => {
                self.finish_close(now);
                return;
            }
        }
        self.flush(now);
        self.advance_close(now);
    }

    /// Moves a requested close on as far as the socket allows now.
    pub(crate) fn advance_close(&mut self, now: Instant) {
        let Some(connection) = &mut self.connection else {
            return;
        };
        let Connection {
            transport, closing, ..
        } = connection;
        let Some(closing) = closing else {
            return;
        };
        if !closing.is_draining() && !closing.is_expired(now) {
            if self.core.poll_transmit().is_some() || transport.tls_pending() {
                return; // DISCONNECT is not out yet: the socket will say when it is writable
            }
            match transport.shut_down_writing() {
                Ok(true) => {
                    closing.handle_flushed(now);
                }
                Ok(false) => return,
                Err(_) => {
                    self.finish_close(now);
                    return;
                }
            }
        }
        let over = closing.is_expired(now) || {
            let outcome = transport.discard(&mut self.read_buf, DUE_READ_BUDGET);
            self.read_more = outcome == ReadOutcome::More;
            outcome == ReadOutcome::Closed
        };
        if over {
            self.finish_close(now);
        }
    }

    /// The requested close is over (the broker's end of stream, a failure, or the deadline):
    /// close the socket and answer `disconnect`.
    pub(super) fn finish_close(&mut self, now: Instant) {
        self.drop_socket();
        self.core.handle_closed(now);
        if let Some(waiter) = self.disconnect_waiter.take() {
            waiter.complete(Ok(()));
        }
    }
}
