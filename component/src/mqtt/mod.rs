//! What the `mqtt` inlet and outlet share, kept once: the connection
//! options, and a [`Session`]: one broker connection driven by a task of
//! its own, which reconnects after a drop, counts what was sent and
//! acknowledged, queues what arrives, and renews subscriptions.
//!
//! MQTT 3.1.1 over TCP, or over TLS on rustls with ring (the daemon's one
//! TLS stack) when a `tls` table is given: the broker is checked against
//! the system's roots plus `tls.ca_file`; `tls.cert_file`/`tls.key_file`
//! add a client certificate.
//!
//! ```
//! use databay_component::mqtt::ConnectionOptions;
//! use databay_component::Secret;
//!
//! let options = ConnectionOptions {
//!     host: Some("broker.internal".into()),
//!     username: Some("app".into()),
//!     password: Some(Secret::new("hunter2".into())),
//!     ..ConnectionOptions::default()
//! };
//! let connector = options.connector("databay-orders").unwrap();
//! assert_eq!(connector.target(), "broker.internal:1883");
//! assert!(!format!("{connector:?}").contains("hunter2"));
//! ```

pub mod testing;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, Publish, QoS, TlsConfiguration,
    Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use crate::broker::TlsOptions;
use crate::{OptionError, Secret};

/// How long connecting, and waiting for acknowledgements, may take when
/// `timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the session waits before connecting again after a failure.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// The connection options every MQTT component takes.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    /// Broker host (default `127.0.0.1`).
    pub host: Option<String>,
    /// Broker port (default 1883, 8883 with TLS).
    pub port: Option<u16>,
    /// The client ID; the broker keeps one session per ID.
    pub client_id: Option<String>,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret<String>>,
    /// Whether the broker forgets the session on disconnect.
    pub clean_session: Option<bool>,
    /// Keep-alive interval (default 30 s).
    pub keep_alive: Option<Duration>,
    /// TLS settings; present means TLS is required.
    pub tls: Option<TlsOptions>,
    /// How long connecting, and each wait for acknowledgements, may take
    /// (default 10 s).
    pub timeout: Option<Duration>,
}

impl ConnectionOptions {
    /// Checks the options and prepares a [`Connector`]; `client_id` is the
    /// ID used when the options give none. Every error names the option.
    pub fn connector(self, client_id: &str) -> Result<Connector, OptionError> {
        let host = self.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        if host.is_empty() {
            return Err(OptionError::new("host", "must not be empty"));
        }
        let port = self
            .port
            .unwrap_or(if self.tls.is_some() { 8883 } else { 1883 });
        if port == 0 {
            return Err(OptionError::new("port", "must not be 0"));
        }
        let client_id = self
            .client_id
            .clone()
            .unwrap_or_else(|| client_id.to_owned());
        if client_id.is_empty() || client_id.len() > 65_535 {
            return Err(OptionError::new("client_id", "must be 1 to 65535 bytes"));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(OptionError::new("password", "needs `username`"));
        }
        let keep_alive = self.keep_alive.unwrap_or(Duration::from_secs(30));
        if keep_alive < Duration::from_secs(1) {
            return Err(OptionError::new("keep_alive", "must be at least 1s"));
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout < Duration::from_secs(1) {
            return Err(OptionError::new("timeout", "must be at least 1s"));
        }
        let mut options = MqttOptions::new(client_id.clone(), host.clone(), port);
        options
            .set_keep_alive(keep_alive)
            .set_clean_session(self.clean_session.unwrap_or(true))
            .set_request_channel_capacity(1024);
        if let Some(tls) = &self.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(tls_config(tls)?),
            )));
        }
        if let Some(user) = &self.username {
            let password = self
                .password
                .as_ref()
                .map(|p| p.expose().clone())
                .unwrap_or_default();
            options.set_credentials(user.clone(), password);
        }
        Ok(Connector {
            options,
            target: format!("{host}:{port}"),
            client_id,
            timeout,
            password: self.password.map(Secret::into_inner),
        })
    }
}

