//! From the connection flags to [`ConnectOptions`], and connecting with errors that say what to
//! try.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sansmq::DisconnectReason;
use sansmq::packet::{ConnectReturnCode, Protocol, QoS};
use sansmq_apsaramq::{AccessKey, AuthMode, ClientId, Endpoint, apsaramq_options};
use sansmq_mio::http_connect::HttpConnectError;
use sansmq_mio::socks5::Socks5Error;
use sansmq_mio::websocket::WebSocketError;
use sansmq_mio::{
    Client, ConnectOptions, Credentials, Mqtt5Options, ProxyOptions, SyncPolicy, TlsOptions,
    TrustRoots, Will,
};

use crate::args::{ConnectArgs, MQTT_MAX_PACKET};
use crate::exit::{CONNECTION_LOST, Failure, NO_CONNACK, NOT_CONNECTED, TLS_FAILED};
use crate::properties::CommandProperties;

/// How often a wait for CONNACK looks at the deadline and for signals.
const CONNECT_POLL: Duration = Duration::from_millis(50);

/// A client ready to connect, and what the flags said besides.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) options: ConnectOptions,
    /// `tcp://host:port`, `ssl://host:port`, or `ws(s)://host:port/path`, for messages.
    pub(crate) uri: String,
    pub(crate) client_id: String,
    /// The topic of `-L mqtt://host/topic`.
    pub(crate) url_topic: Option<String>,
    /// Whether ApsaraMQ's rules apply (`--apsaramq-instance`).
    pub(crate) apsaramq: bool,
    pub(crate) clean_session: bool,
    /// The properties of `-D` for the packets after CONNECT (publish, subscribe...).
    pub(crate) properties: CommandProperties,
    /// The protocol it speaks.
    pub(crate) protocol: Protocol,
}

/// What `-L` holds.
#[derive(Debug, Default, PartialEq, Eq)]
struct Url {
    tls: bool,
    /// `ws://` or `wss://`: `topic` holds the WebSocket path too, until [`split_websocket_path`].
    websocket: bool,
    username: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<u16>,
    topic: Option<String>,
}

/// Builds the options from the flags; `program` names the default client id (`sansmq-pub-...`).
pub(crate) fn setup(args: &ConnectArgs, program: &str) -> anyhow::Result<Setup> {
    setup_as(args, program, Protocol::Mqtt311)
}

