//! `sandpipe publish`: NDJSON events (a file, or stdin) into JetStream for
//! `sandpipe worker`s, one message per line; prints each event's id.

use crate::worker::{Outgoing, Publisher};
use anyhow::Context;
use std::io::Read;
use std::path::PathBuf;

/// `sandpipe publish`'s arguments.
#[derive(clap::Args)]
pub struct Args {
    /// NATS JetStream server (`nats://host:port`).
    #[arg(long, env = "SANDPIPE_NATS", hide_env_values = true)]
    nats: String,
    /// The team whose chain the events go through.
    #[arg(long)]
    team: i64,
    /// One event JSON object per line (default: stdin).
    file: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (name, text) = match &args.file {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading stdin")?;
            ("stdin".to_string(), text)
        }
    };
    // Every line is checked before any is published.
    let mut events = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = Outgoing::line(line).map_err(|reason| {
            anyhow::anyhow!(
                "{name}:{}: {reason}; nothing was published (one event object per line)",
                number + 1
            )
        })?;
        events.push(event);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let published = runtime.block_on(async {
        let publisher = Publisher::connect(&args.nats).await?;
        publisher.publish(args.team, events).await
    })?;
    let mut out = String::new();
    for id in &published.ids {
        out.push_str(id);
        out.push('\n');
    }
    print!("{out}");
    let subject = crate::worker::events_subject(args.team);
    let count = published.ids.len() - published.duplicates.len();
    match published.duplicates.as_slice() {
        [] => eprintln!("sandpipe: published {count} events to {subject}"),
        duplicates => eprintln!(
            "sandpipe: published {count} events to {subject}; {} dropped by JetStream as copies of events it had within its duplicate window (same uuid): {}",
            duplicates.len(),
            duplicates.join(", ")
        ),
    }
    Ok(())
}
