//! Numbers pass through exactly: 100,000 doubles written by Node's
//! `JSON.stringify` (random bit patterns, 17-digit decimals, integers around
//! 2^53, subnormals, every exponent, powers of two) go through an identity connector by
//! `sandpipe run` and by the service; each reaches the connector as the double
//! Node's `JSON.parse` gives, and every event leaves — as output, as the
//! service's result and as the webhook body the connector writes — byte for
//! byte as Node writes it. `tests/numbers/doubles.js` makes the events and the
//! expectations with Node.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;

const DOUBLES: usize = 100_000;
/// The generator's seed: change it to look at other doubles.
const SEED: u32 = 20_261_129;

/// `(events, expected)` lines, written by Node into `dir`.
fn node_lines(dir: &Path) -> (Vec<String>, Vec<String>) {
    let status = std::process::Command::new("node")
        .arg(root().join("tests/numbers/doubles.js"))
        .args([DOUBLES.to_string(), SEED.to_string()])
        .arg(dir)
        .status()
        .expect("node (Node.js 20) is on the PATH");
    assert!(status.success());
    let lines = |name: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    (lines("events.ndjson"), lines("expected.ndjson"))
}

/// The first line where `actual` differs from `expected`, with both.
fn assert_lines(what: &str, actual: &[String], expected: &[String]) {
    assert_eq!(actual.len(), expected.len(), "{what}: line count");
    if let Some(index) = (0..expected.len()).find(|&i| actual[i] != expected[i]) {
        let (a, e) = (&actual[index], &expected[index]);
        let at = a.bytes().zip(e.bytes()).take_while(|(x, y)| x == y).count();
        panic!(
            "{what}: line {index} differs from Node's at byte {at}:\n  node:     …{}\n  sandpipe: …{}",
            &e[at.saturating_sub(40)..(at + 40).min(e.len())],
            &a[at.saturating_sub(40)..(at + 40).min(a.len())],
        );
    }
}

#[test]
fn doubles_leave_sandpipe_run_as_node_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_, expected) = node_lines(dir.path());
    let out = run_one_connector(dir.path(), &root().join("tests/numbers/identity"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let output: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_lines("sandpipe run output", &output, &expected);

    let bodies: Vec<String> = std::fs::read_to_string(dir.path().join("webhooks.ndjson"))
        .unwrap()
        .lines()
        .map(|line| {
            let request: Value = serde_json::from_str(line).unwrap();
            request["body"].as_str().unwrap().to_string()
        })
        .collect();
    assert_lines("webhook bodies", &bodies, &expected);
}

#[test]
fn doubles_leave_the_service_as_node_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (events, expected) = node_lines(dir.path());
    let server = Server::start(&dir.path().join("sandpipe.db"));
    let (team, token) = server.team("numbers");
    let (status, bundle) = server.upload(&token, built(&root().join("tests/numbers/identity")));
    assert_eq!(status, 200, "{bundle}");
    let (status, body) = server.put_chain(
        team,
        &token,
        json!({"connectors": [{"bundle": bundle["id"]}]}),
    );
    assert_eq!(status, 200, "{body}");
    // Node's text goes out as it is (no Rust serialiser between), in batches
    // under the request size limit; each answer's results are compared as text.
    for (events, expected) in events.chunks(100).zip(expected.chunks(100)) {
        let response = server
            .client
            .post(format!("{}/v1/teams/{team}/events", server.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(format!("[{}]", events.join(",")))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let text = response.text().unwrap();
        let results = format!("{{\"results\":[{}],", expected.join(","));
        if !text.starts_with(&results) {
            let at = text
                .bytes()
                .zip(results.bytes())
                .take_while(|(x, y)| x == y)
                .count();
            panic!(
                "the service's results differ from Node's at byte {at}:\n  node:     …{}\n  sandpipe: …{}",
                &results[at.saturating_sub(40)..(at + 40).min(results.len())],
                &text[at.saturating_sub(40)..(at + 40).min(text.len())],
            );
        }
    }
}
