//! `sandpipe serve` end to end: the real server on 127.0.0.1 with an ephemeral
//! port and a temporary database, spoken to over HTTP.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn upload_configure_and_process_events() {
    let (_tmp, server) = Server::fresh(&[]);
    assert_eq!(
        server.call("GET", "/healthz", None, None),
        (200, Value::String("ok".into()))
    );
    let (team, token) = server.team("acme");
    let (status, hello) = server.upload(&token, built(&root().join("examples/hello-world")));
    assert_eq!(status, 200, "{hello}");
    assert_eq!(hello["manifest"]["name"], "Hello World");
    // The same bytes give the same id.
    assert_eq!(
        server
            .upload(&token, built(&root().join("examples/hello-world")))
            .1["id"],
        hello["id"]
    );
    let (_, secretive) = server.upload(
        &token,
        inline(
            "Secretive",
            "function processEvent(e, { config }) { console.log(`using key ${config.apiKey}`); if (e.properties) e.properties.signed = config.apiKey.length; return e }",
            r#"{"key": "apiKey", "secret": true, "required": true}"#,
        ),
    );
    let chain = json!({"connectors": [
        {"bundle": hello["id"], "config": {"name": "Ada"}},
        {"bundle": secretive["id"], "config": {"apiKey": "s3cr3t-value"}}
    ]});
    let (status, shown) = server.put_chain(team, &token, chain);
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        shown["connectors"][1]["config"],
        json!({"apiKey": "**********"})
    );
    let (status, results) = server.events(
        team,
        &token,
        json!([{"event": "pageview", "properties": {}}, {"event": "$identify"}]),
    );
    assert_eq!(status, 200);
    assert_eq!(
        results,
        json!({"results": [
            {"event": "pageview", "properties": {"hello": "Hello Ada", "signed": 12,
                "$plugins_succeeded": ["Hello World (0)", "Secretive (1)"], "$plugins_failed": []}},
            {"event": "$identify", "properties": {"$plugins_succeeded": ["Hello World (0)", "Secretive (1)"], "$plugins_failed": []}}
        ], "failures": [], "webhooks": 0, "captured": []})
    );
    let (_, got) = server.call(
        "GET",
        &format!("/v1/teams/{team}/chain"),
        Some(&token),
        None,
    );
    assert_eq!(got, shown);
    let messages = server.log_messages(team, &token, "connector=Secretive%20(1)");
    assert_eq!(messages, ["using key **********", "using key **********"]);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !server.stderr.lock().unwrap().contains("s3cr3t-value"),
        "a secret reached the server's log"
    );
    // Metrics need the admin token (tests/trust.rs checks the others).
    let (status, metrics) = server.call("GET", "/metrics", Some(ADMIN), None);
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_string();
    for line in [
        format!(
            "sandpipe_connector_calls_total{{connector=\"Hello World (0)\",stage=\"processEvent\",team=\"{team}\"}} 2"
        ),
        format!(
            "sandpipe_connector_errors_total{{connector=\"Secretive (1)\",stage=\"processEvent\",team=\"{team}\"}} 0"
        ),
        format!("sandpipe_events_total{{team=\"{team}\"}} 2"),
        "sandpipe_instances 2".to_string(),
        format!(
            "sandpipe_connector_wall_seconds_count{{connector=\"Hello World (0)\",stage=\"processEvent\",team=\"{team}\"}} 2"
        ),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line} in\n{metrics}"
        );
    }
}

#[test]
fn tokens_reach_only_their_own_team() {
    let (_tmp, server) = Server::fresh(&[]);
    let (a, token_a) = server.team("a");
    let (b, _) = server.team("b");
    assert_eq!(
        server
            .call("GET", &format!("/v1/teams/{a}/chain"), None, None)
            .0,
        401
    );
    assert_eq!(
        server
            .call("GET", &format!("/v1/teams/{a}/chain"), Some("wrong"), None)
            .0,
        401
    );
    for (method, path, body) in [
        ("GET", format!("/v1/teams/{b}/chain"), None),
        (
            "PUT",
            format!("/v1/teams/{b}/chain"),
            Some(json!({"connectors": []})),
        ),
        (
            "POST",
            format!("/v1/teams/{b}/events"),
            Some(json!({"event": "x"})),
        ),
        ("GET", format!("/v1/teams/{b}/logs"), None),
    ] {
        let (status, body) = server.call(method, &path, Some(&token_a), body);
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body, json!({"error": format!("no team {b}")}));
    }
    assert_eq!(
        server
            .call(
                "POST",
                "/v1/teams",
                Some(&token_a),
                Some(json!({"name": "c"}))
            )
            .0,
        403
    );
    assert_eq!(
        server.call("GET", &format!("/v1/teams/{a}/chain"), Some(&token_a), None),
        (200, json!({"connectors": []}))
    );
}

#[test]
fn bad_bundles_and_bad_config_are_refused_with_reasons() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team("t");
    let (status, body) = server.upload(&token, b"\0asm\x01\0\0\0garbage".to_vec());
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("bundle is not a valid WebAssembly module: "),
        "{body}"
    );
    let (_, webhook) = server.upload(&token, built(&root().join("examples/webhook")));
    let (status, body) = server.put_chain(
        team,
        &token,
        json!({"connectors": [{"bundle": webhook["id"], "config": {}}]}),
    );
    assert_eq!(
        (status, body),
        (
            422,
            json!({
                "error": "connector 0 (Webhook): config field \"url\" is required but has no value",
                "connector": 0,
                "field": "url",
                "problems": [{
                    "connector": 0,
                    "field": "url",
                    "error": "config field \"url\" is required but has no value"
                }]
            })
        )
    );
    let (status, body) = server.put_chain(
        team,
        &token,
        json!({"connectors": [{"bundle": "0".repeat(64)}]}),
    );
    assert_eq!(
        (status, body),
        (
            422,
            json!({
                "error": format!("connector 0: bundle {} is not uploaded", "0".repeat(64)),
                "connector": 0
            })
        )
    );
    // A chain's length bounds what one team makes the service hold.
    let (_, hello) = server.upload(&token, built(&root().join("examples/hello-world")));
    let long: Vec<Value> = (0..51).map(|_| json!({"bundle": hello["id"]})).collect();
    assert_eq!(
        server.put_chain(team, &token, json!({"connectors": long})),
        (
            422,
            json!({"error": "a chain holds at most 50 connectors, got 51"})
        )
    );
    let fifty: Vec<Value> = (0..50).map(|_| json!({"bundle": hello["id"]})).collect();
    assert_eq!(
        server
            .put_chain(team, &token, json!({"connectors": fifty}))
            .0,
        200
    );
}

#[test]
fn a_looping_connector_is_contained_and_the_request_returns() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team("t");
    let (_, spinner) = server.upload(
        &token,
        inline(
            "Spinner",
            "function processEvent(e) { while (true) {} }",
            "",
        ),
    );
    let (_, hello) = server.upload(&token, built(&root().join("examples/hello-world")));
    let chain = json!({"connectors": [{"bundle": spinner["id"]}, {"bundle": hello["id"]}]});
    assert_eq!(server.put_chain(team, &token, chain).0, 200);
    let started = Instant::now();
    let (status, body) = server.events(team, &token, json!({"event": "e", "properties": {}}));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(status, 200);
    assert_eq!(
        body["results"][0]["properties"]["$plugins_failed"],
        json!(["Spinner (0)"])
    );
    assert_eq!(body["results"][0]["properties"]["hello"], "Hello world");
    assert_eq!(body["failures"][0]["connector"], "Spinner (0)");
    assert!(
        body["failures"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("ran out of fuel")
    );

    // Repeated failures: degraded after 5 errors in its window, disabled 10
    // calls later, there and then: the batch's later events pass it over.
    let events: Vec<Value> = (0..20)
        .map(|_| json!({"event": "e", "properties": {}}))
        .collect();
    let (status, body) = server.events(team, &token, Value::Array(events));
    assert_eq!(status, 200);
    let failed: Vec<&Value> = body["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|failure| &failure["event"])
        .collect();
    assert_eq!(
        failed,
        (0..14)
            .map(|i| json!(i))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>()
    );
    for (i, result) in body["results"].as_array().unwrap().iter().enumerate() {
        let (succeeded, failed) = match i < 14 {
            true => (json!(["Hello World (1)"]), json!(["Spinner (0)"])),
            false => (json!(["Hello World (1)"]), json!([])),
        };
        assert_eq!(
            result["properties"]["$plugins_succeeded"], succeeded,
            "event {i}"
        );
        assert_eq!(result["properties"]["$plugins_failed"], failed, "event {i}");
    }
    let (_, chain) = server.call(
        "GET",
        &format!("/v1/teams/{team}/chain"),
        Some(&token),
        None,
    );
    assert_eq!(chain["connectors"][0]["status"], "disabled", "{chain}");
    assert_eq!(chain["connectors"][1]["status"], "healthy");
    let (_, body) = server.events(team, &token, json!({"event": "e", "properties": {}}));
    assert_eq!(body["failures"], json!([]));
    assert_eq!(
        body["results"][0]["properties"]["$plugins_succeeded"],
        json!(["Hello World (1)"])
    );
    assert_eq!(
        body["results"][0]["properties"]["$plugins_failed"],
        json!([])
    );
    let messages = server.log_messages(team, &token, "connector=Spinner%20(0)&level=warn");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with("quarantine: now degraded (5 errors"),
        "{messages:?}"
    );
    assert!(
        messages[1].starts_with("quarantine: now disabled (15 errors"),
        "{messages:?}"
    );
    // A PUT of the chain re-enables it: here the GET's body sent back as it
    // was, its read-only `name` and `status` accepted and not used.
    assert_eq!(chain["connectors"][0]["name"], "Spinner");
    let (status, shown) = server.put_chain(team, &token, chain);
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["connectors"][0]["status"], "healthy");
    assert_eq!(shown["connectors"][0]["bundle"], spinner["id"]);
    assert_eq!(shown["connectors"][1]["bundle"], hello["id"]);
}

