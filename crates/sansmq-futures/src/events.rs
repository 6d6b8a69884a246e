//! [`Events`]: what happened to the client, in order, as a `Stream`.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use sansmq_driver::channel::FairReceiver;

use crate::Event;

/// The client's [`Event`]s: a [`Stream`], or `recv().await` them; they end with the
/// [`Connection`](crate::Connection).
///
/// Its channel is bounded: while it is full the connection stops reading from the broker, unless
/// a call awaits the broker's answer (so publishing while not consuming cannot deadlock). Without
/// `Events`, the client acknowledges and discards messages. A reader that always finds events
/// waiting yields to its executor after 128 in a row.
#[derive(Debug)]
pub struct Events {
    pub(crate) rx: FairReceiver<Event>,
}

impl Events {
    /// The next event; `None` once the [`Connection`](crate::Connection) has ended (every
    /// [`Client`](crate::Client) dropped).
    pub async fn recv(&mut self) -> Option<Event> {
        poll_fn(|cx| self.rx.poll_recv(cx)).await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv()
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}
