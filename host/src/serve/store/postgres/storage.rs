//! `meta.storage` on PostgreSQL ([`PgStorage`]), in the store's database:
//! every process reads what another wrote. Each scope's usage row is locked
//! (`FOR UPDATE`) in the transaction that writes, so the per-connector quota
//! holds across processes. Every commit is durable when it returns, so
//! [`Storage::sync`] has nothing to do.

use super::{PgStore, pg_error};
use crate::serve::store::StoreError;
use sandpipe_runtime::Storage;
use sandpipe_runtime::services::storage::{Quota, StorageError};
use serde_json::Value;
use std::sync::Arc;

/// `meta.storage` in a [`PgStore`]'s database.
pub struct PgStorage {
    store: Arc<PgStore>,
}

impl PgStorage {
    pub fn new(store: Arc<PgStore>) -> PgStorage {
        PgStorage { store }
    }
}

/// A store failure as a storage error: unavailable stays unavailable.
fn storage_error(error: StoreError) -> StorageError {
    match error {
        StoreError::Unavailable(reason) => StorageError::ServerUnavailable(reason),
        other => StorageError::Server(other.to_string()),
    }
}

impl Storage for PgStorage {
    fn get(&self, scope: &str, key: &str) -> Result<Option<Value>, StorageError> {
        let text: Option<String> = self
            .store
            .run(|client| async move {
                let row = client
                    .query_opt(
                        "SELECT value FROM connector_storage WHERE scope = $1 AND key = $2",
                        &[&scope, &key],
                    )
                    .await
                    .map_err(pg_error)?;
                Ok(row.map(|r| r.get(0)))
            })
            .map_err(storage_error)?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|source| StorageError::Corrupt {
                key: key.to_string(),
                source,
            })
        })
        .transpose()
    }

    fn set(&self, scope: &str, key: &str, value: &Value, quota: Quota) -> Result<(), StorageError> {
        let text = serde_json::to_string(value).expect("a JSON value serialises");
        let bytes = (key.len() + text.len()) as i64;
        self.store
            .run(|mut client| async move {
                let tx = client.transaction().await.map_err(pg_error)?;
                tx.execute(
                    "INSERT INTO connector_storage_usage (scope, keys, bytes) VALUES ($1, 0, 0) ON CONFLICT (scope) DO NOTHING",
                    &[&scope],
                )
                .await
                .map_err(pg_error)?;
                let usage = tx
                    .query_one(
                        "SELECT keys, bytes FROM connector_storage_usage WHERE scope = $1 FOR UPDATE",
                        &[&scope],
                    )
                    .await
                    .map_err(pg_error)?;
                let (keys_now, bytes_now): (i64, i64) = (usage.get(0), usage.get(1));
                let old: Option<i64> = tx
                    .query_opt(
                        "SELECT (octet_length(key) + octet_length(value))::BIGINT FROM connector_storage WHERE scope = $1 AND key = $2",
                        &[&scope, &key],
                    )
                    .await
                    .map_err(pg_error)?
                    .map(|r| r.get(0));
                let added_keys = i64::from(old.is_none());
                let added_bytes = bytes - old.unwrap_or(0);
                if let Err(refusal) = quota.check(
                    (keys_now + added_keys).max(0) as u64,
                    (bytes_now + added_bytes).max(0) as u64,
                ) {
                    return Ok(Err(refusal));
                }
                tx.execute(
                    "INSERT INTO connector_storage (scope, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value",
                    &[&scope, &key, &text],
                )
                .await
                .map_err(pg_error)?;
                tx.execute(
                    "UPDATE connector_storage_usage SET keys = keys + $2, bytes = bytes + $3 WHERE scope = $1",
                    &[&scope, &added_keys, &added_bytes],
                )
                .await
                .map_err(pg_error)?;
                tx.commit().await.map_err(pg_error)?;
                Ok(Ok(()))
            })
            .map_err(storage_error)?
    }

    fn del(&self, scope: &str, key: &str) -> Result<(), StorageError> {
        self.store
            .run(|mut client| async move {
                let tx = client.transaction().await.map_err(pg_error)?;
                let old = tx
                    .query_opt(
                        "DELETE FROM connector_storage WHERE scope = $1 AND key = $2
                         RETURNING (octet_length(key) + octet_length(value))::BIGINT",
                        &[&scope, &key],
                    )
                    .await
                    .map_err(pg_error)?;
                if let Some(old) = old {
                    let old: i64 = old.get(0);
                    tx.execute(
                        "UPDATE connector_storage_usage SET keys = keys - 1, bytes = bytes - $2 WHERE scope = $1",
                        &[&scope, &old],
                    )
                    .await
                    .map_err(pg_error)?;
                }
                tx.commit().await.map_err(pg_error)
            })
            .map_err(storage_error)
    }

    fn clear(&self, scope: &str) -> Result<(), StorageError> {
        self.store
            .run(|mut client| async move {
                let tx = client.transaction().await.map_err(pg_error)?;
                tx.execute("DELETE FROM connector_storage WHERE scope = $1", &[&scope])
                    .await
                    .map_err(pg_error)?;
                tx.execute(
                    "DELETE FROM connector_storage_usage WHERE scope = $1",
                    &[&scope],
                )
                .await
                .map_err(pg_error)?;
                tx.commit().await.map_err(pg_error)
            })
            .map_err(storage_error)
    }
}