/// [`setup`] for a command whose protocol without -V (and -D) is `default` (MQTT 5 for `rr`).
pub(crate) fn setup_as(
    args: &ConnectArgs,
    program: &str,
    default: Protocol,
) -> anyhow::Result<Setup> {
    if args.insecure {
        bail!(
            "--insecure is not supported: sansmq always checks that the broker's certificate \
             names the host it connects to; connect with -h set to a name in the certificate \
             (and --cafile for a private CA)"
        );
    }
    if args.tls_engine.is_some() || args.tls_engine_kpass_sha1.is_some() {
        bail!(
            "--tls-engine is not supported: OpenSSL engines do not exist in rustls, sansmq's TLS; \
             give the client key as a PEM file (--cert and --key)"
        );
    }
    if args.keyform.as_deref() == Some("engine") {
        bail!(
            "--keyform engine is not supported (no OpenSSL engines in rustls); use --keyform pem"
        );
    }
    if args.psk.is_some() || args.psk_identity.is_some() {
        bail!(
            "--psk is not supported: rustls, sansmq's TLS, offers no TLS-PSK; use certificates \
             (--cafile, and --cert/--key for mutual TLS)"
        );
    }
    let properties = crate::properties::parse(&args.property_flags)?;
    let protocol = protocol(args)?.or(Some(default));
    if args.session_expiry.is_some() && protocol != Some(Protocol::Mqtt5) {
        tracing::debug!(
            "-x: MQTT 3.1.1 has no session expiry interval; ignored, as mosquitto does"
        );
    }
    if let Some(host) = &args.host {
        if host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err() {
            bail!("-h {host:?}: a host name holds no ':'; give the port with -p");
        }
    }
    let mut url = args.url.as_deref().map(parse_url).transpose()?;
    if !args.ws_path.starts_with('/') {
        bail!(
            "--ws-path {:?}: a WebSocket path begins with '/'",
            args.ws_path
        );
    }
    if let Some(url) = url.as_mut().filter(|u| u.websocket) {
        split_websocket_path(url, &args.ws_path, args.url.as_deref().unwrap_or_default())?;
    }
    let endpoint = args
        .apsaramq_instance
        .as_deref()
        .map(Endpoint::public)
        .transpose()
        .context("--apsaramq-instance")?;

    let (uri, tls) = server_uri(args, url.as_ref(), endpoint.as_ref());
    let uri = match &args.unix {
        Some(_) if tls => bail!("--unix cannot be used with TLS: a Unix socket is local"),
        Some(_) if uri.starts_with("ws") => {
            bail!("--unix cannot be used with WebSocket (--ws, -L ws://)")
        }
        Some(path) => format!("unix://{}", path.display()),
        None => uri,
    };
    let clean_session = !args.disable_clean_session;
    if !clean_session && args.id.as_deref().is_none_or(str::is_empty) {
        // As mosquitto: a random id would make the kept session unreachable.
        bail!("-c keeps the session of a client id: give one with -i");
    }
    let client_id = client_id(args, program)?;

    let username = url
        .as_ref()
        .and_then(|u| u.username.clone())
        .or_else(|| args.username.clone());
    let password = url
        .as_ref()
        .and_then(|u| u.password.clone())
        .or_else(|| args.password.clone());

    let mut options = match &args.apsaramq_instance {
        Some(instance) => {
            if username.is_some() || password.is_some() {
                bail!(
                    "-u/-P cannot be used with --apsaramq-instance: the login is made from \
                     MQTT_AK_ENV and MQTT_SK_ENV (or --token)"
                );
            }
            let id = ClientId::parse(&client_id).context("-i")?;
            let auth = apsaramq_auth(instance, args)?;
            let options = apsaramq_options(&uri, &id, auth)?;
            match args.keepalive {
                Some(seconds) => options.keep_alive(seconds_of(seconds)),
                None => options,
            }
        }
        None => {
            let options = ConnectOptions::new(&uri, client_id.clone())?
                .keep_alive(seconds_of(args.keepalive.unwrap_or(60)));
            match (username, password) {
                (Some(username), password) => {
                    let credentials = Credentials {
                        username,
                        password: password.map(Into::into),
                    };
                    options.credentials_provider(move || Ok(credentials.clone()))
                }
                (None, Some(_)) => {
                    bail!("-P needs -u: MQTT 3.1.1 sends no password without a user name")
                }
                (None, None) => options,
            }
        }
    };

    options = transport_options(options, args)?
        .clean_session(clean_session)
        .max_packet_size(
            args.max_packet_size
                .unwrap_or(MQTT_MAX_PACKET)
                .try_into()
                .unwrap_or(usize::MAX),
        );
    if let Some(window) = args.max_inflight {
        options = options.max_inflight(window);
    }
    if let Some(dir) = &args.session_dir {
        let policy = args.session_sync.unwrap_or(SyncPolicy::EveryRecord);
        options = options.session_dir(dir, policy);
    }
    // mosquitto_pub waits for CONNACK as long as the keep-alive (then exits 19); sansmq at most
    // 30 s, the default connect timeout, however long the keep-alive.
    let keep_alive = options.keep_alive_interval();
    if !keep_alive.is_zero() {
        let limit = options.connect_timeout_limit().min(keep_alive);
        options = options.connect_timeout(limit);
    }
    match protocol {
        Some(Protocol::Mqtt31) => options = options.mqtt_v31(),
        Some(Protocol::Mqtt5) => {
            options = mqtt5_options(options, args, &properties, clean_session)?;
        }
        _ => {}
    }
    if tls {
        options = options.tls(tls_options(args));
    }
    if let Some(topic) = &args.will_topic {
        let will = Will {
            topic: topic.clone(),
            payload: args.will_payload.clone().unwrap_or_default().into(),
            qos: args.will_qos,
            retain: args.will_retain,
            properties: properties.will.clone(),
        };
        if endpoint.is_some() {
            sansmq_apsaramq::check_will(Some(&will))?;
        }
        options = options.will(will);
    } else if !properties.will.is_empty() {
        // As mosquitto: will properties without --will-topic have no will to go with.
        tracing::debug!("-D will: no --will-topic, so no will; ignored");
    }
    Ok(Setup {
        options,
        uri,
        client_id,
        url_topic: url.and_then(|u| u.topic),
        apsaramq: endpoint.is_some(),
        clean_session,
        properties,
        protocol: protocol.unwrap_or(default),
    })
}

