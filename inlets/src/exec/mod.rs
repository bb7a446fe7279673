//! [`ExecInlet`]: runs a command and reads records from its stdout, one
//! JSON value (or text line) per line: once per transfer until it exits
//! (scheduled), or from one long-running process (streaming). With the
//! `exec` outlet this is databay's out-of-process plugin protocol, open to
//! any language (see the README).

use std::time::Duration;

use databay_component::exec::{
    CommandSpec, ExecError, LineRead, MAX_LINE_BYTES, Running, read_line,
};
use databay_core::{BoxError, Inlet, Pull, Record, Update, async_trait};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// A documented config table for this inlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub(crate) use options::register;
pub use options::{ExecInletOptions, ExecLineFormat, ExecRunMode};
#[cfg(test)]
mod tests;

/// How long a killed streaming child may take to be reaped on shutdown.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// When an [`ExecInlet`] runs its command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ExecMode {
    /// Once per pull: every stdout line until the command exits is that
    /// pull's records, delivered only if it exits with status 0.
    #[default]
    Scheduled,
    /// One process started in `on_start` and kept running; each pull takes
    /// the lines that arrived since the last one.
    Streaming,
}

/// How an [`ExecInlet`] reads a stdout line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LineFormat {
    /// Each line is one JSON value, the record's payload; blank lines are
    /// skipped.
    #[default]
    Json,
    /// Each line is the payload as a JSON string (blank lines included).
    Text,
}

/// Runs a command and makes records of its stdout lines.
///
/// - **Scheduled** (default): every pull runs the command with stdin from
///   `/dev/null` and reads its stdout until it closes. If the command exits
///   with status 0 its lines are the pull's records; a non-zero status, a
///   bad line or the [`timeout`](Self::timeout) is an error naming the
///   command (with its status and last stderr lines), and nothing of that
///   run is delivered. A bad line, or the timeout, kills the child.
/// - **Streaming**: `on_start` starts the command and keeps it running.
///   Lines are read as they arrive into a buffer of
///   [`buffer_lines`](Self::buffer_lines); when it is full the inlet stops
///   reading, so the child blocks on its next write rather than losing
///   lines. Each pull takes at most [`max_lines`](Self::max_lines). A bad
///   line is reported by the pull that reaches it (after the good lines
///   before it are delivered) and skipped. When the child exits, the pull
///   that reaches the end reports a non-zero status as an error, and the
///   next pull starts the command again. `on_shutdown` kills it.
///
/// The child's stderr goes to the log line by line (`tracing`, target
/// `databay::exec`), never into records.
///
/// ```
/// use databay_component::exec::CommandSpec;
/// use databay_core::{Inlet, Update};
/// use databay_inlets::ExecInlet;
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), databay_core::BoxError> {
/// let mut inlet = ExecInlet::new(CommandSpec::shell("echo '{\"id\": 1}'; echo '{\"id\": 2}'"));
/// let pull = inlet.pull(&Update::new(["exec"], 0)).await?;
/// assert_eq!(pull.records()[1].payload, json!({"id": 2}));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ExecInlet {
    command: CommandSpec,
    mode: ExecMode,
    format: LineFormat,
    timeout: Option<Duration>,
    max_lines: usize,
    buffer_lines: usize,
    /// Streaming: the running child's reader, between start and its exit.
    stream: Option<Stream>,
    /// Streaming: a problem met after the records a pull delivered, for
    /// the next pull to report.
    pending: Option<ExecError>,
}

impl ExecInlet {
    /// Runs `command` once per pull, reading JSON lines, with no timeout.
    pub fn new(command: CommandSpec) -> Self {
        ExecInlet {
            command,
            mode: ExecMode::Scheduled,
            format: LineFormat::Json,
            timeout: None,
            max_lines: 10_000,
            buffer_lines: 10_000,
            stream: None,
            pending: None,
        }
    }

    /// When the command runs (default [`ExecMode::Scheduled`]).
    pub fn mode(mut self, mode: ExecMode) -> Self {
        self.mode = mode;
        self
    }

    /// How lines are read (default [`LineFormat::Json`]).
    pub fn format(mut self, format: LineFormat) -> Self {
        self.format = format;
        self
    }

