//! The shared-instance level (an operator's choice, per chain): the script
//! connectors of one chain in one instance of the plugin, each in its own
//! world (its own QuickJS context, its own globals and `meta`), so an event
//! goes from one to the next as a copy of its objects made inside the
//! instance rather than as JSON text written, checked and read again at every
//! crossing (`guest-sdk/src/shared.rs`).
//!
//! What it gives up, against one instance per connector (SECURITY.md,
//! "Isolation levels"): the chain's connectors share one linear memory, one
//! QuickJS runtime and one memory cap, so a connector that escaped QuickJS
//! would reach the others' state and config; a trap in any of them resets
//! them all (their top-level state starts again), and an event held in the
//! instance when that happens is run through the chain again from its start.
//! A connector whose loading, setup or call traps, or whose loading or setup
//! throws, leaves the shared instance for one of its own for good.
//!
//! [`SharedInstance`] owns the instance (made on first use, dropped after a
//! trap: a new generation); a connector's [`Seat`] is its world in it.

use crate::bundle::Bundle;
use crate::error::CallError;
use crate::host::ConsoleLine;
use crate::limits::Limits;
use crate::plugin::{Guest, Plugin};
use crate::services::ConnectorServices;
use sandpipe_abi::Call;
use std::sync::{Arc, Mutex, MutexGuard};

/// Fuel a new world may use, whatever the connectors' limits.
const WORLD_FUEL: u64 = 50_000_000;
/// Time a new world may take, whatever the connectors' limits.
const WORLD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

/// One plugin instance for the script connectors of one chain.
pub(crate) struct SharedInstance {
    plugin: Arc<Plugin>,
    /// The instance's memory cap: the sum of its connectors' (at most the engine's).
    memory: usize,
    /// How many connectors it seats.
    seats: usize,
    state: Mutex<State>,
}

struct State {
    /// The instance, counted among the live ones while it lives.
    guest: Option<(Guest, crate::instance::Alive)>,
    /// Counts the instances made; a seat loaded in an older one loads again.
    generation: u64,
    /// Worlds the current instance has (the first is the plugin's own).
    worlds: usize,
    /// The world the last operation ran in.
    current: usize,
}

/// A connector's world in a [`SharedInstance`].
pub(crate) struct Seat {
    shared: Arc<SharedInstance>,
    world: usize,
    /// The generation its connector was loaded (top level and setup) in.
    loaded: Option<u64>,
}

/// What a connector brings to its seat for loading and calls.
pub(crate) struct Occupant<'a> {
    pub bundle: &'a Bundle,
    pub limits: &'a Limits,
    pub services: &'a Arc<ConnectorServices>,
    pub setup_input: &'a [u8],
}

/// What loading a connector into its world gave.
pub(crate) struct Loaded {
    /// The entry's JSON list of special functions.
    pub names: Vec<u8>,
    /// `setupPlugin`'s outcome.
    pub setup: Result<Vec<u8>, CallError>,
    /// The console lines of loading and setup.
    pub console: (Vec<ConsoleLine>, usize),
}

impl SharedInstance {
    /// A shared instance for `seats` connectors whose memory caps add up to `memory`.
    pub(crate) fn new(plugin: Arc<Plugin>, seats: usize, memory: usize) -> Arc<SharedInstance> {
        let memory = memory.min(plugin.engine().options().max_memory);
        Arc::new(SharedInstance {
            plugin,
            memory,
            seats,
            state: Mutex::new(State {
                guest: None,
                generation: 0,
                worlds: 0,
                current: 0,
            }),
        })
    }

