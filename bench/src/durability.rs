//! `sandpipe-bench durability [--requests N]`: what durability costs the
//! service's events-request commit path. Each request is what an acknowledged
//! request of 5 events commits in `sandpipe serve`: 5 `meta.storage` writes
//! (one transaction each, on the storage connection) and one transaction on
//! the store's connection holding the 5 composed webhooks and 5 log lines.
//! Three modes: everything `NORMAL` (survives a process kill only), everything
//! `FULL` (a sync per commit), and what the service does — storage writes
//! group-committed (one sync per request) and the store's commit `FULL`.
//! Prints the time per request in each mode and the ratios to `NORMAL`.

use sandpipe_runtime::Storage;
use sandpipe_runtime::services::storage::{Durability, Quota, SqliteStorage};
use std::time::{Duration, Instant};

const EVENTS_PER_REQUEST: usize = 5;

/// Runs `requests` requests' commits on a fresh database; their total time.
fn measure(durability: Durability, requests: usize) -> anyhow::Result<Duration> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let storage = SqliteStorage::open_with(&path, durability).map_err(anyhow::Error::msg)?;
    let store = rusqlite::Connection::open(&path)?;
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full | Durability::Group => "FULL",
    };
    store.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};
         CREATE TABLE webhooks (id INTEGER PRIMARY KEY, team_id INTEGER, connector TEXT, url TEXT,
             method TEXT, headers TEXT, body TEXT);
         CREATE TABLE logs (id INTEGER PRIMARY KEY, team_id INTEGER, connector TEXT, level TEXT,
             message TEXT, time TEXT);"
    ))?;
    let value = serde_json::json!({"n": 1, "seen": "2026-01-01T00:00:00Z"});
    let body = "x".repeat(1_000);
    let started = Instant::now();
    for request in 0..requests {
        for event in 0..EVENTS_PER_REQUEST {
            storage
                .set(
                    "team:1#0:bench",
                    &format!("seen:{request}:{event}"),
                    &value,
                    Quota::default(),
                )
                .map_err(anyhow::Error::msg)?;
        }
        storage.sync_writes().map_err(anyhow::Error::msg)?;
        let tx = store.unchecked_transaction()?;
        for _ in 0..EVENTS_PER_REQUEST {
            tx.execute(
                "INSERT INTO webhooks (team_id, connector, url, method, headers, body) VALUES (1, 'c (0)', 'https://example.com/', 'POST', '{}', ?1)",
                [&body],
            )?;
            tx.execute(
                "INSERT INTO logs (team_id, connector, level, message, time) VALUES (1, 'c (0)', 'info', 'line', 'now')",
                [],
            )?;
        }
        tx.commit()?;
    }
    Ok(started.elapsed())
}

pub fn run(requests: usize) -> anyhow::Result<()> {
    // A warm-up of each mode, then the measured runs, alternated.
    measure(Durability::Normal, requests / 10 + 1)?;
    measure(Durability::Full, requests / 10 + 1)?;
    measure(Durability::Group, requests / 10 + 1)?;
    let mut normal = Duration::ZERO;
    let mut full = Duration::ZERO;
    let mut group = Duration::ZERO;
    for _ in 0..3 {
        normal += measure(Durability::Normal, requests)?;
        full += measure(Durability::Full, requests)?;
        group += measure(Durability::Group, requests)?;
    }
    let per = |total: Duration| total.as_secs_f64() * 1e6 / (3 * requests) as f64;
    println!(
        "events-request commits ({EVENTS_PER_REQUEST} storage writes + 1 webhooks/logs transaction), {requests} requests × 3:"
    );
    println!("  synchronous = NORMAL: {:.0} µs per request", per(normal));
    println!("  synchronous = FULL:   {:.0} µs per request", per(full));
    println!("  group commit (serve): {:.0} µs per request", per(group));
    println!(
        "  FULL / NORMAL: {:.2}×; group commit / NORMAL: {:.2}×",
        full.as_secs_f64() / normal.as_secs_f64(),
        group.as_secs_f64() / normal.as_secs_f64()
    );
    Ok(())
}
