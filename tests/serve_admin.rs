//! The routes the admin page needs, over HTTP against a real `sandpipe
//! serve`: a dry run's trace, 422s that name their field, secrets kept by
//! the redacted placeholder, enable/disable log lines, teams, a bundle's
//! manifest, health, and the page itself with its Content-Security-Policy.

mod common;

use common::*;
use serde_json::{Value, json};

fn secretive() -> Vec<u8> {
    inline(
        "Secretive",
        "function processEvent(e, { config }) { console.log(`using key ${config.apiKey}`); e.properties.key = config.apiKey; e.properties[`k:${config.apiKey}`] = 1; return e }",
        r#"{"key": "apiKey", "secret": true, "required": true}"#,
    )
}

#[test]
fn a_trace_shows_each_step_and_the_webhooks_without_storing_or_sending_anything() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team("acme");
    let (_, hello) = server.upload(&token, built(&root().join("examples/hello-world")));
    let (_, secretive) = server.upload(&token, secretive());
    let (_, webhook) = server.upload(&token, built(&root().join("examples/webhook")));
    let chain = json!({"connectors": [
        {"bundle": hello["id"], "config": {"name": "Ada"}},
        {"bundle": secretive["id"], "config": {"apiKey": "s3cr3t-value"}},
        {"bundle": webhook["id"], "config": {"url": "https://hooks.example.com/in", "authorization": "Bearer t0ps3cret"}}
    ]});
    assert_eq!(server.put_chain(team, &token, chain).0, 200);
    let event = json!({"event": "signup", "distinct_id": "ada", "timestamp": "2024-05-01T12:00:00Z", "properties": {"plan": "pro"}});
    let (status, trace) = server.call(
        "POST",
        &format!("/v1/teams/{team}/events?trace=true"),
        Some(&token),
        Some(event),
    );
    assert_eq!(status, 200, "{trace}");
    assert_eq!(
        trace,
        json!({
            "steps": [
                {"connector": "Hello World (0)", "outcome": "kept", "event":
                    {"event": "signup", "distinct_id": "ada", "timestamp": "2024-05-01T12:00:00Z", "properties": {"plan": "pro", "hello": "Hello Ada"}}},
                {"connector": "Secretive (1)", "outcome": "kept", "event":
                    {"event": "signup", "distinct_id": "ada", "timestamp": "2024-05-01T12:00:00Z", "properties": {"plan": "pro", "hello": "Hello Ada", "key": "**********", "k:**********": 1}}},
                {"connector": "Webhook (2)", "outcome": "skipped"}
            ],
            "result": {"event": "signup", "distinct_id": "ada", "timestamp": "2024-05-01T12:00:00Z", "properties": {
                "plan": "pro", "hello": "Hello Ada", "key": "**********", "k:**********": 1,
                "$plugins_succeeded": ["Hello World (0)", "Secretive (1)"], "$plugins_failed": []
            }},
            "dropped_by": null,
            "failures": [],
            "webhooks": [{
                "connector": "Webhook (2)",
                "method": "POST",
                "url": "https://hooks.example.com/in",
                "headers": {"Content-Type": "application/json", "Authorization": "**********"},
                "body": "{\"event\":\"signup\",\"distinct_id\":\"ada\",\"properties\":{\"plan\":\"pro\",\"hello\":\"Hello Ada\",\"key\":\"**********\",\"k:**********\":1,\"$plugins_succeeded\":[\"Hello World (0)\",\"Secretive (1)\"],\"$plugins_failed\":[]},\"timestamp\":\"2024-05-01T12:00:00.000Z\"}"
            }],
            "captured": [],
            "logs": [{"connector": "Secretive (1)", "level": "log", "message": "using key **********"}]
        })
    );
    // Nothing was kept: no webhook row, no log line, no counted call.
    let (_, webhooks) = server.call(
        "GET",
        &format!("/v1/teams/{team}/webhooks"),
        Some(&token),
        None,
    );
    assert_eq!(webhooks, json!({"webhooks": []}));
    assert_eq!(server.log_entries(team, &token, ""), []);
    let (_, metrics) = server.call("GET", "/metrics", Some(ADMIN), None);
    assert!(
        !metrics
            .as_str()
            .unwrap()
            .contains("sandpipe_connector_calls_total{"),
        "{metrics}"
    );
}