    /// Scheduled mode: the longest a run may take; then the child is
    /// killed and the pull fails (default: no limit but the link's own
    /// inlet timeout, which also kills the child).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Streaming mode: at most this many records per pull (default 10 000;
    /// 0 is taken as 1).
    pub fn max_lines(mut self, lines: usize) -> Self {
        self.max_lines = lines.max(1);
        self
    }

    /// Streaming mode: at most this many lines are held between pulls
    /// (default 10 000; 0 is taken as 1); beyond them the child waits.
    pub fn buffer_lines(mut self, lines: usize) -> Self {
        self.buffer_lines = lines.max(1);
        self
    }

    /// The command run.
    pub fn command(&self) -> &CommandSpec {
        &self.command
    }

    async fn run_once(&self) -> Result<Pull, ExecError> {
        let mut running = self.command.spawn(false, true)?;
        let read = read_all(&mut running, self.format);
        let outcome = match self.timeout {
            Some(limit) => match tokio::time::timeout(limit, read).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    running.kill().await;
                    return Err(ExecError::Timeout {
                        command: running.command.clone(),
                        after: limit,
                        waiting: "finish",
                    });
                }
            },
            None => read.await,
        };
        let records = match outcome {
            Ok(records) => records,
            Err(e) => {
                running.kill().await;
                return Err(e);
            }
        };
        // stdout is closed; the child has exited or is about to.
        let status = running.child.wait().await.map_err(|source| ExecError::Io {
            command: running.command.clone(),
            action: "wait for",
            source,
        })?;
        running.exit_result(status).await?;
        Ok(if records.is_empty() {
            Pull::Nothing
        } else {
            Pull::Records(records)
        })
    }

    fn start_stream(&mut self) -> Result<(), ExecError> {
        let running = self.command.spawn(false, true)?;
        let (lines, receiver) = mpsc::channel(self.buffer_lines);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(stream(running, self.format, lines, stopped));
        self.stream = Some(Stream {
            lines: receiver,
            stop: Some(stop),
            task,
        });
        Ok(())
    }

    fn take_lines(&mut self) -> Result<Pull, ExecError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        if self.stream.is_none() {
            self.start_stream()?;
        }
        let mut records = Vec::new();
        let mut problem = None;
        let mut ended = false;
        if let Some(stream) = &mut self.stream {
            while records.len() < self.max_lines {
                match stream.lines.try_recv() {
                    Ok(Line::Value(value, bytes)) => {
                        databay_core::bytes::add(bytes);
                        records.push(Record::new(value));
                    }
                    Ok(Line::Bad(e, bytes)) => {
                        databay_core::bytes::add(bytes);
                        problem = Some(e);
                        break;
                    }
                    Ok(Line::Ended(outcome)) => {
                        problem = outcome.err();
                        ended = true;
                        break;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        ended = true;
                        break;
                    }
                }
            }
        }
        if ended {
            // The next pull starts the command again.
            self.stream = None;
        }
        match problem {
            Some(e) if records.is_empty() => Err(e),
            Some(e) => {
                self.pending = Some(e);
                Ok(Pull::Records(records))
            }
            None if records.is_empty() => Ok(Pull::Nothing),
            None => Ok(Pull::Records(records)),
        }
    }

    async fn stop_stream(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            if let Some(stop) = stream.stop.take() {
                let _ = stop.send(());
            }
            if tokio::time::timeout(SHUTDOWN_WAIT, &mut stream.task)
                .await
                .is_err()
            {
                stream.task.abort();
            }
        }
        self.pending = None;
    }
}

#[async_trait]
impl Inlet for ExecInlet {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        let pull = match self.mode {
            ExecMode::Scheduled => self.run_once().await?,
            ExecMode::Streaming => self.take_lines()?,
        };
        Ok(pull)
    }

    /// Streaming mode: starts the command; failing to start it is an
    /// error. Scheduled mode: nothing.
    async fn on_start(&mut self) -> Result<(), BoxError> {
        if self.mode == ExecMode::Streaming && self.stream.is_none() {
            self.start_stream()?;
        }
        Ok(())
    }

    /// Streaming mode: kills the command and waits for it.
    async fn on_shutdown(&mut self) -> Result<(), BoxError> {
        self.stop_stream().await;
        Ok(())
    }
}

