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

/// `[connector] level: message`, as [`StderrLogs`] writes it. The message is
/// the connector's text, so it cannot pass for another line: every line of it
/// after the first starts with whitespace (a stack's `    at` lines as they
/// are, any other indented by four spaces), and control characters other than
/// newline and tab are written as `\u{…}` escapes (a carriage return cannot
/// overwrite the line on a terminal).
impl std::fmt::Display for LogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connector's name is its plugin.json's: escaped whole.
        f.write_str("[")?;
        escaped(f, &self.connector, true)?;
        write!(f, "] {}: ", self.level.as_str())?;
        for (index, line) in self.message.split('\n').enumerate() {
            if index > 0 {
                f.write_str("\n")?;
                if !line.starts_with([' ', '\t']) {
                    f.write_str("    ")?;
                }
            }
            escaped(f, line, false)?;
        }
        Ok(())
    }
}

/// `text` with its control characters as `\u{…}` escapes (a tab kept, unless `tabs`).
fn escaped(f: &mut std::fmt::Formatter<'_>, text: &str, tabs: bool) -> std::fmt::Result {
    for c in text.chars() {
        match c {
            '\t' if !tabs => f.write_str("\t")?,
            c if c.is_control() => write!(f, "{}", c.escape_unicode())?,
            c => write!(f, "{c}")?,
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(message: &str) -> String {
        LogEntry {
            connector: "Hostile (1)".into(),
            level: LogLevel::Error,
            message: message.into(),
            time: SystemTime::UNIX_EPOCH,
        }
        .to_string()
    }

    #[test]
    fn a_message_cannot_pass_for_another_line() {
        assert_eq!(
            shown("processEvent: Error: no\n    at processEvent (index.js:1:2)"),
            "[Hostile (1)] error: processEvent: Error: no\n    at processEvent (index.js:1:2)"
        );
        assert_eq!(
            shown("boom\nev.ndjson:1: [After (2)] error: forged\r[After (2)] log: \u{1b}[2K"),
            "[Hostile (1)] error: boom\n    ev.ndjson:1: [After (2)] error: forged\\u{d}[After (2)] log: \\u{1b}[2K"
        );
        assert_eq!(
            shown("tab\there é 😀"),
            "[Hostile (1)] error: tab\there é 😀"
        );
        let named = LogEntry {
            connector: "X\n[Other (1)] error: forged (0)".into(),
            level: LogLevel::Log,
            message: "hi".into(),
            time: SystemTime::UNIX_EPOCH,
        };
        assert_eq!(
            named.to_string(),
            "[X\\u{a}[Other (1)] error: forged (0)] log: hi"
        );
    }
}
