//! [`MqttOutlet`]: publishes each record as one MQTT message, at QoS 0
//! (written to the broker before the push returns) or QoS 1 (every
//! message acknowledged by the broker), the topic fixed or filled from the
//! record.
//!
#![doc = include_str!("README.md")]

use databay_component::OptionError;
use databay_component::broker::{Format, Template};
use databay_component::mqtt::{Connector, MqttError, Session};
use databay_core::{BoxError, Outlet, Record, Update, async_trait};
use rumqttc::QoS;

/// A documented config table for this outlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::MqttOutletOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// Why an [`MqttOutlet`] could not push.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MqttOutletError {
    /// Connecting, publishing or an acknowledgement failed.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// A record's topic cannot be filled from it, or is no topic to
    /// publish to; nothing of this push was published.
    #[error("record {index}: topic {message}; nothing of this push was published")]
    BadRecord {
        /// Index of the record in the pushed batch, from 0.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

/// Why `topic` cannot be published to, if it cannot.
fn topic_problem(topic: &str) -> Option<String> {
    if topic.is_empty() {
        return Some("is empty".into());
    }
    if topic.contains(['+', '#']) {
        return Some(format!("`{topic}` has a wildcard (`+`, `#`)"));
    }
    if topic.contains('\0') {
        return Some(format!("`{topic}` contains a NUL character"));
    }
    None
}

/// Publishes records to an MQTT broker, one message per record.
///
/// Topics are rendered for the whole batch first (a bad one fails the
/// push before anything is sent). At QoS 1 the push returns once the
/// broker acknowledged every message (`PUBACK`); at QoS 0 once they are
/// written to the connection. A push failing midway may have published
/// part of the batch, which the link's retry publishes again
/// (at-least-once at QoS 1).
pub struct MqttOutlet {
    connector: Connector,
    topic: Template,
    qos: QoS,
    retain: bool,
    format: Format,
    session: Option<Session>,
}

impl std::fmt::Debug for MqttOutlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttOutlet")
            .field("connector", &self.connector)
            .field("topic", &self.topic.source())
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .finish_non_exhaustive()
    }
}

impl MqttOutlet {
    /// Publishes to `topic` (a [`Template`]) at QoS 1 on the broker
    /// `connector` reaches.
    pub fn new(connector: Connector, topic: Template) -> Self {
        MqttOutlet {
            connector,
            topic,
            qos: QoS::AtLeastOnce,
            retain: false,
            format: Format::Json,
            session: None,
        }
    }

    /// The QoS of every message (default 1, at least once).
    pub fn qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// Publishes retained messages (the broker keeps the last one per topic).
    pub fn retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// How payloads become messages (default JSON).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        if self.qos == QoS::ExactlyOnce {
            return Err(OptionError::new("qos", "2 is not supported; use 1"));
        }
        if let Some(fixed) = self.topic.fixed()
            && let Some(problem) = topic_problem(fixed)
        {
            return Err(OptionError::new("topic", problem));
        }
        Ok(())
    }

    async fn publish(&mut self, records: &[Record]) -> Result<(), MqttOutletError> {
        let mut messages = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let topic = self
                .topic
                .render(record)
                .map_err(|message| MqttOutletError::BadRecord { index, message })?;
            if let Some(message) = topic_problem(&topic) {
                return Err(MqttOutletError::BadRecord { index, message });
            }
            messages.push((topic.into_owned(), self.format.encode(&record.payload)));
        }
        if self.session.is_none() {
            self.session = Some(self.connector.connect(false, 1).await?);
        }
        let Some(session) = &self.session else {
            return Ok(());
        };
        let sent = messages.iter().map(|(_, m)| m.len() as u64).sum();
        session.publish(messages, self.qos, self.retain).await?;
        databay_core::bytes::add(sent);
        Ok(())
    }
}

#[async_trait]
impl Outlet for MqttOutlet {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        if records.is_empty() {
            return Ok(());
        }
        self.check()?;
        Ok(self.publish(records).await?)
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        self.session = Some(self.connector.connect(false, 1).await?);
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        if let Some(session) = self.session.take() {
            session.disconnect().await;
        }
        Ok(())
    }
}