/// A streaming child's reader task and what it has read.
#[derive(Debug)]
struct Stream {
    lines: mpsc::Receiver<Line>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// What a streaming reader passes on, with the bytes of the line read
/// (without its line end).
#[derive(Debug)]
enum Line {
    Value(Value, u64),
    Bad(ExecError, u64),
    /// The child exited: `Ok` for status 0.
    Ended(Result<(), ExecError>),
}

/// Reads a scheduled run's stdout to its end.
async fn read_all(running: &mut Running, format: LineFormat) -> Result<Vec<Record>, ExecError> {
    let command = running.command.clone();
    let Some(stdout) = running.stdout.as_mut() else {
        return Ok(Vec::new());
    };
    let mut records = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        let read = read_line(stdout, &mut buf, MAX_LINE_BYTES)
            .await
            .map_err(|source| ExecError::Io {
                command: command.clone(),
                action: "read the stdout of",
                source,
            })?;
        line += 1;
        match read {
            LineRead::Eof => return Ok(records),
            LineRead::TooLong => return Err(ExecError::LineTooLong { command, line }),
            LineRead::Line => {
                databay_core::bytes::add(buf.len() as u64);
                if let Some(value) = parse(format, &buf, &command, line)? {
                    records.push(Record::new(value));
                }
            }
        }
    }
}

/// The streaming reader: passes each line on (waiting while the buffer is
/// full), then how the child ended. Stops, killing the child, when told to
/// or when the inlet is gone.
async fn stream(
    mut running: Running,
    format: LineFormat,
    lines: mpsc::Sender<Line>,
    mut stop: oneshot::Receiver<()>,
) {
    let command = running.command.clone();
    let mut buf = Vec::new();
    let mut line = 0;
    if let Some(mut stdout) = running.stdout.take() {
        loop {
            let read = tokio::select! {
                read = read_line(&mut stdout, &mut buf, MAX_LINE_BYTES) => read,
                _ = &mut stop => {
                    running.kill().await;
                    return;
                }
            };
            line += 1;
            let item = match read {
                Err(source) => Line::Bad(
                    ExecError::Io {
                        command: command.clone(),
                        action: "read the stdout of",
                        source,
                    },
                    0,
                ),
                Ok(LineRead::Eof) => break,
                Ok(LineRead::TooLong) => Line::Bad(
                    ExecError::LineTooLong {
                        command: command.clone(),
                        line,
                    },
                    0,
                ),
                Ok(LineRead::Line) => {
                    let bytes = buf.len() as u64;
                    match parse(format, &buf, &command, line) {
                        Ok(Some(value)) => Line::Value(value, bytes),
                        Ok(None) => continue,
                        Err(e) => Line::Bad(e, bytes),
                    }
                }
            };
            let failed_read = matches!(&item, Line::Bad(ExecError::Io { .. }, _));
            tokio::select! {
                sent = lines.send(item) => if sent.is_err() {
                    running.kill().await;
                    return;
                },
                _ = &mut stop => {
                    running.kill().await;
                    return;
                }
            }
            if failed_read {
                break;
            }
        }
    }
    let ended = tokio::select! {
        status = running.child.wait() => match status {
            Ok(status) => running.exit_result(status).await,
            Err(source) => Err(ExecError::Io { command, action: "wait for", source }),
        },
        _ = &mut stop => {
            running.kill().await;
            return;
        }
    };
    let _ = lines.send(Line::Ended(ended)).await;
}

/// One stdout line as a payload: `None` for a blank line in JSON format.
fn parse(
    format: LineFormat,
    bytes: &[u8],
    command: &str,
    line: u64,
) -> Result<Option<Value>, ExecError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ExecError::Utf8 {
        command: command.to_owned(),
        line,
    })?;
    match format {
        LineFormat::Text => Ok(Some(Value::String(text.to_owned()))),
        LineFormat::Json if text.trim().is_empty() => Ok(None),
        LineFormat::Json => serde_json::from_str(text).map(Some).map_err(|e| {
            // serde_json counts lines within the text; the line is ours.
            let full = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = full.strip_suffix(&suffix).unwrap_or(&full);
            ExecError::Json {
                command: command.to_owned(),
                line,
                message: format!("{message} at column {}", e.column()),
            }
        }),
    }
}
