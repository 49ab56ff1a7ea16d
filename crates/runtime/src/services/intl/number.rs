//! `Intl.NumberFormat`'s formatting: a double rounded as ECMA-402 rounds it
//! (its shortest round-trip decimal, half away from zero, to the resolved
//! fraction digits), written by `icu_decimal` with the locale's symbols and
//! grouping. Percent and currency wrap those digits in the locale's affixes,
//! which `icu_experimental`'s percent and currency formatters give: they
//! write no parts and round currencies themselves, so they format a probe
//! (1 and -1) and the text around its digit is the affix — sign, symbol or
//! code, and the spacing CLDR puts between them (which NaN and ∞ do not get).

use super::{IntlError, Made, Parts, currency_codes, locale};
use fixed_decimal::{Decimal, FloatPrecision, SignedRoundingMode, UnsignedRoundingMode};
use icu_decimal::options::{DecimalFormatterOptions, GroupingStrategy};
use icu_decimal::{DecimalFormatter, DecimalFormatterPreferences};
use icu_experimental::dimension::currency::CurrencyType;
use icu_experimental::dimension::currency::formatter::CurrencyFormatter;
use icu_experimental::dimension::percent::formatter::PercentFormatter;
use icu_locale_core::Locale;
use icu_properties::CodePointMapData;
use icu_properties::props::{GeneralCategory, GeneralCategoryGroup};
use serde::Deserialize;
use serde_json::{Value, json};
use writeable::{Part, Writeable};

/// `{"op": "number", …}`: a value (a number, or `"NaN"`, `"Infinity"`,
/// `"-Infinity"`, `"-0"`, or `{"bigint": "<decimal digits>"}` for a BigInt,
/// every digit kept) with the options the plugin resolved.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NumberRequest {
    locale: Option<String>,
    value: Value,
    #[serde(default)]
    options: NumberOptions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NumberOptions {
    style: Option<String>,
    currency: Option<String>,
    currency_display: Option<String>,
    minimum_integer_digits: Option<u8>,
    minimum_fraction_digits: Option<u8>,
    maximum_fraction_digits: Option<u8>,
    /// `false`, `"auto"`, `"always"` or `"min2"`.
    use_grouping: Option<Value>,
}