/// The protocol: -V's, or MQTT 5 with -D, as mosquitto decides it: a -D makes the connection
/// MQTT 5 unless a -V after it asks for 3.1.x, which is refused (MQTT 3.1.1 has no properties,
/// and mosquitto then fails to connect, or silently publishes nothing).
fn protocol(args: &ConnectArgs) -> anyhow::Result<Option<Protocol>> {
    if args.properties.is_empty() {
        return Ok(args.protocol);
    }
    match args.protocol {
        Some(version @ (Protocol::Mqtt31 | Protocol::Mqtt311)) if args.version_after_property => {
            let name = if version == Protocol::Mqtt31 {
                "mqttv31"
            } else {
                "mqttv311"
            };
            bail!(
                "-V {name} after -D: MQTT 3.1.x has no properties; drop -V (-D speaks MQTT 5) or \
                 drop -D"
            )
        }
        _ => Ok(Some(Protocol::Mqtt5)),
    }
}

/// MQTT 5's connect settings: -x, -c's endless session, and -D connect's properties.
fn mqtt5_options(
    mut options: ConnectOptions,
    args: &ConnectArgs,
    properties: &CommandProperties,
    clean_session: bool,
) -> anyhow::Result<ConnectOptions> {
    let connect = &properties.connect;
    // mosquitto's rule: -c without -x keeps the session for ever; -x alone sets it.
    let expiry = args
        .session_expiry
        .or((!clean_session).then_some(u32::MAX))
        .filter(|&seconds| seconds > 0);
    if expiry.is_some() && connect.session_expiry_interval.is_some() {
        // mosquitto adds -x's (or -c's) Session Expiry Interval beside -D's, and refuses the
        // duplicate.
        let flag = if args.session_expiry.is_some() {
            "-x"
        } else {
            "-c (which keeps the session for ever)"
        };
        bail!(
            "-D connect session-expiry-interval and {flag} both set the Session Expiry \
             Interval; give one of them"
        );
    }
    let session_expiry = connect.session_expiry_interval.or(expiry);
    let at_disconnect = properties.disconnect.session_expiry_interval;
    if at_disconnect.is_some_and(|seconds| seconds > 0) && session_expiry.unwrap_or(0) == 0 {
        // MQTT-3.14.2-2: the broker would close the connection on that DISCONNECT.
        bail!(
            "-D disconnect session-expiry-interval: a session that ends with the connection \
             (no -x, -c or -D connect session-expiry-interval) cannot be kept at DISCONNECT \
             (MQTT-3.14.2-2); give -x or -D connect session-expiry-interval too"
        );
    }
    let mut v5 = Mqtt5Options::new();
    if let Some(seconds) = session_expiry {
        v5 = v5.session_expiry(Duration::from_secs(seconds.into()));
    }
    if let Some(messages) = connect.receive_maximum {
        v5 = v5.receive_maximum(messages);
    }
    if let Some(aliases) = connect.topic_alias_maximum {
        v5 = v5.topic_alias_maximum(aliases);
    }
    if let Some(request) = connect.request_problem_information {
        v5 = v5.request_problem_information(request);
    }
    if let Some(request) = connect.request_response_information {
        v5 = v5.request_response_information(request);
    }
    for (name, value) in &connect.user_properties {
        v5 = v5
            .user_property(name, value)
            .context("-D connect user-property")?;
    }
    if let Some(size) = connect.maximum_packet_size {
        if args.max_packet_size.is_some_and(|given| given != size) {
            bail!(
                "-D connect maximum-packet-size {size} and --max-packet-size {} disagree; give \
                 one of them",
                args.max_packet_size.unwrap_or_default()
            );
        }
        options = options.max_packet_size(usize::try_from(size).unwrap_or(usize::MAX));
    }
    Ok(options.mqtt5(v5))
}

/// -A, --proxy and --proxy-env.
fn transport_options(
    mut options: ConnectOptions,
    args: &ConnectArgs,
) -> anyhow::Result<ConnectOptions> {
    if let Some(address) = &args.bind_address {
        options = options.bind_address(bind_address(address)?);
    }
    if let Some(url) = &args.proxy {
        options = options.proxy(url.parse::<ProxyOptions>().context("--proxy")?);
    }
    if args.proxy_env {
        options = options.proxy_from_env().context("--proxy-env")?;
    }
    for header in &args.ws_headers {
        let Some((name, value)) = header.split() else {
            // Without a ':' there is no telling name from value: the value is not quoted.
            bail!("--ws-header: expected 'Name: value'");
        };
        if name.is_empty() {
            bail!("--ws-header: the header's name is empty (expected 'Name: value')");
        }
        options = options.websocket_header(name, value);
    }
    Ok(options)
}

