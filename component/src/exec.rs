//! Child processes for the `exec` inlet and outlet, and for any plugin that
//! talks to a program over its standard streams: the `command` option (an
//! argument list, or one string through `sh -c` when asked), its
//! environment and working directory, the child's stderr sent to the log
//! line by line (never mixed into data), bounded line reading, and errors
//! that name the command.
//!
//! ```
//! use databay_component::exec::{CommandLine, CommandSpec};
//! use databay_component::testing::context;
//!
//! let spec = CommandSpec::from_options(
//!     &context(),
//!     CommandLine::Args(vec!["python3".into(), "-u".into(), "script.py".into()]),
//!     false,
//!     Default::default(),
//!     None,
//! )
//! .unwrap();
//! assert_eq!(spec.to_string(), "python3 -u script.py");
//!
//! let err = CommandSpec::from_options(&context(), CommandLine::Shell("ls | wc -l".into()), false, Default::default(), None);
//! assert!(err.unwrap_err().to_string().contains("shell = true"));
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::{BuildContext, OptionError, Secret};

/// How many of the child's last stderr lines an error quotes.
pub const STDERR_TAIL_LINES: usize = 10;

/// The longest line read from a child (16 MiB). A longer one is an error,
/// so a child that never prints a newline cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// How long, after the child's stdout closed, its stderr may take to close
/// too before an error is reported with the lines seen so far (a
/// background grandchild can hold stderr open).
const STDERR_GRACE: Duration = Duration::from_secs(1);

/// The `command` option as written: `["python3", "-u", "script.py"]`, or
/// one string (`"ls | wc -l"`), which runs through `sh -c` only with
/// `shell = true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// A program and its arguments, run directly (no shell).
    Args(Vec<String>),
    /// A shell command line.
    Shell(String),
}

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CommandVisitor;
        impl<'de> Visitor<'de> for CommandVisitor {
            type Value = CommandLine;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an argument list such as [\"python3\", \"-u\", \"script.py\"], or one string with `shell = true`",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CommandLine, E> {
                Ok(CommandLine::Shell(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CommandLine, A::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    args.push(arg);
                }
                Ok(CommandLine::Args(args))
            }
        }
        d.deserialize_any(CommandVisitor)
    }
}

/// A command ready to run: program, arguments, extra environment and
/// working directory. `Display` shows it as a person would type it; the
/// environment's values (often tokens) are never shown.
#[derive(Clone)]
pub struct CommandSpec {
    program: String,
    args: Vec<String>,
    env: Vec<(String, Secret<String>)>,
    working_dir: Option<PathBuf>,
    link: Option<String>,
}

impl CommandSpec {
    /// `program` with `args`, run directly, in the current directory.
    pub fn new<I, S>(program: impl Into<String>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CommandSpec {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            working_dir: None,
            link: None,
        }
    }

    /// `script` run by `sh -c`.
    pub fn shell(script: impl Into<String>) -> Self {
        Self::new("sh", ["-c".to_owned(), script.into()])
    }

