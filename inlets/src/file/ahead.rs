//! Reading the next batch of lines ahead, in a task of its own, while the
//! link works on the last one: used by the [`file`](super) inlet and by
//! each file of the [`dir`](crate::dir) inlet.

use std::path::PathBuf;

use databay_core::Pull;

use super::{FileInletError, FilePosition, LineOptions, LineReader};

/// A batch being read ahead by a task that holds the reader until it ends.
/// Dropped, the task is stopped.
#[derive(Debug)]
pub(crate) struct ReadAhead(tokio::task::JoinHandle<Ahead>);

/// A batch read ahead, with the reader that read it: the batch and the
/// bytes of its lines, or the error that failed it (the reader is then
/// back where the batch started).
#[derive(Debug)]
pub(crate) struct Ahead {
    pub(crate) reader: LineReader,
    pub(crate) read: Result<(Pull, u64), FileInletError>,
}

impl ReadAhead {
    /// Hands out `pull`, just read by the reader in `slot` with
    /// `options`: counts its bytes ([`databay_core::bytes::add`], so from
    /// the pull that hands it out) and returns the position after it.
    /// Then sets the reader to work reading the next batch in `ahead` when
    /// that is worth it: a large batch (heavy work, as
    /// `databay_core::compute` counts it) of a file that is not followed
    /// and not at its end.
    pub(crate) fn hand_out(
        pull: &Pull,
        bytes: u64,
        options: &LineOptions<'_>,
        slot: &mut Option<LineReader>,
        ahead: &mut Option<ReadAhead>,
    ) -> Option<FilePosition> {
        databay_core::bytes::add(bytes);
        let reader = slot.take()?;
        let delivered = reader.position();
        let worth_it = !options.follow
            && options.max >= databay_core::compute::HEAVY_BATCH
            && matches!(pull, Pull::Records(_));
        if worth_it {
            let path = options.path.to_path_buf();
            *ahead = Some(ReadAhead::start(reader, path, options.max, options.json));
        } else {
            *slot = Some(reader);
        }
        Some(delivered)
    }

    /// Starts reading the next batch of up to `max` lines of `path` with
    /// `reader`.
    fn start(mut reader: LineReader, path: PathBuf, max: usize, json: bool) -> Self {
        ReadAhead(tokio::spawn(async move {
            let options = LineOptions {
                path: &path,
                max,
                json,
                follow: false,
            };
            let read = reader.read_counted(&options, true).await;
            Ahead { reader, read }
        }))
    }

    /// Waits for the batch; `None` when the task was stopped or failed,
    /// and the reader with it. Cut off while waiting, the task reads on:
    /// call it again. Once it has answered, drop this.
    pub(crate) async fn land(&mut self) -> Option<Ahead> {
        (&mut self.0).await.ok()
    }

    /// Stops the task as if it had failed (tests).
    #[cfg(test)]
    pub(crate) fn abort(&self) {
        self.0.abort();
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.0.abort();
    }
}
