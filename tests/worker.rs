//! `sandpipe worker` on NATS JetStream: two workers share the consumer
//! `sandpipe-workers` and give exactly one result per valid input id, dead
//! letters for the bad ones and the webhooks once; a worker SIGKILLed again
//! and again loses nothing and duplicates no result; SIGTERM finishes and
//! exits 0; `sandpipe publish` and `serve --nats`'s `?async=true` feed them;
//! a worker calls the teams' scheduled tasks.
//! Real servers: each test starts its own `nats-server -js`, and shares the
//! binary's PostgreSQL and Redis ([`common::backend`]).

mod common;

use async_nats::jetstream::{self, consumer};
use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Marks each event, drops those asking for it, and composes one webhook per
/// event whose body names it.
const MARKER: &str = "function processEvent(e) {
    if (e.properties.drop) return null;
    e.properties.seen = true;
    return e
}
function composeWebhook(e) {
    return { url: 'https://hooks.example/' + e.properties.n, body: JSON.stringify({ n: e.properties.n }) }
}";

/// Largest event the workers accept in these tests.
const MAX_EVENT_BYTES: usize = 2_048;

/// A team no one created.
const UNKNOWN_TEAM: i64 = 999_999;

/// A `sandpipe worker` child process and what it wrote on stderr.
struct WorkerProcess {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl WorkerProcess {
    fn start(nats: &str, store: &[String], extra: &[&str]) -> WorkerProcess {
        WorkerProcess::start_with(nats, store, extra, &[])
    }

    /// One that also logs where each batch starts and ends (`batch pulled`,
    /// `batch done`), so a test can tell when it holds messages.
    fn start_logging_batches(nats: &str, store: &[String], extra: &[&str]) -> WorkerProcess {
        let filter = "info,sandpipe::worker::consume=debug";
        WorkerProcess::start_with(nats, store, extra, &[("RUST_LOG", filter)])
    }

    fn start_with(
        nats: &str,
        store: &[String],
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> WorkerProcess {
        let max_event_bytes = MAX_EVENT_BYTES.to_string();
        let mut args = vec!["worker", "--nats", nats];
        args.extend(store.iter().map(String::as_str));
        args.extend(["--max-event-bytes", &max_event_bytes]);
        args.extend(extra);
        let (child, stderr, ()) = spawn_sandpipe_with(&args, envs, "that it pulls", |line| {
            (line == "sandpipe: worker pulling from SANDPIPE_EVENTS through consumer sandpipe-workers")
                .then_some(())
        });
        WorkerProcess { child, stderr }
    }

    /// Batches begun and batches finished, from a [`Self::start_logging_batches`] worker's log.
    fn batches(&self) -> (usize, usize) {
        let log = self.stderr.lock().unwrap();
        let count = |what: &str| log.lines().filter(|line| line.contains(what)).count();
        (count(" batch pulled"), count(" batch done"))
    }

    /// SIGKILLs it at a moment it holds a pulled batch whose acks it has not
    /// all sent: it is frozen (SIGSTOP) at short intervals until its log,
    /// read once it stops growing, shows a batch begun and not finished.
    /// Panics if that never happens in `limit`.
    fn sigkill_holding_a_batch(&mut self, limit: Duration) {
        let pid = self.child.id() as i32;
        let signal = |signal| {
            // SAFETY: kill has no preconditions; the pid is our child's, not yet reaped.
            assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        };
        let started = Instant::now();
        while started.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(20));
            signal(libc::SIGSTOP);
            // What it wrote before it stopped has reached our reader.
            let mut seen = self.batches();
            loop {
                std::thread::sleep(Duration::from_millis(30));
                let now = self.batches();
                if now == seen {
                    break;
                }
                seen = now;
            }
            let (begun, finished) = seen;
            if begun > finished {
                self.sigkill();
                return;
            }
            signal(libc::SIGCONT);
        }
        panic!(
            "in {limit:?} the worker was never stopped holding a batch: {}",
            self.stderr.lock().unwrap()
        );
    }

    /// Messages it found redelivered, from its `batch holds redelivered messages` lines.
    fn redelivered(&self) -> u64 {
        self.stderr
            .lock()
            .unwrap()
            .lines()
            .filter(|line| line.contains("batch holds redelivered messages"))
            .filter_map(|line| {
                let value = line.split("redelivered=").nth(1)?;
                value.split_whitespace().next()?.parse::<u64>().ok()
            })
            .sum()
    }

    fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The flags that put a process on a new database of the shared PostgreSQL and on the shared Redis.
fn shared_store(name: &str) -> (Vec<String>, String) {
    let shared = Shared::get();
    let database = format!("worker_{name}");
    shared.pg.create_database(&database);
    let url = shared.pg.url(&database);
    (
        vec![
            "--db".into(),
            url.clone(),
            "--cache".into(),
            shared.redis.url(),
        ],
        url,
    )
}

/// One message as the tests publish it.
struct Input {
    team: i64,
    payload: Vec<u8>,
    uuid: Option<String>,
    /// What a worker should do with it.
    expect: Expect,
}

#[derive(Clone, Debug, PartialEq)]
enum Expect {
    Result(Value),
    DeadLetter(String),
}

/// Inputs number `numbers` for teams `a` and `b`: most valid (even ones
/// with a `uuid`, every seventh dropped), and every kind of bad input.
fn inputs(numbers: std::ops::Range<usize>, a: i64, b: i64) -> Vec<Input> {
    let not_json = format!(
        "not JSON: {}",
        serde_json::from_slice::<Value>(b"{not json").unwrap_err()
    );
    numbers
        .map(|i| {
            let team = if i % 3 == 0 { b } else { a };
            let uuid = (i % 2 == 0).then(|| format!("ev-{i}"));
            let mut event = json!({"event": "e", "properties": {"n": i}});
            if let Some(uuid) = &uuid {
                event["uuid"] = json!(uuid);
            }
            if i % 7 == 0 {
                event["properties"]["drop"] = json!(true);
            }
            let valid = |event: Value| {
                let mut result = event.clone();
                let expect = if event["properties"]["drop"] == json!(true) {
                    Value::Null
                } else {
                    result["properties"]["seen"] = json!(true);
                    result["properties"]["$plugins_succeeded"] = json!(["Marker (0)"]);
                    result["properties"]["$plugins_failed"] = json!([]);
                    result
                };
                Expect::Result(expect)
            };
            match i % 100 {
                10 => Input {
                    team,
                    payload: b"{not json".to_vec(),
                    uuid,
                    expect: Expect::DeadLetter(not_json.clone()),
                },
                11 => Input {
                    team,
                    payload: br#"{"properties":{}}"#.to_vec(),
                    uuid,
                    expect: Expect::DeadLetter("an event needs an \"event\" name (a non-empty string), e.g. {\"event\": \"pageview\", \"properties\": {}}".into()),
                },
                12 => Input {
                    team: UNKNOWN_TEAM,
                    payload: serde_json::to_vec(&event).unwrap(),
                    uuid,
                    expect: Expect::DeadLetter(format!(
                        "team {UNKNOWN_TEAM} has no chain, or there is no team {UNKNOWN_TEAM}: PUT /v1/teams/{UNKNOWN_TEAM}/chain, to a team that exists"
                    )),
                },
                13 if i < 1_000 => {
                    event["properties"]["pad"] = json!("x".repeat(MAX_EVENT_BYTES));
                    let payload = serde_json::to_vec(&event).unwrap();
                    Input {
                        team,
                        expect: Expect::DeadLetter(format!(
                            "the event is {} bytes, over the limit of {MAX_EVENT_BYTES} (--max-event-bytes)",
                            payload.len()
                        )),
                        payload,
                        uuid,
                    }
                }
                _ => Input {
                    team,
                    payload: serde_json::to_vec(&event).unwrap(),
                    uuid,
                    expect: valid(event),
                },
            }
        })
        .collect()
}

/// Publishes `inputs` to `sandpipe.events.<team>`, each `uuid` as its
/// `Nats-Msg-Id`; what each published id should become.
async fn publish(js: &jetstream::Context, inputs: Vec<Input>) -> HashMap<String, Expect> {
    let mut expected = HashMap::new();
    for chunk in inputs.chunks(500) {
        let mut acks = Vec::new();
        for input in chunk {
            let mut headers = async_nats::HeaderMap::new();
            if let Some(uuid) = &input.uuid {
                headers.insert("Nats-Msg-Id", uuid.as_str());
            }
            let ack = js
                .publish_with_headers(
                    format!("sandpipe.events.{}", input.team),
                    headers,
                    input.payload.clone().into(),
                )
                .await
                .unwrap();
            acks.push((input, ack));
        }
        for (input, ack) in acks {
            let ack = ack.await.unwrap();
            let id = input
                .uuid
                .clone()
                .unwrap_or_else(|| format!("SANDPIPE_EVENTS:{}", ack.sequence));
            assert!(!ack.duplicate, "{id} published once");
            expected.insert(id, input.expect.clone());
        }
    }
    expected
}

/// Every message of `stream`: its `Sandpipe-Event-Id`, `Nats-Msg-Id`, `Sandpipe-Error` and body.
async fn read_stream(
    js: &jetstream::Context,
    name: &str,
) -> Vec<(String, String, Option<String>, Vec<u8>)> {
    let mut stream = js.get_stream(name).await.unwrap();
    let count = stream.info().await.unwrap().state.messages as usize;
    let reader = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut read = Vec::with_capacity(count);
    while read.len() < count {
        let mut batch = reader
            .batch()
            .max_messages(1_000)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .unwrap();
        use futures_util::StreamExt;
        while let Some(message) = batch.next().await {
            let message = message.unwrap();
            let headers = message.headers.clone().unwrap_or_default();
            let header = |name: &str| headers.get(name).map(|v| v.as_str().to_string());
            read.push((
                header("Sandpipe-Event-Id").unwrap_or_default(),
                header("Nats-Msg-Id").unwrap_or_default(),
                header("Sandpipe-Error"),
                message.payload.to_vec(),
            ));
        }
    }
    read
}

async fn messages_in(js: &jetstream::Context, name: &str) -> u64 {
    js.get_stream(name)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}

/// Waits (at most `limit`) until the results and dead letters number `expected`.
async fn until_done(js: &jetstream::Context, expected: &HashMap<String, Expect>, limit: Duration) {
    let results = expected
        .values()
        .filter(|e| matches!(e, Expect::Result(_)))
        .count() as u64;
    let dead = expected.len() as u64 - results;
    let started = Instant::now();
    loop {
        let (r, d) = (
            messages_in(js, "SANDPIPE_RESULTS").await,
            messages_in(js, "SANDPIPE_DEADLETTER").await,
        );
        if r >= results && d >= dead {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "after {limit:?}: {r} of {results} results, {d} of {dead} dead letters"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (at most `limit`) until the workers' consumer has nothing left to
/// deliver and no delivered message unacknowledged: every redelivery of what
/// a killed worker held has been taken and finished.
async fn until_all_acked(js: &jetstream::Context, limit: Duration) {
    let events = js.get_stream("SANDPIPE_EVENTS").await.unwrap();
    let started = Instant::now();
    loop {
        let info = events.consumer_info("sandpipe-workers").await.unwrap();
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "after {limit:?}: {} messages to deliver, {} unacknowledged",
            info.num_pending,
            info.num_ack_pending
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every id has exactly one result (with its body) or one dead letter (with its reason).
async fn assert_exactly_once(js: &jetstream::Context, expected: &HashMap<String, Expect>) {
    let mut seen: BTreeMap<String, Vec<Expect>> = BTreeMap::new();
    for (id, msg_id, error, body) in read_stream(js, "SANDPIPE_RESULTS").await {
        assert_eq!(msg_id, format!("result:{id}"));
        assert_eq!(error, None);
        let body: Value = serde_json::from_slice(&body).unwrap();
        seen.entry(id).or_default().push(Expect::Result(body));
    }
    for (id, msg_id, error, _) in read_stream(js, "SANDPIPE_DEADLETTER").await {
        assert_eq!(msg_id, format!("deadletter:{id}"));
        seen.entry(id)
            .or_default()
            .push(Expect::DeadLetter(error.expect("a Sandpipe-Error header")));
    }
    assert_eq!(seen.len(), expected.len(), "one outcome per input id");
    for (id, outcomes) in &seen {
        let want = expected
            .get(id)
            .unwrap_or_else(|| panic!("an outcome for {id:?}, which was not published"));
        assert_eq!(outcomes, &vec![want.clone()], "{id}");
    }
}

/// A serve process with teams A and B running [`MARKER`].
fn teams(store: &[String], extra: &[&str]) -> (Server, (i64, String), (i64, String)) {
    let serve = Server::start_on(store, extra);
    let a = serve.team_with_chain("a", vec![inline("Marker", MARKER, "")]);
    let b = serve.team_with_chain("b", vec![inline("Marker", MARKER, "")]);
    (serve, a, b)
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn two_workers_give_one_result_per_input_and_dead_letters_for_the_bad() {
    let nats = NatsServer::start();
    let (store, db) = shared_store("two");
    let (_serve, (a, _), (b, _)) = teams(&store, &[]);
    let workers: Vec<WorkerProcess> = (0..2)
        .map(|_| WorkerProcess::start(&nats.url(), &store, &["--concurrency", "2"]))
        .collect();
    let runtime = tokio();
    let js =
        runtime.block_on(async { jetstream::new(async_nats::connect(nats.url()).await.unwrap()) });
    let inputs = inputs(0..20_000, a, b);
    // A copy published again with the same uuid is dropped by JetStream.
    let copies: Vec<Input> = inputs
        .iter()
        .filter(|input| input.uuid.is_some())
        .take(50)
        .map(|input| Input {
            team: input.team,
            payload: input.payload.clone(),
            uuid: input.uuid.clone(),
            expect: input.expect.clone(),
        })
        .collect();
    let started = Instant::now();
    let expected = runtime.block_on(async {
        let expected = publish(&js, inputs).await;
        for copy in copies {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", copy.uuid.as_deref().unwrap());
            let ack = js
                .publish_with_headers(
                    format!("sandpipe.events.{}", copy.team),
                    headers,
                    copy.payload.into(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            assert!(ack.duplicate);
        }
        until_done(&js, &expected, Duration::from_secs(90)).await;
        expected
    });
    eprintln!(
        "20,000 events through two workers in {:?}",
        started.elapsed()
    );
    runtime.block_on(assert_exactly_once(&js, &expected));
    // One webhook row per event that was not dropped, none twice.
    let hooks = expected
        .values()
        .filter(|e| matches!(e, Expect::Result(body) if !body.is_null()))
        .count();
    let stored = Shared::get().pg.query(
        &db,
        "SELECT count(*) || ' ' || count(DISTINCT body) FROM webhooks",
    );
    assert_eq!(stored, format!("{hooks} {hooks}"));
    // Both workers took a share.
    for worker in &workers {
        let log = worker.stderr.lock().unwrap().clone();
        assert!(log.contains("event refused: dead letter"), "{log}");
    }
    // A refusal for a team with a chain is in that team's log.
    let line = Shared::get().pg.query(
        &db,
        &format!("SELECT message FROM logs WHERE team_id = {a} AND connector = 'sandpipe' ORDER BY id LIMIT 1"),
    );
    assert!(
        line.starts_with("event ")
            && line.contains(&format!(" refused and sent to sandpipe.deadletter.{a}: ")),
        "{line}"
    );
    // SIGTERM: each stops pulling, finishes, exits 0.
    for mut worker in workers {
        // SAFETY: kill has no preconditions; the pid is our child's.
        assert_eq!(
            unsafe { libc::kill(worker.child.id() as i32, libc::SIGTERM) },
            0
        );
        let stopped = Instant::now();
        let status = worker.child.wait().unwrap();
        let stderr = worker.stderr.lock().unwrap().clone();
        assert!(status.success(), "{status}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.contains("sandpipe::worker_cmd: worker stopping: each loop finishes its batch"),
            "{stderr}"
        );
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "{:?}",
            stopped.elapsed()
        );
    }
}

#[test]
fn a_worker_killed_five_times_loses_no_result_and_repeats_none() {
    let nats = NatsServer::start();
    let (store, _) = shared_store("killed");
    let (_serve, (a, _), (b, _)) = teams(&store, &[]);
    // A short ack_wait, so what a killed worker held comes back soon.
    let flags = ["--ack-wait", "2s", "--concurrency", "2"];
    let steady = WorkerProcess::start(&nats.url(), &store, &flags);
    let mut victim = WorkerProcess::start_logging_batches(&nats.url(), &store, &flags);
    let runtime = tokio();
    let js =
        runtime.block_on(async { jetstream::new(async_nats::connect(nats.url()).await.unwrap()) });
    // Published in parts of 1,000 every 400 ms until the victim has died five
    // times (and at least 10 parts), so there is work to be killed holding.
    let killing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let publishing = {
        let js = js.clone();
        let killing = killing.clone();
        runtime.spawn(async move {
            let mut expected = HashMap::new();
            for part in 0.. {
                let more = part < 10 || killing.load(std::sync::atomic::Ordering::Relaxed);
                if !more {
                    break;
                }
                let part = inputs(part * 1_000..(part + 1) * 1_000, a, b);
                expected.extend(publish(&js, part).await);
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            expected
        })
    };
    let mut killed = Vec::new();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(1_000));
        victim.sigkill_holding_a_batch(Duration::from_secs(20));
        killed.push(std::mem::replace(
            &mut victim,
            WorkerProcess::start_logging_batches(&nats.url(), &store, &flags),
        ));
    }
    killing.store(false, std::sync::atomic::Ordering::Relaxed);
    let expected = runtime.block_on(async {
        let expected = publishing.await.unwrap();
        until_done(&js, &expected, Duration::from_secs(90)).await;
        until_all_acked(&js, Duration::from_secs(30)).await;
        expected
    });
    runtime.block_on(assert_exactly_once(&js, &expected));
    let redelivered: u64 = killed
        .iter()
        .chain([&steady, &victim])
        .map(WorkerProcess::redelivered)
        .sum();
    println!(
        "a worker SIGKILLed 5 times: {redelivered} messages redelivered, none lost, no result twice"
    );
    assert!(
        redelivered > 0,
        "each kill stopped a worker holding a batch, yet no message came back"
    );
}

/// Takes a quarter of a second an event, then marks it as [`MARKER`] does.
const SLOW_MARKER: &str = "function processEvent(e) {
    const end = Date.now() + 250;
    while (Date.now() < end) {}
    if (e.properties.drop) return null;
    e.properties.seen = true;
    return e
}";

#[test]
fn a_worker_keeps_to_the_ack_wait_of_the_consumer_that_exists() {
    let nats = NatsServer::start();
    let nats_url = nats.url();
    let (store, _) = shared_store("ack_wait");
    let serve = Server::start_on(&store, &[]);
    let (a, _) = serve.team_with_chain("a", vec![inline("Marker", SLOW_MARKER, "")]);
    // The first worker makes the consumer with an ack_wait of 1 s.
    let mut first = WorkerProcess::start(&nats.url(), &store, &["--ack-wait", "1s"]);
    first.sigkill();
    // The second asks for a minute: the consumer keeps its second, and says so.
    let flags = ["--ack-wait", "60s", "--batch", "12", "--concurrency", "2"];
    let second = WorkerProcess::start(&nats.url(), &store, &flags);
    let warning = "--ack-wait 1m not applied: the consumer sandpipe-workers exists with ack_wait 1s (delete it to change that); this worker keeps to it";
    assert!(
        second.stderr.lock().unwrap().contains(warning),
        "{}",
        second.stderr.lock().unwrap()
    );
    // Twelve events of one team: batches that take seconds, which the
    // worker's progress acks keep from coming back (to its other loop) after
    // the consumer's 1 s.
    let inputs = (1..13)
        .map(|n| {
            let event = json!({"event": "e", "uuid": format!("slow-{n}"), "properties": {"n": n}});
            let mut result = event.clone();
            result["properties"]["seen"] = json!(true);
            result["properties"]["$plugins_succeeded"] = json!(["Marker (0)"]);
            result["properties"]["$plugins_failed"] = json!([]);
            Input {
                team: a,
                payload: serde_json::to_vec(&event).unwrap(),
                uuid: Some(format!("slow-{n}")),
                expect: Expect::Result(result),
            }
        })
        .collect();
    let runtime = tokio();
    runtime.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let expected = publish(&js, inputs).await;
        until_done(&js, &expected, Duration::from_secs(60)).await;
        until_all_acked(&js, Duration::from_secs(30)).await;
        assert_exactly_once(&js, &expected).await;
    });
    assert_eq!(second.redelivered(), 0, "{}", second.stderr.lock().unwrap());

    // A consumer made elsewhere with an ack_wait under the flag's minimum: refused at start.
    drop(second);
    runtime.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let events = js.get_stream("SANDPIPE_EVENTS").await.unwrap();
        events.delete_consumer("sandpipe-workers").await.unwrap();
        events
            .create_consumer(consumer::pull::Config {
                durable_name: Some("sandpipe-workers".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_millis(500),
                ..Default::default()
            })
            .await
            .unwrap();
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["worker", "--nats", &nats_url];
    args.extend(store.iter().map(String::as_str));
    let out = sandpipe(&args, tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().last().unwrap(),
        "sandpipe: error: the consumer sandpipe-workers exists with ack_wait 500ms, under the minimum of 1s: delete it, and a worker makes it again with --ack-wait"
    );
}

#[test]
fn publish_and_async_events_feed_the_workers() {
    let nats = NatsServer::start();
    let (store, _) = shared_store("publish");
    let nats_url = nats.url();
    let (serve, (a, token), _) = teams(&store, &["--nats", &nats_url]);
    let events = format!("/v1/teams/{a}/events?async=true");
    let (status, body) = serve.call(
        "POST",
        &events,
        Some(&token),
        Some(json!([
            {"event": "e", "uuid": "u-1", "properties": {"n": 1}},
            {"event": "e", "properties": {"n": 2}}
        ])),
    );
    assert_eq!(
        (status, body),
        (202, json!({"ids": ["u-1", "SANDPIPE_EVENTS:2"]}))
    );
    // A copy JetStream drops (the same uuid inside its window) is said to be one.
    let (status, body) = serve.call(
        "POST",
        &events,
        Some(&token),
        Some(json!({"event": "e", "uuid": "u-1", "properties": {"n": 1}})),
    );
    assert_eq!(
        (status, body),
        (202, json!({"ids": ["u-1"], "duplicates": ["u-1"]}))
    );
    // Checked before anything is published.
    let (status, body) = serve.call(
        "POST",
        &events,
        Some(&token),
        Some(json!([{"event": "e", "properties": {}}, {"properties": {}}])),
    );
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "event 1: an event needs an \"event\" name (a non-empty string), e.g. {\"event\": \"pageview\", \"properties\": {}}"})
        )
    );
    // An item sandpipe cannot carry is named, and nothing is published.
    let response = serve
        .client
        .post(format!("{}{events}", serve.base))
        .bearer_auth(&token)
        .body(r#"[{"event": "e"}, {"event": "e", "n": 1e400}]"#)
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"error": "event 1: invalid JSON: number out of range at line 1 column 25 (beyond the largest double, where JavaScript reads Infinity: sandpipe does not carry it)"})
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("events.ndjson"),
        "{\"event\":\"e\",\"uuid\":\"u-3\",\"properties\":{\"n\":3}}\n\n{\"event\":\"e\",\"properties\":{\"n\":4}}\n",
    )
    .unwrap();
    let team = a.to_string();
    let publish = |file: &str| {
        sandpipe(
            &["publish", "--nats", &nats_url, "--team", &team, file],
            dir.path(),
        )
    };
    let out = publish("events.ndjson");
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned()
        ),
        (
            Some(0),
            "u-3\nSANDPIPE_EVENTS:4\n".to_string(),
            format!("sandpipe: published 2 events to sandpipe.events.{a}\n")
        )
    );
    std::fs::write(
        dir.path().join("again.ndjson"),
        "{\"event\":\"e\",\"uuid\":\"u-3\",\"properties\":{\"n\":3}}\n",
    )
    .unwrap();
    let out = publish("again.ndjson");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "sandpipe: published 0 events to sandpipe.events.{a}; 1 dropped by JetStream as copies of events it had within its duplicate window (same uuid): u-3\n"
        )
    );
    std::fs::write(dir.path().join("bad.ndjson"), "{\"event\":\"e\"}\n[1]\n").unwrap();
    let out = publish("bad.ndjson");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "sandpipe: error: bad.ndjson:2: not a JSON object; one event object is expected; nothing was published (one event object per line)\n"
    );

    let worker = WorkerProcess::start(&nats.url(), &store, &["--metrics-listen", "127.0.0.1:0"]);
    let runtime = tokio();
    let js =
        runtime.block_on(async { jetstream::new(async_nats::connect(nats.url()).await.unwrap()) });
    let expected: HashMap<String, Expect> = [("u-1", 1), ("SANDPIPE_EVENTS:2", 2), ("u-3", 3), ("SANDPIPE_EVENTS:4", 4)]
        .into_iter()
        .map(|(id, n)| {
            let mut event = json!({"event": "e", "properties": {"n": n, "seen": true, "$plugins_succeeded": ["Marker (0)"], "$plugins_failed": []}});
            if id.starts_with("u-") {
                event["uuid"] = json!(id);
            }
            (id.to_string(), Expect::Result(event))
        })
        .collect();
    runtime.block_on(async {
        until_done(&js, &expected, Duration::from_secs(30)).await;
        assert_exactly_once(&js, &expected).await;
    });
    // --metrics-listen: the worker's figures, without a token.
    let metrics = worker
        .stderr
        .lock()
        .unwrap()
        .lines()
        .find_map(|line| {
            line.strip_prefix("sandpipe: metrics on ")
                .map(str::to_string)
        })
        .expect("the worker prints its metrics address");
    let text = reqwest::blocking::get(&metrics).unwrap().text().unwrap();
    assert!(
        text.contains("sandpipe_worker_messages_total{outcome=\"result\"} 4\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("sandpipe_events_total{{team=\"{a}\"}} 4\n")),
        "{text}"
    );

    // Without --nats the route says what it needs.
    let plain = Server::start_on(&store, &[]);
    let (status, body) = plain.call("POST", &events, Some(&token), Some(json!({"event": "e"})));
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "?async=true needs the service started with --nats"})
        )
    );
}

