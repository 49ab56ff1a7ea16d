//! The back end a test's `sandpipe serve` keeps its state in. By default a
//! SQLite file at the path the test names (and the in-memory `meta.cache`);
//! with `SANDPIPE_TEST_BACKEND=postgres` the same tests run on a PostgreSQL
//! database (one per path the test names, so a restart finds its data) and a
//! Redis `meta.cache`, on servers this test binary starts once on 127.0.0.1
//! random ports in temporary directories. [`PgServer`] and [`RedisServer`]
//! are those servers, which a test may also start for itself (to stop one);
//! [`NatsServer`] is a JetStream server for the worker tests.
//!
//! Every server runs with the parent-death signal set, so it stops with the
//! test binary even when the binary is killed.

use std::collections::HashMap;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where the serve tests keep their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// PostgreSQL for the store and `meta.storage`, Redis for `meta.cache`.
    Postgres,
}

impl Backend {
    /// The back end `SANDPIPE_TEST_BACKEND` names (`sqlite`, the default, or `postgres`).
    pub fn current() -> Backend {
        match std::env::var("SANDPIPE_TEST_BACKEND").as_deref() {
            Ok("postgres") => Backend::Postgres,
            Ok("sqlite") | Err(_) => Backend::Sqlite,
            Ok(other) => panic!("SANDPIPE_TEST_BACKEND={other:?}: expected sqlite or postgres"),
        }
    }
}

/// The `serve` flags that put a server's state at `db`: `--db db` on SQLite;
/// on PostgreSQL, the database that stands for `db` and the shared Redis.
pub fn store_args(db: &Path) -> Vec<String> {
    match Backend::current() {
        Backend::Sqlite => vec!["--db".into(), db.to_str().unwrap().into()],
        Backend::Postgres => {
            let shared = Shared::get();
            vec![
                "--db".into(),
                shared.database_for(db),
                "--cache".into(),
                shared.redis.url(),
            ]
        }
    }
}

/// Replaces a stored bundle's bytes, as an upgrade that no longer admits them would leave it.
pub fn set_bundle_bytes(db: &Path, sha256: &str, bytes: &[u8]) -> usize {
    match Backend::current() {
        Backend::Sqlite => rusqlite::Connection::open(db)
            .unwrap()
            .execute(
                "UPDATE bundles SET bytes = ?1 WHERE sha256 = ?2",
                rusqlite::params![bytes, sha256],
            )
            .unwrap(),
        Backend::Postgres => {
            let shared = Shared::get();
            let url = shared.database_for(db);
            let out = shared.pg.psql(
                &url,
                &format!(
                    "UPDATE bundles SET bytes = '\\x{}'::bytea WHERE sha256 = '{sha256}'",
                    hex::encode(bytes)
                ),
            );
            out.trim()
                .strip_prefix("UPDATE ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("psql answered {out:?}"))
        }
    }
}

/// Runs `sql` (statements both back ends read alike) on the database that
/// stands for `db`, beside a server that may be using it.
pub fn execute_sql(db: &Path, sql: &str) {
    match Backend::current() {
        Backend::Sqlite => {
            let connection = rusqlite::Connection::open(db).unwrap();
            connection
                .busy_timeout(std::time::Duration::from_secs(10))
                .unwrap();
            connection.execute_batch(sql).unwrap();
        }
        Backend::Postgres => {
            let shared = Shared::get();
            let url = shared.database_for(db);
            shared.pg.psql(&url, sql);
        }
    }
}

/// The servers every test of this binary shares on the PostgreSQL back end.
pub struct Shared {
    pub pg: PgServer,
    pub redis: RedisServer,
    /// The database that stands for each path a test named.
    databases: Mutex<HashMap<PathBuf, String>>,
}

impl Shared {
    /// Started on first use from a thread that lives as long as the binary
    /// (the parent-death signal follows the thread that started a child).
    pub fn get() -> &'static Shared {
        static SHARED: OnceLock<Shared> = OnceLock::new();
        SHARED.get_or_init(|| {
            let (send, receive) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let servers = (PgServer::start(), RedisServer::start());
                send.send(servers).unwrap();
                loop {
                    std::thread::park();
                }
            });
            let (pg, redis) = receive.recv().expect("the shared servers start");
            Shared {
                pg,
                redis,
                databases: Mutex::new(HashMap::new()),
            }
        })
    }

    /// The URL of the database for `path`, created on first use.
    pub fn database_for(&self, path: &Path) -> String {
        let mut databases = self.databases.lock().unwrap();
        let count = databases.len();
        let name = databases
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                let name = format!("t{count}");
                self.pg.create_database(&name);
                name
            })
            .clone();
        self.pg.url(&name)
    }
}

