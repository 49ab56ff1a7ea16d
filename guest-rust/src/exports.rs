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
    OUTPUT.with_borrow_mut(|output| {
        output.clear();
        serde_json::to_writer(&mut *output, &hooks.names()).expect("names serialise");
        pack(output, false)
    })
}

/// One hook call (`sandpipe_abi::Call` number `call`) on the first `len` bytes of input.
pub fn call(hooks: &Hooks, call: u32, len: u32) -> i64 {
    OUTPUT.with_borrow_mut(|output| {
        // The result is written over the last one, in the capacity it left
        // (unless that was a large one, which is given back).
        if output.capacity() > KEPT_OUTPUT_CAPACITY {
            *output = Vec::new();
        }
        output.clear();
        let result = INPUT.with_borrow(|input| match input.get(..len as usize) {
            Some(bytes) => run(hooks, call, bytes, output),
            None => Err(Error::new("input length exceeds the reserved buffer")),
        });
        let is_error = result.is_err();
        if let Err(error) = result {
            output.clear();
            serde_json::to_writer(
                &mut *output,
                &serde_json::json!({
                    "name": error.name(),
                    "message": error.message,
                    "stack": "",
                }),
            )
            .expect("an error serialises");
        }
        pack(output, is_error)
    })
}

/// The output buffer's capacity kept from one call to the next (1 MiB).
const KEPT_OUTPUT_CAPACITY: usize = 1 << 20;

/// Runs hook `call` on `input`, its JSON result written to `output` (empty).
fn run(hooks: &Hooks, call: u32, input: &[u8], output: &mut Vec<u8>) -> Result<(), Error> {
    let call = Call::from_u32(call).ok_or_else(|| Error::new(format!("unknown call {call}")))?;
    match call {
        Call::Setup => {
            let meta = Meta::from_setup(serde_json::from_slice(input)?);
            if let Some(setup) = hooks.setup {
                setup(&meta)?;
            }
            META.set(Some(meta));
        }
        Call::ProcessEvent => {
            if let Some(process_event) = hooks.process_event {
                let event = Event::from_json(input)?;
                if let Some(event) = with_meta(|meta| process_event(event, meta))? {
                    event.write_json(output);
                }
            }
        }
        Call::ComposeWebhook => {
            if let Some(compose_webhook) = hooks.compose_webhook {
                let event = Event::from_json(input)?.reduced();
                let request: Option<Webhook> = with_meta(|meta| compose_webhook(event, meta))?;
                serde_json::to_writer(&mut *output, &request)?;
            }
        }
        Call::Teardown => {}
        Call::OnEvent => {
            // Not in the hook list without one, so the host never asks.
            if let Some(on_event) = hooks.on_event {
                let event = Event::from_json(input)?.reduced();
                with_meta(|meta| on_event(event, meta))?;
            }
        }
        // The SDK has no scheduled tasks and no batch export: not in the
        // hook list, never asked.
        Call::RunEveryMinute | Call::RunEveryHour | Call::RunEveryDay | Call::ExportEvents => {}
    }
    if output.is_empty() {
        output.extend_from_slice(b"null");
    }
    Ok(())
}

/// Runs `f` with the `meta` setup made (an empty one if setup never ran).
fn with_meta<T>(f: impl FnOnce(&Meta) -> T) -> T {
    META.with_borrow_mut(|meta| f(meta.get_or_insert_with(|| Meta::from_setup(Value::Null))))
}

/// Packs the result (or an error's JSON) in the output buffer, where it stays
/// until the next call.
fn pack(output: &mut Vec<u8>, mut is_error: bool) -> i64 {
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
}