    /// The seat of world `world` (one per connector, in chain order).
    pub(crate) fn seat(self: &Arc<Self>, world: usize) -> Seat {
        Seat {
            shared: self.clone(),
            world,
            loaded: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts the instances made so far: it changes when one is lost.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The held event as JSON text (the last result when `accept`).
    pub(crate) fn held(&self, accept: bool, limits: &Limits) -> Result<Vec<u8>, CallError> {
        let mut state = self.lock();
        let limits = self.limits(limits);
        let Some((guest, _)) = state.guest.as_mut() else {
            return Err(CallError::Trapped("the shared instance is gone".into()));
        };
        let result = guest.held(accept, &limits);
        if result.as_ref().is_err_and(CallError::poisons_instance) {
            state.drop_guest();
        }
        result
    }

    /// `limits` with the instance's memory cap.
    fn limits(&self, limits: &Limits) -> Limits {
        Limits {
            memory: self.memory,
            ..limits.clone()
        }
    }
}

impl State {
    fn drop_guest(&mut self) {
        if self.guest.take().is_some() {
            self.generation += 1;
        }
        self.worlds = 0;
    }
}

impl Seat {
    /// Whether the connector is loaded in the live instance.
    pub(crate) fn is_live(&self) -> bool {
        let state = self.shared.lock();
        state.guest.is_some() && self.loaded == Some(state.generation)
    }

    /// Loads the connector into its world unless it is loaded in the live
    /// instance: `None` when it is; else what loading gave. An error of the
    /// instance itself (it could not be made, or the loading trapped), or of
    /// the connector's top level, is `Err`; the console lines of a loading
    /// that failed are dropped, as an instance of its own drops them with
    /// itself (never left for the next connector to take as its own).
    pub(crate) fn load(&mut self, occupant: &Occupant<'_>) -> Result<Option<Loaded>, CallError> {
        let shared = self.shared.clone();
        let mut state = shared.lock();
        if state.guest.is_some() && self.loaded == Some(state.generation) {
            return Ok(None);
        }
        let limits = shared.limits(occupant.limits);
        if state.guest.is_none() {
            let guest = shared.plugin.instantiate_shared(
                &limits,
                occupant.services.clone(),
                shared.seats,
            )?;
            state.guest = Some((guest, crate::instance::Alive::new()));
            state.worlds = 1;
            state.current = 0;
        }
        match self.load_in(&mut state, occupant, &limits) {
            Ok(loaded) => Ok(Some(loaded)),
            Err(error) => {
                let (guest, _) = state.guest.as_mut().expect("made above");
                drop(guest.take_console());
                if error.poisons_instance() {
                    state.drop_guest();
                }
                Err(error)
            }
        }
    }

    fn load_in(
        &mut self,
        state: &mut State,
        occupant: &Occupant<'_>,
        limits: &Limits,
    ) -> Result<Loaded, CallError> {
        let (guest, _) = state.guest.as_mut().expect("made above");
        guest.serve(occupant.services, limits);
        // Making a world is the plugin's own work (about 4.5 million units
        // of fuel and 0.7 ms), not the connector's: it is bounded apart.
        let making = Limits {
            fuel: limits.fuel.max(WORLD_FUEL),
            deadline: limits.deadline.max(WORLD_DEADLINE),
            ..limits.clone()
        };
        while state.worlds <= self.world {
            guest.enter(state.worlds, &making)?;
            state.worlds += 1;
        }
        guest.enter(self.world, limits)?;
        state.current = self.world;
        let names = guest.link(occupant.bundle, limits)?;
        let setup = guest.call(Call::Setup, occupant.setup_input, limits);
        if setup.as_ref().is_err_and(CallError::poisons_instance) {
            return Err(setup.expect_err("checked"));
        }
        self.loaded = Some(state.generation);
        Ok(Loaded {
            names,
            setup,
            console: guest.take_console(),
        })
    }

    /// Runs `f` on the live instance in this seat's world, serving the
    /// connector's services under its limits; drops the instance when the
    /// operation's error poisons it. Returns `f`'s result, the fuel used and
    /// the console lines.
    pub(crate) fn run<T>(
        &mut self,
        occupant: &Occupant<'_>,
        f: impl FnOnce(&mut Guest, &Limits) -> Result<T, CallError>,
    ) -> (Result<T, CallError>, u64, (Vec<ConsoleLine>, usize)) {
        let shared = self.shared.clone();
        let mut state = shared.lock();
        let limits = shared.limits(occupant.limits);
        if state.guest.is_none() || self.loaded != Some(state.generation) {
            return (
                Err(CallError::Trapped("the shared instance is gone".into())),
                0,
                (Vec::new(), 0),
            );
        }
        let world = self.world;
        let current = state.current;
        let (guest, _) = state.guest.as_mut().expect("checked");
        guest.serve(occupant.services, &limits);
        let entered = if current == world {
            Ok(())
        } else {
            guest.enter(world, &limits)
        };
        let now_in = if entered.is_ok() { world } else { current };
        let result = entered.and_then(|()| f(guest, &limits));
        let fuel = guest.fuel_used(&limits);
        let console = guest.take_console();
        state.current = now_in;
        if result.as_ref().is_err_and(|e| e.poisons_instance()) {
            state.drop_guest();
        }
        (result, fuel, console)
    }

    /// Whether the connector was ever loaded in its world (in this
    /// instance or one that ended).
    pub(crate) fn was_loaded(&self) -> bool {
        self.loaded.is_some()
    }

    /// This seat's world.
    pub(crate) fn world(&self) -> usize {
        self.world
    }
}