/// -A: an IP address, or a name resolved to its first address (mosquitto resolves it too).
fn bind_address(address: &str) -> anyhow::Result<std::net::IpAddr> {
    if let Ok(ip) = address.parse() {
        return Ok(ip);
    }
    std::net::ToSocketAddrs::to_socket_addrs(&(address, 0))
        .ok()
        .and_then(|mut addresses| addresses.next())
        .map(|address| address.ip())
        .with_context(|| format!("-A {address:?}: not an IP address nor a name that resolves"))
}

/// --cafile, --capath, --tls-use-os-certs, --cert, --key, --keypass and --tls-alpn.
fn tls_options(args: &ConnectArgs) -> TlsOptions {
    let roots = match (&args.cafile, &args.capath, args.tls_use_os_certs) {
        (Some(file), _, _) => TrustRoots::CaFile(file.clone()),
        (None, Some(dir), _) => TrustRoots::CaDir(dir.clone()),
        (None, None, true) => TrustRoots::System,
        (None, None, false) => TrustRoots::default(),
    };
    let mut tls = TlsOptions::new()
        .roots(roots)
        .alpn(args.tls_alpn.iter().map(String::as_bytes));
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        tls = tls.client_auth(cert, key);
    }
    if let Some(password) = &args.keypass {
        tls = tls.key_password(password);
    }
    if let Some(version) = args.tls_version {
        tls = tls.min_version(version);
    }
    if let Some(ciphers) = &args.ciphers {
        tls = tls.tls12_ciphers(ciphers.clone());
    }
    tls
}

/// `tcp://host:port` or `ssl://host:port` from -L, -h and -p, or the ApsaraMQ endpoint; and
/// whether TLS is on (mqtts://, a TLS flag, or port 8883, as mosquitto decides). Over WebSocket
/// (-L ws(s)://, --ws) `ws://host:port/path` or `wss://` (TLS: wss://, a TLS flag, or port 443).
fn server_uri(
    args: &ConnectArgs,
    url: Option<&Url>,
    endpoint: Option<&Endpoint>,
) -> (String, bool) {
    let tls = url.is_some_and(|u| u.tls)
        || args.cafile.is_some()
        || args.capath.is_some()
        || !args.tls_alpn.is_empty()
        || args.cert.is_some()
        || args.tls_use_os_certs
        || args.port == Some(8883);
    let websocket = url.map_or(args.ws, |u| u.websocket);
    let tls = tls || (websocket && args.port == Some(443));
    let host = match (url, &args.host, endpoint) {
        (Some(url), _, _) => url.host.clone(),
        (None, Some(host), _) => host.clone(),
        (None, None, Some(endpoint)) => endpoint.host().to_owned(),
        (None, None, None) => "localhost".to_owned(),
    };
    let port = url
        .and_then(|u| u.port)
        .or(args.port)
        .unwrap_or(match (websocket, tls) {
            (false, false) => 1883,
            (false, true) => 8883,
            (true, false) => 80,
            (true, true) => 443,
        });
    let (scheme, path) = match (websocket, tls) {
        (false, false) => ("tcp", ""),
        (false, true) => ("ssl", ""),
        (true, false) => ("ws", args.ws_path.as_str()),
        (true, true) => ("wss", args.ws_path.as_str()),
    };
    let uri = if host.contains(':') {
        format!("{scheme}://[{host}]:{port}{path}")
    } else {
        format!("{scheme}://{host}:{port}{path}")
    };
    (uri, tls)
}

/// -i, -I plus the process id, or `sansmq-<program>-<pid>-<random>`; ApsaraMQ needs one given.
fn client_id(args: &ConnectArgs, program: &str) -> anyhow::Result<String> {
    Ok(match (&args.id, &args.id_prefix) {
        (Some(id), _) => id.clone(),
        (None, Some(prefix)) => format!("{prefix}{}", std::process::id()),
        (None, None) if args.apsaramq_instance.is_some() => bail!(
            "ApsaraMQ needs a client id <GroupID>@@@<DeviceID>: give -i GID_group@@@device, or \
             -I GID_group@@@device- to append the process id"
        ),
        (None, None) => format!(
            "sansmq-{program}-{}-{:04x}",
            std::process::id(),
            RandomState::new().hash_one(0u8) & 0xffff
        ),
    })
}

fn seconds_of(seconds: u16) -> Duration {
    Duration::from_secs(seconds.into())
}