#[test]
fn concurrent_requests_do_not_mix() {
    let (_tmp, server) = Server::fresh(&[]);
    let server = Arc::new(server);
    let (team, token) = server.team("t");
    let tagger = inline(
        "Tagger",
        "let n = 0; function processEvent(e) { n += 1; e.properties.copy = e.properties.id; return e }",
        "",
    );
    server.chain_of_one(team, &token, tagger, json!({}));
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let (server, token) = (server.clone(), token.clone());
            std::thread::spawn(move || {
                let (status, body) =
                    server.events(team, &token, json!({"event": "e", "properties": {"id": i}}));
                assert_eq!(status, 200);
                assert_eq!(
                    body["results"][0]["properties"]["copy"],
                    json!(i),
                    "request {i} got another's event"
                );
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

#[test]
fn meta_cache_is_shared_by_every_chain_of_the_pool() {
    // Four requests at once make four chains in the team's pool; they are
    // instances of one configured connector, so they count in one meta.cache.
    let (_tmp, server) = Server::fresh(&["--team-concurrency", "4"]);
    let server = Arc::new(server);
    let (team, token) = server.team("t");
    let counter = inline(
        "Counter",
        "async function processEvent(e, { cache }) { e.properties.n = await cache.incr('n'); const t = Date.now(); while (Date.now() - t < 10) {} return e }",
        "",
    );
    server.chain_of_one(team, &token, counter, json!({}));
    let batch: Vec<Value> = (0..5)
        .map(|_| json!({"event": "e", "properties": {}}))
        .collect();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (server, token, batch) = (server.clone(), token.clone(), batch.clone());
            std::thread::spawn(move || {
                let (status, body) = server.events(team, &token, Value::Array(batch));
                assert_eq!(status, 200, "{body}");
                body["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|event| event["properties"]["n"].as_i64().unwrap())
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut counts: Vec<i64> = handles
        .into_iter()
        .flat_map(|handle| handle.join().unwrap())
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<i64>>());
}

#[test]
fn chains_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("sandpipe.db");
    let (team, token) = {
        let server = Server::start(&db);
        let (team, token) = server.team("t");
        let hello = built(&root().join("examples/hello-world"));
        server.chain_of_one(team, &token, hello, json!({"config": {"name": "again"}}));
        (team, token)
    };
    let server = Server::start(&db);
    let (status, body) = server.events(team, &token, json!({"event": "e", "properties": {}}));
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["properties"]["hello"], "Hello again");
}

#[test]
fn a_stored_chain_this_sandpipe_cannot_run_does_not_stop_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("sandpipe.db");
    let (good, broken) = {
        let server = Server::start(&db);
        let mut teams = Vec::new();
        for (name, example, config) in [
            ("good", "hello-world", json!({"name": "again"})),
            ("broken", "property-filter", json!({"properties": "$ip"})),
        ] {
            let (team, token) = server.team(name);
            let bytes = built(&root().join("examples").join(example));
            let bundle = server.chain_of_one(team, &token, bytes, json!({"config": config}));
            teams.push((team, token, bundle.as_str().unwrap().to_string()));
        }
        (teams.remove(0), teams.remove(0))
    };
    // As after an upgrade whose engine no longer admits it: the stored bytes are refused.
    assert_eq!(set_bundle_bytes(&db, &broken.2, b"\0asm\x01\0\0\0"), 1);

    let server = Server::start(&db);
    let (status, body) = server.events(good.0, &good.1, json!({"event": "e", "properties": {}}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["properties"]["hello"], "Hello again");
    let (status, body) =
        server.events(broken.0, &broken.1, json!({"event": "e", "properties": {}}));
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"],
        format!(
            "team {} has no chain: PUT /v1/teams/{}/chain first",
            broken.0, broken.0
        )
    );
    let logs = server.log_entries(broken.0, &broken.1, "");
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].0, "error");
    assert!(
        logs[0].1.starts_with(&format!(
            "the stored chain was not started: stored bundle {}: ",
            broken.2
        )) && logs[0]
            .1
            .ends_with("; upload rebuilt bundles and PUT the chain again"),
        "{}",
        logs[0].1
    );
}

fn webhook_chain(server: &Server, token: &str, team: i64, url: &str) {
    let webhook = built(&root().join("examples/webhook"));
    server.chain_of_one(team, token, webhook, json!({"config": {"url": url}}));
}

const FAST_RETRIES: [&str; 5] = [
    "--allow-private-webhooks",
    "--webhook-retry-base-ms",
    "50",
    "--webhook-max-attempts",
    "3",
];

#[test]
fn webhooks_are_retried_until_delivered_or_dead() {
    let receiver = receiver();
    let (_tmp, server) = Server::fresh(&FAST_RETRIES);
    let (team, token) = server.team("t");
    webhook_chain(
        &server,
        &token,
        team,
        &format!("http://127.0.0.1:{}/flaky", receiver.port),
    );
    let (status, body) = server.events(
        team,
        &token,
        json!({"event": "signup", "uuid": "u-1", "properties": {"plan": "pro"}}),
    );
    assert_eq!((status, body["webhooks"].clone()), (200, json!(1)));
    let listed = wait_for(&server, team, &token, |b| {
        b["webhooks"][0]["status"] == "delivered"
    });
    assert_eq!(listed["webhooks"][0]["status"], "delivered", "{listed}");
    assert_eq!(
        listed["webhooks"][0]["attempts"], 3,
        "two failures, then success"
    );
    let accepted = receiver.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&accepted[0]).unwrap()["properties"]["plan"],
        "pro"
    );
    let (_, metrics) = server.call("GET", "/metrics", Some(ADMIN), None);
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(
        metrics
            .lines()
            .any(|l| l == "sandpipe_webhook_attempts_total{outcome=\"retry\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "sandpipe_webhook_attempts_total{outcome=\"delivered\"} 1"),
        "{metrics}"
    );

    // A destination that keeps failing is dead after the last attempt, with its error.
    webhook_chain(
        &server,
        &token,
        team,
        &format!("http://127.0.0.1:{}/down", receiver.port),
    );
    server.events(team, &token, json!({"event": "x"}));
    let listed = wait_for(&server, team, &token, |b| {
        b["webhooks"][1]["status"] == "dead"
    });
    assert_eq!(listed["webhooks"][1]["status"], "dead", "{listed}");
    assert_eq!(listed["webhooks"][1]["attempts"], 3);
    assert_eq!(
        listed["webhooks"][1]["last_error"],
        "HTTP 500 Internal Server Error"
    );
    // The team's log says so (once the outcome is recorded), for the
    // connector, naming the origin only.
    let id = listed["webhooks"][1]["id"].as_i64().unwrap();
    let dead_line = format!(
        "webhook {id} to http://127.0.0.1:{}/… is dead after 3 attempts: HTTP 500 Internal Server Error (POST …/webhooks/{id}/redeliver sends it again)",
        receiver.port
    );
    let started = Instant::now();
    loop {
        let warnings = server.log_messages(team, &token, "connector=Webhook&level=warn");
        if !warnings.is_empty() || started.elapsed() > Duration::from_secs(10) {
            assert_eq!(warnings, [dead_line]);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, dead) = server.call(
        "GET",
        &format!("/v1/teams/{team}/webhooks?status=dead"),
        Some(&token),
        None,
    );
    assert_eq!(dead["webhooks"].as_array().unwrap().len(), 1);
}

#[test]
fn private_destinations_are_refused_without_the_flag() {
    let receiver = receiver();
    let (_tmp, server) = Server::fresh(&["--webhook-max-attempts", "1"]);
    let (team, token) = server.team("t");
    webhook_chain(
        &server,
        &token,
        team,
        &format!("http://127.0.0.1:{}/ok", receiver.port),
    );
    server.events(team, &token, json!({"event": "x"}));
    let listed = wait_for(&server, team, &token, |b| {
        b["webhooks"][0]["status"] == "dead"
    });
    assert_eq!(
        listed["webhooks"][0]["last_error"],
        "127.0.0.1 resolves to 127.0.0.1, a loopback address; refused (see --allow-private-webhooks)"
    );
    assert!(receiver.accepted.lock().unwrap().is_empty());
}

#[test]
fn a_metadata_destination_is_refused_with_the_flag_and_no_flag_is_suggested() {
    let (_tmp, server) =
        Server::fresh(&["--webhook-max-attempts", "1", "--allow-private-webhooks"]);
    let (team, token) = server.team("t");
    webhook_chain(&server, &token, team, "http://169.254.169.254/latest");
    server.events(team, &token, json!({"event": "x"}));
    let listed = wait_for(&server, team, &token, |b| {
        b["webhooks"][0]["status"] == "dead"
    });
    assert_eq!(
        listed["webhooks"][0]["last_error"],
        "169.254.169.254 resolves to 169.254.169.254, a cloud metadata address; refused"
    );
}

#[test]
fn pending_webhooks_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("sandpipe.db");
    // Nothing listens on this port while the first server runs: its attempts fail and stay pending.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = [
        "--allow-private-webhooks",
        "--webhook-retry-base-ms",
        "300",
        "--webhook-max-attempts",
        "50",
    ];
    let (team, token) = {
        let server = Server::start_with(&db, &options);
        let (team, token) = server.team("t");
        webhook_chain(
            &server,
            &token,
            team,
            &format!("http://127.0.0.1:{port}/ok"),
        );
        let (_, body) = server.events(team, &token, json!({"event": "kept"}));
        assert_eq!(body["webhooks"], 1);
        // A failed attempt recorded (on PostgreSQL `attempts` counts one in flight too).
        let listed = wait_for(&server, team, &token, |b| {
            b["webhooks"][0]["last_error"].is_string()
        });
        assert_eq!(listed["webhooks"][0]["status"], "pending", "{listed}");
        (team, token)
        // The server is killed here, with the delivery pending.
    };
    // The destination comes up; a server restarted on the same database delivers.
    let delivered = Arc::new(Mutex::new(0));
    let count = delivered.clone();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            *count.lock().unwrap() += 1;
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    let server = Server::start_with(&db, &options);
    let listed = wait_for(&server, team, &token, |b| {
        b["webhooks"][0]["status"] == "delivered"
    });
    assert_eq!(listed["webhooks"][0]["status"], "delivered", "{listed}");
    assert_eq!(*delivered.lock().unwrap(), 1);
}

#[test]
fn the_openapi_document_describes_every_route() {
    let (_tmp, server) = Server::fresh(&[]);
    // Readable without a token.
    let (status, document) = server.call("GET", "/v1/openapi.json", None, None);
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.0.3");
    let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        [
            "/",
            "/healthz",
            "/metrics",
            "/v1/openapi.json",
            "/v1/teams",
            "/v1/teams/{team}",
            "/v1/teams/{team}/token",
            "/v1/bundles",
            "/v1/bundles/{id}",
            "/v1/teams/{team}/chain",
            "/v1/teams/{team}/connectors/{connector}/reset",
            "/v1/teams/{team}/events",
            "/v1/teams/{team}/health",
            "/v1/teams/{team}/logs",
            "/v1/teams/{team}/webhooks",
            "/v1/teams/{team}/webhooks/{webhook}/redeliver"
        ]
    );
    // Every documented method of every path is a route: the router does not
    // answer "no route" or "does not take" (a team that does not exist is
    // the handler's 404, which names the team).
    for (path, item) in document["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{team}", "999")
            .replace("{connector}", "c")
            .replace("{id}", "no-such-bundle")
            .replace("{webhook}", "1");
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| *m != "parameters")
        {
            let (status, body) = server.call(&method.to_uppercase(), &concrete, Some(ADMIN), None);
            let error = body["error"].as_str().unwrap_or("");
            assert!(
                status != 405 && !error.starts_with("no route"),
                "{method} {concrete}: {status} {body}"
            );
        }
    }
}

