//! Sharing the machine between teams: each team runs at most `per_team` event
//! requests at once (its chains' compute, in the blocking pool); more wait in
//! a bounded queue, and beyond that are answered 429. A team whose connector
//! spins near its deadline thus holds at most its share of the cores, and
//! other teams' requests do not queue behind it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests of one team that may wait for a slot before new ones are refused.
pub const MAX_WAITING: usize = 1_024;

/// One team's slots and queue.
struct Gate {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// The slots of every team.
pub struct TeamGates {
    per_team: usize,
    gates: Mutex<HashMap<i64, Arc<Gate>>>,
}

impl TeamGates {
    /// `per_team` concurrent requests per team (at least one).
    pub fn new(per_team: usize) -> TeamGates {
        TeamGates {
            per_team: per_team.max(1),
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// The default share: half the cores, at least one.
    pub fn default_per_team() -> usize {
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    }

    fn gate(&self, team: i64) -> Arc<Gate> {
        self.gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(team)
            .or_insert_with(|| {
                Arc::new(Gate {
                    slots: Arc::new(Semaphore::new(self.per_team)),
                    waiting: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// Waits for one of `team`'s slots; `None` when its queue is full.
    /// The slot is given back when the permit drops.
    pub async fn enter(&self, team: i64) -> Option<OwnedSemaphorePermit> {
        let gate = self.gate(team);
        if gate.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            gate.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = gate.slots.clone().acquire_owned().await;
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        permit.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_team_holds_at_most_its_slots_and_others_are_not_blocked() {
        let gates = TeamGates::new(1);
        let held = gates.enter(1).await.expect("a free slot");
        // Team 1's second request waits; team 2 enters at once.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), gates.enter(1));
        assert!(waiting.await.is_err(), "team 1 got a second slot");
        assert!(gates.enter(2).await.is_some());
        drop(held);
        assert!(gates.enter(1).await.is_some());
    }
}