/// A port free on 127.0.0.1 just now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The uid and gid to run PostgreSQL as: the `postgres` user when the tests
/// run as root (PostgreSQL refuses root), else our own.
fn postgres_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    // SAFETY: a NUL-terminated name; the record is read at once, before any other getpw* call.
    let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    assert!(
        !entry.is_null(),
        "the tests run as root and there is no postgres user (install Debian's postgresql)"
    );
    // SAFETY: getpwnam returned a valid record.
    unsafe { Some(((*entry).pw_uid, (*entry).pw_gid)) }
}

/// `program` with Debian's PostgreSQL binaries on the path, run as `user`,
/// killed when the thread that starts it ends.
fn server_command(program: &str, user: Option<(u32, u32)>) -> Command {
    let mut command = Command::new(program);
    let path = std::env::var("PATH").unwrap_or_default();
    let mut bins: Vec<String> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| {
            dirs.filter_map(Result::ok)
                .map(|d| d.path().join("bin").display().to_string())
                .collect()
        })
        .unwrap_or_default();
    bins.sort();
    bins.reverse();
    bins.push(path);
    command.env("PATH", bins.join(":"));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if let Some((uid, gid)) = user
                && (libc::setgid(gid) != 0 || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            // After the change of user, which clears it.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// Waits until something accepts connections on `port` (or panics after 30 s).
fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening on {port}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A PostgreSQL server (Debian's) in a temporary directory on 127.0.0.1.
pub struct PgServer {
    pub port: u16,
    dir: tempfile::TempDir,
    user: Option<(u32, u32)>,
    child: Mutex<Option<Child>>,
}

impl PgServer {
    /// `initdb` in a new directory, then the server on a random port.
    pub fn start() -> PgServer {
        remove_abandoned_servers();
        let dir = tempfile::Builder::new()
            .prefix("sandpipe-test-pg-")
            .tempdir()
            .unwrap();
        let user = postgres_user();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let output = server_command("initdb", user)
            .args(["-D", "data", "-U", "postgres", "-A", "trust", "-E", "UTF8"])
            .args(["--no-sync", "--no-instructions"])
            .current_dir(dir.path())
            .output()
            .expect("initdb runs (install Debian's postgresql)");
        assert!(
            output.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let server = PgServer {
            port: free_port(),
            dir,
            user,
            child: Mutex::new(None),
        };
        server.resume();
        server
    }

    /// Starts the server (again) on its port, with its data.
    pub fn resume(&self) {
        let mut child = server_command("postgres", self.user)
            .args(["-D", "data", "-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args([
                "-c",
                &format!("unix_socket_directories={}", self.dir.path().display()),
            ])
            // fsync off: the OS keeps what a killed server wrote (commits stay synchronous).
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=400"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        wait_for_port(self.port, "postgres", &mut child);
        // Accepting connections is not yet accepting queries.
        let started = Instant::now();
        while !self
            .try_psql("postgres", "SELECT 1")
            .is_some_and(|out| out.contains('1'))
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "postgres never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        *self.child.lock().unwrap() = Some(child);
    }

    /// Kills the server at once (SIGKILL), as a crash or a lost host would:
    /// the postmaster and every backend (each in a session of its own, so
    /// found by its parent), so no pooled connection is answered after this
    /// returns.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let postmaster = child.id() as i32;
            // SAFETY: kill has no preconditions; the pids are the postmaster
            // (our child, not yet reaped) and its children, found while it is
            // stopped, so it forks no other.
            unsafe {
                libc::kill(postmaster, libc::SIGSTOP);
                for backend in children_of(postmaster) {
                    libc::kill(backend, libc::SIGKILL);
                }
                libc::kill(postmaster, libc::SIGKILL);
            }
            let _ = child.wait();
        }
        // Wait until the port is free.
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && started.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        // A killed postmaster leaves its pid file; the next start needs it gone.
        let _ = std::fs::remove_file(self.dir.path().join("data/postmaster.pid"));
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    pub fn create_database(&self, name: &str) {
        self.psql(&self.url("postgres"), &format!("CREATE DATABASE {name}"));
    }

    /// Runs `sql` with psql on the database at `url`; its output.
    pub fn psql(&self, url: &str, sql: &str) -> String {
        let output = psql_succeeding(url, &[], sql);
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    }

    /// Runs `sql` on the database at `url`; its rows, unaligned, without headers.
    pub fn query(&self, url: &str, sql: &str) -> String {
        let output = psql_succeeding(url, &["-tA"], sql);
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn try_psql(&self, database: &str, sql: &str) -> Option<String> {
        let output = Command::new("psql")
            .args([&self.url(database), "-X", "-tA", "-c", sql])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// psql with `options` running `sql` on the database at `url`, stopping at
/// the first error; it must succeed (its stderr is the panic's message).
fn psql_succeeding(url: &str, options: &[&str], sql: &str) -> std::process::Output {
    let output = Command::new("psql")
        .args([url, "-X", "-v", "ON_ERROR_STOP=1"])
        .args(options)
        .args(["-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Removes the directories of test servers whose process has gone: a shared
/// server lives in a `static` for its test binary and is never dropped, so its
/// directory is left behind when the binary exits. A directory is abandoned
/// when it has no `postmaster.pid` naming a live process and is more than a
/// minute old (younger ones may still be in `initdb`).
fn remove_abandoned_servers() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with("sandpipe-test-pg-"));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60));
        let running = std::fs::read_to_string(path.join("data/postmaster.pid"))
            .ok()
            .and_then(|pid| pid.lines().next().map(str::to_owned))
            .is_some_and(|pid| Path::new("/proc").join(pid.trim()).exists());
        if is_ours && old && !running {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A redis-server (Debian's) on 127.0.0.1, without persistence.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let server = RedisServer {
            port: free_port(),
            dir: tempfile::Builder::new()
                .prefix("sandpipe-test-redis-")
                .tempdir()
                .unwrap(),
            child: Mutex::new(None),
        };
        server.resume();
        server
    }

    /// Starts the server (again) on its port (empty: it keeps nothing).
    pub fn resume(&self) {
        let mut child = server_command("redis-server", None)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", self.dir.path().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (apt-get install redis-server)");
        wait_for_port(self.port, "redis-server", &mut child);
        *self.child.lock().unwrap() = Some(child);
    }

    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The processes whose parent is `parent`, from `/proc`.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            // `pid (comm) state ppid …`: comm may hold blanks and parentheses.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

/// A nats-server (Debian's) with JetStream on 127.0.0.1, its store in a temporary directory.
pub struct NatsServer {
    pub port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let dir = tempfile::Builder::new()
            .prefix("sandpipe-test-nats-")
            .tempdir()
            .unwrap();
        let port = free_port();
        // Debian installs it in /usr/sbin, which a user's PATH may lack.
        let program = if Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let mut child = server_command(program, None)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["-sd", dir.path().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts (apt-get install nats-server)");
        wait_for_port(port, "nats-server", &mut child);
        NatsServer {
            port,
            _dir: dir,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
