//! The differential test: our own connectors, each written the way PostHog
//! connectors are, run by `sandpipe run` and by a Node.js 20 reference runner
//! with PostHog's semantics (`tests/compat/runner.js`); the outputs must be
//! identical.
//!
//! Every directory of `tests/compat/cases/` is one case: a `chain.json` (a
//! `sandpipe run` chain file; the connectors are directories next to it) and
//! an `events.ndjson`. Both sides must give, byte for byte, the same events
//! (stdout), the same composed webhooks (`--webhooks`), and the same
//! `console.log` lines of the connectors (stderr lines `[NAME (i)] log: …`;
//! error lines are not compared, their wording is each host's own). To cover
//! another behaviour, add a case directory: nothing here changes.

mod common;

use common::root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What one side wrote for a case.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: String,
    webhooks: String,
    logs: Vec<String>,
}

fn outcome(output: &Output, webhooks: &Path, side: &str, case: &str) -> Outcome {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{case}: {side} failed: {stderr}");
    Outcome {
        events: String::from_utf8(output.stdout.clone()).unwrap(),
        webhooks: std::fs::read_to_string(webhooks).unwrap(),
        logs: stderr
            .lines()
            .filter(|line| line.starts_with('[') && line.contains("] log: "))
            .map(str::to_string)
            .collect(),
    }
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root().join("tests/compat/cases"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("chain.json").is_file())
        .collect();
    cases.sort();
    cases
}

fn run_case(case: &Path) -> (Outcome, Outcome) {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let work = tempfile::tempdir().unwrap();
    let chain = case.join("chain.json");
    let events = case.join("events.ndjson");

    let ours = work.path().join("sandpipe-webhooks.ndjson");
    let output = Command::new(env!("CARGO_BIN_EXE_sandpipe"))
        .arg("run")
        .arg(&chain)
        .arg("--events")
        .arg(&events)
        .arg("--webhooks")
        .arg(&ours)
        .arg("--storage")
        .arg(work.path().join("storage.db"))
        .env(
            "SANDPIPE_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("module-cache"),
        )
        .output()
        .unwrap();
    let sandpipe = outcome(&output, &ours, "sandpipe", &name);

    let theirs = work.path().join("node-webhooks.ndjson");
    let output = Command::new("node")
        .arg(root().join("tests/compat/runner.js"))
        .arg(&chain)
        .arg(&events)
        .arg(&theirs)
        .output()
        .expect("Node.js runs (.ci/run installs Node 20)");
    let node = outcome(&output, &theirs, "node", &name);
    (sandpipe, node)
}