    /// Adds a variable to the environment the child inherits.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), Secret::new(value.into())));
        self
    }

    /// Runs the child in `dir`. A program given as a relative path with a
    /// `/` (`./script.sh`) is found there too.
    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    /// Names the link in the child's stderr log lines.
    pub fn link(mut self, link: impl Into<String>) -> Self {
        self.link = Some(link.into());
        self
    }

    /// The spec from the options every exec component shares, each
    /// mistake an error about its option. `working_dir` is relative to the
    /// config file's directory, which is also the default.
    pub fn from_options(
        cx: &BuildContext,
        command: CommandLine,
        shell: bool,
        env: BTreeMap<String, Secret<String>>,
        working_dir: Option<PathBuf>,
    ) -> Result<Self, OptionError> {
        let mut spec = match (command, shell) {
            (CommandLine::Args(args), false) => {
                let mut args = args.into_iter();
                let program = args.next().ok_or_else(|| {
                    OptionError::new(
                        "command",
                        "must name a program, e.g. [\"python3\", \"-u\", \"script.py\"]",
                    )
                })?;
                if program.is_empty() {
                    return Err(OptionError::new(
                        "command",
                        "the program (the first element) must not be empty",
                    ));
                }
                CommandSpec::new(program, args)
            }
            (CommandLine::Args(_), true) => {
                return Err(OptionError::new(
                    "command",
                    "with `shell = true` the command is one string for `sh -c`, e.g. \"ls | wc -l\"",
                ));
            }
            (CommandLine::Shell(_), false) => {
                return Err(OptionError::new(
                    "command",
                    "a string runs through `sh -c` only with `shell = true`; otherwise write an argument list such as [\"python3\", \"-u\", \"script.py\"]",
                ));
            }
            (CommandLine::Shell(script), true) => {
                if script.trim().is_empty() {
                    return Err(OptionError::new("command", "must not be empty"));
                }
                CommandSpec::shell(script)
            }
        };
        for (key, value) in env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(OptionError::new(
                    "env",
                    format!("{key:?} is not a variable name (it must be non-empty, without `=`)"),
                ));
            }
            if value.expose().contains('\0') {
                return Err(OptionError::new(
                    "env",
                    format!("the value of `{key}` contains a NUL byte"),
                ));
            }
            spec.env.push((key, value));
        }
        let dir = match working_dir {
            Some(dir) => cx.path("working_dir", &dir)?,
            None => cx.base_dir.clone(),
        };
        Ok(spec.working_dir(dir).link(cx.link.clone()))
    }

    /// The program, as it will be run.
    fn program(&self) -> PathBuf {
        let program = Path::new(&self.program);
        match &self.working_dir {
            Some(dir) if program.is_relative() && self.program.contains('/') => dir.join(program),
            _ => program.to_path_buf(),
        }
    }

    /// Starts the child, its stdin and stdout piped as asked (otherwise
    /// `/dev/null`), its stderr sent to the log. The child is killed if
    /// the returned [`Running`] is dropped.
    pub fn spawn(&self, stdin: bool, stdout: bool) -> Result<Running, ExecError> {
        let pipe = |yes: bool| if yes { Stdio::piped() } else { Stdio::null() };
        let mut command = Command::new(self.program());
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v.expose())))
            .stdin(pipe(stdin))
            .stdout(pipe(stdout))
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(|source| ExecError::Spawn {
            command: self.to_string(),
            source,
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(BufReader::new);
        let stderr = StderrLog::start(child.stderr.take(), self.to_string(), self.link.clone());
        Ok(Running {
            child,
            stdin,
            stdout,
            stderr,
            command: self.to_string(),
        })
    }
}

impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, word) in std::iter::once(&self.program).chain(&self.args).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                f.write_str(word)?;
            } else {
                write!(f, "{word:?}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandSpec")
            .field("command", &self.to_string())
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("working_dir", &self.working_dir)
            .finish()
    }
}

/// A started child and its pipes.
#[derive(Debug)]
pub struct Running {
    /// The process.
    pub child: Child,
    /// Its stdin, when piped.
    pub stdin: Option<ChildStdin>,
    /// Its stdout, when piped.
    pub stdout: Option<BufReader<ChildStdout>>,
    /// Its stderr, being logged.
    pub stderr: StderrLog,
    /// The command, for error messages.
    pub command: String,
}

impl Running {
    /// Kills the child and waits for it, so it leaves no zombie.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits for the child to exit (bounded by `within`, then killed) and
    /// says how it ended: `Ok` for exit status 0, else an
    /// [`ExecError::Exited`] quoting its last stderr lines.
    pub async fn finish(&mut self, within: Duration) -> Result<(), ExecError> {
        let status = self.wait_within(within).await?;
        self.exit_result(status).await
    }

