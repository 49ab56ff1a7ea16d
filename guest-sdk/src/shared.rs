//! The shared-instance level: several connectors of one chain in one
//! instance, each in its own world ([`world::enter`]), with the event handed
//! from one world to the next as a copy of its objects rather than as JSON
//! text through the host.
//!
//! The host drives it one connector at a time ([`pass`]). A connector's
//! result that is plain data (what [`json::copy`] copies: exactly what
//! `JSON.parse(JSON.stringify(result))` would make in the next world, and what
//! the host would accept as that text) is kept here, with its copy already
//! made in the next connector's world, and the host is told only its
//! `team_id` to check; any other result is written as text, as a call on its
//! own instance writes it, and the host checks it and sends it on as text.
//! The result stays untouched in its own world (no code of that world runs
//! before the next connector's pass), so when the next connector fails, the
//! one after it is given a fresh copy of the same event.

use crate::json;
use crate::world::{self, World};
use javy_plugin_api::javy::quickjs::{Ctx, Error, Value, qjs};
use sandpipe_abi::{Call, pass as tag};
use std::cell::RefCell;

/// A value held between passes: owned, made in the context of `world`.
struct Held {
    world: usize,
    value: qjs::JSValue,
    /// The runtime every world shares, to free the value outside any context.
    runtime: *mut qjs::JSRuntime,
}

/// What is kept between passes.
#[derive(Default)]
struct Hand {
    /// The event the connector last accepted by the host returned, untouched since.
    source: Option<Held>,
    /// The last pass's result, and its copy made in the next world: the source
    /// and the next connector's event once the host accepts the result.
    candidate: Option<(Held, Held)>,
}

thread_local! {
    static HAND: RefCell<Hand> = RefCell::new(Hand::default());
}

