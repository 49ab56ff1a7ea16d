//! `GET /metrics`: Prometheus text. Per connector: calls, errors, wall time and
//! fuel histograms; per team: events, drops and `posthog.capture` events; webhook delivery outcomes;
//! connector instances alive.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use sandpipe_runtime::ChainOutput;

pub struct Metrics {
    registry: Registry,
    calls: IntCounterVec,
    errors: IntCounterVec,
    wall: HistogramVec,
    fuel: HistogramVec,
    events: IntCounterVec,
    dropped: IntCounterVec,
    captured: IntCounterVec,
    pub webhooks: IntCounterVec,
    instances: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    registry
        .register(Box::new(counter.clone()))
        .expect("metric names are unique");
    counter
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> HistogramVec {
    let histogram = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets),
        &["team", "connector", "stage"],
    )
    .expect("a valid metric");
    registry
        .register(Box::new(histogram.clone()))
        .expect("metric names are unique");
    histogram
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let connector = ["team", "connector", "stage"];
        Metrics {
            calls: counter(
                &registry,
                "sandpipe_connector_calls_total",
                "Calls into connectors.",
                &connector,
            ),
            errors: counter(
                &registry,
                "sandpipe_connector_errors_total",
                "Calls that threw, trapped or returned something invalid.",
                &connector,
            ),
            wall: histogram(
                &registry,
                "sandpipe_connector_wall_seconds",
                "Wall time of connector calls.",
                vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
            ),
            fuel: histogram(
                &registry,
                "sandpipe_connector_fuel",
                "Fuel used by connector calls.",
                prometheus::exponential_buckets(100_000.0, 4.0, 10).expect("valid buckets"),
            ),
            events: counter(
                &registry,
                "sandpipe_events_total",
                "Events processed.",
                &["team"],
            ),
            dropped: counter(
                &registry,
                "sandpipe_events_dropped_total",
                "Events a connector dropped.",
                &["team"],
            ),
            captured: counter(
                &registry,
                "sandpipe_captured_events_total",
                "Events connectors emitted with posthog.capture.",
                &["team"],
            ),
            webhooks: counter(
                &registry,
                "sandpipe_webhook_attempts_total",
                "Webhook delivery attempts by outcome (delivered, retry, dead).",
                &["outcome"],
            ),
            instances: {
                let gauge = IntGauge::new("sandpipe_instances", "Connector instances alive.")
                    .expect("a valid metric");
                registry
                    .register(Box::new(gauge.clone()))
                    .expect("metric names are unique");
                gauge
            },
            registry,
        }
    }

    /// Records what processing one event did.
    pub fn record(&self, team: i64, output: &ChainOutput) {
        let team = team.to_string();
        self.events.with_label_values(&[team.as_str()]).inc();
        if output.event.is_none() {
            self.dropped.with_label_values(&[team.as_str()]).inc();
        }
        // Touched for every event, so a team that captures nothing shows 0.
        self.captured
            .with_label_values(&[team.as_str()])
            .inc_by(output.captured.len() as u64);
        for call in &output.calls {
            let labels = [team.as_str(), call.connector.as_str(), call.call.function()];
            self.calls.with_label_values(&labels).inc();
            // Touched on every call, so a connector without errors shows 0.
            let errors = self.errors.with_label_values(&labels);
            if !call.ok {
                errors.inc();
            }
            self.wall
                .with_label_values(&labels)
                .observe(call.duration.as_secs_f64());
            self.fuel
                .with_label_values(&labels)
                .observe(call.fuel as f64);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.instances
            .set(sandpipe_runtime::instance::live_instances() as i64);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding metrics");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}
