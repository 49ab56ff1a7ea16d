//! JSON text ↔ QuickJS values, in Rust, at the guest boundary: the event the
//! host sends in, the result it reads back, and host-service requests and answers.
//!
//! The results are exactly those of QuickJS's own `JSON.parse` and of
//! `JSON.stringify` without replacer or indent, which is what the world used
//! before; this is only the fast path. Whatever it does not handle goes to
//! QuickJS's implementation, decided before anything observable has happened:
//!
//! - parsing: any text serde_json refuses (syntax errors, nesting deeper than
//!   128, lone surrogate escapes, numbers beyond `f64`) is parsed again by QuickJS,
//!   which gives the same value or its own `SyntaxError`;
//! - stringifying: the fast path reads only plain data — objects whose prototype is
//!   `Object.prototype` or null, arrays without holes, data properties (no
//!   getters), no `toJSON` anywhere, no cycle, at most 128 levels. Reading those
//!   runs no JavaScript, so on meeting anything else (a `Date`, a class instance,
//!   a `Buffer`, a proxy, a BigInt …) it drops what it wrote and asks QuickJS
//!   for the whole value.
//!
//! Every `JSValue` here is owned by exactly one [`Owned`] or handed to a QuickJS
//! call that takes ownership, except what the writer borrows from the value it
//! writes (members read from an object's shape, an array's elements, a string's
//! characters: the vendored engine's `JS_Sandpipe*` views), which it only reads
//! while nothing runs or is allocated in the runtime; nothing the connector
//! controls is trusted as a length or pointer.

use javy_plugin_api::javy::quickjs::{Ctx, Error, Result, Value, qjs};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::ffi::c_char;
use std::fmt;

// The vendored engine's additions for this module (`sandpipe:` in
// vendor/rquickjs-sys/quickjs/quickjs.c, where each one's contract is): the
// writer's borrowed views of plain data, and the reader's objects.
unsafe extern "C" {
    fn JS_SandpipeShapeSlots(ctx: *mut qjs::JSContext, object: qjs::JSValue) -> i32;
    fn JS_SandpipeShapeSlot(
        ctx: *mut qjs::JSContext,
        object: qjs::JSValue,
        slot: u32,
        atom: *mut qjs::JSAtom,
        value: *mut qjs::JSValue,
    ) -> i32;
    fn JS_SandpipeOwnsToJSON(ctx: *mut qjs::JSContext, object: qjs::JSValue) -> i32;
    fn JS_SandpipeDenseArray(
        ctx: *mut qjs::JSContext,
        array: qjs::JSValue,
        elements: *mut *const qjs::JSValue,
    ) -> i32;
    fn JS_SandpipeNewObject(
        ctx: *mut qjs::JSContext,
        members: *const Member,
        count: u32,
    ) -> qjs::JSValue;
    fn JS_SandpipeString8(
        ctx: *mut qjs::JSContext,
        string: qjs::JSValue,
        chars: *mut *const u8,
    ) -> i32;
    fn JS_SandpipeCopy(
        to: *mut qjs::JSContext,
        from: *mut qjs::JSContext,
        value: qjs::JSValue,
        budget: usize,
        out: *mut qjs::JSValue,
    ) -> i32;
}

/// The `count` items at `pointer` that one of the engine's views lent, or
/// `None` when it lent none (a negative count).
///
/// # Safety
/// `pointer` and `count` are what a `JS_Sandpipe*` view gave, and the slice is
/// read only while nothing runs or is allocated in the runtime.
unsafe fn borrowed<'a, T>(pointer: *const T, count: i32) -> Option<&'a [T]> {
    let count = usize::try_from(count).ok()?;
    Some(if count == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(pointer, count) }
    })
}

/// Allocates what the reader keeps between parses (its stacks, the key atoms'
/// slots), called when the plugin is pre-initialised so the snapshot holds
/// them and a new instance's first parse does not allocate them.
pub fn prepare() {
    MEMBERS.with_borrow_mut(|members| members.reserve(Pending::PREPARED));
    ELEMENTS.with_borrow_mut(|elements| elements.reserve(Pending::PREPARED));
    KEY_ATOMS.with_borrow_mut(KeyAtoms::prepare);
}

/// Nesting deeper than this is stringified by QuickJS, which checks its own stack.
const MAX_DEPTH: usize = 128;

/// `JSON.parse(text)`.
pub fn parse<'js>(ctx: &Ctx<'js>, text: &[u8]) -> Result<Value<'js>> {
    let raw = ctx.as_raw().as_ptr();
    // Checked once as a whole, not string by string.
    let parsed = match utf8(text) {
        Some(text) => {
            let mut deserializer = serde_json::Deserializer::from_str(text);
            Seed { ctx: raw }
                .deserialize(&mut deserializer)
                .and_then(|value| deserializer.end().map(|()| value))
        }
        None => Err(de::Error::custom("not UTF-8")),
    };
    Pending::trim();
    // Every atom a member borrowed is in its object by now, or freed with it.
    KEY_ATOMS.with_borrow_mut(|atoms| atoms.release(raw));
    match parsed {
        // SAFETY: the value was made in this context and is owned.
        Ok(value) => Ok(unsafe { Value::from_raw(ctx.clone(), value.into_raw()) }),
        Err(_) => {
            // A QuickJS exception raised while building (out of memory) is
            // dropped; QuickJS's own parse raises it again or its SyntaxError.
            unsafe { qjs::JS_FreeValue(raw, qjs::JS_GetException(raw)) };
            ctx.json_parse(text)
        }
    }
}

/// `JSON.stringify(value)` as text, or `None` for `undefined`.
pub fn stringify<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> Result<Option<Vec<u8>>> {
    stringify_sized(ctx, value, 0)
}