pub(crate) fn format(request: &NumberRequest) -> Result<Value, IntlError> {
    let locale = locale(request.locale.as_deref())?;
    let options = &request.options;
    // A BigInt's digits, exact; `value` then only carries its sign.
    let mut exact = None;
    let value = match &request.value {
        Value::Number(n) => n.as_f64().ok_or(IntlError::Options("value".to_owned()))?,
        Value::String(s) if s == "NaN" => f64::NAN,
        Value::String(s) if s == "Infinity" => f64::INFINITY,
        Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
        Value::String(s) if s == "-0" => -0.0,
        Value::Object(bigint) => match bigint.get("bigint") {
            Some(Value::String(digits)) if is_integer(digits) => {
                let decimal = Decimal::try_from_str(digits)
                    .map_err(|_| IntlError::Options("value out of range".to_owned()))?;
                exact = Some(decimal);
                if digits.starts_with('-') { -1.0 } else { 1.0 }
            }
            _ => return Err(IntlError::Options("value must be a number".to_owned())),
        },
        _ => return Err(IntlError::Options("value must be a number".to_owned())),
    };
    let style = options.style.as_deref().unwrap_or("decimal");
    let key = format!(
        "{locale} {style} {:?} {:?} {:?}",
        options.currency, options.currency_display, options.use_grouping
    );
    let prepared = NUMBER_FORMATTERS.get(key, || prepare(&locale, style, options))?;
    let (formatter, affixes) = (&prepared.formatter, &prepared.affixes);
    // ECMA-402's signDisplay "auto": a minus for every negative number, -0 too.
    let negative = value.is_sign_negative() && !value.is_nan();
    let mut parts = Parts::default();
    let around = affixes
        .as_ref()
        .map(|affixes| match (value.is_finite(), negative) {
            (true, false) => &affixes.positive,
            (true, true) => &affixes.negative,
            (false, false) => &affixes.nonfinite_positive,
            (false, true) => &affixes.nonfinite_negative,
        });
    if let (Some(affixes), Some((prefix, _))) = (&affixes, around) {
        affix_parts(&mut parts, prefix, affixes.kind);
    }
    if value.is_nan() {
        parts.push("nan", "NaN");
    } else if value.is_infinite() {
        if value < 0.0 && affixes.is_none() {
            parts.push("minusSign", "-");
        }
        parts.push("infinity", "∞");
    } else {
        let mut decimal = match exact {
            Some(decimal) => decimal,
            None => Decimal::try_from_f64(value, FloatPrecision::RoundTrip)
                .map_err(|_| IntlError::Options("value out of range".to_owned()))?,
        };
        if style == "percent" {
            decimal.multiply_pow10(2);
        }
        round_digits(
            &mut decimal,
            options.minimum_integer_digits.unwrap_or(1),
            options.minimum_fraction_digits.unwrap_or(0),
            options.maximum_fraction_digits.unwrap_or(3),
        );
        decimal.sign = if negative && affixes.is_none() {
            fixed_decimal::Sign::Negative
        } else {
            // Positive, or the sign is the affix's.
            fixed_decimal::Sign::None
        };
        formatter
            .format(&decimal)
            .write_to_parts(&mut parts)
            .map_err(|_| IntlError::Unsupported("formatting failed".to_owned()))?;
    }
    if let (Some(affixes), Some((_, suffix))) = (&affixes, around) {
        affix_parts(&mut parts, suffix, affixes.kind);
    }
    Ok(json!({ "locale": locale.to_string(), "parts": parts.finish() }))
}