#[test]
fn operators_list_rotate_delete_and_redeliver() {
    let (_tmp, server) =
        Server::fresh(&["--webhook-max-attempts", "1", "--allow-private-webhooks"]);
    let (a, token_a) = server.team("alpha");
    let (b, token_b) = server.team("beta");
    // Names: unique, 1 to 200 characters.
    assert_eq!(
        server.call(
            "POST",
            "/v1/teams",
            Some(ADMIN),
            Some(json!({"name": "alpha"}))
        ),
        (
            409,
            json!({"error": "a team named \"alpha\" already exists; choose another name"})
        )
    );
    assert_eq!(
        server.call(
            "POST",
            "/v1/teams",
            Some(ADMIN),
            Some(json!({"name": "x".repeat(201)}))
        ),
        (
            422,
            json!({"error": "name must be 1 to 200 characters, got 201"})
        )
    );
    assert_eq!(
        server.call(
            "POST",
            "/v1/teams",
            Some(ADMIN),
            Some(json!({"name": "  "}))
        ),
        (
            422,
            json!({"error": "name must be 1 to 200 characters, got 0"})
        )
    );
    assert_eq!(
        server.call(
            "POST",
            "/v1/teams",
            Some(ADMIN),
            Some(json!({"name": "a\nb"}))
        ),
        (
            422,
            json!({"error": "name must have no control characters, got \"a\\nb\""})
        )
    );
    // An unknown field is refused, not ignored.
    let (status, body) = server.call(
        "POST",
        "/v1/teams",
        Some(ADMIN),
        Some(json!({"name": "gamma", "id": 1})),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `id`"),
        "{body}"
    );
    // The list, exactly this shape.
    let (status, listed) = server.call("GET", "/v1/teams", Some(ADMIN), None);
    assert_eq!(status, 200);
    let teams = listed["teams"].as_array().unwrap();
    assert_eq!(teams.len(), 2);
    for (team, (id, name)) in teams.iter().zip([(a, "alpha"), (b, "beta")]) {
        let keys: Vec<&String> = team.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "name", "created_at"]);
        assert_eq!(
            (team["id"].as_i64().unwrap(), team["name"].as_str().unwrap()),
            (id, name)
        );
        assert!(
            humantime::parse_rfc3339(team["created_at"].as_str().unwrap()).is_ok(),
            "{team}"
        );
    }
    // A team token sees its own team only (the admin page learns its team so).
    let (status, own) = server.call("GET", "/v1/teams", Some(&token_a), None);
    assert_eq!(status, 200, "{own}");
    let own = own["teams"].as_array().unwrap();
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0]["name"], "alpha");
    // Bundles: all for the admin, a team's own chain's for a team.
    let hello = server
        .upload(&token_a, built(&root().join("examples/hello-world")))
        .1["id"]
        .clone();
    let receiver = receiver();
    let (_, webhook) = server.upload(&token_b, built(&root().join("examples/webhook")));
    let (_, all) = server.call("GET", "/v1/bundles", Some(ADMIN), None);
    assert_eq!(all["bundles"].as_array().unwrap().len(), 2);
    let chain = json!({"connectors": [{"bundle": hello}]});
    assert_eq!(server.put_chain(a, &token_a, chain).0, 200);
    let (_, own) = server.call("GET", "/v1/bundles", Some(&token_a), None);
    let own: Vec<&Value> = own["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["name"])
        .collect();
    assert_eq!(own, ["Hello World"]);
    // A dead webhook is delivered again on request (the receiver's /flaky
    // fails twice, and one attempt makes a webhook dead).
    let url = format!("http://127.0.0.1:{}/flaky", receiver.port);
    let chain = json!({"connectors": [{"bundle": webhook["id"], "config": {"url": url}}]});
    assert_eq!(server.put_chain(b, &token_b, chain).0, 200);
    server.events(b, &token_b, json!({"event": "e", "properties": {}}));
    let first = |body: &Value| body["webhooks"][0].clone();
    let dead = first(&wait_for(&server, b, &token_b, |body| {
        first(body)["status"] == "dead"
    }));
    let id = dead["id"].as_i64().unwrap();
    let redeliver = format!("/v1/teams/{b}/webhooks/{id}/redeliver");
    assert_eq!(
        server.call("POST", &redeliver, Some(&token_a), None).0,
        404,
        "another team's webhook is invisible"
    );
    assert_eq!(
        server.call("POST", &redeliver, Some(&token_b), None),
        (200, json!({"redelivering": id}))
    );
    let again = first(&wait_for(&server, b, &token_b, |body| {
        first(body)["status"] == "dead"
    }));
    assert_eq!(
        (again["id"].as_i64(), again["attempts"].as_i64()),
        (Some(id), Some(1))
    );
    assert_eq!(server.call("POST", &redeliver, Some(&token_b), None).0, 200);
    let delivered = first(&wait_for(&server, b, &token_b, |body| {
        first(body)["status"] == "delivered"
    }));
    assert_eq!(delivered["id"], id, "{delivered}");
    assert_eq!(
        server.call("POST", &redeliver, Some(&token_b), None),
        (
            409,
            json!({"error": format!("webhook {id} is not dead; only dead webhooks are delivered again")})
        )
    );
    // Rotating a token: the old one stops working, the new one works.
    let (status, rotated) = server.call(
        "POST",
        &format!("/v1/teams/{a}/token"),
        Some(&token_a),
        None,
    );
    assert_eq!(status, 200);
    let new_token = rotated["token"].as_str().unwrap();
    assert_eq!(
        server
            .call("GET", &format!("/v1/teams/{a}/chain"), Some(&token_a), None)
            .0,
        401
    );
    assert_eq!(
        server
            .call(
                "GET",
                &format!("/v1/teams/{a}/chain"),
                Some(new_token),
                None
            )
            .0,
        200
    );
    // Deleting a team: admin only; then it is gone.
    assert_eq!(
        server.call("DELETE", &format!("/v1/teams/{a}"), Some(new_token), None),
        (
            403,
            json!({"error": "deleting a team needs the admin token"})
        )
    );
    assert_eq!(
        server.call("DELETE", &format!("/v1/teams/{a}"), Some(ADMIN), None),
        (200, json!({"deleted": a}))
    );
    assert_eq!(
        server
            .call(
                "GET",
                &format!("/v1/teams/{a}/chain"),
                Some(new_token),
                None
            )
            .0,
        401
    );
    assert_eq!(
        server.call("DELETE", &format!("/v1/teams/{a}"), Some(ADMIN), None),
        (404, json!({"error": format!("no team {a}")}))
    );
    let (_, listed) = server.call("GET", "/v1/teams", Some(ADMIN), None);
    assert_eq!(listed["teams"].as_array().unwrap().len(), 1);
}

#[test]
fn a_start_that_cannot_listen_stores_no_admin_token() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("sandpipe.db");
    let db = db.to_str().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let failed = std::process::Command::new(env!("CARGO_BIN_EXE_sandpipe"))
        .args(["serve", "--listen", &address, "--db", db])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("sandpipe: error: listening on {address}: ")),
        "{stderr}"
    );
    assert!(!stderr.contains("admin token"), "{stderr}");
    // The next start makes the token, and shows it.
    let (mut child, _, shown) = spawn_sandpipe(
        &["serve", "--listen", "127.0.0.1:0", "--db", db],
        "that it listens",
        |line| {
            if line.starts_with("sandpipe: generated admin token (shown once, store it): sp_admin_")
            {
                Some(true)
            } else {
                line.starts_with("sandpipe: listening on").then_some(false)
            }
        },
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(shown, "the second start showed no admin token");
}

#[test]
fn replacing_a_chain_does_not_disturb_requests_in_flight() {
    // The old connector waits inside its call on a gate the test opens.
    let gate = Gate::start();
    let (_tmp, server) = Server::fresh(&[
        "--team-concurrency",
        "4",
        "--deadline-ms",
        "60000",
        "--fetch-timeout-ms",
        "60000",
        "--fetch-allow",
        "127.0.0.1",
        "--fetch-allow-private",
    ]);
    let server = Arc::new(server);
    let (team, token) = server.team("t");
    let slow = format!(
        "async function processEvent(e) {{ await fetch('{}'); e.properties.version = 'old'; return e }}",
        gate.url
    );
    let (_, old) = server.upload(&token, inline("Tagger", &slow, ""));
    let fresh = "function processEvent(e) { e.properties.version = 'new'; return e }";
    let (_, new) = server.upload(&token, inline("Tagger", fresh, ""));
    let chain = |bundle: &Value| json!({"connectors": [{"bundle": bundle["id"]}]});
    assert_eq!(server.put_chain(team, &token, chain(&old)).0, 200);
    let in_flight = {
        let (server, token) = (server.clone(), token.clone());
        std::thread::spawn(move || {
            server.events(team, &token, json!({"event": "e", "properties": {}}))
        })
    };
    // Replace the chain while the request above is inside its old connector.
    gate.until_reached();
    assert_eq!(server.put_chain(team, &token, chain(&new)).0, 200);
    gate.open();
    let (status, body) = in_flight.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["failures"], json!([]));
    assert_eq!(body["results"][0]["properties"]["version"], "old");
    let (_, body) = server.events(team, &token, json!({"event": "e", "properties": {}}));
    assert_eq!(body["results"][0]["properties"]["version"], "new");
}

/// A connector that counts the events it saw in `meta.storage` and in
/// `meta.cache`; `version` tells its bundles apart.
fn counter(version: u32) -> Vec<u8> {
    inline(
        "Counter",
        &format!(
            "async function processEvent(e, {{ storage, cache }}) {{ const n = ((await storage.get('n')) || 0) + 1; await storage.set('n', n); e.properties.n = n; e.properties.cached = await cache.incr('n'); e.properties.v = {version}; return e }}"
        ),
        "",
    )
}

/// `(v, n, cached)` of one event through `team`'s chain.
fn count(server: &Server, team: i64, token: &str) -> (i64, i64, i64) {
    let (status, body) = server.events(team, token, json!({"event": "e", "properties": {}}));
    assert_eq!(status, 200, "{body}");
    let p = &body["results"][0]["properties"];
    (
        p["v"].as_i64().unwrap(),
        p["n"].as_i64().unwrap(),
        p["cached"].as_i64().unwrap(),
    )
}

#[test]
fn storage_belongs_to_the_connector_id_across_versions_and_reorders() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team("t");
    let v1 = server.upload(&token, counter(1)).1["id"].clone();
    let v2 = server.upload(&token, counter(2)).1["id"].clone();
    let hello = server
        .upload(&token, built(&root().join("examples/hello-world")))
        .1["id"]
        .clone();
    let (status, shown) = server.put_chain(team, &token, json!({"connectors": [{"bundle": v1}]}));
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["connectors"][0]["id"], "Counter");
    assert_eq!(count(&server, team, &token), (1, 1, 1));
    // A new version, now second in the chain: the same id, the same state.
    let chain = json!({"connectors": [{"bundle": hello}, {"bundle": v2}]});
    let (status, shown) = server.put_chain(team, &token, chain);
    assert_eq!(status, 200, "{shown}");
    let ids: Vec<&Value> = shown["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(ids, ["Hello World", "Counter"]);
    assert_eq!(count(&server, team, &token), (2, 2, 2));
    // Explicit ids: a second Counter is another connector with its own state.
    let chain =
        json!({"connectors": [{"bundle": v2, "id": "Counter"}, {"bundle": v1, "id": "second"}]});
    assert_eq!(server.put_chain(team, &token, chain).0, 200);
    let (_, body) = server.events(team, &token, json!({"event": "e", "properties": {}}));
    assert_eq!(body["results"][0]["properties"]["n"], 1, "{body}");
    assert_eq!(body["results"][0]["properties"]["v"], 1, "{body}");
    // Two entries of one plugin without ids: Counter and Counter#2.
    let chain = json!({"connectors": [{"bundle": v2}, {"bundle": v2}]});
    let (_, shown) = server.put_chain(team, &token, chain);
    assert_eq!(shown["connectors"][1]["id"], "Counter#2");
    // Duplicate ids are refused.
    let chain = json!({"connectors": [{"bundle": v2, "id": "x"}, {"bundle": hello, "id": "x"}]});
    assert_eq!(
        server.put_chain(team, &token, chain),
        (
            422,
            json!({"error": "connector 1: id \"x\" is already connector 0's; give one of them another \"id\""})
        )
    );
    // Removed from the chain, the connector's storage is gone.
    let chain = json!({"connectors": [{"bundle": hello}]});
    assert_eq!(server.put_chain(team, &token, chain).0, 200);
    let chain = json!({"connectors": [{"bundle": v2}]});
    assert_eq!(server.put_chain(team, &token, chain).0, 200);
    assert_eq!(count(&server, team, &token), (2, 1, 1));
    assert_eq!(count(&server, team, &token), (2, 2, 2));
    // An explicit reset empties storage and cache.
    assert_eq!(
        server.call(
            "POST",
            &format!("/v1/teams/{team}/connectors/Counter/reset"),
            Some(&token),
            None
        ),
        (200, json!({"reset": "Counter"}))
    );
    assert_eq!(count(&server, team, &token), (2, 1, 1));
    assert_eq!(
        server.call(
            "POST",
            &format!("/v1/teams/{team}/connectors/nope/reset"),
            Some(&token),
            None
        ),
        (
            404,
            json!({"error": format!("team {team}'s chain has no connector with id \"nope\"; GET the chain for its ids")})
        )
    );
}

/// `(status, body)` of a raw request: `body` sent as given, with `content_type` if any.
fn raw(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut request = server
        .client
        .request(method.parse().unwrap(), format!("{}{path}", server.base))
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let is_json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
    assert!(is_json, "{method} {path}: {status} is not JSON");
    (status, response.json().unwrap())
}