/// [`stringify`] into a buffer made with room for `capacity` bytes (what a
/// caller expects it to write, so that it is not grown through ten sizes).
pub fn stringify_sized<'js>(
    ctx: &Ctx<'js>,
    value: &Value<'js>,
    capacity: usize,
) -> Result<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(capacity);
    let written = match Writer::new(ctx, &mut out).map(|mut w| w.value(value.as_raw(), 0)) {
        Some(Ok(written)) => written,
        Some(Err(Fallback::Exception)) => return Err(Error::Exception),
        // Anything but plain data (or rewired prototypes): QuickJS's stringify, whole.
        Some(Err(Fallback::Native)) | None => {
            out.clear();
            native(ctx, value, &mut out)?
        }
    };
    Ok(written.then_some(out))
}

fn native<'js>(ctx: &Ctx<'js>, value: &Value<'js>, out: &mut Vec<u8>) -> Result<bool> {
    match ctx.json_stringify(value.clone())? {
        Some(text) => {
            out.extend_from_slice(text.to_string()?.as_bytes());
            Ok(true)
        }
        None => Ok(false),
    }
}

/// An owned `JSValue`, freed on drop unless released with [`Owned::into_raw`].
struct Owned {
    ctx: *mut qjs::JSContext,
    value: qjs::JSValue,
}

impl Owned {
    /// Takes ownership of `value`; a QuickJS exception becomes `Err`.
    fn new(ctx: *mut qjs::JSContext, value: qjs::JSValue) -> std::result::Result<Self, Error> {
        if unsafe { qjs::JS_IsException(value) } {
            return Err(Error::Exception);
        }
        Ok(Owned { ctx, value })
    }

    fn into_raw(self) -> qjs::JSValue {
        let value = self.value;
        std::mem::forget(self);
        value
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        unsafe { qjs::JS_FreeValue(self.ctx, self.value) }
    }
}

/// Builds QuickJS values straight from serde_json's tokens.
#[derive(Clone, Copy)]
struct Seed {
    ctx: *mut qjs::JSContext,
}

fn quickjs_failed<E: de::Error>(_: Error) -> E {
    E::custom("QuickJS raised an exception")
}

impl Seed {
    fn number(self, n: f64) -> Owned {
        let fits_int = n.fract() == 0.0
            && n >= f64::from(i32::MIN)
            && n <= f64::from(i32::MAX)
            && !(n == 0.0 && n.is_sign_negative());
        let value = if fits_int {
            qjs::JS_MKVAL(qjs::JS_TAG_INT, n as i32)
        } else {
            qjs::JS_NewFloat64(n)
        };
        Owned {
            ctx: self.ctx,
            value,
        }
    }