#[test]
fn a_secret_that_is_a_word_of_the_trace_leaves_the_traces_own_keys_alone() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team("acme");
    let (_, secretive) = server.upload(&token, secretive());
    let chain =
        json!({"connectors": [{"bundle": secretive["id"], "config": {"apiKey": "result"}}]});
    assert_eq!(server.put_chain(team, &token, chain).0, 200);
    let (status, trace) = server.call(
        "POST",
        &format!("/v1/teams/{team}/events?trace=true"),
        Some(&token),
        Some(json!({"event": "e", "properties": {"result": "r"}})),
    );
    assert_eq!(status, 200, "{trace}");
    // The trace's keys are the API's; what the connector's event carries is masked, keys too.
    assert_eq!(
        trace,
        json!({
            "steps": [{"connector": "Secretive (0)", "outcome": "kept", "event":
                {"event": "e", "properties": {"**********": "r", "key": "**********", "k:**********": 1}}}],
            "result": {"event": "e", "properties": {
                "**********": "r", "key": "**********", "k:**********": 1,
                "$plugins_succeeded": ["Secretive (0)"], "$plugins_failed": []
            }},
            "dropped_by": null,
            "failures": [],
            "webhooks": [],
            "captured": [],
            "logs": [{"connector": "Secretive (0)", "level": "log", "message": "using key **********"}]
        })
    );
}

#[test]
fn a_trace_names_the_connector_that_dropped_the_event_and_the_failures() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team_with_chain(
        "t",
        vec![
            inline(
                "Thrower",
                "function processEvent(e) { throw new Error('nope') }",
                "",
            ),
            inline("Dropper", "function processEvent(e) { return null }", ""),
            built(&root().join("examples/hello-world")),
        ],
    );
    let path = format!("/v1/teams/{team}/events?trace=true");
    let (status, trace) = server.call("POST", &path, Some(&token), Some(json!({"event": "e"})));
    assert_eq!(status, 200, "{trace}");
    assert_eq!(
        trace,
        json!({
            "steps": [
                {"connector": "Thrower (0)", "outcome": "failed"},
                {"connector": "Dropper (1)", "outcome": "dropped"}
            ],
            "result": null,
            "dropped_by": "Dropper (1)",
            "failures": [{"connector": "Thrower (0)", "stage": "processEvent", "error": "Error: nope"}],
            "webhooks": [],
            "captured": [],
            "logs": [{"connector": "Thrower (0)", "level": "error",
                      "message": "processEvent: Error: nope\n    at processEvent (index.js:1:38)"}]
        })
    );
    // A trace runs one event.
    let (status, body) = server.call("POST", &path, Some(&token), Some(json!([{"event": "e"}])));
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "a trace runs one event: send a JSON object, not a list"})
        )
    );
    // An item a batch would refuse is refused the same way.
    let (status, body) = server.call("POST", &path, Some(&token), Some(json!({"properties": {}})));
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "event 0: an event needs an \"event\" name (a non-empty string), e.g. {\"event\": \"pageview\", \"properties\": {}}"})
        )
    );
    let (status, body) = server.call("POST", &path, Some(&token), Some(json!(7)));
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "event 0: not a JSON object; a trace runs one event object"})
        )
    );
    let (other, other_token) = server.team("no chain");
    let (status, body) = server.call(
        "POST",
        &format!("/v1/teams/{other}/events?trace=true"),
        Some(&other_token),
        Some(json!({"event": "e"})),
    );
    assert_eq!(
        (status, body),
        (
            409,
            json!({"error": format!("team {other} has no chain: PUT /v1/teams/{other}/chain first")})
        )
    );
}

