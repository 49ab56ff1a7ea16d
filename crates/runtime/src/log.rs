//! Console output and errors, recorded per connector with level and time.

use sandpipe_abi::LogLevel;
use std::sync::Mutex;
use std::time::SystemTime;

/// One console line or error of one connector.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// `"<name> (<position>)"`, as in `$plugins_failed`.
    pub connector: String,
    pub level: LogLevel,
    pub message: String,
    pub time: SystemTime,
}

/// `[connector] level: message`, as [`StderrLogs`] writes it.
impl std::fmt::Display for LogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] {}: {}",
            self.connector,
            self.level.as_str(),
            self.message
        )
    }
}

/// Where a connector's log entries go.
pub trait LogSink: Send + Sync {
    fn record(&self, entry: LogEntry);
}

/// Writes each entry to stderr as `[connector] level: message`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrLogs;

impl LogSink for StderrLogs {
    fn record(&self, entry: LogEntry) {
        eprintln!("{entry}");
    }
}

/// Keeps entries in memory (for tests and for the service's log store).
#[derive(Debug, Default)]
pub struct MemoryLogs(Mutex<Vec<LogEntry>>);

impl MemoryLogs {
    /// Takes every entry recorded so far.
    pub fn take(&self) -> Vec<LogEntry> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The messages recorded so far, as `level: message`, without taking them.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|e| format!("{}: {}", e.level.as_str(), e.message))
            .collect()
    }
}

impl LogSink for MemoryLogs {
    fn record(&self, entry: LogEntry) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
    }
}
