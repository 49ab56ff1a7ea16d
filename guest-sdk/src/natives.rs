//! Native functions behind the Node-style globals of `world.js`: hashes
//! (`crypto.createHash`), base64 (`Buffer`, `atob`/`btoa`), WHATWG URL parsing
//! and form encoding (`URL`, `URLSearchParams`), computed inside the guest;
//! randomness for `crypto` from the host's CSPRNG (WASI `random_get`); and
//! `request`, the one door to the host's services (`meta.cache`, `meta.storage`).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use javy_plugin_api::javy::quickjs::{
    Array, Ctx, Exception, Object, Result, TypedArray, Value, prelude::Func, qjs,
};
use sha2::Digest;

/// Decodes standard or URL-safe base64, padded or not, ignoring whitespace (as Node does).
fn decode_base64(text: &str) -> Vec<u8> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    // Node stops at the first character that is not base64.
    let end = cleaned
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/'))
        .unwrap_or(cleaned.len());
    let body = &cleaned[..end];
    let usable = body.len() - usize::from(body.len() % 4 == 1);
    LENIENT.decode(&body[..usable]).unwrap_or_default()
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    /// WASI preview 1 `random_get(buf, len) -> errno`, answered by the host's CSPRNG.
    #[link_name = "random_get"]
    fn wasi_random_get(buf: *mut u8, len: usize) -> u16;
}

/// Fills `bytes` from the host's CSPRNG, at the moment of the call (nothing
/// is drawn at pre-initialisation, so no random state is in the snapshot).
fn fill_random(bytes: &mut [u8]) {
    if bytes.is_empty() {
        return;
    }
    let errno = unsafe { wasi_random_get(bytes.as_mut_ptr(), bytes.len()) };
    // The host never fails random_get; should it, a trap beats predictable bytes.
    if errno != 0 {
        std::process::abort();
    }
}

/// Most bytes `crypto.getRandomValues` fills at once (the Web Crypto quota).
const MAX_RANDOM_VALUES: usize = 65_536;

/// `crypto.getRandomValues`: 0 when `value` was filled, 1 when it is not an
/// integer typed array, 2 when it is over the quota.
fn random_fill(value: &Value<'_>) -> u32 {
    let Some(object) = value.as_object() else {
        return 1;
    };
    // The class of the object itself, not its (replaceable) prototype.
    let kind = unsafe { qjs::JS_GetTypedArrayType(object.as_raw()) };
    let integer = [
        qjs::JSTypedArrayEnum_JS_TYPED_ARRAY_UINT8C,
        qjs::JSTypedArrayEnum_JS_TYPED_ARRAY_INT8,
        qjs::JSTypedArrayEnum_JS_TYPED_ARRAY_UINT8,
        qjs::JSTypedArrayEnum_JS_TYPED_ARRAY_INT16,
        qjs::JSTypedArrayEnum_JS_TYPED_ARRAY_UINT16,
        qjs::JSTypedArrayEnum_JS_TYPED_ARRAY_INT32,
        qjs::JSTypedArrayEnum_JS_TYPED_ARRAY_UINT32,
        qjs::JSTypedArrayEnum_JS_TYPED_ARRAY_BIG_INT64,
        qjs::JSTypedArrayEnum_JS_TYPED_ARRAY_BIG_UINT64,
    ];
    if kind < 0 || !integer.iter().any(|&k| k as i32 == kind) {
        return 1;
    }
    // SAFETY: `object` is a typed array (checked above); `as_raw` reads the byte
    // offset and length of its view whatever its element type, and gives None
    // for a detached buffer. Nothing else touches the buffer during this call.
    let Some(raw) = unsafe { object.ref_typed_array::<u8>() }.as_raw() else {
        return 0;
    };
    if raw.len > MAX_RANDOM_VALUES {
        return 2;
    }
    fill_random(unsafe { std::slice::from_raw_parts_mut(raw.ptr.as_ptr(), raw.len) });
    0
}

/// A version 4 UUID from 16 random bytes, lower-case hex.
fn random_uuid() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 15)] as char);
    }
    out
}