#[test]
fn the_redacted_placeholder_keeps_a_stored_secret_across_a_reorder() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team("acme");
    let (_, hello) = server.upload(&token, built(&root().join("examples/hello-world")));
    let (_, secretive) = server.upload(&token, secretive());
    let chain = json!({"connectors": [
        {"bundle": hello["id"]},
        {"bundle": secretive["id"], "config": {"apiKey": "s3cr3t-value"}}
    ]});
    assert_eq!(server.put_chain(team, &token, chain).0, 200);
    // Reordered, the secret given as GET shows it: the stored value is kept.
    let chain = json!({"connectors": [
        {"bundle": secretive["id"], "config": {"apiKey": "**********"}},
        {"bundle": hello["id"]}
    ]});
    let (status, shown) = server.put_chain(team, &token, chain);
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        shown["connectors"][0]["config"],
        json!({"apiKey": "**********"})
    );
    let (_, out) = server.events(team, &token, json!({"event": "e", "properties": {}}));
    assert_eq!(out["results"][0]["properties"]["key"], "s3cr3t-value");
    // A second connector of the bundle has no stored value to keep.
    let chain = json!({"connectors": [
        {"bundle": secretive["id"], "config": {"apiKey": "**********"}},
        {"bundle": secretive["id"], "config": {"apiKey": "**********"}}
    ]});
    assert_eq!(
        server.put_chain(team, &token, chain),
        (
            422,
            json!({
                "error": "connector 1 (Secretive): config field \"apiKey\" is required but has no value",
                "connector": 1,
                "field": "apiKey",
                "problems": [{
                    "connector": 1,
                    "field": "apiKey",
                    "error": "config field \"apiKey\" is required but has no value"
                }]
            })
        )
    );
    // The placeholder in a field that is not secret is a value like any other.
    let chain = json!({"connectors": [{"bundle": hello["id"], "config": {"name": "**********"}}]});
    assert_eq!(server.put_chain(team, &token, chain).0, 200);
    let (_, out) = server.events(team, &token, json!({"event": "e", "properties": {}}));
    assert_eq!(out["results"][0]["properties"]["hello"], "Hello **********");
    // A stored secret whose field the new bundle does not keep secret: the
    // placeholder is refused (keeping the value would show it, storing the
    // placeholder would lose it), and the stored secret runs on.
    let chain =
        json!({"connectors": [{"bundle": secretive["id"], "config": {"apiKey": "s3cr3t-value"}}]});
    assert_eq!(server.put_chain(team, &token, chain).0, 200);
    let (_, plain) = server.upload(
        &token,
        inline(
            "Secretive",
            "function processEvent(e, { config }) { e.properties.key = config.apiKey; return e }",
            r#"{"key": "apiKey", "required": true}"#,
        ),
    );
    let chain =
        json!({"connectors": [{"bundle": plain["id"], "config": {"apiKey": "**********"}}]});
    assert_eq!(
        server.put_chain(team, &token, chain),
        (
            422,
            json!({
                "error": "connector 0 (Secretive): config field \"apiKey\": ********** stands for the stored secret, but this bundle does not keep the field secret: give its value",
                "connector": 0,
                "field": "apiKey",
                "problems": [{
                    "connector": 0,
                    "field": "apiKey",
                    "error": "config field \"apiKey\": ********** stands for the stored secret, but this bundle does not keep the field secret: give its value"
                }]
            })
        )
    );
    let (_, out) = server.events(team, &token, json!({"event": "e", "properties": {}}));
    assert_eq!(out["results"][0]["properties"]["key"], "s3cr3t-value");
}

#[test]
fn enabling_or_disabling_a_connector_is_logged() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team("acme");
    let (_, hello) = server.upload(&token, built(&root().join("examples/hello-world")));
    let put = |enabled: bool| {
        let chain = json!({"connectors": [{"bundle": hello["id"], "enabled": enabled}]});
        assert_eq!(server.put_chain(team, &token, chain).0, 200);
    };
    put(true);
    put(true);
    put(false);
    put(false);
    put(true);
    let (status, logs) = server.call("GET", &format!("/v1/teams/{team}/logs"), Some(&token), None);
    assert_eq!(status, 200);
    let lines: Vec<Value> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| json!([l["connector"], l["level"], l["message"]]))
        .collect();
    assert_eq!(
        lines,
        [
            json!(["Hello World (0)", "info", "configuration: now disabled"]),
            json!(["Hello World (0)", "info", "configuration: now enabled"]),
        ]
    );
}

