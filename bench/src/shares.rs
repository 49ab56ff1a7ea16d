//! Splits the events into one contiguous share per thread and runs them, timed,
//! for every implementation measured in this process.

use std::time::{Duration, Instant};

/// Runs `work` over contiguous shares of `lines`, one thread per worker state in
/// `workers`; returns the outputs in input order and the time until the last
/// thread finished.
pub fn run<W: Send>(
    lines: &[String],
    mut workers: Vec<W>,
    work: impl Fn(&mut W, &str) -> String + Sync,
) -> (Vec<String>, Duration) {
    let share = lines.len().div_ceil(workers.len().max(1)).max(1);
    let work = &work;
    let started = Instant::now();
    let outputs: Vec<String> = std::thread::scope(|scope| {
        let threads: Vec<_> = workers
            .iter_mut()
            .zip(lines.chunks(share))
            .map(|(worker, lines)| {
                scope.spawn(move || {
                    lines
                        .iter()
                        .map(|line| work(worker, line))
                        .collect::<Vec<String>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("a worker"))
            .collect()
    });
    (outputs, started.elapsed())
}
