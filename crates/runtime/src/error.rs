//! How a call into a connector fails.

use std::fmt;
use thiserror::Error;

/// A JavaScript error thrown by the connector: `name` is `None` when the
/// thrown value was not an `Error` (a string, a number, a plain object…).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct JsError {
    pub name: Option<String>,
    pub message: String,
    #[serde(default)]
    pub stack: String,
    /// Whether the thrown value is a `RetryError` (`instanceof`, as PostHog
    /// asks), when the guest says: the plugin does; a Rust connector's error
    /// says it by its name, which its SDK holds to `Error` or `RetryError`.
    #[serde(default)]
    pub retry: Option<bool>,
}

impl fmt::Display for JsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) if !name.is_empty() => write!(f, "{name}: {}", self.message),
            _ => write!(f, "threw {}", self.message),
        }
    }
}

/// Why a call did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallError {
    /// The connector threw (or its promise rejected); its instance stays usable.
    #[error("{0}")]
    Threw(JsError),
    /// The instance trapped: fuel, deadline, memory, stack, or a broken guest.
    /// The instance is dropped; the next call gets a fresh one.
    #[error("{0}")]
    Trapped(String),
    /// The input was over the connector's `max_input` limit; nothing was called.
    #[error("event is {size} bytes, over the {limit}-byte input limit")]
    InputTooLarge { size: usize, limit: usize },
    /// The result was over the connector's `max_output` limit.
    #[error("result is {size} bytes, over the {limit}-byte output limit")]
    OutputTooLarge { size: usize, limit: usize },
    /// The result was not what the call must return.
    #[error("{0}")]
    InvalidResult(String),
    /// The instance could not be created (bundle fails to link, setup failed...).
    #[error("setup failed: {0}")]
    Setup(Box<CallError>),
}

impl CallError {
    /// Whether the connector asked to be called again: it threw a
    /// `RetryError` (an instance of PostHog's class, or the Rust SDK's
    /// `Error::retry`).
    pub fn asks_for_retry(&self) -> bool {
        match self {
            CallError::Threw(JsError {
                retry: Some(retry), ..
            }) => *retry,
            CallError::Threw(JsError { name, .. }) => name.as_deref() == Some("RetryError"),
            _ => false,
        }
    }

    /// Whether an `onEvent` or `exportEvents` call that failed so is made
    /// again: PostHog's rule, only when it asked (any other throw, a trap or
    /// a timeout ends it), and also when the connector could not be readied
    /// (its call was not made).
    pub fn calls_again(&self) -> bool {
        self.asks_for_retry() || matches!(self, CallError::Setup(_))
    }

    /// Whether the instance must be dropped after this error.
    pub fn poisons_instance(&self) -> bool {
        matches!(
            self,
            CallError::Trapped(_) | CallError::OutputTooLarge { .. } | CallError::Setup(_)
        )
    }
}

/// Compiling connector source to bytecode failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScriptError {
    /// A syntax (or other compile) error, located: `file:line:col: message`.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: u32,
        column: u32,
        message: String,
    },
    /// Any other failure of the compile step.
    #[error("{0}")]
    Other(String),
}

/// The runtime could not start.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The engine could not be configured (an option this platform lacks).
    #[error("configuring the wasm engine: {0:#}")]
    Engine(#[source] wasmtime::Error),
    /// The embedded plugin did not compile or link against the host functions.
    #[error("preparing the plugin: {0:#}")]
    Plugin(#[source] wasmtime::Error),
}
