//! Issue 13 ("Trust"), end to end: quarantine that disables a connector failing
//! every call however its calls arrive, and never undoes a PUT; captured events
//! in the service; `/metrics` behind a token; `meta.storage` quotas; pruning of
//! finished webhooks; operator limits checked at start.

mod common;

use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const SPINNER: &str = "function processEvent(e) { while (true) {} }";
const FINE: &str = "function processEvent(e) { e.properties.fine = true; return e }";

/// A server whose team's chain is a connector that runs out of fuel on every
/// event, then hello-world.
fn spinning_team(extra: &[&str]) -> (tempfile::TempDir, Arc<Server>, i64, String) {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["--fuel", "20000000"];
    args.extend_from_slice(extra);
    let server = Arc::new(Server::start_with(&tmp.path().join("sandpipe.db"), &args));
    let (team, token) = server.team_with_chain(
        "t",
        vec![
            inline("Spinner", SPINNER, ""),
            built(&root().join("examples/hello-world")),
        ],
    );
    (tmp, server, team, token)
}

fn event() -> Value {
    json!({"event": "e", "properties": {}})
}

fn statuses(server: &Server, team: i64, token: &str) -> Vec<String> {
    let (_, chain) = server.call("GET", &format!("/v1/teams/{team}/chain"), Some(token), None);
    chain["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["name"].as_str().unwrap(),
                c["status"].as_str().unwrap()
            )
        })
        .collect()
}

/// Quarantine lines logged for the spinner, with their figures cut off.
fn quarantine_lines(server: &Server, team: i64, token: &str) -> Vec<String> {
    server
        .log_messages(team, token, "connector=Spinner%20(0)&level=warn")
        .into_iter()
        .map(|m| m.split(" (").next().unwrap().to_string())
        .collect()
}

/// The spinner is disabled (hello-world healthy), an event skips it, and it
/// was logged degraded, then disabled.
fn assert_spinner_disabled_and_skipped(server: &Server, team: i64, token: &str) {
    assert_eq!(
        statuses(server, team, token),
        ["Spinner disabled", "Hello World healthy"]
    );
    let (_, body) = server.events(team, token, event());
    assert_eq!(body["failures"], json!([]));
    assert_eq!(
        quarantine_lines(server, team, token),
        ["quarantine: now degraded", "quarantine: now disabled"]
    );
}

#[test]
fn a_connector_failing_every_call_is_disabled_one_call_per_request() {
    let (_tmp, server, team, token) = spinning_team(&[]);
    let failures: Vec<usize> = (0..20)
        .map(|_| {
            let (status, body) = server.events(team, &token, event());
            assert_eq!(status, 200, "{body}");
            body["failures"].as_array().unwrap().len()
        })
        .collect();
    // Degraded on its 5th call, disabled on its 15th; then skipped.
    assert_eq!(failures, [[1; 15].as_slice(), &[0; 5]].concat());
    assert_eq!(
        statuses(&server, team, &token),
        ["Spinner disabled", "Hello World healthy"]
    );
    assert_eq!(
        quarantine_lines(&server, team, &token),
        ["quarantine: now degraded", "quarantine: now disabled"]
    );
}

