//! [`AmqpInlet`]: consumes an AMQP queue (RabbitMQ) with a prefetch
//! window; each message is acknowledged only once the transfer that
//! carried it was committed, and returned to the queue (`nack` with
//! requeue) when it was not.
//!
#![doc = include_str!("README.md")]

use databay_component::OptionError;
use databay_component::amqp::{AmqpError, Connector};
use databay_component::broker::{Format, Unsettled};
use databay_core::{BoxError, Inlet, Pull, Record, Update, async_trait};
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::AmqpInletOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// The metadata key holding the exchange a message was published to.
pub const EXCHANGE_META: &str = "amqp_exchange";
/// The metadata key holding a message's routing key.
pub const ROUTING_KEY_META: &str = "amqp_routing_key";
/// The metadata key saying whether the broker delivered the message before.
pub const REDELIVERED_META: &str = "amqp_redelivered";

/// Why an [`AmqpInlet`] could not start or pull.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AmqpInletError {
    /// Connecting, consuming or acknowledging failed.
    #[error(transparent)]
    Amqp(#[from] AmqpError),
    /// A message is not what `format` says. It was rejected without
    /// requeue (to the queue's dead-letter exchange, when it has one) so
    /// that it cannot block the inlet; the rest of the pull goes back to
    /// the queue.
    #[error(
        "AMQP broker at {target}: queue `{queue}`, delivery {delivery_tag} (routing key `{routing_key}`): {message}; the message was rejected"
    )]
    BadMessage {
        /// `host:port/vhost`.
        target: String,
        /// The queue.
        queue: String,
        /// The delivery tag on the inlet's channel.
        delivery_tag: u64,
        /// The message's routing key.
        routing_key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A consuming channel.
struct Open {
    connection: Connection,
    channel: Channel,
    consumer: Consumer,
}

/// Consumes one AMQP queue, one record per message.
///
/// The broker sends up to `prefetch` unacknowledged messages ahead; a
/// pull takes up to `batch_size` of those that arrived. A commit
/// acknowledges the pull's messages; a rollback returns them to the queue
/// (`nack`, requeue), and the broker delivers them again, marked
/// redelivered. Messages unacknowledged when the connection ends (a
/// crash, a restart) go back to the queue too: at-least-once.
pub struct AmqpInlet {
    connector: Connector,
    queue: String,
    consumer_tag: String,
    format: Format,
    batch_size: usize,
    prefetch: u16,
    open: Option<Open>,
    unsettled: Unsettled<Vec<Delivery>>,
}

impl std::fmt::Debug for AmqpInlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpInlet")
            .field("connector", &self.connector)
            .field("queue", &self.queue)
            .field("batch_size", &self.batch_size)
            .field("prefetch", &self.prefetch)
            .finish_non_exhaustive()
    }
}

impl AmqpInlet {
    /// The most messages one pull takes when `batch_size` is not set.
    pub const DEFAULT_BATCH_SIZE: usize = 100;