#[test]
fn every_error_is_json_and_says_what_to_do() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team("t");
    let error = |text: &str| json!({ "error": text });
    let teams = "/v1/teams";
    // A body over a request's limit, whatever it holds, says the limit.
    let huge = format!("[{}]", vec![r#"{"event": "e"}"#; 300_000].join(","));
    assert_eq!(
        raw(
            &server,
            "POST",
            &format!("/v1/teams/{team}/events"),
            Some(&token),
            None,
            &huge
        ),
        (
            413,
            error(
                "the body is over the 4194304-byte limit of a request; send less per request (a list of events in smaller lists)"
            )
        )
    );
    // Auth comes before the body: no token is 401 whatever the body.
    assert_eq!(
        raw(&server, "POST", teams, None, Some("text/plain"), "x"),
        (401, error("missing bearer token"))
    );
    assert_eq!(
        raw(
            &server,
            "POST",
            teams,
            Some(ADMIN),
            Some("text/plain"),
            "{}"
        ),
        (
            415,
            error(
                "the body must be JSON: send it with Content-Type: application/json (got \"text/plain\")"
            )
        )
    );
    // A JSON body without a Content-Type is taken.
    let (status, created) = raw(
        &server,
        "POST",
        teams,
        Some(ADMIN),
        None,
        r#"{"name": "plain"}"#,
    );
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        raw(&server, "POST", teams, Some(ADMIN), None, "{\"name\": "),
        (
            400,
            error("the body is not valid JSON: EOF while parsing a value at line 1 column 9")
        )
    );
    assert_eq!(
        raw(&server, "POST", teams, Some(ADMIN), None, ""),
        (
            400,
            error(
                "the body is empty: send a JSON document (the routes' bodies are in GET /v1/openapi.json)"
            )
        )
    );
    assert_eq!(
        raw(&server, "POST", teams, Some(ADMIN), None, r#"{"name": 7}"#),
        (
            422,
            error(
                "the body is JSON but not what this route takes: invalid type: integer `7`, expected a string at line 1 column 10 (see GET /v1/openapi.json)"
            )
        )
    );
    // Unknown routes and methods.
    assert_eq!(
        raw(&server, "GET", "/v1/nothing", Some(ADMIN), None, ""),
        (
            404,
            error("no route GET /v1/nothing; the routes are in GET /v1/openapi.json")
        )
    );
    assert_eq!(
        raw(&server, "DELETE", "/v1/bundles", Some(ADMIN), None, ""),
        (
            405,
            error("/v1/bundles does not take DELETE; its methods are in GET /v1/openapi.json")
        )
    );
    // Path and query.
    assert_eq!(
        raw(&server, "GET", "/v1/teams/abc/chain", Some(ADMIN), None, ""),
        (400, error("team must be a team's numeric id, got \"abc\""))
    );
    let logs = format!("/v1/teams/{team}/logs");
    assert_eq!(
        raw(
            &server,
            "GET",
            &format!("{logs}?level=loud"),
            Some(&token),
            None,
            ""
        ),
        (
            400,
            error("level must be one of debug, info, log, warn, error; got \"loud\"")
        )
    );
    assert_eq!(
        raw(
            &server,
            "GET",
            &format!("{logs}?since=yesterday"),
            Some(&token),
            None,
            ""
        ),
        (
            400,
            error(
                "since must be a log line's id or an RFC 3339 UTC time such as 2024-05-01T12:00:00Z; got \"yesterday\""
            )
        )
    );
    let (status, body) = raw(
        &server,
        "GET",
        &format!("{logs}?since=2024-05-01T12:00:00Z"),
        Some(&token),
        None,
        "",
    );
    assert_eq!((status, body), (200, json!({"logs": []})));
    let webhooks = format!("/v1/teams/{team}/webhooks");
    let (status, body) = raw(
        &server,
        "GET",
        &format!("{webhooks}?status=lost"),
        Some(&token),
        None,
        "",
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        error(
            "Failed to deserialize query string: status: unknown variant `lost`, expected one of `pending`, `delivered`, `dead` (the route's parameters are in GET /v1/openapi.json)"
        )
    );
    // A misspelt parameter never acts as a request without it: a dry run
    // asked as `Trace` is refused, not run for real.
    let (status, body) = raw(
        &server,
        "POST",
        &format!("/v1/teams/{team}/events?Trace=true"),
        Some(&token),
        Some("application/json"),
        r#"{"event": "e"}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        error(
            "Failed to deserialize query string: Trace: unknown field `Trace`, expected `trace` or `async` (the route's parameters are in GET /v1/openapi.json)"
        )
    );
    // A route without parameters refuses any, after the token check.
    let team_path = format!("/v1/teams/{team}");
    assert_eq!(
        raw(
            &server,
            "DELETE",
            &format!("{team_path}?confirm=no"),
            None,
            None,
            ""
        ),
        (401, error("missing bearer token"))
    );
    assert_eq!(
        raw(
            &server,
            "DELETE",
            &format!("{team_path}?confirm=no&x"),
            Some(ADMIN),
            None,
            ""
        ),
        (
            400,
            error(&format!(
                "{team_path} takes no query parameters, got \"confirm\", \"x\" (the route's parameters are in GET /v1/openapi.json)"
            ))
        )
    );
    assert_eq!(
        server
            .call("GET", &format!("{team_path}/chain"), Some(&token), None)
            .0,
        200
    );
}

/// A connector with scheduled tasks: `runEveryMinute` counts its runs in
/// `meta.storage`, waits on a timer past the connector's 1 s deadline (the
/// task's own deadline allows it), logs and captures an event; `runEveryHour`
/// throws; its `processEvent` and `composeWebhook` see what was captured.
const POLLER: &str = r#"
export async function runEveryMinute(meta) {
    const runs = (await meta.storage.get('runs', 0)) + 1;
    await meta.storage.set('runs', runs);
    await new Promise((resolve) => setTimeout(resolve, 5000));
    console.log(`tick ${runs}`);
    posthog.capture('polled', { runs });
}
export function runEveryHour() {
    throw new Error('hourly boom');
}
export function processEvent(event) {
    event.properties.seen = true;
    return event;
}
export function composeWebhook(event, { config }) {
    return { url: config.url, body: JSON.stringify({ event: event.event, properties: event.properties }) };
}
"#;

