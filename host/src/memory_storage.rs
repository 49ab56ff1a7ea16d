//! `meta.storage` in memory, for `sandpipe test`: each fixture gets its own,
//! seeded from the fixture's `storage` and compared with its
//! `expected_storage` afterwards. Held to the same quota as the SQLite store
//! (keys, and bytes of keys and JSON values).

use sandpipe_runtime::Storage;
use sandpipe_runtime::services::storage::{Quota, StorageError};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Scopes → keys → values.
#[derive(Default)]
pub struct MemoryStorage(Mutex<BTreeMap<String, Map<String, Value>>>);

/// Bytes a key and its value count for the quota, as `SqliteStorage` counts them.
fn bytes(key: &str, value: &Value) -> usize {
    key.len() + value.to_string().len()
}

impl MemoryStorage {
    fn scopes(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Map<String, Value>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every key of `scope` and its value (empty when it holds none).
    pub fn contents(&self, scope: &str) -> Map<String, Value> {
        self.scopes().get(scope).cloned().unwrap_or_default()
    }

    /// Replaces what `scope` holds (a fixture's seed).
    pub fn seed(&self, scope: &str, values: Map<String, Value>) {
        self.scopes().insert(scope.to_string(), values);
    }
}

impl Storage for MemoryStorage {
    fn get(&self, scope: &str, key: &str) -> Result<Option<Value>, StorageError> {
        Ok(self.scopes().get(scope).and_then(|s| s.get(key)).cloned())
    }

    fn set(&self, scope: &str, key: &str, value: &Value, quota: Quota) -> Result<(), StorageError> {
        let mut scopes = self.scopes();
        let values = scopes.entry(scope.to_string()).or_default();
        let keys = values.len() + usize::from(!values.contains_key(key));
        let used: usize = values
            .iter()
            .filter(|(k, _)| *k != key)
            .map(|(k, v)| bytes(k, v))
            .sum::<usize>()
            + bytes(key, value);
        if keys > quota.keys {
            return Err(StorageError::TooManyKeys(quota.keys));
        }
        if used > quota.bytes {
            return Err(StorageError::TooManyBytes(quota.bytes));
        }
        values.insert(key.to_string(), value.clone());
        Ok(())
    }

    fn del(&self, scope: &str, key: &str) -> Result<(), StorageError> {
        if let Some(values) = self.scopes().get_mut(scope) {
            values.shift_remove(key);
        }
        Ok(())
    }

    fn clear(&self, scope: &str) -> Result<(), StorageError> {
        self.scopes().remove(scope);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_kept_per_scope_within_the_quota() {
        let storage = MemoryStorage::default();
        let quota = Quota { keys: 2, bytes: 10 };
        storage.set("a", "k", &json!(1), quota).unwrap();
        storage.set("a", "k", &json!(2), quota).unwrap();
        storage.set("b", "k", &json!("x"), quota).unwrap();
        assert_eq!(storage.get("a", "k").unwrap(), Some(json!(2)));
        assert_eq!(
            storage
                .set("a", "long", &json!("abcdefgh"), quota)
                .unwrap_err()
                .to_string(),
            "storage quota exceeded: at most 10 bytes of keys and values per connector"
        );
        storage.set("a", "j", &json!(0), quota).unwrap();
        assert_eq!(
            storage
                .set("a", "i", &json!(0), quota)
                .unwrap_err()
                .to_string(),
            "storage quota exceeded: at most 2 keys per connector"
        );
        storage.del("a", "k").unwrap();
        assert_eq!(
            storage.contents("a"),
            json!({"j": 0}).as_object().unwrap().clone()
        );
        storage.clear("b").unwrap();
        assert!(storage.contents("b").is_empty());
    }
}
