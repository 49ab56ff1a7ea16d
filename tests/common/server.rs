//! A `sandpipe serve` child process on 127.0.0.1 with an ephemeral port and
//! its own database (on the tests' back end, [`super::backend`]), spoken to
//! over HTTP; and a webhook receiver.

use super::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "test-admin-token";

pub struct Server {
    pub child: Child,
    pub base: String,
    pub stderr: Arc<Mutex<String>>,
    pub client: reqwest::blocking::Client,
}

/// A `sandpipe` child process with `args`, once one of its stderr lines has
/// given `ready`'s answer; all it writes on stderr is collected (the rest in
/// the background). `what` names the awaited line for the panic when the
/// process exits first.
pub fn spawn_sandpipe<T>(
    args: &[&str],
    what: &str,
    ready: impl FnMut(&str) -> Option<T>,
) -> (Child, Arc<Mutex<String>>, T) {
    spawn_sandpipe_with(args, &[], what, ready)
}

/// [`spawn_sandpipe`] with `envs` added to the child's environment.
pub fn spawn_sandpipe_with<T>(
    args: &[&str],
    envs: &[(&str, &str)],
    what: &str,
    mut ready: impl FnMut(&str) -> Option<T>,
) -> (Child, Arc<Mutex<String>>, T) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandpipe"))
        .args(args)
        .envs(envs.iter().copied())
        .env(
            "SANDPIPE_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("module-cache"),
        )
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let stderr = Arc::new(Mutex::new(String::new()));
    let answer = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| {
                panic!(
                    "sandpipe {} exited before printing {what}: {}",
                    args[0],
                    stderr.lock().unwrap()
                )
            })
            .unwrap();
        stderr.lock().unwrap().push_str(&format!("{line}\n"));
        if let Some(answer) = ready(&line) {
            break answer;
        }
    };
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    (child, stderr, answer)
}

impl Server {
    pub fn start(db: &Path) -> Server {
        Server::start_with(db, &[])
    }

    pub fn start_with(db: &Path, extra: &[&str]) -> Server {
        Server::start_on(&store_args(db), extra)
    }

    /// A server started with `flags` on a new database in its own temporary
    /// directory, which lives as long as the answer's first half.
    pub fn fresh(flags: &[&str]) -> (tempfile::TempDir, Server) {
        let tmp = tempfile::tempdir().unwrap();
        let server = Server::start_with(&tmp.path().join("sandpipe.db"), flags);
        (tmp, server)
    }

    /// A server whose state is where `store` (`--db …`, maybe `--cache …`) says.
    pub fn start_on(store: &[String], extra: &[&str]) -> Server {
        Server::start_on_with(store, extra, &[])
    }

    /// [`Server::start_on`] with `envs` added to the process's environment.
    pub fn start_on_with(store: &[String], extra: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--admin-token", ADMIN];
        args.extend(store.iter().map(String::as_str));
        args.extend(extra);
        let (child, stderr, base) = spawn_sandpipe_with(&args, envs, "its address", |line| {
            line.strip_prefix("sandpipe: listening on ")
                .map(str::to_string)
        });
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Server {
            child,
            base,
            stderr,
            client,
        }
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn upload(&self, token: &str, bytes: Vec<u8>) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/v1/bundles", self.base))
            .bearer_auth(token)
            .body(bytes)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap())
    }

    pub fn team(&self, name: &str) -> (i64, String) {
        let (status, body) = self.call(
            "POST",
            "/v1/teams",
            Some(ADMIN),
            Some(json!({"name": name})),
        );
        assert_eq!(status, 200, "{body}");
        (
            body["id"].as_i64().unwrap(),
            body["token"].as_str().unwrap().to_string(),
        )
    }
}

impl Server {
    /// `PUT /v1/teams/{team}/chain`.
    pub fn put_chain(&self, team: i64, token: &str, chain: Value) -> (u16, Value) {
        self.call(
            "PUT",
            &format!("/v1/teams/{team}/chain"),
            Some(token),
            Some(chain),
        )
    }

    /// Uploads `bytes` for the team and makes it the team's whole chain: one
    /// connector with `fields` (`id`, `config`, …) beside the bundle's id,
    /// which it answers.
    pub fn chain_of_one(&self, team: i64, token: &str, bytes: Vec<u8>, fields: Value) -> Value {
        let (_, bundle) = self.upload(token, bytes);
        let mut connector = fields;
        connector["bundle"] = bundle["id"].clone();
        let (status, body) = self.put_chain(team, token, json!({ "connectors": [connector] }));
        assert_eq!(status, 200, "{body}");
        bundle["id"].clone()
    }

    /// A new team whose chain is `bundles`, uploaded in order (default config).
    pub fn team_with_chain(&self, name: &str, bundles: Vec<Vec<u8>>) -> (i64, String) {
        let (team, token) = self.team(name);
        let connectors: Vec<Value> = bundles
            .into_iter()
            .map(|bytes| {
                let (status, bundle) = self.upload(&token, bytes);
                assert_eq!(status, 200, "{bundle}");
                json!({"bundle": bundle["id"]})
            })
            .collect();
        let (status, body) = self.put_chain(team, &token, json!({ "connectors": connectors }));
        assert_eq!(status, 200, "{body}");
        (team, token)
    }

