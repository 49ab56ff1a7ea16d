//! The connector world: evaluates `world.js` (and `intl.js`, which adds `Intl`
//! and the `toLocale*String` methods) at initialisation, keeps its
//! dispatcher, and runs loads and calls through it.
//!
//! Every operation returns `Ok(json)` or `Err(json)` where the error JSON is
//! `{"name", "message", "stack"}`, built from the bounded parts `describe` gives.

use crate::{host, json, script};
use javy_plugin_api::javy::{
    Runtime,
    quickjs::{
        Array, Context, Ctx, Error, Exception, Function, Object, Persistent, Value, function::This,
        prelude::Func, qjs,
    },
};
use sandpipe_abi::{Call, LogLevel};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

const WORLD_JS: &str = include_str!("world.js");
const INTL_JS: &str = include_str!("intl.js");

/// One connector's world: its QuickJS context, with `world.js` evaluated in
/// it, and the dispatcher functions `world.js` returned, saved before any
/// connector code runs. An instance has one (the pre-initialised one), or,
/// at the shared-instance level, one per connector of a chain ([`enter`]).
pub(crate) struct World {
    context: Context,
    /// The world's own `module` object, whose `exports` a connector fills
    /// (the global `module` may be reassigned; this one is not).
    module: Persistent<Object<'static>>,
    /// The special functions found: name → `[function, receiver]`.
    connector: Persistent<Object<'static>>,
    /// Adds PostHog's stand-ins once `connector` is filled.
    stand_ins: Persistent<Function<'static>>,
    /// The atoms of [`script::SPECIAL_FUNCTIONS`], in that order (made once;
    /// the world holds them for the process's life).
    special: Vec<qjs::JSAtom>,
    /// The atom `then`, read on a call's result to await a thenable.
    then: qjs::JSAtom,
    call: Persistent<Function<'static>>,
    output: Persistent<Function<'static>>,
    describe: Persistent<Function<'static>>,
    direct: Persistent<Function<'static>>,
    /// Fires the next pending timer (`false` when there is none).
    fire_timer: Persistent<Function<'static>>,
    /// Cancels the timers a call left pending and resets the timer clock.
    end_timers: Persistent<Function<'static>>,
    /// `processEvent`, its `this` and `meta`, called without the dispatcher
    /// (known after the setup call; `None` before it or when not defined).
    process_event: RefCell<Option<Direct>>,
    /// Whether `setTimeout` or `setInterval` ran since this world's timers
    /// were last ended (`world.js` tells the plugin through `natives.timerSet`).
    timer_set: Rc<Cell<bool>>,
}

/// A connector function the plugin calls itself.
#[derive(Clone)]
struct Direct {
    function: Persistent<Function<'static>>,
    this: Persistent<Value<'static>>,
    meta: Persistent<Value<'static>>,
}

