//! The timed runs: every implementation on each chain at each thread count,
//! interleaved (A, B, C, …, A, B, C, …) so that a slow spell of the machine
//! falls on all of them; every run's outputs are compared with the first
//! run's of the same chain and thread count before its time is kept.

use crate::node::{self, Host};
use crate::sandpipe::{self, ChainBundles, Isolation};
use crate::workload::Workload;
use crate::{native, shares};
use anyhow::bail;
use maxminddb::Reader;
use sandpipe_runtime::Runtime;
use std::path::Path;
use std::time::Duration;

/// The thread counts every chain runs at.
pub const THREADS: [usize; 2] = [1, 2];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    Native,
    Sandpipe,
    SandpipeShared,
    NodeVm,
    IsolatedSync,
    IsolatedAsync,
}

impl Implementation {
    /// In the order they run in each round; the first one's outputs are the reference.
    pub const ALL: [Implementation; 6] = [
        Implementation::Native,
        Implementation::Sandpipe,
        Implementation::SandpipeShared,
        Implementation::NodeVm,
        Implementation::IsolatedSync,
        Implementation::IsolatedAsync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Implementation::Native => "native Rust",
            Implementation::Sandpipe => "sandpipe",
            Implementation::SandpipeShared => "sandpipe (shared instance)",
            Implementation::NodeVm => "Node vm",
            Implementation::IsolatedSync => "isolated-vm (sync)",
            Implementation::IsolatedAsync => "isolated-vm (async)",
        }
    }

    /// How it runs the connectors, for the report.
    pub fn method(self) -> &'static str {
        match self {
            Implementation::Native => {
                "the chains' transformations hand-written in Rust over serde_json values (bench/src/native/): the limit, no JavaScript"
            }
            Implementation::Sandpipe => {
                "one wasm instance per connector, default limits (fuel, epoch deadline, memory cap); each thread its own chain of instances, as `sandpipe serve` runs them"
            }
            Implementation::SandpipeShared => {
                "the shared-instance level (`\"isolation\": \"shared\"`): one wasm instance per chain, a QuickJS context per connector, the event handed between them as a copy of its objects; the same limits per call; what it gives up is in SECURITY.md (\"Isolation levels\"); not the targets' default"
            }
            Implementation::NodeVm => {
                "a `vm` context per connector, as PostHog's plugin server: one `JSON.parse` per event, the object handed from connector to connector, one `JSON.stringify` at the end; GeoIP answers are the reader's objects; no isolation from the host or between connectors"
            }
            Implementation::IsolatedSync => {
                "an isolated-vm isolate per connector (64 MB, 1 s per call), called synchronously on the worker's thread with `applySync`: the event in and out as JSON text; `meta.geoip.locate` calls the host through a synchronous `Reference`, the answer as JSON text"
            }
            Implementation::IsolatedAsync => {
                "the same isolates called with `apply` (the result a promise): each call hops to a thread of Node's pool and back"
            }
        }
    }
}

/// One implementation on one chain at one thread count: every repetition's time.
pub struct Measurement {
    pub workload: Workload,
    pub implementation: Implementation,
    pub threads: usize,
    pub events: usize,
    pub seconds: Vec<f64>,
}

impl Measurement {
    /// Events per second of each repetition, slowest first.
    fn rates(&self) -> Vec<f64> {
        let mut rates: Vec<f64> = self
            .seconds
            .iter()
            .map(|s| self.events as f64 / s)
            .collect();
        rates.sort_by(f64::total_cmp);
        rates
    }

    /// The median repetition's events per second.
    pub fn median(&self) -> f64 {
        let rates = self.rates();
        let middle = rates.len() / 2;
        if rates.len() % 2 == 1 {
            rates[middle]
        } else {
            (rates[middle - 1] + rates[middle]) / 2.0
        }
    }

    pub fn slowest(&self) -> f64 {
        self.rates()[0]
    }

    pub fn fastest(&self) -> f64 {
        *self.rates().last().expect("at least one repetition")
    }
}

/// What every run reads.
pub struct Setup<'a> {
    pub root: &'a Path,
    pub runtime: &'a Runtime,
    pub reader: &'a Reader<Vec<u8>>,
    /// The timed events and the warm-up events, in memory and in files (for Node).
    pub lines: &'a [String],
    pub warmup: &'a [String],
    pub node: node::Inputs<'a>,
}

