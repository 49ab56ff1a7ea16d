//! Content-addressed bundles and each team's chain: its connectors in order,
//! their config as given (secrets included) and their quarantine state.

use super::{Result, SqliteStore};
use crate::serve::quarantine::Health;
use rusqlite::params;
use serde_json::{Map, Value};

/// One connector of a stored chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRow {
    /// The connector's stable identity in the team's chain (`crate::identity`).
    pub id: String,
    pub bundle: String,
    pub config: Map<String, Value>,
    pub enabled: bool,
    /// Quarantine state.
    pub health: Health,
}

/// One uploaded bundle, as `GET /v1/bundles` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BundleRow {
    /// Its sha256.
    pub id: String,
    /// Its plugin's name.
    pub name: String,
    /// Bytes.
    pub size: i64,
    /// RFC 3339, milliseconds.
    pub created_at: String,
}

/// Bundles and chains.
pub trait ChainStore: Send + Sync {
    fn put_bundle(&self, sha256: &str, bytes: &[u8], name: &str) -> Result<()>;
    fn bundle(&self, sha256: &str) -> Result<Option<Vec<u8>>>;
    /// Every uploaded bundle, oldest first.
    fn bundles(&self) -> Result<Vec<BundleRow>>;
    fn set_chain(&self, team: i64, rows: &[ChainRow]) -> Result<()>;
    fn chain(&self, team: i64) -> Result<Vec<ChainRow>>;
    /// Records a connector's quarantine state.
    fn set_connector_health(&self, team: i64, position: usize, health: Health) -> Result<()>;
    /// Teams that have a chain.
    fn teams_with_chains(&self) -> Result<Vec<i64>>;
}

impl ChainStore for SqliteStore {
    fn put_bundle(&self, sha256: &str, bytes: &[u8], name: &str) -> Result<()> {
        self.execute(
            "INSERT INTO bundles (sha256, bytes, name) VALUES (?1, ?2, ?3) ON CONFLICT (sha256) DO NOTHING",
            params![sha256, bytes, name],
        )
    }

    fn bundle(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.value("SELECT bytes FROM bundles WHERE sha256 = ?1", [sha256])
    }

    fn bundles(&self) -> Result<Vec<BundleRow>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT sha256, name, length(bytes), created_at FROM bundles ORDER BY created_at, sha256",
            )?;
            let rows = statement.query_map([], |r| {
                Ok(BundleRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    size: r.get(2)?,
                    created_at: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    fn set_chain(&self, team: i64, rows: &[ChainRow]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM chain_connectors WHERE team_id = ?1", [team])?;
            for (position, row) in rows.iter().enumerate() {
                tx.execute(
                    "INSERT INTO chain_connectors (team_id, position, connector_id, bundle, config, enabled, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![team, position as i64, row.id, row.bundle, Value::Object(row.config.clone()).to_string(), row.enabled, row.health.as_str()],
                )?;
            }
            tx.commit()
        })
    }

    fn chain(&self, team: i64) -> Result<Vec<ChainRow>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT bundle, config, enabled, status, connector_id FROM chain_connectors WHERE team_id = ?1 ORDER BY position",
            )?;
            let rows = statement.query_map([team], |r| {
                let config: String = r.get(1)?;
                let status: String = r.get(3)?;
                Ok(ChainRow {
                    id: r.get(4)?,
                    bundle: r.get(0)?,
                    config: serde_json::from_str::<Map<String, Value>>(&config).unwrap_or_default(),
                    enabled: r.get(2)?,
                    health: Health::parse(&status).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
                    })?,
                })
            })?;
            rows.collect()
        })
    }

    fn set_connector_health(&self, team: i64, position: usize, health: Health) -> Result<()> {
        self.execute(
            "UPDATE chain_connectors SET status = ?3 WHERE team_id = ?1 AND position = ?2",
            params![team, position as i64, health.as_str()],
        )
    }

    fn teams_with_chains(&self) -> Result<Vec<i64>> {
        self.with(|c| {
            let mut statement = c.prepare("SELECT DISTINCT team_id FROM chain_connectors")?;
            let rows = statement.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::store::TeamStore;

    #[test]
    fn a_chain_keeps_its_order_config_and_health() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let team = store.create_team("t", "hash").unwrap();
        store.put_bundle("aa", b"wasm", "A").unwrap();
        store.put_bundle("bb", b"wasm", "B").unwrap();
        let listed: Vec<(String, String, i64)> = store
            .bundles()
            .unwrap()
            .into_iter()
            .map(|b| (b.id, b.name, b.size))
            .collect();
        assert_eq!(
            listed,
            [("aa".into(), "A".into(), 4), ("bb".into(), "B".into(), 4)]
        );
        let row = |bundle: &str, enabled| ChainRow {
            id: format!("id-{bundle}"),
            bundle: bundle.into(),
            config: serde_json::json!({"k": bundle})
                .as_object()
                .unwrap()
                .clone(),
            enabled,
            health: Health::Healthy,
        };
        store
            .set_chain(team, &[row("bb", true), row("aa", false)])
            .unwrap();
        store
            .set_connector_health(team, 1, Health::Disabled)
            .unwrap();
        let mut disabled = row("aa", false);
        disabled.health = Health::Disabled;
        assert_eq!(store.chain(team).unwrap(), [row("bb", true), disabled]);
        assert_eq!(store.teams_with_chains().unwrap(), [team]);
        // A state this sandpipe does not know is an error, not a guess.
        store
            .execute("UPDATE chain_connectors SET status = 'sleeping'", [])
            .unwrap();
        let error = store.chain(team).unwrap_err().to_string();
        assert!(error.contains("unknown health \"sleeping\""), "{error}");
    }
}