    /// For a child that stopped talking while it was still needed: waits
    /// for it to exit (bounded by `within`, then killed) and describes how
    /// it ended, whatever its status.
    pub async fn ended(&mut self, within: Duration) -> ExecError {
        match self.wait_within(within).await {
            Ok(status) => {
                self.stderr.closed(STDERR_GRACE).await;
                ExecError::Exited {
                    command: self.command.clone(),
                    status,
                    stderr: self.stderr.tail(),
                }
            }
            Err(e) => e,
        }
    }

    async fn wait_within(&mut self, within: Duration) -> Result<ExitStatus, ExecError> {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(source)) => Err(ExecError::Io {
                command: self.command.clone(),
                action: "wait for",
                source,
            }),
            Err(_) => {
                self.kill().await;
                Err(ExecError::Timeout {
                    command: self.command.clone(),
                    after: within,
                    waiting: "exit",
                })
            }
        }
    }

    /// `Ok` for a successful `status`, else the error naming it, with the
    /// child's last stderr lines once stderr has closed (or a moment after).
    pub async fn exit_result(&mut self, status: ExitStatus) -> Result<(), ExecError> {
        if status.success() {
            return Ok(());
        }
        self.stderr.closed(STDERR_GRACE).await;
        Err(ExecError::Exited {
            command: self.command.clone(),
            status,
            stderr: self.stderr.tail(),
        })
    }
}

/// The child's stderr, read line by line into the log (`tracing`, level
/// `warn`, target `databay::exec`, with the command and link as fields),
/// keeping the last [`STDERR_TAIL_LINES`] for error messages.
#[derive(Debug)]
pub struct StderrLog {
    tail: Arc<Mutex<VecDeque<String>>>,
    task: Option<JoinHandle<()>>,
}

impl StderrLog {
    fn start(
        stderr: Option<tokio::process::ChildStderr>,
        command: String,
        link: Option<String>,
    ) -> Self {
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let task = stderr.map(|stderr| {
            let tail = tail.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stderr);
                let mut buf = Vec::new();
                let link = link.as_deref().unwrap_or("");
                while let Ok(read) = read_line(&mut reader, &mut buf, MAX_LINE_BYTES).await {
                    let line = match read {
                        LineRead::Eof => break,
                        LineRead::Line => String::from_utf8_lossy(&buf).into_owned(),
                        LineRead::TooLong => format!("(a line longer than {MAX_LINE_BYTES} bytes)"),
                    };
                    tracing::warn!(target: "databay::exec", command = %command, link, "stderr: {line}");
                    if let Ok(mut tail) = tail.lock() {
                        if tail.len() == STDERR_TAIL_LINES {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                }
            })
        });
        StderrLog { tail, task }
    }

    /// Waits (at most `within`) until the child's stderr has closed, so
    /// [`tail`](Self::tail) holds its last lines.
    pub async fn closed(&mut self, within: Duration) {
        if let Some(task) = &mut self.task
            && tokio::time::timeout(within, task).await.is_ok()
        {
            self.task = None;
        }
    }

    /// The last stderr lines, joined by ` | ` (empty when there were none).
    pub fn tail(&self) -> String {
        match self.tail.lock() {
            Ok(tail) => tail
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" | "),
            Err(_) => String::new(),
        }
    }
}

impl Drop for StderrLog {
    fn drop(&mut self) {
        // A killed child's grandchildren may keep stderr open; stop logging.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What [`read_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRead {
    /// A line, now in the buffer without its `\n` or `\r\n` (a last line
    /// without a newline counts too).
    Line,
    /// The end of the stream.
    Eof,
    /// A line longer than the limit; it was skipped up to its newline.
    TooLong,
}

/// Reads one line into `buf` (cleared first), keeping at most `limit`
/// bytes: a longer line is skipped and reported, not stored.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<LineRead> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => LineRead::TooLong,
                (false, true) => LineRead::Eof,
                (false, false) => LineRead::Line,
            });
        }
        let (chunk, used, end) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        if !too_long && buf.len() + chunk.len() > limit {
            too_long = true;
            buf.clear();
        }
        if !too_long {
            buf.extend_from_slice(chunk);
        }
        reader.consume(used);
        if end {
            if too_long {
                return Ok(LineRead::TooLong);
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(LineRead::Line);
        }
    }
}

