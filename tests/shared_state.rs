//! Several `sandpipe serve` processes on one PostgreSQL and one Redis serve as
//! one: what one stores, the others see (chains, bundles, `meta.storage`,
//! `meta.cache`, quarantine, the webhook queue). Real servers, started by the
//! tests on 127.0.0.1 random ports ([`common::backend`]).

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The flags that put a process on a new database of the shared PostgreSQL and on the shared Redis.
fn shared_store(name: &str) -> Vec<String> {
    let shared = Shared::get();
    let database = format!("shared_{name}");
    shared.pg.create_database(&database);
    vec![
        "--db".into(),
        shared.pg.url(&database),
        "--cache".into(),
        shared.redis.url(),
    ]
}

/// The results of `events` posted one at a time, alternately to each of `servers`.
fn alternate(servers: &[&Server], team: i64, token: &str, events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let (status, body) = servers[i % servers.len()].events(team, token, event.clone());
            assert_eq!(status, 200, "{body}");
            body
        })
        .collect()
}

/// How soon a change on one process must be in force on another. README
/// promises a second: `POLL` (250 ms) plus one load, on an idle machine; the
/// tests allow a slow, busy one three.
const PROPAGATES_WITHIN: Duration = Duration::from_secs(3);

/// Waits until `server` runs `team`'s chain (answers other than 409); how long it took.
fn until_installed(server: &Server, team: i64, token: &str) -> Duration {
    let started = Instant::now();
    while server.events(team, token, json!([])).0 == 409 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never installed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

#[test]
fn two_processes_give_what_one_gives() {
    let store = shared_store("as_one");
    let a = Server::start_on(&store, &["--team-concurrency", "4"]);
    let b = Server::start_on(&store, &["--team-concurrency", "4"]);
    let (team, token) = a.team("acme");
    let (status, bundle) = b.upload(&token, inline("Counter", COUNTER, ""));
    assert_eq!(status, 200, "{bundle}");
    let chain = json!({"connectors": [{"bundle": bundle["id"]}]});
    let (status, body) = a.put_chain(team, &token, chain.clone());
    assert_eq!(status, 200, "{body}");
    // The chain PUT on A is in force on B within a second (see PROPAGATES_WITHIN).
    let took = until_installed(&b, team, &token);
    assert!(took < PROPAGATES_WITHIN, "B ran the chain after {took:?}");

    let events: Vec<Value> = (0..20)
        .map(|i| match i {
            4 => json!({"event": "write", "properties": {"value": {"written": "on A"}}}),
            7 => json!({"event": "read", "properties": {}}),
            _ => json!({"event": format!("e{i}"), "properties": {}}),
        })
        .collect();
    let shared = alternate(&[&a, &b], team, &token, &events);
    // The same steps on one process with its own SQLite file and in-memory cache.
    let tmp = tempfile::tempdir().unwrap();
    let one = Server::start_on(
        &[
            "--db".into(),
            tmp.path().join("one.db").display().to_string(),
        ],
        &[],
    );
    let (one_team, one_token) = one.team("acme");
    let (_, one_bundle) = one.upload(&one_token, inline("Counter", COUNTER, ""));
    assert_eq!(one_bundle["id"], bundle["id"]);
    assert_eq!(one.put_chain(one_team, &one_token, chain).0, 200);
    let alone = alternate(&[&one], one_team, &one_token, &events);
    assert_eq!(shared, alone);
    // meta.storage written on A (event 4) was read on B (event 7).
    assert_eq!(
        shared[7]["results"][0]["properties"]["stored"],
        json!({"written": "on A"})
    );

    // 200 events at once over both processes: one counter, 1..200 without a gap or a repeat.
    let a = Arc::new(a);
    let b = Arc::new(b);
    let handles: Vec<_> = (0..4)
        .map(|thread| {
            let server = if thread % 2 == 0 {
                a.clone()
            } else {
                b.clone()
            };
            let token = token.clone();
            std::thread::spawn(move || {
                let mut counts = Vec::new();
                for _ in 0..10 {
                    let batch: Vec<Value> = (0..5)
                        .map(|_| json!({"event": "c", "properties": {"counter": "c"}}))
                        .collect();
                    let (status, body) = server.events(team, &token, Value::Array(batch));
                    assert_eq!(status, 200, "{body}");
                    counts.extend(
                        body["results"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|e| e["properties"]["n"].as_i64().unwrap()),
                    );
                }
                counts
            })
        })
        .collect();
    let mut counts: Vec<i64> = handles
        .into_iter()
        .flat_map(|handle| handle.join().unwrap())
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=200).collect::<Vec<i64>>());
}