impl Held {
    fn new(ctx: *mut qjs::JSContext, world: usize, value: qjs::JSValue) -> Held {
        Held {
            world,
            value,
            // SAFETY: `ctx` is a live context.
            runtime: unsafe { qjs::JS_GetRuntime(ctx) },
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // SAFETY: the value is owned and was made in this runtime; plain data
        // (objects, arrays, strings) has no finaliser that runs code.
        unsafe { qjs::JS_FreeValueRT(self.runtime, self.value) }
    }
}

/// A new context in `first`'s runtime, made as Javy makes the first: the
/// same intrinsics, its `Math.random`, and `TextEncoder`/`TextDecoder`
/// ([`crate::text`]), defined in the same order on the global object.
pub fn new_context(
    first: &javy_plugin_api::javy::quickjs::Context,
) -> Result<javy_plugin_api::javy::quickjs::Context, Error> {
    use javy_plugin_api::javy::quickjs::context::intrinsic::{
        Date, Eval, Json, MapSet, Promise, Proxy, RegExp, RegExpCompiler, TypedArrays,
    };
    let context = javy_plugin_api::javy::quickjs::Context::custom::<(
        Date,
        Eval,
        RegExpCompiler,
        RegExp,
        Json,
        Proxy,
        MapSet,
        TypedArrays,
        Promise,
    )>(first.runtime())?;
    context.with(|ctx| crate::text::install(&ctx))?;
    Ok(context)
}

/// One connector's `processEvent` in the current world.
///
/// The event is `input` (JSON text) when it is not empty; otherwise the
/// last result, when the host `accept`s it, or else the event before it.
/// `next` is the world of the next connector that processes events, if any;
/// `budget` the most bytes of text the host would take from this connector
/// and give the next (a result that might be longer goes as text).
/// The output starts with [`tag::TEXT`] and the JSON text of the result
/// (`null` when it dropped the event), or [`tag::HELD`] and the JSON text of
/// its `team_id` (nothing when it has none).
pub fn pass(
    input: &[u8],
    accept: bool,
    next: Option<usize>,
    budget: usize,
) -> Result<Vec<u8>, String> {
    let here = world::current();
    let Some(world) = world::world(here) else {
        return Err(world::plain_error("no world to pass the event to"));
    };
    let ready = HAND.with_borrow_mut(|hand| {
        let candidate = hand.candidate.take();
        if !input.is_empty() {
            hand.source = None;
            return Ok(None);
        }
        match (accept, candidate) {
            (true, Some((result, copy))) => {
                hand.source = Some(result);
                Ok(Some(copy))
            }
            (true, None) => Err(world::plain_error("no result was held to accept")),
            (false, _) if hand.source.is_none() => {
                Err(world::plain_error("no event is held for this pass"))
            }
            (false, _) => Ok(None),
        }
    })?;
    world.with(|ctx| {
        let run = || -> Result<Vec<u8>, Error> {
            let event = match ready {
                _ if !input.is_empty() => json::parse(ctx, input)?,
                Some(copy) if copy.world == here => take(ctx, copy),
                _ => {
                    // Dropped by now if it was made for another world.
                    copy_source(ctx)?
                }
            };
            let Some(result) = world::invoke(ctx, &world, Call::ProcessEvent, event)? else {
                return Ok(tagged(tag::TEXT, b"null"));
            };
            if let Some(next) = next.filter(|&next| next != here)
                && let Some(target) = world::world(next)
                && let Some(copy) = copy_into(ctx, &result, &target, budget)?
            {
                let raw = ctx.as_raw().as_ptr();
                let team_id = json::own_member(ctx, &result, "team_id")?;
                // SAFETY: `result` is alive in this context; the reference is ours.
                let result =
                    Held::new(raw, here, unsafe { qjs::JS_DupValue(raw, result.as_raw()) });
                let copy = Held::new(raw, next, copy);
                HAND.with_borrow_mut(|hand| hand.candidate = Some((result, copy)));
                return Ok(tagged(tag::HELD, &team_id));
            }
            Ok(tagged(
                tag::TEXT,
                &world::write(ctx, Call::ProcessEvent, &result)?,
            ))
        };
        run().map_err(|e| world::failure(ctx, &world, e))
    })
}

/// The event held (the last result when the host `accept`s it, else the
/// one before it) as JSON text, in its own world, as its connector's call
/// would have written it.
pub fn held(accept: bool) -> Result<Vec<u8>, String> {
    let event = HAND.with_borrow_mut(|hand| {
        let candidate = hand.candidate.take();
        match (accept, candidate) {
            (true, Some((result, _))) => Ok(result),
            (true, None) => Err(world::plain_error("no result was held to accept")),
            (false, _) => hand
                .source
                .take()
                .ok_or_else(|| world::plain_error("no event is held")),
        }
    })?;
    let Some(world) = world::world(event.world) else {
        return Err(world::plain_error("the held event's world is gone"));
    };
    world.with(|ctx| {
        let value = take(ctx, event);
        world::write(ctx, Call::ProcessEvent, &value).map_err(|e| world::failure(ctx, &world, e))
    })
}

/// Takes ownership of `held` as a value of `ctx`, its world's context.
fn take<'js>(ctx: &Ctx<'js>, held: Held) -> Value<'js> {
    let held = std::mem::ManuallyDrop::new(held);
    // SAFETY: the value is owned, made in this context; `held` is not dropped.
    unsafe { Value::from_raw(ctx.clone(), held.value) }
}

/// A copy, made in `ctx`, of the source event (from its own world, where it
/// was copied once already as plain data and nothing has run since).
fn copy_source<'js>(ctx: &Ctx<'js>) -> Result<Value<'js>, Error> {
    let copied = HAND.with_borrow(|hand| -> Result<Option<qjs::JSValue>, Error> {
        let Some(source) = &hand.source else {
            return Ok(None);
        };
        let from = world::world(source.world).ok_or(Error::Unknown)?;
        // Copied once already within a budget; the host sends the event as
        // text instead to a connector whose input limit is below that.
        json::copy(from.raw(), source.value, ctx.as_raw().as_ptr(), usize::MAX)
    })?;
    match copied {
        // SAFETY: owned, made in `ctx`.
        Some(value) => Ok(unsafe { Value::from_raw(ctx.clone(), value) }),
        None => Err(Error::Unknown),
    }
}

/// `result` (of `ctx`) copied into `target`'s context, or `None` when it is
/// not plain data and goes as text.
fn copy_into(
    ctx: &Ctx<'_>,
    result: &Value<'_>,
    target: &World,
    budget: usize,
) -> Result<Option<qjs::JSValue>, Error> {
    json::copy(ctx.as_raw().as_ptr(), result.as_raw(), target.raw(), budget)
}

fn tagged(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(tag);
    out.extend_from_slice(body);
    out
}