/// Signature from MQTT_AK_ENV / MQTT_SK_ENV, or Token mode with `--token`.
fn apsaramq_auth(instance: &str, args: &ConnectArgs) -> anyhow::Result<AuthMode> {
    if args.tokens.is_empty() {
        let key = AccessKey::from_env()?;
        return Ok(AuthMode::signature(key, instance));
    }
    let variable = sansmq_apsaramq::credentials::ACCESS_KEY_ID_ENV;
    let id = std::env::var(variable)
        .ok()
        .filter(|id| !id.is_empty())
        .with_context(|| format!("Token login needs the AccessKey id in {variable}"))?;
    Ok(AuthMode::token(id, instance, args.tokens.clone()))
}

/// The checks ApsaraMQ would otherwise answer by closing the connection.
pub(crate) fn check_apsaramq_qos(setup: &Setup, qos: QoS) -> anyhow::Result<()> {
    if setup.apsaramq {
        sansmq_apsaramq::check_qos(qos, setup.clean_session)?;
    }
    Ok(())
}

/// Sends DISCONNECT with `-D disconnect`'s properties, if any, waiting up to `drain` for the
/// acknowledgements still due.
pub(crate) fn disconnect(
    client: &Client,
    setup: &Setup,
    drain: Duration,
) -> Result<(), sansmq_mio::Error> {
    let properties = &setup.properties.disconnect;
    if properties.is_empty() {
        client.disconnect(drain)
    } else {
        let packet = sansmq::packet::Disconnect::new().with_properties(properties.clone());
        client.disconnect_with(drain, packet)
    }
}

/// Connects, explaining a failure.
pub(crate) fn connect(client: &Client, setup: &Setup) -> anyhow::Result<()> {
    tracing::debug!(client_id = %setup.client_id, uri = %setup.uri, "sending CONNECT");
    match client.connect() {
        Ok(session_present) => {
            tracing::debug!(session_present, "received CONNACK");
            Ok(())
        }
        Err(error) => Err(explain_connect_error(error, setup)),
    }
}

/// Connects as [`connect`] does, but gives up at `deadline` (`sub -W`) or when `stop` is set
/// (SIGINT, SIGTERM) with exit code 255, as mosquitto_sub does: its alarm or a signal before
/// CONNACK ends it with `exit(-1)`.
pub(crate) fn connect_until(
    client: &Client,
    setup: &Setup,
    deadline: Option<Instant>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    tracing::debug!(client_id = %setup.client_id, uri = %setup.uri, "sending CONNECT");
    let (tx, rx) = mpsc::channel();
    let connecting = client.clone();
    thread::spawn(move || {
        let _ = tx.send(connecting.connect());
    });
    loop {
        match rx.recv_timeout(CONNECT_POLL) {
            Ok(Ok(session_present)) => {
                tracing::debug!(session_present, "received CONNACK");
                return Ok(());
            }
            Ok(Err(error)) => return Err(explain_connect_error(error, setup)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                bail!("connecting to {}: the connecting thread ended", setup.uri)
            }
        }
        let why = if stop.load(Ordering::Relaxed) {
            "stopped by a signal".to_owned()
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            "timed out (-W)".to_owned()
        } else {
            continue;
        };
        client.close();
        return Err(Failure::error(
            NOT_CONNECTED,
            format!(
                "connecting to {}: {why} before the broker answered CONNECT; is a broker \
                 listening there? (`sansmq broker` starts one)",
                setup.uri
            ),
        ));
    }
}

