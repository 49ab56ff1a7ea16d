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
    /// Keys `meta.storage` may hold for the connector.
    pub storage_max_keys: usize,
    /// Bytes (keys and JSON values) `meta.storage` may hold for the connector.
    pub storage_max_bytes: usize,
}

/// 1 MiB.
pub const MIB: usize = 1 << 20;

/// Console bytes kept per call, over all its lines: with the line bounds
/// alone a call could leave 16 MiB (1,000 lines of 16 KiB) for the host to
/// hold until its batch's lines are stored.
pub const LOG_BYTES_PER_CALL: usize = 256 * 1024;

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
            storage_max_keys: 100_000,
            storage_max_bytes: 64 * MIB,
        }
    }
}

impl Limits {
    /// Checks these limits against what the host can give: every field the
    /// [`OperatorLimits`] rules bound, by its name here (`limits.memory`),
    /// with memory up to `max_memory` (the engine's).
    pub fn check(&self, max_memory: usize) -> Result<(), LimitError> {
        let deadline_ms = u64::try_from(self.deadline.as_millis()).unwrap_or(u64::MAX);
        let guest_span = u64::from(u32::MAX);
        for (field, value, max) in [
            ("fuel", self.fuel, MAX_FUEL),
            ("deadline_ms", deadline_ms, MAX_DEADLINE_MS),
            ("memory", self.memory as u64, max_memory as u64),
            ("max_input", self.max_input as u64, guest_span),
            ("max_output", self.max_output as u64, guest_span),
        ] {
            let field = || format!("limits.{field}");
            if value == 0 {
                return Err(LimitError::Zero { field: field() });
            }
            if value > max {
                return Err(LimitError::OverMaximum {
                    field: field(),
                    value,
                    max,
                });
            }
        }
        Ok(())
    }
}

/// Largest fuel per call an operator may set (days of QuickJS work).
pub const MAX_FUEL: u64 = 10_000_000_000_000_000;
/// Longest deadline per call an operator may set: one hour.
pub const MAX_DEADLINE_MS: u64 = 3_600_000;

/// An operator's limit the host cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Over what the host can give (`field` as the operator wrote it:
    /// `--fuel`, `limits.fuel`).
    #[error("{field} {value} is over the maximum of {max}")]
    OverMaximum { field: String, value: u64, max: u64 },
    /// Zero fuel, time, memory or event size: every call would fail.
    #[error("{field} 0 leaves no room for any call: give at least 1")]
    Zero { field: String },
}

/// What an operator may override (a `sandpipe serve` flag, a chain file's
/// `limits`); absent fields keep the base value. Field names are the chain
/// file's; [`OperatorLimits::apply`] checks each against its maximum.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorLimits {
    pub fuel: Option<u64>,
    pub deadline_ms: Option<u64>,
    pub memory_mib: Option<u64>,
    pub max_input_bytes: Option<u64>,
    pub max_output_bytes: Option<u64>,
    pub storage_max_keys: Option<u64>,
    pub storage_max_bytes: Option<u64>,
}

