//! Connector code as a sloppy-mode global script: compile to bytecode, load bytecode.
//!
//! PostHog ran connector code non-strict, so it is never compiled as an ES
//! module (always strict). The compiler has already rewritten ES module syntax
//! to the CommonJS shape; here the script gets a footer whose completion value
//! hands [`crate::world`] the top-level special functions the source names
//! (the world reads the others from the global object itself).

use javy_plugin_api::javy::quickjs::{Ctx, Error, FromJs, Result, Value, qjs};
use std::cell::RefCell;
use std::ffi::CString;

/// The functions a connector may define, in the order the world looks for them.
pub const SPECIAL_FUNCTIONS: &[&str] = &[
    "setupPlugin",
    "teardownPlugin",
    "processEvent",
    "processEventBatch",
    "composeWebhook",
    "onEvent",
    "exportEvents",
    "runEveryMinute",
    "runEveryHour",
    "runEveryDay",
];

/// `\n;({name: typeof name === 'function' ? name : undefined, …})`: appended
/// after the last line, so line numbers in errors stay the author's. Only the
/// names `source` spells are listed (all of them when it has a `\u` escape,
/// which can spell an identifier too): only a declaration in this script can
/// make a top-level `let`, `const` or `class` binding, which the global
/// object does not hold, and a declaration spells its name. For the others
/// the world reads the global object just as this `typeof` would, at the
/// same moment (`world::unlisted_globals`). Each name left out saves the
/// interpreter a lookup at every load.
fn footer(source: &str) -> String {
    let escapes = source.contains("\\u");
    let mut out = String::from("\n;({");
    for name in SPECIAL_FUNCTIONS
        .iter()
        .filter(|name| escapes || source.contains(*name))
    {
        out.push_str(name);
        out.push_str(": typeof ");
        out.push_str(name);
        out.push_str(" === 'function' ? ");
        out.push_str(name);
        out.push_str(" : undefined, ");
    }
    out.push_str("});\n");
    out
}

fn file_name(file: &str) -> CString {
    CString::new(file.replace('\0', "")).unwrap_or_default()
}

/// Compiles `source` (plus the footer) as a global script; returns its bytecode.
pub fn compile(ctx: &Ctx<'_>, file: &str, source: &str) -> Result<Vec<u8>> {
    let mut text = Vec::with_capacity(source.len() + 512);
    text.extend_from_slice(source.as_bytes());
    text.extend_from_slice(footer(source).as_bytes());
    bytecode(ctx, file, text)
}

thread_local! {
    /// The plugin's own scripts as bytecode, by file name (made in the
    /// first world, at pre-initialisation).
    static OWN: RefCell<Vec<(&'static str, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
}

/// Compiles one of the plugin's own scripts (`world.js`, `intl.js`,
/// `text.js`) and keeps its bytecode for [`evaluate`].
pub fn keep(ctx: &Ctx<'_>, file: &'static str, source: &str) -> Result<()> {
    let compiled = bytecode(ctx, file, source.as_bytes().to_vec())?;
    OWN.with_borrow_mut(|own| own.push((file, compiled)));
    Ok(())
}

/// Evaluates one of the plugin's own scripts as a sloppy global script;
/// its completion value. From the bytecode [`keep`] made when there is some
/// (a world made after the first reads it rather than parsing the source
/// again), else from `source`.
pub fn evaluate<'js, V: FromJs<'js>>(
    ctx: &Ctx<'js>,
    file: &'static str,
    source: &str,
) -> Result<V> {
    let kept = OWN.with_borrow(|own| {
        own.iter()
            .find(|(name, _)| *name == file)
            .map(|(_, code)| code.clone())
    });
    let completion = match kept {
        Some(code) => run(ctx, &code)?,
        None => {
            let mut options = javy_plugin_api::javy::quickjs::context::EvalOptions::default();
            options.global = true;
            options.strict = false;
            options.filename = Some(file.into());
            ctx.eval_with_options(source, options)?
        }
    };
    V::from_js(ctx, completion)
}

/// `text` compiled as a sloppy global script named `file`: its bytecode.
fn bytecode(ctx: &Ctx<'_>, file: &str, mut text: Vec<u8>) -> Result<Vec<u8>> {
    let len = text.len();
    text.push(0); // QuickJS's parser reads one byte past the end.
    let file = file_name(file);
    let raw = ctx.as_raw().as_ptr();
    unsafe {
        let compiled = qjs::JS_Eval(
            raw,
            text.as_ptr().cast(),
            len as _,
            file.as_ptr(),
            (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32,
        );
        if qjs::JS_IsException(compiled) {
            return Err(Error::Exception);
        }
        let function = Value::from_raw(ctx.clone(), compiled);
        let mut size = 0;
        let flags = qjs::JS_WRITE_OBJ_BYTECODE | qjs::JS_WRITE_OBJ_STRIP_SOURCE;
        let bytes = qjs::JS_WriteObject(raw, &mut size, function.as_raw(), flags as i32);
        if bytes.is_null() {
            return Err(Error::Exception);
        }
        let out = std::slice::from_raw_parts(bytes, size as usize).to_vec();
        qjs::js_free(raw, bytes.cast());
        Ok(out)
    }
}

/// Reads script bytecode and runs its top level; returns the footer's object.
pub fn run<'js>(ctx: &Ctx<'js>, bytecode: &[u8]) -> Result<Value<'js>> {
    let raw = ctx.as_raw().as_ptr();
    unsafe {
        let function = qjs::JS_ReadObject(
            raw,
            bytecode.as_ptr(),
            bytecode.len() as _,
            qjs::JS_READ_OBJ_BYTECODE as i32,
        );
        if qjs::JS_IsException(function) {
            return Err(Error::Exception);
        }
        // JS_EvalFunction takes ownership of `function`.
        let completion = qjs::JS_EvalFunction(raw, function);
        if qjs::JS_IsException(completion) {
            return Err(Error::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), completion))
    }
}