#[test]
fn scheduled_tasks_run_each_period_their_errors_are_logged_and_what_they_capture_runs_through_the_chain()
 {
    let (_tmp, server) =
        Server::fresh(&["--task-periods", "300ms,1s,1h", "--allow-private-webhooks"]);
    let receiver = receiver();
    let (team, token) = server.team("t");
    server.chain_of_one(
        team,
        &token,
        inline("poller", POLLER, r#"{"key": "url", "type": "string"}"#),
        json!({"id": "poller", "config": {"url": format!("http://127.0.0.1:{}/hook", receiver.port)}}),
    );
    let started = Instant::now();
    let boom = |logs: &[String]| {
        logs.iter()
            .filter(|m| m.starts_with("runEveryHour: Error: hourly boom"))
            .count()
    };
    loop {
        let logs = server.log_messages(team, &token, "");
        if receiver.accepted.lock().unwrap().len() >= 3 && boom(&logs) >= 6 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "tasks did not run: {logs:#?}, webhooks {:?}",
            receiver.accepted.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each captured event ran through the chain (processEvent, composeWebhook)
    // stamped with the connector that captured it.
    let mut bodies: Vec<Value> = receiver
        .accepted
        .lock()
        .unwrap()
        .iter()
        .map(|body| serde_json::from_str(body).unwrap())
        .collect();
    bodies.sort_by_key(|body| body["properties"]["runs"].as_i64());
    for (i, body) in bodies.iter().take(3).enumerate() {
        assert_eq!(body["event"], "polled", "{body}");
        let properties = &body["properties"];
        assert_eq!(properties["runs"], i + 1, "{body}");
        assert_eq!(properties["seen"], true, "{body}");
        assert_eq!(properties["$sandpipe_connector"], "poller (0)", "{body}");
        assert_eq!(
            properties["$plugins_succeeded"],
            json!(["poller (0)"]),
            "{body}"
        );
    }
    let logs = server.log_messages(team, &token, "connector=poller");
    for n in 1..=3 {
        assert!(logs.contains(&format!("tick {n}")), "{logs:#?}");
    }
    assert!(
        logs.contains(&"runEveryMinute: 1 captured event(s) ran through the chain".to_string()),
        "{logs:#?}"
    );
    // A task that throws is logged each time and feeds no quarantine window:
    // the connector stays healthy and keeps running events.
    assert!(
        !logs.iter().any(|m| m.starts_with("quarantine:")),
        "{logs:#?}"
    );
    let (status, body) = server.events(team, &token, json!({"event": "e", "properties": {}}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["properties"]["seen"], true, "{body}");
}

#[test]
fn what_on_event_captures_runs_through_the_chain_once_and_never_feeds_itself() {
    let (_tmp, server) = Server::fresh(&["--allow-private-webhooks"]);
    let receiver = receiver();
    let (team, token) = server.team("t");
    // Captures on every event it exports, its own captures included, and
    // hides from the events it passes on that they were captured.
    let js = r#"
export function processEvent(event) {
    delete event.properties.$sandpipe_connector;
    return event;
}
export function onEvent(event) {
    posthog.capture('exported', { of: event.event });
}
export function composeWebhook(event, { config }) {
    return { url: config.url, body: JSON.stringify({ event: event.event, of: event.properties.of ?? null }) };
}
"#;
    server.chain_of_one(
        team,
        &token,
        inline("exporter", js, r#"{"key": "url", "type": "string"}"#),
        json!({"id": "exporter", "config": {"url": format!("http://127.0.0.1:{}/hook", receiver.port)}}),
    );
    let (status, body) = server.events(team, &token, json!({"event": "e", "properties": {}}));
    assert_eq!(status, 200, "{body}");
    // Nothing captured while the event itself ran.
    assert_eq!(body["captured"], json!([]), "{body}");
    let started = Instant::now();
    let dropped = |logs: &[String]| {
        logs.iter().any(|m| {
            m == "onEvent: 1 captured event(s) dropped: the event it ran on was itself captured"
        })
    };
    while !dropped(&server.log_messages(team, &token, "")) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:#?}",
            server.log_messages(team, &token, "")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The event's webhook, then the one of the event its onEvent captured;
    // that event's own onEvent capture went no further.
    while receiver.accepted.lock().unwrap().len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut bodies = receiver.accepted.lock().unwrap().clone();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            r#"{"event":"e","of":null}"#,
            r#"{"event":"exported","of":"e"}"#
        ]
    );
    assert!(
        server
            .log_messages(team, &token, "")
            .contains(&"onEvent: 1 captured event(s) ran through the chain".to_string())
    );
}

#[test]
fn scheduled_tasks_are_off_in_a_process_told_so() {
    let periods = ["--task-periods", "100ms,100ms,100ms"];
    let (_on_db, on) = Server::fresh(&periods);
    let (_off_db, off) = Server::fresh(&[&periods[..], &["--no-scheduled-tasks"]].concat());
    let js = "export function runEveryMinute() { console.log('tick') }";
    let teams: Vec<(i64, String)> = [&on, &off]
        .iter()
        .map(|server| {
            let (team, token) = server.team("t");
            server.chain_of_one(team, &token, inline("ticker", js, ""), json!({}));
            (team, token)
        })
        .collect();
    // The same chain ticks where tasks are on; twice as long later, not once
    // where they are off.
    let started = Instant::now();
    while on.log_messages(teams[0].0, &teams[0].1, "").is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(started.elapsed().max(Duration::from_millis(500)));
    assert_eq!(
        off.log_messages(teams[1].0, &teams[1].1, ""),
        Vec::<String>::new()
    );
}

/// What came back on `stream` until the server closed it (or 15 s passed,
/// which fails: a server without deadlines never closes it).
fn until_closed(mut stream: std::net::TcpStream) -> String {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut answer = Vec::new();
    if let Err(error) = stream.read_to_end(&mut answer) {
        panic!(
            "the server kept a stalled connection open: {error}; it had sent {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    String::from_utf8(answer).unwrap()
}

#[test]
fn a_client_that_stalls_its_request_head_or_body_is_cut_off() {
    use std::io::Write;
    let (_tmp, server) = Server::fresh(&["--header-timeout-secs", "1", "--body-timeout-secs", "1"]);
    let address = server.base.trim_start_matches("http://").to_string();
    // A body that stops after 4 of its 20 bytes: 408 and the connection closed.
    let mut body = std::net::TcpStream::connect(&address).unwrap();
    write!(
        body,
        "POST /v1/teams HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{{\"na"
    )
    .unwrap();
    // A head that never ends; a connection that never starts one; one that
    // starts with the first bytes of HTTP/2's preface and stops.
    let mut head = std::net::TcpStream::connect(&address).unwrap();
    write!(head, "GET /healthz HTTP/1.1\r\nHost: {address}\r\n").unwrap();
    let silent = std::net::TcpStream::connect(&address).unwrap();
    let mut preface = std::net::TcpStream::connect(&address).unwrap();
    write!(preface, "PRI * HTTP/2.0\r\n").unwrap();
    // An idle connection, after a request it kept alive.
    let mut idle = std::net::TcpStream::connect(&address).unwrap();
    write!(idle, "GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    let answer = until_closed(body);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with(r#"{"error":"the request body did not arrive within 1 s"}"#),
        "{answer}"
    );
    assert_eq!(until_closed(head), "");
    assert_eq!(until_closed(silent), "");
    assert!(until_closed(preface).starts_with("HTTP/1.1 400 "));
    let answer = until_closed(idle);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
    // Nothing else was held up, and the stalled request created no team.
    let (status, teams) = server.call("GET", "/v1/teams", Some(ADMIN), None);
    assert_eq!((status, teams), (200, json!({ "teams": [] })));
}

#[test]
fn creating_a_team_refuses_another_token_before_reading_the_body_and_metrics_refuse_unknown_parameters()
 {
    let (_tmp, server) = Server::fresh(&[]);
    let (_, token) = server.team("t");
    let error = |text: &str| json!({ "error": text });
    assert_eq!(
        raw(
            &server,
            "POST",
            "/v1/teams",
            Some(&token),
            None,
            r#"{"nope": 1}"#
        ),
        (403, error("creating teams needs the admin token"))
    );
    assert_eq!(
        raw(&server, "POST", "/v1/teams", Some(&token), None, "not json"),
        (403, error("creating teams needs the admin token"))
    );
    // Refused before the body is read: none is sent, and the answer comes
    // all the same (reading it would wait for the 60 s body deadline).
    {
        use std::io::{Read, Write};
        let address = server.base.trim_start_matches("http://").to_string();
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "POST /v1/teams HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n"
        )
        .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut answer = [0; 64];
        let read = stream.read(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
        assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    }
    assert_eq!(
        raw(&server, "GET", "/metrics?team=1", Some(ADMIN), None, ""),
        (
            400,
            error(
                "/metrics takes no query parameters, got \"team\" (the route's parameters are in GET /v1/openapi.json)"
            )
        )
    );
    // The token is checked first.
    assert_eq!(
        raw(&server, "GET", "/metrics?team=1", Some(&token), None, ""),
        (
            403,
            error("metrics need the admin token or the metrics token")
        )
    );
    assert_eq!(
        raw(&server, "GET", "/v1/openapi.json?v=2", None, None, ""),
        (
            400,
            error(
                "/v1/openapi.json takes no query parameters, got \"v\" (the route's parameters are in GET /v1/openapi.json)"
            )
        )
    );
    // A load balancer's own parameters do not fail the health check.
    let (status, health) = server.call("GET", "/healthz?probe=lb", None, None);
    assert_eq!((status, health), (200, Value::String("ok".into())));
}

#[test]
fn a_batch_reports_each_refused_item_and_runs_the_rest() {
    let (_tmp, server) = Server::fresh(&["--max-batch-events", "5"]);
    let (team, token) =
        server.team_with_chain("t", vec![built(&root().join("examples/hello-world"))]);
    let (status, body) = server.events(
        team,
        &token,
        json!([
            {"event": "a", "properties": {}},
            7,
            {"properties": {}},
            {"event": "b", "team_id": team + 1, "properties": {}},
            {"event": "c", "team_id": team, "properties": {}}
        ]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "results": [
                {"event": "a", "properties": {"hello": "Hello world", "$plugins_succeeded": ["Hello World (0)"], "$plugins_failed": []}},
                null,
                null,
                // An event's team_id is its own (PostHog's number, say): kept.
                {"event": "b", "team_id": team + 1, "properties": {"hello": "Hello world", "$plugins_succeeded": ["Hello World (0)"], "$plugins_failed": []}},
                {"event": "c", "team_id": team, "properties": {"hello": "Hello world", "$plugins_succeeded": ["Hello World (0)"], "$plugins_failed": []}}
            ],
            "failures": [
                {"index": 1, "error": "not a JSON object; send an event object or a list of them"},
                {"index": 2, "error": "an event needs an \"event\" name (a non-empty string), e.g. {\"event\": \"pageview\", \"properties\": {}}"}
            ],
            "webhooks": 0,
            "captured": []
        })
    );
    let six = json!([{"event": "a"}, {"event": "b"}, {"event": "c"}, {"event": "d"}, {"event": "e"}, {"event": "f"}]);
    assert_eq!(
        server.events(team, &token, six),
        (
            413,
            json!({"error": "a batch holds at most 5 events, got 6; send it in smaller batches"})
        )
    );
}

/// serde_json reads an object whose first key is its raw-value token as the
/// JSON its string holds, with a nesting limit of its own: an event can come
/// out of the body nested deeper than the chain reads. It is refused alone
/// (the service answers, the rest of the batch runs).
#[test]
fn an_event_nested_deeper_than_the_chain_reads_is_refused_alone() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) =
        server.team_with_chain("t", vec![built(&root().join("examples/hello-world"))]);
    // 100 levels of arrays around the token, whose string holds 100 more:
    // each within serde_json's limit of 128 as it reads it.
    let inner = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let mut deep = json!({"$serde_json::private::RawValue": inner});
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let (status, body) = server.events(
        team,
        &token,
        json!([{"event": "a"}, {"event": "b", "x": deep}]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "results": [
                {"event": "a", "properties": {"$plugins_succeeded": ["Hello World (0)"], "$plugins_failed": []}},
                null
            ],
            "failures": [
                {"index": 1, "error": "invalid JSON: recursion limit exceeded at line 1 column 144 (arrays and objects nested more than 128 deep, which JSON.parse reads: sandpipe does not carry them)"}
            ],
            "webhooks": 0,
            "captured": []
        })
    );
}

/// An item holding what sandpipe cannot carry (half of a surrogate pair, a
/// number beyond a double: JSON that Node's `JSON.parse` reads) fails alone,
/// as the chain reports it (where in the item's own text); the rest of the
/// list runs. Alone, such an event
/// is a bad body (400); `?async=true` publishes all or none, and names it.
#[test]
fn an_item_sandpipe_cannot_carry_fails_alone() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) =
        server.team_with_chain("t", vec![built(&root().join("examples/hello-world"))]);
    let events = format!("/v1/teams/{team}/events");
    let post = |body: &str| raw(&server, "POST", &events, Some(&token), None, body);
    let list = r#"[{"event": "a"}, {"event": "b", "s": "x\ud800"}, {"event": "c", "n": 1e400}, {"event": "d"}]"#;
    let surrogate = "invalid JSON: unexpected end of hex escape at line 1 column 29 (a \\uXXXX escape cut short, or half of a UTF-16 surrogate pair, \\ud800-\\udfff, without the other half, as in a string cut inside an emoji: sandpipe cannot carry such a string)";
    let hello = |name: &str| json!({"event": name, "properties": {"$plugins_succeeded": ["Hello World (0)"], "$plugins_failed": []}});
    assert_eq!(
        post(list),
        (
            200,
            json!({
                "results": [hello("a"), null, null, hello("d")],
                "failures": [
                    {"index": 1, "error": surrogate},
                    {"index": 2, "error": "invalid JSON: number out of range at line 1 column 25 (beyond the largest double, where JavaScript reads Infinity: sandpipe does not carry it)"}
                ],
                "webhooks": 0,
                "captured": []
            })
        )
    );
    assert_eq!(
        post(r#"{"event": "b", "s": "x\ud800"}"#),
        (
            400,
            json!({"error": format!("the body is not valid JSON: {}", surrogate.trim_start_matches("invalid JSON: "))})
        )
    );
    // A list that is not JSON at all is still the whole body's error.
    assert_eq!(
        post(r#"[{"event": "a"}, {"#),
        (
            400,
            json!({"error": "the body is not valid JSON: EOF while parsing an object at line 1 column 18"})
        )
    );
}

#[test]
fn every_config_error_of_a_put_is_reported_at_once() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team("t");
    let (_, hello) = server.upload(&token, built(&root().join("examples/hello-world")));
    let (_, typed) = server.upload(
        &token,
        inline(
            "Typed",
            "function processEvent(e) { return e }",
            r#"{"key": "url", "type": "string", "required": true}"#,
        ),
    );
    let chain = json!({"connectors": [
        {"bundle": hello["id"], "config": {"name": 42}},
        {"bundle": typed["id"], "config": {}}
    ]});
    assert_eq!(
        server.put_chain(team, &token, chain),
        (
            422,
            json!({
                "error": "connector 0 (Hello World): config field \"name\": must be a string (config values are text, as in PostHog), not a number; connector 1 (Typed): config field \"url\" is required but has no value",
                "connector": 0,
                "field": "name",
                "problems": [
                    {
                        "connector": 0,
                        "field": "name",
                        "error": "config field \"name\": must be a string (config values are text, as in PostHog), not a number"
                    },
                    {
                        "connector": 1,
                        "field": "url",
                        "error": "config field \"url\" is required but has no value"
                    }
                ]
            })
        )
    );
}

/// An export connector whose destination is "up" once `meta.storage` says so:
/// until then its `onEvent` asks for a retry. `go-up` events switch it on (and
/// are dropped); `flaky` events fail their first two calls whatever the state.
const EXPORTER: &str = r#"
async function processEvent(event, { storage }) {
    if (event.event === 'go-up') {
        await storage.set('up', true)
        return null
    }
    return event
}
async function onEvent(event, { storage }) {
    const key = `calls:${event.uuid}`
    const calls = (await storage.get(key, 0)) + 1
    await storage.set(key, calls)
    if (event.event === 'broken') {
        throw new TypeError(`cannot export this one (call ${calls})`)
    }
    if (event.event === 'flaky' ? calls < 3 : !(await storage.get('up', false))) {
        throw new RetryError(`destination busy (call ${calls})`)
    }
    console.log(`exported ${event.uuid} on call ${calls}, properties ${JSON.stringify(event.properties)}`)
}
"#;

/// A server on `db` started with `flags`, and its team `t` whose whole chain
/// is one connector, `exporter`: `bytes` uploaded, with `config`. Answers the
/// server, the team, its token and the bundle's id.
fn exporter_team(
    db: &Path,
    flags: &[&str],
    bytes: Vec<u8>,
    config: Value,
) -> (Server, i64, String, Value) {
    let server = Server::start_with(db, flags);
    let (team, token) = server.team("t");
    let fields = json!({"id": "exporter", "config": config});
    let bundle = server.chain_of_one(team, &token, bytes, fields);
    (server, team, token, bundle)
}

