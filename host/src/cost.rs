//! What connector calls cost, per connector and function: fuel and wall time
//! of each call, summarised as p50/p99 (`run --summary` and `test` print it,
//! as Shopify's tooling prints a function's instruction count).

use sandpipe_runtime::CallRecord;
use std::collections::BTreeMap;

/// Fuel and microseconds of every call, by connector label and function.
#[derive(Default)]
pub struct Costs(BTreeMap<(String, &'static str), Samples>);

#[derive(Default)]
struct Samples {
    fuel: Vec<u64>,
    micros: Vec<u64>,
}

/// The `p`-th percentile (nearest rank) of `values`, sorting them.
fn percentile(values: &mut [u64], p: usize) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = (p * values.len()).div_ceil(100).max(1);
    values[rank - 1]
}

impl Costs {
    pub fn add(&mut self, calls: &[CallRecord]) {
        for call in calls {
            let samples = self
                .0
                .entry((call.connector.clone(), call.call.function()))
                .or_default();
            samples.fuel.push(call.fuel);
            samples
                .micros
                .push(u64::try_from(call.duration.as_micros()).unwrap_or(u64::MAX));
        }
    }

    /// One line per connector and function:
    /// `cost: NAME (i) processEvent: N calls; fuel p50 X, p99 Y; µs p50 X, p99 Y`.
    pub fn lines(&mut self) -> Vec<String> {
        self.0
            .iter_mut()
            .map(|((connector, function), samples)| {
                let calls = samples.fuel.len();
                format!(
                    "cost: {connector} {function}: {calls} call{}; fuel p50 {}, p99 {}; µs p50 {}, p99 {}",
                    if calls == 1 { "" } else { "s" },
                    percentile(&mut samples.fuel, 50),
                    percentile(&mut samples.fuel, 99),
                    percentile(&mut samples.micros, 50),
                    percentile(&mut samples.micros, 99),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandpipe_runtime::Call;
    use std::time::Duration;

    #[test]
    fn percentiles_are_nearest_rank_per_connector_and_function() {
        let mut costs = Costs::default();
        let calls: Vec<CallRecord> = (1..=100)
            .map(|n| CallRecord {
                connector: "A (0)".into(),
                position: 0,
                call: Call::ProcessEvent,
                duration: Duration::from_micros(n),
                fuel: n * 10,
                ok: true,
            })
            .collect();
        costs.add(&calls);
        assert_eq!(
            costs.lines(),
            ["cost: A (0) processEvent: 100 calls; fuel p50 500, p99 990; µs p50 50, p99 99"]
        );
        // One call is one call.
        let mut one = Costs::default();
        one.add(&calls[..1]);
        assert_eq!(
            one.lines(),
            ["cost: A (0) processEvent: 1 call; fuel p50 10, p99 10; µs p50 1, p99 1"]
        );
        assert_eq!(percentile(&mut [7], 99), 7);
        assert_eq!(percentile(&mut [], 50), 0);
    }
}
