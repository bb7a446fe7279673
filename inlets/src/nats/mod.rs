//! [`NatsInlet`]: takes NATS messages on every transfer: from a core
//! subscription, buffered between transfers in a bounded queue, or from a
//! JetStream durable pull consumer, acknowledged only once the transfer
//! that carried them was committed.
//!
#![doc = include_str!("README.md")]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use async_nats::{Client, Message};
use databay_component::OptionError;
use databay_component::broker::{Format, Unsettled};
use databay_component::nats::{Connector, NatsError};
use databay_core::{BoxError, Inlet, Pull, Record, Update, async_trait};
use futures::StreamExt;
use tokio::task::JoinHandle;

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::NatsInletOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// The metadata key holding a message's subject.
pub const SUBJECT_META: &str = "nats_subject";
/// The metadata key holding a JetStream message's stream sequence.
pub const SEQUENCE_META: &str = "nats_sequence";

/// Where the inlet reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatsRead {
    /// A core subscription to `subject` (wildcards allowed), in a queue
    /// group when one is given. Messages arriving between transfers wait
    /// in a queue of at most `buffer`; more are dropped and counted.
    Subscribe {
        /// The queue group, sharing the messages among its members.
        queue_group: Option<String>,
        /// The most messages waiting between transfers.
        buffer: usize,
    },
    /// A durable pull consumer of the JetStream stream `stream`.
    JetStream {
        /// The stream (it must exist).
        stream: String,
        /// The durable consumer, created when missing.
        durable: String,
        /// How long the server waits for an acknowledgement before it
        /// delivers a message again.
        ack_wait: Duration,
    },
}

