//! Splits the events into one contiguous share per thread and runs them, timed,
//! for every implementation measured in this process.

use std::time::{Duration, Instant};

/// Runs `warmup` through every worker state in `workers` (outputs dropped, not
/// timed), then `lines` in contiguous shares, one thread per worker; returns
/// the outputs in input order and the time from the start until the last
/// thread had its last output in its vector.
pub fn run<W: Send>(
    lines: &[String],
    warmup: &[String],
    mut workers: Vec<W>,
    work: impl Fn(&mut W, &str) -> String + Sync,
) -> (Vec<String>, Duration) {
    for worker in &mut workers {
        for line in warmup {
            work(worker, line);
        }
    }
    let share = lines.len().div_ceil(workers.len().max(1)).max(1);
    let work = &work;
    let started = Instant::now();
    let finished: Vec<(Vec<String>, Instant)> = std::thread::scope(|scope| {
        let threads: Vec<_> = workers
            .iter_mut()
            .zip(lines.chunks(share))
            .map(|(worker, lines)| {
                scope.spawn(move || {
                    let out: Vec<String> = lines.iter().map(|line| work(worker, line)).collect();
                    (out, Instant::now())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a worker"))
            .collect()
    });
    let last = finished.iter().map(|(_, at)| *at).max().unwrap_or(started);
    let outputs = finished.into_iter().flat_map(|(out, _)| out).collect();
    (outputs, last - started)
}
