//! [`AmqpOutlet`]: publishes each record as one AMQP message to an
//! exchange (RabbitMQ), with publisher confirms: the push returns once the
//! broker confirmed every message, and a message no queue takes is an
//! error, not a silent drop.
//!
#![doc = include_str!("README.md")]

use databay_component::amqp::{AmqpError, Connector};
use databay_component::broker::{Format, Template};
use databay_component::{OptionError, duration};
use databay_core::{BoxError, Outlet, Record, Update, async_trait};
use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection};

/// A documented config table for this outlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::AmqpOutletOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// Why an [`AmqpOutlet`] could not push.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AmqpOutletError {
    /// Connecting, publishing or a confirmation failed.
    #[error(transparent)]
    Amqp(#[from] AmqpError),
    /// A record's routing key cannot be filled from it; nothing of this
    /// push was published.
    #[error("record {index}: routing key {message}; nothing of this push was published")]
    BadRecord {
        /// Index of the record in the pushed batch, from 0.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

/// An open connection and its confirm-mode channel.
struct Open {
    connection: Connection,
    channel: Channel,
}

/// Publishes records to an AMQP exchange, one message per record.
///
/// Routing keys are rendered for the whole batch first (a bad one fails
/// the push before anything is sent). The channel is in confirm mode:
/// every message of a push is published, then every confirmation awaited,
/// so `Ok` means the broker took them all (persistent messages on durable
/// queues: written to disk). Messages are published `mandatory`: one that
/// no queue is bound to take comes back and fails the push. A push failing
/// midway may have published part of the batch, which the link's retry
/// publishes again (at-least-once).
pub struct AmqpOutlet {
    connector: Connector,
    exchange: String,
    routing_key: Template,
    format: Format,
    persistent: bool,
    mandatory: bool,
    open: Option<Open>,
}

impl std::fmt::Debug for AmqpOutlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpOutlet")
            .field("connector", &self.connector)
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key.source())
            .field("persistent", &self.persistent)
            .finish_non_exhaustive()
    }
}

impl AmqpOutlet {
    /// Publishes to `exchange` (`""` is the default exchange, which routes
    /// to the queue named by the routing key) with `routing_key` (a
    /// [`Template`]) on the broker `connector` reaches.
    pub fn new(connector: Connector, exchange: impl Into<String>, routing_key: Template) -> Self {
        AmqpOutlet {
            connector,
            exchange: exchange.into(),
            routing_key,
            format: Format::Json,
            persistent: true,
            mandatory: true,
            open: None,
        }
    }

    /// How payloads become messages (default JSON).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Persistent messages (delivery mode 2, the default) survive a broker
    /// restart on durable queues.
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// Whether a message no queue takes fails the push (default) or is
    /// dropped by the broker.
    pub fn mandatory(mut self, mandatory: bool) -> Self {
        self.mandatory = mandatory;
        self
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        if self.exchange.len() > 255 {
            return Err(OptionError::new("exchange", "is longer than 255 bytes"));
        }
        if let Some(key) = self.routing_key.fixed()
            && key.len() > 255
        {
            return Err(OptionError::new("routing_key", "is longer than 255 bytes"));
        }
        Ok(())
    }

    async fn open(&mut self) -> Result<Channel, AmqpError> {
        if let Some(open) = &self.open
            && open.connection.status().connected()
            && open.channel.status().connected()
        {
            return Ok(open.channel.clone());
        }
        self.open = None;
        let connection = self.connector.connect().await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| self.connector.error("opening a channel", e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| self.connector.error("enabling publisher confirms", e))?;
        self.open = Some(Open {
            connection,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    async fn publish(&mut self, records: &[Record]) -> Result<(), AmqpOutletError> {
        let mut keys = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let key = self
                .routing_key
                .render(record)
                .map_err(|message| AmqpOutletError::BadRecord { index, message })?;
            if key.len() > 255 {
                return Err(AmqpOutletError::BadRecord {
                    index,
                    message: format!("`{key}` is longer than 255 bytes"),
                });
            }
            keys.push(key.into_owned());
        }
        let channel = self.open().await?;
        let content_type = match self.format {
            Format::Text => "text/plain",
            _ => "application/json",
        };
        let mut properties = BasicProperties::default().with_content_type(content_type.into());
        if self.persistent {
            properties = properties.with_delivery_mode(2);
        }
        let options = BasicPublishOptions {
            mandatory: self.mandatory,
            ..BasicPublishOptions::default()
        };
        let exchange = &self.exchange;
        let connector = &self.connector;
        let failed = |key: &str, message: String| {
            AmqpOutletError::Amqp(connector.error(
                format!("publishing to exchange `{exchange}` with routing key `{key}`"),
                message,
            ))
        };
        let mut confirms = Vec::with_capacity(records.len());
        let mut sent = 0;
        for (record, key) in records.iter().zip(&keys) {
            let message = self.format.encode(&record.payload);
            sent += message.len() as u64;
            let confirm = channel
                .basic_publish(
                    exchange.as_str().into(),
                    key.as_str().into(),
                    options,
                    &message,
                    properties.clone(),
                )
                .await
                .map_err(|e| failed(key, e.to_string()))?;
            confirms.push(confirm);
        }
        let timeout = connector.timeout();
        for (confirm, key) in confirms.into_iter().zip(&keys) {
            let confirmation = match tokio::time::timeout(timeout, confirm).await {
                Err(_) => {
                    return Err(failed(
                        key,
                        format!("no confirmation within {}", duration::format(timeout)),
                    ));
                }
                Ok(result) => result.map_err(|e| failed(key, e.to_string()))?,
            };
            match confirmation {
                Confirmation::Ack(None) | Confirmation::NotRequested => {}
                Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                    return Err(failed(
                        key,
                        format!(
                            "returned by the broker: {} {} (no queue is bound to take it)",
                            returned.reply_code, returned.reply_text
                        ),
                    ));
                }
                Confirmation::Nack(None) => {
                    return Err(failed(key, "refused by the broker (nack)".into()));
                }
            }
        }
        databay_core::bytes::add(sent);
        Ok(())
    }
}

#[async_trait]
impl Outlet for AmqpOutlet {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        if records.is_empty() {
            return Ok(());
        }
        self.check()?;
        Ok(self.publish(records).await?)
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        self.open().await?;
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        if let Some(open) = self.open.take() {
            let _ = open.channel.close(200, "databay stops".into()).await;
            let _ = open.connection.close(200, "databay stops".into()).await;
        }
        Ok(())
    }
}
