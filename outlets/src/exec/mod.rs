//! [`ExecOutlet`]: writes records as JSON lines to the stdin of a
//! long-running command and, for durability, waits for the command to
//! acknowledge each batch on its stdout. With the `exec` inlet this is
//! databay's out-of-process plugin protocol, open to any language.
//!
#![doc = include_str!("README.md")]

use std::time::Duration;

use databay_component::exec::{CommandSpec, ExecError, LineRead, Running, read_line};
use databay_core::{BoxError, Outlet, Record, Update, async_trait};
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

/// A documented config table for this outlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::ExecOutletOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// The longest acknowledgement line read: an ack is a small object.
const MAX_ACK_BYTES: usize = 64 * 1024;

/// Writes each batch to a long-running command's stdin, one JSON line per
/// record and a blank line after the batch, and (with [`ack`](Self::ack),
/// the default) returns only once the command answered the batch with
/// `{"ok": true}` on its stdout.
///
/// - The command starts in `on_start` (or on the first push) and runs
///   until `on_shutdown`, which closes its stdin and waits for it to exit
///   (killing it after the ack timeout).
/// - `{"ok": false, "error": "..."}` fails the push with the command's
///   message; the command keeps running.
/// - A command that exits, answers something else, or does not answer
///   within the [`ack_timeout`](Self::ack_timeout) fails the push (it is
///   killed if still running) and is started again on the next push, so
///   the failed batch is retried by the link, never silently lost. A push
///   cut short by the link's own timeout also restarts it.
/// - With `ack(false)` the push returns once the batch is written to the
///   pipe: fire-and-forget, **not durable** (records the command had not
///   processed when it died are lost).
///
/// The command's stderr goes to the log line by line (`tracing`, target
/// `databay::exec`).
#[derive(Debug)]
pub struct ExecOutlet {
    command: CommandSpec,
    ack: bool,
    ack_timeout: Duration,
    metadata: bool,
    child: Option<Child>,
}

#[derive(Debug)]
struct Child {
    running: Running,
    /// A batch was written and its acknowledgement not read: the
    /// conversation is out of step, so the next push restarts the command.
    in_flight: bool,
}

impl ExecOutlet {
    /// Writes to `command`, waiting for an acknowledgement of each batch
    /// for at most 30 seconds, payloads only.
    pub fn new(command: CommandSpec) -> Self {
        ExecOutlet {
            command,
            ack: true,
            ack_timeout: Duration::from_secs(30),
            metadata: false,
            child: None,
        }
    }

    /// Wait for the command to acknowledge each batch (default `true`);
    /// `false` is fire-and-forget and not durable.
    pub fn ack(mut self, ack: bool) -> Self {
        self.ack = ack;
        self
    }

    /// How long to wait for a batch's acknowledgement, for the command to
    /// read a batch (with or without `ack`), and on shutdown for it to exit
    /// (default 30 s).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// Write `{"payload": ..., "metadata": {...}}` per record instead of
    /// the payload alone (default `false`).
    pub fn metadata(mut self, metadata: bool) -> Self {
        self.metadata = metadata;
        self
    }

    /// The command run.
    pub fn command(&self) -> &CommandSpec {
        &self.command
    }

    fn start(&mut self) -> Result<&mut Child, ExecError> {
        let running = self.command.spawn(true, self.ack)?;
        Ok(self.child.insert(Child {
            running,
            in_flight: false,
        }))
    }

    /// The running command, started (again) if it is not running or out
    /// of step.
    async fn ready(&mut self) -> Result<&mut Child, ExecError> {
        if let Some(child) = &mut self.child {
            let alive = matches!(child.running.child.try_wait(), Ok(None));
            if !alive || child.in_flight {
                let why = if alive {
                    "its last batch was not acknowledged"
                } else {
                    "it has exited"
                };
                tracing::warn!(target: "databay::exec", command = %self.command, "restarting the command: {why}");
                child.running.kill().await;
                self.child = None;
            }
        }
        match self.child {
            Some(ref mut child) => Ok(child),
            None => self.start(),
        }
    }