/// What NATS cannot carry is refused once, not retried: an event over the
/// server's `max_payload` (less the headers' room) answers 413 to
/// `?async=true`; a worker's `--max-event-bytes` over it stops the worker at
/// start; a result over it makes its input a dead letter (it came back every
/// second before, running the chain each time).
#[test]
fn what_nats_cannot_carry_is_refused_not_retried() {
    let nats = NatsServer::start();
    let (store, _) = shared_store("too_large");
    let nats_url = nats.url();
    let (serve, _, (b, token)) = teams(&store, &["--nats", &nats_url]);
    let grower = "function processEvent(e) { e.properties.pad = 'x'.repeat(e.properties.grow || 0); return e }";
    serve.chain_of_one(b, &token, inline("Grower", grower, ""), json!({}));
    // The default NATS server carries 1 MiB a message; 4 KiB are kept for headers.
    let largest = 1_048_576 - 4_096;
    let huge = json!({"event": "e", "properties": {"pad": "x".repeat(largest)}});
    let (status, body) = serve.call(
        "POST",
        &format!("/v1/teams/{b}/events?async=true"),
        Some(&token),
        Some(json!([{"event": "e"}, huge])),
    );
    let bytes = serde_json::to_vec(&huge).unwrap().len();
    assert_eq!(
        (status, body),
        (
            413,
            json!({"error": format!("event 1 is {bytes} bytes, over the {largest} bytes a message of the NATS server may carry (max_payload, less 4096 for headers)")})
        )
    );
    let mut args = vec![
        "worker",
        "--nats",
        &nats_url,
        "--max-event-bytes",
        "1048576",
    ];
    args.extend(store.iter().map(String::as_str));
    let refused = sandpipe(&args, &std::env::temp_dir());
    // (After the NATS client's own info lines.)
    let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(
        (refused.status.code(), stderr.lines().last()),
        (
            Some(1),
            Some(format!("sandpipe: error: --max-event-bytes 1048576 is over the {largest} bytes a message of this NATS server may carry (max_payload 1048576, less 4096 for headers)").as_str())
        )
    );

    let _worker = WorkerProcess::start(&nats_url, &store, &[]);
    let runtime = tokio();
    let js =
        runtime.block_on(async { jetstream::new(async_nats::connect(nats.url()).await.unwrap()) });
    // A small event whose result the chain makes too large for a message.
    let grow = largest;
    let input = Input {
        team: b,
        payload: serde_json::to_vec(
            &json!({"event": "e", "uuid": "grows", "properties": {"grow": grow}}),
        )
        .unwrap(),
        uuid: Some("grows".into()),
        expect: Expect::Result(Value::Null),
    };
    runtime.block_on(async {
        publish(&js, vec![input]).await;
        let started = Instant::now();
        loop {
            let dead = read_stream(&js, "SANDPIPE_DEADLETTER").await;
            if let Some((id, _, error, _)) = dead.first() {
                assert_eq!(id, "grows");
                let error = error.clone().unwrap();
                assert!(
                    error.starts_with("its result is ")
                        && error.ends_with(&format!(" bytes, over the {largest} bytes a message of the NATS server may carry")),
                    "{error}"
                );
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no dead letter");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Once: not retried, and no result.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(read_stream(&js, "SANDPIPE_DEADLETTER").await.len(), 1);
        assert_eq!(read_stream(&js, "SANDPIPE_RESULTS").await.len(), 0);
        // Another client may publish up to max_payload: the dead letter of
        // such an event goes without its body, which would not fit beside
        // its headers, once.
        let big = Input {
            team: b,
            payload: vec![b'x'; largest + 100],
            uuid: Some("big".into()),
            expect: Expect::Result(Value::Null),
        };
        publish(&js, vec![big]).await;
        let started = Instant::now();
        let dead = loop {
            let dead = read_stream(&js, "SANDPIPE_DEADLETTER").await;
            if dead.len() > 1 {
                break dead;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no dead letter");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (id, _, error, body) = &dead[1];
        assert_eq!((id.as_str(), body.len()), ("big", 0));
        assert_eq!(
            error.as_deref(),
            Some(format!("the event is {} bytes, over the limit of {MAX_EVENT_BYTES} (--max-event-bytes) (its {} bytes are left out of this copy: over the {largest} a message may carry beside its headers)", largest + 100, largest + 100).as_str())
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(read_stream(&js, "SANDPIPE_DEADLETTER").await.len(), 2);
    });
}

/// Events per second through `workers` workers on one PostgreSQL and Redis:
/// the counting chain of [`events_per_second`], 20,000 small events
/// published once the workers are ready, timed until every result is in
/// `SANDPIPE_RESULTS`.
fn worker_events_per_second(workers: usize) -> f64 {
    const EVENTS: usize = 20_000;
    let nats = NatsServer::start();
    let (store, _) = shared_store(&format!("bench_{workers}"));
    let serve = Server::start_on(&store, &[]);
    let (team, _) = serve.team_with_chain("bench", vec![inline("Counter", COUNTER, "")]);
    let _workers: Vec<WorkerProcess> = (0..workers)
        .map(|_| WorkerProcess::start(&nats.url(), &store, &[]))
        .collect();
    let runtime = tokio();
    runtime.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let inputs: Vec<Input> = (0..EVENTS)
            .map(|i| Input {
                team,
                payload: serde_json::to_vec(&json!({"event": "e", "properties": {"i": i}}))
                    .unwrap(),
                uuid: None,
                expect: Expect::Result(Value::Null),
            })
            .collect();
        let started = Instant::now();
        let expected = publish(&js, inputs).await;
        until_done(&js, &expected, Duration::from_secs(120)).await;
        EVENTS as f64 / started.elapsed().as_secs_f64()
    })
}

/// The benchmark rows: `cargo test --release --workspace --test worker --
/// --ignored --nocapture worker_throughput` prints events/s through `serve`
/// alone and through 1 and 2 workers, all on PostgreSQL + Redis.
#[test]
#[ignore = "a measurement, run by hand"]
fn worker_throughput() {
    let serve = events_per_second(&shared_store("bench_serve").0);
    let one = worker_events_per_second(1);
    let two = worker_events_per_second(2);
    println!("| Counter chain on PostgreSQL + Redis meta.cache | events/s |");
    println!("|---|---|");
    println!("| serve alone, 2 clients × 50-event batches | {serve:.0} |");
    println!("| 1 worker (NATS JetStream in and out) | {one:.0} |");
    println!("| 2 workers | {two:.0} |");
}

#[test]
fn a_worker_whose_nats_server_is_gone_still_stops_on_sigterm() {
    // Its loops cannot finish a pull or a batch without the server; asked to
    // stop, it exits within its drain limit and says why, and JetStream
    // delivers again what it had not acknowledged.
    let nats = NatsServer::start();
    let (store, _) = shared_store("gone");
    let (_serve, (a, _), _) = teams(&store, &[]);
    let mut worker = WorkerProcess::start(&nats.url(), &store, &["--concurrency", "2"]);
    let runtime = tokio();
    runtime.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        for n in 0..50 {
            let subject = format!("sandpipe.events.{a}");
            let event = json!({"event": "e", "properties": {"n": n}}).to_string();
            js.publish(subject, event.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
    drop(nats);
    // Long enough for several reconnection attempts, each of which async_nats logs.
    std::thread::sleep(Duration::from_millis(3_000));
    {
        let stderr = worker.stderr.lock().unwrap();
        let said = |what: &str| stderr.lines().filter(|l| l.contains(what)).count();
        assert_eq!(
            said("lost the NATS connection; reconnecting"),
            1,
            "{stderr}"
        );
        assert_eq!(said("async_nats"), 0, "{stderr}");
    }
    // SAFETY: kill has no preconditions; the pid is our child's.
    assert_eq!(
        unsafe { libc::kill(worker.child.id() as i32, libc::SIGTERM) },
        0
    );
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "still running: {}",
            worker.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = worker.stderr.lock().unwrap().clone();
    assert!(!stderr.contains("panicked"), "{stderr}");
    if !status.success() {
        assert!(
            stderr.contains("sandpipe: error: stopped with batches unfinished after 10 s (is NATS reachable?); JetStream delivers them again"),
            "{status}: {stderr}"
        );
    }
}

#[test]
fn a_worker_calls_the_teams_scheduled_tasks() {
    // The serve process calls none; the worker, sharing its database, does.
    let nats = NatsServer::start();
    let (store, _) = shared_store("tasks");
    let serve = Server::start_on(&store, &["--no-scheduled-tasks"]);
    let js = "export function runEveryMinute() { console.log('tick') }";
    let (team, token) = serve.team_with_chain("a", vec![inline("Ticker", js, "")]);
    let _worker = WorkerProcess::start(&nats.url(), &store, &["--task-periods", "300ms,1h,1d"]);
    let started = Instant::now();
    while serve.log_messages(team, &token, "").len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            serve.log_messages(team, &token, "")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ticks = serve.log_messages(team, &token, "");
    assert!(ticks.iter().all(|line| line == "tick"), "{ticks:?}");
}
