//! Crash safety: the service under load is killed with SIGKILL while webhooks
//! are pending and storage writes are happening, then restarted on the same
//! database, five times in a row. Every event the service acknowledged must
//! have its webhook delivered at least once and its storage write present, and
//! the database must pass SQLite's integrity check.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Writes each event's sequence number to `meta.storage`, and composes one
/// webhook per event carrying its uuid.
const RECORDER: &str = r#"
async function processEvent(event, { storage }) {
    if (event.event === 'check') {
        const missing = []
        for (const uuid of event.properties.uuids) {
            if ((await storage.get(`seen:${uuid}`)) !== event.properties.expected[uuid]) missing.push(uuid)
        }
        event.properties = { missing }
        return event
    }
    await storage.set(`seen:${event.uuid}`, event.properties.n)
    return event
}
function composeWebhook(event, { config }) {
    if (event.event === 'check') return null
    return { url: config.url, body: JSON.stringify({ uuid: event.uuid }) }
}
"#;

const LOAD_THREADS: usize = 4;
const BATCH: usize = 5;
const ROUNDS: usize = 5;

/// The uuids of the webhook bodies `accepted` (each once, however often it came).
fn delivered(accepted: &Mutex<Vec<String>>) -> BTreeSet<String> {
    accepted
        .lock()
        .unwrap()
        .iter()
        .filter_map(|body| serde_json::from_str::<Value>(body).ok())
        .map(|body| body["uuid"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Sends batches from several threads until `stop`, counting in `acked` the
/// batches acknowledged so far; returns the uuids (with their sequence
/// numbers) of every batch the service acknowledged with 200.
fn load(
    base: &str,
    team: i64,
    token: &str,
    round: usize,
    stop: &AtomicBool,
    acked: &AtomicUsize,
) -> Vec<(String, u64)> {
    let acknowledged = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for thread in 0..LOAD_THREADS {
            let acknowledged = &acknowledged;
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let url = format!("{base}/v1/teams/{team}/events");
            scope.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let batch: Vec<(String, u64)> = (0..BATCH)
                        .map(|_| {
                            n += 1;
                            (format!("r{round}-t{thread}-{n}"), n)
                        })
                        .collect();
                    let events: Vec<Value> = batch
                        .iter()
                        .map(
                            |(uuid, n)| json!({"event": "e", "uuid": uuid, "properties": {"n": n}}),
                        )
                        .collect();
                    let response = client.post(&url).bearer_auth(token).json(&events).send();
                    // Acknowledged only once the whole 200 response arrived.
                    if response.is_ok_and(|r| r.status() == 200 && r.bytes().is_ok()) {
                        acknowledged.lock().unwrap().extend(batch);
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    // Bounded: about 200 events a second per thread.
                    std::thread::sleep(Duration::from_millis(25));
                }
            });
        }
    });
    acknowledged.into_inner().unwrap()
}

/// Asks the recorder, through the restarted service, which writes are missing.
fn missing_writes(
    server: &Server,
    team: i64,
    token: &str,
    acknowledged: &[(String, u64)],
) -> Vec<String> {
    let mut missing = Vec::new();
    for chunk in acknowledged.chunks(200) {
        let uuids: Vec<&str> = chunk.iter().map(|(uuid, _)| uuid.as_str()).collect();
        let expected: serde_json::Map<String, Value> = chunk
            .iter()
            .map(|(uuid, n)| (uuid.clone(), json!(n)))
            .collect();
        let (status, body) = server.events(
            team,
            token,
            json!({"event": "check", "properties": {"uuids": uuids, "expected": expected}}),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["failures"], json!([]), "{body}");
        for uuid in body["results"][0]["properties"]["missing"]
            .as_array()
            .unwrap()
        {
            missing.push(uuid.as_str().unwrap().to_string());
        }
    }
    missing
}