/// A rustls client configuration (ring) trusting the system's roots and
/// `ca_file`, with the client certificate when given.
fn tls_config(tls: &TlsOptions) -> Result<rustls::ClientConfig, OptionError> {
    tls.check()?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = &tls.ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect())
            .map_err(|e| OptionError::new("tls.ca_file", format!("`{}`: {e}", path.display())))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(OptionError::new(
                "tls.ca_file",
                format!("`{}` holds no PEM certificate", path.display()),
            ));
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| OptionError::new("tls", e))?
    .with_root_certificates(roots);
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect())
                .map_err(|e| {
                    OptionError::new("tls.cert_file", format!("`{}`: {e}", cert.display()))
                })?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                OptionError::new("tls.key_file", format!("`{}`: {e}", key.display()))
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| OptionError::new("tls.cert_file", e))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Connects to one MQTT broker; cheap to clone.
#[derive(Clone)]
pub struct Connector {
    options: MqttOptions,
    target: String,
    client_id: String,
    timeout: Duration,
    password: Option<String>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.target)
            .field("client_id", &self.client_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why a session failed. Each names the broker, never the password.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MqttError {
    /// The broker could not be reached, or refused the connection.
    #[error("cannot connect to MQTT broker at {target} as client `{client_id}`: {message}")]
    Connect {
        /// `host:port`.
        target: String,
        /// The client ID.
        client_id: String,
        /// The client's error.
        message: String,
    },
    /// Publishing, subscribing or acknowledging failed.
    #[error("MQTT broker at {target}: {what}: {message}")]
    Operation {
        /// `host:port`.
        target: String,
        /// What was being done.
        what: String,
        /// The client's error.
        message: String,
    },
}

/// What arrives for a subscriber: a message, the number of its connection
/// (a message can only be acknowledged on the connection that brought it)
/// and its number since the session began.
#[derive(Debug, Clone)]
pub struct Arrived {
    /// The message.
    pub publish: Publish,
    /// The connection it came on.
    pub connection: u64,
    /// 1 for the first message of the session.
    pub number: u64,
}

/// The state the session's task keeps.
#[derive(Debug, Default)]
struct State {
    connected: bool,
    /// Connections made (1 after the first ConnAck).
    connections: u64,
    /// Failures seen, and the latest.
    failures: u64,
    last_error: Option<String>,
    /// Publishes written to the broker, and QoS 1 acknowledgements received.
    sent: u64,
    acked: u64,
    /// Subscription answers received (`SubAck`), and how many of them
    /// refused a filter.
    subacked: u64,
    sub_refused: u64,
    /// Messages received and not taken yet.
    inbox: VecDeque<Arrived>,
    received: u64,
    /// QoS 0 messages dropped because the inbox was full.
    dropped: u64,
    /// Subscriptions to renew after a reconnect without a session.
    subscriptions: Vec<(String, QoS)>,
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
    /// The most QoS 0 messages the inbox holds.
    inbox_limit: usize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One broker connection, driven by a task; dropping the session stops it.
pub struct Session {
    client: AsyncClient,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    connector: Connector,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Connector {
    /// The broker as errors name it: `host:port`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The client ID.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The connect and acknowledgement timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn scrub(&self, text: String) -> String {
        match &self.password {
            Some(p) if !p.is_empty() => text.replace(p.as_str(), "***"),
            _ => text,
        }
    }

    /// An [`MqttError::Operation`] about this broker.
    pub fn error(&self, what: impl Into<String>, message: impl fmt::Display) -> MqttError {
        MqttError::Operation {
            target: self.target.clone(),
            what: what.into(),
            message: self.scrub(message.to_string()),
        }
    }

    /// Connects, waiting for the broker's answer (`ConnAck`) within the
    /// timeout. `manual_acks`: QoS 1 messages received are acknowledged
    /// only by [`Session::ack`]. At most `inbox_limit` QoS 0 messages wait
    /// in the inbox; QoS 1 messages always do (the broker's in-flight
    /// window bounds them).
    pub async fn connect(
        &self,
        manual_acks: bool,
        inbox_limit: usize,
    ) -> Result<Session, MqttError> {
        let mut options = self.options.clone();
        options.set_manual_acks(manual_acks);
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        eventloop
            .network_options
            .set_connection_timeout(self.timeout.as_secs().max(1));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            inbox_limit,
        });
        let task = tokio::spawn(drive(eventloop, client.clone(), shared.clone()));
        let session = Session {
            client,
            shared,
            task,
            connector: self.clone(),
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let shared = session.shared.clone();
        loop {
            let notified = shared.changed.notified();
            {
                let state = shared.state();
                if state.connected {
                    drop(state);
                    return Ok(session);
                }
                if let Some(e) = &state.last_error {
                    return Err(MqttError::Connect {
                        target: self.target.clone(),
                        client_id: self.client_id.clone(),
                        message: self.scrub(e.clone()),
                    });
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(MqttError::Connect {
                    target: self.target.clone(),
                    client_id: self.client_id.clone(),
                    message: format!(
                        "no answer within {}",
                        humantime::format_duration(self.timeout)
                    ),
                });
            }
        }
    }
}

/// Polls the event loop for as long as the session lives.
async fn drive(mut eventloop: EventLoop, client: AsyncClient, shared: Arc<Shared>) {
    loop {
        let event = eventloop.poll().await;
        let failed = event.is_err();
        if !handle(event, &client, &shared) {
            continue;
        }
        shared.changed.notify_waiters();
        if failed {
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    }
}

/// Applies one event to the state; whether anything changed.
fn handle(
    event: Result<Event, rumqttc::ConnectionError>,
    client: &AsyncClient,
    shared: &Shared,
) -> bool {
    {
        let mut state = shared.state();
        match event {
            Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                state.connected = true;
                state.connections += 1;
                state.last_error = None;
                let connection = state.connections;
                if ack.session_present {
                    // The broker sends unacknowledged QoS 1 messages again;
                    // the copies waiting here could not be acknowledged on
                    // this connection anyway.
                    state
                        .inbox
                        .retain(|a| a.publish.qos == QoS::AtMostOnce || a.connection == connection);
                } else {
                    for (topic, qos) in &state.subscriptions {
                        let _ = client.try_subscribe(topic.clone(), *qos);
                    }
                }
            }
            Ok(Event::Incoming(Incoming::Publish(publish))) => {
                state.received += 1;
                let arrived = Arrived {
                    publish,
                    connection: state.connections,
                    number: state.received,
                };
                if arrived.publish.qos == QoS::AtMostOnce && state.inbox.len() >= shared.inbox_limit
                {
                    state.dropped += 1;
                } else {
                    state.inbox.push_back(arrived);
                }
            }
            Ok(Event::Incoming(Incoming::PubAck(_))) => state.acked += 1,
            Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                state.subacked += 1;
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    state.sub_refused += 1;
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(_))) => state.sent += 1,
            Ok(_) => return false,
            Err(e) => {
                state.connected = false;
                state.failures += 1;
                state.last_error = Some(describe(&e));
            }
        }
    }
    true
}

