//! `fetch`: off unless the operator allows hosts; private, loopback,
//! link-local and metadata addresses refused after resolution, on every
//! redirect hop; bounded responses. A test HTTP server runs on 127.0.0.1.

mod common;

use common::*;
use sandpipe_runtime::{CallError, Chain, FetchPolicy, Limits, MemoryLogs};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

/// A tiny HTTP server on 127.0.0.1 answering by path; returns its port. Stops with the test process.
fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            let mut seen_header = String::new();
            loop {
                // Header bytes read as Latin-1, as Node's server reads them.
                let mut bytes = Vec::new();
                reader.read_until(b'\n', &mut bytes).unwrap();
                let line: String = bytes.iter().map(|&b| char::from(b)).collect();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                if let Some(value) = lower.strip_prefix("x-test:") {
                    seen_header = value.trim().to_string();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut parts = request_line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap().to_string(),
                parts.next().unwrap().to_string(),
            );
            let (status, extra, content) = match path.as_str() {
                "/json" => ("200 OK", String::new(), r#"{"plan":"pro","seats":3}"#.to_string()),
                "/echo" => (
                    "201 Created",
                    String::new(),
                    json!({"method": method, "body": String::from_utf8_lossy(&body), "x-test": seen_header}).to_string(),
                ),
                "/redirect-local" => ("302 Found", format!("Location: http://localhost:{port}/json\r\n"), String::new()),
                "/redirect-same" => ("302 Found", "Location: /json\r\n".to_string(), String::new()),
                "/big" => ("200 OK", String::new(), "x".repeat(5_000)),
                "/gzip" => {
                    // `{"zipped":true}`, gzipped.
                    const ZIPPED: [u8; 35] = [
                        31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 171, 86, 170, 202, 44, 40, 72, 77, 81,
                        178, 42, 41, 42, 77, 173, 5, 0, 132, 40, 188, 8, 15, 0, 0, 0,
                    ];
                    let head = "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 35\r\nConnection: close\r\n\r\n";
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&ZIPPED);
                    continue;
                }
                "/drip" => {
                    // Promises a megabyte, then sends a byte every 50 ms, for 10 s.
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
                    for _ in 0..200 {
                        if stream.write_all(b"x").is_err() {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    continue;
                }
                _ => ("404 Not Found", String::new(), "missing".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{content}",
                content.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

const FETCHER: &str = r#"
    async function processEvent(event) {
        try {
            const response = await fetch(event.url, event.init)
            event.status = response.status
            event.ok = response.ok
            event.contentType = response.headers.get('Content-Type')
            event.text = await response.text()
        } catch (error) {
            event.error = `${error.name}: ${error.message}`
        }
        return event
    }"#;

fn chain(policy: FetchPolicy) -> Chain {
    let logs = Arc::new(MemoryLogs::default());
    let connector = connector_with_options(
        bundle("fetcher", FETCHER),
        0,
        Default::default(),
        ConnectorOptions {
            logs: logs.clone(),
            fetch: policy,
            ..ConnectorOptions::default()
        },
    );
    Chain::new(vec![connector])
}

fn fetch(chain: &mut Chain, url: &str, init: Value) -> Value {
    let mut event = chain
        .process(json!({"url": url, "init": init}))
        .event
        .unwrap();
    let event = event.as_object_mut().unwrap();
    event.remove("properties");
    event.remove("url");
    event.remove("init");
    Value::Object(event.clone())
}

/// The operator's opt-in for a trusted local service (what tests need for 127.0.0.1).
fn local() -> FetchPolicy {
    FetchPolicy {
        allow_hosts: vec!["127.0.0.1".into()],
        allow_private: true,
        ..FetchPolicy::default()
    }
}

#[test]
fn fetch_is_refused_unless_the_operator_allows_hosts() {
    let port = server();
    let mut chain = chain(FetchPolicy::default());
    assert_eq!(
        fetch(
            &mut chain,
            &format!("http://127.0.0.1:{port}/json"),
            Value::Null
        ),
        json!({"error": "TypeError: fetch is not allowed for this connector (the operator allows no hosts)"})
    );
    let mut chain = self::chain(FetchPolicy {
        allow_hosts: vec!["api.example.com".into()],
        ..FetchPolicy::default()
    });
    assert_eq!(
        fetch(&mut chain, "https://other.example.com/", Value::Null),
        json!({"error": "TypeError: fetch: other.example.com is not an allowed host for this connector"})
    );
}

#[test]
fn private_loopback_and_metadata_addresses_are_refused_even_when_allowed_by_name() {
    let port = server();
    let policy = FetchPolicy {
        allow_hosts: vec![
            "127.0.0.1".into(),
            "[::1]".into(),
            "169.254.169.254".into(),
            "localhost".into(),
            "10.0.0.8".into(),
        ],
        ..FetchPolicy::default()
    };
    let mut chain = chain(policy);
    for (url, host, address, why) in [
        (
            format!("http://127.0.0.1:{port}/json"),
            "127.0.0.1",
            "127.0.0.1",
            "a loopback address",
        ),
        (
            format!("http://[::1]:{port}/json"),
            "[::1]",
            "::1",
            "a loopback address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "169.254.169.254",
            "169.254.169.254",
            "a cloud metadata address",
        ),
        (
            format!("http://localhost:{port}/json"),
            "localhost",
            "127.0.0.1",
            "a loopback address",
        ),
        (
            "http://10.0.0.8/".to_string(),
            "10.0.0.8",
            "10.0.0.8",
            "a private address",
        ),
    ] {
        let out = fetch(&mut chain, &url, Value::Null);
        let error = out["error"].as_str().unwrap();
        assert!(
            error
                == format!(
                    "TypeError: fetch: {host} resolves to {address}, {why}, which connectors may not reach"
                )
                || (host == "localhost"
                    && error.starts_with("TypeError: fetch: localhost resolves to ")
                    && error.ends_with("a loopback address, which connectors may not reach")),
            "{url}: {error}"
        );
    }
}

#[test]
fn allowed_requests_return_responses_and_redirects_are_checked_per_hop() {
    let port = server();
    let mut chain = chain(local());
    assert_eq!(
        fetch(
            &mut chain,
            &format!("http://127.0.0.1:{port}/json"),
            Value::Null
        ),
        json!({"status": 200, "ok": true, "contentType": "application/json", "text": r#"{"plan":"pro","seats":3}"#})
    );
    let out = fetch(
        &mut chain,
        &format!("http://127.0.0.1:{port}/echo"),
        json!({"method": "POST", "body": "hello", "headers": {"X-Test": "yes"}}),
    );
    assert_eq!(out["status"], 201);
    assert_eq!(
        serde_json::from_str::<Value>(out["text"].as_str().unwrap()).unwrap(),
        json!({"method": "POST", "body": "hello", "x-test": "yes"})
    );
    // A character up to U+00FF goes out as its Latin-1 byte, as Node sends
    // it; one beyond is refused, as Node refuses it.
    let out = fetch(
        &mut chain,
        &format!("http://127.0.0.1:{port}/echo"),
        json!({"method": "POST", "body": "", "headers": {"X-Test": "zoë"}}),
    );
    assert_eq!(
        serde_json::from_str::<Value>(out["text"].as_str().unwrap()).unwrap()["x-test"],
        "zoë"
    );
    assert_eq!(
        fetch(
            &mut chain,
            &format!("http://127.0.0.1:{port}/echo"),
            json!({"headers": {"X-Test": "☃"}}),
        ),
        json!({"error": "TypeError: fetch: the value of the header \"x-test\" holds a character a header may not (a control character, or one beyond U+00FF)"})
    );
    assert_eq!(
        fetch(
            &mut chain,
            &format!("http://127.0.0.1:{port}/redirect-same"),
            Value::Null
        )["status"],
        200
    );
    // The redirect target's host is not on the allow list: refused at that hop.
    assert_eq!(
        fetch(
            &mut chain,
            &format!("http://127.0.0.1:{port}/redirect-local"),
            Value::Null
        ),
        json!({"error": "TypeError: fetch: localhost is not an allowed host for this connector"})
    );
    assert_eq!(
        fetch(
            &mut chain,
            &format!("http://127.0.0.1:{port}/nothing"),
            Value::Null
        )["ok"],
        false
    );
}

#[test]
fn a_gzipped_response_is_read_decoded_as_node_fetch_reads_it() {
    let port = server();
    let mut chain = chain(local());
    assert_eq!(
        fetch(
            &mut chain,
            &format!("http://127.0.0.1:{port}/gzip"),
            Value::Null
        ),
        json!({"status": 200, "ok": true, "contentType": null, "text": "{\"zipped\":true}"})
    );
}

#[test]
fn responses_are_bounded() {
    let port = server();
    let mut chain = chain(FetchPolicy {
        max_response: 1_000,
        ..local()
    });
    assert_eq!(
        fetch(
            &mut chain,
            &format!("http://127.0.0.1:{port}/big"),
            Value::Null
        ),
        json!({"error": "TypeError: fetch: the response is over the 1000-byte limit"})
    );
}

#[test]
fn a_response_that_trickles_in_ends_at_the_call_deadline() {
    let port = server();
    let logs = Arc::new(MemoryLogs::default());
    let connector = connector_with_options(
        bundle("fetcher", FETCHER),
        0,
        Default::default(),
        ConnectorOptions {
            logs: logs.clone(),
            fetch: local(),
            limits: Limits {
                deadline: std::time::Duration::from_millis(500),
                ..Limits::default()
            },
            ..ConnectorOptions::default()
        },
    );
    let mut chain = Chain::new(vec![connector]);
    let started = std::time::Instant::now();
    let out = chain.process(json!({"url": format!("http://127.0.0.1:{port}/drip")}));
    // Each byte comes well within the client's read timeout; the server
    // gives up after 10 s. The call ends at its deadline.
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert_eq!(
        out.failures
            .iter()
            .map(|f| f.error.to_string())
            .collect::<Vec<_>>(),
        ["exceeded its 500 ms deadline"]
    );
}

#[test]
fn a_fetch_without_await_handling_rejects_the_call() {
    let port = server();
    let logs = Arc::new(MemoryLogs::default());
    let connector = connector_with(
        bundle(
            "plain",
            "async function processEvent(e) { await fetch(e.url); return e }",
        ),
        0,
        Value::Null,
        Limits::default(),
        &logs,
    );
    let mut chain = Chain::new(vec![connector]);
    let out = chain.process(json!({"url": format!("http://127.0.0.1:{port}/json")}));
    let CallError::Threw(error) = &out.failures[0].error else {
        panic!("{:?}", out.failures)
    };
    assert_eq!(error.name.as_deref(), Some("TypeError"));
}
