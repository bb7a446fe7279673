//! Intermediate outlet: a hand-written `FileOutlet` that writes each record's
//! payload as a line of a file chosen by the record's metadata (Databay's
//! "Intermediate Outlet" example).
//!
//! The outlet reads two metadata keys, falling back to defaults given when
//! it is built:
//!
//! - `FileOutlet.FILEPATH`: the file to write to;
//! - `FileOutlet.FILE_MODE`: `"a"` to append, `"w"` to replace the content.
//!
//! The built-in `RandomIntInlet` gets both keys as *global* metadata, which
//! the framework attaches to every record it produces. The example writes a
//! few integers to `random_ints.txt` in the directory given as its argument
//! (by default `databay-examples` under the system's temporary directory),
//! then prints the file's path and content:
//!
//! ```text
//! file: /tmp/databay-examples/random_ints.txt
//! 1
//! 76
//! 52
//! ```
//!
//! Run it with `cargo run --example intermediate_file_outlet [-- DIR]`. It
//! stops by itself after a few seconds, or on Ctrl-C.
//!
//! The `databay-outlets` crate ships a complete `FileOutlet` with the same
//! keys; this one shows how such an outlet is written.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::error::Error;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use databay_core::{
    BoxError, InletHandle, Link, Metadata, Outlet, Planner, Record, Update, async_trait,
};
use databay_inlets::RandomIntInlet;
use serde_json::Value;
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;
use tracing_subscriber::EnvFilter;

/// Writes each record's payload as one line of a text file.
struct FileOutlet {
    default_filepath: PathBuf,
    default_file_mode: String,
}

impl FileOutlet {
    /// Metadata key: the file the record is written to.
    const FILEPATH: &str = "FileOutlet.FILEPATH";
    /// Metadata key: `"a"` (append) or `"w"` (replace the file's content).
    const FILE_MODE: &str = "FileOutlet.FILE_MODE";

    fn new(default_filepath: impl Into<PathBuf>, default_file_mode: &str) -> Self {
        FileOutlet {
            default_filepath: default_filepath.into(),
            default_file_mode: default_file_mode.to_owned(),
        }
    }

    async fn open(path: &Path, mode: &str) -> Result<File, BoxError> {
        let mut options = OpenOptions::new();
        match mode {
            "a" => options.append(true).create(true),
            "w" => options.write(true).truncate(true).create(true),
            other => {
                return Err(format!(
                    "{}: unknown file mode {other:?} (expected \"a\" or \"w\")",
                    Self::FILE_MODE
                )
                .into());
            }
        };
        options
            .open(path)
            .await
            .map_err(|e| format!("cannot open {}: {e}", path.display()).into())
    }
}

#[async_trait]
impl Outlet for FileOutlet {
    async fn push(&mut self, records: &[Record], _update: &Update) -> Result<(), BoxError> {
        // Each file is opened once per push, so `"w"` replaces what earlier
        // pushes wrote without erasing this batch's own earlier lines.
        let mut files: HashMap<PathBuf, File> = HashMap::new();
        for record in records {
            let filepath = record
                .meta(Self::FILEPATH)
                .and_then(Value::as_str)
                .map_or_else(|| self.default_filepath.clone(), PathBuf::from);
            let file_mode = record
                .meta(Self::FILE_MODE)
                .and_then(Value::as_str)
                .unwrap_or(&self.default_file_mode);

            let file = match files.entry(filepath.clone()) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let file = Self::open(e.key(), file_mode).await?;
                    e.insert(file)
                }
            };
            // Like Python's `str(payload)`: strings unquoted, anything else as JSON.
            let line = match &record.payload {
                Value::String(s) => format!("{s}\n"),
                other => format!("{other}\n"),
            };
            file.write_all(line.as_bytes())
                .await
                .map_err(|e| format!("cannot write to {}: {e}", filepath.display()))?;
        }
        // An outlet returns Ok only once its records are durably written.
        for (path, file) in &mut files {
            file.sync_data()
                .await
                .map_err(|e| format!("cannot write to {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    init_tracing();

    let outputs = std::env::args_os().nth(1).map_or_else(
        || std::env::temp_dir().join("databay-examples"),
        PathBuf::from,
    );
    tokio::fs::create_dir_all(&outputs).await?;
    let random_ints = outputs.join("random_ints.txt");
    // Start from an empty file so that it shows this run's records only.
    match tokio::fs::remove_file(&random_ints).await {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }

    let filepath = random_ints
        .to_str()
        .ok_or_else(|| format!("{} is not valid UTF-8", random_ints.display()))?;
    let metadata = Metadata::from_iter([
        (FileOutlet::FILEPATH.to_owned(), Value::from(filepath)),
        (FileOutlet::FILE_MODE.to_owned(), Value::from("a")),
    ]);
    let random_int_inlet = InletHandle::builder(RandomIntInlet::default())
        .metadata(metadata)
        .build();
    let file_outlet = FileOutlet::new(outputs.join("default_output.txt"), "a");

    let link = Link::builder("file_outlet")
        .inlet(random_int_inlet)
        .outlet(file_outlet)
        .every(Duration::from_millis(500))
        .build()?;

    let planner = Planner::new([link])?;
    run_for(&planner, Duration::from_millis(2200)).await?;

    println!("file: {}", random_ints.display());
    print!("{}", tokio::fs::read_to_string(&random_ints).await?);
    Ok(())
}

/// Logs to stderr, so stdout holds only what the example prints. `RUST_LOG`
/// overrides the default level.
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Runs the planner until `limit` has passed or Ctrl-C is pressed, then shuts
/// it down gracefully: the transfer in flight finishes and `on_shutdown`
/// runs before this returns.
async fn run_for(planner: &Planner, limit: Duration) -> Result<(), Box<dyn Error>> {
    let mut running = tokio::spawn({
        let planner = planner.clone();
        async move { planner.start().await }
    });
    tokio::select! {
        // The planner stops by itself only when a transfer failed.
        stopped = &mut running => {
            stopped??;
            return Ok(());
        }
        () = tokio::time::sleep(limit) => tracing::info!("demo over after {limit:?}; shutting down"),
        signal = tokio::signal::ctrl_c() => {
            signal?;
            tracing::info!("Ctrl-C received; shutting down");
        }
    }
    planner.shutdown(true);
    running.await??;
    Ok(())
}
