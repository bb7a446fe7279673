//! A line reader's resume state: where it carries on, and which file that
//! position belongs to (device and inode, and a fingerprint of the file's
//! first bytes, as log shippers keep).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How many of a file's first bytes its fingerprint covers, once the file
/// has that many.
pub(super) const HEAD: u64 = 256;

/// FNV-1a's offset basis: the fingerprint of no bytes.
pub(super) const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Adds `bytes` to an FNV-1a hash.
pub(super) fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Where a `file` inlet or a `dir` partition carries on: the position after
/// the last line it handed out, and the file it belongs to.
///
/// On resume the file at the path must start with the same bytes (the
/// fingerprint of its first `head_len` bytes) and be at least `offset`
/// long; otherwise it is another file (rotated, replaced, truncated) and
/// is read from its start. Device and inode are kept for the record: a
/// file copied or restored from a backup keeps its contents but not its
/// inode, and is still resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePosition {
    /// Byte offset of the next line.
    pub offset: u64,
    /// Lines delivered before it (the next line's number minus one).
    pub line: u64,
    /// The file's device, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<u64>,
    /// The file's inode, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// How many first bytes of the file the fingerprint covers (at most 256).
    pub head_len: u64,
    /// FNV-1a hash of those bytes, as 16 hex digits.
    pub head: String,
}

impl FilePosition {
    /// The position as the JSON an inlet's snapshot holds.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a position back from a snapshot, saying what is wrong with it.
    pub fn from_value(value: Value) -> Result<Self, String> {
        serde_json::from_value(value).map_err(|e| format!("not a file position: {e}"))
    }

    /// The start of any file: offset 0, and the fingerprint of no bytes,
    /// which every file starts with.
    pub fn start() -> Self {
        FilePosition {
            offset: 0,
            line: 0,
            dev: None,
            ino: None,
            head_len: 0,
            head: format!("{FNV_START:016x}"),
        }
    }

    pub(super) fn head_hash(&self) -> Option<u64> {
        u64::from_str_radix(&self.head, 16).ok()
    }
}