fn digest(algorithm: &str, data: &[u8]) -> Option<Vec<u8>> {
    Some(match algorithm.to_ascii_lowercase().as_str() {
        "md5" => md5::Md5::digest(data).to_vec(),
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        "sha224" => sha2::Sha224::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha384" => sha2::Sha384::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

/// The parts of a parsed URL, as the JS `URL` getters return them.
fn url_parts<'js>(ctx: &Ctx<'js>, url: &url::Url) -> Result<Object<'js>> {
    let parts = Object::new(ctx.clone())?;
    let search = url.query().map_or(String::new(), |q| {
        if q.is_empty() {
            String::new()
        } else {
            format!("?{q}")
        }
    });
    let hash = url.fragment().map_or(String::new(), |f| {
        if f.is_empty() {
            String::new()
        } else {
            format!("#{f}")
        }
    });
    let port = url.port().map_or(String::new(), |p| p.to_string());
    let hostname = url.host_str().unwrap_or("").to_string();
    let host = if port.is_empty() {
        hostname.clone()
    } else {
        format!("{hostname}:{port}")
    };
    parts.set("href", url.as_str())?;
    parts.set("protocol", format!("{}:", url.scheme()))?;
    parts.set("username", url.username())?;
    parts.set("password", url.password().unwrap_or(""))?;
    parts.set("hostname", hostname)?;
    parts.set("host", host)?;
    parts.set("port", port)?;
    parts.set("pathname", url.path())?;
    parts.set("search", search)?;
    parts.set("hash", hash)?;
    parts.set("origin", url.origin().ascii_serialization())?;
    Ok(parts)
}

fn type_error(ctx: &Ctx<'_>, message: &str) -> javy_plugin_api::javy::quickjs::Error {
    Exception::throw_type(ctx, message)
}

/// The object `world.js` receives as `natives`.
pub fn object<'js>(ctx: &Ctx<'js>) -> Result<Object<'js>> {
    let natives = Object::new(ctx.clone())?;
    natives.set(
        "digest",
        Func::from(
            |ctx: Ctx<'js>,
             algorithm: String,
             data: TypedArray<'js, u8>|
             -> Result<TypedArray<'js, u8>> {
                let bytes = data.as_bytes().unwrap_or_default();
                match digest(&algorithm, bytes) {
                    Some(out) => TypedArray::new(ctx, out),
                    None => Err(type_error(
                        &ctx,
                        &format!("Digest method not supported: {algorithm}"),
                    )),
                }
            },
        ),
    )?;
    natives.set(
        "base64Encode",
        Func::from(|data: TypedArray<'js, u8>, url_safe: bool| -> String {
            let bytes = data.as_bytes().unwrap_or_default();
            if url_safe {
                URL_SAFE_NO_PAD.encode(bytes)
            } else {
                STANDARD.encode(bytes)
            }
        }),
    )?;
    natives.set(
        "base64Decode",
        Func::from(
            |ctx: Ctx<'js>, text: String| -> Result<TypedArray<'js, u8>> {
                TypedArray::new(ctx, decode_base64(&text))
            },
        ),
    )?;
    natives.set(
        "urlParse",
        Func::from(
            |ctx: Ctx<'js>, input: String, base: Option<String>| -> Result<Value<'js>> {
                let parsed = match base {
                    Some(base) => url::Url::parse(&base).and_then(|b| b.join(&input)),
                    None => url::Url::parse(&input),
                };
                match parsed {
                    Ok(url) => Ok(url_parts(&ctx, &url)?.into_value()),
                    Err(_) => Ok(Value::new_null(ctx)),
                }
            },
        ),
    )?;
    natives.set(
        "urlSet",
        Func::from(
            |ctx: Ctx<'js>, href: String, part: String, value: String| -> Result<Object<'js>> {
                let mut url =
                    url::Url::parse(&href).map_err(|_| type_error(&ctx, "Invalid URL"))?;
                // Setters ignore values they cannot apply, as the WHATWG setters do.
                let _ = match part.as_str() {
                    "protocol" => url.set_scheme(value.trim_end_matches(':')),
                    "username" => url.set_username(&value),
                    "password" => url.set_password(Some(&value)),
                    "host" => url.set_host(Some(&value)).map_err(|_| ()),
                    "hostname" => url.set_host(Some(&value)).map_err(|_| ()),
                    "port" => url.set_port(value.parse().ok()),
                    "pathname" => {
                        url.set_path(&value);
                        Ok(())
                    }
                    "search" => {
                        let q = value.trim_start_matches('?');
                        url.set_query(if q.is_empty() { None } else { Some(q) });
                        Ok(())
                    }
                    "hash" => {
                        let f = value.trim_start_matches('#');
                        url.set_fragment(if f.is_empty() { None } else { Some(f) });
                        Ok(())
                    }
                    _ => Err(()),
                };
                url_parts(&ctx, &url)
            },
        ),
    )?;
    natives.set(
        "formParse",
        Func::from(|ctx: Ctx<'js>, query: String| -> Result<Array<'js>> {
            let pairs = Array::new(ctx.clone())?;
            for (i, (k, v)) in
                form_urlencoded::parse(query.trim_start_matches('?').as_bytes()).enumerate()
            {
                let pair = Array::new(ctx.clone())?;
                pair.set(0, k.into_owned())?;
                pair.set(1, v.into_owned())?;
                pairs.set(i, pair)?;
            }
            Ok(pairs)
        }),
    )?;
    natives.set(
        "request",
        Func::from(
            |ctx: Ctx<'js>, service: u32, payload: Value<'js>| -> Result<Value<'js>> {
                let payload =
                    crate::json::stringify(&ctx, &payload)?.unwrap_or_else(|| b"null".to_vec());
                crate::json::parse(&ctx, &crate::host::request(service, &payload))
            },
        ),
    )?;
    natives.set(
        "randomFill",
        Func::from(|value: Value<'js>| -> u32 { random_fill(&value) }),
    )?;
    natives.set("randomUUID", Func::from(random_uuid))?;
    natives.set(
        "formEncode",
        Func::from(|text: String| -> String {
            form_urlencoded::byte_serialize(text.as_bytes()).collect()
        }),
    )?;
    Ok(natives)
}
