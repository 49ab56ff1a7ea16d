//! The admin page end to end in a real headless browser: Debian's
//! `chromium`, driven by `playwright-core` (pinned in
//! `tests/admin/package-lock.json`, installed here with `npm ci` when
//! missing), runs `tests/admin/e2e.mjs` against a real `sandpipe serve` on
//! 127.0.0.1 with a webhook receiver beside it. The script writes its
//! screenshots in `target/admin-screenshots/`, or in the README's
//! `docs/screenshots/` when `SANDPIPE_UPDATE_SCREENSHOTS=1` (so a test run
//! leaves the checkout as it was). Without chromium or node the test
//! fails and says what to install (`.ci/run` installs both).

mod common;

use common::*;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest the browser script may run.
const TIMEOUT: Duration = Duration::from_secs(150);

/// `tests/admin/node_modules`, from the lockfile when missing.
fn install_playwright(dir: &Path) {
    if dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm is required for the admin page's browser test (apt-get install -y npm)");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

#[test]
fn the_admin_page_works_end_to_end_in_chromium() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: the admin page's browser test needs Debian's chromium \
         (apt-get install -y chromium; .ci/run installs it)"
    );
    let script_dir = root().join("tests/admin");
    install_playwright(&script_dir);
    let tmp = tempfile::tempdir().unwrap();
    let bundles = [
        ("hello-world", "HELLO_BUNDLE"),
        ("webhook", "WEBHOOK_BUNDLE"),
    ]
    .map(|(example, variable)| {
        let path = tmp.path().join(format!("{example}.wasm"));
        std::fs::write(&path, built(&root().join("examples").join(example))).unwrap();
        (variable, path)
    });
    // A connector with an attachment: the page's file input, kept across saves.
    let blocklist = tmp.path().join("blocklist.wasm");
    std::fs::write(
        &blocklist,
        inline(
            "Blocklist",
            "function processEvent(e, { attachments }) { e.properties.blocked = attachments.list ? attachments.list.contents.toString().trim() : null; return e }",
            r#"{"key": "list", "name": "Blocked users", "type": "attachment", "required": true}"#,
        ),
    )
    .unwrap();
    let receiver = receiver();
    let server = Server::start_with(
        &tmp.path().join("sandpipe.db"),
        &["--allow-private-webhooks"],
    );
    let screenshots = match std::env::var_os("SANDPIPE_UPDATE_SCREENSHOTS") {
        Some(value) if value == "1" => root().join("docs/screenshots"),
        _ => root().join("target/admin-screenshots"),
    };
    std::fs::create_dir_all(&screenshots).unwrap();
    let mut child = Command::new("node")
        .arg(script_dir.join("e2e.mjs"))
        .current_dir(&script_dir)
        .env("SANDPIPE_URL", &server.base)
        .env("SANDPIPE_ADMIN_TOKEN", ADMIN)
        .env(
            "WEBHOOK_URL",
            format!("http://127.0.0.1:{}/hook", receiver.port),
        )
        .env("SCREENSHOTS", &screenshots)
        .env("CHROMIUM", CHROMIUM)
        .envs(bundles.iter().map(|(variable, path)| (variable, path)))
        .env("BLOCKLIST_BUNDLE", &blocklist)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is required for the admin page's browser test (apt-get install -y nodejs)");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    println!("{out}");
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("the browser script failed ({status}):\n{out}\n{err}"),
        None => panic!("the browser script ran over {TIMEOUT:?}:\n{out}\n{err}"),
    }
    // The real event the script sent was delivered.
    assert_eq!(receiver.accepted.lock().unwrap().len(), 1);
}