#[test]
fn every_case_gives_what_node_with_posthogs_semantics_gives() {
    let cases = cases();
    assert!(cases.len() >= 6, "{cases:?}");
    let mut differ = Vec::new();
    for case in &cases {
        let (sandpipe, node) = run_case(case);
        assert!(!sandpipe.events.is_empty(), "{}: no events", case.display());
        if sandpipe != node {
            differ.push(format!(
                "{}:\n  sandpipe: {sandpipe:#?}\n  node: {node:#?}",
                case.display()
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// The cases check what they were written for: if a case stopped exercising
/// its behaviour (both sides equally wrong, or nothing run), this says so.
#[test]
fn the_cases_exercise_what_they_are_for() {
    let case = |name: &str| run_case(&root().join("tests/compat/cases").join(name)).0;

    let batch = case("batch-only");
    let events: Vec<&str> = batch.events.lines().collect();
    assert_eq!(
        events,
        [
            r#"{"event":"pageview","distinct_id":"a","team_id":1,"properties":{"n":1,"batched":true,"tagged":"pageview","$plugins_succeeded":["batch-filter (0)","tagger (1)"],"$plugins_failed":[]}}"#,
            "null",
            r#"{"event":"$identify","distinct_id":"c","team_id":1,"properties":{"batched":true,"tagged":"$identify","$plugins_succeeded":["batch-filter (0)","tagger (1)"],"$plugins_failed":[]}}"#,
            r#"{"event":"bad-batch","distinct_id":"d","team_id":1,"properties":{"n":4,"tagged":"bad-batch","$plugins_succeeded":["tagger (1)"],"$plugins_failed":["batch-filter (0)"]}}"#,
            r#"{"event":"$snapshot","distinct_id":"e","team_id":1,"properties":{"n":5}}"#,
        ]
    );

    // PostHog's storage: a key never set is the default, undefined without
    // one (so the property is left out); setting undefined deletes.
    let storage = case("storage-defaults");
    assert_eq!(
        storage.events.lines().collect::<Vec<_>>(),
        [
            r#"{"event":"a","distinct_id":"x","team_id":1,"properties":{"missingType":"undefined","withDefault":"default","stored":{"n":1},"afterUndefined":"default","storedNull":null,"count":1,"$plugins_succeeded":["keeper (0)"],"$plugins_failed":[]}}"#,
            r#"{"event":"b","distinct_id":"y","team_id":1,"properties":{"kept":true,"missingType":"undefined","withDefault":"default","stored":{"n":1},"afterUndefined":"default","storedNull":null,"count":2,"$plugins_succeeded":["keeper (0)"],"$plugins_failed":[]}}"#,
        ]
    );

    let webhooks = case("webhook-event").webhooks;
    let bodies: Vec<serde_json::Value> = webhooks
        .lines()
        .map(|line| {
            let request: serde_json::Value = serde_json::from_str(line).unwrap();
            serde_json::from_str(request["body"].as_str().unwrap()).unwrap()
        })
        .collect();
    let times: Vec<&serde_json::Value> = bodies.iter().map(|b| &b["timestamp"]).collect();
    assert_eq!(
        times,
        [
            "2024-03-10T12:00:00.000Z",
            "2024-03-10T12:30:00.250Z",
            "2024-02-29T23:59:59.999Z",
            "2024-05-05T05:05:05.000Z",
            "2023-11-14T22:13:20.123Z",
            "number",
        ]
    );
    assert_eq!(bodies[1]["properties"], serde_json::json!({}));
    assert_eq!(
        bodies[0]["keys"],
        serde_json::json!([
            "uuid",
            "event",
            "team_id",
            "distinct_id",
            "properties",
            "timestamp"
        ])
    );

    let meta = case("meta-json");
    assert_eq!(
        meta.logs,
        [r#"[inspector (0)] log: metrics {} geoip {"geoip":{}}"#]
    );

    let exports = case("on-event-retry");
    let attempts: Vec<String> = exports
        .logs
        .iter()
        .map(|line| line.split(' ').take(5).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        attempts,
        [
            "[exporter (0)] log: attempt 1",
            "[exporter (0)] log: attempt 2",
            "[exporter (0)] log: attempt 3",
            "[exporter (0)] log: exported a",
            "[exporter (0)] log: attempt 1",
            "[exporter (0)] log: attempt 2",
            "[exporter (0)] log: attempt 3",
            "[exporter (0)] log: attempt 4",
            "[exporter (0)] log: attempt 5",
            "[exporter (0)] log: attempt 1",
        ]
    );

    // PostHog passes over the plugins an event lists as having processed it.
    let again = case("already-processed");
    let lines: Vec<&str> = again.events.lines().collect();
    assert_eq!(
        lines[1..3],
        [
            r#"{"event":"again","properties":{"$plugins_succeeded":["marker (0)","marker (2)","marker (1)"],"$plugins_failed":[],"ran":1}}"#,
            r#"{"event":"again","properties":{"$plugins_succeeded":["marker (0)","marker (2)"],"$plugins_failed":["marker (1)"],"kept":true,"ran":2}}"#,
        ]
    );
    assert_eq!(
        lines[4],
        r#"{"event":"fail","properties":{"$plugins_succeeded":["marker (1)"],"$plugins_failed":["marker (0)","marker (2)"]}}"#
    );

    let exported = case("export-events");
    let calls: Vec<String> = exported
        .logs
        .iter()
        .map(|line| line.split(' ').take(9).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        calls,
        [
            // The first event's batch goes when the third would take it
            // past 200 bytes; the third's goes when the input ends, and again.
            "[batch exporter (0)] log: onEvent pageview a",
            "[batch exporter (0)] log: onEvent skipped b",
            "[batch exporter (0)] log: exportEvents attempt 1: 1 event(s)",
            "[batch exporter (0)] log: onEvent retry-me c",
            "[batch exporter (0)] log: onEvent $feature_flag_called d",
            "[batch exporter (0)] log: exportEvents attempt 1: 1 event(s)",
            "[batch exporter (0)] log: exportEvents attempt 2: 1 event(s)",
        ]
    );
    assert!(
        exported.logs[2].ends_with(
            r#"[{"uuid":"u-1","event":"pageview","team_id":4,"distinct_id":"a","properties":{"path":"/","n":1.5e+21},"timestamp":"2024-10-27T00:59:59.999Z"}]"#
        ),
        "{}",
        exported.logs[2]
    );

    let timers = case("timers");
    assert_eq!(
        timers.logs,
        [
            "[sleeper (0)] log: sync, microtask, promise, h:0, b:5, slept 10, a:20, g:20:xy, tick 1, tick 2, tick 3"
        ]
    );
}