/// Whether `digits` is a BigInt's decimal text: an optional minus, then digits.
fn is_integer(digits: &str) -> bool {
    let digits = digits.strip_prefix('-').unwrap_or(digits);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Rounds `decimal` as ECMA-402's digit options round it: half away from
/// zero at `maximum` fraction digits, trailing zeros dropped down to
/// `minimum`, and zeros before it up to `minimum_integer` integer digits.
pub(super) fn round_digits(decimal: &mut Decimal, minimum_integer: u8, minimum: u8, maximum: u8) {
    let minimum = i16::from(minimum);
    let maximum = i16::from(maximum).max(minimum);
    decimal.round_with_mode(
        -maximum,
        SignedRoundingMode::Unsigned(UnsignedRoundingMode::HalfExpand),
    );
    decimal.absolute.trim_end();
    decimal.absolute.pad_end(-minimum);
    decimal.absolute.pad_start(i16::from(minimum_integer));
}

/// A locale's decimal formatter with its grouping, and the affixes of a percent or currency style.
struct Prepared {
    formatter: DecimalFormatter,
    affixes: Option<Affixes>,
}

static NUMBER_FORMATTERS: Made<String, Prepared> = Made::new(super::CACHED_FORMATTERS);

fn prepare(locale: &Locale, style: &str, options: &NumberOptions) -> Result<Prepared, IntlError> {
    let affixes = match style {
        "decimal" => None,
        "percent" => Some(percent_affixes(locale)?),
        "currency" => Some(currency_affixes(
            locale,
            options.currency.as_deref().unwrap_or(""),
            options.currency_display.as_deref().unwrap_or("symbol"),
        )?),
        other => return Err(IntlError::Unsupported(format!("style {other:?}"))),
    };
    let grouping = match &options.use_grouping {
        None => GroupingStrategy::Auto,
        Some(Value::Bool(false)) => GroupingStrategy::Never,
        Some(Value::String(s)) if s == "auto" => GroupingStrategy::Auto,
        Some(Value::String(s)) if s == "always" => GroupingStrategy::Always,
        Some(Value::String(s)) if s == "min2" => GroupingStrategy::Min2,
        Some(other) => return Err(IntlError::Options(format!("useGrouping {other}"))),
    };
    let formatter = DecimalFormatter::try_new(
        DecimalFormatterPreferences::from(locale),
        DecimalFormatterOptions::from(grouping),
    )
    .map_err(|e| IntlError::Unsupported(e.to_string()))?;
    Ok(Prepared { formatter, affixes })
}

/// What comes before and after a number's digits, for positive and negative numbers.
struct Affixes {
    positive: (String, String),
    negative: (String, String),
    /// Around NaN and ∞: the same, less a space that is only CLDR's
    /// currencySpacing ([`without_spacing`]).
    nonfinite_positive: (String, String),
    nonfinite_negative: (String, String),
    /// The part type of the affix's text that is neither sign nor space.
    kind: &'static str,
}

/// Splits a formatted probe around its digits (`1`, or `1.00` where the
/// formatter pads to the currency's digits): the affixes before and after.
fn around_digit(formatted: &str) -> Result<(String, String), IntlError> {
    let first = formatted
        .find(|c: char| c.is_ascii_digit())
        .ok_or_else(|| IntlError::Unsupported(format!("no digit in {formatted:?}")))?;
    let last = formatted
        .rfind(|c: char| c.is_ascii_digit())
        .expect("a digit was found");
    Ok((
        formatted[..first].to_owned(),
        formatted[last + 1..].to_owned(),
    ))
}

fn probe(sign: fixed_decimal::Sign) -> Decimal {
    let mut one = Decimal::from(1);
    one.sign = sign;
    one
}

fn percent_affixes(locale: &Locale) -> Result<Affixes, IntlError> {
    let formatter = PercentFormatter::try_new(locale.into(), Default::default())
        .map_err(|e| IntlError::Unsupported(e.to_string()))?;
    let write = |sign| {
        formatter
            .format(&probe(sign))
            .write_to_string()
            .into_owned()
    };
    let positive = around_digit(&write(fixed_decimal::Sign::None))?;
    let negative = around_digit(&write(fixed_decimal::Sign::Negative))?;
    Ok(Affixes {
        nonfinite_positive: positive.clone(),
        nonfinite_negative: negative.clone(),
        positive,
        negative,
        kind: "percentSign",
    })
}

fn currency_affixes(locale: &Locale, currency: &str, display: &str) -> Result<Affixes, IntlError> {
    let code = CurrencyType::try_from_str(currency)
        .map_err(|_| IntlError::Currency(currency.to_owned()))?;
    // Where CLDR's symbol is the code itself, ICU4X's data has root's instead.
    let display = match display {
        "symbol" | "narrowSymbol" if symbol_is_code(locale, code, display == "narrowSymbol") => {
            "code"
        }
        other => other,
    };
    let formatter = match display {
        "symbol" => CurrencyFormatter::try_new_symbol(locale.into(), code, Default::default()),
        "narrowSymbol" => {
            CurrencyFormatter::try_new_symbol_narrow(locale.into(), code, Default::default())
        }
        "code" => CurrencyFormatter::try_new_code(locale.into(), code, Default::default()),
        other => return Err(IntlError::Unsupported(format!("currencyDisplay {other:?}"))),
    }
    .map_err(|e| IntlError::Unsupported(e.to_string()))?;
    let affixes = |formatter: &CurrencyFormatter<DecimalFormatter>| -> Result<_, IntlError> {
        let write = |sign| {
            formatter
                .format_fixed_decimal(&probe(sign))
                .write_to_string()
                .into_owned()
        };
        Ok((
            around_digit(&write(fixed_decimal::Sign::None))?,
            around_digit(&write(fixed_decimal::Sign::Negative))?,
        ))
    };
    let (positive, negative) = affixes(&formatter)?;
    let (positive, negative) = with_spacing(positive, negative);
    // The euro's symbol is no letter: its affixes have only the pattern's own spaces.
    let euro = CurrencyType::try_from_str("EUR").expect("a currency code");
    let (euro_positive, euro_negative) =
        match CurrencyFormatter::try_new_symbol(locale.into(), euro, Default::default()) {
            Ok(formatter) => affixes(&formatter)?,
            Err(_) => (positive.clone(), negative.clone()),
        };
    Ok(Affixes {
        nonfinite_positive: without_spacing(&positive, &euro_positive),
        nonfinite_negative: without_spacing(&negative, &euro_negative),
        positive,
        negative,
        kind: "currency",
    })
}

/// Whether CLDR writes `currency` in `locale` (with `currencyDisplay:
/// 'narrowSymbol'` if `narrow`) as its ISO code, which ICU4X's data does not
/// ([`currency_codes`]): the first of the locale's tag, the tag less its
/// region, less its script too, that the table lists decides.
fn symbol_is_code(locale: &Locale, currency: CurrencyType, narrow: bool) -> bool {
    let id = &locale.id;
    let language = id.language.as_str();
    let mut chain = Vec::with_capacity(3);
    match (id.script, id.region) {
        (Some(script), Some(region)) => {
            chain.push(format!("{language}-{script}-{region}"));
            chain.push(format!("{language}-{script}"));
        }
        (Some(script), None) => chain.push(format!("{language}-{script}")),
        (None, Some(region)) => chain.push(format!("{language}-{region}")),
        (None, None) => {}
    }
    chain.push(language.to_owned());
    let currency = currency.iso_code();
    chain
        .iter()
        .find_map(|tag| {
            currency_codes::CODE_SYMBOLS
                .binary_search_by(|(listed, _, _)| listed.cmp(&tag.as_str()))
                .ok()
        })
        .is_some_and(|row| {
            let (_, symbol, narrow_symbol) = currency_codes::CODE_SYMBOLS[row];
            let codes = if narrow { narrow_symbol } else { symbol };
            codes.split(' ').any(|listed| listed == currency.as_str())
        })
}

/// The affixes with CLDR's currencySpacing where ICU4X leaves it out: ICU4C
/// (so Node) puts a no-break space between a digit and a currency symbol
/// whose character next to it is neither a symbol (`S*`) nor a space
/// (`[[:^S:]&[:^Z:]]`), and ICU4X does so for letters only, not for a symbol
/// ending in a full stop (en XCG `Cg.`, ja's narrow BYN `р.`). The symbol is
/// what the positive affixes hold besides spaces; a sign between it and the
/// number (`Cg.-`) gets none.
fn with_spacing(
    positive: (String, String),
    negative: (String, String),
) -> ((String, String), (String, String)) {
    let symbol = match positive.0.trim() {
        "" => positive.1.trim().to_owned(),
        prefix => prefix.to_owned(),
    };
    let categories = CodePointMapData::<GeneralCategory>::new();
    let spaced = |c: char| {
        !GeneralCategoryGroup::Symbol.contains(categories.get(c))
            && !GeneralCategoryGroup::Separator.contains(categories.get(c))
            && !c.is_whitespace()
    };
    let space = |(prefix, suffix): (String, String)| {
        let prefix = match symbol.chars().last() {
            Some(last) if prefix.ends_with(symbol.as_str()) && spaced(last) => {
                format!("{prefix}\u{a0}")
            }
            _ => prefix,
        };
        let suffix = match symbol.chars().next() {
            Some(first) if suffix.starts_with(symbol.as_str()) && spaced(first) => {
                format!("\u{a0}{suffix}")
            }
            _ => suffix,
        };
        (prefix, suffix)
    };
    (space(positive), space(negative))
}

/// `affixes` less the space next to the number that `reference` (the same
/// locale's affixes around a symbol that is no letter) does not have: that
/// space is CLDR's currencySpacing, which ICU4C (so Node) inserts only
/// between a currency and a digit, never before NaN or ∞ (`GBPNaN`, where a
/// pattern's own space stays: pt `GBP NaN`, fr `NaN GBP`).
fn without_spacing(affixes: &(String, String), reference: &(String, String)) -> (String, String) {
    let (prefix, suffix) = affixes;
    let prefix = match prefix.strip_suffix(char::is_whitespace) {
        Some(bare) if !reference.0.ends_with(char::is_whitespace) => bare,
        _ => prefix,
    };
    let suffix = match suffix.strip_prefix(char::is_whitespace) {
        Some(bare) if !reference.1.starts_with(char::is_whitespace) => bare,
        _ => suffix,
    };
    (prefix.to_owned(), suffix.to_owned())
}

/// An affix as parts: its minus or plus sign, its spaces (literals), and the rest (`kind`).
fn affix_parts(parts: &mut Parts, affix: &str, kind: &'static str) {
    for c in affix.chars() {
        let mut buffer = [0; 4];
        let text = c.encode_utf8(&mut buffer);
        let part = match c {
            '-' | '\u{2212}' => "minusSign",
            '+' => "plusSign",
            c if c.is_whitespace() || c == '\u{200E}' || c == '\u{200F}' => "literal",
            _ => kind,
        };
        parts.push(part, text);
    }
}

/// The ECMA-402 part types [`ecma_part`] gives.
pub(crate) fn ecma_part_names() -> impl Iterator<Item = &'static str> {
    [
        "plusSign",
        "minusSign",
        "integer",
        "fraction",
        "group",
        "decimal",
    ]
    .into_iter()
}

