//! [`ChainStore`] on PostgreSQL: bundles (each once, by sha256), each team's
//! chain, its connectors' quarantine state, and the versions every process
//! polls. A PUT is one transaction that replaces the rows and bumps the chain
//! version; a health change is recorded only for the chain version it was
//! decided on.

use super::{PgStore, pg_error};
use crate::serve::quarantine::Health;
use crate::serve::store::chains::HAS_CHAIN;
use crate::serve::store::{BundleRow, ChainRow, ChainStore, ChainVersions, Result, StoreError};
use serde_json::{Map, Value};

fn versions(row: &tokio_postgres::Row) -> ChainVersions {
    ChainVersions {
        team: row.get(0),
        chain: row.get(1),
        health: row.get(2),
    }
}

impl ChainStore for PgStore {
    fn put_bundle(&self, sha256: &str, bytes: &[u8], name: &str) -> Result<()> {
        self.run(|client| async move {
            client
                .execute(
                    "INSERT INTO bundles (sha256, bytes, name) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
                    &[&sha256, &bytes, &name],
                )
                .await
                .map_err(pg_error)?;
            Ok(())
        })
    }

    fn bundle(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.run(|client| async move {
            let row = client
                .query_opt("SELECT bytes FROM bundles WHERE sha256 = $1", &[&sha256])
                .await
                .map_err(pg_error)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn bundles(&self) -> Result<Vec<BundleRow>> {
        self.run(|client| async move {
            let rows = client
                .query(
                    "SELECT sha256, name, octet_length(bytes)::BIGINT, created_at FROM bundles ORDER BY created_at, sha256",
                    &[],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| BundleRow {
                    id: r.get(0),
                    name: r.get(1),
                    size: r.get(2),
                    created_at: r.get(3),
                })
                .collect())
        })
    }

    fn set_chain(&self, team: i64, rows: &[ChainRow]) -> Result<ChainVersions> {
        self.run(|mut client| async move {
            let tx = client.transaction().await.map_err(pg_error)?;
            let stored = versions(
                &tx.query_one(
                    "UPDATE teams SET chain_version = chain_version + 1 WHERE id = $1 RETURNING id, chain_version, health_version",
                    &[&team],
                )
                .await
                .map_err(pg_error)?,
            );
            tx.execute("DELETE FROM chain_connectors WHERE team_id = $1", &[&team])
                .await
                .map_err(pg_error)?;
            for (position, row) in rows.iter().enumerate() {
                let config = Value::Object(row.config.clone()).to_string();
                tx.execute(
                    "INSERT INTO chain_connectors (team_id, position, connector_id, bundle, config, enabled, status) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&team, &(position as i64), &row.id, &row.bundle, &config, &row.enabled, &row.health.as_str()],
                )
                .await
                .map_err(pg_error)?;
            }
            tx.commit().await.map_err(pg_error)?;
            Ok(stored)
        })
    }

    fn chain(&self, team: i64) -> Result<Vec<ChainRow>> {
        self.run(|client| async move {
            let rows = client
                .query(
                    "SELECT bundle, config, enabled, status, connector_id FROM chain_connectors WHERE team_id = $1 ORDER BY position",
                    &[&team],
                )
                .await
                .map_err(pg_error)?;
            rows.iter()
                .map(|r| {
                    let config: String = r.get(1);
                    let status: String = r.get(3);
                    Ok(ChainRow {
                        id: r.get(4),
                        bundle: r.get(0),
                        config: serde_json::from_str::<Map<String, Value>>(&config)
                            .unwrap_or_default(),
                        enabled: r.get(2),
                        health: Health::parse(&status)
                            .map_err(|e| StoreError::Postgres(e.to_string()))?,
                    })
                })
                .collect()
        })
    }

    fn set_connector_health(
        &self,
        team: i64,
        version: i64,
        position: usize,
        health: Health,
    ) -> Result<Option<i64>> {
        self.run(|mut client| async move {
            let tx = client.transaction().await.map_err(pg_error)?;
            let Some(bumped) = tx
                .query_opt(
                    "UPDATE teams SET health_version = health_version + 1 WHERE id = $1 AND chain_version = $2 RETURNING health_version",
                    &[&team, &version],
                )
                .await
                .map_err(pg_error)?
            else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE chain_connectors SET status = $3 WHERE team_id = $1 AND position = $2",
                &[&team, &(position as i64), &health.as_str()],
            )
            .await
            .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
            Ok(Some(bumped.get(0)))
        })
    }

    fn chain_versions(&self, team: i64) -> Result<ChainVersions> {
        self.run(|client| async move {
            let row = client
                .query_opt(
                    "SELECT id, chain_version, health_version FROM teams WHERE id = $1",
                    &[&team],
                )
                .await
                .map_err(pg_error)?;
            Ok(row.as_ref().map_or(
                ChainVersions {
                    team,
                    ..Default::default()
                },
                versions,
            ))
        })
    }

    fn all_chain_versions(&self) -> Result<Vec<ChainVersions>> {
        self.run(|client| async move {
            let rows = client
                .query(
                    &format!("SELECT id, chain_version, health_version FROM teams WHERE {HAS_CHAIN} ORDER BY id"),
                    &[],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows.iter().map(versions).collect())
        })
    }

    fn teams_with_chains(&self) -> Result<Vec<i64>> {
        self.run(|client| async move {
            let rows = client
                .query(
                    &format!("SELECT id FROM teams WHERE {HAS_CHAIN} ORDER BY id"),
                    &[],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }
}