#[test]
fn a_connector_quarantined_on_one_process_is_skipped_by_the_other_within_a_second() {
    let store = shared_store("quarantine");
    let a = Server::start_on(&store, &[]);
    let b = Server::start_on(&store, &[]);
    let (team, token) = a.team("t");
    let js = "function processEvent(e) { throw new Error('no') }";
    let thrower = a.chain_of_one(team, &token, inline("Thrower", js, ""), json!({}));
    until_installed(&b, team, &token);
    let failed = |server: &Server| {
        let (status, body) = server.events(team, &token, json!({"event": "e", "properties": {}}));
        assert_eq!(status, 200, "{body}");
        // Absent when no connector ran.
        match &body["results"][0]["properties"]["$plugins_failed"] {
            Value::Null => json!([]),
            failed => failed.clone(),
        }
    };
    assert_eq!(failed(&b), json!(["Thrower (0)"]));
    // 5 errors degrade it, 10 more disable it: all on A.
    for _ in 0..15 {
        assert_eq!(failed(&a), json!(["Thrower (0)"]));
    }
    let disabled_at = Instant::now();
    assert_eq!(failed(&a), json!([]), "A skips it at once");
    let took = loop {
        if failed(&b) == json!([]) {
            break disabled_at.elapsed();
        }
        assert!(
            disabled_at.elapsed() < Duration::from_secs(5),
            "B never skipped it"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(took < PROPAGATES_WITHIN, "B skipped it after {took:?}");
    // A PUT on B re-enables it everywhere.
    let chain = json!({"connectors": [{"bundle": thrower}]});
    assert_eq!(b.put_chain(team, &token, chain).0, 200);
    let started = Instant::now();
    while failed(&a) != json!(["Thrower (0)"]) {
        assert!(started.elapsed() < PROPAGATES_WITHIN, "A kept it disabled");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A webhook receiver that answers after `delay`, counting each body it got
/// and remembering which were being answered, and when each was last
/// answered, so the test can tell which a kill may have cut.
struct SlowReceiver {
    port: u16,
    received: Arc<Mutex<HashMap<String, usize>>>,
    in_flight: Arc<Mutex<HashSet<String>>>,
    answered: Arc<Mutex<HashMap<String, Instant>>>,
}

fn slow_receiver(delay: Duration) -> SlowReceiver {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(HashMap::new()));
    let in_flight = Arc::new(Mutex::new(HashSet::new()));
    let answered = Arc::new(Mutex::new(HashMap::new()));
    let (counts, flying, done) = (received.clone(), in_flight.clone(), answered.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (counts, flying, done) = (counts.clone(), flying.clone(), done.clone());
            std::thread::spawn(move || {
                let Some((_, body)) = read_request(&stream) else {
                    return;
                };
                let body = String::from_utf8_lossy(&body).into_owned();
                *counts.lock().unwrap().entry(body.clone()).or_insert(0) += 1;
                flying.lock().unwrap().insert(body.clone());
                std::thread::sleep(delay);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                done.lock().unwrap().insert(body.clone(), Instant::now());
                flying.lock().unwrap().remove(&body);
            });
        }
    });
    SlowReceiver {
        port,
        received,
        in_flight,
        answered,
    }
}

#[test]
fn webhooks_are_delivered_when_a_process_is_killed_mid_delivery() {
    const WEBHOOKS: usize = 500;
    let store = shared_store("webhooks");
    let flags = ["--allow-private-webhooks", "--webhook-retry-base-ms", "50"];
    let mut a = Server::start_on(&store, &flags);
    let b = Server::start_on(&store, &flags);
    let receiver = slow_receiver(Duration::from_millis(40));
    let (team, token) = a.team("t");
    let webhook = built(&root().join("examples/webhook"));
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    a.chain_of_one(team, &token, webhook, json!({"config": {"url": url}}));
    until_installed(&b, team, &token);
    // Composed across both: 20 batches of 25, alternately on A and B.
    for batch in 0..WEBHOOKS / 25 {
        let events: Vec<Value> = (0..25)
            .map(|i| json!({"event": "e", "uuid": format!("u{}", batch * 25 + i)}))
            .collect();
        let server = if batch % 2 == 0 { &a } else { &b };
        let (status, body) = server.events(team, &token, Value::Array(events));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["webhooks"], 25);
    }
    // Mid-delivery: A dies with requests in flight.
    while receiver.received.lock().unwrap().len() < 40 {
        std::thread::sleep(Duration::from_millis(5));
    }
    a.child.kill().unwrap();
    let killed = Instant::now();
    a.child.wait().unwrap();
    // A request A wrote just before it died is read by the receiver a little
    // later (a thread per connection): let it catch up before the cut.
    std::thread::sleep(Duration::from_millis(300));
    // Cut: in flight at the kill, or answered so shortly before it that the
    // killed process may not have recorded the delivery yet, or since (at
    // least once: those are sent again too).
    let mut cut: HashSet<String> = receiver.in_flight.lock().unwrap().clone();
    cut.extend(
        receiver
            .answered
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, at)| **at + Duration::from_secs(2) > killed)
            .map(|(body, _)| body.clone()),
    );
    let delivered_at_kill = receiver.received.lock().unwrap().len();
    assert!(delivered_at_kill < WEBHOOKS, "nothing was left to deliver");
    let _restarted = Server::start_on(&store, &flags);
    // Every webhook arrives (a cut one once its lease expires).
    let started = Instant::now();
    while receiver.received.lock().unwrap().len() < WEBHOOKS {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} of {WEBHOOKS} delivered",
            receiver.received.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let received = receiver.received.lock().unwrap().clone();
    let twice: Vec<&String> = received
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(body, _)| body)
        .collect();
    println!(
        "{WEBHOOKS} webhooks, {} delivered when a process was killed with {} requests in flight; \
         {} delivered twice",
        delivered_at_kill,
        cut.len(),
        twice.len()
    );
    assert_eq!(received.len(), WEBHOOKS);
    assert!(received.values().all(|count| *count <= 2), "{received:?}");
    // Only a request in flight at the kill (from either process) is sent again.
    for body in &twice {
        assert!(
            cut.contains(*body),
            "delivered twice without being cut: {body}"
        );
    }
    // Every row ends delivered, the cut ones with their cut attempt counted.
    let (_, rows) = b.call(
        "GET",
        &format!("/v1/teams/{team}/webhooks?status=delivered"),
        Some(&token),
        None,
    );
    let rows = rows["webhooks"].as_array().unwrap();
    assert_eq!(rows.len(), WEBHOOKS);
    let retried = rows.iter().filter(|row| row["attempts"] == 2).count();
    assert!(
        retried >= twice.len(),
        "{retried} rows with 2 attempts, {} delivered twice",
        twice.len()
    );
}

