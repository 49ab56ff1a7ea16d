//! Quarantine of misbehaving connectors, after PostHog's HogWatcher: each
//! connector of a team's chain has a rolling window of its last [`WINDOW`]
//! calls. Over budget ([`ERROR_BUDGET`] errors, or [`TIME_BUDGET`] of wall
//! time, in the window) a healthy connector becomes `degraded` (logged,
//! visible); [`GRACE`] more failing (or slow) calls while over budget make it
//! `disabled` and the chain skips it until a PUT of the chain re-enables it.

use std::collections::VecDeque;
use std::time::Duration;

pub const WINDOW: usize = 20;
pub const ERROR_BUDGET: usize = 5;
pub const TIME_BUDGET: Duration = Duration::from_secs(5);
pub const GRACE: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Degraded,
    Disabled,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Disabled => "disabled",
        }
    }

    /// The state `as_str` spells `text`; anything else is an error.
    pub fn parse(text: &str) -> Result<Health, UnknownHealth> {
        match text {
            "healthy" => Ok(Health::Healthy),
            "degraded" => Ok(Health::Degraded),
            "disabled" => Ok(Health::Disabled),
            other => Err(UnknownHealth(other.to_string())),
        }
    }
}

/// A stored quarantine state that is none of [`Health`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown health {0:?}: expected healthy, degraded or disabled")]
pub struct UnknownHealth(pub String);

/// One connector's window and state.
#[derive(Debug, Clone)]
pub struct Watcher {
    window: VecDeque<(bool, Duration)>,
    pub health: Health,
    over_budget_calls: usize,
}

impl Watcher {
    pub fn new(health: Health) -> Watcher {
        Watcher {
            window: VecDeque::with_capacity(WINDOW),
            health,
            over_budget_calls: 0,
        }
    }

    fn over_budget(&self) -> bool {
        let errors = self.window.iter().filter(|(ok, _)| !ok).count();
        let time: Duration = self.window.iter().map(|(_, d)| *d).sum();
        errors >= ERROR_BUDGET || time >= TIME_BUDGET
    }

    /// The reason the connector is over budget, for the log.
    pub fn reason(&self) -> String {
        if self.window.is_empty() && self.health != Health::Healthy {
            // Taken from the stored state, with no call here since.
            return format!(
                "{} in the stored state (decided by another process sharing the database, or before this one started); no calls of it here since",
                self.health.as_str()
            );
        }
        let errors = self.window.iter().filter(|(ok, _)| !ok).count();
        let time: Duration = self.window.iter().map(|(_, d)| *d).sum();
        format!(
            "{errors} errors and {} ms in its last {} calls",
            time.as_millis(),
            self.window.len()
        )
    }

    /// Records one call; returns the new health when it changes.
    pub fn observe(&mut self, ok: bool, duration: Duration) -> Option<Health> {
        if self.health == Health::Disabled {
            return None;
        }
        if self.window.len() == WINDOW {
            self.window.pop_front();
        }
        self.window.push_back((ok, duration));
        let over = self.over_budget();
        let next = match (self.health, over) {
            (Health::Healthy, true) => {
                self.over_budget_calls = 0;
                Health::Degraded
            }
            (Health::Degraded, true) => {
                // Only calls that fail (or are slow) count towards disabling: a
                // connector that recovers is not disabled for errors still in its window.
                if !ok || duration >= TIME_BUDGET / WINDOW as u32 {
                    self.over_budget_calls += 1;
                }
                if self.over_budget_calls >= GRACE {
                    Health::Disabled
                } else {
                    Health::Degraded
                }
            }
            (Health::Degraded, false) => Health::Healthy,
            (health, _) => health,
        };
        (next != self.health).then(|| {
            self.health = next;
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_health_from_the_stored_state_says_so() {
        assert_eq!(
            Watcher::new(Health::Disabled).reason(),
            "disabled in the stored state (decided by another process sharing the database, or before this one started); no calls of it here since"
        );
        assert_eq!(
            Watcher::new(Health::Healthy).reason(),
            "0 errors and 0 ms in its last 0 calls"
        );
    }

    #[test]
    fn errors_degrade_then_disable_and_recovery_heals() {
        let mut watcher = Watcher::new(Health::Healthy);
        let fast = Duration::from_millis(1);
        for _ in 0..ERROR_BUDGET - 1 {
            assert_eq!(watcher.observe(false, fast), None);
        }
        assert_eq!(watcher.observe(false, fast), Some(Health::Degraded));
        for _ in 0..GRACE - 1 {
            assert_eq!(watcher.observe(false, fast), None);
        }
        assert_eq!(watcher.observe(false, fast), Some(Health::Disabled));
        assert_eq!(watcher.observe(true, fast), None, "disabled stays disabled");

        let mut watcher = Watcher::new(Health::Healthy);
        for _ in 0..ERROR_BUDGET {
            watcher.observe(false, fast);
        }
        assert_eq!(watcher.health, Health::Degraded);
        let mut healed = None;
        for _ in 0..WINDOW {
            healed = healed.or(watcher.observe(true, fast));
        }
        assert_eq!(healed, Some(Health::Healthy));
    }

    #[test]
    fn health_parses_its_own_names_only() {
        for health in [Health::Healthy, Health::Degraded, Health::Disabled] {
            assert_eq!(Health::parse(health.as_str()), Ok(health));
        }
        for text in ["", "Healthy", "sleeping"] {
            assert_eq!(
                Health::parse(text),
                Err(UnknownHealth(text.into())),
                "{text:?}"
            );
        }
        assert_eq!(
            UnknownHealth("sleeping".into()).to_string(),
            "unknown health \"sleeping\": expected healthy, degraded or disabled"
        );
    }

    #[test]
    fn slow_calls_count_against_the_time_budget() {
        let mut watcher = Watcher::new(Health::Healthy);
        assert_eq!(watcher.observe(true, TIME_BUDGET), Some(Health::Degraded));
    }
}