    fn encode(&self, records: &[Record]) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(records.len() * 64 + 1);
        for record in records {
            if self.metadata {
                let metadata: Map<String, Value> = record
                    .metadata()
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.clone()))
                    .collect();
                let line = serde_json::json!({"payload": &record.payload, "metadata": metadata});
                serde_json::to_writer(&mut out, &line)?;
            } else {
                serde_json::to_writer(&mut out, &record.payload)?;
            }
            out.push(b'\n');
        }
        // A blank line ends the batch: compact JSON never contains one.
        out.push(b'\n');
        Ok(out)
    }

    async fn send(&mut self, records: &[Record]) -> Result<(), BoxError> {
        let batch = self.encode(records)?;
        let (ack, ack_timeout) = (self.ack, self.ack_timeout);
        let child = self.ready().await?;
        child.in_flight = true;
        let running = &mut child.running;
        let command = running.command.clone();
        let write = async {
            match running.stdin.as_mut() {
                Some(stdin) => match stdin.write_all(&batch).await {
                    Ok(()) => stdin.flush().await,
                    Err(e) => Err(e),
                },
                None => Err(std::io::Error::other("its stdin is closed")),
            }
        };
        // A command that stops reading would block a large batch forever.
        let Ok(written) = tokio::time::timeout(ack_timeout, write).await else {
            running.kill().await;
            return Err(ExecError::Timeout {
                command,
                after: ack_timeout,
                waiting: "read the batch",
            }
            .into());
        };
        if let Err(source) = written {
            // Most often the command has died: say how.
            return Err(match running.ended(Duration::from_secs(1)).await {
                ExecError::Timeout { .. } => ExecError::Io {
                    command,
                    action: "write the batch to the stdin of",
                    source,
                },
                died => died,
            }
            .into());
        }
        let sent = batch.len() as u64;
        if !ack {
            child.in_flight = false;
            databay_core::bytes::add(sent);
            return Ok(());
        }
        let answer = match running.stdout.as_mut() {
            Some(stdout) => {
                let mut buf = Vec::new();
                let read =
                    tokio::time::timeout(ack_timeout, read_line(stdout, &mut buf, MAX_ACK_BYTES))
                        .await;
                match read {
                    Err(_) => {
                        running.kill().await;
                        return Err(ExecError::Timeout {
                            command,
                            after: ack_timeout,
                            waiting: "acknowledge the batch",
                        }
                        .into());
                    }
                    Ok(Err(source)) => {
                        return Err(ExecError::Io {
                            command,
                            action: "read the acknowledgement of",
                            source,
                        }
                        .into());
                    }
                    Ok(Ok(LineRead::Eof)) => None,
                    Ok(Ok(LineRead::TooLong)) => {
                        Some(Err("(a line too long to be one)".to_owned()))
                    }
                    Ok(Ok(LineRead::Line)) => Some(Ok(buf)),
                }
            }
            None => None,
        };
        let reply = match answer {
            // stdout closed before an answer: the command is exiting.
            None => return Err(running.ended(ack_timeout).await.into()),
            Some(Err(reply)) => return Err(ExecError::BadAck { command, reply }.into()),
            Some(Ok(bytes)) => bytes,
        };
        match parse_ack(&reply) {
            Some(Ok(())) => {
                child.in_flight = false;
                databay_core::bytes::add(sent);
                Ok(())
            }
            Some(Err(error)) => {
                child.in_flight = false;
                Err(ExecError::Refused {
                    command,
                    records: records.len(),
                    error,
                }
                .into())
            }
            None => {
                let reply: String = String::from_utf8_lossy(&reply).chars().take(200).collect();
                Err(ExecError::BadAck { command, reply }.into())
            }
        }
    }
}

/// `{"ok": true}` is `Ok`, `{"ok": false, "error": "..."}` the error;
/// anything else `None`.
fn parse_ack(line: &[u8]) -> Option<Result<(), String>> {
    let Value::Object(reply) = serde_json::from_slice(line).ok()? else {
        return None;
    };
    match reply.get("ok")? {
        Value::Bool(true) => Some(Ok(())),
        Value::Bool(false) => Some(Err(match reply.get("error") {
            Some(Value::String(e)) => e.clone(),
            Some(other) => other.to_string(),
            None => "(no error message given)".to_owned(),
        })),
        _ => None,
    }
}

#[async_trait]
impl Outlet for ExecOutlet {
    /// Writes the batch and, with `ack`, waits for its acknowledgement. An
    /// empty batch writes nothing.
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        if records.is_empty() {
            return Ok(());
        }
        self.send(records).await
    }

    /// Starts the command; failing to start it is an error.
    async fn on_start(&mut self) -> Result<(), BoxError> {
        if self.child.is_none() {
            self.start()?;
        }
        Ok(())
    }

    /// Closes the command's stdin and waits for it to exit (at most the
    /// ack timeout, then kills it). A failed exit is logged.
    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        if let Some(mut child) = self.child.take() {
            drop(child.running.stdin.take());
            if let Err(e) = child.running.finish(self.ack_timeout).await {
                tracing::warn!(target: "databay::exec", command = %self.command, "on shutdown: {e}");
            }
        }
        Ok(())
    }
}