thread_local! {
    /// The instance's worlds: the first made at pre-initialisation, the
    /// others by [`enter`].
    static WORLDS: RefCell<Vec<Rc<World>>> = const { RefCell::new(Vec::new()) };
    /// The world loads and calls run in.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// `modify_runtime` hook: evaluates the first world and keeps its dispatcher.
pub fn install(runtime: Runtime) -> Runtime {
    let world = match World::new(runtime.context().clone()) {
        Ok(world) => world,
        Err(e) => panic!("world.js failed to initialise: {e}"),
    };
    json::prepare();
    // Kept as bytecode for the worlds made later (the shared-instance level).
    let kept = world.context.with(|ctx| {
        script::keep(&ctx, "sandpipe:world", WORLD_JS)?;
        script::keep(&ctx, "sandpipe:intl", INTL_JS)?;
        script::keep(&ctx, "sandpipe:text", crate::text::TEXT_JS)
    });
    if let Err(e) = kept {
        panic!("the plugin's own scripts do not compile: {e}");
    }
    WORLDS.with_borrow_mut(|worlds| {
        if !worlds.is_empty() {
            panic!("the connector world is initialised twice");
        }
        worlds.push(Rc::new(world));
    });
    runtime
}

/// Makes `index` the world later loads and calls run in: an existing one,
/// or a new one when `index` is the number of worlds (its own context in the
/// same QuickJS runtime, with the intrinsics Javy gives the first, and
/// `world.js` evaluated in it).
pub fn enter(index: usize) -> Result<(), String> {
    let count = WORLDS.with_borrow(Vec::len);
    if index > count || count == 0 {
        return Err(plain_error(&format!(
            "world {index} does not exist and is not the next one ({count} exist)"
        )));
    }
    if index == count {
        let first = WORLDS.with_borrow(|worlds| worlds[0].context.clone());
        let world = crate::shared::new_context(&first)
            .and_then(World::new)
            .map_err(|e| plain_error(&format!("a new world failed to initialise: {e}")))?;
        WORLDS.with_borrow_mut(|worlds| worlds.push(Rc::new(world)));
    }
    CURRENT.set(index);
    Ok(())
}

/// The world at `index`, if there is one.
pub(crate) fn world(index: usize) -> Option<Rc<World>> {
    WORLDS.with_borrow(|worlds| worlds.get(index).cloned())
}

/// The index of the world loads and calls run in.
pub(crate) fn current() -> usize {
    CURRENT.get()
}

impl World {
    /// Evaluates `world.js` and `intl.js` in `context` and keeps the dispatcher.
    fn new(context: Context) -> Result<World, Error> {
        let timer_set = Rc::new(Cell::new(false));
        context.with(|ctx| -> Result<World, Error> {
            let factory: Function = script::evaluate(&ctx, "sandpipe:world", WORLD_JS)?;
            let log = Func::from(|level: u32, line: std::string::String| {
                host::log(LogLevel::from_u32(level), &line)
            });
            let natives = crate::natives::object(&ctx)?;
            let set = timer_set.clone();
            natives.set("timerSet", Func::from(move || set.set(true)))?;
            let request: Function = natives.get("request")?;
            let dispatcher: Object = factory.call((ctx.globals(), log, natives))?;
            let intl: Function = script::evaluate(&ctx, "sandpipe:intl", INTL_JS)?;
            intl.call::<_, ()>((ctx.globals(), request))?;
            let save = |name: &str| -> Result<Persistent<Function<'static>>, Error> {
                Ok(Persistent::save(&ctx, dispatcher.get::<_, Function>(name)?))
            };
            let raw = ctx.as_raw().as_ptr();
            let atom = |name: &str| {
                // SAFETY: `name` is valid for its length; the atom is owned.
                match unsafe { qjs::JS_NewAtomLen(raw, name.as_ptr().cast(), name.len() as _) } {
                    qjs::JS_ATOM_NULL => Err(Error::Exception),
                    atom => Ok(atom),
                }
            };
            let special = script::SPECIAL_FUNCTIONS
                .iter()
                .map(|name| atom(name))
                .collect::<Result<_, _>>()?;
            let object = |name: &str| -> Result<Persistent<Object<'static>>, Error> {
                Ok(Persistent::save(&ctx, dispatcher.get::<_, Object>(name)?))
            };
            Ok(World {
                context: context.clone(),
                module: object("module")?,
                connector: object("connector")?,
                stand_ins: save("standIns")?,
                special,
                then: atom("then")?,
                call: save("call")?,
                output: save("output")?,
                describe: save("describe")?,
                direct: save("direct")?,
                fire_timer: save("fireTimer")?,
                end_timers: save("endTimers")?,
                process_event: RefCell::new(None),
                timer_set: timer_set.clone(),
            })
        })
    }

    /// Runs `f` inside this world's context.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&Ctx<'_>) -> R) -> R {
        self.context.with(|ctx| f(&ctx))
    }

    /// This world's raw context, for code already inside another world's
    /// [`World::with`] (every world shares one runtime and its lock).
    pub(crate) fn raw(&self) -> *mut qjs::JSContext {
        self.context.as_raw().as_ptr()
    }
}

