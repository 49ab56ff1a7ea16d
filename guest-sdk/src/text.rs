//! What Javy gives the first world and a world made later lacks
//! ([`crate::shared::new_context`]): `Math.random` (the same generator), and
//! `TextDecoder`/`TextEncoder` (`text.js`, over the two conversions here),
//! then a `console` for `world.js` to replace, in the order Javy defines
//! them, so the global object lists the same names in the same order.

use javy_plugin_api::javy::quickjs::{
    ArrayBuffer, Ctx, Error, Exception, Function, Object, Result, TypedArray, Value, prelude::Func,
    qjs,
};

pub const TEXT_JS: &str = include_str!("text.js");

/// Adds them to `ctx`'s global object.
pub fn install(ctx: &Ctx<'_>) -> Result<()> {
    let globals = ctx.globals();
    let math: Object = globals.get("Math")?;
    math.set("random", Func::from(fastrand::f64))?;
    let factory: Function = crate::script::evaluate(ctx, "sandpipe:text", TEXT_JS)?;
    factory.call::<_, ()>((globals.clone(), Func::from(decode), Func::from(encode)))?;
    globals.set("console", Object::new(ctx.clone())?)?;
    Ok(())
}

/// `bytes[offset..offset + length]` of `buffer` as a string: without a
/// leading byte-order mark unless `ignore_bom`; invalid UTF-8 a `TypeError`
/// when `fatal`, else each invalid sequence U+FFFD.
fn decode<'js>(
    ctx: Ctx<'js>,
    buffer: ArrayBuffer<'js>,
    offset: f64,
    length: f64,
    fatal: bool,
    ignore_bom: bool,
) -> Result<Value<'js>> {
    let bytes = buffer.as_bytes().unwrap_or_default();
    let (offset, length) = (offset as usize, length as usize);
    let Some(mut view) = offset
        .checked_add(length)
        .and_then(|end| bytes.get(offset..end))
    else {
        return Err(Exception::throw_message(
            &ctx,
            "Provided offset and length is not valid for provided buffer",
        ));
    };
    if !ignore_bom && let [0xEF, 0xBB, 0xBF, rest @ ..] = view {
        view = rest;
    }
    let text = if fatal {
        match std::str::from_utf8(view) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => {
                return Err(Exception::throw_type(
                    &ctx,
                    "The encoded data was not valid utf-8",
                ));
            }
        }
    } else {
        String::from_utf8_lossy(view)
    };
    Ok(javy_plugin_api::javy::quickjs::String::from_str(ctx, &text)?.into_value())
}

/// `text` as UTF-8 bytes, each lone surrogate as U+FFFD.
fn encode<'js>(ctx: Ctx<'js>, text: Value<'js>) -> Result<TypedArray<'js, u8>> {
    let raw = ctx.as_raw().as_ptr();
    let mut len = 0;
    // Lone surrogates come back as their 3-byte WTF-8 forms.
    let chars = unsafe { qjs::JS_ToCStringLen2(raw, &mut len, text.as_raw(), false) };
    if chars.is_null() {
        return Err(Error::Exception);
    }
    let wtf8 = unsafe { std::slice::from_raw_parts(chars as *const u8, len as usize) };
    let mut out = Vec::with_capacity(wtf8.len());
    let mut rest = wtf8;
    while !rest.is_empty() {
        match rest {
            [0xED, 0xA0..=0xBF, _, tail @ ..] => {
                out.extend_from_slice("\u{FFFD}".as_bytes());
                rest = tail;
            }
            [byte, tail @ ..] => {
                out.push(*byte);
                rest = tail;
            }
            [] => {}
        }
    }
    unsafe { qjs::JS_FreeCString(raw, chars) };
    TypedArray::new(ctx, out)
}