/// A connection error as the user can act on it: the broker's refusal
/// in words (rumqttc shows only the return code's name).
fn describe(error: &rumqttc::ConnectionError) -> String {
    use rumqttc::ConnectReturnCode as Code;
    match error {
        rumqttc::ConnectionError::ConnectionRefused(code) => match code {
            Code::BadUserNamePassword | Code::NotAuthorized => {
                "the broker refused the login (wrong user name or password, or not allowed)".into()
            }
            Code::BadClientId => "the broker refused the client ID".into(),
            Code::ServiceUnavailable => "the broker refused: service unavailable".into(),
            Code::RefusedProtocolVersion => "the broker refused MQTT 3.1.1".into(),
            Code::Success => error.to_string(),
        },
        other => other.to_string(),
    }
}

impl Session {
    /// The connector this session came from.
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Subscribes to `filter`, renewed after a reconnect that lost the
    /// session; waits until the broker has confirmed it (`SubAck`), so
    /// that what is published afterwards is for this session. A filter
    /// the broker refuses (not allowed for this login) is an error.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<(), MqttError> {
        let what = || format!("subscribing to `{filter}`");
        let (subacked, refused, failures) = {
            let mut s = self.shared.state();
            s.subscriptions.push((filter.to_owned(), qos));
            (s.subacked, s.sub_refused, s.failures)
        };
        self.client
            .subscribe(filter, qos)
            .await
            .map_err(|e| self.connector.error(what(), e))?;
        let deadline = tokio::time::Instant::now() + self.connector.timeout;
        loop {
            let notified = self.shared.changed.notified();
            {
                let s = self.shared.state();
                if s.sub_refused > refused {
                    return Err(self
                        .connector
                        .error(what(), "the broker refused the subscription (not allowed?)"));
                }
                if s.subacked > subacked {
                    return Ok(());
                }
                if s.failures > failures {
                    return Err(self.connector.error(
                        what(),
                        s.last_error.as_deref().unwrap_or("the connection failed"),
                    ));
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(self.connector.error(
                    what(),
                    format!(
                        "no answer within {}",
                        humantime::format_duration(self.connector.timeout)
                    ),
                ));
            }
        }
    }