/// Runs `f` inside the current world's context.
fn with<R>(f: impl FnOnce(&Ctx<'_>, &World) -> Result<R, String>) -> Result<R, String> {
    match world(current()) {
        Some(world) => world.context.with(|ctx| f(&ctx, &world)),
        None => Err(plain_error("the plugin was not pre-initialised")),
    }
}

/// Longest message (in bytes) of an error that has no JS value; `world.js`
/// bounds the errors that do.
const MAX_PLAIN_MESSAGE: usize = 4096;

/// An error JSON for failures that have no JS value.
pub(crate) fn plain_error(message: &str) -> String {
    let mut end = message.len().min(MAX_PLAIN_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    if end == message.len() {
        return error_json(Some("Error"), message, "", None);
    }
    let cut = message.len() - end;
    error_json(
        Some("Error"),
        &format!("{}… [truncated {} bytes]", &message[..end], thousands(cut)),
        "",
        None,
    )
}

/// 49995904 → "49,995,904".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `{"name", "message", "stack", "retry"}` as the host reads it (`name`
/// null for non-Error values; `retry` whether a thrown value is a
/// `RetryError`, left out for failures that have no JS value).
fn error_json(name: Option<&str>, message: &str, stack: &str, retry: Option<bool>) -> String {
    let mut out = Vec::with_capacity(message.len() + stack.len() + 48);
    out.extend_from_slice(b"{\"name\":");
    match name {
        Some(name) => json::quote_into(&mut out, name.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"message\":");
    json::quote_into(&mut out, message.as_bytes());
    out.extend_from_slice(b",\"stack\":");
    json::quote_into(&mut out, stack.as_bytes());
    match retry {
        Some(true) => out.extend_from_slice(b",\"retry\":true"),
        Some(false) => out.extend_from_slice(b",\"retry\":false"),
        None => {}
    }
    out.push(b'}');
    String::from_utf8(out).expect("quoting UTF-8 keeps it UTF-8")
}

/// Turns a failed rquickjs operation into error JSON, describing the pending
/// exception (whatever value was thrown) when there is one. `describe` gives
/// `[name, message, stack]`, each bounded and well-formed.
pub(crate) fn failure(ctx: &Ctx<'_>, world: &World, error: Error) -> String {
    if !matches!(error, Error::Exception) {
        return plain_error(&error.to_string());
    }
    let thrown = ctx.catch();
    let described = world
        .describe
        .clone()
        .restore(ctx)
        .and_then(|describe| describe.call::<_, Array>((thrown,)))
        .and_then(|parts| {
            Ok((
                parts.get::<Option<String>>(0)?,
                parts.get::<String>(1)?,
                parts.get::<String>(2)?,
                parts.get::<bool>(3)?,
            ))
        });
    match described {
        Ok((name, message, stack, retry)) => {
            error_json(name.as_deref(), &message, &stack, Some(retry))
        }
        Err(_) => {
            let _ = ctx.catch();
            plain_error("the connector threw a value that cannot be described")
        }
    }
}

/// The call's job loop: runs promise jobs until `value` (if it is a promise)
/// settles, firing the world's timers in order whenever no job is left, then
/// runs whatever jobs remain and cancels the timers still pending, so a call
/// leaves nothing behind.
fn settle<'js>(ctx: &Ctx<'js>, world: &World, value: Value<'js>) -> Result<Value<'js>, Error> {
    let settled = run_jobs(ctx, world, value);
    let ended = end_timers(ctx, world);
    let settled = settled?;
    ended?;
    Ok(settled)
}

/// Cancels the world's pending timers and resets their clock, when a timer
/// was set since they were last ended (without one there is nothing to end).
/// [`settle`] ends a call's timers; [`call`] ends, before it runs anything,
/// those a call set where no settling followed (it threw before returning,
/// or its result's `toJSON` set one), so no timer fires in a later call.
fn end_timers(ctx: &Ctx<'_>, world: &World) -> Result<(), Error> {
    if world.timer_set.get() {
        world.end_timers.clone().restore(ctx)?.call::<_, ()>(())?;
        world.timer_set.set(false);
    }
    Ok(())
}

/// Runs the calling world's jobs until `value` (if it is a promise) settles.
/// Only this world's jobs run (`JS_SandpipeExecutePendingJobOf`): at the
/// shared-instance level another world's jobs wait for their own calls.
fn run_jobs<'js>(ctx: &Ctx<'js>, world: &World, value: Value<'js>) -> Result<Value<'js>, Error> {
    let settled = match value.as_promise() {
        Some(promise) => {
            let fire_timer = world.fire_timer.clone().restore(ctx)?;
            loop {
                if let Some(result) = promise.result::<Value>() {
                    break result?;
                }
                if run_own_job(ctx) {
                    continue;
                }
                if !fire_timer.call::<_, bool>(())? {
                    return Err(Exception::throw_message(
                        ctx,
                        "the connector's promise never settled (it awaits something that cannot happen here: no job or timer is pending)",
                    ));
                }
            }
        }
        None => value,
    };
    while run_own_job(ctx) {}
    Ok(settled)
}

unsafe extern "C" {
    fn JS_SandpipeExecutePendingJobOf(ctx: *mut qjs::JSContext) -> i32;
}

/// Runs the first pending job of `ctx`'s world, if it has one (a job that
/// threw counts as run, as `Ctx::execute_pending_job` counts it).
fn run_own_job(ctx: &Ctx<'_>) -> bool {
    // SAFETY: `ctx` is a live context of the runtime whose lock is held.
    unsafe { JS_SandpipeExecutePendingJobOf(ctx.as_raw().as_ptr()) != 0 }
}

/// Compiles a connector script to bytecode.
pub fn compile(file: &str, source: &str) -> Result<Vec<u8>, String> {
    with(|ctx, world| script::compile(ctx, file, source).map_err(|e| failure(ctx, world, e)))
}

/// Runs a connector's top level once; returns the JSON array of special functions found.
pub fn load(bytecode: &[u8]) -> Result<String, String> {
    with(|ctx, world| {
        let run = || -> Result<String, Error> {
            let top_level = script::run(ctx, bytecode)?;
            let unlisted = unlisted_globals(ctx, world, &top_level)?;
            let top_level = settle(ctx, world, top_level)?;
            resolve(ctx, world, &top_level, &unlisted)
        };
        run().map_err(|e| failure(ctx, world, e))
    })
}

/// What [`script`]'s footer would have held for each special name it does
/// not list (it lists only the names the source spells), read from the
/// global object as its `typeof name === 'function' ? name : undefined`
/// reads them, in the same order and at the same moment: when the top level
/// has run, before any job. A read that throws fails the load, as it would
/// have there. `None` for a name the footer lists.
fn unlisted_globals<'js>(
    ctx: &Ctx<'js>,
    world: &World,
    top_level: &Value<'js>,
) -> Result<Vec<Option<Value<'js>>>, Error> {
    let globals = ctx.globals();
    let listed = |atom| {
        top_level
            .as_object()
            .is_some_and(|footer| owns(ctx, footer, atom))
    };
    world
        .special
        .iter()
        .map(|&atom| {
            if listed(atom) {
                return Ok(None);
            }
            let first = get(ctx, &globals, atom)?;
            Ok(Some(if first.is_function() {
                get(ctx, &globals, atom)?
            } else {
                Value::new_undefined(ctx.clone())
            }))
        })
        .collect()
}

/// Finds each special function the way PostHog authors write them: CommonJS
/// exports first, then a default-exported object, then plain top-level
/// declarations: those the footer lists on `top_level` (the script's
/// completion value), the others as [`unlisted_globals`] read them, with
/// `top_level` as their receiver all the same. Each one found goes into the
/// world's `connector` table; returns their names as a JSON array. Done here
/// rather than in `world.js`, whose thirty property reads cost the
/// interpreter about 100,000 fuel, most of a connector's readying.
fn resolve<'js>(
    ctx: &Ctx<'js>,
    world: &World,
    top_level: &Value<'js>,
    unlisted: &[Option<Value<'js>>],
) -> Result<String, Error> {
    let exported: Value = world.module.clone().restore(ctx)?.get("exports")?;
    let fallback = match exported.as_object() {
        Some(object) if !exported.is_function() => lenient_get(ctx, object, "default"),
        _ => Value::new_undefined(ctx.clone()),
    };
    let connector = world.connector.clone().restore(ctx)?;
    let mut found = String::from("[");
    let mut stand_ins = false;
    let names = script::SPECIAL_FUNCTIONS.iter().zip(&world.special);
    for ((&name, &atom), unlisted) in names.zip(unlisted) {
        let entry = pick(ctx, &exported, atom)
            .or_else(|| pick(ctx, &fallback, atom))
            .or_else(|| match unlisted {
                None => pick(ctx, top_level, atom),
                Some(value) => value
                    .is_function()
                    .then(|| (value.clone(), top_level.clone())),
            });
        if let Some((function, owner)) = entry {
            let pair = Array::new(ctx.clone())?;
            pair.set(0, function)?;
            pair.set(1, owner)?;
            connector.set(name, pair)?;
            if found.len() > 1 {
                found.push(',');
            }
            found.push('"');
            found.push_str(name);
            found.push('"');
            stand_ins |= name == "processEventBatch";
        }
    }
    found.push(']');
    if stand_ins {
        world.stand_ins.clone().restore(ctx)?.call::<_, ()>(())?;
    }
    Ok(found)
}

/// `object[name]`, through getters; `Err` with the exception pending when
/// reading it throws.
fn get<'js>(ctx: &Ctx<'js>, object: &Object<'js>, name: qjs::JSAtom) -> Result<Value<'js>, Error> {
    // SAFETY: `object` is alive for the call and `name` is held by the world;
    // the value returned is owned.
    let value = unsafe { qjs::JS_GetProperty(ctx.as_raw().as_ptr(), object.as_raw(), name) };
    if unsafe { qjs::JS_IsException(value) } {
        return Err(Error::Exception);
    }
    Ok(unsafe { Value::from_raw(ctx.clone(), value) })
}

/// `owner[name]` when `owner` is an object or function and that property is
/// a function (read once, through getters; one that throws counts as absent,
/// as the `try` around `world.js`'s read did).
fn pick<'js>(
    ctx: &Ctx<'js>,
    owner: &Value<'js>,
    name: qjs::JSAtom,
) -> Option<(Value<'js>, Value<'js>)> {
    match get(ctx, owner.as_object()?, name) {
        Ok(value) => value.is_function().then(|| (value, owner.clone())),
        Err(_) => {
            ctx.catch();
            None
        }
    }
}

