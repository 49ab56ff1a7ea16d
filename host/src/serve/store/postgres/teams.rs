//! [`TeamStore`] on PostgreSQL: settings, teams and their token hashes.

use super::{PgStore, pg_error};
use crate::serve::store::{Result, StoreError, TeamRow, TeamStore};

impl TeamStore for PgStore {
    fn teams(&self, only: Option<i64>) -> Result<Vec<TeamRow>> {
        self.run(|client| async move {
            let rows = client
                .query(
                    "SELECT id, name, created_at FROM teams WHERE $1::BIGINT IS NULL OR id = $1 ORDER BY id",
                    &[&only],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| TeamRow {
                    id: r.get(0),
                    name: r.get(1),
                    created_at: r.get(2),
                })
                .collect())
        })
    }

    fn setting(&self, key: &str) -> Result<Option<String>> {
        self.run(|client| async move {
            let row = client
                .query_opt("SELECT value FROM settings WHERE key = $1", &[&key])
                .await
                .map_err(pg_error)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn insert_setting(&self, key: &str, value: &str) -> Result<String> {
        self.run(|client| async move {
            client
                .execute(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                    &[&key, &value],
                )
                .await
                .map_err(pg_error)?;
            let row = client
                .query_one("SELECT value FROM settings WHERE key = $1", &[&key])
                .await
                .map_err(pg_error)?;
            Ok(row.get(0))
        })
    }

    fn create_team(&self, name: &str, token_hash: &str) -> Result<i64> {
        let created = self.run(|mut client| async move {
            let tx = client.transaction().await.map_err(pg_error)?;
            // One creator at a time, so two processes cannot both take a name.
            tx.execute("SELECT pg_advisory_xact_lock(7301266)", &[])
                .await
                .map_err(pg_error)?;
            let taken = tx
                .query_opt("SELECT 1 FROM teams WHERE name = $1", &[&name])
                .await
                .map_err(pg_error)?
                .is_some();
            if taken {
                return Ok(None);
            }
            let row = tx
                .query_one(
                    "INSERT INTO teams (name, token_hash) VALUES ($1, $2) RETURNING id",
                    &[&name, &token_hash],
                )
                .await
                .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
            Ok(Some(row.get(0)))
        })?;
        created.ok_or_else(|| StoreError::TeamNameTaken(name.to_string()))
    }

    fn set_team_token(&self, team: i64, token_hash: &str) -> Result<bool> {
        self.run(|client| async move {
            let changed = client
                .execute(
                    "UPDATE teams SET token_hash = $2 WHERE id = $1",
                    &[&team, &token_hash],
                )
                .await
                .map_err(pg_error)?;
            Ok(changed == 1)
        })
    }

    fn delete_team(&self, team: i64) -> Result<bool> {
        self.run(|mut client| async move {
            let tx = client.transaction().await.map_err(pg_error)?;
            for table in ["chain_connectors", "logs", "webhooks", "scheduled_tasks"] {
                tx.execute(&format!("DELETE FROM {table} WHERE team_id = $1"), &[&team])
                    .await
                    .map_err(pg_error)?;
            }
            let deleted = tx
                .execute("DELETE FROM teams WHERE id = $1", &[&team])
                .await
                .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
            Ok(deleted == 1)
        })
    }

    fn team_by_token_hash(&self, token_hash: &str) -> Result<Option<i64>> {
        self.run(|client| async move {
            let row = client
                .query_opt("SELECT id FROM teams WHERE token_hash = $1", &[&token_hash])
                .await
                .map_err(pg_error)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn team_exists(&self, team: i64) -> Result<bool> {
        self.run(|client| async move {
            let row = client
                .query_opt("SELECT 1 FROM teams WHERE id = $1", &[&team])
                .await
                .map_err(pg_error)?;
            Ok(row.is_some())
        })
    }
}