    fn plain(self, value: qjs::JSValue) -> Owned {
        Owned {
            ctx: self.ctx,
            value,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed {
    type Value = Owned;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Owned, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed {
    type Value = Owned;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Owned, E> {
        Ok(self.plain(qjs::JS_NULL))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Owned, E> {
        Ok(self.plain(if v { qjs::JS_TRUE } else { qjs::JS_FALSE }))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Owned, E> {
        Ok(match i32::try_from(v) {
            Ok(small) => self.plain(qjs::JS_MKVAL(qjs::JS_TAG_INT, small)),
            // Rounds to nearest, as JS does with the decimal digits.
            Err(_) => self.number(v as f64),
        })
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Owned, E> {
        Ok(match i32::try_from(v) {
            Ok(small) => self.plain(qjs::JS_MKVAL(qjs::JS_TAG_INT, small)),
            Err(_) => self.number(v as f64),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Owned, E> {
        Ok(self.number(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Owned, E> {
        let value =
            unsafe { qjs::JS_NewStringLen(self.ctx, v.as_ptr() as *const c_char, v.len() as _) };
        Owned::new(self.ctx, value).map_err(quickjs_failed)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Owned, A::Error> {
        let pending = Pending::new(self.ctx, false);
        while let Some(item) = seq.next_element_seed(self)? {
            ELEMENTS.with_borrow_mut(|elements| elements.push(item.into_raw()));
        }
        let array = ELEMENTS.with_borrow_mut(|elements| {
            let read = &elements[pending.start..];
            let count =
                i32::try_from(read.len()).map_err(|_| de::Error::custom("array too long"))?;
            // Takes ownership of the elements whether it succeeds or not.
            let array = unsafe { qjs::JS_NewArrayFrom(self.ctx, count, read.as_ptr()) };
            elements.truncate(pending.start);
            Ok(array)
        })?;
        Owned::new(self.ctx, array).map_err(quickjs_failed)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Owned, A::Error> {
        let pending = Pending::new(self.ctx, true);
        while let Some(key) = map.next_key_seed(KeySeed { ctx: self.ctx })? {
            let value = map.next_value_seed(self)?;
            let member = Member {
                value: value.into_raw(),
                atom: key,
            };
            MEMBERS.with_borrow_mut(|members| members.push(member));
        }
        let object = MEMBERS.with_borrow_mut(|members| {
            let read = &members[pending.start..];
            let count =
                u32::try_from(read.len()).map_err(|_| de::Error::custom("object too large"))?;
            // CreateDataProperty for each member, as JSON.parse does
            // (`__proto__` is an own property, and a repeated key keeps its
            // first place with its last value); takes the values whether it
            // succeeds or not, and leaves the keys (borrowed) to us.
            let object = unsafe { JS_SandpipeNewObject(self.ctx, read.as_ptr(), count) };
            members.truncate(pending.start);
            Ok(object)
        })?;
        Owned::new(self.ctx, object).map_err(quickjs_failed)
    }
}

/// A member read but not yet in its object: the engine's `JSSandpipeMember`
/// (its key borrowed from [`KeyAtoms`] until the parse ends).
#[repr(C)]
struct Member {
    value: qjs::JSValue,
    atom: qjs::JSAtom,
}

thread_local! {
    /// The members of the objects being read, innermost last: one stack for
    /// every object of a parse, so no object allocates a list of its own.
    static MEMBERS: RefCell<Vec<Member>> = const { RefCell::new(Vec::new()) };
    /// The same for the elements of arrays.
    static ELEMENTS: RefCell<Vec<qjs::JSValue>> = const { RefCell::new(Vec::new()) };
}

/// One container's place on [`MEMBERS`] or [`ELEMENTS`]: what it read above
/// `start` and did not hand to QuickJS is freed when it is dropped (a syntax
/// error or an exception part-way).
struct Pending {
    ctx: *mut qjs::JSContext,
    start: usize,
    members: bool,
}

impl Pending {
    /// Entries each stack keeps room for between parses (one huge object
    /// does not keep its room for the instance's life).
    const KEPT: usize = 4096;
    /// Entries each stack has room for from the start ([`prepare`]).
    const PREPARED: usize = 256;

    /// Gives back the room above [`Pending::KEPT`]; the stacks are empty
    /// between parses.
    fn trim() {
        MEMBERS.with_borrow_mut(|members| members.shrink_to(Self::KEPT));
        ELEMENTS.with_borrow_mut(|elements| elements.shrink_to(Self::KEPT));
    }

    /// The place of an object's members (`members`) or an array's elements.
    fn new(ctx: *mut qjs::JSContext, members: bool) -> Pending {
        let start = if members {
            MEMBERS.with_borrow(Vec::len)
        } else {
            ELEMENTS.with_borrow(Vec::len)
        };
        Pending {
            ctx,
            start,
            members,
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.members {
            MEMBERS.with_borrow_mut(|members| {
                for member in members.drain(self.start.min(members.len())..) {
                    unsafe { qjs::JS_FreeValue(self.ctx, member.value) };
                }
            });
        } else {
            ELEMENTS.with_borrow_mut(|elements| {
                for element in elements.drain(self.start.min(elements.len())..) {
                    unsafe { qjs::JS_FreeValue(self.ctx, element) };
                }
            });
        }
    }
}

/// An owned atom (the writer's).
struct Key {
    ctx: *mut qjs::JSContext,
    atom: qjs::JSAtom,
}

impl Drop for Key {
    fn drop(&mut self) {
        unsafe { qjs::JS_FreeAtom(self.ctx, self.atom) }
    }
}

struct KeySeed {
    ctx: *mut qjs::JSContext,
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    /// Borrowed from [`KeyAtoms`] until the parse ends.
    type Value = qjs::JSAtom;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<qjs::JSAtom, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = qjs::JSAtom;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<qjs::JSAtom, E> {
        let atom = KEY_ATOMS.with_borrow_mut(|atoms| atoms.atom(self.ctx, v.as_bytes()));
        if atom == qjs::JS_ATOM_NULL {
            return Err(E::custom("QuickJS raised an exception"));
        }
        Ok(atom)
    }
}

thread_local! {
    static KEY_ATOMS: RefCell<KeyAtoms> = RefCell::new(KeyAtoms::default());
}

/// The atoms of keys read lately, by their text. Events repeat their keys,
/// and finding a key among QuickJS's atoms (hashing it a byte at a time,
/// then comparing) was the largest single cost of reading an event.
/// Set-associative: a key's hash names a set of [`KeyAtoms::WAYS`] slots; a
/// key found there moves to the set's first slot, and a key not found there
/// takes the first slot while the last one's key leaves. (Direct mapped, two keys of one event
/// that named the same slot evicted each other on every event: about one key
/// in six of a 100-key event.) Each slot holds a reference to its atom, so
/// the number cannot be reused for another name while it is here; the atoms
/// it hands out are borrowed until the parse ends ([`KeyAtoms::release`]),
/// so one that leaves its slot part-way through a parse is freed only then.
#[derive(Default)]
struct KeyAtoms {
    slots: Vec<Option<(Box<[u8]>, qjs::JSAtom)>>,
    /// References to free when the parse ends: atoms that left their slot,
    /// and those of keys too long to keep.
    retired: Vec<qjs::JSAtom>,
}

impl KeyAtoms {
    const SETS: usize = 256;
    const WAYS: usize = 4;
    /// Longer keys are looked up by QuickJS every time.
    const MAX_KEY_LEN: usize = 64;

    /// Makes the slots.
    fn prepare(&mut self) {
        if self.slots.is_empty() {
            self.slots.resize_with(Self::SETS * Self::WAYS, || None);
        }
    }

    /// The atom named `key` (UTF-8), borrowed until [`KeyAtoms::release`],
    /// or `JS_ATOM_NULL` with an exception pending.
    fn atom(&mut self, ctx: *mut qjs::JSContext, key: &[u8]) -> qjs::JSAtom {
        if key.len() > Self::MAX_KEY_LEN {
            let atom =
                unsafe { qjs::JS_NewAtomLen(ctx, key.as_ptr() as *const c_char, key.len() as _) };
            if atom != qjs::JS_ATOM_NULL {
                self.retired.push(atom);
            }
            return atom;
        }
        self.prepare();
        let start = Self::set(key) * Self::WAYS;
        let set = &mut self.slots[start..start + Self::WAYS];
        for way in 0..Self::WAYS {
            if let Some((name, atom)) = &set[way]
                && same_key(name, key)
            {
                let atom = *atom;
                set.swap(0, way);
                return atom;
            }
        }
        let atom =
            unsafe { qjs::JS_NewAtomLen(ctx, key.as_ptr() as *const c_char, key.len() as _) };
        if atom != qjs::JS_ATOM_NULL {
            // The last slot's key leaves; the others move down one.
            for way in (1..Self::WAYS).rev() {
                set.swap(way, way - 1);
            }
            if let Some((_, old)) = set[0].take() {
                self.retired.push(old);
            }
            set[0] = Some((key.into(), atom));
        }
        atom
    }

    /// Ends a parse: frees the references [`KeyAtoms::atom`] retired during it.
    fn release(&mut self, ctx: *mut qjs::JSContext) {
        for atom in self.retired.drain(..) {
            unsafe { qjs::JS_FreeAtom(ctx, atom) };
        }
        self.retired.shrink_to(Pending::KEPT);
    }

    /// The set for `key`: a multiplicative hash of its bytes, eight at a time.
    fn set(key: &[u8]) -> usize {
        let mut hash = key.len() as u64;
        let mut words = key.chunks_exact(8);
        for word in &mut words {
            let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            hash = (hash.rotate_left(5) ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
        hash = (hash.rotate_left(5) ^ tail_word(words.remainder()))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (hash >> 56) as usize % Self::SETS
    }
}

/// Whether two keys are the same bytes, compared eight at a time: keys are
/// short, and a call to libc's `memcmp` goes a byte at a time in wasm.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("eight bytes"));
    for (p, q) in (&mut x).zip(&mut y) {
        if word(p) != word(q) {
            return false;
        }
    }
    tail_word(x.remainder()) == tail_word(y.remainder())
}

/// Up to seven bytes as one little-endian word (zero above them), read
/// without a call to `memcpy`.
fn tail_word(tail: &[u8]) -> u64 {
    tail.iter()
        .rev()
        .fold(0, |word, &byte| (word << 8) | u64::from(byte))
}

/// Why the fast path stopped.
enum Fallback {
    /// Something only QuickJS's stringify handles exactly: start again there.
    Native,
    /// QuickJS raised an exception (out of memory); it is pending.
    Exception,
}

/// A context's intrinsic `Object.prototype` and `Array.prototype`, as
/// plain data has them, and the `toJSON` atom.
struct Intrinsics {
    object_prototype: *mut std::ffi::c_void,
    array_prototype: *mut std::ffi::c_void,
    /// Atoms are interned: a key is `toJSON` exactly when its atom is this one.
    to_json: qjs::JSAtom,
}

thread_local! {
    /// The atom `toJSON`, made once and held for the instance's life (every
    /// world's context shares the runtime's atoms).
    static TO_JSON_ATOM: std::cell::Cell<qjs::JSAtom> = const { std::cell::Cell::new(qjs::JS_ATOM_NULL) };
}

impl Intrinsics {
    /// `ctx`'s, or `None` when its intrinsic prototypes have been given a
    /// `toJSON` or rewired (then no value of it is plain data). The
    /// prototypes are the context's own (`JS_GetClassProto`, which no
    /// script can replace); what is checked again at every call is what a
    /// script can change: the prototype above `Array.prototype`, and an own
    /// `toJSON` on either.
    fn of(raw: *mut qjs::JSContext) -> Option<Intrinsics> {
        let object_prototype =
            Owned::new(raw, unsafe { qjs::JS_GetClassProto(raw, CLASS_OBJECT) }).ok()?;
        let array_prototype =
            Owned::new(raw, unsafe { qjs::JS_GetClassProto(raw, CLASS_ARRAY) }).ok()?;
        let above_array = Owned::new(raw, unsafe {
            qjs::JS_GetPrototype(raw, array_prototype.value)
        })
        .ok()?;
        if above_array.value != object_prototype.value {
            return None;
        }
        let to_json = match TO_JSON_ATOM.get() {
            qjs::JS_ATOM_NULL => {
                let atom = unsafe {
                    qjs::JS_NewAtomLen(raw, TO_JSON.as_ptr() as *const c_char, TO_JSON.len() as _)
                };
                if atom == qjs::JS_ATOM_NULL {
                    return None;
                }
                TO_JSON_ATOM.set(atom);
                atom
            }
            atom => atom,
        };
        for prototype in [&object_prototype, &array_prototype] {
            let has = unsafe {
                qjs::JS_GetOwnProperty(raw, std::ptr::null_mut(), prototype.value, to_json)
            };
            if has != 0 {
                return None;
            }
        }
        // The intrinsic prototypes live as long as the context; pointers compare identity.
        Some(Intrinsics {
            object_prototype: unsafe { qjs::JS_VALUE_GET_PTR(object_prototype.value) },
            array_prototype: unsafe { qjs::JS_VALUE_GET_PTR(array_prototype.value) },
            to_json,
        })
    }
}

/// Writes plain data as JSON; everything else is a [`Fallback::Native`].
struct Writer<'o> {
    ctx: *mut qjs::JSContext,
    out: &'o mut Vec<u8>,
    /// The objects being written, outermost first: a cycle goes to QuickJS for its TypeError.
    open: Vec<*mut std::ffi::c_void>,
    object_prototype: *mut std::ffi::c_void,
    array_prototype: *mut std::ffi::c_void,
    /// Atoms are interned: a key is `toJSON` exactly when its atom is this one.
    to_json: qjs::JSAtom,
}

const TO_JSON: &str = "toJSON";

impl<'o> Writer<'o> {
    /// A writer for this context, or `None` when the intrinsic prototypes have been
    /// given a `toJSON` or rewired (then every value takes QuickJS's path).
    fn new(ctx: &Ctx<'_>, out: &'o mut Vec<u8>) -> Option<Self> {
        let raw = ctx.as_raw().as_ptr();
        let plain = Intrinsics::of(raw)?;
        Some(Writer {
            ctx: raw,
            out,
            open: Vec::new(),
            object_prototype: plain.object_prototype,
            array_prototype: plain.array_prototype,
            to_json: plain.to_json,
        })
    }

    /// Writes one value; `Ok(false)` when it serialises to nothing (`undefined`,
    /// a symbol), which an object skips and an array writes as `null`.
    fn value(&mut self, value: qjs::JSValue, depth: usize) -> std::result::Result<bool, Fallback> {
        let tag = unsafe { qjs::JS_VALUE_GET_NORM_TAG(value) };
        match tag {
            qjs::JS_TAG_NULL => self.out.extend_from_slice(b"null"),
            qjs::JS_TAG_BOOL => {
                let v = unsafe { qjs::JS_VALUE_GET_BOOL(value) };
                self.out
                    .extend_from_slice(if v { b"true" } else { b"false" });
            }
            qjs::JS_TAG_INT => {
                let v = unsafe { qjs::JS_VALUE_GET_INT(value) };
                self.out
                    .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            }
            qjs::JS_TAG_FLOAT64 => self.float(value)?,
            qjs::JS_TAG_STRING | qjs::JS_TAG_STRING_ROPE => self.string(value)?,
            qjs::JS_TAG_UNDEFINED | qjs::JS_TAG_SYMBOL => return Ok(false),
            qjs::JS_TAG_OBJECT => return self.object(value, depth),
            _ => return Err(Fallback::Native),
        }
        Ok(true)
    }

    fn float(&mut self, value: qjs::JSValue) -> std::result::Result<(), Fallback> {
        let n = unsafe { qjs::JS_VALUE_GET_FLOAT64(value) };
        if !n.is_finite() {
            self.out.extend_from_slice(b"null");
        } else if n == 0.0 {
            // -0 included.
            self.out.push(b'0');
        } else if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
            self.out
                .extend_from_slice(itoa::Buffer::new().format(n as i64).as_bytes());
        } else {
            // ECMAScript's Number::toString as V8 writes it (ryu-js). Neither
            // QuickJS's own (not shortest where the gap below a power of two is
            // half the gap above: 2^-24 → 5.9604644775390625e-8, V8
            // 5.960464477539063e-8) nor Rust's (ties broken the other way:
            // 565126552712172.25 → …172.3, V8 …172.2) gives V8's text.
            self.out
                .extend_from_slice(ryu_js::Buffer::new().format_finite(n).as_bytes());
        }
        Ok(())
    }

    fn string(&mut self, value: qjs::JSValue) -> std::result::Result<(), Fallback> {
        let mut chars: *const u8 = std::ptr::null();
        let count = unsafe { JS_SandpipeString8(self.ctx, value, &mut chars) };
        // Borrowed from the string; ASCII is already UTF-8.
        if let Some(chars) = unsafe { borrowed(chars, count) } {
            if quote_ascii_into(self.out, chars) {
                return Ok(());
            }
        }
        self.text(value, true)
    }

    /// Writes `ToString(value)`, quoted and escaped when `quote`.
    fn text(&mut self, value: qjs::JSValue, quote: bool) -> std::result::Result<(), Fallback> {
        let mut len = 0;
        // Lone surrogates come back as their 3-byte WTF-8 forms (not U+FFFD);
        // an ASCII string comes back without a copy.
        let text = unsafe { qjs::JS_ToCStringLen2(self.ctx, &mut len, value, false) };
        if text.is_null() {
            return Err(Fallback::Exception);
        }
        let bytes = unsafe { std::slice::from_raw_parts(text as *const u8, len as usize) };
        if quote {
            quote_into(self.out, bytes);
        } else {
            self.out.extend_from_slice(bytes);
        }
        unsafe { qjs::JS_FreeCString(self.ctx, text) };
        Ok(())
    }

    fn object(&mut self, value: qjs::JSValue, depth: usize) -> std::result::Result<bool, Fallback> {
        if depth >= MAX_DEPTH {
            return Err(Fallback::Native);
        }
        let pointer = unsafe { qjs::JS_VALUE_GET_PTR(value) };
        if self.open.contains(&pointer) {
            return Err(Fallback::Native);
        }
        // Functions, proxies, dates, boxed primitives, typed arrays … are not plain data.
        let class = unsafe { qjs::JS_GetClassID(value) };
        if class != CLASS_OBJECT && class != CLASS_ARRAY {
            return Err(Fallback::Native);
        }
        // Not a proxy (its class would differ), so this runs no trap.
        let prototype = Owned::new(self.ctx, unsafe { qjs::JS_GetPrototype(self.ctx, value) })
            .map_err(|_| Fallback::Exception)?;
        let proto = if unsafe { qjs::JS_IsNull(prototype.value) } {
            std::ptr::null_mut()
        } else {
            unsafe { qjs::JS_VALUE_GET_PTR(prototype.value) }
        };
        drop(prototype);
        self.open.push(pointer);
        let written = match class {
            CLASS_OBJECT if proto == self.object_prototype || proto.is_null() => {
                self.plain_object(value, depth)
            }
            CLASS_ARRAY if proto == self.array_prototype => self.array(value, depth),
            _ => Err(Fallback::Native),
        };
        self.open.pop();
        written.map(|()| true)
    }

    fn plain_object(
        &mut self,
        object: qjs::JSValue,
        depth: usize,
    ) -> std::result::Result<(), Fallback> {
        let slots = match unsafe { JS_SandpipeShapeSlots(self.ctx, object) } {
            -1 => return self.listed_object(object, depth),
            // An own `toJSON`, enumerable or not, is called.
            slots if slots < 0 => return Err(Fallback::Native),
            slots => slots,
        };
        // Straight from the shape: keys in insertion order, values borrowed
        // (nothing below runs JavaScript or allocates in the runtime).
        self.out.push(b'{');
        let mut first = true;
        for slot in 0..slots as u32 {
            let mut atom = qjs::JS_ATOM_NULL;
            let mut value = qjs::JS_UNDEFINED;
            match unsafe { JS_SandpipeShapeSlot(self.ctx, object, slot, &mut atom, &mut value) } {
                0 => continue,
                1 => self.member(atom, value, &mut first, depth)?,
                _ => return Err(Fallback::Native),
            }
        }
        self.out.push(b'}');
        Ok(())
    }

    /// An object whose keys QuickJS lists (some are array indexes, which come
    /// first), each looked up again.
    fn listed_object(
        &mut self,
        object: qjs::JSValue,
        depth: usize,
    ) -> std::result::Result<(), Fallback> {
        let mut names: *mut qjs::JSPropertyEnum = std::ptr::null_mut();
        let mut count: u32 = 0;
        let listed = unsafe {
            qjs::JS_GetOwnPropertyNames(
                self.ctx,
                &mut names,
                &mut count,
                object,
                (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_ENUM_ONLY) as _,
            )
        };
        if listed < 0 {
            return Err(Fallback::Exception);
        }
        let entries: &[qjs::JSPropertyEnum] = if names.is_null() || count == 0 {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(names, count as usize) }
        };
        let written = self.members(object, entries, depth);
        unsafe { qjs::JS_FreePropertyEnum(self.ctx, names, count) };
        written
    }

    fn members(
        &mut self,
        object: qjs::JSValue,
        entries: &[qjs::JSPropertyEnum],
        depth: usize,
    ) -> std::result::Result<(), Fallback> {
        self.out.push(b'{');
        let mut first = true;
        for entry in entries {
            let member = self.own_data(object, entry.atom)?;
            let Some(member) = member else { continue };
            self.member(entry.atom, member.value, &mut first, depth)?;
        }
        self.out.push(b'}');
        Ok(())
    }

    /// `"key":value` (after a comma unless `first`); nothing when the value
    /// serialises to nothing.
    fn member(
        &mut self,
        atom: qjs::JSAtom,
        value: qjs::JSValue,
        first: &mut bool,
        depth: usize,
    ) -> std::result::Result<(), Fallback> {
        if atom == self.to_json {
            return Err(Fallback::Native);
        }
        let mark = self.out.len();
        if !*first {
            self.out.push(b',');
        }
        self.key(atom)?;
        self.out.push(b':');
        if self.value(value, depth + 1)? {
            *first = false;
        } else {
            // undefined, a symbol: the member is left out.
            self.out.truncate(mark);
        }
        Ok(())
    }

    fn array(&mut self, array: qjs::JSValue, depth: usize) -> std::result::Result<(), Fallback> {
        // An own `toJSON` on the array is called.
        if unsafe { JS_SandpipeOwnsToJSON(self.ctx, array) } != 0 {
            return Err(Fallback::Native);
        }
        let mut elements: *const qjs::JSValue = std::ptr::null();
        let count = unsafe { JS_SandpipeDenseArray(self.ctx, array, &mut elements) };
        // Borrowed from the array, which nothing below changes.
        if let Some(elements) = unsafe { borrowed(elements, count) } {
            self.out.push(b'[');
            for (index, element) in elements.iter().enumerate() {
                if index > 0 {
                    self.out.push(b',');
                }
                if !self.value(*element, depth + 1)? {
                    self.out.extend_from_slice(b"null");
                }
            }
            self.out.push(b']');
            return Ok(());
        }
        let mut length: i64 = 0;
        if unsafe { qjs::JS_GetLength(self.ctx, array, &mut length) } < 0 {
            return Err(Fallback::Exception);
        }
        self.out.push(b'[');
        for index in 0..length {
            if index > 0 {
                self.out.push(b',');
            }
            let atom = unsafe { qjs::JS_NewAtomUInt32(self.ctx, index as u32) };
            if atom == qjs::JS_ATOM_NULL {
                return Err(Fallback::Exception);
            }
            let key = Key {
                ctx: self.ctx,
                atom,
            };
            // A hole would be looked up on the prototype chain: QuickJS's path.
            let element = self.own_data(array, key.atom)?.ok_or(Fallback::Native)?;
            if !self.value(element.value, depth + 1)? {
                self.out.extend_from_slice(b"null");
            }
        }
        self.out.push(b']');
        Ok(())
    }

    /// The value of an own data property; `None` when there is none; a getter
    /// (which would run code) is [`Fallback::Native`].
    fn own_data(
        &self,
        object: qjs::JSValue,
        atom: qjs::JSAtom,
    ) -> std::result::Result<Option<Owned>, Fallback> {
        let mut descriptor = qjs::JSPropertyDescriptor {
            flags: 0,
            value: qjs::JS_UNDEFINED,
            getter: qjs::JS_UNDEFINED,
            setter: qjs::JS_UNDEFINED,
        };
        let found = unsafe { qjs::JS_GetOwnProperty(self.ctx, &mut descriptor, object, atom) };
        if found < 0 {
            return Err(Fallback::Exception);
        }
        if found == 0 {
            return Ok(None);
        }
        let value = Owned {
            ctx: self.ctx,
            value: descriptor.value,
        };
        let getter = Owned {
            ctx: self.ctx,
            value: descriptor.getter,
        };
        let setter = Owned {
            ctx: self.ctx,
            value: descriptor.setter,
        };
        drop((getter, setter));
        if descriptor.flags & qjs::JS_PROP_GETSET as i32 != 0 {
            return Err(Fallback::Native);
        }
        Ok(Some(value))
    }

    fn key(&mut self, atom: qjs::JSAtom) -> std::result::Result<(), Fallback> {
        if KEYS.with_borrow(|keys| keys.write(atom, self.out)) {
            return Ok(());
        }
        let mut len = 0;
        let name = unsafe { qjs::JS_AtomToCStringLen(self.ctx, &mut len, atom) };
        if name.is_null() {
            return Err(Fallback::Exception);
        }
        let start = self.out.len();
        quote_into(self.out, unsafe {
            std::slice::from_raw_parts(name as *const u8, len as usize)
        });
        unsafe { qjs::JS_FreeCString(self.ctx, name) };
        KEYS.with_borrow_mut(|keys| keys.remember(self.ctx, atom, &self.out[start..]));
        Ok(())
    }
}

thread_local! {
    static KEYS: RefCell<KeyCache> = RefCell::new(KeyCache::default());
}

/// Quoted keys by atom, so the property names every event repeats are not
/// converted and escaped again on every call. Atoms are small integers, so
/// the quoted text sits at the atom's own index (no hashing on the writer's
/// path, once per key written). Each entry holds a reference to its atom, so
/// the number cannot be reused for another name; the cache is bounded in
/// entries, key length and atom number, and never evicts.
#[derive(Default)]
struct KeyCache {
    quoted: Vec<Option<Box<[u8]>>>,
    entries: usize,
}

impl KeyCache {
    const MAX_KEYS: usize = 4096;
    const MAX_QUOTED_LEN: usize = 130;
    /// Atoms numbered from here are not kept (the index would hold
    /// `8 × atom` bytes on wasm32: at most 128 KiB).
    const MAX_ATOM: usize = 16_384;

    fn write(&self, atom: qjs::JSAtom, out: &mut Vec<u8>) -> bool {
        match self.quoted.get(atom as usize) {
            Some(Some(quoted)) => {
                out.extend_from_slice(quoted);
                true
            }
            _ => false,
        }
    }

    fn remember(&mut self, ctx: *mut qjs::JSContext, atom: qjs::JSAtom, quoted: &[u8]) {
        let index = atom as usize;
        if self.entries < Self::MAX_KEYS
            && quoted.len() <= Self::MAX_QUOTED_LEN
            && index < Self::MAX_ATOM
        {
            if self.quoted.len() <= index {
                self.quoted.resize_with(index + 1, || None);
            }
            if self.quoted[index].is_none() {
                unsafe { qjs::JS_DupAtom(ctx, atom) };
                self.quoted[index] = Some(quoted.into());
                self.entries += 1;
            }
        }
    }
}

/// QuickJS's class ids for plain objects and arrays (the first two of its class enum).
pub(crate) const CLASS_OBJECT: qjs::JSClassID = 1;
const CLASS_ARRAY: qjs::JSClassID = 2;

/// Appends `text` (UTF-8, lone surrogates as WTF-8) as a JSON string the way
/// `JSON.stringify` writes it: `"` `\` and control characters escaped (the short
/// forms where JSON has them, else `\u00xx`), lone surrogates as `\udxxx`,
/// everything else as is.
pub fn quote_into(out: &mut Vec<u8>, text: &[u8]) {
    quote(out, text, false);
}

/// [`quote_into`] for 8-bit characters (Latin-1), which are written as they
/// are only when all of them are ASCII: `false`, with `out` as it was, at the
/// first that is not.
fn quote_ascii_into(out: &mut Vec<u8>, chars: &[u8]) -> bool {
    quote(out, chars, true)
}

fn quote(out: &mut Vec<u8>, text: &[u8], ascii_only: bool) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let start = out.len();
    out.reserve(text.len() + 2);
    out.push(b'"');
    let mut run = 0;
    let mut i = 0;
    while i < text.len() {
        // Sixteen bytes at a time, straight to the first that needs a look;
        // eight at a time in the tail.
        if let Some(chunk) = text.get(i..i + 16) {
            // The plugin is built for wasm32 with SIMD, which the host's
            // engine accepts (an engine without it refuses the module).
            let flagged = flagged16(chunk.try_into().expect("sixteen bytes"), ascii_only);
            if flagged == 0 {
                i += 16;
                continue;
            }
            i += flagged.trailing_zeros() as usize;
        } else if let Some(word) = text.get(i..i + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            if !may_need_escape(word) && !(ascii_only && word & HIGHS != 0) {
                i += 8;
                continue;
            }
        }
        let b = text[i];
        if ascii_only && b >= 0x80 {
            out.truncate(start);
            return false;
        }
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            _ => None,
        };
        if let Some(escape) = escape {
            out.extend_from_slice(&text[run..i]);
            out.extend_from_slice(escape);
            i += 1;
            run = i;
        } else if b < 0x20 {
            out.extend_from_slice(&text[run..i]);
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
            i += 1;
            run = i;
        } else if b == 0xED && i + 2 < text.len() && text[i + 1] >= 0xA0 {
            // U+D800..U+DFFF: a surrogate without its pair.
            let unit =
                0xD000 | (u32::from(text[i + 1] & 0x3F) << 6) | u32::from(text[i + 2] & 0x3F);
            out.extend_from_slice(&text[run..i]);
            out.extend_from_slice(b"\\u");
            for shift in [12, 8, 4, 0] {
                out.push(HEX[((unit >> shift) & 15) as usize]);
            }
            i += 3;
            run = i;
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(&text[run..]);
    out.push(b'"');
    true
}

/// `text` as UTF-8, if it is: its ASCII prefix found sixteen bytes at a
/// time (wasm SIMD), and only the rest checked by `std` (which goes four at
/// a time; 1 KB of one string: 34,292 → 32,775 fuel).
fn utf8(text: &[u8]) -> Option<&str> {
    let mut ascii = 0;
    while let Some(chunk) = text.get(ascii..ascii + 16) {
        // SIMD as for `flagged16` in `quote`.
        if !ascii16(chunk.try_into().expect("sixteen bytes")) {
            break;
        }
        ascii += 16;
    }
    std::str::from_utf8(&text[ascii..]).ok()?;
    // SAFETY: an ASCII prefix followed by valid UTF-8 is valid UTF-8.
    Some(unsafe { std::str::from_utf8_unchecked(text) })
}

/// Whether all of `chunk`'s bytes are ASCII (wasm SIMD: their high bits at once).
#[target_feature(enable = "simd128")]
fn ascii16(chunk: &[u8; 16]) -> bool {
    use core::arch::wasm32::{u8x16_bitmask, v128};
    // SAFETY: `chunk` is sixteen readable bytes; a v128 load needs no alignment.
    let v = unsafe { std::ptr::read_unaligned(chunk.as_ptr().cast::<v128>()) };
    u8x16_bitmask(v) == 0
}

/// Which of `chunk`'s bytes need a look, one bit each (bit `n` for byte `n`):
/// below 0x20, `"`, `\\`, 0xED (a surrogate's lead byte) and, when
/// `ascii_only`, 0x80 or above. One wasm SIMD comparison for each, over all
/// sixteen bytes (an empty call on 1 KB of one string: 39,752 → 34,292 fuel).
#[target_feature(enable = "simd128")]
fn flagged16(chunk: &[u8; 16], ascii_only: bool) -> u16 {
    use core::arch::wasm32::{u8x16_bitmask, u8x16_eq, u8x16_lt, u8x16_splat, v128, v128_or};
    // SAFETY: `chunk` is sixteen readable bytes; a v128 load needs no alignment.
    let v = unsafe { std::ptr::read_unaligned(chunk.as_ptr().cast::<v128>()) };
    let special = v128_or(
        v128_or(
            u8x16_lt(v, u8x16_splat(0x20)),
            u8x16_eq(v, u8x16_splat(b'"')),
        ),
        v128_or(
            u8x16_eq(v, u8x16_splat(b'\\')),
            u8x16_eq(v, u8x16_splat(0xED)),
        ),
    );
    let high = if ascii_only { u8x16_bitmask(v) } else { 0 };
    u8x16_bitmask(special) | high
}

/// Whether any byte of `word` is below 0x20, `"`, `\` or 0xED (a surrogate's lead byte).
fn may_need_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS != 0;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
    below_space
        || has_zero(word ^ (ONES * u64::from(b'"')))
        || has_zero(word ^ (ONES * u64::from(b'\\')))
        || has_zero(word ^ (ONES * 0xED))
}

/// `value`, plain data of the context `from`, copied into the context `to`
/// of the same runtime as `JSON.parse(JSON.stringify(value))` would make it
/// there (the vendored engine's `JS_SandpipeCopy`, whose comment says
/// exactly what plain data is: what [`Writer`] writes itself, and only what
/// the host would read as that text would read it, within `budget` bytes of
/// text). `Ok(None)` when `value` is anything else: then it goes as text.
/// Reading it runs no JavaScript; the copy is owned by `to`.
pub fn copy(
    from: *mut qjs::JSContext,
    value: qjs::JSValue,
    to: *mut qjs::JSContext,
    budget: usize,
) -> Result<Option<qjs::JSValue>> {
    let mut out = qjs::JS_UNDEFINED;
    // SAFETY: both contexts are alive, in one runtime whose lock the caller
    // holds; `value` is alive in `from` and is only read.
    match unsafe { JS_SandpipeCopy(to, from, value, budget, &mut out) } {
        1 => Ok(Some(out)),
        0 => Ok(None),
        _ => Err(Error::Exception),
    }
}

/// The JSON text of plain data `object`'s own member `name` (a data
/// property), or nothing when it has none JSON would write.
pub fn own_member<'js>(ctx: &Ctx<'js>, object: &Value<'js>, name: &str) -> Result<Vec<u8>> {
    let raw = ctx.as_raw().as_ptr();
    let atom = unsafe { qjs::JS_NewAtomLen(raw, name.as_ptr() as *const c_char, name.len() as _) };
    if atom == qjs::JS_ATOM_NULL {
        return Err(Error::Exception);
    }
    let key = Key { ctx: raw, atom };
    let mut descriptor = qjs::JSPropertyDescriptor {
        flags: 0,
        value: qjs::JS_UNDEFINED,
        getter: qjs::JS_UNDEFINED,
        setter: qjs::JS_UNDEFINED,
    };
    let found = unsafe { qjs::JS_GetOwnProperty(raw, &mut descriptor, object.as_raw(), key.atom) };
    if found < 0 {
        return Err(Error::Exception);
    }
    if found == 0 {
        return Ok(Vec::new());
    }
    let [value, getter, setter] = [descriptor.value, descriptor.getter, descriptor.setter]
        .map(|value| unsafe { Value::from_raw(ctx.clone(), value) });
    drop((getter, setter));
    // JSON writes enumerable members only.
    if descriptor.flags & qjs::JS_PROP_ENUMERABLE as i32 == 0 {
        return Ok(Vec::new());
    }
    Ok(stringify(ctx, &value)?.unwrap_or_default())
}