/// Whether `object` has an own property `name` (the footer's object: plain).
fn owns(ctx: &Ctx<'_>, object: &Object<'_>, name: qjs::JSAtom) -> bool {
    // SAFETY: as in `get`; no descriptor is asked for.
    let owned = unsafe {
        qjs::JS_GetOwnProperty(
            ctx.as_raw().as_ptr(),
            std::ptr::null_mut(),
            object.as_raw(),
            name,
        )
    };
    if owned < 0 {
        ctx.catch();
    }
    owned > 0
}

/// `object[name]`, or `undefined` when reading it throws (the exception is
/// cleared, as a `try` around the read would).
fn lenient_get<'js>(ctx: &Ctx<'js>, object: &Object<'js>, name: &str) -> Value<'js> {
    object.get(name).unwrap_or_else(|_| {
        ctx.catch();
        Value::new_undefined(ctx.clone())
    })
}

/// One call into the connector: JSON in, JSON out.
///
/// `processEvent` is called directly once the setup call has made `meta`;
/// every other call goes through the dispatcher's `call`. A result that is a
/// plain object or null is written here; anything else goes to the
/// dispatcher's `output`, which refuses it with the author-facing message.
pub fn call(call: Call, input: &[u8]) -> Result<Vec<u8>, String> {
    with(|ctx, world| {
        let run = || -> Result<Vec<u8>, Error> {
            let input = match call {
                Call::Teardown => Value::new_undefined(ctx.clone()),
                _ => json::parse(ctx, input)?,
            };
            match invoke(ctx, world, call, input)? {
                Some(result) => write(ctx, call, &result),
                None => Ok(b"null".to_vec()),
            }
        };
        run().map_err(|e| failure(ctx, world, e))
    })
}