    /// Consumes `queue` on the broker `connector` reaches, as `consumer_tag`.
    pub fn new(
        connector: Connector,
        queue: impl Into<String>,
        consumer_tag: impl Into<String>,
    ) -> Self {
        AmqpInlet {
            connector,
            queue: queue.into(),
            consumer_tag: consumer_tag.into(),
            format: Format::Json,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            prefetch: 200,
            open: None,
            unsettled: Unsettled::default(),
        }
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

    /// The most unacknowledged messages the broker sends ahead (`basic.qos`;
    /// default 200). At least `batch_size`, or pulls come up short.
    pub fn prefetch(mut self, n: u16) -> Self {
        self.prefetch = n;
        self
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        if self.queue.is_empty() {
            return Err(OptionError::new("queue", "must not be empty"));
        }
        if self.batch_size == 0 {
            return Err(OptionError::new("batch_size", "must be at least 1"));
        }
        if self.prefetch == 0 {
            return Err(OptionError::new("prefetch", "must be at least 1"));
        }
        if usize::from(self.prefetch) < self.batch_size {
            return Err(OptionError::new(
                "prefetch",
                format!(
                    "{} is less than batch_size {}: a pull could never take a full batch",
                    self.prefetch, self.batch_size
                ),
            ));
        }
        Ok(())
    }

    async fn open(&mut self) -> Result<(), AmqpError> {
        if let Some(open) = &self.open
            && open.connection.status().connected()
            && open.channel.status().connected()
        {
            return Ok(());
        }
        self.open = None;
        let connection = self.connector.connect().await?;
        let what = format!("consuming queue `{}`", self.queue);
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| self.connector.error(what.clone(), e))?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| self.connector.error(what.clone(), e))?;
        let consumer = channel
            .basic_consume(
                self.queue.as_str().into(),
                self.consumer_tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| self.connector.error(what, e))?;
        self.open = Some(Open {
            connection,
            channel,
            consumer,
        });
        Ok(())
    }

    async fn take(&mut self, update: &Update) -> Result<Pull, AmqpInletError> {
        self.open().await?;
        let Some(open) = self.open.as_mut() else {
            return Ok(Pull::Nothing);
        };
        let mut deliveries = Vec::new();
        let mut failed = None;
        while deliveries.len() < self.batch_size {
            // Only what has arrived: a pull never waits for the broker.
            match open.consumer.next().now_or_never() {
                Some(Some(Ok(delivery))) => deliveries.push(delivery),
                Some(Some(Err(e))) => {
                    failed = Some(e.to_string());
                    break;
                }
                Some(None) => {
                    failed = Some("the broker cancelled the consumer".to_owned());
                    break;
                }
                None => break,
            }
        }
        if let Some(message) = failed {
            self.open = None;
            self.remember(update, deliveries).await;
            return Err(self
                .connector
                .error(format!("consuming queue `{}`", self.queue), message)
                .into());
        }
        databay_core::bytes::add(deliveries.iter().map(|d| d.data.len() as u64).sum());
        let mut records = Vec::with_capacity(deliveries.len());
        let mut kept = Vec::with_capacity(deliveries.len());
        let mut bad = None;
        for delivery in deliveries {
            match self.format.decode(&delivery.data) {
                Ok(payload) if bad.is_none() => {
                    records.push(
                        Record::new(payload)
                            .with_meta(EXCHANGE_META, delivery.exchange.as_str())
                            .with_meta(ROUTING_KEY_META, delivery.routing_key.as_str())
                            .with_meta(REDELIVERED_META, delivery.redelivered),
                    );
                    kept.push(delivery);
                }
                Err(message) if bad.is_none() => bad = Some((delivery, message)),
                _ => kept.push(delivery),
            }
        }
        if let Some((delivery, message)) = bad {
            delivery
                .reject(BasicRejectOptions { requeue: false })
                .await
                .map_err(|e| self.connector.error("rejecting a bad message", e))?;
            self.remember(update, kept).await;
            return Err(AmqpInletError::BadMessage {
                target: self.connector.target().to_owned(),
                queue: self.queue.clone(),
                delivery_tag: delivery.delivery_tag,
                routing_key: delivery.routing_key.to_string(),
                message,
            });
        }
        self.remember(update, kept).await;
        Ok(if records.is_empty() {
            Pull::Nothing
        } else {
            Pull::Records(records)
        })
    }

    /// Keeps what a pull took; returns to the queue what a cut-short
    /// transfer of the same link left.
    async fn remember(&mut self, update: &Update, taken: Vec<Delivery>) {
        for leftover in self.unsettled.insert(update, taken) {
            if let Err(e) = self.requeue(&leftover).await {
                tracing::warn!("{e}");
            }
        }
    }

    async fn requeue(&self, deliveries: &[Delivery]) -> Result<(), AmqpError> {
        for d in deliveries {
            d.nack(BasicNackOptions {
                multiple: false,
                requeue: true,
            })
            .await
            .map_err(|e| {
                self.connector.error(
                    format!(
                        "returning {} messages to queue `{}`",
                        deliveries.len(),
                        self.queue
                    ),
                    e,
                )
            })?;
        }
        Ok(())
    }
}

#[async_trait]
impl Inlet for AmqpInlet {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        self.check()?;
        Ok(self.take(update).await?)
    }

    async fn commit(&mut self, update: &Update) -> Result<(), BoxError> {
        let Some(taken) = self.unsettled.take(update) else {
            return Ok(());
        };
        for d in &taken {
            d.ack(BasicAckOptions::default()).await.map_err(|e| {
                self.connector.error(
                    format!(
                        "acknowledging {} messages of queue `{}`",
                        taken.len(),
                        self.queue
                    ),
                    e,
                )
            })?;
        }
        Ok(())
    }

    async fn rollback(&mut self, update: &Update) -> Result<(), BoxError> {
        match self.unsettled.take(update) {
            Some(taken) => Ok(self.requeue(&taken).await?),
            None => Ok(()),
        }
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        self.open().await?;
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        let mut first_error = None;
        for taken in self.unsettled.drain() {
            if let Err(e) = self.requeue(&taken).await {
                first_error.get_or_insert(e);
            }
        }
        if let Some(open) = self.open.take() {
            // Closing returns whatever is still unacknowledged to the queue.
            let _ = open.channel.close(200, "databay stops".into()).await;
            let _ = open.connection.close(200, "databay stops".into()).await;
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}