/// The ECMA-402 part type of an `icu_decimal` part (`None`: a literal).
pub(crate) fn ecma_part(part: Part) -> Option<&'static str> {
    use icu_decimal::parts;
    Some(match part {
        p if p == parts::PLUS_SIGN => "plusSign",
        p if p == parts::MINUS_SIGN => "minusSign",
        p if p == parts::INTEGER => "integer",
        p if p == parts::FRACTION => "fraction",
        p if p == parts::GROUP => "group",
        p if p == parts::DECIMAL => "decimal",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{
        CurrencyFormatter, CurrencyType, Locale, around_digit, probe, with_spacing, without_spacing,
    };
    use super::{Writeable, symbol_is_code};

    #[test]
    fn cldr_symbols_that_are_the_code_are_the_code() {
        let locale = |tag: &str| Locale::try_from_str(tag).unwrap();
        let code = |code: &str| CurrencyType::try_from_str(code).unwrap();
        assert!(symbol_is_code(&locale("es-ES"), code("JPY"), false));
        assert!(symbol_is_code(&locale("es-MX"), code("JPY"), false));
        assert!(symbol_is_code(&locale("fr-FR"), code("JPY"), false));
        assert!(!symbol_is_code(&locale("fr-CA"), code("JPY"), false));
        assert!(!symbol_is_code(&locale("es-ES"), code("JPY"), true));
        assert!(!symbol_is_code(&locale("en-US"), code("JPY"), false));
        assert!(symbol_is_code(&locale("en-US"), code("CHF"), true));
    }

    /// Writes `tests/intl/icu4x_root_symbols.json`, which
    /// `tests/intl/currency_codes.js` reads: every currency code for which
    /// ICU4X's root data (what its fallback ends at) has a symbol or narrow
    /// symbol other than the code. Run it again when ICU4X's data changes:
    /// `cargo test --release --workspace --lib icu4x_root_symbols -- --ignored`.
    #[test]
    #[ignore = "regenerates tests/intl/icu4x_root_symbols.json"]
    fn icu4x_root_symbols() {
        let root = Locale::UNKNOWN;
        let mut out = serde_json::Map::new();
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                for c in b'A'..=b'Z' {
                    let text = String::from_utf8(vec![a, b, c]).unwrap();
                    let currency = CurrencyType::try_from_str(&text).unwrap();
                    let symbol = |formatter: Result<CurrencyFormatter<_>, _>| {
                        let formatter = formatter.ok()?;
                        let written = formatter
                            .format_fixed_decimal(&probe(fixed_decimal::Sign::None))
                            .write_to_string()
                            .into_owned();
                        let (prefix, suffix) = around_digit(&written).ok()?;
                        let symbol = format!("{prefix}{suffix}").trim().to_owned();
                        (symbol != text).then_some(symbol)
                    };
                    let mut entry = serde_json::Map::new();
                    let options = Default::default();
                    let regular =
                        CurrencyFormatter::try_new_symbol((&root).into(), currency, options);
                    if let Some(found) = symbol(regular) {
                        entry.insert("symbol".to_owned(), found.into());
                    }
                    let narrow =
                        CurrencyFormatter::try_new_symbol_narrow((&root).into(), currency, options);
                    if let Some(found) = symbol(narrow) {
                        entry.insert("narrow".to_owned(), found.into());
                    }
                    if !entry.is_empty() {
                        out.insert(text, entry.into());
                    }
                }
            }
        }
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/intl/icu4x_root_symbols.json"
        );
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(out)).unwrap();
        std::fs::write(path, text + "\n").unwrap();
    }

    #[test]
    fn a_symbol_ending_in_punctuation_is_spaced_from_the_digits() {
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        // en XCG: `Cg.` before the digits gets the space ICU4X leaves out.
        assert_eq!(
            with_spacing(pair("Cg.", ""), pair("-Cg.", "")),
            (pair("Cg.\u{a0}", ""), pair("-Cg.\u{a0}", ""))
        );
        // After the digits, on the other side.
        assert_eq!(
            with_spacing(pair("", "р."), pair("-", "р.")),
            (pair("", "\u{a0}р."), pair("-", "\u{a0}р."))
        );
        // Letters ICU4X already spaced, a symbol character and a pattern's own
        // space stay as they are; so does a sign between symbol and digits.
        assert_eq!(
            with_spacing(pair("GBP\u{a0}", ""), pair("-GBP\u{a0}", "")),
            (pair("GBP\u{a0}", ""), pair("-GBP\u{a0}", ""))
        );
        assert_eq!(
            with_spacing(pair("", "\u{a0}€"), pair("-", "\u{a0}€")),
            (pair("", "\u{a0}€"), pair("-", "\u{a0}€"))
        );
        assert_eq!(
            with_spacing(pair("$", ""), pair("-$", "")),
            (pair("$", ""), pair("-$", ""))
        );
        assert_eq!(
            with_spacing(pair("Cg.", ""), pair("Cg.-", "")),
            (pair("Cg.\u{a0}", ""), pair("Cg.-", ""))
        );
    }

    #[test]
    fn only_the_currency_spacing_a_symbol_of_letters_adds_is_dropped() {
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        // en: `GBP 1.00` against `€1.00`: the space is spacing.
        assert_eq!(
            without_spacing(&pair("GBP\u{a0}", ""), &pair("€", "")),
            pair("GBP", "")
        );
        // pt: `GBP 1,00` against `€ 1,00`, fr: `1,00 GBP` against `1,00 €`: the pattern's.
        assert_eq!(
            without_spacing(&pair("GBP\u{a0}", ""), &pair("€\u{a0}", "")),
            pair("GBP\u{a0}", "")
        );
        assert_eq!(
            without_spacing(&pair("", "\u{a0}GBP"), &pair("", "\u{a0}€")),
            pair("", "\u{a0}GBP")
        );
        assert_eq!(
            without_spacing(&pair("-", "\u{a0}GBP"), &pair("-", "€")),
            pair("-", "GBP")
        );
    }
}
