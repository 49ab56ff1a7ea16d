//! Sharing the machine between teams.
//!
//! - Slots: each team runs at most `per_team` event requests at once; more wait
//!   in a bounded queue, and beyond that are answered 429. A team's requests
//!   never queue behind another team's.
//! - Priority: a team whose events take long (a moving average over
//!   [`SLOW_EVENT`]) runs its chains on the background pool, whose threads have
//!   Linux's idle scheduling class (`SCHED_IDLE`, preempted at once by any
//!   normal thread that wakes). Its slot still spins near its deadline,
//!   but only on cycles nobody else wants, so other teams' latency holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// A team whose events average longer than this runs on the background pool.
pub const SLOW_EVENT: Duration = Duration::from_millis(20);
/// Moves the calling thread to the idle scheduling class; false if refused.
fn become_idle() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread on Linux; `param` outlives the call.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 }
}

/// Requests of one team that may wait for a slot before new ones are refused.
pub const MAX_WAITING: usize = 1_024;

/// One team's slots, queue and recent pace.
struct Gate {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// Moving average of the time per event, in microseconds.
    per_event_us: AtomicU64,
}

/// The slots of every team.
pub struct TeamGates {
    per_team: usize,
    gates: Mutex<HashMap<i64, Arc<Gate>>>,
}

impl TeamGates {
    /// `per_team` concurrent requests per team (at least one).
    pub fn new(per_team: usize) -> TeamGates {
        TeamGates {
            per_team: per_team.max(1),
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// The default share: half the cores, at least one.
    pub fn default_per_team() -> usize {
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    }

    fn gate(&self, team: i64) -> Arc<Gate> {
        self.gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(team)
            .or_insert_with(|| {
                Arc::new(Gate {
                    slots: Arc::new(Semaphore::new(self.per_team)),
                    waiting: AtomicUsize::new(0),
                    per_event_us: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// Waits for one of `team`'s slots; `None` when its queue is full.
    /// The slot is given back when the permit drops.
    pub async fn enter(&self, team: i64) -> Option<OwnedSemaphorePermit> {
        let gate = self.gate(team);
        if gate.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            gate.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = gate.slots.clone().acquire_owned().await;
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        permit.ok()
    }

    /// Records how long a request of `team` took for `events` events.
    pub fn record(&self, team: i64, took: Duration, events: usize) {
        let sample = (took.as_micros() as u64) / events.max(1) as u64;
        let gate = self.gate(team);
        let previous = gate.per_event_us.load(Ordering::Relaxed);
        // Half the weight on the newest request: one slow request is enough to
        // move a team to the background, a few fast ones bring it back.
        gate.per_event_us
            .store((previous + sample) / 2, Ordering::Relaxed);
    }

    /// Whether `team`'s recent events were slow.
    pub fn is_slow(&self, team: i64) -> bool {
        self.gate(team).per_event_us.load(Ordering::Relaxed) > SLOW_EVENT.as_micros() as u64
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Threads at a lower CPU priority for slow teams' chains.
pub struct BackgroundPool {
    jobs: mpsc::Sender<Job>,
}

impl BackgroundPool {
    /// `threads` workers (at least one), each lowering its own priority first.
    pub fn new(threads: usize) -> std::io::Result<BackgroundPool> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("sandpipe-background-{n}"))
                .spawn(move || {
                    if !become_idle() {
                        tracing::warn!(
                            "background thread keeps normal priority: SCHED_IDLE refused"
                        );
                    }
                    loop {
                        let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(BackgroundPool { jobs: sender })
    }

    /// Runs `f` on a background thread and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        self.jobs.send(job).ok()?;
        result.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's scheduling policy.
    fn policy() -> libc::c_int {
        // SAFETY: pid 0 is the calling thread; no pointers.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn a_slow_team_is_marked_and_recovers() {
        let gates = TeamGates::new(1);
        assert!(!gates.is_slow(7));
        gates.record(7, Duration::from_millis(500), 2);
        assert!(gates.is_slow(7));
        for _ in 0..6 {
            gates.record(7, Duration::from_millis(1), 1);
        }
        assert!(!gates.is_slow(7));
    }

    #[tokio::test]
    async fn background_jobs_run_in_the_idle_class() {
        let pool = BackgroundPool::new(1).unwrap();
        let nice = pool.run(policy).await;
        assert_eq!(nice, Some(libc::SCHED_IDLE));
    }

    #[tokio::test]
    async fn a_team_holds_at_most_its_slots_and_others_are_not_blocked() {
        let gates = TeamGates::new(1);
        let held = gates.enter(1).await.expect("a free slot");
        // Team 1's second request waits; team 2 enters at once.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), gates.enter(1));
        assert!(waiting.await.is_err(), "team 1 got a second slot");
        assert!(gates.enter(2).await.is_some());
        drop(held);
        assert!(gates.enter(1).await.is_some());
    }
}