#[test]
fn on_event_calls_are_retried_until_they_succeed_or_are_dead() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, team, token, _) = exporter_team(
        &tmp.path().join("sandpipe.db"),
        &FAST_RETRIES,
        inline("Exporter", EXPORTER, ""),
        json!({}),
    );
    let (status, body) = server.events(
        team,
        &token,
        json!([
            {"event": "flaky", "uuid": "u-1", "properties": {"n": 1}},
            {"event": "flaky", "uuid": "u-2"},
            {"event": "down", "uuid": "u-3"},
            {"event": "broken", "uuid": "u-4"},
        ]),
    );
    assert_eq!(status, 200, "{body}");
    let listed = wait_for(&server, team, &token, |b| {
        (0..4).all(|i| b["webhooks"][i]["status"] != "pending")
    });
    let rows: Vec<(Value, Value, Value, Value, Value)> = listed["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["kind"].clone(),
                row["connector"].clone(),
                row["status"].clone(),
                row["attempts"].clone(),
                row["last_error"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                json!("on_event"),
                json!("Exporter (0)"),
                json!("delivered"),
                json!(3),
                Value::Null
            ),
            (
                json!("on_event"),
                json!("Exporter (0)"),
                json!("delivered"),
                json!(3),
                Value::Null
            ),
            (
                json!("on_event"),
                json!("Exporter (0)"),
                json!("dead"),
                json!(3),
                json!("onEvent failed: RetryError: destination busy (call 3)")
            ),
            // Any other throw ends the call, as in PostHog: made once.
            (
                json!("on_event"),
                json!("Exporter (0)"),
                json!("dead"),
                json!(1),
                json!(
                    "onEvent failed: TypeError: cannot export this one (call 1) (not called again: only a RetryError is)"
                )
            ),
        ]
    );
    // Calls for different events are delivered concurrently: their order is not kept.
    let mut exported: Vec<String> = server
        .log_messages(team, &token, "level=log")
        .into_iter()
        .filter(|m| m.starts_with("exported"))
        .collect();
    exported.sort();
    assert_eq!(
        exported,
        [
            r#"exported u-1 on call 3, properties {"n":1,"$plugins_succeeded":["Exporter (0)"],"$plugins_failed":[]}"#,
            r#"exported u-2 on call 3, properties {"$plugins_succeeded":["Exporter (0)"],"$plugins_failed":[]}"#,
        ]
    );
}