    /// `POST /v1/teams/{team}/events`.
    pub fn events(&self, team: i64, token: &str, events: Value) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/v1/teams/{team}/events"),
            Some(token),
            Some(events),
        )
    }

    /// `(level, message)` of each line of `GET /v1/teams/{team}/logs?{query}`, oldest first.
    pub fn log_entries(&self, team: i64, token: &str, query: &str) -> Vec<(String, String)> {
        let (status, logs) = self.call(
            "GET",
            &format!("/v1/teams/{team}/logs?{query}"),
            Some(token),
            None,
        );
        assert_eq!(status, 200, "{logs}");
        logs["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["level"].as_str().unwrap().to_string(),
                    l["message"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The messages of `GET /v1/teams/{team}/logs?{query}`, oldest first.
    pub fn log_messages(&self, team: i64, token: &str, query: &str) -> Vec<String> {
        self.log_entries(team, token, query)
            .into_iter()
            .map(|(_, message)| message)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn built(dir: &Path) -> Vec<u8> {
    super::build_dir(dir).unwrap().bytes
}

pub fn inline(name: &str, js: &str, fields: &str) -> Vec<u8> {
    let dir = connector_dir(name, js, fields);
    built(dir.path())
}

/// A webhook receiver on 127.0.0.1: `/flaky` fails its first two requests,
/// `/down` always fails, anything else succeeds. Records the bodies it accepted.
pub struct Receiver {
    pub port: u16,
    pub accepted: Arc<Mutex<Vec<String>>>,
}

/// Reads one HTTP/1.1 request: its path and body (by Content-Length).
pub fn read_request(stream: &std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use std::io::Read;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    Some((path.to_string(), body))
}

/// A server on 127.0.0.1 that holds every request until the test opens it,
/// telling the test as each arrives: a connector that `fetch`es it waits,
/// inside its call, exactly as long as the test needs (no sleeps to guess).
pub struct Gate {
    pub url: String,
    arrived: std::sync::mpsc::Receiver<()>,
    /// Requests that have reached it so far.
    reached: Arc<std::sync::atomic::AtomicUsize>,
    open: Arc<(Mutex<bool>, std::sync::Condvar)>,
}

impl Gate {
    pub fn start() -> Gate {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/",
            listener.local_addr().unwrap().port()
        );
        let (arrive, arrived) = std::sync::mpsc::channel();
        let open = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let opened = open.clone();
        let reached = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = reached.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (arrive, opened, count) = (arrive.clone(), opened.clone(), count.clone());
                std::thread::spawn(move || {
                    if read_request(&stream).is_none() {
                        return;
                    }
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = arrive.send(());
                    let (is_open, changed) = &*opened;
                    drop(changed.wait_while(is_open.lock().unwrap(), |open| !*open));
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                });
            }
        });
        Gate {
            url,
            arrived,
            reached,
            open,
        }
    }

    /// How many requests have reached the gate.
    pub fn reached(&self) -> usize {
        self.reached.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits (at most 60 s) until a request has reached the gate.
    pub fn until_reached(&self) {
        self.arrived
            .recv_timeout(Duration::from_secs(60))
            .expect("a request reached the gate within 60 s");
    }

    /// Answers every held request, and each later one at once.
    pub fn open(&self) {
        let (is_open, changed) = &*self.open;
        *is_open.lock().unwrap() = true;
        changed.notify_all();
    }
}

/// Starts a [`Receiver`] on an ephemeral port.
pub fn receiver() -> Receiver {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let record = accepted.clone();
    std::thread::spawn(move || {
        let mut flaky_seen = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some((path, body)) = read_request(&stream) else {
                continue;
            };
            let ok = match path.as_str() {
                "/flaky" => {
                    flaky_seen += 1;
                    flaky_seen > 2
                }
                "/down" => false,
                _ => true,
            };
            if ok {
                record
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
            }
            let status = if ok {
                "200 OK"
            } else {
                "500 Internal Server Error"
            };
            let _ = stream.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    Receiver { port, accepted }
}

/// A [`Receiver`] that answers every request with 200 after `delay`, many at
/// once (a thread per connection), and records each body when it answers.
pub fn slow_receiver(delay: Duration) -> Receiver {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let record = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let record = record.clone();
            std::thread::spawn(move || {
                let Some((_, body)) = read_request(&stream) else {
                    return;
                };
                std::thread::sleep(delay);
                record
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    Receiver { port, accepted }
}

/// Polls the team's webhooks until `done` holds (or 20 s pass).
pub fn wait_for(server: &Server, team: i64, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (_, body) = server.call(
            "GET",
            &format!("/v1/teams/{team}/webhooks"),
            Some(token),
            None,
        );
        if done(&body) || started.elapsed() > Duration::from_secs(20) {
            return body;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Counts with `meta.cache`, writes and reads `meta.storage`.
pub const COUNTER: &str = "async function processEvent(e, { cache, storage }) {
    e.properties.n = await cache.incr(e.properties.counter || 'n');
    if (e.event === 'write') await storage.set('k', e.properties.value);
    if (e.event === 'read') e.properties.stored = await storage.get('k', 'nothing');
    return e
}";

/// Events per second through `serve`, one process on `store`: a one-connector
/// chain that counts in `meta.cache`, 4,000 events in batches of 50 from two
/// clients (warmed up first).
pub fn events_per_second(store: &[String]) -> f64 {
    let server = Arc::new(Server::start_on(store, &["--team-concurrency", "2"]));
    let (team, token) = server.team("bench");
    server.chain_of_one(team, &token, inline("Counter", COUNTER, ""), json!({}));
    let batch = Value::Array(
        (0..50)
            .map(|i| json!({"event": "e", "properties": {"i": i}}))
            .collect(),
    );
    let post = |requests: usize| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (server, token, batch) = (server.clone(), token.clone(), batch.clone());
                std::thread::spawn(move || {
                    for _ in 0..requests {
                        assert_eq!(server.events(team, &token, batch.clone()).0, 200);
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
    };
    post(5);
    let started = Instant::now();
    post(40);
    4_000.0 / started.elapsed().as_secs_f64()
}