#[test]
fn teams_are_listed_for_the_admin_and_a_team_sees_its_own() {
    let (_tmp, server) = Server::fresh(&[]);
    let (a, token_a) = server.team("a");
    let (b, _) = server.team("b");
    let (status, all) = server.call("GET", "/v1/teams", Some(ADMIN), None);
    assert_eq!(status, 200);
    let created = |i: usize| all["teams"][i]["created_at"].clone();
    for i in 0..2 {
        let time = created(i);
        let time = time.as_str().unwrap();
        assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{time}"
        );
    }
    assert_eq!(
        all,
        json!({"teams": [
            {"id": a, "name": "a", "created_at": created(0)},
            {"id": b, "name": "b", "created_at": created(1)}
        ]})
    );
    let (status, own) = server.call("GET", "/v1/teams", Some(&token_a), None);
    assert_eq!(
        (status, own),
        (200, json!({"teams": [all["teams"][0].clone()]}))
    );
    assert_eq!(server.call("GET", "/v1/teams", None, None).0, 401);
}

#[test]
fn a_bundle_s_manifest_is_read_back_by_its_id() {
    let (_tmp, server) = Server::fresh(&[]);
    let (_, token) = server.team("acme");
    let (_, uploaded) = server.upload(&token, built(&root().join("examples/webhook")));
    let id = uploaded["id"].as_str().unwrap();
    let (status, body) = server.call("GET", &format!("/v1/bundles/{id}"), Some(&token), None);
    assert_eq!((status, &body), (200, &uploaded));
    let field = |key: &str, name: &str, kind: &str| {
        json!({"key": key, "name": name, "type": kind, "required": false, "secret": false,
               "default": null, "choices": [], "hint": null})
    };
    let mut url = field("url", "Webhook URL", "string");
    url["required"] = json!(true);
    let mut method = field("method", "Method", "choice");
    method["default"] = json!("POST");
    method["choices"] = json!(["POST", "PUT", "PATCH"]);
    let mut template = field("bodyTemplate", "Body template", "string");
    template["hint"] = json!(
        "Optional. `{{event}}`, `{{distinct_id}}`, `{{properties.plan}}`… are replaced with the event's values. Empty: the whole event as JSON."
    );
    let mut headers = field("headers", "Extra headers", "json");
    headers["hint"] = json!(
        "Optional. A JSON object of header names and values, e.g. {\"X-Source\": \"sandpipe\"}."
    );
    let mut authorization = field("authorization", "Authorization header", "string");
    authorization["secret"] = json!(true);
    authorization["hint"] =
        json!("Optional. Sent as the Authorization header, e.g. `Bearer …`; kept secret.");
    assert_eq!(
        body["manifest"]["config"],
        json!([url, method, template, headers, authorization])
    );
    let missing = "0".repeat(64);
    assert_eq!(
        server.call("GET", &format!("/v1/bundles/{missing}"), Some(&token), None),
        (404, json!({"error": format!("no bundle {missing:?}")}))
    );
}