/// A trap, or an attempt that runs out of time while its call runs, ends
/// the call as any failure but a `RetryError` does: PostHog does not make it
/// again, and a call that outlived its attempt may have done its work.
#[test]
fn an_on_event_call_that_traps_or_outlives_its_attempt_is_made_once() {
    let tmp = tempfile::tempdir().unwrap();
    let js = "function onEvent(e) {
        console.log(`call for ${e.event}`)
        if (e.event === 'loop') while (true) {}
        const end = Date.now() + 1000
        while (Date.now() < end) {}
    }";
    let mut flags = FAST_RETRIES.to_vec();
    flags.extend([
        "--webhook-attempt-timeout-ms",
        "300",
        "--deadline-ms",
        "5000",
    ]);
    let (server, team, token, _) = exporter_team(
        &tmp.path().join("sandpipe.db"),
        &flags,
        inline("Stuck", js, ""),
        json!({}),
    );
    // One at a time, so the second's attempt does not wait behind the first's call.
    for event in ["loop", "slow"] {
        let (status, body) = server.events(team, &token, json!({"event": event}));
        assert_eq!(status, 200, "{body}");
        wait_for(&server, team, &token, |b| {
            b["webhooks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|row| row["status"] == "dead")
        });
    }
    let listed = wait_for(&server, team, &token, |b| {
        b["webhooks"].as_array().unwrap().len() == 2
    });
    let rows: Vec<(Value, Value)> = listed["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["attempts"].clone(), row["last_error"].clone()))
        .collect();
    assert_eq!(
        rows,
        [
            (
                json!(1),
                json!(
                    "onEvent failed: ran out of fuel (500000000 units per call) (not called again: only a RetryError is)"
                )
            ),
            (
                json!(1),
                json!(
                    "onEvent failed: the attempt timed out while the call ran (not called again: only a RetryError is)"
                )
            ),
        ],
        "{listed}"
    );
    // Two seconds more: no row came back for another call.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let calls = server
        .log_messages(team, &token, "level=log")
        .into_iter()
        .filter(|m| m.starts_with("call for"))
        .count();
    assert_eq!(calls, 2);
}

/// An `onEvent` that waits on the gate at `config.gate`, then logs the event's uuid.
const SLOW_ON_EVENT: &str = "async function onEvent(e, { config }) { \
    await fetch(config.gate); console.log(`slow ${e.uuid}`) }";

#[test]
fn a_slow_on_event_connector_does_not_hold_back_another_teams_calls() {
    // The slow team's calls wait on a gate, held shut until the quick team's call has run.
    let gate = Gate::start();
    // One slot per team, whatever the machine's cores: the slow team's calls
    // go one after the other.
    let (_tmp, server) = Server::fresh(&[
        "--deadline-ms",
        "60000",
        "--fetch-timeout-ms",
        "60000",
        "--team-concurrency",
        "1",
        "--fetch-allow",
        "127.0.0.1",
        "--fetch-allow-private",
    ]);
    let (slow_team, slow_token) = server.team("slow");
    let (team, token) = server.team("quick");
    let fields = json!({"id": "exporter", "config": {}});
    server.chain_of_one(
        slow_team,
        &slow_token,
        inline(
            "Slow",
            SLOW_ON_EVENT,
            r#"{"key": "gate", "type": "string"}"#,
        ),
        json!({"id": "exporter", "config": {"gate": gate.url}}),
    );
    server.chain_of_one(
        team,
        &token,
        inline(
            "Quick",
            "function onEvent(e) { console.log(`quick ${e.uuid}`) }",
            "",
        ),
        fields,
    );
    let slow_calls = || {
        server
            .log_messages(slow_team, &slow_token, "level=log")
            .iter()
            .filter(|m| m.starts_with("slow "))
            .count()
    };
    // Sixteen calls of the slow connector: more than the four one team may
    // have in flight, all held behind the first, which holds its team's one slot.
    let events: Vec<Value> = (0..16)
        .map(|i| json!({"event": "e", "uuid": format!("s-{i}")}))
        .collect();
    assert_eq!(server.events(slow_team, &slow_token, json!(events)).0, 200);
    gate.until_reached();
    assert_eq!(
        server
            .events(team, &token, json!({"event": "e", "uuid": "q-1"}))
            .0,
        200
    );
    let started = Instant::now();
    while !server
        .log_messages(team, &token, "level=log")
        .contains(&"quick q-1".to_string())
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "quick q-1 never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // It ran beside the slow backlog, not after it (when all onEvent calls
    // shared four slots, it waited behind the slow calls, which the gate holds),
    // and the slow team had its one slot: one of its calls at the gate, not four.
    assert_eq!(slow_calls(), 0);
    assert_eq!(gate.reached(), 1, "slow calls in flight at once");
    // And the count measured the slow team's progress: once opened, its calls go on.
    gate.open();
    while slow_calls() < 16 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the slow team's calls stopped at {}",
            slow_calls()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_request_that_waited_past_its_lease_for_a_slot_is_sent_once() {
    // Attempts of one second, so a row is leased for two; four requests to
    // one host at a time, each answered in 300 ms: forty take three seconds,
    // and the last would wait for a slot past their lease.
    let Receiver { port, accepted } = slow_receiver(Duration::from_millis(300));
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &tmp.path().join("sandpipe.db"),
        &[
            "--allow-private-webhooks",
            "--webhook-attempt-timeout-ms",
            "1000",
        ],
    );
    let (team, token) = server.team("t");
    let sender = inline(
        "Sender",
        "function composeWebhook(e, { config }) { return { url: config.url, body: e.uuid } }",
        r#"{"key": "url", "type": "string"}"#,
    );
    let url = format!("http://127.0.0.1:{port}/");
    server.chain_of_one(team, &token, sender, json!({"config": {"url": url}}));
    let events: Vec<Value> = (0..40)
        .map(|i| json!({"event": "e", "uuid": format!("u-{i:02}")}))
        .collect();
    let (status, body) = server.events(team, &token, Value::Array(events));
    assert_eq!(status, 200, "{body}");
    let listed = wait_for(&server, team, &token, |b| {
        let rows = b["webhooks"].as_array().unwrap();
        rows.len() == 40 && rows.iter().all(|row| row["status"] == "delivered")
    });
    assert!(
        listed["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row["status"] == "delivered"),
        "{listed}"
    );
    // Time for a second sending, had there been one, to arrive.
    std::thread::sleep(Duration::from_secs(1));
    let mut bodies = accepted.lock().unwrap().clone();
    bodies.sort();
    bodies.dedup();
    let expected: Vec<String> = (0..40).map(|i| format!("u-{i:02}")).collect();
    assert_eq!(bodies, expected, "every request arrived");
    // The list pages by id: `since` the tenth row gives the thirty after it.
    let ids: Vec<i64> = listed["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect();
    let (_, page) = server.call(
        "GET",
        &format!("/v1/teams/{team}/webhooks?since={}", ids[9]),
        Some(&token),
        None,
    );
    let paged: Vec<i64> = page["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect();
    assert_eq!(paged, ids[10..]);
    // Newest first, and the page before an id; by connector.
    let listed_ids = |query: &str| -> Vec<i64> {
        let (status, page) = server.call(
            "GET",
            &format!("/v1/teams/{team}/webhooks?{query}"),
            Some(&token),
            None,
        );
        assert_eq!(status, 200, "{query}: {page}");
        page["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["id"].as_i64().unwrap())
            .collect()
    };
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    assert_eq!(listed_ids("newest=true"), newest_first);
    assert_eq!(
        listed_ids(&format!("before={}", ids[30])),
        newest_first[10..]
    );
    assert_eq!(
        listed_ids(&format!("newest=true&before={}&status=delivered", ids[30])),
        newest_first[10..]
    );
    assert_eq!(listed_ids("connector=Sender"), ids);
    assert_eq!(
        listed_ids("connector=Sender%20(0)&newest=true"),
        newest_first
    );
    assert_eq!(listed_ids("connector=Sender%20(1)"), Vec::<i64>::new());
    for (query, error) in [
        (
            "since=yesterday",
            "since must be a webhook's id (the last id of the page before); got \"yesterday\"",
        ),
        (
            "before=x",
            "before must be a webhook's id (the last id of the page before); got \"x\"",
        ),
        ("newest=yes", "newest must be true or false; got \"yes\""),
        (
            "newest=false&before=5",
            "before pages newest first: not with newest=false",
        ),
        (
            "newest=true&since=1",
            "since pages oldest first; newest and before page newest first: give one or the other",
        ),
    ] {
        assert_eq!(
            server.call(
                "GET",
                &format!("/v1/teams/{team}/webhooks?{query}"),
                Some(&token),
                None
            ),
            (400, json!({ "error": error })),
            "{query}"
        );
    }
    // Each sending is an attempt its row counts (an attempt that timed out
    // on a loaded machine is retried, and counted): none is sent twice
    // under one count.
    let attempts: i64 = listed["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["attempts"].as_i64().unwrap())
        .sum();
    assert_eq!(accepted.lock().unwrap().len() as i64, attempts);
}

/// A batch exporter, as PostHog's export plugins are written: `exportEvents`
/// logs the uuids of each batch it is given, and a batch holding a `busy`
/// event asks for a retry on its first call (counted in `meta.storage`, which
/// every instance of the connector shares); its own `onEvent` logs each event.
const BATCH_EXPORTER: &str = r#"
async function exportEvents(events, { storage }) {
    const uuids = events.map((event) => event.uuid).join(',')
    const call = (await storage.get(`calls:${uuids}`, 0)) + 1
    await storage.set(`calls:${uuids}`, call)
    if (events.some((event) => event.event === 'busy') && call === 1) {
        throw new RetryError('destination busy')
    }
    const times = events.every((event) => event.timestamp instanceof Date)
    console.log(`batch ${uuids} on call ${call}, timestamps are dates: ${times}`)
}
function onEvent(event) {
    console.log(`onEvent ${event.uuid}`)
}
"#;

/// The team's `log` lines that start with `prefix` ([`BATCH_EXPORTER`]'s batches).
fn logged_batches(server: &Server, team: i64, token: &str, prefix: &str) -> Vec<String> {
    server
        .log_messages(team, token, "level=log")
        .into_iter()
        .filter(|m| m.starts_with(prefix))
        .collect()
}

/// The buffer settings PostHog read from an export connector's config.
const BUFFER_FIELDS: &str = r#"{"key": "exportEventsBufferBytes", "type": "string"},
    {"key": "exportEventsBufferSeconds", "type": "string"},
    {"key": "exportEventsToIgnore", "type": "string"}"#;

/// The `(kind, status, last error, attempts)` of the team's queued rows, sorted.
fn queued_rows(listed: &Value) -> Vec<(String, String, String, i64)> {
    let mut rows: Vec<(String, String, String, i64)> = listed["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["kind"].as_str().unwrap_or("request").to_string(),
                row["status"].as_str().unwrap().to_string(),
                row["last_error"].as_str().unwrap_or_default().to_string(),
                row["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn export_events_gets_the_events_of_its_buffer_in_one_batch_once_they_have_waited() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, team, token, _) = exporter_team(
        &tmp.path().join("sandpipe.db"),
        &FAST_RETRIES,
        inline("Batcher", BATCH_EXPORTER, BUFFER_FIELDS),
        // Long enough for the four onEvent calls to be seen first on a slow machine.
        json!({"exportEventsBufferSeconds": "6", "exportEventsToIgnore": "skipped, other"}),
    );
    let events = json!([
        {"event": "pageview", "uuid": "u-1", "timestamp": "2024-01-01T00:00:00Z"},
        {"event": "skipped", "uuid": "u-2"},
        {"event": "busy", "uuid": "u-3", "now": "2024-01-02T00:00:00Z"},
        {"event": "pageview", "uuid": "u-4"},
    ]);
    let (status, body) = server.events(team, &token, events);
    assert_eq!(status, 200, "{body}");
    // The events wait in the buffer (six seconds), where an onEvent call goes at once.
    let listed = wait_for(&server, team, &token, |b| {
        b["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| row["kind"] == "on_event" && row["status"] == "delivered")
            .count()
            == 4
    });
    let waiting: Vec<_> = queued_rows(&listed)
        .into_iter()
        .filter(|row| row.0 == "export")
        .collect();
    assert_eq!(
        waiting,
        vec![
            (
                "export".to_string(),
                "pending".to_string(),
                String::new(),
                0
            );
            3
        ],
        "the ignored event is not queued for exportEvents"
    );
    // Then one batch of the three, retried whole, in the order they came.
    let listed = wait_for(&server, team, &token, |b| {
        b["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row["status"] != "pending")
    });
    let exports: Vec<_> = queued_rows(&listed)
        .into_iter()
        .filter(|row| row.0 == "export")
        .collect();
    assert_eq!(
        exports,
        vec![
            (
                "export".to_string(),
                "delivered".to_string(),
                String::new(),
                2
            );
            3
        ]
    );
    let batches = logged_batches(&server, team, &token, "batch");
    assert_eq!(
        batches,
        ["batch u-1,u-3,u-4 on call 2, timestamps are dates: true"]
    );
    let errors = server.log_messages(team, &token, "level=error");
    assert!(
        errors
            .iter()
            .any(|m| m.contains("exportEvents") && m.contains("RetryError: destination busy")),
        "{errors:?}"
    );
}

#[test]
fn an_on_event_row_queued_before_export_batches_still_exports_its_event() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("sandpipe.db");
    let (server, team, token, _) = exporter_team(
        &db,
        &FAST_RETRIES,
        inline("Batcher", BATCH_EXPORTER, BUFFER_FIELDS),
        json!({"exportEventsToIgnore": "skipped"}),
    );
    // Two onEvent rows as version 10's migration marks those an older
    // sandpipe queued, each standing for exportEvents([event]) then onEvent.
    let row = |uuid: &str, name: &str| {
        format!(
            "INSERT INTO webhooks (team_id, connector, url, method, headers, body, kind, connector_id, batch_bytes) \
             VALUES ({team}, 'Batcher (0)', '', '', '{{}}', '{{\"event\":\"{name}\",\"uuid\":\"{uuid}\"}}', 'on_event', 'exporter', -1);"
        )
    };
    execute_sql(&db, &(row("u-1", "pageview") + &row("u-2", "skipped")));
    let listed = wait_for(&server, team, &token, |b| {
        let rows = b["webhooks"].as_array().unwrap();
        rows.len() == 2 && rows.iter().all(|row| row["status"] == "delivered")
    });
    assert_eq!(
        queued_rows(&listed),
        vec![
            (
                "on_event".to_string(),
                "delivered".to_string(),
                String::new(),
                1
            );
            2
        ]
    );
    let mut logged: Vec<String> = server
        .log_messages(team, &token, "level=log")
        .into_iter()
        .collect();
    logged.sort();
    assert_eq!(
        logged,
        [
            "batch u-1 on call 1, timestamps are dates: true",
            "onEvent u-1",
            "onEvent u-2",
        ]
    );
}

#[test]
fn an_export_buffer_goes_whole_when_its_first_event_has_waited() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, team, token, _) = exporter_team(
        &tmp.path().join("sandpipe.db"),
        &FAST_RETRIES,
        inline("Batcher", BATCH_EXPORTER, BUFFER_FIELDS),
        json!({"exportEventsBufferSeconds": "5"}),
    );
    let (status, body) = server.events(team, &token, json!({"event": "a", "uuid": "u-1"}));
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    // Queued a second later: it goes with the first, when the first's time comes.
    let (status, body) = server.events(team, &token, json!({"event": "b", "uuid": "u-2"}));
    assert_eq!(status, 200, "{body}");
    wait_for(&server, team, &token, |b| {
        b["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| row["kind"] == "export")
            .all(|row| row["status"] == "delivered")
    });
    let batches = logged_batches(&server, team, &token, "batch");
    assert_eq!(
        batches,
        ["batch u-1,u-2 on call 1, timestamps are dates: true"]
    );
}

#[test]
fn a_full_export_buffer_goes_at_once_in_batches_under_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, team, token, _) = exporter_team(
        &tmp.path().join("sandpipe.db"),
        &FAST_RETRIES,
        inline("Batcher", BATCH_EXPORTER, BUFFER_FIELDS),
        // Far longer than the test: only a full buffer sends anything.
        json!({"exportEventsBufferBytes": "80", "exportEventsBufferSeconds": "600"}),
    );
    let events: Vec<Value> = (1..=5)
        .map(|i| json!({"event": "pageview", "uuid": format!("u-{i}")}))
        .collect();
    let (status, body) = server.events(team, &token, Value::Array(events));
    assert_eq!(status, 200, "{body}");
    // Each event counts its JSON text and a comma: two fit in 80 bytes, three do not.
    let size = serde_json::to_string(&body["results"][0]).unwrap().len() + 1;
    assert!(2 * size <= 80 && 3 * size > 80, "an event of {size} bytes");
    let listed = wait_for(&server, team, &token, |b| {
        b["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| row["kind"] == "export" && row["status"] == "delivered")
            .count()
            == 4
    });
    let batches = logged_batches(&server, team, &token, "batch");
    let mut sorted = batches.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "batch u-1,u-2 on call 1, timestamps are dates: true",
            "batch u-3,u-4 on call 1, timestamps are dates: true",
        ]
    );
    // The fifth waits for more, or for its time.
    let pending: Vec<_> = queued_rows(&listed)
        .into_iter()
        .filter(|row| row.0 == "export" && row.1 == "pending")
        .collect();
    assert_eq!(
        pending,
        [(
            "export".to_string(),
            "pending".to_string(),
            String::new(),
            0
        )]
    );
    // One more event fills a batch with it.
    let (status, body) = server.events(team, &token, json!({"event": "pageview", "uuid": "u-6"}));
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.events(team, &token, json!({"event": "pageview", "uuid": "u-7"}));
    assert_eq!(status, 200, "{body}");
    wait_for(&server, team, &token, |b| {
        b["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| row["kind"] == "export" && row["status"] == "delivered")
            .count()
            == 6
    });
    let last = logged_batches(&server, team, &token, "batch u-5");
    assert_eq!(
        last,
        ["batch u-5,u-6 on call 1, timestamps are dates: true"]
    );
}

/// An export connector that posts each event's uuid to `config.url` in
/// `onEvent`, asking for a retry while the destination answers an error.
fn fetch_exporter() -> Vec<u8> {
    let js = r#"
async function onEvent(event, { config }) {
    const response = await fetch(config.url, { method: 'POST', body: event.uuid })
    if (!response.ok) {
        throw new RetryError(`destination answered ${response.status}`)
    }
}
"#;
    let fields = r#"{"key": "url", "type": "string", "required": true}"#;
    inline("Fetch Exporter", js, fields)
}

#[test]
fn on_event_fetches_under_the_operators_allow_list() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = receiver();
    let mut flags = FAST_RETRIES.to_vec();
    flags.extend(["--fetch-allow", "127.0.0.1", "--fetch-allow-private"]);
    // `/flaky` fails its first two requests: both events arrive after retries.
    let (server, team, token, bundle) = exporter_team(
        &tmp.path().join("sandpipe.db"),
        &flags,
        fetch_exporter(),
        json!({"url": format!("http://127.0.0.1:{}/flaky", receiver.port)}),
    );
    let (status, body) = server.events(
        team,
        &token,
        json!([{"event": "a", "uuid": "u-1"}, {"event": "b", "uuid": "u-2"}]),
    );
    assert_eq!(status, 200, "{body}");
    let listed = wait_for(&server, team, &token, |b| {
        (0..2).all(|i| b["webhooks"][i]["status"] != "pending")
    });
    let rows = listed["webhooks"].as_array().unwrap();
    assert_eq!(
        rows.iter()
            .map(|row| (row["kind"].clone(), row["status"].clone()))
            .collect::<Vec<_>>(),
        vec![(json!("on_event"), json!("delivered")); 2],
        "{listed}"
    );
    // Two refused attempts between them, then one success each.
    let attempts: i64 = rows
        .iter()
        .map(|row| row["attempts"].as_i64().unwrap())
        .sum();
    assert_eq!(attempts, 4, "{listed}");
    let mut accepted = receiver.accepted.lock().unwrap().clone();
    accepted.sort();
    assert_eq!(accepted, ["u-1", "u-2"]);

    // `localhost` is the same receiver, but not on the list: refused, then dead.
    let url = format!("http://localhost:{}/", receiver.port);
    let chain =
        json!({"connectors": [{"id": "exporter", "bundle": bundle, "config": {"url": url}}]});
    assert_eq!(server.put_chain(team, &token, chain).0, 200);
    server.events(team, &token, json!({"event": "c", "uuid": "u-3"}));
    let listed = wait_for(&server, team, &token, |b| {
        b["webhooks"][2]["status"] == "dead"
    });
    assert_eq!(
        (
            listed["webhooks"][2]["status"].clone(),
            listed["webhooks"][2]["attempts"].clone(),
            listed["webhooks"][2]["last_error"].clone()
        ),
        (
            json!("dead"),
            json!(1),
            json!(
                "onEvent failed: TypeError: fetch: localhost is not an allowed host for this connector (not called again: only a RetryError is)"
            )
        ),
        "{listed}"
    );
    assert_eq!(receiver.accepted.lock().unwrap().len(), 2);
}

#[test]
fn serve_refuses_fetch_without_an_allow_list_and_loopback_without_allow_private() {
    let receiver = receiver();
    let url = format!("http://127.0.0.1:{}/", receiver.port);
    for (flags, error) in [
        (
            &[][..],
            "onEvent failed: TypeError: fetch is not allowed for this connector (the operator allows no hosts) (not called again: only a RetryError is)",
        ),
        (
            &["--fetch-allow", "127.0.0.1"][..],
            "onEvent failed: TypeError: fetch: 127.0.0.1 resolves to 127.0.0.1, a loopback address, which connectors may not reach (not called again: only a RetryError is)",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut flags = flags.to_vec();
        flags.extend(FAST_RETRIES);
        let (server, team, token, _) = exporter_team(
            &tmp.path().join("sandpipe.db"),
            &flags,
            fetch_exporter(),
            json!({"url": url}),
        );
        server.events(team, &token, json!({"event": "a", "uuid": "u-1"}));
        let listed = wait_for(&server, team, &token, |b| {
            b["webhooks"][0]["status"] == "dead"
        });
        assert_eq!(listed["webhooks"][0]["last_error"], error, "{listed}");
    }
    assert!(receiver.accepted.lock().unwrap().is_empty());
}

#[test]
fn a_fetch_allow_that_is_not_a_host_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    for (value, shown) in [
        ("https://api.example.com", "\"https://api.example.com\""),
        ("127.0.0.1:8080", "\"127.0.0.1:8080\""),
        ("api.*.com", "\"api.*.com\""),
    ] {
        let out = sandpipe(
            &["serve", "--db", "x.db", "--fetch-allow", value],
            tmp.path(),
        );
        assert_eq!(out.status.code(), Some(1), "{value}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim_end(),
            format!(
                "sandpipe: error: --fetch-allow {shown}: not a host name (give `api.example.com`, `*.example.com`, `127.0.0.1` or `[::1]`, without scheme, port or path)"
            )
        );
    }
    assert!(!tmp.path().join("x.db").exists());
}

#[test]
fn a_database_url_of_another_scheme_and_zero_counts_are_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    for (flags, expected) in [
        (
            &["--db", "mysql://x@y/z"][..],
            "sandpipe: error: --db: mysql:// is not a database sandpipe keeps its state in: give a postgres:// URL or a SQLite file path",
        ),
        (
            &["--db", "x.db", "--team-concurrency", "0"][..],
            "error: invalid value '0' for '--team-concurrency <TEAM_CONCURRENCY>': 0 is not in 1..=1024",
        ),
        (
            &["--db", "x.db", "--webhook-max-attempts", "0"][..],
            "error: invalid value '0' for '--webhook-max-attempts <WEBHOOK_MAX_ATTEMPTS>': 0 is not in 1..=1000",
        ),
    ] {
        let out = sandpipe(&[&["serve"][..], flags].concat(), tmp.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{flags:?}");
        assert_eq!(stderr.lines().next().unwrap(), expected, "{stderr}");
    }
    assert!(!tmp.path().join("x.db").exists());
    assert!(!tmp.path().join("mysql:").exists());
}

#[test]
fn failing_on_event_calls_are_counted_and_quarantine_their_connector() {
    let tmp = tempfile::tempdir().unwrap();
    let js = "function processEvent(e) { return e }\n\
              function onEvent(e) { throw new Error(`export failed for ${e.uuid}`) }";
    let (server, team, token, _) = exporter_team(
        &tmp.path().join("sandpipe.db"),
        &["--webhook-max-attempts", "1"],
        inline("Broken Exporter", js, ""),
        json!({}),
    );
    let send = |from: usize, to: usize| {
        let events: Vec<Value> = (from..to)
            .map(|i| json!({"event": "e", "uuid": format!("u-{i}")}))
            .collect();
        assert_eq!(server.events(team, &token, Value::Array(events)).0, 200);
        wait_for(&server, team, &token, |b| {
            (0..to).all(|i| b["webhooks"][i]["status"] == "dead")
        })
    };
    let status = || {
        let (_, chain) = server.call(
            "GET",
            &format!("/v1/teams/{team}/chain"),
            Some(&token),
            None,
        );
        chain["connectors"][0]["status"].clone()
    };
    let onevent_metrics = || {
        let (_, metrics) = server.call("GET", "/metrics", Some(ADMIN), None);
        metrics
            .as_str()
            .unwrap()
            .lines()
            .filter(|l| l.contains("stage=\"onEvent\"") && l.starts_with("sandpipe_connector_"))
            .filter(|l| l.contains("_total{"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };

    // Five failed calls: counted, and over the window's error budget.
    let listed = send(0, 5);
    assert_eq!(
        listed["webhooks"][0]["last_error"],
        "onEvent failed: Error: export failed for u-0 (not called again: only a RetryError is)",
        "{listed}"
    );
    assert_eq!(
        onevent_metrics(),
        [
            format!(
                "sandpipe_connector_calls_total{{connector=\"Broken Exporter (0)\",stage=\"onEvent\",team=\"{team}\"}} 5"
            ),
            format!(
                "sandpipe_connector_errors_total{{connector=\"Broken Exporter (0)\",stage=\"onEvent\",team=\"{team}\"}} 5"
            ),
        ]
    );
    assert_eq!(status(), "degraded");

    // Ten more failures while over budget disable it: later events skip it
    // and queue no onEvent call for it.
    send(5, 15);
    assert_eq!(status(), "disabled");
    let (_, body) = server.events(team, &token, json!({"event": "e", "uuid": "u-15"}));
    assert_eq!(body["results"], json!([{"event": "e", "uuid": "u-15"}]));
    let (_, listed) = server.call(
        "GET",
        &format!("/v1/teams/{team}/webhooks"),
        Some(&token),
        None,
    );
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 15, "{listed}");
    let messages = server.log_messages(team, &token, "level=warn");
    let quarantine: Vec<&String> = messages
        .iter()
        .filter(|m| m.starts_with("quarantine:"))
        .collect();
    assert_eq!(quarantine.len(), 2, "{messages:?}");
    assert!(
        quarantine[0].starts_with("quarantine: now degraded (5 errors and "),
        "{messages:?}"
    );
    assert!(
        quarantine[1].starts_with("quarantine: now disabled (10 errors and "),
        "{messages:?}"
    );
}

#[test]
fn pending_on_event_calls_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("sandpipe.db");
    let options = [
        "--webhook-retry-base-ms",
        "300",
        "--webhook-max-attempts",
        "50",
    ];
    let (team, token) = {
        let (server, team, token, _) =
            exporter_team(&db, &options, inline("Exporter", EXPORTER, ""), json!({}));
        let (status, _) = server.events(team, &token, json!({"event": "kept", "uuid": "u-1"}));
        assert_eq!(status, 200);
        let listed = wait_for(&server, team, &token, |b| {
            b["webhooks"][0]["last_error"].is_string()
        });
        assert_eq!(listed["webhooks"][0]["status"], "pending", "{listed}");
        (team, token)
        // The server is killed here, with the onEvent call pending.
    };
    let server = Server::start_with(&db, &options);
    // The destination comes up; the restarted server makes the pending call.
    let (status, body) = server.events(team, &token, json!({"event": "go-up", "uuid": "u-2"}));
    assert_eq!((status, body["results"].clone()), (200, json!([null])));
    let listed = wait_for(&server, team, &token, |b| {
        b["webhooks"][0]["status"] == "delivered"
    });
    assert_eq!(listed["webhooks"][0]["status"], "delivered", "{listed}");
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1, "{listed}");
    let exported: Vec<String> = server
        .log_messages(team, &token, "level=log")
        .into_iter()
        .filter(|m| m.starts_with("exported"))
        .collect();
    assert_eq!(exported.len(), 1, "{exported:?}");
    assert!(
        exported[0].starts_with("exported u-1 on call "),
        "{exported:?}"
    );
}

#[test]
fn a_team_the_operator_names_runs_at_the_shared_instance_level_with_the_same_results() {
    let (_tmp, server) = Server::fresh(&["--shared-instance-teams", "2", "--fuel", "50000000"]);
    assert!(
        server.stderr.lock().unwrap().lines().any(|line| line
            == r#"sandpipe: chains of teams 2 run at the shared-instance level (SECURITY.md, "Isolation levels")"#),
        "{}",
        server.stderr.lock().unwrap()
    );
    let tagger = inline(
        "Tagger",
        "function processEvent(e) { e.properties.tagged = [1, 'two', { three: 3 }]; return e }",
        "",
    );
    let looper = inline(
        "Looper",
        "function processEvent(e) { if (e.properties.loop) { for (;;) {} } e.properties.looped = false; return e }",
        "",
    );
    let hello = built(&root().join("examples/hello-world"));
    let chain = || vec![tagger.clone(), looper.clone(), hello.clone()];
    let (own, own_token) = server.team_with_chain("own", chain());
    let (shared, shared_token) = server.team_with_chain("shared", chain());
    assert_eq!((own, shared), (1, 2));
    let events = json!([
        {"event": "a", "team_id": 7, "properties": {"n": 1}},
        {"event": "b", "team_id": 7, "properties": {"loop": true}},
        {"event": "c", "properties": {"n": -0.0, "text": "caf\u{e9} \u{1F600}"}},
    ]);
    let (status, own_results) = server.events(own, &own_token, events.clone());
    assert_eq!(status, 200, "{own_results}");
    let (status, shared_results) = server.events(shared, &shared_token, events);
    assert_eq!(status, 200, "{shared_results}");
    assert_eq!(shared_results, own_results);
    assert_eq!(
        own_results["results"][1]["properties"]["$plugins_failed"],
        json!(["Looper (1)"])
    );
    assert_eq!(
        own_results["results"][2]["properties"]["hello"],
        "Hello world"
    );
    // Team 1's three connectors have an instance each; team 2's chain has
    // one, which its looping connector left for one of its own.
    let (_, metrics) = server.call("GET", "/metrics", Some(ADMIN), None);
    assert!(
        metrics
            .as_str()
            .unwrap()
            .lines()
            .any(|l| l == "sandpipe_instances 5"),
        "{metrics}"
    );
}

#[test]
fn an_event_over_a_connectors_input_limit_is_not_retried_or_held_against_it() {
    // The event is over every connector's 1 MiB input limit: processEvent
    // refuses it before any call, and its onEvent row is dead at once, with
    // the reason; neither is a call of the connector, so its health and
    // metrics do not count them.
    let tmp = tempfile::tempdir().unwrap();
    let (server, team, token, _) = exporter_team(
        &tmp.path().join("sandpipe.db"),
        &FAST_RETRIES,
        inline("Exporter", EXPORTER, ""),
        json!({}),
    );
    let big = "a".repeat(1_100_000);
    let (status, body) = server.events(
        team,
        &token,
        json!([{"event": "big", "uuid": "u-big", "properties": {"s": big}}]),
    );
    assert_eq!(status, 200);
    let size = body["results"][0]["properties"]["s"]
        .as_str()
        .unwrap()
        .len();
    assert_eq!(size, 1_100_000);
    assert_eq!(
        body["results"][0]["properties"]["$plugins_failed"],
        json!(["Exporter (0)"])
    );
    let errors = server.log_messages(team, &token, "level=error");
    assert!(
        errors[0].starts_with("processEvent: event is ")
            && errors[0].ends_with(" bytes, over the 1048576-byte input limit"),
        "{errors:?}"
    );
    let listed = wait_for(&server, team, &token, |b| {
        b["webhooks"][0]["status"] != "pending"
    });
    let row = &listed["webhooks"][0];
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("dead"), &json!(1))
    );
    let error = row["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("event is ")
            && error.ends_with(" bytes, over the 1048576-byte input limit"),
        "{error}"
    );
    let (_, health) = server.call(
        "GET",
        &format!("/v1/teams/{team}/health"),
        Some(&token),
        None,
    );
    assert_eq!(
        health["connectors"][0],
        json!({"connector": "Exporter (0)", "enabled": true, "status": "healthy",
               "reason": "0 errors and 0 ms in its last 0 calls", "calls": 0, "errors": 0, "p99_ms": null})
    );
}
