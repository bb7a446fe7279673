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

/// Runs [`CREATE`] on `client`. Two sessions creating the table at once
/// (two daemons starting together) race inside PostgreSQL even with `IF
/// NOT EXISTS`: the loser's error says the table (or its type) exists, so
/// it asks once more, and then it does exist.
pub async fn create(client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    use tokio_postgres::error::SqlState;
    match client.batch_execute(CREATE).await {
        Err(e)
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                || e.code() == Some(&SqlState::DUPLICATE_TABLE) =>
        {
            client.batch_execute(CREATE).await
        }
        done => done,
    }
}
