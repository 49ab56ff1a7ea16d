//! JSON text as JavaScript writes it. Every event, webhook, captured event and
//! service answer the host writes goes through here, so a number leaves the
//! host as the text `JSON.stringify` gives for the double `JSON.parse` reads:
//!
//! - reading is exact: serde_json's `float_roundtrip` feature (workspace-wide)
//!   rounds every decimal to the nearest double, as `JSON.parse` does;
//! - writing uses ECMAScript's Number::toString (`ryu-js`): shortest digits,
//!   `1e+21`, `1e-7`, `0` for `-0`;
//! - an integer serde_json kept exactly but JavaScript cannot hold (beyond
//!   ±2^53) is written as the double JavaScript would have read, as Node does
//!   (`12345678901234567890` → `12345678901234567000`).

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};
use std::io::{self, Write};

/// The key serde_json's `raw_value` feature (on in this workspace: the
/// service's HTTP stack turns it on) reads specially: an object whose first
/// key it is becomes, as a `Value`, the JSON its string holds. JavaScript
/// reads it as an ordinary key; the readers that do not build a `Value`
/// (`event_text`, `rewrite`) hand such text to a `Value` so the host agrees
/// with itself.
pub const RAW_VALUE_KEY: &str = "$serde_json::private::RawValue";

/// serde_json's message for a refused text, saying what three of its
/// refusals that JavaScript accepts mean: a `\uXXXX` escape of half a UTF-16
/// surrogate pair without the other half (a string cut inside an emoji),
/// which a Rust string cannot hold, a number beyond the largest double,
/// which `JSON.parse` reads as Infinity, and nesting deeper than serde_json's
/// 128 levels. sandpipe carries none of them.
pub fn explained(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let hint = if message.starts_with("lone leading surrogate")
        || message.starts_with("unexpected end of hex escape")
    {
        " (a \\uXXXX escape cut short, or half of a UTF-16 surrogate pair, \\ud800-\\udfff, without the other half, as in a string cut inside an emoji: sandpipe cannot carry such a string)"
    } else if message.starts_with("number out of range") {
        " (beyond the largest double, where JavaScript reads Infinity: sandpipe does not carry it)"
    } else if message.starts_with("recursion limit exceeded") {
        " (arrays and objects nested more than 128 deep, which JSON.parse reads: sandpipe does not carry them)"
    } else {
        ""
    };
    format!("{message}{hint}")
}

/// The largest integer every smaller one of which a double holds exactly.
const MAX_SAFE: u64 = 1 << 53;

/// serde_json's compact output with JavaScript's numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsFormatter;

impl JsFormatter {
    fn double<W: ?Sized + Write>(writer: &mut W, value: f64) -> io::Result<()> {
        if value.is_finite() {
            writer.write_all(ryu_js::Buffer::new().format_finite(value).as_bytes())
        } else {
            // JSON.stringify writes NaN and ±Infinity as null.
            writer.write_all(b"null")
        }
    }
}

impl Formatter for JsFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        Self::double(writer, value)
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        Self::double(writer, f64::from(value))
    }

    fn write_u64<W: ?Sized + Write>(&mut self, writer: &mut W, value: u64) -> io::Result<()> {
        if value <= MAX_SAFE {
            CompactFormatter.write_u64(writer, value)
        } else {
            Self::double(writer, value as f64)
        }
    }

    fn write_i64<W: ?Sized + Write>(&mut self, writer: &mut W, value: i64) -> io::Result<()> {
        if value.unsigned_abs() <= MAX_SAFE {
            CompactFormatter.write_i64(writer, value)
        } else {
            Self::double(writer, value as f64)
        }
    }

    fn write_u128<W: ?Sized + Write>(&mut self, writer: &mut W, value: u128) -> io::Result<()> {
        match u64::try_from(value) {
            Ok(value) => self.write_u64(writer, value),
            Err(_) => Self::double(writer, value as f64),
        }
    }

    fn write_i128<W: ?Sized + Write>(&mut self, writer: &mut W, value: i128) -> io::Result<()> {
        match i64::try_from(value) {
            Ok(value) => self.write_i64(writer, value),
            Err(_) => Self::double(writer, value as f64),
        }
    }
}

/// Writes `value` as compact JSON with JavaScript's numbers.
pub fn to_writer<W: Write, T: ?Sized + Serialize>(writer: W, value: &T) -> serde_json::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(writer, JsFormatter);
    value.serialize(&mut serializer)
}

/// `value` as compact JSON bytes with JavaScript's numbers.
pub fn to_vec<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(128);
    to_writer(&mut bytes, value)?;
    Ok(bytes)
}

/// `value` as a compact JSON string with JavaScript's numbers.
pub fn to_string<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<String> {
    let bytes = to_vec(value)?;
    Ok(String::from_utf8(bytes).expect("serde_json writes UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn round(text: &str) -> String {
        to_string(&serde_json::from_str::<Value>(text).unwrap()).unwrap()
    }

    #[test]
    fn numbers_leave_as_javascript_writes_them() {
        for (input, output) in [
            ("23.308445025757262", "23.308445025757262"),
            ("1.0", "1"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1e21", "1e+21"),
            ("0.0000001", "1e-7"),
            ("0.000001", "0.000001"),
            ("1e16", "10000000000000000"),
            ("123e-20", "1.23e-18"),
            ("5e-324", "5e-324"),
            ("565126552712172.25", "565126552712172.2"),
            ("9007199254740992", "9007199254740992"),
            ("9007199254740993", "9007199254740992"),
            ("-9007199254740993", "-9007199254740992"),
            ("12345678901234567890", "12345678901234567000"),
            ("123456789012345678901234567890", "1.2345678901234568e+29"),
            ("[1,2.5,{\"a\":-3}]", "[1,2.5,{\"a\":-3}]"),
        ] {
            assert_eq!(round(input), output, "{input}");
        }
    }
}
