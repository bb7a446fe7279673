//! The table PostgreSQL keeps links' checkpoints in, defined once for the
//! state store (`[daemon] state_url`) and for the `postgres` outlet, which
//! writes a link's checkpoint in the transaction of the records it commits
//! when the store is in its database (exactly once).

/// The table's name.
pub const TABLE: &str = "databay_checkpoints";

/// Creates the table if it is missing.
pub const CREATE: &str = "CREATE TABLE IF NOT EXISTS databay_checkpoints (\
     link text PRIMARY KEY, \
     checkpoint bytea NOT NULL, \
     saved_at timestamptz NOT NULL DEFAULT now())";

/// Writes `$2` (the checkpoint's bytes) as link `$1`'s.
pub const UPSERT: &str = "INSERT INTO databay_checkpoints (link, checkpoint) VALUES ($1, $2) \
     ON CONFLICT (link) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, saved_at = now()";
