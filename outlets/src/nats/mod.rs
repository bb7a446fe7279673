//! [`NatsOutlet`]: publishes each record as one NATS message, on core
//! NATS (flushed to the server before the push returns) or on JetStream
//! (every message's acknowledgement awaited), the subject fixed or filled
//! from the record.
//!
#![doc = include_str!("README.md")]

use async_nats::Client;
use async_nats::jetstream;
use databay_component::OptionError;
use databay_component::broker::{Format, Template};
use databay_component::nats::{Connector, NatsError};
use databay_core::{BoxError, Outlet, Record, Update, async_trait};

/// A documented config table for this outlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::NatsOutletOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// How the outlet publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NatsPublish {
    /// Core NATS: to the subscribers connected now; nothing is stored.
    Core,
    /// JetStream: stored by the stream that captures the subject, each
    /// message acknowledged by the server.
    JetStream,
}

/// Why a [`NatsOutlet`] could not push.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsOutletError {
    /// Connecting, publishing or an acknowledgement failed.
    #[error(transparent)]
    Nats(#[from] NatsError),
    /// A record's subject cannot be filled from it, or is no valid
    /// subject; nothing of this push was published.
    #[error("record {index}: subject {message}; nothing of this push was published")]
    BadRecord {
        /// Index of the record in the pushed batch, from 0.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

/// A core flush that did not come back in time.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {timeout:?} (connection {state})")]
struct NoAnswer {
    timeout: std::time::Duration,
    state: async_nats::connection::State,
}

/// Publishes records to NATS, one message per record.
///
/// Subjects are rendered for the whole batch first (a bad one fails the
/// push before anything is sent). Core NATS: the messages are published
/// and the connection flushed, so `Ok` means the server has them; it
/// keeps nothing for absent subscribers. JetStream: every message is
/// published, then every acknowledgement awaited, so `Ok` means the
/// stream stored them all; a failed push may have stored part of the
/// batch, which the link's retry publishes again (at-least-once).
pub struct NatsOutlet {
    connector: Connector,
    mode: NatsPublish,
    subject: Template,
    format: Format,
    client: Option<Client>,
}

impl std::fmt::Debug for NatsOutlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsOutlet")
            .field("connector", &self.connector)
            .field("mode", &self.mode)
            .field("subject", &self.subject.source())
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Why `subject` cannot be published to, if it cannot.
pub(crate) fn subject_problem(subject: &str) -> Option<String> {
    if subject.is_empty() {
        return Some("is empty".into());
    }
    if subject.contains(char::is_whitespace) {
        return Some(format!("`{subject}` contains whitespace"));
    }
    if subject
        .split('.')
        .any(|token| token.is_empty() || token == "*" || token == ">")
    {
        return Some(format!(
            "`{subject}` is not a subject to publish to (an empty token, or a wildcard)"
        ));
    }
    None
}

impl NatsOutlet {
    /// Publishes to `subject` (a [`Template`]) on the server `connector` reaches.
    pub fn new(connector: Connector, mode: NatsPublish, subject: Template) -> Self {
        NatsOutlet {
            connector,
            mode,
            subject,
            format: Format::Json,
            client: None,
        }
    }

    /// How payloads become messages (default JSON).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        if let Some(fixed) = self.subject.fixed()
            && let Some(problem) = subject_problem(fixed)
        {
            return Err(OptionError::new("subject", problem));
        }
        Ok(())
    }

    async fn client(&mut self) -> Result<Client, NatsError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let c = self.connector.connect().await?;
        self.client = Some(c.clone());
        Ok(c)
    }

    async fn publish(&mut self, records: &[Record]) -> Result<(), NatsOutletError> {
        let mut subjects = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let subject = self
                .subject
                .render(record)
                .map_err(|message| NatsOutletError::BadRecord { index, message })?;
            if let Some(problem) = subject_problem(&subject) {
                return Err(NatsOutletError::BadRecord {
                    index,
                    message: problem,
                });
            }
            subjects.push(subject.into_owned());
        }
        let client = self.client().await?;
        let connector = &self.connector;
        let error = |subject: &str, e: &dyn std::error::Error| {
            NatsOutletError::Nats(connector.error(format!("publishing to `{subject}`"), e))
        };
        let mut sent = 0;
        match self.mode {
            NatsPublish::Core => {
                for (record, subject) in records.iter().zip(&subjects) {
                    let message = self.format.encode(&record.payload);
                    sent += message.len() as u64;
                    client
                        .publish(subject.clone(), message.into())
                        .await
                        .map_err(|e| error(subject, &e))?;
                }
                // While the client is away, a flush waits for the
                // reconnect: bounded, so the push fails naming the server.
                let what = format!("flushing {} messages", records.len());
                match tokio::time::timeout(connector.timeout(), client.flush()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(NatsOutletError::Nats(connector.error(what, &e))),
                    Err(_) => {
                        return Err(NatsOutletError::Nats(connector.error(
                            what,
                            &NoAnswer {
                                timeout: connector.timeout(),
                                state: client.connection_state(),
                            },
                        )));
                    }
                }
            }
            NatsPublish::JetStream => {
                let js = jetstream::new(client);
                let mut acks = Vec::with_capacity(records.len());
                for (record, subject) in records.iter().zip(&subjects) {
                    let message = self.format.encode(&record.payload);
                    sent += message.len() as u64;
                    let ack = js
                        .publish(subject.clone(), message.into())
                        .await
                        .map_err(|e| error(subject, &e))?;
                    acks.push(ack);
                }
                for (ack, subject) in acks.into_iter().zip(&subjects) {
                    ack.await.map_err(|e| {
                        NatsOutletError::Nats(
                            connector
                                .error(format!("JetStream acknowledgement for `{subject}`"), &e),
                        )
                    })?;
                }
            }
        }
        databay_core::bytes::add(sent);
        Ok(())
    }
}

#[async_trait]
impl Outlet for NatsOutlet {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        if records.is_empty() {
            return Ok(());
        }
        self.check()?;
        Ok(self.publish(records).await?)
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        self.client().await?;
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        if let Some(client) = self.client.take() {
            let _ = client.flush().await;
        }
        Ok(())
    }
}
