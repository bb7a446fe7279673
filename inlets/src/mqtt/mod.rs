//! [`MqttInlet`]: takes the MQTT messages of a subscription on every
//! transfer; at QoS 1 each is acknowledged (`PUBACK`) only once the
//! transfer that carried it was committed.
//!
#![doc = include_str!("README.md")]

use databay_component::OptionError;
use databay_component::broker::{Format, Unsettled};
use databay_component::mqtt::{Arrived, Connector, MqttError, Session};
use databay_core::{BoxError, Inlet, Pull, Record, Update, async_trait};
use rumqttc::QoS;

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::MqttInletOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// The metadata key holding a message's topic.
pub const TOPIC_META: &str = "mqtt_topic";

/// Why an [`MqttInlet`] could not start or pull.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MqttInletError {
    /// Connecting, subscribing or acknowledging failed.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// A message is not what `format` says. It was removed (acknowledged
    /// at QoS 1) so that it cannot block the inlet; the rest of the pull
    /// comes with the next transfer.
    #[error(
        "MQTT broker at {target}: topic `{topic}`, message {number} received: {message}; the message was removed"
    )]
    BadMessage {
        /// `host:port`.
        target: String,
        /// The message's topic.
        topic: String,
        /// Its number since the inlet started (1 for the first).
        number: u64,
        /// What is wrong with it.
        message: String,
    },
}

/// Takes the messages of one MQTT subscription, one record per message.
///
/// A task receives messages all the time into an inbox; a pull takes up
/// to `batch_size` of them. At QoS 1 a message is acknowledged to the
/// broker only by a commit; a rollback puts the pull's messages back in
/// front of the inbox, so the next transfer delivers them. With a
/// persistent session (`clean_session = false`, a fixed `client_id`) the
/// broker keeps what was never acknowledged and sends it again after a
/// reconnect or a restart: at-least-once. At QoS 0 nothing is
/// acknowledged, and what arrives while the inbox is full is dropped and
/// counted.
pub struct MqttInlet {
    connector: Connector,
    topic: String,
    qos: QoS,
    format: Format,
    batch_size: usize,
    buffer: usize,
    session: Option<Session>,
    unsettled: Unsettled<Vec<Arrived>>,
    dropped_reported: u64,
}

