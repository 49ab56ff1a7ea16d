//! The guest side of the ABI (`sandpipe_abi`), as the plugin implements it
//! for JavaScript: a reusable input buffer the host writes into
//! (`sandpipe_reserve`), the list of hooks the connector defines
//! (`sandpipe_start`), and one hook call with JSON in and out
//! (`sandpipe_call`), whose result stays in a reusable output buffer until
//! the next call. [`export!`](crate::export) exports these.

use crate::event::{Event, Webhook};
use crate::meta::Meta;
use crate::{ComposeWebhook, Error, OnEvent, ProcessEvent, Setup};
use sandpipe_abi::{Call, LogLevel, MAX_PACKED_LEN, Packed};
use serde_json::Value;
use std::cell::RefCell;

/// The hooks a connector defines.
pub struct Hooks {
    pub setup: Option<Setup>,
    pub process_event: Option<ProcessEvent>,
    pub compose_webhook: Option<ComposeWebhook>,
    pub on_event: Option<OnEvent>,
}

impl Hooks {
    /// The names the host knows the hooks by (`sandpipe_abi::Call::function`).
    fn names(&self) -> Vec<&'static str> {
        let mut names = vec![Call::Setup.function()];
        if self.process_event.is_some() {
            names.push(Call::ProcessEvent.function());
        }
        if self.compose_webhook.is_some() {
            names.push(Call::ComposeWebhook.function());
        }
        if self.on_event.is_some() {
            names.push(Call::OnEvent.function());
        }
        names
    }
}

thread_local! {
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static META: RefCell<Option<Meta>> = const { RefCell::new(None) };
}

/// Makes the input buffer at least `len + 1` bytes and returns its address.
pub fn reserve(len: u32) -> *mut u8 {
    INPUT.with_borrow_mut(|input| {
        let wanted = len as usize + 1;
        if input.len() < wanted {
            input.resize(wanted, 0);
        }
        input.as_mut_ptr()
    })
}

/// The JSON list of the hooks the connector defines. Also installs a panic
/// hook that sends the panic's message to the console before the trap.
pub fn start(hooks: &Hooks) -> i64 {
    std::panic::set_hook(Box::new(|info| {
        crate::host::log(LogLevel::Error, &format!("panicked: {info}"));
    }));
    pack(Ok(
        serde_json::to_vec(&hooks.names()).expect("names serialise")
    ))
}

/// One hook call (`sandpipe_abi::Call` number `call`) on the first `len` bytes of input.
pub fn call(hooks: &Hooks, call: u32, len: u32) -> i64 {
    let result = INPUT.with_borrow(|input| match input.get(..len as usize) {
        Some(bytes) => run(hooks, call, bytes),
        None => Err(Error::new("input length exceeds the reserved buffer")),
    });
    pack(result.map_err(|error| {
        serde_json::to_vec(&serde_json::json!({
            "name": error.name(),
            "message": error.message,
            "stack": "",
        }))
        .expect("an error serialises")
    }))
}

fn run(hooks: &Hooks, call: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
    let call = Call::from_u32(call).ok_or_else(|| Error::new(format!("unknown call {call}")))?;
    let null = || b"null".to_vec();
    match call {
        Call::Setup => {
            let meta = Meta::from_setup(serde_json::from_slice(input)?);
            if let Some(setup) = hooks.setup {
                setup(&meta)?;
            }
            META.set(Some(meta));
            Ok(null())
        }
        Call::ProcessEvent => {
            let Some(process_event) = hooks.process_event else {
                return Ok(null());
            };
            let event = Event::from_json(input)?;
            let kept = with_meta(|meta| process_event(event, meta))?;
            Ok(match kept {
                Some(event) => event.to_json(),
                None => null(),
            })
        }
        Call::ComposeWebhook => {
            let Some(compose_webhook) = hooks.compose_webhook else {
                return Ok(null());
            };
            let event = Event::from_json(input)?.reduced();
            let request: Option<Webhook> = with_meta(|meta| compose_webhook(event, meta))?;
            Ok(serde_json::to_vec(&request)?)
        }
        Call::Teardown => Ok(null()),
        Call::OnEvent => {
            // Not in the hook list without one, so the host never asks.
            let Some(on_event) = hooks.on_event else {
                return Ok(null());
            };
            let event = Event::from_json(input)?.reduced();
            with_meta(|meta| on_event(event, meta))?;
            Ok(null())
        }
    }
}

/// Runs `f` with the `meta` setup made (an empty one if setup never ran).
fn with_meta<T>(f: impl FnOnce(&Meta) -> T) -> T {
    META.with_borrow_mut(|meta| f(meta.get_or_insert_with(|| Meta::from_setup(Value::Null))))
}

/// Packs a result (or an error's JSON) kept in the output buffer.
fn pack(result: Result<Vec<u8>, Vec<u8>>) -> i64 {
    let (bytes, mut is_error) = match result {
        Ok(bytes) => (bytes, false),
        Err(error) => (error, true),
    };
    OUTPUT.with_borrow_mut(|output| {
        *output = bytes;
        if output.len() > MAX_PACKED_LEN as usize {
            *output = br#"{"name":"Error","message":"output exceeds 2 GiB","stack":""}"#.to_vec();
            is_error = true;
        }
        Packed {
            ptr: output.as_ptr() as u32,
            len: output.len() as u32,
            is_error,
        }
        .encode()
    })
}
