//! [`PrintOutlet`]: prints every record, one per line, to stdout (or to any
//! writer), as Databay's `PrintOutlet` does.
//!
#![doc = include_str!("README.md")]

use std::fmt;
use std::io::{self, BufWriter, Write};

use databay_core::{BoxError, Outlet, Record, Update, async_trait};

/// A documented config table for this outlet, every option with its default
/// (what `databay plugins` prints).
pub const SAMPLE: &str = include_str!("sample.toml");

mod options;
pub use options::PrintOptions;
pub(crate) use options::register;
#[cfg(test)]
mod tests;

/// Prints every record of a batch on its own line.
///
/// Lines read `{update} {record}`, e.g.
/// `weather.3 Record(payload={"temp":21}, metadata={"__inlet__": "http"})`.
/// [`only_payload`](Self::only_payload) prints the payload as compact JSON
/// instead of the whole record; [`skip_update`](Self::skip_update) drops the
/// `{update} ` prefix.
///
/// A batch is written through one buffered writer and flushed at its end, so
/// a batch costs a few system calls rather than one per record. A write
/// error (a closed pipe, a full disk) fails the push; it never panics.
///
/// Writing happens on the calling task: printing is for development and
/// demos, where a terminal or a pipe keeps up, and records are borrowed, so
/// moving the work to a blocking thread would mean copying the batch.
///
/// ```
/// use databay_core::{Outlet, Record, Update};
/// use databay_outlets::PrintOutlet;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut outlet = PrintOutlet::new().only_payload(true);
/// // Prints `demo.0 {"id":1}`
/// outlet
///     .push(&[Record::new(serde_json::json!({"id": 1}))], &Update::new(["demo"], 0))
///     .await
///     .unwrap();
/// # }
/// ```
pub struct PrintOutlet {
    only_payload: bool,
    skip_update: bool,
    target: Target,
}

enum Target {
    Stdout,
    Writer(Box<dyn Write + Send>),
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Stdout => "stdout",
            Target::Writer(_) => "its writer",
        }
    }
}

/// A batch could not be printed.
#[derive(Debug, thiserror::Error)]
#[error("PrintOutlet cannot print records to {target}: {source}")]
pub struct PrintOutletError {
    /// `stdout`, or `its writer` for [`PrintOutlet::to_writer`].
    pub target: &'static str,
    /// The underlying error, e.g. a broken pipe.
    #[source]
    pub source: io::Error,
}

impl PrintOutlet {
    /// Prints whole records with the update prefix to stdout.
    pub fn new() -> Self {
        PrintOutlet {
            only_payload: false,
            skip_update: false,
            target: Target::Stdout,
        }
    }

    /// Prints to `writer` instead of stdout (a file, a socket, a buffer in a
    /// test). The writer is flushed at the end of every batch.
    pub fn to_writer(writer: impl Write + Send + 'static) -> Self {
        PrintOutlet {
            target: Target::Writer(Box::new(writer)),
            ..PrintOutlet::new()
        }
    }

    /// Print only each record's payload, as JSON (default `false`).
    pub fn only_payload(mut self, yes: bool) -> Self {
        self.only_payload = yes;
        self
    }

    /// Leave out the `{update} ` prefix (default `false`).
    pub fn skip_update(mut self, yes: bool) -> Self {
        self.skip_update = yes;
        self
    }
}

fn write_batch<W: Write>(
    out: W,
    only_payload: bool,
    skip_update: bool,
    records: &[Record],
    update: &Update,
) -> io::Result<()> {
    let mut out = BufWriter::new(out);
    for record in records {
        let body: &dyn fmt::Display = if only_payload {
            &record.payload
        } else {
            record
        };
        if skip_update {
            writeln!(out, "{body}")?;
        } else {
            writeln!(out, "{update} {body}")?;
        }
    }
    out.flush()
}

impl Default for PrintOutlet {
    fn default() -> Self {
        PrintOutlet::new()
    }
}

impl fmt::Debug for PrintOutlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrintOutlet")
            .field("only_payload", &self.only_payload)
            .field("skip_update", &self.skip_update)
            .field("target", &self.target.name())
            .finish()
    }
}

#[async_trait]
impl Outlet for PrintOutlet {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        if records.is_empty() {
            return Ok(());
        }
        let (only_payload, skip_update) = (self.only_payload, self.skip_update);
        let written = match &mut self.target {
            // One lock per batch keeps the lines of concurrent printers whole.
            Target::Stdout => write_batch(
                io::stdout().lock(),
                only_payload,
                skip_update,
                records,
                update,
            ),
            Target::Writer(w) => write_batch(w, only_payload, skip_update, records, update),
        };
        written.map_err(|source| {
            PrintOutletError {
                target: self.target.name(),
                source,
            }
            .into()
        })
    }
}