/// What went wrong running a command. Every variant names the command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The program could not be started (not found, not executable).
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// The child exited unsuccessfully, or while it was still needed.
    #[error("`{command}` exited with {status}{}", stderr_suffix(.stderr))]
    Exited {
        /// The command.
        command: String,
        /// Its exit status (a code, or the signal that ended it).
        status: ExitStatus,
        /// Its last stderr lines, joined by ` | `.
        stderr: String,
    },
    /// The child took too long; it was killed.
    #[error("`{command}` did not {waiting} within {}; it was killed", humantime::format_duration(*.after))]
    Timeout {
        /// The command.
        command: String,
        /// The time allowed.
        after: Duration,
        /// What it did not do in time: `finish`, `acknowledge the batch`, ...
        waiting: &'static str,
    },
    /// Talking to the child failed.
    #[error("cannot {action} `{command}`: {source}")]
    Io {
        /// The command.
        command: String,
        /// What was being done: `read the stdout of`, `write to the stdin of`, ...
        action: &'static str,
        /// The I/O error.
        source: io::Error,
    },
    /// A stdout line is not valid JSON.
    #[error("`{command}` printed invalid JSON on stdout line {line}: {message}")]
    Json {
        /// The command.
        command: String,
        /// The 1-based line of this run's stdout.
        line: u64,
        /// What the parser objected to, and where in the line.
        message: String,
    },
    /// A stdout line is not valid UTF-8.
    #[error("`{command}` printed invalid UTF-8 on stdout line {line}")]
    Utf8 {
        /// The command.
        command: String,
        /// The 1-based line of this run's stdout.
        line: u64,
    },
    /// A stdout line is longer than [`MAX_LINE_BYTES`].
    #[error("`{command}` printed a line longer than {MAX_LINE_BYTES} bytes on stdout line {line}")]
    LineTooLong {
        /// The command.
        command: String,
        /// The 1-based line of this run's stdout.
        line: u64,
    },
    /// The child answered a batch with `{"ok": false, "error": ...}`.
    #[error("`{command}` refused the batch of {records} records: {error}")]
    Refused {
        /// The command.
        command: String,
        /// How many records the batch held.
        records: usize,
        /// The child's own error message.
        error: String,
    },
    /// The child answered a batch with something other than an
    /// acknowledgement.
    #[error(
        "`{command}` answered the batch with {reply:?}, not {{\"ok\": true}} or {{\"ok\": false, \"error\": \"...\"}}; it is restarted on the next push"
    )]
    BadAck {
        /// The command.
        command: String,
        /// Its reply, cut to 200 characters.
        reply: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; its last stderr lines: {stderr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> BuildContext {
        BuildContext::new("l", "/etc/databay")
    }

    fn args(words: &[&str]) -> CommandLine {
        CommandLine::Args(words.iter().map(|w| w.to_string()).collect())
    }

    #[test]
    fn options_errors_name_their_option() {
        let none = BTreeMap::new();
        let err = |c, shell| {
            CommandSpec::from_options(&cx(), c, shell, BTreeMap::new(), None)
                .unwrap_err()
                .to_string()
        };
        assert!(err(args(&[]), false).starts_with("option `command`: must name a program"));
        assert!(err(args(&[""]), false).contains("must not be empty"));
        assert!(err(args(&["ls"]), true).contains("one string for `sh -c`"));
        assert!(err(CommandLine::Shell("ls".into()), false).contains("only with `shell = true`"));
        assert!(err(CommandLine::Shell(" ".into()), true).contains("must not be empty"));
        let mut env = BTreeMap::new();
        env.insert("A=B".to_owned(), Secret::new("x".to_owned()));
        let e = CommandSpec::from_options(&cx(), args(&["ls"]), false, env, None).unwrap_err();
        assert_eq!(e.option, "env");
        let e = CommandSpec::from_options(&cx(), args(&["ls"]), false, none, Some("".into()))
            .unwrap_err();
        assert_eq!(e.option, "working_dir");
    }

    #[test]
    fn display_quotes_words_a_shell_would_split_and_hides_env_values() {
        let spec = CommandSpec::shell("echo 'hi there'").env("TOKEN", "hunter2");
        assert_eq!(spec.to_string(), "sh -c \"echo 'hi there'\"");
        assert!(!format!("{spec:?}").contains("hunter2"));
        assert!(format!("{spec:?}").contains("TOKEN"));
    }

    #[test]
    fn relative_programs_with_a_slash_are_found_in_the_working_dir() {
        let spec = CommandSpec::new("./run.sh", Vec::<String>::new()).working_dir("/srv");
        assert_eq!(spec.program(), Path::new("/srv/./run.sh"));
        let spec = CommandSpec::new("python3", Vec::<String>::new()).working_dir("/srv");
        assert_eq!(spec.program(), Path::new("python3"));
    }

    #[test]
    fn command_deserializes_from_a_list_or_a_string() {
        #[derive(Deserialize)]
        struct O {
            command: CommandLine,
        }
        let o: O = toml::from_str("command = [\"a\", \"b\"]").unwrap();
        assert_eq!(o.command, args(&["a", "b"]));
        let o: O = toml::from_str("command = \"a | b\"").unwrap();
        assert_eq!(o.command, CommandLine::Shell("a | b".into()));
        let e = toml::from_str::<O>("command = 3")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("an argument list such as"), "{e}");
    }

    #[tokio::test]
    async fn read_line_caps_lines_and_strips_line_ends() {
        let mut input: &[u8] = b"one\r\ntoolongline\nlast";
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut input, &mut buf, 5).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(buf, b"one");
        assert_eq!(
            read_line(&mut input, &mut buf, 5).await.unwrap(),
            LineRead::TooLong
        );
        assert_eq!(
            read_line(&mut input, &mut buf, 5).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(buf, b"last");
        assert_eq!(
            read_line(&mut input, &mut buf, 5).await.unwrap(),
            LineRead::Eof
        );
    }

    #[tokio::test]
    async fn a_failing_child_is_reported_with_its_status_and_stderr() {
        let mut running = CommandSpec::shell("echo oops >&2; exit 3")
            .spawn(false, false)
            .unwrap();
        let err = running.finish(Duration::from_secs(30)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "`sh -c \"echo oops >&2; exit 3\"` exited with exit status: 3; its last stderr lines: oops"
        );
    }

    /// Collects what a tracing subscriber writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// One global subscriber for the tests of this binary, writing into a
    /// buffer: a thread-local one races with the other tests' threads over
    /// tracing's cached call-site interest.
    fn captured_logs() -> Capture {
        static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                let capture = Capture::default();
                let writer = capture.clone();
                let subscriber = tracing_subscriber::fmt()
                    .with_writer(move || writer.clone())
                    .with_ansi(false)
                    .finish();
                tracing::subscriber::set_global_default(subscriber)
                    .expect("no other global subscriber in these tests");
                capture
            })
            .clone()
    }

    #[tokio::test]
    async fn stderr_goes_to_the_log_line_by_line_with_command_and_link() {
        let capture = captured_logs();
        let mut running = CommandSpec::shell("echo one >&2; echo '{\"two\": 2}' >&2")
            .link("sensors")
            .spawn(false, false)
            .unwrap();
        running.finish(Duration::from_secs(30)).await.unwrap();
        running.stderr.closed(Duration::from_secs(30)).await;
        let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("\"sensors\"")).collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(
            lines[0].contains("WARN databay::exec: stderr: one"),
            "{log}"
        );
        assert!(lines[1].contains("stderr: {\"two\": 2}"), "{log}");
        assert!(lines[1].contains("link=\"sensors\""), "{log}");
        assert!(lines[1].contains("command=sh -c"), "{log}");
        assert_eq!(running.stderr.tail(), "one | {\"two\": 2}");
    }
}