/// Asked for every library's debug lines, the service still logs no secret
/// and no event: PostgreSQL's client logs each statement's parameters at
/// debug, and is capped.
#[test]
fn debug_logging_on_postgresql_shows_no_secret_and_no_event() {
    let store = shared_store("debug_logs");
    let server = Server::start_on_with(&store, &[], &[("RUST_LOG", "debug")]);
    let (team, token) = server.team("acme");
    let keeper = inline(
        "Keeper",
        "function processEvent(e, { config }) { e.properties.seen = config.apiKey.length; return e }",
        r#"{"key": "apiKey", "type": "string", "secret": true, "required": true}"#,
    );
    let config = json!({"config": {"apiKey": "SECRET-api-key-81f3"}});
    server.chain_of_one(team, &token, keeper, config);
    let (status, body) = server.events(
        team,
        &token,
        json!({"event": "EVENT-NAME-5c2e", "properties": {}}),
    );
    assert_eq!(
        (status, &body["results"][0]["properties"]["seen"]),
        (200, &json!(19))
    );
    let stderr = server.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains(" DEBUG "),
        "debug lines were asked for: {stderr}"
    );
    for leak in ["SECRET-api-key-81f3", "EVENT-NAME-5c2e", &token] {
        assert!(!stderr.contains(leak), "{leak} in the log: {stderr}");
    }
}