/// SQLite's integrity check of the file; on PostgreSQL, whose server was not
/// killed (only sandpipe was), what the store holds is checked by the counts.
fn integrity(db: &Path) -> String {
    if Backend::current() == Backend::Postgres {
        return "ok".into();
    }
    let connection = rusqlite::Connection::open(db).unwrap();
    connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn acknowledged_events_survive_sigkill_five_times_in_a_row() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("sandpipe.db");
    // Slow enough that deliveries are pending at each kill: PostgreSQL
    // acknowledges events faster than SQLite's synced commits do.
    let delay = match Backend::current() {
        Backend::Sqlite => 5,
        Backend::Postgres => 25,
    };
    // Answers slowly, so deliveries are pending when the service dies.
    let Receiver { port, accepted } = slow_receiver(Duration::from_millis(delay));
    let flags = [
        "--allow-private-webhooks",
        "--webhook-retry-base-ms",
        "50",
        "--webhook-max-attempts",
        "1000",
        "--team-concurrency",
        "4",
    ];
    let (team, token) = {
        let server = Server::start_with(&db, &flags);
        let (team, token) = server.team("t");
        let url_field = r#"{"key": "url", "type": "string", "required": true}"#;
        let recorder = inline("Recorder", RECORDER, url_field);
        let url = format!("http://127.0.0.1:{port}/hook");
        server.chain_of_one(team, &token, recorder, json!({"config": {"url": url}}));
        (team, token)
    };
    let mut acknowledged = Vec::new();
    // Rounds whose kill left an acknowledged event undelivered.
    let mut pending_at_a_kill = 0;
    for round in 0..ROUNDS {
        let mut server = Server::start_with(&db, &flags);
        let stop = AtomicBool::new(false);
        let acked_batches = AtomicUsize::new(0);
        let killed_after = Duration::from_millis(700 + 150 * round as u64);
        let base = server.base.clone();
        let acked = std::thread::scope(|scope| {
            let loader = scope.spawn(|| load(&base, team, &token, round, &stop, &acked_batches));
            std::thread::sleep(killed_after);
            // However slow the machine, not before a batch was acknowledged.
            let waiting = Instant::now();
            while acked_batches.load(Ordering::SeqCst) == 0 {
                assert!(
                    waiting.elapsed() < Duration::from_secs(30),
                    "round {round}: nothing acknowledged in 30 s"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            // SIGKILL, mid-request, with deliveries pending.
            server.child.kill().unwrap();
            server.child.wait().unwrap();
            stop.store(true, Ordering::SeqCst);
            loader.join().unwrap()
        });
        assert!(!acked.is_empty(), "round {round}: nothing was acknowledged");
        let received = delivered(&accepted);
        acknowledged.extend(acked);
        if acknowledged
            .iter()
            .any(|(uuid, _)| !received.contains(uuid))
        {
            pending_at_a_kill += 1;
        }
        assert_eq!(integrity(&db), "ok", "round {round}");
    }
    // The kills hit deliveries in flight: what a speed-dependent race decides
    // per round, the slow receiver makes near-certain over five.
    assert!(
        pending_at_a_kill > 0,
        "no kill left an acknowledged event undelivered"
    );
    // Restarted on the same database: everything acknowledged is delivered and written.
    let server = Server::start_with(&db, &flags);
    let started = Instant::now();
    let undelivered = loop {
        let received = delivered(&accepted);
        let undelivered: Vec<&String> = acknowledged
            .iter()
            .map(|(uuid, _)| uuid)
            .filter(|uuid| !received.contains(*uuid))
            .collect();
        if undelivered.is_empty() || started.elapsed() > Duration::from_secs(60) {
            break undelivered.len();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        undelivered,
        0,
        "acknowledged events without a delivered webhook (of {})",
        acknowledged.len()
    );
    assert_eq!(
        missing_writes(&server, team, &token, &acknowledged),
        Vec::<String>::new()
    );
    drop(server);
    assert_eq!(integrity(&db), "ok");
}