/// Runs `call` on `input` in `world` and settles it: the result the host
/// reads (an object; whatever else the call may return has been through the
/// dispatcher's `output` check), or `None` for "nothing" (`null`).
pub(crate) fn invoke<'js>(
    ctx: &Ctx<'js>,
    world: &World,
    call: Call,
    input: Value<'js>,
) -> Result<Option<Value<'js>>, Error> {
    end_timers(ctx, world)?;
    let direct = match call {
        Call::ProcessEvent => world.process_event.borrow().clone(),
        Call::Setup => {
            // A new meta: forget the old one until setup has run.
            world.process_event.borrow_mut().take();
            None
        }
        _ => None,
    };
    let started: Value = match direct {
        Some(direct) => {
            let function = direct.function.restore(ctx)?;
            let this = direct.this.restore(ctx)?;
            function.call((This(this), input, direct.meta.restore(ctx)?))?
        }
        None => world
            .call
            .clone()
            .restore(ctx)?
            .call((call as u32, input))?,
    };
    let settled = settle(ctx, world, awaited(ctx, world, started)?)?;
    if call == Call::Setup {
        remember_process_event(ctx, world)?;
    }
    if matches!(
        call,
        Call::Setup
            | Call::Teardown
            | Call::OnEvent
            | Call::ExportEvents
            | Call::RunEveryMinute
            | Call::RunEveryHour
            | Call::RunEveryDay
    ) || settled.is_null()
        || settled.is_undefined()
    {
        return Ok(None);
    }
    // An ordinary object (a literal, a class instance) is the host's to
    // read; anything else (an array, a function, an error, a proxy, a
    // primitive …) goes through the dispatcher's check, which refuses what
    // is not an object with the author-facing message.
    let result = if is_ordinary_object(&settled) {
        settled
    } else {
        world
            .output
            .clone()
            .restore(ctx)?
            .call((call as u32, settled))?
    };
    Ok((!result.is_null()).then_some(result))
}