#[test]
fn health_shows_each_connector_s_state_and_figures() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team_with_chain(
        "t",
        vec![
            built(&root().join("examples/hello-world")),
            inline(
                "Thrower",
                "function processEvent(e) { throw new Error('nope') }",
                "",
            ),
        ],
    );
    let path = format!("/v1/teams/{team}/health");
    let (_, before) = server.call("GET", &path, Some(&token), None);
    assert_eq!(
        before,
        json!({"connectors": [
            {"connector": "Hello World (0)", "enabled": true, "status": "healthy",
             "reason": "0 errors and 0 ms in its last 0 calls", "calls": 0, "errors": 0, "p99_ms": null},
            {"connector": "Thrower (1)", "enabled": true, "status": "healthy",
             "reason": "0 errors and 0 ms in its last 0 calls", "calls": 0, "errors": 0, "p99_ms": null}
        ]})
    );
    let (status, _) = server.events(team, &token, json!([{"event": "a"}, {"event": "b"}]));
    assert_eq!(status, 200);
    let (_, after) = server.call("GET", &path, Some(&token), None);
    let connectors = after["connectors"].as_array().unwrap();
    for (connector, errors) in connectors.iter().zip([0, 2]) {
        assert_eq!(connector["calls"], 2, "{after}");
        assert_eq!(connector["errors"], errors, "{after}");
        let p99 = connector["p99_ms"].as_f64().unwrap();
        assert!(p99 > 0.0 && p99 <= 5000.0, "{after}");
        let reason = connector["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(&format!("{errors} errors and "))
                && reason.ends_with(" ms in its last 2 calls"),
            "{reason}"
        );
    }
    let (other, other_token) = server.team("other");
    assert_eq!(
        server.call("GET", &path, Some(&other_token), None),
        (404, json!({"error": format!("no team {team}")}))
    );
    let (_, empty) = server.call(
        "GET",
        &format!("/v1/teams/{other}/health"),
        Some(&other_token),
        None,
    );
    assert_eq!(empty, json!({"connectors": []}));
}

#[test]
fn the_page_is_served_with_a_strict_content_security_policy() {
    let (_tmp, server) = Server::fresh(&[]);
    let policy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                  img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    for (path, kind) in [
        ("/", "text/html; charset=utf-8"),
        ("/admin/app.js", "text/javascript; charset=utf-8"),
        ("/admin/form.js", "text/javascript; charset=utf-8"),
        ("/admin/app.css", "text/css; charset=utf-8"),
    ] {
        let response = server
            .client
            .get(format!("{}{path}", server.base))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_string();
        assert_eq!(header("content-type"), kind, "{path}");
        assert_eq!(header("content-security-policy"), policy, "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    }
    let page = server
        .client
        .get(format!("{}/", server.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    // The policy allows no inline code, so the page has none.
    assert!(
        !page.contains("<script>") && !page.contains(" style="),
        "{page}"
    );
    assert!(
        page.contains(r#"<script type="module" src="/admin/app.js"></script>"#),
        "{page}"
    );
    let missing = server
        .client
        .get(format!("{}/admin/nope.js", server.base))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-security-policy"]
            .to_str()
            .unwrap(),
        policy
    );
}

#[test]
fn a_secret_is_redacted_where_the_host_writes_it_as_json_and_in_the_webhook_list() {
    let (_tmp, server) = Server::fresh(&[]);
    let (team, token) = server.team("acme");
    let thrower = inline(
        "Thrower",
        r#"function processEvent(e, { config }) { throw { message: 'obj ' + config.apiKey, k: config.apiKey } }
           function composeWebhook(e, { config }) { return { url: 'http://127.0.0.1:1/in?k=' + config.apiKey, body: '{}' } }"#,
        r#"{"key": "apiKey", "secret": true, "required": true}"#,
    );
    let (_, thrower) = server.upload(&token, thrower);
    let chain =
        json!({"connectors": [{"bundle": thrower["id"], "config": {"apiKey": "pa\"ss\\1"}}]});
    assert_eq!(server.put_chain(team, &token, chain).0, 200);
    let (status, body) = server.events(team, &token, json!({"event": "e", "properties": {}}));
    assert_eq!(status, 200, "{body}");
    // The thrown object is written as JSON: the secret inside is escaped.
    assert_eq!(
        body["failures"][0]["error"],
        json!(r#"threw {"message":"obj **********","k":"**********"}"#)
    );
    assert_eq!(
        server.log_entries(team, &token, "level=error"),
        [(
            "error".to_string(),
            r#"processEvent: threw {"message":"obj **********","k":"**********"}"#.to_string()
        )]
    );
    let (_, webhooks) = server.call(
        "GET",
        &format!("/v1/teams/{team}/webhooks"),
        Some(&token),
        None,
    );
    assert_eq!(
        webhooks["webhooks"][0]["url"],
        json!("http://127.0.0.1:1/in?k=**********")
    );
    assert!(!webhooks.to_string().contains("pa"), "{webhooks}");
}
