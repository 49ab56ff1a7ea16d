//! `sandpipe`: build, inspect and run PostHog-style connectors as WebAssembly.
//!
//! The CLI only parses arguments and calls the crates: `sandpipe-compiler`
//! builds bundles, `sandpipe-runtime` admits and runs them. Each subcommand's
//! module owns its clap `Args` (`serve_cmd` those of `serve`, `worker_cmd`
//! those of `worker`); `main` dispatches.

mod attachments;
mod build;
mod chain_file;
mod cost;
mod dev;
mod event_rule;
mod identity;
mod inspect;
mod memory_storage;
mod new_cmd;
mod publish_cmd;
mod run;
mod serve;
mod serve_cmd;
mod test_cmd;
mod worker;
mod worker_cmd;

use clap::{Parser, Subcommand};

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sandpipe",
    version,
    about = "Run PostHog-style data connectors as sandboxed WebAssembly"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scaffold a connector: index.ts, plugin.json, typings and a passing fixture.
    New(new_cmd::Args),
    /// Compile a connector directory (index.js + plugin.json) to a bundle.
    Build(build::Args),
    /// Run a connector's fixtures (DIR/tests/*.json) and report pass/fail.
    Test(test_cmd::Args),
    /// Watch a connector directory: rebuild and rerun its fixtures on every change.
    Dev(dev::Args),
    /// Show a bundle's manifest, ABI version, source hash, imports and size.
    Inspect(inspect::Args),
    /// Run the HTTP service: bundles, team chains, events, logs (SQLite, no other set-up).
    Serve(serve_cmd::Args),
    /// Run NDJSON events through a chain of connectors; print one JSON line per event.
    Run(run::Args),
    /// Run teams' chains on events from NATS JetStream, beside `serve` (PostgreSQL).
    Worker(worker_cmd::Args),
    /// Publish NDJSON events to NATS JetStream for `sandpipe worker`; print their ids.
    Publish(publish_cmd::Args),
}

/// Where `meta.geoip` reads its database (`test`, `run` and `serve`).
#[derive(clap::Args)]
struct GeoIpArg {
    /// The GeoLite2-City database behind `meta.geoip` (read only when a connector uses it).
    /// Default: the first of `$XDG_DATA_HOME/sandpipe/GeoLite2-City.mmdb` (else
    /// `~/.local/share/sandpipe/…`), which `cargo xtask geoip` fills, and
    /// `data/GeoLite2-City.mmdb` in the working directory.
    #[arg(long = "geoip", env = "SANDPIPE_GEOIP_DB")]
    path: Option<PathBuf>,
}

/// The database's file name, in every place it is looked for.
const GEOIP_FILE: &str = "GeoLite2-City.mmdb";

impl GeoIpArg {
    fn database(&self) -> std::sync::Arc<sandpipe_runtime::GeoIpDatabase> {
        std::sync::Arc::new(match &self.path {
            Some(path) => sandpipe_runtime::GeoIpDatabase::new(path),
            None => sandpipe_runtime::GeoIpDatabase::first_of(default_geoip_paths()),
        })
    }
}

/// Where the database is looked for without `--geoip`: the user's data
/// directory (XDG Base Directory: `$XDG_DATA_HOME` when it is an absolute
/// path, else `$HOME/.local/share`), then `data/` in the working directory
/// (a checkout's, where the tests keep it).
fn default_geoip_paths() -> Vec<PathBuf> {
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|home| PathBuf::from(home).join(".local/share"))
        });
    data_home
        .map(|dir| dir.join("sandpipe").join(GEOIP_FILE))
        .into_iter()
        .chain([PathBuf::from("data").join(GEOIP_FILE)])
        .collect()
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::New(args) => new_cmd::run(args),
        Command::Build(args) => build::run(args),
        Command::Test(args) => test_cmd::run(args),
        Command::Dev(args) => dev::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Run(args) => run::run(args),
        Command::Worker(args) => worker_cmd::run(args),
        Command::Publish(args) => publish_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sandpipe: error: {}", one_line(&format!("{error:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Errors are one line: any newline in a message becomes a space.
fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The runtime every command shares (the module cache makes it cheap).
fn runtime() -> anyhow::Result<sandpipe_runtime::Runtime> {
    Ok(sandpipe_runtime::Runtime::new(
        sandpipe_runtime::RuntimeOptions::default(),
    )?)
}

/// How the commands that run chains meter a call's CPU.
#[derive(clap::Args)]
struct MeteringArg {
    /// Bound calls by their deadline, memory cap and stack only, without fuel
    /// metering: guest code runs 10–15 % faster, but a call's work is no longer
    /// counted deterministically (SECURITY.md, "CPU metering").
    #[arg(long, env = "SANDPIPE_NO_FUEL", value_parser = clap::builder::BoolishValueParser::new())]
    no_fuel: bool,
}

impl MeteringArg {
    /// The runtime, with fuel metering unless `--no-fuel`.
    fn runtime(&self) -> anyhow::Result<sandpipe_runtime::Runtime> {
        let mut options = sandpipe_runtime::RuntimeOptions::default();
        options.engine.fuel = !self.no_fuel;
        Ok(sandpipe_runtime::Runtime::new(options)?)
    }
}