/// Whether `value` is an object of QuickJS's ordinary class (one class-id
/// read, where rquickjs's `type_of` asks six questions of an object).
fn is_ordinary_object(value: &Value<'_>) -> bool {
    // SAFETY: `value` is alive; the class id of an object is only read.
    value.is_object() && unsafe { qjs::JS_GetClassID(value.as_raw()) } == json::CLASS_OBJECT
}

/// A connector function's result as PostHog's `await` took it: a thenable (an
/// object, not a promise, with a callable `then`) becomes the promise it
/// resolves. (`then` is read here and again by the resolution, where `await`
/// reads it once: a `then` getter runs twice.)
fn awaited<'js>(ctx: &Ctx<'js>, world: &World, value: Value<'js>) -> Result<Value<'js>, Error> {
    let Some(object) = value.as_object() else {
        return Ok(value);
    };
    if value.as_promise().is_some() || !get(ctx, object, world.then)?.is_function() {
        return Ok(value);
    }
    let (promise, resolve, _) = ctx.promise()?;
    resolve.call::<_, ()>((value,))?;
    Ok(promise.into_value())
}

/// `call`'s result as the JSON text the host reads.
pub(crate) fn write<'js>(
    ctx: &Ctx<'js>,
    call: Call,
    result: &Value<'js>,
) -> Result<Vec<u8>, Error> {
    // Sized for the last result, plus a quarter: most results are events
    // like the one before.
    let last = WRITTEN_LAST.get();
    match json::stringify_sized(ctx, result, last + last / 4)? {
        Some(text) => {
            WRITTEN_LAST.set(text.len().min(KEPT_HINT));
            Ok(text)
        }
        None => Err(Exception::throw_type(
            ctx,
            &format!("{} returned a value that is not JSON", call.function()),
        )),
    }
}

thread_local! {
    /// How long the last result [`write`] wrote was.
    static WRITTEN_LAST: Cell<usize> = const { Cell::new(0) };
}

/// The largest result [`write`] sizes its buffer for in advance.
const KEPT_HINT: usize = 1 << 20;

/// Keeps what the dispatcher's `direct` gives for `processEvent` after a setup call.
fn remember_process_event(ctx: &Ctx<'_>, world: &World) -> Result<(), Error> {
    let found: Option<Array> = world.direct.clone().restore(ctx)?.call(("processEvent",))?;
    let direct = match found {
        Some(parts) => Some(Direct {
            function: Persistent::save(ctx, parts.get::<Function>(0)?),
            this: Persistent::save(ctx, parts.get::<Value>(1)?),
            meta: Persistent::save(ctx, parts.get::<Value>(2)?),
        }),
        None => None,
    };
    *world.process_event.borrow_mut() = direct;
    Ok(())
}
