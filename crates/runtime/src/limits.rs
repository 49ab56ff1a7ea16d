//! Per-connector limits. The operator sets them; a bundle never can.

use std::time::Duration;

/// What one connector may use. Defaults follow `shared/design.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Fuel for one call (and separately for loading + `setupPlugin`).
    /// About 11–15 M fuel is one millisecond of QuickJS work.
    pub fuel: u64,
    /// Wall-clock time for one call, host functions included.
    pub deadline: Duration,
    /// Linear memory cap in bytes.
    pub memory: usize,
    /// Largest event (JSON bytes) sent into a call.
    pub max_input: usize,
    /// Largest result (JSON bytes) accepted from a call.
    pub max_output: usize,
    /// Console lines kept per call; the rest are counted and dropped.
    pub max_log_lines: usize,
    /// Bytes kept per console line.
    pub max_log_line: usize,
}

/// 1 MiB.
pub const MIB: usize = 1 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 500_000_000,
            deadline: Duration::from_secs(1),
            memory: 64 * MIB,
            max_input: MIB,
            max_output: MIB,
            max_log_lines: 1_000,
            max_log_line: 16 * 1024,
        }
    }
}
