//! `GET /metrics`: Prometheus text. Per connector: calls, errors, wall time and
//! fuel histograms; per team: events, drops and `posthog.capture` events; webhook delivery outcomes;
//! connector instances alive. [`Metrics::connector`] reads one connector's
//! figures back for the team's health route.

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use sandpipe_runtime::{CallRecord, ChainOutput};

/// One connector's calls, errors and 99th percentile wall time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectorFigures {
    pub calls: u64,
    pub errors: u64,
    /// Estimated from the histogram's buckets; `None` before any call.
    pub p99_seconds: Option<f64>,
}

/// The `q` quantile of a histogram given as `(upper bound, cumulative count)`
/// buckets, interpolated linearly within its bucket as Prometheus'
/// `histogram_quantile` does (the last finite bound when it falls beyond);
/// `total` counts every observation, those above the last bound too.
fn quantile(q: f64, buckets: &[(f64, u64)], total: u64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut lower = (0.0, 0u64);
    for &(bound, count) in buckets {
        if count as f64 >= rank {
            let within = (count - lower.1) as f64;
            let fraction = if within == 0.0 {
                1.0
            } else {
                (rank - lower.1 as f64) / within
            };
            return Some(lower.0 + (bound - lower.0) * fraction);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

/// Removes every series of `vec` whose `team` label is `team`.
fn forget<T: prometheus::core::MetricVecBuilder>(vec: &prometheus::core::MetricVec<T>, team: &str) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels: std::collections::HashMap<&str, &str> = metric
                .get_label()
                .iter()
                .map(|pair| (pair.name(), pair.value()))
                .collect();
            if labels.get("team") == Some(&team) {
                // An error only says it is gone already.
                let _ = vec.remove(&labels);
            }
        }
    }
}

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
    /// A worker's input messages by outcome (result, dead_letter, retry).
    pub worker_messages: IntCounterVec,
    /// Messages a worker pulled that had been delivered before.
    pub worker_redelivered: prometheus::IntCounter,
    instances: IntGauge,
    /// Teams deleted while this process ran (ids are never reused): a call
    /// that was in flight at the deletion records nothing after it, so no
    /// series of theirs comes back.
    deleted: std::sync::RwLock<std::collections::HashSet<String>>,
    /// Whether `deleted` holds any (read first, so the usual record takes no lock).
    any_deleted: std::sync::atomic::AtomicBool,
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
                "Webhook delivery attempts by outcome (delivered, retry, dead), and rows given back unattempted when their lease could no longer cover an attempt (released).",
                &["outcome"],
            ),
            worker_messages: counter(
                &registry,
                "sandpipe_worker_messages_total",
                "Messages a worker took from SANDPIPE_EVENTS, by outcome (result, dead_letter, retry).",
                &["outcome"],
            ),
            worker_redelivered: {
                let counter = prometheus::IntCounter::new(
                    "sandpipe_worker_redelivered_total",
                    "Messages a worker pulled that had been delivered before.",
                )
                .expect("a valid metric");
                registry
                    .register(Box::new(counter.clone()))
                    .expect("metric names are unique");
                counter
            },
            instances: {
                let gauge = IntGauge::new("sandpipe_instances", "Connector instances alive.")
                    .expect("a valid metric");
                registry
                    .register(Box::new(gauge.clone()))
                    .expect("metric names are unique");
                gauge
            },
            registry,
            deleted: Default::default(),
            any_deleted: Default::default(),
        }
    }

    /// Whether `team` was deleted (its calls are no longer recorded).
    fn deleted(&self, team: &str) -> bool {
        self.any_deleted.load(std::sync::atomic::Ordering::Acquire)
            && self
                .deleted
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(team)
    }

    /// Records what processing one event did.
    pub fn record<E>(&self, team: i64, output: &ChainOutput<E>) {
        let team = team.to_string();
        if self.deleted(&team) {
            return;
        }
        self.events.with_label_values(&[team.as_str()]).inc();
        if output.event.is_none() {
            self.dropped.with_label_values(&[team.as_str()]).inc();
        }
        // Touched for every event, so a team that captures nothing shows 0.
        self.captured
            .with_label_values(&[team.as_str()])
            .inc_by(output.captured.len() as u64);
        for call in &output.calls {
            self.record_call(&team, call);
        }
    }

    /// Records one connector call (of an event's chain, or an `onEvent` call
    /// the delivery worker made).
    pub fn record_call(&self, team: &str, call: &CallRecord) {
        if self.deleted(team) {
            return;
        }
        let labels = [team, call.connector.as_str(), call.call.function()];
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

    /// Drops every series of `team` (deleted), so the exposition does not
    /// keep a series for each team that ever was.
    pub fn forget_team(&self, team: i64) {
        let team = team.to_string();
        self.deleted
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(team.clone());
        self.any_deleted
            .store(true, std::sync::atomic::Ordering::Release);
        for family in [
            &self.calls,
            &self.errors,
            &self.events,
            &self.dropped,
            &self.captured,
        ] {
            forget(family, &team);
        }
        for family in [&self.wall, &self.fuel] {
            forget(family, &team);
        }
    }

    /// One connector's figures since the service started, both stages together.
    pub fn connector(&self, team: i64, connector: &str) -> ConnectorFigures {
        let team = team.to_string();
        let series = |collector: &dyn Collector| -> Vec<prometheus::proto::Metric> {
            collector
                .collect()
                .into_iter()
                .flat_map(|family| family.get_metric().to_vec())
                .filter(|metric| {
                    let label = |name: &str| {
                        metric
                            .get_label()
                            .iter()
                            .find(|pair| pair.name() == name)
                            .map(|pair| pair.value().to_string())
                    };
                    label("team").as_deref() == Some(team.as_str())
                        && label("connector").as_deref() == Some(connector)
                })
                .collect()
        };
        let count = |collector: &dyn Collector| {
            series(collector)
                .iter()
                .map(|metric| metric.get_counter().get_value() as u64)
                .sum()
        };
        let mut buckets: Vec<(f64, u64)> = Vec::new();
        let mut total = 0;
        for metric in series(&self.wall) {
            total += metric.get_histogram().get_sample_count();
            for (i, bucket) in metric.get_histogram().get_bucket().iter().enumerate() {
                match buckets.get_mut(i) {
                    Some((_, total)) => *total += bucket.cumulative_count(),
                    None => buckets.push((bucket.upper_bound(), bucket.cumulative_count())),
                }
            }
        }
        ConnectorFigures {
            calls: count(&self.calls),
            errors: count(&self.errors),
            p99_seconds: quantile(0.99, &buckets, total),
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

#[cfg(test)]
mod tests {
    use super::{Metrics, quantile};

    /// A deleted team's series go, and a call that was in flight at the
    /// deletion does not bring them back.
    #[test]
    fn a_deleted_team_s_series_are_forgotten() {
        let metrics = Metrics::new();
        let call = sandpipe_runtime::CallRecord {
            connector: "Hello (0)".into(),
            position: 0,
            call: sandpipe_abi::Call::ProcessEvent,
            duration: std::time::Duration::from_millis(1),
            fuel: 1_000,
            ok: true,
        };
        let series = |team: &str| {
            let label = format!("team=\"{team}\"");
            metrics
                .render()
                .lines()
                .filter(|l| l.contains(&label))
                .count()
        };
        metrics.record_call("1", &call);
        metrics.record_call("2", &call);
        assert!(series("1") > 0 && series("2") > 0);
        metrics.forget_team(1);
        assert_eq!(series("1"), 0);
        metrics.record_call("1", &call);
        assert_eq!(series("1"), 0);
        assert_eq!(metrics.connector(2, "Hello (0)").calls, 1);
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let buckets = [(0.001, 50), (0.01, 90), (0.1, 100)];
        assert_eq!(quantile(0.99, &buckets, 0), None);
        // The 99th of 100 calls is the 9th of the 10 in (0.01, 0.1].
        let p99 = quantile(0.99, &buckets, 100).unwrap();
        assert!((p99 - 0.091).abs() < 1e-12, "{p99}");
        // The 50th is the last of the first bucket: its bound.
        assert_eq!(quantile(0.5, &buckets, 100), Some(0.001));
        // Beyond the last bound: the last bound.
        assert_eq!(quantile(0.99, &buckets, 200), Some(0.1));
    }
}
