//! One live connector instance: a [`Guest`] with the connector's bundle linked
//! in and its top level run (a script bundle), or a standalone bundle's own
//! instance with its entry run, and the special functions it defines.

use crate::bundle::Bundle;
use crate::error::CallError;
use crate::host::ConsoleLine;
use crate::limits::Limits;
use crate::plugin::{Guest, Plugin};
use crate::services::ConnectorServices;
use sandpipe_abi::Call;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A plugin instance with a connector loaded into it.
pub struct Instance {
    guest: Guest,
    /// The special functions the connector defines (`processEvent`, ...).
    functions: Vec<String>,
}

/// Connector instances alive in this process.
static LIVE_INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// How many connector instances are alive in this process (for metrics),
/// a chain's shared instance counted once.
pub fn live_instances() -> usize {
    LIVE_INSTANCES.load(Ordering::Relaxed)
}

/// Counts one more live instance until the guard is dropped (the
/// shared-instance level's instance, which is not an [`Instance`]).
pub(crate) struct Alive(());

impl Alive {
    pub(crate) fn new() -> Alive {
        LIVE_INSTANCES.fetch_add(1, Ordering::Relaxed);
        Alive(())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        LIVE_INSTANCES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether a connector defining `functions` can run `call`: it defines
/// [`Call::function`] or the function that stands in for it ([`Call::stand_in`]).
pub(crate) fn provides(functions: &[String], call: Call) -> bool {
    functions
        .iter()
        .any(|f| f == call.function() || call.stand_in() == Some(f.as_str()))
}

impl Drop for Instance {
    fn drop(&mut self) {
        LIVE_INSTANCES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Instance {
    /// Instantiates the plugin and `bundle` in a fresh store and runs the
    /// connector's top level (no `setupPlugin` yet); a standalone bundle is
    /// instantiated alone and its entry run.
    pub(crate) fn new(
        plugin: &Plugin,
        bundle: &Bundle,
        limits: &Limits,
        services: Arc<ConnectorServices>,
    ) -> Result<Instance, CallError> {
        let (guest, names) = match &bundle.standalone {
            None => {
                let mut guest = plugin.instantiate(limits, services)?;
                let names = guest.link(bundle, limits)?;
                (guest, names)
            }
            Some(pre) => {
                let mut guest =
                    Guest::instantiate_standalone(plugin.engine(), pre, limits, services)?;
                let names = guest.start_standalone(limits)?;
                (guest, names)
            }
        };
        let functions: Vec<String> = serde_json::from_slice(&names).map_err(|e| {
            CallError::InvalidResult(format!("plugin returned unreadable function names: {e}"))
        })?;
        LIVE_INSTANCES.fetch_add(1, Ordering::Relaxed);
        Ok(Instance { guest, functions })
    }

    /// The special functions the connector defines.
    pub fn functions(&self) -> &[String] {
        &self.functions
    }

    /// Whether the connector defines the function `call` runs, or the one
    /// that stands in for it ([`Call::stand_in`]).
    pub fn defines(&self, call: Call) -> bool {
        provides(&self.functions, call)
    }

    /// Runs `f` on the instance's guest.
    pub(crate) fn with_guest<T>(&mut self, f: impl FnOnce(&mut Guest) -> T) -> T {
        f(&mut self.guest)
    }

    /// One call: JSON in, JSON out (`null` for "nothing").
    pub(crate) fn call(
        &mut self,
        call: Call,
        input: &[u8],
        limits: &Limits,
    ) -> Result<Vec<u8>, CallError> {
        self.guest.call(call, input, limits)
    }

    /// Fuel used since the last call was armed.
    pub fn fuel_used(&self, limits: &Limits) -> u64 {
        self.guest.fuel_used(limits)
    }

    /// Takes the console lines of the last call (and a count of lines dropped over the limit).
    pub(crate) fn take_console(&mut self) -> (Vec<ConsoleLine>, usize) {
        self.guest.take_console()
    }
}