/// Why a [`NatsInlet`] could not start or pull.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsInletError {
    /// Connecting, subscribing or a JetStream request failed.
    #[error(transparent)]
    Nats(#[from] NatsError),
    /// A message is not what `format` says. It was removed (dropped from
    /// the queue, or terminated in JetStream) so that it cannot block the
    /// inlet; the rest of the pull comes with the next transfer.
    #[error("NATS at {target}: subject `{subject}`, {place}: {message}; the message was removed")]
    BadMessage {
        /// `host:port`.
        target: String,
        /// The message's subject.
        subject: String,
        /// `stream sequence 42` or `message 7 received`.
        place: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Messages a core subscription received and no pull has taken yet.
#[derive(Debug, Default)]
struct Queue {
    messages: VecDeque<(u64, Message)>,
    /// Messages received since the subscription began (their number).
    received: u64,
}

/// A running core subscription.
struct Subscription {
    queue: Arc<Mutex<Queue>>,
    dropped: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one pull took, until it is settled.
enum Taken {
    Core(Vec<(u64, Message)>),
    JetStream(Vec<jetstream::Message>),
}

/// Takes NATS messages, one record per message.
///
/// Core subscription: messages are received all the time into a bounded
/// queue; a pull takes up to `batch_size` of them. A rollback puts them
/// back in front, a commit forgets them. Core NATS has no redelivery: what
/// arrives while the queue is full is dropped (counted, and logged at the
/// next pull), and what the queue holds when the daemon stops is lost.
///
/// JetStream: a pull fetches up to `batch_size` messages from the durable
/// consumer; a commit acknowledges them, a rollback negatively
/// acknowledges them (`NAK`) so the server delivers them again at once. An
/// unacknowledged message comes back after `ack_wait` anyway (a crash, a
/// lost acknowledgement): at-least-once.
pub struct NatsInlet {
    connector: Connector,
    read: NatsRead,
    subject: String,
    format: Format,
    batch_size: usize,
    client: Option<Client>,
    subscription: Option<Subscription>,
    consumer: Option<PullConsumer>,
    unsettled: Unsettled<Taken>,
    dropped_reported: u64,
}

impl std::fmt::Debug for NatsInlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsInlet")
            .field("connector", &self.connector)
            .field("read", &self.read)
            .field("subject", &self.subject)
            .field("format", &self.format)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl NatsInlet {
    /// The most messages one pull takes when `batch_size` is not set.
    pub const DEFAULT_BATCH_SIZE: usize = 100;
    /// The core queue's size when `buffer` is not set.
    pub const DEFAULT_BUFFER: usize = 10_000;

    /// Reads `subject` (core: the subscription; JetStream: a filter on the
    /// stream, empty for all of it) from the server `connector` reaches.
    pub fn new(connector: Connector, read: NatsRead, subject: impl Into<String>) -> Self {
        NatsInlet {
            connector,
            read,
            subject: subject.into(),
            format: Format::Json,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            client: None,
            subscription: None,
            consumer: None,
            unsettled: Unsettled::default(),
            dropped_reported: 0,
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

    /// Core messages dropped because the queue was full, since the start.
    pub fn dropped(&self) -> u64 {
        self.subscription
            .as_ref()
            .map_or(0, |s| s.dropped.load(Ordering::Relaxed))
    }

    /// Checks the settings, each error naming its option.
    pub fn check(&self) -> Result<(), OptionError> {
        if self.batch_size == 0 {
            return Err(OptionError::new("batch_size", "must be at least 1"));
        }
        if self.subject.contains(char::is_whitespace) {
            return Err(OptionError::new(
                "subject",
                format!("`{}` contains whitespace", self.subject),
            ));
        }
        match &self.read {
            NatsRead::Subscribe { buffer, .. } => {
                if self.subject.is_empty() {
                    return Err(OptionError::new("subject", "must not be empty"));
                }
                if *buffer == 0 {
                    return Err(OptionError::new("buffer", "must be at least 1"));
                }
            }
            NatsRead::JetStream {
                stream,
                durable,
                ack_wait,
            } => {
                for (name, value) in [("stream", stream), ("durable", durable)] {
                    if value.is_empty() || value.contains(['.', '*', '>', ' ']) {
                        return Err(OptionError::new(
                            name,
                            format!(
                                "`{value}` is no name (empty, or with `.`, `*`, `>` or a space)"
                            ),
                        ));
                    }
                }
                if ack_wait.is_zero() {
                    return Err(OptionError::new("ack_wait", "must be more than 0s"));
                }
            }
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

    async fn subscribe(
        &mut self,
        queue_group: Option<String>,
        buffer: usize,
    ) -> Result<(), NatsError> {
        let client = self.client().await?;
        let subject = self.subject.clone();
        let subscribing = match queue_group {
            Some(group) => client.queue_subscribe(subject.clone(), group).await,
            None => client.subscribe(subject.clone()).await,
        };
        let mut subscriber = subscribing.map_err(|e| {
            self.connector
                .error(format!("subscribing to `{subject}`"), &e)
        })?;
        // The subscription is live on the server once the flush returns.
        client.flush().await.map_err(|e| {
            self.connector
                .error(format!("subscribing to `{subject}`"), &e)
        })?;
        let queue = Arc::new(Mutex::new(Queue::default()));
        let dropped = Arc::new(AtomicU64::new(0));
        let task = {
            let (queue, dropped) = (queue.clone(), dropped.clone());
            tokio::spawn(async move {
                while let Some(message) = subscriber.next().await {
                    let mut q = lock(&queue);
                    q.received += 1;
                    if q.messages.len() < buffer {
                        let n = q.received;
                        q.messages.push_back((n, message));
                    } else {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        self.subscription = Some(Subscription {
            queue,
            dropped,
            task,
        });
        Ok(())
    }

    async fn consumer(&mut self) -> Result<PullConsumer, NatsError> {
        if let Some(c) = &self.consumer {
            return Ok(c.clone());
        }
        let NatsRead::JetStream {
            stream,
            durable,
            ack_wait,
        } = self.read.clone()
        else {
            return Err(self.connector.error("JetStream", &NotJetStream));
        };
        let js = jetstream::new(self.client().await?);
        let stream_handle = js.get_stream(&stream).await.map_err(|e| {
            self.connector.error(
                format!(
                    "opening stream `{stream}` (create it first: `nats stream add {stream} --subjects ...`)"
                ),
                &e,
            )
        })?;
        let config = jetstream::consumer::pull::Config {
            durable_name: Some(durable.clone()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait,
            filter_subject: self.subject.clone(),
            ..Default::default()
        };
        let consumer = stream_handle
            .get_or_create_consumer(&durable, config)
            .await
            .map_err(|e| {
                self.connector.error(
                    format!("opening consumer `{durable}` of stream `{stream}`"),
                    &e,
                )
            })?;
        self.consumer = Some(consumer.clone());
        Ok(consumer)
    }

    fn bad(&self, subject: &str, place: String, message: String) -> NatsInletError {
        NatsInletError::BadMessage {
            target: self.connector.target().to_owned(),
            subject: subject.to_owned(),
            place,
            message,
        }
    }

    async fn pull_core(&mut self, update: &Update) -> Result<Pull, NatsInletError> {
        if self.subscription.is_none()
            && let NatsRead::Subscribe {
                queue_group,
                buffer,
            } = self.read.clone()
        {
            self.subscribe(queue_group, buffer).await?;
        }
        let Some(subscription) = &self.subscription else {
            return Ok(Pull::Nothing);
        };
        let dropped = subscription.dropped.load(Ordering::Relaxed);
        if dropped > self.dropped_reported {
            tracing::warn!(
                subject = %self.subject,
                dropped = dropped - self.dropped_reported,
                "{} NATS messages on `{}` dropped since the last transfer: the queue was full \
                 (raise `buffer`, or pull more often or more at once with `batch_size`)",
                dropped - self.dropped_reported,
                self.subject
            );
            self.dropped_reported = dropped;
        }
        let taken: Vec<(u64, Message)> = {
            let mut q = lock(&subscription.queue);
            let n = q.messages.len().min(self.batch_size);
            q.messages.drain(..n).collect()
        };
        databay_core::bytes::add(taken.iter().map(|(_, m)| m.payload.len() as u64).sum());
        let mut records = Vec::with_capacity(taken.len());
        let mut kept = Vec::with_capacity(taken.len());
        let mut bad = None;
        for (n, message) in taken {
            match self.format.decode(&message.payload) {
                Ok(payload) if bad.is_none() => {
                    records.push(
                        Record::new(payload).with_meta(SUBJECT_META, message.subject.as_str()),
                    );
                    kept.push((n, message));
                }
                Err(e) if bad.is_none() => {
                    bad = Some(self.bad(&message.subject, format!("message {n} received"), e));
                }
                _ => kept.push((n, message)),
            }
        }
        self.remember(update, Taken::Core(kept)).await;
        match bad {
            Some(e) => Err(e),
            None if records.is_empty() => Ok(Pull::Nothing),
            None => Ok(Pull::Records(records)),
        }
    }

    async fn pull_jetstream(&mut self, update: &Update) -> Result<Pull, NatsInletError> {
        let consumer = self.consumer().await?;
        let fetch_error = |e: &dyn std::error::Error| {
            self.connector.error(
                format!("fetching from consumer `{}`", consumer.cached_info().name),
                e,
            )
        };
        let mut batch = consumer
            .fetch()
            .max_messages(self.batch_size)
            .messages()
            .await
            .map_err(|e| fetch_error(&e))?;
        let mut messages = Vec::with_capacity(self.batch_size);
        let mut failed = None;
        while let Some(next) = batch.next().await {
            match next {
                Ok(m) => messages.push(m),
                Err(e) => {
                    failed = Some(fetch_error(&*e));
                    break;
                }
            }
        }
        if let Some(e) = failed {
            // What did arrive goes back at once.
            self.remember(update, Taken::JetStream(messages)).await;
            return Err(e.into());
        }
        databay_core::bytes::add(messages.iter().map(|m| m.payload.len() as u64).sum());
        let mut records = Vec::with_capacity(messages.len());
        let mut kept = Vec::with_capacity(messages.len());
        let mut bad = None;
        for message in messages {
            let sequence = message.info().map(|i| i.stream_sequence).ok();
            match self.format.decode(&message.payload) {
                Ok(payload) if bad.is_none() => {
                    let mut record =
                        Record::new(payload).with_meta(SUBJECT_META, message.subject.as_str());
                    if let Some(sequence) = sequence {
                        record.set_meta(SEQUENCE_META, sequence);
                    }
                    records.push(record);
                    kept.push(message);
                }
                Err(e) if bad.is_none() => {
                    let place = match sequence {
                        Some(s) => format!("stream sequence {s}"),
                        None => "a message".to_owned(),
                    };
                    bad = Some((self.bad(&message.subject, place, e), message));
                }
                _ => kept.push(message),
            }
        }
        if let Some((error, message)) = bad {
            // Terminated: the server does not deliver it again.
            if let Err(e) = message.ack_with(AckKind::Term).await {
                tracing::warn!("{}", self.connector.error("terminating a bad message", &*e));
            }
            self.remember(update, Taken::JetStream(kept)).await;
            return Err(error);
        }
        self.remember(update, Taken::JetStream(kept)).await;
        Ok(if records.is_empty() {
            Pull::Nothing
        } else {
            Pull::Records(records)
        })
    }

    /// Keeps what a pull took; releases what a cut-short transfer of the
    /// same link left.
    async fn remember(&mut self, update: &Update, taken: Taken) {
        for leftover in self.unsettled.insert(update, taken) {
            if let Err(e) = self.release(leftover).await {
                tracing::warn!("{e}");
            }
        }
    }

    /// Gives taken messages back: to the front of the core queue, or to
    /// JetStream for redelivery.
    async fn release(&mut self, taken: Taken) -> Result<(), NatsError> {
        match taken {
            Taken::Core(messages) => {
                if let Some(s) = &self.subscription {
                    let mut q = lock(&s.queue);
                    for m in messages.into_iter().rev() {
                        q.messages.push_front(m);
                    }
                }
                Ok(())
            }
            Taken::JetStream(messages) => self.settle(messages, AckKind::Nak(None)).await,
        }
    }

    async fn settle(
        &mut self,
        messages: Vec<jetstream::Message>,
        kind: AckKind,
    ) -> Result<(), NatsError> {
        if messages.is_empty() {
            return Ok(());
        }
        let what = match kind {
            AckKind::Ack => "acknowledging",
            _ => "returning (NAK)",
        };
        for m in &messages {
            m.ack_with(kind).await.map_err(|e| {
                self.connector
                    .error(format!("{what} {} messages", messages.len()), &*e)
            })?;
        }
        let client = self.client().await?;
        client.flush().await.map_err(|e| {
            self.connector
                .error(format!("{what} {} messages", messages.len()), &e)
        })
    }
}

/// The consumer was asked for on a core subscription (a bug, not input).
#[derive(Debug, thiserror::Error)]
#[error("this inlet reads a core subscription, not JetStream")]
struct NotJetStream;

#[async_trait]
impl Inlet for NatsInlet {
    async fn pull(&mut self, update: &Update) -> Result<Pull, BoxError> {
        self.check()?;
        Ok(match self.read {
            NatsRead::Subscribe { .. } => self.pull_core(update).await?,
            NatsRead::JetStream { .. } => self.pull_jetstream(update).await?,
        })
    }

    async fn commit(&mut self, update: &Update) -> Result<(), BoxError> {
        match self.unsettled.take(update) {
            Some(Taken::JetStream(messages)) => Ok(self.settle(messages, AckKind::Ack).await?),
            Some(Taken::Core(_)) | None => Ok(()),
        }
    }

    async fn rollback(&mut self, update: &Update) -> Result<(), BoxError> {
        match self.unsettled.take(update) {
            Some(taken) => Ok(self.release(taken).await?),
            None => Ok(()),
        }
    }

    async fn on_start(&mut self) -> Result<(), BoxError> {
        self.check()?;
        match self.read.clone() {
            NatsRead::Subscribe {
                queue_group,
                buffer,
            } => {
                self.subscribe(queue_group, buffer).await?;
            }
            NatsRead::JetStream { .. } => {
                self.consumer().await?;
            }
        }
        Ok(())
    }

    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        let mut first_error = None;
        for taken in self.unsettled.drain() {
            if let Err(e) = self.release(taken).await {
                first_error.get_or_insert(e);
            }
        }
        self.subscription = None;
        self.consumer = None;
        if let Some(client) = self.client.take() {
            let _ = client.flush().await;
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}