#[test]
fn a_connector_failing_every_call_is_disabled_in_batches() {
    let (_tmp, server, team, token) = spinning_team(&[]);
    let failures: Vec<usize> = (0..5)
        .map(|_| {
            let (status, body) = server.events(team, &token, json!([event(), event(), event()]));
            assert_eq!(status, 200, "{body}");
            body["failures"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(failures, [3, 3, 3, 3, 3]);
    assert_spinner_disabled_and_skipped(&server, team, &token);
}

#[test]
fn a_connector_failing_every_call_is_disabled_under_8_concurrent_clients() {
    let (_tmp, server, team, token) = spinning_team(&["--team-concurrency", "8"]);
    let sent = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (server, token, sent, failed) =
                (server.clone(), token.clone(), sent.clone(), failed.clone());
            std::thread::spawn(move || {
                while sent.fetch_add(1, Ordering::SeqCst) < 20 {
                    let (status, body) = server.events(team, &token, event());
                    assert_eq!(status, 200, "{body}");
                    failed.fetch_add(body["failures"].as_array().unwrap().len(), Ordering::SeqCst);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    // 20 calls at most; disabled at the 15th that finished.
    assert!((15..=20).contains(&failed.load(Ordering::SeqCst)));
    assert_spinner_disabled_and_skipped(&server, team, &token);
}

#[test]
fn a_put_during_health_changes_is_never_undone() {
    let (_tmp, server, team, token) = spinning_team(&["--team-concurrency", "8"]);
    let (_, fine) = server.upload(&token, inline("Fine", FINE, ""));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (server, token, done, stop) =
                (server.clone(), token.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    assert_eq!(server.events(team, &token, event()).0, 200);
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // The PUT lands while the spinner's health is changing (degraded at its
    // 5th call, disabled at its 15th) in requests still running on the old chain.
    while done.load(Ordering::SeqCst) < 4 {
        std::thread::yield_now();
    }
    let (status, _) = server.put_chain(
        team,
        &token,
        json!({"connectors": [{"bundle": fine["id"]}]}),
    );
    assert_eq!(status, 200);
    let after = done.load(Ordering::SeqCst);
    while done.load(Ordering::SeqCst) < after + 24 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(statuses(&server, team, &token), ["Fine healthy"]);
    let (_, body) = server.events(team, &token, event());
    assert_eq!(body["failures"], json!([]));
    assert_eq!(body["results"][0]["properties"]["fine"], true);
}

#[test]
fn captured_events_are_returned_and_counted() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team_with_chain(
        "t",
        vec![inline(
            "Capturer",
            "function processEvent(e) { posthog.capture('seen', { n: e.properties.n }); return e }",
            "",
        )],
    );
    let (status, body) = server.events(
        team,
        &token,
        json!([{"event": "a", "properties": {"n": 1}}, {"event": "b", "properties": {"n": 2}}]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["captured"],
        json!([
            {"event": "seen", "distinct_id": "connector-Capturer", "properties": {"n": 1, "$sandpipe_connector": "Capturer (0)"}},
            {"event": "seen", "distinct_id": "connector-Capturer", "properties": {"n": 2, "$sandpipe_connector": "Capturer (0)"}}
        ])
    );
    let (_, metrics) = server.call("GET", "/metrics", Some(ADMIN), None);
    let line = format!("sandpipe_captured_events_total{{team=\"{team}\"}} 2");
    assert!(
        metrics.as_str().unwrap().lines().any(|l| l == line),
        "missing {line} in\n{metrics}"
    );
}

#[test]
fn metrics_need_the_admin_or_the_metrics_token() {
    let (_tmp, server) = Server::fresh(&["--metrics-token", "scrape-me"]);
    let (_, team_token) = server.team("t");
    assert_eq!(
        server.call("GET", "/metrics", None, None),
        (401, json!({"error": "missing bearer token"}))
    );
    let refused = (
        403,
        json!({"error": "metrics need the admin token or the metrics token"}),
    );
    assert_eq!(
        server.call("GET", "/metrics", Some(&team_token), None),
        refused
    );
    assert_eq!(server.call("GET", "/metrics", Some("wrong"), None), refused);
    for token in [ADMIN, "scrape-me"] {
        let (status, body) = server.call("GET", "/metrics", Some(token), None);
        assert_eq!(status, 200);
        assert!(
            body.as_str().unwrap().contains("sandpipe_instances 0"),
            "{body}"
        );
    }
    // The metrics token reaches nothing else.
    assert_eq!(
        server
            .call(
                "POST",
                "/v1/teams",
                Some("scrape-me"),
                Some(json!({"name": "x"}))
            )
            .0,
        401
    );
}

const KEEPER: &str = "async function processEvent(e, { storage }) { await storage.set('key' + e.properties.n, 'v'.repeat(e.properties.size || 1)); return e }";

#[test]
fn storage_quota_from_serve_flags() {
    let (_tmp, server) = Server::fresh(&["--storage-max-keys", "2", "--storage-max-bytes", "100"]);
    let (team, token) = server.team_with_chain("t", vec![inline("Keeper", KEEPER, "")]);
    let events = json!([
        {"event": "e", "properties": {"n": 1}},
        {"event": "e", "properties": {"n": 2}},
        {"event": "e", "properties": {"n": 3}},
        {"event": "e", "properties": {"n": 2, "size": 200}},
        {"event": "e", "properties": {"n": 2, "size": 10}}
    ]);
    let (status, body) = server.events(team, &token, events);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["failures"],
        json!([
            {"event": 2, "connector": "Keeper (0)", "stage": "processEvent",
             "error": "Error: storage quota exceeded: at most 2 keys per connector"},
            {"event": 3, "connector": "Keeper (0)", "stage": "processEvent",
             "error": "Error: storage quota exceeded: at most 100 bytes of keys and values per connector"}
        ])
    );
}

#[test]
fn storage_quota_from_the_chain_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = connector_dir("Keeper", KEEPER, "");
    std::fs::write(
        tmp.path().join("chain.json"),
        json!({"connectors": [{"path": dir.path(), "limits": {"storage_max_bytes": 50}}]})
            .to_string(),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("events.ndjson"),
        "{\"event\": \"e\", \"properties\": {\"n\": 1}}\n{\"event\": \"e\", \"properties\": {\"n\": 2, \"size\": 60}}\n",
    )
    .unwrap();
    let out = sandpipe(
        &["run", "chain.json", "--events", "events.ndjson"],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["properties"]["$plugins_succeeded"],
        json!(["Keeper (0)"])
    );
    assert_eq!(
        lines[1]["properties"]["$plugins_failed"],
        json!(["Keeper (0)"])
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.lines().any(|l| l
            == "events.ndjson:2: [Keeper (0)] warn: host refused: storage quota exceeded: at most 50 bytes of keys and values per connector"),
        "{stderr}"
    );
}

#[test]
fn finished_webhooks_are_pruned_after_the_retention_period() {
    let receiver = receiver();
    let (_tmp, server) = Server::fresh(&[
        "--allow-private-webhooks",
        "--webhook-max-attempts",
        "1",
        "--webhook-retention-hours",
        "0",
    ]);
    let hook = format!(
        "function composeWebhook(e) {{ return {{ url: 'http://127.0.0.1:{}/' + e.properties.path, body: e.properties.path }} }}",
        receiver.port
    );
    let (team, token) = server.team_with_chain("t", vec![inline("Hook", &hook, "")]);
    let (status, body) = server.events(
        team,
        &token,
        json!([{"event": "e", "properties": {"path": "ok"}}, {"event": "e", "properties": {"path": "down"}}]),
    );
    assert_eq!((status, &body["webhooks"]), (200, &json!(2)), "{body}");
    let listed = wait_for(&server, team, &token, |b| b["webhooks"] == json!([]));
    assert_eq!(listed, json!({"webhooks": []}));
    assert_eq!(*receiver.accepted.lock().unwrap(), ["ok"]);
}

/// `sandpipe` with `args` in `dir`: (exit code, stderr). A command that has not
/// stopped after 20 s (a service that started despite its flags) is killed, so
/// the assertion fails instead of the test hanging.
fn fails(args: &[&str], dir: &std::path::Path) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sandpipe"))
        .args(args)
        .current_dir(dir)
        .env(
            "SANDPIPE_CACHE_DIR",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("module-cache"),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn huge_operator_limits_are_one_line_errors_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let serve = |flag: &str, value: &str| {
        fails(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--db",
                "s.db",
                "--admin-token",
                "x",
                flag,
                value,
            ],
            tmp.path(),
        )
    };
    assert_eq!(
        serve("--deadline-ms", "18446744073709551615"),
        (
            Some(1),
            "sandpipe: error: --deadline-ms 18446744073709551615 is over the maximum of 3600000\n"
                .into()
        )
    );
    assert_eq!(
        serve("--memory-mib", "99999999999"),
        (
            Some(1),
            "sandpipe: error: --memory-mib 99999999999 is over the maximum of 256\n".into()
        )
    );
    assert_eq!(
        serve("--fuel", "18446744073709551615"),
        (Some(1), "sandpipe: error: --fuel 18446744073709551615 is over the maximum of 10000000000000000\n".into())
    );
    assert_eq!(
        serve("--webhook-retention-hours", "18446744073709551615"),
        (Some(1), "sandpipe: error: --webhook-retention-hours 18446744073709551615 is over the maximum of 87600\n".into())
    );
    let hello = root().join("examples/hello-world");
    std::fs::write(tmp.path().join("events.ndjson"), "{\"event\": \"e\"}\n").unwrap();
    for (field, value, max) in [
        ("deadline_ms", "18446744073709551615", "3600000"),
        ("memory_mib", "99999999999", "256"),
        ("fuel", "18446744073709551615", "10000000000000000"),
    ] {
        std::fs::write(
            tmp.path().join("chain.json"),
            format!(
                r#"{{"connectors": [{{"path": {hello:?}, "limits": {{"{field}": {value}}}}}]}}"#
            ),
        )
        .unwrap();
        assert_eq!(
            fails(
                &["run", "chain.json", "--events", "events.ndjson"],
                tmp.path()
            ),
            (
                Some(1),
                format!(
                    "sandpipe: error: chain.json: connector 0 (Hello World): limits.{field} {value} is over the maximum of {max}\n"
                )
            )
        );
    }
}