/// All the measurements, and how many runs' outputs were compared equal.
pub struct Measured {
    pub measurements: Vec<Measurement>,
    pub compared: usize,
}

/// Runs every implementation `repetitions` times on each chain at each thread count.
pub fn run(setup: &Setup, repetitions: usize) -> anyhow::Result<Measured> {
    let mut measurements = Vec::new();
    let mut compared = 0;
    for workload in Workload::ALL {
        let connectors = workload.connectors(setup.root);
        let geoip = workload.uses_geoip().then_some(setup.node.geoip);
        let bundles = ChainBundles::build(setup.runtime, &connectors, geoip)?;
        for threads in THREADS {
            let mut reference: Option<Vec<String>> = None;
            let mut times: Vec<Vec<f64>> = vec![Vec::new(); Implementation::ALL.len()];
            for repetition in 1..=repetitions {
                for (index, implementation) in Implementation::ALL.into_iter().enumerate() {
                    let (out, took) = match implementation {
                        Implementation::Native => native(setup, workload, threads),
                        Implementation::Sandpipe => sandpipe::run_chain(
                            setup.runtime,
                            &bundles,
                            setup.lines,
                            setup.warmup,
                            threads,
                            Isolation::Instance,
                        ),
                        Implementation::SandpipeShared => sandpipe::run_chain(
                            setup.runtime,
                            &bundles,
                            setup.lines,
                            setup.warmup,
                            threads,
                            Isolation::Shared,
                        ),
                        Implementation::NodeVm => node_run(setup, Host::Vm, threads, &connectors)?,
                        Implementation::IsolatedSync => {
                            node_run(setup, Host::IsolatedSync, threads, &connectors)?
                        }
                        Implementation::IsolatedAsync => {
                            node_run(setup, Host::IsolatedAsync, threads, &connectors)?
                        }
                    };
                    // A benchmark that computes something else is void: no time
                    // is kept for a run whose outputs differ.
                    match &reference {
                        None => reference = Some(out),
                        Some(reference) => compare(
                            reference,
                            &out,
                            Implementation::ALL[0].name(),
                            implementation.name(),
                        )?,
                    }
                    compared += 1;
                    eprintln!(
                        "bench: {} × {threads} thread(s), round {repetition}/{repetitions}: {} ran, outputs equal",
                        workload.title(),
                        implementation.name()
                    );
                    times[index].push(took.as_secs_f64());
                }
            }
            for (implementation, seconds) in Implementation::ALL.into_iter().zip(times) {
                measurements.push(Measurement {
                    workload,
                    implementation,
                    threads,
                    events: setup.lines.len(),
                    seconds,
                });
            }
        }
    }
    Ok(Measured {
        measurements,
        compared,
    })
}

fn native(setup: &Setup, workload: Workload, threads: usize) -> (Vec<String>, Duration) {
    match workload {
        Workload::GeoIp => shares::run(setup.lines, setup.warmup, vec![(); threads], |(), line| {
            native::geoip::process(line, setup.reader)
        }),
        Workload::Boundary => {
            let counters = (0..threads)
                .map(|_| native::boundary::Counter::default())
                .collect();
            shares::run(setup.lines, setup.warmup, counters, |counter, line| {
                native::boundary::process(line, counter)
            })
        }
    }
}

fn node_run(
    setup: &Setup,
    host: Host,
    threads: usize,
    connectors: &[(std::path::PathBuf, serde_json::Value)],
) -> anyhow::Result<(Vec<String>, Duration)> {
    node::run(
        &setup.root.join("bench"),
        host,
        threads,
        &setup.node,
        connectors,
    )
}

pub fn compare(
    reference: &[String],
    out: &[String],
    reference_name: &str,
    name: &str,
) -> anyhow::Result<()> {
    if out.len() != reference.len() {
        bail!(
            "{name} gave {} outputs, {reference_name} {}",
            out.len(),
            reference.len()
        );
    }
    if let Some(index) = (0..out.len()).find(|&i| out[i] != reference[i]) {
        bail!(
            "{name} differs from {reference_name} at event {index}:\n  {}\n  {}",
            out[index],
            reference[index]
        );
    }
    Ok(())
}