    /// Publishes every `(topic, payload)` at `qos` (retained when
    /// `retain`) and waits until the broker has them: written to it
    /// (QoS 0), or acknowledged (QoS 1).
    pub async fn publish(
        &self,
        messages: Vec<(String, Vec<u8>)>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), MqttError> {
        let n = messages.len() as u64;
        let (sent, acked, failures) = {
            let s = self.shared.state();
            (s.sent, s.acked, s.failures)
        };
        for (topic, payload) in messages {
            self.client
                .publish(topic.clone(), qos, retain, payload)
                .await
                .map_err(|e| self.connector.error(format!("publishing to `{topic}`"), e))?;
        }
        let deadline = tokio::time::Instant::now() + self.connector.timeout;
        loop {
            let notified = self.shared.changed.notified();
            {
                let s = self.shared.state();
                let done = match qos {
                    QoS::AtMostOnce => s.sent >= sent + n,
                    _ => s.acked >= acked + n,
                };
                if done {
                    return Ok(());
                }
                if s.failures > failures {
                    return Err(self.connector.error(
                        format!("publishing {n} messages"),
                        s.last_error.as_deref().unwrap_or("the connection failed"),
                    ));
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let s = self.shared.state();
                let what = match qos {
                    QoS::AtMostOnce => format!("{} of {n} messages sent", s.sent - sent),
                    _ => format!("{} of {n} messages acknowledged", s.acked - acked),
                };
                return Err(self.connector.error(
                    format!("publishing {n} messages"),
                    format!(
                        "only {what} within {}",
                        humantime::format_duration(self.connector.timeout)
                    ),
                ));
            }
        }
    }

    /// Takes up to `n` waiting messages.
    pub fn take(&self, n: usize) -> Vec<Arrived> {
        let mut s = self.shared.state();
        let n = n.min(s.inbox.len());
        s.inbox.drain(..n).collect()
    }

    /// Puts taken messages back in front, in their order.
    pub fn put_back(&self, messages: Vec<Arrived>) {
        let mut s = self.shared.state();
        for m in messages.into_iter().rev() {
            s.inbox.push_front(m);
        }
    }

    /// QoS 0 messages dropped so far because the inbox was full.
    pub fn dropped(&self) -> u64 {
        self.shared.state().dropped
    }

    /// Acknowledges a QoS 1 message (`PUBACK`). One that came on an
    /// earlier connection is skipped: the broker sends it again.
    pub async fn ack(&self, arrived: &Arrived) -> Result<(), MqttError> {
        if arrived.publish.qos == QoS::AtMostOnce
            || arrived.connection != self.shared.state().connections
        {
            return Ok(());
        }
        self.client
            .ack(&arrived.publish)
            .await
            .map_err(|e| self.connector.error("acknowledging", e))
    }

    /// Disconnects politely (what is unacknowledged stays with the broker
    /// for a persistent session).
    pub async fn disconnect(&self) {
        let _ = self.client.disconnect().await;
    }
}

/// `0` or `1` as a QoS; the error is for an [`OptionError`] about `qos`.
pub fn qos(level: u8) -> Result<QoS, OptionError> {
    match level {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Err(OptionError::new(
            "qos",
            "2 (exactly once) is not supported; use 1, at least once",
        )),
        n => Err(OptionError::new(
            "qos",
            format!("{n} is not an MQTT QoS (0 or 1)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One MQTT packet from `socket`: its first byte and its body.
    async fn packet(socket: &mut tokio::net::TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;
        let kind = socket.read_u8().await?;
        let (mut length, mut shift) = (0usize, 0);
        loop {
            let byte = socket.read_u8().await?;
            length |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0; length];
        socket.read_exact(&mut body).await?;
        Ok((kind, body))
    }

    /// A broker that takes the login and refuses every subscription (as
    /// one with an ACL that checks them does, return code 0x80): the
    /// subscription fails naming the filter and the broker, instead of a
    /// session that waits for messages that never come.
    #[tokio::test]
    async fn a_subscription_the_broker_refuses_is_an_error_naming_the_filter() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let broker = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let (kind, _) = packet(&mut socket).await.unwrap();
            assert_eq!(kind, 0x10, "CONNECT first");
            socket.write_all(&[0x20, 2, 0, 0]).await.unwrap();
            loop {
                let Ok((kind, body)) = packet(&mut socket).await else {
                    return;
                };
                if kind == 0x82 {
                    // SUBACK: the same packet id, return code 0x80.
                    socket
                        .write_all(&[0x90, 3, body[0], body[1], 0x80])
                        .await
                        .unwrap();
                }
            }
        });
        let session = ConnectionOptions {
            port: Some(port),
            timeout: Some(Duration::from_secs(5)),
            ..ConnectionOptions::default()
        }
        .connector("databay-test-refused-sub")
        .unwrap()
        .connect(false, 10)
        .await
        .unwrap();
        let e = session
            .subscribe("forbidden/#", QoS::AtLeastOnce)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "MQTT broker at 127.0.0.1:{port}: subscribing to `forbidden/#`: \
                 the broker refused the subscription (not allowed?)"
            )
        );
        drop(session);
        broker.abort();
    }

    #[test]
    fn options_name_the_broker_and_check_their_values() {
        let c = ConnectionOptions::default().connector("id").unwrap();
        assert_eq!(c.target(), "127.0.0.1:1883");
        assert_eq!(c.client_id(), "id");
        for (options, option) in [
            (
                ConnectionOptions {
                    password: Some(Secret::new("pw".into())),
                    ..ConnectionOptions::default()
                },
                "password",
            ),
            (
                ConnectionOptions {
                    client_id: Some(String::new()),
                    ..ConnectionOptions::default()
                },
                "client_id",
            ),
            (
                ConnectionOptions {
                    timeout: Some(Duration::from_millis(10)),
                    ..ConnectionOptions::default()
                },
                "timeout",
            ),
        ] {
            assert_eq!(options.connector("id").unwrap_err().option, option);
        }
        assert_eq!(qos(2).unwrap_err().option, "qos");
        let c = ConnectionOptions {
            tls: Some(TlsOptions::default()),
            ..ConnectionOptions::default()
        }
        .connector("id")
        .unwrap();
        assert_eq!(c.target(), "127.0.0.1:8883", "TLS has its own default port");
    }
}
