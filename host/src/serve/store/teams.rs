//! Settings, teams and their token hashes.

use super::{Result, SqliteStore};
use rusqlite::params;

/// A team as `GET /v1/teams` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TeamRow {
    pub id: i64,
    pub name: String,
    /// RFC 3339, milliseconds.
    pub created_at: String,
}

/// Service settings and the teams, found by their token's hash.
pub trait TeamStore: Send + Sync {
    /// Every team by id, or only team `only`.
    fn teams(&self, only: Option<i64>) -> Result<Vec<TeamRow>>;
    fn setting(&self, key: &str) -> Result<Option<String>>;
    /// Stores `value` unless the key has one already; returns the stored value
    /// (so processes starting together agree on one).
    fn insert_setting(&self, key: &str, value: &str) -> Result<String>;
    fn create_team(&self, name: &str, token_hash: &str) -> Result<i64>;
    fn team_by_token_hash(&self, token_hash: &str) -> Result<Option<i64>>;
    fn team_exists(&self, team: i64) -> Result<bool>;
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
        self.with(|c| {
            c.execute(
                "INSERT INTO teams (name, token_hash) VALUES (?1, ?2)",
                params![name, token_hash],
            )?;
            Ok(c.last_insert_rowid())
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
