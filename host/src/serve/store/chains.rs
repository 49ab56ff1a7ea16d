//! Content-addressed bundles and each team's chain: its connectors in order,
//! their config as given (secrets included) and their quarantine state, and
//! the team's chain and health versions, which every process polls to
//! install what another stored.

use super::{Result, SqliteStore};
use crate::serve::quarantine::Health;
use rusqlite::{OptionalExtension, params};
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

/// Which configuration of a team's chain is stored, and which of its health
/// states: `chain` goes up with every PUT, `health` with every quarantine change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainVersions {
    pub team: i64,
    pub chain: i64,
    pub health: i64,
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
    /// Stores a new configuration of the team's chain (a new chain version);
    /// returns the team's versions after it.
    fn set_chain(&self, team: i64, rows: &[ChainRow]) -> Result<ChainVersions>;
    fn chain(&self, team: i64) -> Result<Vec<ChainRow>>;
    /// Records a connector's quarantine state, decided on chain version
    /// `version`, and returns the team's new health version; `None`, and
    /// nothing recorded, when the team's chain is another version by now (a
    /// PUT wins).
    fn set_connector_health(
        &self,
        team: i64,
        version: i64,
        position: usize,
        health: Health,
    ) -> Result<Option<i64>>;
    /// The team's versions (zeros for a team without a chain).
    fn chain_versions(&self, team: i64) -> Result<ChainVersions>;
    /// The versions of every team that has a chain ([`HAS_CHAIN`]: one was
    /// PUT, even an empty one).
    fn all_chain_versions(&self) -> Result<Vec<ChainVersions>>;
    /// Teams that have a chain.
    fn teams_with_chains(&self) -> Result<Vec<i64>>;
}

/// Whether a `teams` row has a chain: one was PUT (even an empty one, which
/// runs events through unchanged), or it has connectors (stored before chains
/// had versions).
pub(crate) const HAS_CHAIN: &str =
    "(chain_version > 0 OR id IN (SELECT team_id FROM chain_connectors))";

/// The versions of a `teams` row: id, chain_version, health_version.
fn versions_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChainVersions> {
    Ok(ChainVersions {
        team: r.get(0)?,
        chain: r.get(1)?,
        health: r.get(2)?,
    })
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

    fn set_chain(&self, team: i64, rows: &[ChainRow]) -> Result<ChainVersions> {
        self.with(|c| {
            let tx = c.transaction()?;
            let versions = tx.query_row(
                "UPDATE teams SET chain_version = chain_version + 1 WHERE id = ?1 RETURNING id, chain_version, health_version",
                [team],
                versions_row,
            )?;
            tx.execute("DELETE FROM chain_connectors WHERE team_id = ?1", [team])?;
            for (position, row) in rows.iter().enumerate() {
                tx.execute(
                    "INSERT INTO chain_connectors (team_id, position, connector_id, bundle, config, enabled, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![team, position as i64, row.id, row.bundle, Value::Object(row.config.clone()).to_string(), row.enabled, row.health.as_str()],
                )?;
            }
            tx.commit()?;
            Ok(versions)
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

    fn set_connector_health(
        &self,
        team: i64,
        version: i64,
        position: usize,
        health: Health,
    ) -> Result<Option<i64>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let Some(health_version) = tx
                .query_row(
                    "UPDATE teams SET health_version = health_version + 1 WHERE id = ?1 AND chain_version = ?2 RETURNING health_version",
                    params![team, version],
                    |r| r.get(0),
                )
                .optional()?
            else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE chain_connectors SET status = ?3 WHERE team_id = ?1 AND position = ?2",
                params![team, position as i64, health.as_str()],
            )?;
            tx.commit()?;
            Ok(Some(health_version))
        })
    }

    fn chain_versions(&self, team: i64) -> Result<ChainVersions> {
        self.with(|c| {
            c.query_row(
                "SELECT id, chain_version, health_version FROM teams WHERE id = ?1",
                [team],
                versions_row,
            )
            .optional()
        })
        .map(|found| {
            found.unwrap_or(ChainVersions {
                team,
                ..Default::default()
            })
        })
    }

    fn all_chain_versions(&self) -> Result<Vec<ChainVersions>> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT id, chain_version, health_version FROM teams WHERE {HAS_CHAIN} ORDER BY id"
            ))?;
            let rows = statement.query_map([], versions_row)?;
            rows.collect()
        })
    }

    fn teams_with_chains(&self) -> Result<Vec<i64>> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT id FROM teams WHERE {HAS_CHAIN} ORDER BY id"
            ))?;
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
        let versions = store
            .set_chain(team, &[row("bb", true), row("aa", false)])
            .unwrap();
        assert_eq!((versions.chain, versions.health), (1, 0));
        assert_eq!(
            store
                .set_connector_health(team, 1, 1, Health::Disabled)
                .unwrap(),
            Some(1)
        );
        // Decided on an older chain version: a PUT won, nothing is recorded.
        assert_eq!(
            store
                .set_connector_health(team, 0, 0, Health::Disabled)
                .unwrap(),
            None
        );
        assert_eq!(
            store.chain_versions(team).unwrap(),
            ChainVersions {
                team,
                chain: 1,
                health: 1
            }
        );
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
