//! Settings, teams and their token hashes.

use super::{Result, SqliteStore, StoreError};
use rusqlite::{OptionalExtension, params};

/// One team, as `GET /v1/teams` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TeamRow {
    pub id: i64,
    pub name: String,
    /// RFC 3339, milliseconds.
    pub created_at: String,
}

/// Service settings and the teams, found by their token's hash.
pub trait TeamStore: Send + Sync {
    /// Every team, oldest first, or only team `only`.
    fn teams(&self, only: Option<i64>) -> Result<Vec<TeamRow>>;
    fn setting(&self, key: &str) -> Result<Option<String>>;
    /// Stores `value` unless the key has one already; returns the stored value
    /// (so processes starting together agree on one).
    fn insert_setting(&self, key: &str, value: &str) -> Result<String>;
    /// A new team; [`StoreError::TeamNameTaken`] when another has the name.
    fn create_team(&self, name: &str, token_hash: &str) -> Result<i64>;
    fn team_by_token_hash(&self, token_hash: &str) -> Result<Option<i64>>;
    fn team_exists(&self, team: i64) -> Result<bool>;
    /// Replaces the team's token hash (the old token stops working); whether the team exists.
    fn set_team_token(&self, team: i64, token_hash: &str) -> Result<bool>;
    /// Deletes the team with its chain, logs and webhooks; whether it existed.
    fn delete_team(&self, team: i64) -> Result<bool>;
}

impl TeamStore for SqliteStore {
    fn teams(&self, only: Option<i64>) -> Result<Vec<TeamRow>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT id, name, created_at FROM teams WHERE ?1 IS NULL OR id = ?1 ORDER BY id",
            )?;
            let rows = statement.query_map([only], |r| {
                Ok(TeamRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    fn setting(&self, key: &str) -> Result<Option<String>> {
        self.value("SELECT value FROM settings WHERE key = ?1", [key])
    }

    fn insert_setting(&self, key: &str, value: &str) -> Result<String> {
        self.with(|c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key, value],
            )?;
            c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
        })
    }

    fn create_team(&self, name: &str, token_hash: &str) -> Result<i64> {
        let created = self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let taken = tx
                .query_row("SELECT 1 FROM teams WHERE name = ?1", [name], |_| Ok(()))
                .optional()?
                .is_some();
            if taken {
                return Ok(None);
            }
            // A deleted team's id is never given again (SQLite would reuse the
            // highest): what is known of a team by its id — its health, its
            // metrics, a client's records — must not pass to another.
            let id: i64 = tx.query_row(
                "SELECT max(
                    coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'last_team_id'), 0),
                    coalesce((SELECT max(id) FROM teams), 0)
                ) + 1",
                [],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO teams (id, name, token_hash) VALUES (?1, ?2, ?3)",
                params![id, name, token_hash],
            )?;
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('last_team_id', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [id.to_string()],
            )?;
            tx.commit()?;
            Ok(Some(id))
        })?;
        created.ok_or_else(|| StoreError::TeamNameTaken(name.to_string()))
    }

    fn set_team_token(&self, team: i64, token_hash: &str) -> Result<bool> {
        self.with(|c| {
            c.execute(
                "UPDATE teams SET token_hash = ?2 WHERE id = ?1",
                params![team, token_hash],
            )
        })
        .map(|changed| changed == 1)
    }

    fn delete_team(&self, team: i64) -> Result<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            for table in ["chain_connectors", "logs", "webhooks", "scheduled_tasks"] {
                tx.execute(&format!("DELETE FROM {table} WHERE team_id = ?1"), [team])?;
            }
            let deleted = tx.execute("DELETE FROM teams WHERE id = ?1", [team])?;
            tx.commit()?;
            Ok(deleted == 1)
        })
    }

    fn team_by_token_hash(&self, token_hash: &str) -> Result<Option<i64>> {
        self.value("SELECT id FROM teams WHERE token_hash = ?1", [token_hash])
    }

    fn team_exists(&self, team: i64) -> Result<bool> {
        Ok(self
            .value::<i64>("SELECT 1 FROM teams WHERE id = ?1", [team])?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teams_are_listed_renamed_never_twice_rotated_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let a = store.create_team("a", "h1").unwrap();
        let b = store.create_team("b", "h2").unwrap();
        assert_eq!(
            store.create_team("a", "h3").unwrap_err().to_string(),
            "a team named \"a\" already exists"
        );
        let names: Vec<(i64, String)> = store
            .teams(None)
            .unwrap()
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        assert_eq!(names, [(a, "a".to_string()), (b, "b".to_string())]);
        assert!(store.set_team_token(a, "h9").unwrap());
        assert_eq!(store.team_by_token_hash("h1").unwrap(), None);
        assert_eq!(store.team_by_token_hash("h9").unwrap(), Some(a));
        assert!(store.delete_team(a).unwrap());
        assert!(!store.delete_team(a).unwrap());
        assert!(!store.team_exists(a).unwrap());
        assert!(!store.set_team_token(a, "h0").unwrap());
        // The highest id, deleted, is not given to the next team.
        assert!(store.delete_team(b).unwrap());
        let c = store.create_team("c", "h3").unwrap();
        assert_eq!(c, b + 1);
    }
}