fn explain_connect_error(error: sansmq_mio::Error, setup: &Setup) -> anyhow::Error {
    use sansmq_mio::Error as E;
    let hint = match &error {
        E::Refused(ConnectReturnCode::BadUserNameOrPassword | ConnectReturnCode::NotAuthorized)
            if setup.apsaramq =>
        {
            "check MQTT_AK_ENV / MQTT_SK_ENV (or --token), the instance id and the client id's group"
        }
        E::Refused(ConnectReturnCode::BadUserNameOrPassword | ConnectReturnCode::NotAuthorized) => {
            "check the user name and password (-u, -P)"
        }
        E::Refused(ConnectReturnCode::IdentifierRejected) => "try another client id (-i)",
        E::Refused(ConnectReturnCode::UnacceptableProtocolVersion) => "try -V mqttv31",
        E::Refused(_) => "try again later",
        E::Proxy {
            error: Socks5Error::LoginRefused { .. } | Socks5Error::NoAcceptableMethod { .. },
            ..
        } => "check the user name and password in --proxy socks5h://user:password@host:port",
        E::Proxy { .. } => "check --proxy, and that the proxy can reach the broker",
        E::HttpProxy {
            error: HttpConnectError::LoginRequired | HttpConnectError::LoginRefused { .. },
            ..
        } => "check the user name and password in --proxy http://user:password@host:port",
        E::HttpProxy { .. } => "check --proxy, and that the proxy can reach the broker",
        E::Io { reason, .. } if reason.contains("binding to ") => {
            "-A must be an address of this machine"
        }
        E::Io { context, .. }
            if context.contains("SOCKS5 proxy") || context.contains("HTTP proxy") =>
        {
            "is the proxy running there? check --proxy"
        }
        E::Io { .. } if setup.uri.starts_with("unix://") => {
            "is a broker listening on that socket? check --unix"
        }
        E::Io { .. } => "is a broker listening there? (`sansmq broker` starts one)",
        E::Dns { .. } => "check the host name (-h)",
        E::ClientKey { .. } => "check --key (and --keypass for an encrypted key)",
        E::Tls(_) => {
            "check --cafile (the CA that signed the broker's certificate) and that -h is a name \
             the certificate holds"
        }
        E::Timeout(_) => "no CONNACK came back; check the host and port",
        E::WebSocket {
            error: WebSocketError::Refused { .. },
            ..
        } => "check the WebSocket path (--ws-path, or the path of -L ws://host/path/topic)",
        E::WebSocket { .. } => "is the port a WebSocket endpoint that serves MQTT?",
        _ => "-d shows more",
    };
    // A TLS connection cut before CONNACK was cut in its handshake: a plain listener, say.
    let handshake_cut = setup.options.uses_tls()
        && matches!(&error, E::Io { context, .. }
            if context == "reading from the broker" || context == "writing to the broker");
    let hint = match handshake_cut {
        true => "the connection ended during the TLS handshake: is the port a TLS listener?",
        false => hint,
    };
    // A plain connection the broker closed before CONNACK (a TLS listener does, say).
    let closed = !setup.options.uses_tls()
        && matches!(
            &error,
            E::ConnectionLost(DisconnectReason::TransportClosed) | E::ClosedByBroker(_)
        )
        || !setup.options.uses_tls()
            && matches!(&error, E::Io { context, .. }
                if context == "reading from the broker" || context == "writing to the broker");
    let hint = match closed {
        true => {
            "the broker closed the connection before answering CONNECT: is the port a \
                 TLS listener (give --cafile)?"
        }
        false => hint,
    };
    // mosquitto exits with the CONNACK return code when the broker refuses, with its error
    // number otherwise: 8 (MOSQ_ERR_TLS) when TLS fails, 7 (MOSQ_ERR_CONN_LOST) for a connection
    // closed before CONNACK, 19 (MOSQ_ERR_KEEPALIVE) when no CONNACK comes in time, the SOCKS
    // one for a proxy's refusal; else 1.
    let code = match &error {
        E::Refused(code) => *code as u8,
        E::Tls(_) => TLS_FAILED,
        _ if handshake_cut => TLS_FAILED,
        _ if closed => CONNECTION_LOST,
        E::Timeout(_) => NO_CONNACK,
        E::Proxy { error, .. } => proxy_exit_code(error),
        E::HttpProxy { error, .. } => http_proxy_exit_code(error),
        _ => 1,
    };
    let what = error.to_string();
    // A WebSocket error names the URI itself.
    let what = if what.starts_with("connecting to") || matches!(&error, E::WebSocket { .. }) {
        what
    } else {
        format!("connecting to {}: {what}", setup.uri)
    };
    Failure::error(code, format!("{what}; {hint}"))
}

/// The exit code mosquitto_pub/sub 2.0 give for a SOCKS5 failure: the libmosquitto error number
/// (`MOSQ_ERR_AUTH` 11, `MOSQ_ERR_NO_CONN` 4, `MOSQ_ERR_PROXY` 16...). mosquitto reads a refused
/// login's status as if it were a CONNECT reply code, so the same table serves both.
fn proxy_exit_code(error: &Socks5Error) -> u8 {
    const INVAL: u8 = 3;
    const PROTOCOL: u8 = 2;
    const AUTH: u8 = 11;
    const PROXY: u8 = 16;
    let by_reply_code = |byte: u8| match byte {
        0x02 => AUTH,
        0x03..=0x05 => 4, // MOSQ_ERR_NO_CONN
        0x01 | 0x06..=0x08 => PROXY,
        _ => INVAL,
    };
    match error {
        Socks5Error::NoAcceptableMethod { .. } | Socks5Error::UnexpectedMethod { .. } => AUTH,
        Socks5Error::LoginRefused { status, .. } => by_reply_code(*status),
        Socks5Error::ConnectFailed { code, .. } => by_reply_code(code.byte()),
        Socks5Error::BadAddressType { .. } => PROTOCOL,
        Socks5Error::HostTooLong { .. } | Socks5Error::LoginTooLong { .. } => INVAL,
        _ => PROXY,
    }
}

