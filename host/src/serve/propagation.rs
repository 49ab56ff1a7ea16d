//! Chain changes made by other processes on a shared (PostgreSQL) store: every
//! [`POLL`] each team's stored chain and health versions are read, and a team
//! whose stored chain is newer than its entry is loaded again (as a PUT would
//! install it), while one whose health version alone moved takes the stored
//! quarantine states into its entry (keeping its pool's caches and windows).
//! A team another process deleted loses its entry (its chain, tasks and
//! secrets leave this process) and its metrics series. So a PUT, a quarantine
//! change or a deletion on one process is in force on every other within
//! [`POLL`] plus one load.

use super::state::AppState;
use super::store::ChainVersions;
use super::trace::Outage;
use std::time::Duration;

/// How often the stored versions are read.
pub const POLL: Duration = Duration::from_millis(250);

/// Polls forever. A store that cannot be read is logged as an [`Outage`]
/// (when it starts, every 30 s, when it ends), not at every poll.
pub async fn run(state: AppState) {
    const WHAT: &str = "reading stored chain versions";
    let mut outage = Outage::default();
    loop {
        tokio::time::sleep(POLL).await;
        let state = state.clone();
        match tokio::task::spawn_blocking(move || catch_up(&state)).await {
            Ok(Err(error)) => outage.failed(WHAT, &error, false),
            Ok(Ok(())) => outage.succeeded(WHAT),
            Err(_) => {}
        }
    }
}

/// Brings every team's entry up to the stored versions.
fn catch_up(state: &AppState) -> Result<(), super::store::StoreError> {
    let all_stored = state.store.all_chain_versions()?;
    for stored in all_stored.iter().copied() {
        let current = state.teams.get(stored.team).map(|entry| entry.versions);
        match current {
            Some(current) if current.chain > stored.chain => {}
            Some(current) if current.chain == stored.chain => {
                if current.health < stored.health {
                    adopt_healths(state, stored)?;
                }
            }
            _ => {
                if let Err(error) = super::chains::load(state, stored.team) {
                    tracing::warn!(team = stored.team, %error, "loading a chain another process stored");
                } else {
                    tracing::info!(
                        team = stored.team,
                        version = stored.chain,
                        "chain changed elsewhere: installed"
                    );
                }
            }
        }
    }
    // An entry without a stored chain: the team was deleted elsewhere, or
    // its chain was stored here after the versions were read (then the team
    // still exists, and the entry stays).
    let stored: std::collections::HashSet<i64> = all_stored.iter().map(|s| s.team).collect();
    for entry in state.teams.all() {
        if !stored.contains(&entry.team) && !state.store.team_exists(entry.team)? {
            state.teams.remove(entry.team);
            state.metrics.forget_team(entry.team);
            tracing::info!(team = entry.team, "team deleted elsewhere: removed");
        }
    }
    Ok(())
}

/// Takes the stored quarantine states of `stored.team`'s chain.
fn adopt_healths(state: &AppState, stored: ChainVersions) -> Result<(), super::store::StoreError> {
    let healths: Vec<_> = state
        .store
        .chain(stored.team)?
        .into_iter()
        .map(|row| row.health)
        .collect();
    if state.teams.adopt_healths(stored, &healths) {
        tracing::info!(
            team = stored.team,
            "quarantine changed elsewhere: installed"
        );
    }
    Ok(())
}