impl std::fmt::Debug for MqttInlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttInlet")
            .field("connector", &self.connector)
            .field("topic", &self.topic)
            .field("qos", &self.qos)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl MqttInlet {
    /// The most messages one pull takes when `batch_size` is not set.
    pub const DEFAULT_BATCH_SIZE: usize = 100;
    /// The most QoS 0 messages waiting when `buffer` is not set.
    pub const DEFAULT_BUFFER: usize = 10_000;

    /// Subscribes to `topic` (a filter: `+` and `#` allowed) at QoS 1 on
    /// the broker `connector` reaches.
    pub fn new(connector: Connector, topic: impl Into<String>) -> Self {
        MqttInlet {
            connector,
            topic: topic.into(),
            qos: QoS::AtLeastOnce,
            format: Format::Json,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            buffer: Self::DEFAULT_BUFFER,
            session: None,
            unsettled: Unsettled::default(),
            dropped_reported: 0,
        }
    }

    /// The subscription's QoS (default 1).
    pub fn qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// How messages become payloads (default JSON).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The most messages one pull takes (default 100).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// The most QoS 0 messages waiting between transfers (default 10000).
    pub fn buffer(mut self, n: usize) -> Self {
        self.buffer = n;
        self
    }

    /// QoS 0 messages dropped since the start because the inbox was full.
    pub fn dropped(&self) -> u64 {
        self.session.as_ref().map_or(0, Session::dropped)
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        if self.topic.is_empty() {
            return Err(OptionError::new("topic", "must not be empty"));
        }
        let levels: Vec<&str> = self.topic.split('/').collect();
        for (i, level) in levels.iter().enumerate() {
            let misplaced = (level.contains('#') && (*level != "#" || i + 1 != levels.len()))
                || (level.contains('+') && *level != "+");
            if misplaced {
                return Err(OptionError::new(
                    "topic",
                    format!(
                        "`{}` is no topic filter: `+` must be a whole level, `#` the whole last one",
                        self.topic
                    ),
                ));
            }
        }
        if self.qos == QoS::ExactlyOnce {
            return Err(OptionError::new("qos", "2 is not supported; use 1"));
        }
        if self.batch_size == 0 {
            return Err(OptionError::new("batch_size", "must be at least 1"));
        }
        if self.buffer == 0 {
            return Err(OptionError::new("buffer", "must be at least 1"));
        }
        Ok(())
    }

    async fn connect(&mut self) -> Result<(), MqttError> {
        let session = self.connector.connect(true, self.buffer).await?;
        session.subscribe(&self.topic, self.qos).await?;
        self.session = Some(session);
        Ok(())
    }

    async fn take(&mut self, update: &Update) -> Result<Pull, MqttInletError> {
        if self.session.is_none() {
            self.connect().await?;
        }
        let Some(session) = &self.session else {
            return Ok(Pull::Nothing);
        };
        let dropped = session.dropped();
        if dropped > self.dropped_reported {
            tracing::warn!(
                topic = %self.topic,
                dropped = dropped - self.dropped_reported,
                "{} MQTT messages on `{}` dropped since the last transfer: the inbox was full \
                 (raise `buffer`, or pull more often or more at once with `batch_size`)",
                dropped - self.dropped_reported,
                self.topic
            );
            self.dropped_reported = dropped;
        }
        let taken = session.take(self.batch_size);
        databay_core::bytes::add(taken.iter().map(|a| a.publish.payload.len() as u64).sum());
        let mut records = Vec::with_capacity(taken.len());
        let mut kept = Vec::with_capacity(taken.len());
        let mut bad = None;
        for arrived in taken {
            match self.format.decode(&arrived.publish.payload) {
                Ok(payload) if bad.is_none() => {
                    records.push(
                        Record::new(payload).with_meta(TOPIC_META, arrived.publish.topic.as_str()),
                    );
                    kept.push(arrived);
                }
                Err(message) if bad.is_none() => bad = Some((arrived, message)),
                _ => kept.push(arrived),
            }
        }
        if let Some((arrived, message)) = bad {
            // Acknowledged now, so the broker does not send it again.
            session.ack(&arrived).await?;
            self.remember(update, kept);
            return Err(MqttInletError::BadMessage {
                target: self.connector.target().to_owned(),
                topic: arrived.publish.topic.clone(),
                number: arrived.number,
                message,
            });
        }
        self.remember(update, kept);
        Ok(if records.is_empty() {
            Pull::Nothing
        } else {
            Pull::Records(records)
        })
    }

    /// Keeps what a pull took; puts back what a cut-short transfer of the
    /// same link left.
    fn remember(&mut self, update: &Update, taken: Vec<Arrived>) {
        for leftover in self.unsettled.insert(update, taken) {
            if let Some(session) = &self.session {
                session.put_back(leftover);
            }
        }
    }
}

#[async_trait]
impl Inlet for MqttInlet {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        self.check()?;
        Ok(self.take(update).await?)
    }

    async fn commit(&mut self, update: &Update) -> Result<(), BoxError> {
        let (Some(taken), Some(session)) = (self.unsettled.take(update), &self.session) else {
            return Ok(());
        };
        for arrived in &taken {
            session.ack(arrived).await?;
        }
        Ok(())
    }

    async fn rollback(&mut self, update: &Update) -> Result<(), BoxError> {
        if let (Some(taken), Some(session)) = (self.unsettled.take(update), &self.session) {
            session.put_back(taken);
        }
        Ok(())
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        self.connect().await?;
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        // Nothing unsettled is acknowledged: with a persistent session the
        // broker sends it again on the next connection.
        self.unsettled.drain();
        if let Some(session) = self.session.take() {
            session.disconnect().await;
        }
        Ok(())
    }
}
