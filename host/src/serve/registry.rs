//! Every team's current chain entry ([`TeamChain`]). A new chain
//! configuration replaces the team's whole entry; requests in flight finish on
//! the chains they hold. Configuration changes (a PUT, a health change) are
//! serialised by [`Teams::change`], and a health change applies to the team's
//! current entry only while it still has the same configuration: a PUT always
//! wins. Each entry carries the stored versions it shows, so what another
//! process stored ([`Teams::adopt_healths`], or a newer chain) is installed
//! once and an older one never replaces a newer.

use super::quarantine::Health;
use super::store::ChainVersions;
use super::teams::TeamChain;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Every team's current chain.
#[derive(Default)]
pub struct Teams {
    current: RwLock<HashMap<i64, Arc<TeamChain>>>,
    /// Held while a configuration change is stored and installed, so the store
    /// and the running chains change in the same order.
    change: Mutex<()>,
}

impl Teams {
    pub fn get(&self, team: i64) -> Option<Arc<TeamChain>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&team)
            .cloned()
    }

    /// Every team's current chain.
    pub fn all(&self) -> Vec<Arc<TeamChain>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn install(&self, chain: Arc<TeamChain>) {
        self.current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(chain.team, chain);
    }

    /// Installs a new configuration once `persist` has stored it (and said
    /// which versions it is), unless the team's entry already shows a newer
    /// chain version (another process's PUT, installed first). Returns it.
    pub fn replace<E>(
        &self,
        mut chain: TeamChain,
        persist: impl FnOnce() -> Result<ChainVersions, E>,
    ) -> Result<Arc<TeamChain>, E> {
        let _change = self.change.lock().unwrap_or_else(|e| e.into_inner());
        chain.versions = persist()?;
        let chain = Arc::new(chain);
        let newer = self
            .get(chain.team)
            .filter(|current| current.versions.chain > chain.versions.chain);
        match newer {
            Some(current) => Ok(current),
            None => {
                self.install(chain.clone());
                Ok(chain)
            }
        }
    }

    /// Removes the team's entry (the team was deleted); requests in flight finish.
    pub fn remove(&self, team: i64) {
        let _change = self.change.lock().unwrap_or_else(|e| e.into_inner());
        self.current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&team);
    }

    /// Brings the team's current entry in line with the health the windows of
    /// `snapshot`'s configuration give now: `persist` is called for each
    /// connector whose health differs from the entry's, and says the health
    /// version it stored (or `None` when the store refused: another process's
    /// PUT made the chain another version); then the entry is replaced.
    /// Nothing happens when the team's current entry is another configuration
    /// (a PUT replaced it): the PUT wins. Returns whether it applied.
    pub fn apply_health<E>(
        &self,
        snapshot: &TeamChain,
        mut persist: impl FnMut(usize, Health) -> Result<Option<i64>, E>,
    ) -> Result<bool, E> {
        let _change = self.change.lock().unwrap_or_else(|e| e.into_inner());
        let Some(current) = self
            .get(snapshot.team)
            .filter(|current| current.generation == snapshot.generation)
        else {
            return Ok(false);
        };
        let healths = current.healths();
        let changed: Vec<usize> = (0..current.specs.len())
            .filter(|&position| current.specs[position].health != healths[position])
            .collect();
        if changed.is_empty() {
            return Ok(true);
        }
        let mut versions = current.versions;
        for &position in &changed {
            match persist(position, healths[position])? {
                Some(health) => versions.health = health,
                None => return Ok(false),
            }
        }
        let mut next = current.with_healths(&healths);
        next.versions = versions;
        self.install(Arc::new(next));
        Ok(true)
    }

    /// Installs the healths another process stored for the team's chain at
    /// `versions`, when its entry is that chain version and shows an older
    /// health version. Returns whether it did.
    pub fn adopt_healths(&self, versions: ChainVersions, healths: &[Health]) -> bool {
        let _change = self.change.lock().unwrap_or_else(|e| e.into_inner());
        let Some(current) = self.get(versions.team).filter(|current| {
            current.versions.chain == versions.chain
                && current.versions.health < versions.health
                && current.specs.len() == healths.len()
        }) else {
            return false;
        };
        let mut next = current.adopt_healths(healths);
        next.versions = versions;
        self.install(Arc::new(next));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::teams::{ConnectorSpec, HealthChange};
    use sandpipe_manifest::ResolvedConfig;
    use sandpipe_runtime::{CallRecord, ConnectorCache};
    use std::time::Duration;

    /// A `persist` for [`Teams::replace`]: chain version 1 of team 7.
    fn stored() -> Result<ChainVersions, ()> {
        Ok(ChainVersions {
            team: 7,
            chain: 1,
            health: 0,
        })
    }

    /// Feeds `n` failing calls of connector 0 through `chain`'s windows.
    fn fail(chain: &TeamChain, n: usize) -> Vec<HealthChange> {
        let calls: Vec<CallRecord> = (0..n)
            .map(|_| CallRecord {
                connector: "c (0)".into(),
                position: 0,
                call: sandpipe_runtime::Call::ProcessEvent,
                ok: false,
                duration: Duration::from_millis(1),
                fuel: 0,
            })
            .collect();
        chain.observe(&calls)
    }

    fn chain(team: i64) -> TeamChain {
        let runtime = crate::runtime().expect("the runtime starts");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-world");
        let built = sandpipe_compiler::build(&runtime, &dir).expect("hello-world builds");
        let spec = ConnectorSpec {
            id: "Hello World".into(),
            bundle: runtime.admit(built.bytes).expect("admitted"),
            config: ResolvedConfig::default(),
            enabled: true,
            health: Health::Healthy,
            cache: ConnectorCache::default(),
        };
        TeamChain::new(team, vec![spec])
    }

    /// Every failing call counts, across the entries health changes install:
    /// one call per request, degraded on the 5th, disabled on the 15th.
    #[test]
    fn windows_outlive_health_changes() {
        let teams = Teams::default();
        teams.replace(chain(7), stored).unwrap();
        let mut persisted = Vec::new();
        for call in 1..=20 {
            let snapshot = teams.get(7).unwrap();
            if !fail(&snapshot, 1).is_empty() {
                let applied = teams.apply_health(&snapshot, |position, health| {
                    persisted.push((call, position, health));
                    Ok::<_, ()>(Some(call as i64))
                });
                assert_eq!(applied, Ok(true));
            }
        }
        assert_eq!(
            persisted,
            [(5, 0, Health::Degraded), (15, 0, Health::Disabled)]
        );
        assert_eq!(teams.get(7).unwrap().specs[0].health, Health::Disabled);
        assert!(!teams.get(7).unwrap().specs[0].runs());
    }

    /// A health change decided on a snapshot never undoes a PUT made since.
    #[test]
    fn a_put_wins_over_a_health_change() {
        let teams = Teams::default();
        teams.replace(chain(7), stored).unwrap();
        let snapshot = teams.get(7).unwrap();
        assert_eq!(fail(&snapshot, 5).len(), 1);
        // A PUT lands between the calls and the health change.
        teams.replace(chain(7), stored).unwrap();
        let put = teams.get(7).unwrap();
        let mut persisted = Vec::new();
        let applied = teams.apply_health(&snapshot, |position, health| {
            persisted.push((position, health));
            Ok::<_, ()>(Some(1))
        });
        assert_eq!(applied, Ok(false));
        assert!(persisted.is_empty());
        assert!(Arc::ptr_eq(&teams.get(7).unwrap(), &put));
        assert_eq!(put.specs[0].health, Health::Healthy);
    }
}
