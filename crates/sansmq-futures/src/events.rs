//! [`Events`]: what happened to the client, in order, as a `Stream`.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_core::stream::FusedStream;
use sansmq_driver::channel::{FairReceiver, Receiver};

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
    rx: FairReceiver<Event>,
    /// The stream has ended (a [`FusedStream`], for `futures::select!`).
    ended: bool,
}

impl Events {
    pub(crate) fn new(rx: Receiver<Event>) -> Self {
        Self {
            rx: FairReceiver::new(rx),
            ended: false,
        }
    }

    /// The next event; `None` once the [`Connection`](crate::Connection) has ended (every
    /// [`Client`](crate::Client) dropped).
    pub async fn recv(&mut self) -> Option<Event> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv()
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let polled = self.rx.poll_recv(cx);
        self.ended = matches!(polled, Poll::Ready(None));
        polled
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.poll_event(cx)
    }
}

impl FusedStream for Events {
    fn is_terminated(&self) -> bool {
        self.ended
    }
}