/// The exit code for an HTTP proxy's refusal (mosquitto has no HTTP proxy): the libmosquitto
/// error numbers of the SOCKS5 refusals that mean the same, `MOSQ_ERR_AUTH` 11 for a login,
/// `MOSQ_ERR_NO_CONN` 4 for a broker the proxy cannot reach, `MOSQ_ERR_PROXY` 16 otherwise.
fn http_proxy_exit_code(error: &HttpConnectError) -> u8 {
    match error {
        HttpConnectError::LoginRequired | HttpConnectError::LoginRefused { .. } => 11,
        HttpConnectError::Unreachable { .. } => 4,
        _ => 16,
    }
}

/// `mqtt(s)://[user[:password]@]host[:port]/topic`. Errors show the URL with its password
/// replaced by `***`, and never quote a part of it that could hold the password.
fn parse_url(url: &str) -> anyhow::Result<Url> {
    let invalid = |why: &str| anyhow::anyhow!("-L {:?}: {why}", sansmq_mio::redact_uri(url));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| {
            invalid("expected mqtt://host[:port]/topic or mqtts://..., a login user:password@ before the host")
        })?;
    let (tls, websocket) = match scheme {
        "mqtt" => (false, false),
        "mqtts" => (true, false),
        "ws" => (false, true),
        "wss" => (true, true),
        _ => {
            return Err(invalid(
                "the scheme must be mqtt://, mqtts://, ws:// or wss://",
            ));
        }
    };
    let (login, rest) = sansmq_mio::split_login(rest);
    let (address, topic) = match rest.split_once('/') {
        Some((address, topic)) => (address, Some(topic)),
        None => (rest, None),
    };
    let (username, password) = match login {
        Some(login) => match login.split_once(':') {
            Some((user, password)) => (Some(user.to_owned()), Some(password.to_owned())),
            None => (Some(login.to_owned()), None),
        },
        None => (None, None),
    };
    let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid("unclosed '[' in the IPv6 address"))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| invalid("expected ':port' after the IPv6 address"))?,
                ),
            ),
        }
    } else {
        match address.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(invalid(
                    "more than one ':' after the host (write an IPv6 address in brackets)",
                ));
            }
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("the host is empty"));
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| invalid("the port must be a number from 1 to 65535"))
        })
        .transpose()?;
    Ok(Url {
        tls,
        websocket,
        username,
        password,
        host: host.to_owned(),
        port,
        topic: topic.filter(|t| !t.is_empty()).map(str::to_owned),
    })
}

