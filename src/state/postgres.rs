//! Checkpoints in PostgreSQL (`[daemon] state_url`): one row per link in
//! the table `databay_checkpoints`, written by an upsert that commits on
//! its own (PostgreSQL syncs its write-ahead log at each commit). Several
//! daemons may share one database as long as their link names differ.

use std::sync::Arc;

use databay_component::Secret;
use databay_component::postgres::{ConnectionOptions, Connector, checkpoints, describe};
use databay_core::checkpoint::{Checkpoint, StateStore};
use databay_core::{BoxError, async_trait};
use tokio_postgres::{Client, Statement};

use super::Stored;

/// The table the checkpoints live in.
pub const TABLE: &str = checkpoints::TABLE;

/// A [`StateStore`] in a PostgreSQL database.
pub struct PgStore {
    connector: Connector,
    /// The connection, opened again when the server dropped it, with the
    /// upsert prepared on it (a save is then one round trip). Queries
    /// share it (tokio-postgres pipelines them).
    client: tokio::sync::Mutex<Option<Connection>>,
}

/// An open connection of the store.
#[derive(Clone)]
struct Connection {
    client: Arc<Client>,
    upsert: Statement,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.connector.target())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` and creates the table if it is missing.
    pub async fn open(url: &Secret<String>) -> Result<Self, String> {
        let connector = ConnectionOptions {
            url: Some(url.clone()),
            ..ConnectionOptions::default()
        }
        .connector()
        .map_err(|e| format!("`[daemon] state_url`: {e}"))?;
        let store = PgStore {
            connector,
            client: tokio::sync::Mutex::new(None),
        };
        let client = store.connect().await?;
        checkpoints::create(&client)
            .await
            .map_err(|e| store.failed("create the table", &e))?;
        let connection = store.prepare(client).await?;
        *store.client.lock().await = Some(connection);
        Ok(store)
    }

    /// Where the store is, as messages name it (no password).
    pub fn target(&self) -> String {
        format!("postgresql://{} table {TABLE}", self.connector.target())
    }

    async fn connect(&self) -> Result<Arc<Client>, String> {
        Ok(Arc::new(
            self.connector
                .connect()
                .await
                .map_err(|e| format!("state store: {e}"))?,
        ))
    }

    /// Prepares the upsert on `client`: the two make a connection.
    async fn prepare(&self, client: Arc<Client>) -> Result<Connection, String> {
        let upsert = client
            .prepare(checkpoints::UPSERT)
            .await
            .map_err(|e| self.failed("prepare the checkpoint upsert", &e))?;
        Ok(Connection { client, upsert })
    }

    /// The open connection, or a new one if the server dropped it: opened
    /// once, under the lock, however many links save at that moment.
    async fn connection(&self) -> Result<Connection, String> {
        let mut slot = self.client.lock().await;
        if let Some(connection) = slot.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(connection.clone());
        }
        let connection = self.prepare(self.connect().await?).await?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    async fn client(&self) -> Result<Arc<Client>, String> {
        Ok(self.connection().await?.client)
    }

    fn failed(&self, what: &str, e: &tokio_postgres::Error) -> String {
        format!(
            "state store `{}`: cannot {what}: {}",
            self.target(),
            describe(e)
        )
    }

    /// Every link that has a checkpoint, with it (in name order).
    pub async fn all(&self) -> Result<Vec<(String, Stored)>, String> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT link, checkpoint FROM databay_checkpoints ORDER BY link",
                &[],
            )
            .await
            .map_err(|e| self.failed("read", &e))?;
        Ok(rows
            .iter()
            .map(|row| {
                let bytes: &[u8] = row.get(1);
                (row.get::<_, String>(0), Checkpoint::from_bytes(bytes))
            })
            .collect())
    }

    /// Deletes `link`'s checkpoint.
    pub async fn forget(&self, link: &str) -> Result<(), String> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM databay_checkpoints WHERE link = $1", &[&link])
            .await
            .map(drop)
            .map_err(|e| self.failed("delete a checkpoint", &e))
    }
}

#[async_trait]
impl StateStore for PgStore {
    async fn load(&self, link: &str) -> Result<Option<Checkpoint>, BoxError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT checkpoint FROM databay_checkpoints WHERE link = $1",
                &[&link],
            )
            .await
            .map_err(|e| self.failed("read", &e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let bytes: &[u8] = row.get(0);
        Checkpoint::from_bytes(bytes).map(Some).map_err(|e| {
            format!(
                "state store `{}`: the checkpoint of link `{link}` is unreadable: {e} \
                 (`databay state reset CONFIG --link {link}` starts it afresh)",
                self.target()
            )
            .into()
        })
    }

    async fn save(&self, link: &str, checkpoint: &Checkpoint) -> Result<(), BoxError> {
        let connection = self.connection().await?;
        let bytes = checkpoint.to_bytes();
        connection
            .client
            .execute(&connection.upsert, &[&link, &bytes])
            .await
            .map(drop)
            .map_err(|e| self.failed("write a checkpoint", &e).into())
    }

    async fn remove(&self, link: &str) -> Result<(), BoxError> {
        Ok(self.forget(link).await?)
    }

    /// The database: a `postgres` outlet writing into it commits its
    /// records and its link's checkpoint in one transaction.
    fn location(&self) -> Option<String> {
        Some(self.connector.location())
    }
}
