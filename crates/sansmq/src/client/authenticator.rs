//! [`Authenticator`]: MQTT 5 enhanced authentication (MQTT 5.0 section 4.12), a challenge and
//! response carried by CONNECT, AUTH and CONNACK, with the method (SCRAM, Kerberos, a token
//! scheme) supplied by the application. No IO: the client calls it with the server's data and
//! sends what it returns.

use std::fmt;

use bytes::Bytes;

/// One side of an enhanced authentication exchange, for one method.
///
/// The client calls [`start`](Self::start) for the CONNECT (and for every re-authentication,
/// [`Client::reauthenticate`](super::Client::reauthenticate)), [`respond`](Self::respond) for
/// each AUTH with Reason Code 0x18 (Continue authentication) the server sends, and
/// [`finish`](Self::finish) with the data of the CONNACK (or AUTH) that ends the exchange with
/// Success, so a method that authenticates the server too (SCRAM's server signature) can check
/// it. An error from any of them ends the connection.
///
/// `Debug` must not show secrets.
pub trait Authenticator: fmt::Debug + Send {
    /// The Authentication Method, such as `SCRAM-SHA-256`.
    fn method(&self) -> &str;

    /// The first message of an exchange: the Authentication Data of the CONNECT, or of the AUTH
    /// that starts a re-authentication. Starts afresh each time it is called.
    fn start(&mut self) -> Result<Option<Bytes>, AuthError>;

    /// The answer to the server's challenge.
    fn respond(&mut self, challenge: Option<&Bytes>) -> Result<Option<Bytes>, AuthError>;

    /// The exchange ended with Success; `data` is the server's final Authentication Data.
    fn finish(&mut self, data: Option<&Bytes>) -> Result<(), AuthError>;
}

/// An authenticator chosen at run time (a driver's options make one per client).
impl<A: Authenticator + ?Sized> Authenticator for Box<A> {
    fn method(&self) -> &str {
        (**self).method()
    }

    fn start(&mut self) -> Result<Option<Bytes>, AuthError> {
        (**self).start()
    }

    fn respond(&mut self, challenge: Option<&Bytes>) -> Result<Option<Bytes>, AuthError> {
        (**self).respond(challenge)
    }

    fn finish(&mut self, data: Option<&Bytes>) -> Result<(), AuthError> {
        (**self).finish(data)
    }
}

/// Why an authenticator cannot go on: the server's data is wrong or a secret is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError(pub String);

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for AuthError {}
