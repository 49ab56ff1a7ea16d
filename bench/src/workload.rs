//! The two chains the benchmark runs: what each is for, its connectors and
//! their config. Every implementation runs the same connectors with this config.

use crate::native::boundary;
use crate::native::geoip;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// geoip-enricher → hello-world → property-filter (`examples/geoip-chain.json`):
    /// mostly the connectors' own JavaScript and the GeoIP record.
    GeoIp,
    /// tagger → counter → filter (`bench/connectors/`): three small connectors,
    /// so mostly the cost of crossing into and out of each one.
    Boundary,
}

impl Workload {
    pub const ALL: [Workload; 2] = [Workload::GeoIp, Workload::Boundary];

    pub fn title(self) -> &'static str {
        match self {
            Workload::GeoIp => "GeoIP chain",
            Workload::Boundary => "Boundary-bound chain",
        }
    }

    /// What the chain is, for the report.
    pub fn description(self) -> &'static str {
        match self {
            Workload::GeoIp => {
                "geoip-enricher → hello-world → property-filter (examples/geoip-chain.json) with the GeoLite2-City database"
            }
            Workload::Boundary => {
                "tagger (adds four properties) → counter (numbers events in top-level state) → filter (drops two event names of ten, removes three properties), in bench/connectors/"
            }
        }
    }

    /// Whether its connectors call `meta.geoip`.
    pub fn uses_geoip(self) -> bool {
        self == Workload::GeoIp
    }

    /// The connectors' directories under the repository `root`, with their config.
    pub fn connectors(self, root: &Path) -> Vec<(PathBuf, Value)> {
        match self {
            Workload::GeoIp => vec![
                (root.join("examples/geoip-enricher"), json!({})),
                (root.join("examples/hello-world"), json!({"name": "Ada"})),
                (
                    root.join("examples/property-filter"),
                    json!({"properties": geoip::FILTERED.join(", ")}),
                ),
            ],
            Workload::Boundary => {
                let dir = root.join("bench/connectors");
                vec![
                    (
                        dir.join("tagger"),
                        json!({"source": boundary::SOURCE, "environment": boundary::ENVIRONMENT}),
                    ),
                    (dir.join("counter"), json!({})),
                    (
                        dir.join("filter"),
                        json!({"dropEvents": boundary::DROP_EVENTS, "removeProperties": boundary::REMOVE_PROPERTIES}),
                    ),
                ]
            }
        }
    }
}