impl OperatorLimits {
    /// `base` with these overrides, each checked: fuel up to [`MAX_FUEL`], the
    /// deadline up to [`MAX_DEADLINE_MS`], memory up to `max_memory` (the
    /// engine's). `name` turns a field name (`deadline_ms`) into what the
    /// operator wrote (`--deadline-ms`), for the error.
    pub fn apply(
        &self,
        mut limits: Limits,
        max_memory: usize,
        name: impl Fn(&str) -> String,
    ) -> Result<Limits, LimitError> {
        let within = |field: &str, value: Option<u64>, max: u64| match value {
            Some(value) if value > max => Err(LimitError::OverMaximum {
                field: name(field),
                value,
                max,
            }),
            other => Ok(other),
        };
        // What every call needs some of; a storage quota of 0 is a choice (no storage).
        let check = |field: &str, value: Option<u64>, max: u64| match value {
            Some(0) => Err(LimitError::Zero { field: name(field) }),
            other => within(field, other, max),
        };
        let size = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        let unbounded = usize::MAX as u64;
        // A guest addresses 32 bits: no input or result can be larger.
        let guest_span = u64::from(u32::MAX);
        if let Some(fuel) = check("fuel", self.fuel, MAX_FUEL)? {
            limits.fuel = fuel;
        }
        if let Some(ms) = check("deadline_ms", self.deadline_ms, MAX_DEADLINE_MS)? {
            limits.deadline = Duration::from_millis(ms);
        }
        if let Some(mib) = check("memory_mib", self.memory_mib, (max_memory / MIB) as u64)? {
            limits.memory = size(mib) * MIB;
        }
        if let Some(bytes) = check("max_input_bytes", self.max_input_bytes, guest_span)? {
            limits.max_input = size(bytes);
        }
        if let Some(bytes) = check("max_output_bytes", self.max_output_bytes, guest_span)? {
            limits.max_output = size(bytes);
        }
        if let Some(keys) = within("storage_max_keys", self.storage_max_keys, unbounded)? {
            limits.storage_max_keys = size(keys);
        }
        if let Some(bytes) = within("storage_max_bytes", self.storage_max_bytes, unbounded)? {
            limits.storage_max_bytes = size(bytes);
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(field: &str) -> String {
        format!("--{}", field.replace('_', "-"))
    }

    #[test]
    fn huge_operator_limits_are_refused_with_the_maximum() {
        let max_memory = 256 * MIB;
        let apply = |over: OperatorLimits| over.apply(Limits::default(), max_memory, flag);
        assert_eq!(
            apply(OperatorLimits {
                deadline_ms: Some(u64::MAX),
                ..OperatorLimits::default()
            })
            .unwrap_err()
            .to_string(),
            "--deadline-ms 18446744073709551615 is over the maximum of 3600000"
        );
        assert_eq!(
            apply(OperatorLimits {
                memory_mib: Some(99_999_999_999),
                ..OperatorLimits::default()
            })
            .unwrap_err()
            .to_string(),
            "--memory-mib 99999999999 is over the maximum of 256"
        );
        assert_eq!(
            apply(OperatorLimits {
                fuel: Some(u64::MAX),
                ..OperatorLimits::default()
            })
            .unwrap_err()
            .to_string(),
            "--fuel 18446744073709551615 is over the maximum of 10000000000000000"
        );
        for (field, zero) in [
            (
                "--fuel",
                OperatorLimits {
                    fuel: Some(0),
                    ..OperatorLimits::default()
                },
            ),
            (
                "--deadline-ms",
                OperatorLimits {
                    deadline_ms: Some(0),
                    ..OperatorLimits::default()
                },
            ),
            (
                "--memory-mib",
                OperatorLimits {
                    memory_mib: Some(0),
                    ..OperatorLimits::default()
                },
            ),
        ] {
            assert_eq!(
                apply(zero).unwrap_err().to_string(),
                format!("{field} 0 leaves no room for any call: give at least 1")
            );
        }
        assert_eq!(
            apply(OperatorLimits {
                max_output_bytes: Some(1 << 32),
                ..OperatorLimits::default()
            })
            .unwrap_err()
            .to_string(),
            "--max-output-bytes 4294967296 is over the maximum of 4294967295"
        );
        let limits = apply(OperatorLimits {
            fuel: Some(MAX_FUEL),
            deadline_ms: Some(MAX_DEADLINE_MS),
            memory_mib: Some(256),
            storage_max_keys: Some(3),
            ..OperatorLimits::default()
        })
        .unwrap();
        assert_eq!(
            (
                limits.fuel,
                limits.deadline,
                limits.memory,
                limits.storage_max_keys
            ),
            (MAX_FUEL, Duration::from_secs(3600), 256 * MIB, 3)
        );
    }

    #[test]
    fn limits_are_checked_against_the_engine() {
        let max_memory = 256 * MIB;
        assert_eq!(Limits::default().check(max_memory), Ok(()));
        let over = Limits {
            memory: 512 * MIB,
            ..Limits::default()
        };
        assert_eq!(
            over.check(max_memory).unwrap_err().to_string(),
            "limits.memory 536870912 is over the maximum of 268435456"
        );
        let no_fuel = Limits {
            fuel: 0,
            ..Limits::default()
        };
        assert_eq!(
            no_fuel.check(max_memory).unwrap_err().to_string(),
            "limits.fuel 0 leaves no room for any call: give at least 1"
        );
        let long = Limits {
            deadline: Duration::from_secs(7_200),
            ..Limits::default()
        };
        assert_eq!(
            long.check(max_memory).unwrap_err().to_string(),
            "limits.deadline_ms 7200000 is over the maximum of 3600000"
        );
    }
}
