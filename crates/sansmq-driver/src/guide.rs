//! # Writing a driver for a new runtime
//!
//! A sansmq driver moves bytes and reads a clock; the [`Supervisor`](crate::Supervisor) decides
//! everything else. This page shows a whole driver — blocking, on `std::net`, in about a hundred
//! lines — and lists what every driver must guarantee. The blocking client (`sansmq-mio`), the
//! tokio client (`sansmq-tokio`) and the runtime-agnostic one (`sansmq-futures`) are this loop
//! with a different way of waiting.
//!
//! ## Who does what
//!
//! | the supervisor decides | the driver does |
//! |---|---|
//! | which server URI to try, when to retry (jittered backoff), when to give up | open a transport on [`Action::Open`], drop it on [`Action::Close`] |
//! | the credentials of each attempt (the provider is asked before every CONNECT) | resolve, dial, TLS ([`ConnectOptions::tls_config`](crate::ConnectOptions::tls_config)) |
//! | CONNECT, keep-alive, re-sending, re-subscribing after a reconnect | write [`poll_transmit`](crate::Supervisor::poll_transmit), read into [`read_buffer`](crate::Supervisor::read_buffer) |
//! | when each request completes, and with which [`Error`](crate::Error) | give each [`Completed`] waiter its result |
//! | how a requested disconnect ends ([`Closing`](crate::Closing)) | shut down writing on [`Action::ShutdownWrite`], read until end of stream |
//! | what a broker's close means ([`Diagnosis`](crate::Diagnosis)) | report end of stream and IO errors with [`handle_closed`](crate::Supervisor::handle_closed) |
//!
//! ## The loop
//!
//! After every input (a command, bytes read, bytes written, a transport opened or closed, a
//! timer), drain the three outputs, then wait for the next input:
//!
//! ```
//! use std::io::{ErrorKind, Read, Write};
//! use std::net::{Shutdown, TcpStream};
//! use std::time::{Duration, Instant};
//!
//! use sansmq::TopicName;
//! use sansmq::packet::QoS;
//! use sansmq_driver::supervisor::{Action, Completed, Event, Requests, Supervisor};
//! use sansmq_driver::{ConnectOptions, Error};
//!
//! /// This driver runs one request at a time, so its waiters need no identity.
//! #[derive(Debug)]
//! struct OneAtATime;
//!
//! impl Requests for OneAtATime {
//!     type Connect = ();
//!     type Publish = ();
//!     type Subscribe = ();
//!     type Unsubscribe = ();
//!     type Disconnect = ();
//!     type Request = ();
//! }
//!
//! struct Driver {
//!     supervisor: Supervisor<OneAtATime>,
//!     socket: Option<TcpStream>,
//! }
//!
//! impl Driver {
//!     /// Opens and closes transports as the supervisor asks.
//!     fn act(&mut self) {
//!         while let Some(action) = self.supervisor.poll_action() {
//!             match action {
//!                 Action::Open { uri } => match TcpStream::connect((uri.host.as_str(), uri.port)) {
//!                     Ok(socket) => {
//!                         let _ = socket.set_nodelay(true);
//!                         self.socket = Some(socket);
//!                         self.supervisor.handle_opened(Instant::now());
//!                     }
//!                     Err(e) => {
//!                         let error = Error::io(format!("connecting to {uri}"), &e);
//!                         self.supervisor.handle_open_failed(Instant::now(), error);
//!                     }
//!                 },
//!                 Action::ShutdownWrite => {
//!                     if let Some(socket) = &self.socket {
//!                         let _ = socket.shutdown(Shutdown::Write);
//!                     }
//!                 }
//!                 Action::Close => self.socket = None,
//!             }
//!         }
//!     }
//!
//!     /// Writes what waits, reporting exactly what the socket took.
//!     fn write(&mut self) {
//!         while let (Some(socket), Some(bytes)) = (&mut self.socket, self.supervisor.poll_transmit()) {
//!             match socket.write(bytes) {
//!                 Ok(n) => self.supervisor.handle_transmitted(Instant::now(), n),
//!                 Err(e) => {
//!                     let error = Error::io("writing", &e);
//!                     self.socket = None;
//!                     self.supervisor.handle_closed(Instant::now(), Some(error));
//!                 }
//!             }
//!         }
//!     }
//!
//!     /// Turns the loop until the request in flight completes; returns its answer.
//!     fn run(&mut self) -> Result<Completed<OneAtATime>, Error> {
//!         loop {
//!             // 1. Open and close what the supervisor asks for, and write what waits. Writing
//!             //    can ask for more (the last byte of DISCONNECT asks to shut down writing).
//!             self.act();
//!             self.write();
//!             self.act();
//!             // 2. Hand events to the application; a completion ends this call.
//!             while let Some(event) = self.supervisor.poll_event() {
//!                 match event {
//!                     Event::Completed(completed) => return Ok(completed),
//!                     Event::Message(message) => println!("{}: {:?}", message.topic, message.payload),
//!                     other => println!("{other:?}"),
//!                 }
//!             }
//!             // 3. Wait for bytes or the next deadline, whichever comes first.
//!             let deadline = self.supervisor.poll_timeout();
//!             let now = Instant::now();
//!             let wait = deadline.map(|at| at.saturating_duration_since(now).max(Duration::from_millis(1)));
//!             match &mut self.socket {
//!                 Some(socket) if self.supervisor.wants_read() => {
//!                     socket.set_read_timeout(wait).map_err(|e| Error::io("waiting", &e))?;
//!                     let buffer = self.supervisor.read_buffer();
//!                     let mut chunk = [0; 4096];
//!                     match socket.read(&mut chunk) {
//!                         Ok(0) => {
//!                             self.socket = None;
//!                             self.supervisor.handle_closed(Instant::now(), None);
//!                         }
//!                         Ok(n) => {
//!                             buffer.extend_from_slice(&chunk[..n]);
//!                             self.supervisor.handle_read(Instant::now());
//!                         }
//!                         Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
//!                             self.supervisor.handle_timeout(Instant::now());
//!                         }
//!                         Err(e) => {
//!                             let error = Error::io("reading", &e);
//!                             self.socket = None;
//!                             self.supervisor.handle_closed(Instant::now(), Some(error));
//!                         }
//!                     }
//!                 }
//!                 _ => match wait {
//!                     Some(wait) => {
//!                         std::thread::sleep(wait);
//!                         self.supervisor.handle_timeout(Instant::now());
//!                     }
//!                     None => return Err(Error::Closed), // nothing can happen any more
//!                 },
//!             }
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let broker = std::net::TcpListener::bind("127.0.0.1:0")?;
//! # let uri = format!("tcp://{}", broker.local_addr()?);
//! # // A broker that accepts the connection, acknowledges one QoS 1 message and closes after
//! # // DISCONNECT.
//! # let fake = std::thread::spawn(move || -> std::io::Result<()> {
//! #     let (mut client, _) = broker.accept()?;
//! #     let mut chunk = [0; 256];
//! #     let _connect = client.read(&mut chunk)?;
//! #     client.write_all(&[0x20, 0x02, 0x00, 0x00])?;
//! #     let n = client.read(&mut chunk)?; // PUBLISH QoS 1 to "t": its id follows the topic
//! #     assert!(n >= 7 && chunk[0] == 0x32, "{:?}", &chunk[..n]);
//! #     client.write_all(&[0x40, 0x02, chunk[5], chunk[6]])?;
//! #     while client.read(&mut chunk)? > 0 {} // DISCONNECT, then the end of stream
//! #     Ok(())
//! # });
//! let options = ConnectOptions::new(&uri, "guide")?;
//! let mut driver = Driver { supervisor: Supervisor::new(options)?, socket: None };
//!
//! driver.supervisor.connect(Instant::now(), ()).map_err(|rejected| rejected.error)?;
//! let Completed::Connect((), session_present) = driver.run()? else { unreachable!() };
//! println!("connected, session present: {}", session_present?);
//!
//! let topic = TopicName::try_from("t")?;
//! let payload = bytes::Bytes::from_static(b"hello");
//! driver.supervisor.publish(Instant::now(), topic, QoS::AtLeastOnce, false, payload, ())
//!     .map_err(|rejected| rejected.error)?;
//! let Completed::Publish((), _, acknowledged) = driver.run()? else { unreachable!() };
//! acknowledged?; // the broker's PUBACK
//!
//! driver.supervisor.disconnect(Instant::now(), Duration::from_secs(1), ());
//! let Completed::Disconnect((), closed) = driver.run()? else { unreachable!() };
//! closed?;
//! # fake.join().map_err(|_| "the fake broker panicked")??;
//! # Ok(())
//! # }
//! ```
//!
//! A real driver waits on more than one thing at once (the socket, the application's commands,
//! the timer) with its runtime's select — `mio::Poll`, `tokio::select!`, `futures::select!` —
//! and hands messages and completions to other threads or tasks. The steps stay the same.
//!
//! ## What every driver guarantees
//!
//! 1. **Time.** Every input carries `now` from a monotonic clock. Call
//!    [`handle_timeout`](crate::Supervisor::handle_timeout) at or after
//!    [`poll_timeout`](crate::Supervisor::poll_timeout) — which can change after any input, so
//!    read it again before every wait. An early call is harmless; a missed one stops keep-alive,
//!    reconnects and the bound on a requested close.
//! 2. **Drain after every input**: actions, then transmit, then actions again (a write can finish
//!    DISCONNECT and ask to shut down writing), then events. An output left undrained until the
//!    next wake-up can be one that nothing wakes up for.
//! 3. **Transports.** Open one only on [`Action::Open`], and answer it exactly once with
//!    [`handle_opened`](crate::Supervisor::handle_opened) or
//!    [`handle_open_failed`](crate::Supervisor::handle_open_failed) — unless
//!    [`Action::Close`] comes first, after which nothing more is reported for it. Name what failed
//!    in the error (DNS, each address dialed, the TLS alert): the application sees it. Carry out
//!    the transport options, or refuse them by name with [`Error::Unsupported`](crate::Error)
//!    when the client is made, never ignore them: a `unix://` URI's
//!    [`unix_socket`](crate::ServerUri::unix_socket), a
//!    [`local_address`](crate::ConnectOptions::local_address) to bind each socket to (dialing
//!    only [`reachable_from`](crate::dial::reachable_from) it), and a
//!    [`proxy`](crate::ConnectOptions::proxy_options): dial it instead of the broker and run
//!    [`Socks5Handshake`](crate::socks5::Socks5Handshake) before TLS, which still names the
//!    broker.
//! 4. **Writes.** Write [`poll_transmit`](crate::Supervisor::poll_transmit) in order and report
//!    exactly the bytes the transport took; partial writes are normal. A transport with its own
//!    buffers (TLS) flushes them before [`Action::ShutdownWrite`] takes effect.
//! 5. **Reads.** Read only while [`wants_read`](crate::Supervisor::wants_read): when the
//!    acknowledgements owed to the broker fill the transmit buffer it says no, and TCP slows a
//!    broker that sends without reading. A driver may also pause reading while the application is
//!    behind on its messages — but never while
//!    [`awaits_broker`](crate::Supervisor::awaits_broker), or an application that waits for a
//!    PUBACK without reading its messages waits forever.
//! 6. **Ends.** Report the end of stream (`None`) and every read or write error with
//!    [`handle_closed`](crate::Supervisor::handle_closed); during a requested close, keep reading
//!    (the supervisor discards what arrives) until the end of stream, so that the broker reads the
//!    DISCONNECT and drops the will.
//! 7. **Answers.** Every [`Completed`] reaches its waiter, and every message reaches the
//!    application or is refused visibly; with manual acknowledgements, pass the application's
//!    [`AckKey`](crate::AckKey) to [`ack`](crate::Supervisor::ack), otherwise acknowledge once the
//!    message is handed over. Never block the loop on the application: hand over through bounded
//!    queues and pause reading when they are full (5.).
//! 8. **Shut down.** When the application drops its last handle, call
//!    [`shut_down`](crate::Supervisor::shut_down) and deliver the [`Error::Closed`](crate::Error)
//!    answers it produces.
//!
//! The end-to-end scenarios in the repository's `tests/` package (QoS 0/1/2, reconnect with
//! re-subscribe, keep-alive on a black-holed link, no loss across cuts) run against every driver
//! through one small adapter trait: a new driver adds its adapter and passes the same suite.
//!
//! [`Action::Open`]: crate::supervisor::Action::Open
//! [`Action::Close`]: crate::supervisor::Action::Close
//! [`Action::ShutdownWrite`]: crate::supervisor::Action::ShutdownWrite
//! [`Completed`]: crate::supervisor::Completed