#[test]
fn an_empty_chain_put_on_one_process_is_in_force_on_the_others() {
    let store = shared_store("emptied");
    let a = Server::start_on(&store, &[]);
    let b = Server::start_on(&store, &[]);
    let (team, token) = a.team("acme");
    let js = "function processEvent(e) { e.properties.tagged = true; return e }";
    a.chain_of_one(team, &token, inline("Tagger", js, ""), json!({}));
    until_installed(&b, team, &token);
    let tagged = |server: &Server| {
        let (status, body) = server.events(team, &token, json!({"event": "e", "properties": {}}));
        assert_eq!(status, 200, "{body}");
        body["results"][0]["properties"]["tagged"] == true
    };
    assert!(tagged(&b));
    assert_eq!(a.put_chain(team, &token, json!({"connectors": []})).0, 200);
    assert!(!tagged(&a));
    let started = Instant::now();
    while tagged(&b) {
        assert!(
            started.elapsed() < PROPAGATES_WITHIN,
            "B still runs the chain A replaced"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A process started now runs the empty chain too (events pass unchanged).
    let c = Server::start_on(&store, &[]);
    assert!(!tagged(&c));
}

#[test]
fn a_team_deleted_on_one_process_stops_on_the_others() {
    let store = shared_store("deleted");
    let receiver = receiver();
    let flags = [
        "--task-periods",
        "1s,1h,1d",
        "--fetch-allow",
        "127.0.0.1",
        "--fetch-allow-private",
    ];
    let a = Server::start_on(&store, &flags);
    let b = Server::start_on(&store, &flags);
    let (team, token) = a.team("acme");
    // Its task calls out every second, from whichever process claims the period.
    let js = "export async function runEveryMinute({ config }) { await fetch(config.url, { method: 'POST', body: 'tick' }) }";
    let caller = inline("Caller", js, r#"{"key": "url", "type": "string"}"#);
    let url = format!("http://127.0.0.1:{}/ok", receiver.port);
    a.chain_of_one(team, &token, caller, json!({"config": {"url": url}}));
    until_installed(&b, team, &token);
    assert_eq!(b.events(team, &token, json!({"event": "e"})).0, 200);
    let series = |server: &Server| -> usize {
        let (_, text) = server.call("GET", "/metrics", Some(ADMIN), None);
        let label = format!("team=\"{team}\"");
        text.as_str()
            .unwrap()
            .lines()
            .filter(|l| l.contains(&label))
            .count()
    };
    assert!(series(&b) > 0);
    let started = Instant::now();
    while receiver.accepted.lock().unwrap().len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(20), "no task ran");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (status, body) = a.call("DELETE", &format!("/v1/teams/{team}"), Some(ADMIN), None);
    assert_eq!(status, 200, "{body}");
    // B lets the team go (its chain, its tasks, its metrics series) within
    // the propagation bound.
    let deleted = Instant::now();
    while series(&b) > 0 {
        assert!(
            deleted.elapsed() < PROPAGATES_WITHIN,
            "B still has the deleted team's series"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(series(&a), 0);
    // A run that had begun may finish; after it, no process calls out for
    // the team any more.
    std::thread::sleep(Duration::from_secs(2));
    let calls = receiver.accepted.lock().unwrap().len();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        receiver.accepted.lock().unwrap().len(),
        calls,
        "the deleted team's task still ran"
    );
}

#[test]
fn two_processes_run_each_period_of_a_scheduled_task_once() {
    let store = shared_store("tasks");
    let periods = ["--task-periods", "1s,1h,1d"];
    let a = Server::start_on(&store, &periods);
    let (team, token) = a.team("acme");
    // Each run logs when it started, by the wall clock.
    let js = "export function runEveryMinute() { console.log(`tick ${Date.now()}`) }";
    a.chain_of_one(team, &token, inline("ticker", js, ""), json!({}));
    let b = Server::start_on(&store, &periods);
    until_installed(&b, team, &token);
    let ticks = |server: &Server| -> Vec<i64> {
        server
            .log_messages(team, &token, "")
            .iter()
            .filter_map(|m| m.strip_prefix("tick ")?.parse().ok())
            .collect()
    };
    let started = Instant::now();
    while ticks(&a).len() < 6 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            ticks(&a)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Both processes claim every period; one wins each: no second's run twice.
    let runs = ticks(&b);
    let mut seconds: Vec<i64> = runs.iter().map(|ms| ms / 1_000).collect();
    seconds.dedup();
    assert_eq!(seconds.len(), runs.len(), "{runs:?}");
}

#[test]
fn bad_or_unreachable_servers_are_one_line_errors_at_start() {
    let start = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_sandpipe"))
            .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", "x"])
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        stderr.trim_end().to_string()
    };
    let free = free_port();
    let refused = start(&[
        "--db",
        &format!("postgres://sandpipe:hunter2@127.0.0.1:{free}/x"),
    ]);
    assert!(
        refused.starts_with(&format!(
            "sandpipe: error: --db postgres://sandpipe:***@127.0.0.1:{free}/x: error connecting to server: "
        )),
        "{refused}"
    );
    assert!(!refused.contains("hunter2"), "{refused}");
    let invalid = start(&["--db", "postgres://127.0.0.1:notaport/x"]);
    assert!(
        invalid.starts_with("sandpipe: error: --db postgres://127.0.0.1:notaport/x: invalid URL: "),
        "{invalid}"
    );
    let shared = Shared::get();
    let db = shared.pg.url("postgres");
    assert_eq!(
        start(&["--db", &db, "--cache", "http://127.0.0.1:1/"]),
        "sandpipe: error: --cache http://127.0.0.1:1/: expected a redis:// URL"
    );
    let unreachable = start(&[
        "--db",
        &db,
        "--cache",
        &format!("redis://127.0.0.1:{free}/"),
    ]);
    assert!(
        unreachable.starts_with(&format!(
            "sandpipe: error: --cache redis://127.0.0.1:{free}/: cannot connect: "
        )),
        "{unreachable}"
    );
    // Without --admin-token, a start that fails on --cache neither prints
    // nor stores a generated admin token (it would never be shown again).
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("fresh.db").display().to_string();
    let cache = format!("redis://127.0.0.1:{free}/");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sandpipe"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &fresh,
            "--cache",
            &cache,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("sandpipe: error: --cache "), "{stderr}");
}

#[test]
fn a_lost_server_answers_503_with_the_reason_until_it_returns() {
    let pg = PgServer::start();
    let redis = RedisServer::start();
    pg.create_database("lost");
    let store = vec!["--db".into(), pg.url("lost"), "--cache".into(), redis.url()];
    let server = Server::start_on(&store, &[]);
    let (team, token) = server.team("t");
    let (_, counter) = server.upload(&token, inline("Counter", COUNTER, ""));
    assert_eq!(
        server
            .put_chain(
                team,
                &token,
                json!({"connectors": [{"bundle": counter["id"]}]})
            )
            .0,
        200
    );
    // A team whose connectors never call `meta.cache`.
    let (plain, plain_token) = server.team("plain");
    let (_, hello) = server.upload(&plain_token, built(&root().join("examples/hello-world")));
    assert_eq!(
        server
            .put_chain(
                plain,
                &plain_token,
                json!({"connectors": [{"bundle": hello["id"]}]})
            )
            .0,
        200
    );
    let event = json!({"event": "e", "properties": {}});
    assert_eq!(server.events(team, &token, event.clone()).0, 200);

    assert_eq!(
        server.call("GET", "/healthz", None, None),
        (200, json!("ok"))
    );
    pg.kill();
    let (status, body) = server.events(team, &token, event.clone());
    assert_eq!(status, 503, "{body}");
    let reason = body["error"].as_str().unwrap();
    assert!(reason.starts_with("database unavailable: "), "{reason}");
    // The health check says so too, within the second it keeps an answer.
    let started = Instant::now();
    let body = loop {
        let (status, body) = server.call("GET", "/healthz", None, None);
        if status == 503 {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{status} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("database unavailable: "),
        "{body}"
    );
    pg.resume();
    let started = Instant::now();
    loop {
        let (status, body) = server.events(team, &token, event.clone());
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never recovered: {status} {body} {}",
            server.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    redis.kill();
    let (status, body) = server.events(team, &token, event.clone());
    assert_eq!(status, 503, "{body}");
    let reason = body["error"].as_str().unwrap();
    assert!(
        reason.starts_with("meta.cache is unavailable: "),
        "{reason}"
    );
    // Only a batch whose connectors call the cache fails.
    let (status, body) = server.events(plain, &plain_token, event.clone());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["properties"]["hello"], "Hello world");
    redis.resume();
    let started = Instant::now();
    let body = loop {
        let (status, body) = server.events(team, &token, event.clone());
        if status == 200 {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never recovered: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The restarted Redis kept nothing: the count starts again.
    assert_eq!(body["results"][0]["properties"]["n"], 1);
    // SIGTERM: the service stops cleanly, its Redis connection with it.
    let mut server = server;
    // SAFETY: kill has no preconditions; the pid is our child's.
    assert_eq!(
        unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) },
        0
    );
    let status = server.child.wait().unwrap();
    let stderr = server.stderr.lock().unwrap().clone();
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The benchmark row: `cargo test --release --workspace --test shared_state --
/// --ignored --nocapture serve_throughput` prints events/s through `serve`
/// on SQLite (in-memory cache) and on PostgreSQL + Redis.
#[test]
#[ignore = "a measurement, run by hand"]
fn serve_throughput() {
    let tmp = tempfile::tempdir().unwrap();
    let sqlite = events_per_second(&["--db".into(), tmp.path().join("b.db").display().to_string()]);
    let shared = events_per_second(&shared_store("bench"));
    println!("| serve, Counter chain, 2 clients × 50-event batches | events/s |");
    println!("|---|---|");
    println!("| SQLite + in-memory meta.cache | {sqlite:.0} |");
    println!("| PostgreSQL + Redis meta.cache | {shared:.0} |");
}

/// Every `meta.cache` operation, its refusals and its bounds, as a connector sees them.
const CACHE_SCRIPT: &str = "async function processEvent(e, { cache }) {
    const out = [];
    const step = async (f) => { try { out.push(await f()) } catch (err) { out.push('threw: ' + err.message) } };
    await step(() => cache.get('missing'));
    await step(() => cache.set('v', { a: [1, 'two'] }));
    await step(() => cache.get('v'));
    await step(() => cache.incr('v'));
    await step(() => cache.set('s', '41'));
    await step(() => cache.incr('s'));
    await step(() => cache.incr('s'));
    await step(() => cache.get('s'));
    await step(() => cache.set('gone', 1, 0));
    await step(() => cache.get('gone'));
    await step(() => cache.expire('s', 0));
    await step(() => cache.get('s'));
    await step(() => cache.expire('missing', 5));
    await step(() => cache.lpush('l', ['a', 'b']));
    await step(() => cache.lpush('l', ['c', 'a']));
    await step(() => cache.lrange('l', 0, -1));
    await step(() => cache.lrange('l', 1, 2));
    await step(() => cache.lrange('l', -2, 10));
    await step(() => cache.llen('l'));
    await step(() => cache.lrem('l', 1, 'a'));
    await step(() => cache.lrange('l', 0, -1));
    await step(() => cache.lpop('l', 2));
    await step(() => cache.get('l'));
    await step(() => cache.lpush('v', ['x']));
    await step(() => cache.llen('v'));
    await step(() => cache.incr('l'));
    await step(() => cache.llen('missing'));
    await step(() => cache.lpop('missing', 1));
    let bytes = null;
    for (let i = 0; i < 20 && bytes === null; i++) {
        try { await cache.set('b' + i, 'x'.repeat(900000)) } catch (err) { bytes = i + ': ' + err.message }
    }
    out.push(bytes);
    for (let i = 0; i < 20; i++) await cache.expire('b' + i, 0);
    let full = null;
    for (let i = 0; i < 10001 && full === null; i++) {
        try { await cache.set('k' + i, i) } catch (err) { full = i + ': ' + err.message }
    }
    out.push(full);
    e.properties.out = out;
    return e
}";

#[test]
fn redis_gives_every_cache_operation_what_the_in_memory_cache_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let answers = |store: &[String]| {
        let server = Server::start_on(
            store,
            &["--memory-mib", "256", "--no-fuel", "--deadline-ms", "60000"],
        );
        let (team, token) = server.team("t");
        server.chain_of_one(team, &token, inline("Cache", CACHE_SCRIPT, ""), json!({}));
        let (status, body) = server.events(team, &token, json!({"event": "e", "properties": {}}));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["failures"], json!([]), "{body}");
        body["results"][0]["properties"]["out"].clone()
    };
    let memory = answers(&["--db".into(), tmp.path().join("m.db").display().to_string()]);
    let redis = answers(&shared_store("cache_semantics"));
    assert_eq!(redis, memory);
    assert_eq!(memory[3], "threw: value of \"v\" is not an integer");
    assert_eq!(memory[28], "18: cache is full (16 MiB)");
    assert_eq!(memory[29], "9998: cache is full (10000 keys)");
}