/// Takes the WebSocket path `ws_path` off the front of a `ws(s)://` URL's path: the rest is the
/// topic (`/mqtt/a/b` with `/mqtt`: topic `a/b`; `/mqtt` alone: no topic). A path that does not
/// begin with it is refused, naming both.
fn split_websocket_path(url: &mut Url, ws_path: &str, given: &str) -> anyhow::Result<()> {
    let path = format!("/{}", url.topic.take().unwrap_or_default());
    let prefix = ws_path.trim_end_matches('/');
    let rest = match path.strip_prefix(prefix) {
        Some(rest) if rest.is_empty() || rest == "/" => "",
        Some(rest) if rest.starts_with('/') => &rest[1..],
        _ => {
            bail!(
                "-L {:?}: the path must begin with the WebSocket path {ws_path:?} (--ws-path), \
                 the topic after it: ws://host:port{prefix}/topic",
                sansmq_mio::redact_uri(given)
            )
        }
    };
    url.topic = Some(rest.to_owned()).filter(|t| !t.is_empty());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_holds_login_host_port_and_topic() {
        let url = parse_url("mqtts://alice:s3:cret@broker.example:8884/a/b/#").unwrap();
        assert_eq!(
            url,
            Url {
                tls: true,
                websocket: false,
                username: Some("alice".into()),
                password: Some("s3:cret".into()),
                host: "broker.example".into(),
                port: Some(8884),
                topic: Some("a/b/#".into()),
            }
        );
    }

    /// The server URI that these connection flags make.
    fn uri_of(flags: &[&str]) -> String {
        use clap::Parser as _;
        #[derive(Debug, clap::Parser)]
        #[command(disable_help_flag = true, disable_version_flag = true, version)]
        struct Flags {
            #[command(flatten)]
            connect: ConnectArgs,
        }
        let flags = Flags::try_parse_from(std::iter::once("pub").chain(flags.iter().copied()));
        server_uri(&flags.unwrap().connect, None, None).0
    }

    #[test]
    fn ws_takes_port_80_or_443_with_tls_and_the_ws_path() {
        assert_eq!(uri_of(&["--ws"]), "ws://localhost:80/mqtt");
        assert_eq!(
            uri_of(&["--ws", "--cafile", "ca.pem"]),
            "wss://localhost:443/mqtt"
        );
        assert_eq!(uri_of(&["--ws", "-p", "443"]), "wss://localhost:443/mqtt");
        assert_eq!(
            uri_of(&["--ws", "-h", "::1", "-p", "8080", "--ws-path", "/x"]),
            "ws://[::1]:8080/x"
        );
        assert_eq!(
            uri_of(&["-p", "8080", "--ws-path", "/x"]),
            "tcp://localhost:8080"
        );
    }

    #[test]
    fn a_websocket_url_is_the_websocket_path_then_the_topic() {
        let topic_of = |given: &str, ws_path: &str| {
            let mut url = parse_url(given).unwrap();
            assert!(url.websocket);
            split_websocket_path(&mut url, ws_path, given).map(|()| url.topic)
        };
        assert_eq!(
            topic_of("ws://h:8080/mqtt/a/b", "/mqtt")
                .unwrap()
                .as_deref(),
            Some("a/b")
        );
        assert_eq!(topic_of("wss://h/mqtt", "/mqtt").unwrap(), None);
        assert_eq!(topic_of("ws://h/mqtt/", "/mqtt").unwrap(), None);
        assert_eq!(
            topic_of("ws://h/gw/mqtt/t", "/gw/mqtt").unwrap().as_deref(),
            Some("t")
        );
        assert_eq!(topic_of("ws://h/t/#", "/").unwrap().as_deref(), Some("t/#"));
        let error = topic_of("ws://u:S3CRET@h/mqttx/t", "/mqtt")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("\"/mqtt\"") && error.contains("--ws-path"),
            "{error}"
        );
        assert!(!error.contains("S3CRET"), "{error}");
    }

    #[test]
    fn url_parts_are_optional() {
        let url = parse_url("mqtt://[::1]").unwrap();
        assert_eq!(url.host, "::1");
        assert_eq!(
            (url.tls, url.port, url.topic, url.username),
            (false, None, None, None)
        );
        assert_eq!(
            parse_url("mqtt://bob@h/").unwrap().username.as_deref(),
            Some("bob")
        );
    }

    #[test]
    fn url_errors_never_show_the_password() {
        for url in [
            "mqtt://user:S3CRET@host:99999/t",
            "http://user:S3CRET@host/t",
            "mqtt://user:S3CRET@host:1:2/t",
            "mqtt://user:S3CRET@/t",
            "mqtt://user:S3/CRET@host:0/t",
            "mqtt://user:S3CRET@[::1/t",
            "mqtts://user:S3?CRET@[::1]x/t",
            "user:S3CRET@host/t",
        ] {
            let error = format!("{:#}", parse_url(url).unwrap_err());
            assert!(!error.contains("S3"), "{url}: {error}");
            assert!(error.contains("user:***@"), "{url}: {error}");
        }
    }

    #[test]
    fn a_password_may_hold_url_delimiters() {
        let url = parse_url("mqtt://user:p/a?s#s@host:1884/t/#").unwrap();
        assert_eq!(url.password.as_deref(), Some("p/a?s#s"));
        assert_eq!((url.host.as_str(), url.port), ("host", Some(1884)));
        assert_eq!(url.topic.as_deref(), Some("t/#"));
        let url = parse_url("mqtt://host:1883/p2p/GID_a@@@dev").unwrap();
        assert_eq!(
            (url.username, url.topic.as_deref()),
            (None, Some("p2p/GID_a@@@dev"))
        );
    }

    #[test]
    fn url_errors_name_the_url_and_the_problem() {
        let error = parse_url("http://h/t").unwrap_err().to_string();
        assert!(
            error.contains("http://h/t") && error.contains("mqtt://"),
            "{error}"
        );
        assert!(
            parse_url("mqtt://h:99999/t")
                .unwrap_err()
                .to_string()
                .contains("mqtt://h:99999/t")
        );
        assert!(
            parse_url("mqtt:///t")
                .unwrap_err()
                .to_string()
                .contains("host is empty")
        );
    }
}
