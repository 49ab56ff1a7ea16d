//! `Intl` for connectors: the plugin's `Intl.DateTimeFormat`, `Intl.NumberFormat`
//! and the `toLocale*String` methods send their resolved options here and get
//! the formatted parts back; `Intl.Collator` and `localeCompare` get an order
//! ([`collate`]), and `toLocaleUpperCase`/`toLocaleLowerCase` a locale's casing.
//!
//! Dates are formatted by ICU4X (`icu_datetime`, compiled CLDR data) in the
//! proleptic Gregorian calendar; the instant is placed in its IANA zone by
//! `jiff` with its bundled tz database, so zone rules do not depend on the
//! machine. Numbers are formatted by `icu_decimal`, with the percent and
//! currency patterns of [`number`]. The plugin does ECMA-402's option
//! processing (defaults, validation, the errors a connector sees); this module
//! only formats. Formatters and collators are kept in small process-wide
//! caches ([`Made`]), since a connector formats many values with few distinct
//! options.

mod collate;
mod currency_codes;
mod date_patterns;
mod list;
pub mod number;
mod plural;

use icu_calendar::{Date, Gregorian};
use icu_datetime::fieldbag::DateTimeFieldBag;
use icu_datetime::fieldbag::field;
use icu_datetime::fieldsets::builder::{DateFields, FieldSetBuilder, ZoneStyle};
use icu_datetime::fieldsets::enums::CompositeFieldSet;
use icu_datetime::options::{Length, TimePrecision, YearStyle};
use icu_datetime::pattern::{DateTimePattern, FixedCalendarDateTimeNames};
use icu_datetime::preferences::HourCycle;
use icu_datetime::{DateTimeFormatterPreferences, FixedCalendarDateTimeFormatter};
use icu_locale_core::Locale;
use icu_time::zone::UtcOffset;
use icu_time::{DateTime, Time, TimeZone, ZonedDateTime};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};
use thiserror::Error;
use writeable::{Part, PartsWrite, TryWriteable, Writeable};

/// Why a format request was refused; the plugin throws the message as a `RangeError`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IntlError {
    #[error("Incorrect locale information provided")]
    Locale,
    #[error("Invalid time zone specified: {0}")]
    TimeZone(String),
    #[error("Invalid time value")]
    Time,
    #[error("Invalid currency code : {0}")]
    Currency(String),
    #[error("Intl: unknown operation {0:?}")]
    Operation(String),
    #[error("Intl: malformed options: {0}")]
    Options(String),
    #[error("Intl: ICU4X cannot format these options: {0}")]
    Unsupported(String),
    #[error("Intl: the strings' sort keys would be over {0} bytes")]
    TooLarge(usize),
}

/// Answers one `Intl` request.
pub fn handle(request: &Value) -> Result<Value, IntlError> {
    let op = request.get("op").and_then(Value::as_str).unwrap_or("");
    match op {
        "date" => {
            let request = DateRequest::deserialize(request)
                .map_err(|e| IntlError::Options(one_line(&e.to_string())))?;
            format_date(&request)
        }
        "number" => {
            let request = number::NumberRequest::deserialize(request)
                .map_err(|e| IntlError::Options(one_line(&e.to_string())))?;
            number::format(&request)
        }
        "collator" => {
            let request = collate::CollatorRequest::deserialize(request)
                .map_err(|e| IntlError::Options(one_line(&e.to_string())))?;
            collate::resolve(&request)
        }
        "case" => {
            let request = CaseRequest::deserialize(request)
                .map_err(|e| IntlError::Options(one_line(&e.to_string())))?;
            let locale = locale(request.locale.as_deref())?;
            let mapper = icu_casemap::CaseMapper::new();
            Ok(Value::String(
                match request.upper {
                    true => mapper.uppercase_to_string(&request.text, &locale.id),
                    false => mapper.lowercase_to_string(&request.text, &locale.id),
                }
                .into_owned(),
            ))
        }
        "plural" => {
            let request = plural::PluralRequest::deserialize(request)
                .map_err(|e| IntlError::Options(one_line(&e.to_string())))?;
            plural::select(&request)
        }
        "list" => {
            let request = list::ListRequest::deserialize(request)
                .map_err(|e| IntlError::Options(one_line(&e.to_string())))?;
            list::format(&request)
        }
        "keys" => {
            let request = collate::KeysRequest::deserialize(request)
                .map_err(|e| IntlError::Options(one_line(&e.to_string())))?;
            collate::keys(&request)
        }
        other => Err(IntlError::Operation(other.to_owned())),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The locale a request names, canonicalised, or `en-US` (the host's default,
/// as Node's under `LANG=C`) when it names none. Only the language, script
/// and region are kept (variants and Unicode extensions are dropped; the
/// plugin passes `hourCycle` as an option).
pub(crate) fn locale(requested: Option<&str>) -> Result<Locale, IntlError> {
    let Some(tag) = requested else {
        return Ok(icu_locale_core::locale!("en-US"));
    };
    let parsed = Locale::try_from_str(tag).map_err(|_| IntlError::Locale)?;
    // Language, script and region only: what the caches are keyed by stays a few bytes.
    let mut id = icu_locale_core::LanguageIdentifier::UNKNOWN;
    id.language = parsed.id.language;
    id.script = parsed.id.script;
    id.region = parsed.id.region;
    Ok(Locale::from(id))
}

/// `{"op": "case", locale, upper, text}`: `toLocaleUpperCase` or
/// `toLocaleLowerCase` of `text` by the locale's casing rules (ICU4X's
/// `icu_casemap`: Turkish and Azeri dotted and dotless i, Lithuanian dots,
/// Greek uppercase without accents).
#[derive(Debug, Deserialize)]
struct CaseRequest {
    locale: Option<String>,
    upper: bool,
    text: String,
}

/// `{"op": "date", …}`: one instant, in milliseconds since the epoch, with the
/// options ECMA-402's `ToDateTimeOptions` left.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DateRequest {
    locale: Option<String>,
    time_zone: Option<String>,
    time: f64,
    #[serde(default)]
    options: DateOptions,
}

#[derive(Debug, Default, Deserialize, Clone, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DateOptions {
    date_style: Option<String>,
    time_style: Option<String>,
    weekday: Option<String>,
    era: Option<String>,
    year: Option<String>,
    month: Option<String>,
    day: Option<String>,
    hour: Option<String>,
    minute: Option<String>,
    second: Option<String>,
    fractional_second_digits: Option<u8>,
    time_zone_name: Option<String>,
    hour12: Option<bool>,
    hour_cycle: Option<String>,
}

type Formatter = FixedCalendarDateTimeFormatter<Gregorian, CompositeFieldSet>;

/// A date formatter for one locale and one set of options.
struct DateFormatter {
    formatter: Formatter,
    /// A CLDR pattern written in place of the formatter's ([`cldr_format`]).
    whole: Option<CldrFormat>,
    /// For a year or month beside a time: the two formatted apart.
    split: Option<PeriodBesideTime>,
    /// `h11`, `h12`, `h23` or `h24`, when the pattern has an hour.
    hour_cycle: Option<&'static str>,
    /// The fields of the pattern with their ECMA-402 widths, as `resolvedOptions` gives them.
    fields: Value,
    /// The hour is written without a leading zero ([`hour_unpadded`]).
    unpad_hour: bool,
    /// The hour is written with two digits ([`style_pads_hour`]).
    pad_hour: bool,
    /// The cycle is h24, which ICU4X formats as h23: hour 0 is written 24.
    midnight_as_24: bool,
}

/// At most this many formatters of a kind are kept.
pub(crate) const CACHED_FORMATTERS: usize = 256;

/// What the services made (formatters, collators), by the settings each was
/// made from, shared by every connector of the process: a connector formats
/// or compares many values with few settings. Bounded: past `limit` it starts
/// again, so a connector asking for ever new settings cannot grow it.
pub(crate) struct Made<K, V> {
    limit: usize,
    made: LazyLock<Mutex<HashMap<K, Arc<V>>>>,
}

impl<K: Eq + std::hash::Hash, V> Made<K, V> {
    pub(crate) const fn new(limit: usize) -> Self {
        Made {
            limit,
            made: LazyLock::new(Default::default),
        }
    }

    /// The value made from `key`, made by `make` if it is not kept. (Made
    /// outside the lock: two callers may both make it; one is kept.)
    pub(crate) fn get<E>(&self, key: K, make: impl FnOnce() -> Result<V, E>) -> Result<Arc<V>, E> {
        let kept = self
            .made
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(value) = kept {
            return Ok(value);
        }
        let value = Arc::new(make()?);
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        if made.len() >= self.limit {
            made.clear();
        }
        made.insert(key, value.clone());
        Ok(value)
    }
}

static DATE_FORMATTERS: Made<(String, DateOptions), DateFormatter> = Made::new(CACHED_FORMATTERS);

/// Milliseconds of 400 Gregorian years (146,097 days): the calendar, weekdays
/// included, repeats after them.
const GREGORIAN_CYCLE_MS: i64 = 146_097 * 86_400_000;
/// About the years 8000 and -8000: inside jiff's -9999..=9999.
const JIFF_EDGE_MS: (i64, i64) = (-314_600_000_000_000, 190_000_000_000_000);

/// `millis` moved by whole 400-year cycles to an instant jiff holds (a
/// JavaScript date reaches the year 275760, jiff the year 9999), and how
/// many cycles it moved: its year is that many 400s from the one written.
/// (Time zones keep their last rule there, as far away.)
fn within_jiff(millis: i64) -> (i64, i64) {
    let (low, high) = JIFF_EDGE_MS;
    if millis > high {
        let cycles = (millis - high) / GREGORIAN_CYCLE_MS + 1;
        (millis - cycles * GREGORIAN_CYCLE_MS, cycles)
    } else if millis < low {
        let cycles = (low - millis) / GREGORIAN_CYCLE_MS + 1;
        (millis + cycles * GREGORIAN_CYCLE_MS, cycles)
    } else {
        (millis, 0)
    }
}

fn format_date(request: &DateRequest) -> Result<Value, IntlError> {
    let locale = locale(request.locale.as_deref())?;
    let zone_name = request.time_zone.as_deref().unwrap_or("UTC");
    let zone = jiff::tz::db()
        .get(zone_name)
        .map_err(|_| IntlError::TimeZone(zone_name.to_owned()))?;
    if !request.time.is_finite() || request.time.abs() > 8.64e15 {
        return Err(IntlError::Time);
    }
    let (millis, cycles) = within_jiff(request.time.trunc() as i64);
    let zoned = jiff::Timestamp::from_millisecond(millis)
        .map_err(|_| IntlError::Time)?
        .to_zoned(zone.clone());
    let input = zoned_input(&zoned, &canonical_zone(zone_name, &zone))?;

    let key = (locale.to_string(), request.options.clone());
    let formatter = DATE_FORMATTERS.get(key, || date_formatter(&locale, &request.options))?;
    let mut parts = match &formatter.whole {
        Some(whole) => whole.parts(&input)?,
        None => parts_of(&formatter.formatter, &input)?,
    };
    if let Some(split) = &formatter.split {
        let text = |formatter: &Formatter| formatter.format(&input).write_to_string().into_owned();
        let (date_first, glue) = glue(
            &text(&formatter.formatter),
            &text(&split.promoted_date),
            &text(&split.time),
        );
        let period = split.period.parts(&input)?;
        let time = parts_of(&split.time, &input)?;
        let (first, second) = if date_first {
            (period, time)
        } else {
            (time, period)
        };
        parts = Parts::default();
        parts.parts.extend(first.parts);
        parts.push("literal", &glue);
        parts.parts.extend(second.parts);
    }
    unpad_numeric_fields(&mut parts, &locale, &request.options);
    // ICU4X writes the era of a year under 1000 unasked ("150 AD"); V8's
    // ICU does not write it for a year of the common era.
    if request.options.era.is_none() && zoned.year() >= 1 {
        parts.drop_era();
    }
    if cycles > 0 {
        parts.add_to_year(400 * cycles);
    }
    if formatter.pad_hour {
        parts.pad("hour");
    }
    if formatter.unpad_hour {
        parts.unpad("hour");
    }
    if formatter.midnight_as_24 {
        parts.midnight_as_24();
    }
    cldr48_zone_names(&mut parts, &locale);
    if formatter.whole.is_none() && fr_hour_alone(&locale, &request.options, formatter.hour_cycle) {
        parts.literal_after("hour", " h");
    }
    Ok(json!({
        "locale": locale.to_string(),
        "timeZone": canonical_zone(zone_name, &zone),
        "hourCycle": formatter.hour_cycle,
        "fields": formatter.fields,
        "parts": parts.finish(),
    }))
}

/// Fields a locale writes without a leading zero when ECMA-402 asks for them
/// `numeric`: ICU4C's skeleton match (what V8 uses) picks CLDR's
/// `availableFormats` (de `yMd` = `d.M.y`, ja `y/M/d`, es `Hms` = `H:mm:ss`),
/// where ICU4X's semantic skeletons give the padded `dd.MM.y`, `y/MM/dd`,
/// `HH:mm:ss`. es's `timeFormats` are unpadded too (`H:mm`, `H:mm:ss`), which
/// ICU4X's time-style patterns for es are not (2.3 and 2.4 alike), so an es
/// `timeStyle` unpads its hour. Checked by tests/intl.rs against Node.
fn unpadded_fields(locale: &Locale) -> &'static [&'static str] {
    match locale.id.language.as_str() {
        "de" | "ja" => &["day", "month"],
        "es" => &["hour"],
        _ => &[],
    }
}

fn unpad_numeric_fields(parts: &mut Parts, locale: &Locale, options: &DateOptions) {
    if options.date_style.is_some() || options.time_style.is_some() {
        return;
    }
    for field in unpadded_fields(locale) {
        let requested = match *field {
            "day" => options.day.as_deref(),
            "month" => options.month.as_deref(),
            _ => options.hour.as_deref(),
        };
        if requested == Some("numeric") {
            parts.unpad(field);
        }
    }
}

/// Whether V8 writes the hour of these options without its leading zero
/// where ICU4X's pattern pads it (`HH`). V8 asks ICU4C's pattern generator
/// for the skeleton of the options with `UDATPG_MATCH_HOUR_FIELD_LENGTH`: when
/// no `availableFormats` skeleton matches exactly (a `2-digit` minute, `mm`,
/// against CLDR's `Hm`), the generator gives the hour the requested length,
/// one digit (`H:mm`, as ICU4J's own test has de `MMMddHmm` → `14. Okt 8:58`).
/// An exact match (`numeric` minute, or a `numeric` second), a zone name, a
/// style, or an hour cycle other than the locale's own (en-US with `hour12:
/// false`, which V8 formats from a rewritten pattern) keep the padded hour.
/// Checked case by case against Node by tests/intl.rs.
fn hour_unpadded(options: &DateOptions, cycle: Option<&str>, default_cycle: Option<&str>) -> bool {
    options.date_style.is_none()
        && options.time_style.is_none()
        && options.hour.as_deref() == Some("numeric")
        && options.minute.as_deref() == Some("2-digit")
        && matches!(options.second.as_deref(), None | Some("2-digit"))
        && options.time_zone_name.is_none()
        && cycle == default_cycle
}

/// Whether these options ask fr for a 24-hour hour without minutes, which
/// CLDR writes `HH 'h'` (fr availableFormats `H`, what ICU4C matches) and
/// ICU4X's fr data `HH` (2.3, CLDR 48.2, and 2.4 alike): the host adds the ` h`.
fn fr_hour_alone(locale: &Locale, options: &DateOptions, cycle: Option<&str>) -> bool {
    locale.id.language.as_str() == "fr"
        && options.date_style.is_none()
        && options.time_style.is_none()
        && options.hour.is_some()
        && options.minute.is_none()
        && options.second.is_none()
        && options.fractional_second_digits.is_none()
        && matches!(cycle, Some("h23" | "h24"))
}

/// Localized offsets (`GMT-5`) as ICU 78 (CLDR 48, Node 20's) writes them,
/// where ICU4X writes them otherwise:
/// - fr's hourFormat is `+HH:mm;−HH:mm`: its minus is U+2212, but ICU4X
///   writes an offset's sign with the locale's number symbols (U+002D);
/// - pt's gmtFormat is `GMT{0}` in CLDR 48 and `{0} GMT` in CLDR 49, which
///   ICU4X 2.4's data has (ICU4X 2.3, CLDR 48.2, writes `GMT-5`).
fn cldr48_zone_names(parts: &mut Parts, locale: &Locale) {
    let language = locale.id.language.as_str();
    if language != "fr" && language != "pt" {
        return;
    }
    for (kind, value) in &mut parts.parts {
        if *kind != "timeZoneName" {
            continue;
        }
        if language == "fr"
            && let Some(offset) = value.strip_prefix("UTC-")
        {
            *value = format!("UTC\u{2212}{offset}");
        } else if language == "pt"
            && let Some(offset) = value.strip_suffix(" GMT")
            && offset.starts_with(['+', '-'])
        {
            *value = format!("GMT{offset}");
        }
    }
}

/// [`unpadded_fields`] in a pattern's resolved widths.
fn unpad_resolved(fields: &mut Value, locale: &Locale, options: &DateOptions) {
    for field in unpadded_fields(locale) {
        let requested = match *field {
            "day" => options.day.as_deref(),
            "month" => options.month.as_deref(),
            _ => options.hour.as_deref(),
        };
        if requested == Some("numeric")
            && let Some(width) = fields.get_mut(*field)
            && width == "2-digit"
        {
            *width = Value::from("numeric");
        }
    }
}

fn parts_of(
    formatter: &Formatter,
    input: &ZonedDateTime<Gregorian, icu_time::TimeZoneInfo<icu_time::zone::models::AtTime>>,
) -> Result<Parts, IntlError> {
    let mut parts = Parts::default();
    formatter
        .format(input)
        .write_to_parts(&mut parts)
        .map_err(|_| IntlError::Unsupported("formatting failed".to_owned()))?;
    Ok(parts)
}

/// A year, a month, or both, beside a time or zone: ICU4X's field sets
/// cannot pair a calendar period with a time (its field bag promotes the date
/// to year-month-day, icu_datetime's TODO #8531), where ICU4C's pattern
/// generator formats each with its own skeleton and joins them with the
/// locale's dateTimeFormat. So the two are formatted apart and joined with the
/// glue of the promoted pattern ([`glue`]).
struct PeriodBesideTime {
    period: Piece,
    time: Formatter,
    /// The promoted pattern's date alone, to find its glue.
    promoted_date: Formatter,
}

fn is_period_beside_time(options: &DateOptions) -> bool {
    options.date_style.is_none()
        && options.time_style.is_none()
        && options.day.is_none()
        && options.weekday.is_none()
        && (options.era.is_some() || options.year.is_some() || options.month.is_some())
        && (options.hour.is_some()
            || options.minute.is_some()
            || options.second.is_some()
            || options.fractional_second_digits.is_some()
            || options.time_zone_name.is_some())
}

/// The text joining a date and a time in `combined` (the promoted pattern's
/// output), given the date and the time each formatted alone, and whether the
/// date comes first; a space when `combined` is not the two joined.
fn glue(combined: &str, date: &str, time: &str) -> (bool, String) {
    if let Some(rest) = combined.strip_prefix(date)
        && let Some(glue) = rest.strip_suffix(time)
    {
        return (true, glue.to_owned());
    }
    if let Some(rest) = combined.strip_prefix(time)
        && let Some(glue) = rest.strip_suffix(date)
    {
        return (false, glue.to_owned());
    }
    (true, " ".to_owned())
}

/// The zone's name as `resolvedOptions().timeZone` gives it: `UTC` for the
/// UTC aliases, else the tz database's spelling.
fn canonical_zone(requested: &str, zone: &jiff::tz::TimeZone) -> String {
    let name = zone.iana_name().unwrap_or(requested);
    match name {
        "UTC" | "Etc/UTC" | "Etc/UCT" | "UCT" | "Etc/Universal" | "Universal" | "Etc/Zulu"
        | "Zulu" | "Etc/GMT" | "GMT" | "Etc/GMT0" | "Etc/GMT+0" | "Etc/GMT-0" | "GMT0"
        | "GMT+0" | "GMT-0" | "Etc/Greenwich" | "Greenwich" => "UTC".to_owned(),
        name => name.to_owned(),
    }
}

fn zoned_input(
    zoned: &jiff::Zoned,
    zone_name: &str,
) -> Result<
    ZonedDateTime<Gregorian, icu_time::TimeZoneInfo<icu_time::zone::models::AtTime>>,
    IntlError,
> {
    let date = Date::try_new_gregorian(zoned.year() as i32, zoned.month() as u8, zoned.day() as u8)
        .map_err(|_| IntlError::Time)?;
    let time = Time::try_new(
        zoned.hour() as u8,
        zoned.minute() as u8,
        zoned.second() as u8,
        zoned.subsec_nanosecond() as u32,
    )
    .map_err(|_| IntlError::Time)?;
    let offset =
        UtcOffset::try_from_seconds(zoned.offset().seconds()).map_err(|_| IntlError::Time)?;
    let zone = TimeZone::from_iana_id(zone_name)
        .with_offset(Some(offset))
        .at_date_time(DateTime { date, time });
    Ok(ZonedDateTime { date, time, zone })
}

fn date_formatter(locale: &Locale, options: &DateOptions) -> Result<DateFormatter, IntlError> {
    let mut prefs = DateTimeFormatterPreferences::from(locale);
    let requested_cycle = requested_cycle(locale, options)?;
    if let Some(cycle) = requested_cycle {
        prefs.hour_cycle = Some(match cycle {
            "h11" => HourCycle::H11,
            "h12" => HourCycle::H12,
            _ => HourCycle::H23,
        });
    }
    let builder = if options.date_style.is_some() || options.time_style.is_some() {
        styles(options)?
    } else {
        let mut builder = field_bag(options)?.to_field_set_builder();
        // A date without month or weekday beside a time: ICU4C's pattern
        // generator joins the two with the short dateTimeFormat (the length
        // the date's month and weekday widths give; none: short), where
        // ICU4X's default length would take the medium one (fr `{1}, {0}`).
        if builder.length.is_none() && builder.date_fields.is_some() && options.hour.is_some() {
            builder.length = Some(Length::Short);
        }
        builder
    };
    let field_set = builder
        .clone()
        .build_composite()
        .map_err(|e| IntlError::Unsupported(format!("{e:?}")))?;
    let forced_cycle = prefs.hour_cycle.is_some();
    let formatter = FixedCalendarDateTimeFormatter::try_new(prefs, field_set)
        .map_err(|e| IntlError::Unsupported(one_line(&e.to_string())))?;
    let make = |options: &DateOptions| -> Result<Formatter, IntlError> {
        let field_set = field_bag(options)?
            .to_field_set_builder()
            .build_composite()
            .map_err(|e| IntlError::Unsupported(format!("{e:?}")))?;
        Formatter::try_new(prefs, field_set)
            .map_err(|e| IntlError::Unsupported(one_line(&e.to_string())))
    };
    let abbreviated = abbreviated_date(locale, options);
    let split = if is_period_beside_time(options) || (abbreviated.is_some() && has_time(options)) {
        let period = DateOptions {
            hour: None,
            minute: None,
            second: None,
            fractional_second_digits: None,
            time_zone_name: None,
            ..options.clone()
        };
        let time = DateOptions {
            era: None,
            year: None,
            month: None,
            weekday: None,
            day: None,
            ..options.clone()
        };
        let mut promoted_date = builder.clone();
        promoted_date.time_precision = None;
        promoted_date.zone_style = None;
        let promoted_date = promoted_date
            .build_composite()
            .map_err(|e| IntlError::Unsupported(format!("{e:?}")))?;
        Some(PeriodBesideTime {
            period: match &abbreviated {
                Some(pattern) => Piece::Cldr(CldrFormat::new(prefs, pattern)?),
                None => Piece::Icu(make(&period)?),
            },
            time: make(&time)?,
            promoted_date: Formatter::try_new(prefs, promoted_date)
                .map_err(|e| IntlError::Unsupported(one_line(&e.to_string())))?,
        })
    } else {
        None
    };
    // The cycle of the hour alone, for a weekday beside a time.
    let hour_alone = DateOptions {
        hour: options.hour.clone(),
        hour12: options.hour12,
        hour_cycle: options.hour_cycle.clone(),
        ..DateOptions::default()
    };
    let weekday_time = match (&split, &abbreviated) {
        (None, None) if options.weekday.is_some() && options.hour.is_some() => {
            let cycle = hour_cycle(&make(&hour_alone)?.pattern_text());
            weekday_time_pattern(locale, options, cycle)
        }
        _ => None,
    };
    // Its pattern writes the hour as CLDR does: no unpadding.
    let cldr_hour = weekday_time.is_some();
    let whole = match (&split, abbreviated, weekday_time) {
        (None, Some(pattern), _) => Some(pattern),
        (None, None, Some(pattern)) => Some(pattern),
        (None, None, None) => {
            cldr_time_pattern(locale, options, hour_cycle(&formatter.pattern_text()))
        }
        (Some(_), _, _) => None,
    }
    .map(|pattern| CldrFormat::new(prefs, &pattern))
    .transpose()?;
    let pattern = match (&whole, &split) {
        (Some(whole), _) => whole.text.clone(),
        (None, Some(split)) => format!(
            "{} {}",
            split.period.pattern_text(),
            split.time.pattern_text()
        ),
        (None, None) => formatter.pattern_text(),
    };
    let cycle = hour_cycle(&pattern);
    let midnight_as_24 = requested_cycle == Some("h24") && cycle == Some("h23");
    // The locale's own pattern for these fields (only built when an option overrides its cycle).
    let default_pattern = if forced_cycle {
        let default = FixedCalendarDateTimeFormatter::try_new(locale.into(), field_set)
            .map_err(|e| IntlError::Unsupported(one_line(&e.to_string())))?;
        default.pattern_text()
    } else {
        pattern.clone()
    };
    let default_cycle = hour_cycle(&default_pattern);
    let unpad_hour = !cldr_hour
        && (hour_unpadded(options, cycle, default_cycle)
            || (options.time_style.is_some() && unpadded_fields(locale).contains(&"hour")));
    let mut fields = pattern_fields(&pattern);
    if options.date_style.is_none() && options.time_style.is_none() {
        unpad_resolved(&mut fields, locale, options);
    }
    if unpad_hour && let Some(width) = fields.get_mut("hour") {
        *width = Value::from("numeric");
    }
    let pad_hour = !unpad_hour && style_pads_hour(options, cycle, &pattern, &default_pattern);
    Ok(DateFormatter {
        formatter,
        whole,
        split,
        hour_cycle: if midnight_as_24 { Some("h24") } else { cycle },
        fields,
        unpad_hour,
        pad_hour,
        midnight_as_24,
    })
}

/// Whether a `timeStyle` in another cycle than the locale's writes its hour
/// with two digits where ICU4X's pattern has one. V8 rewrites the style's
/// pattern for the cycle by asking ICU4C's pattern generator for its skeleton
/// with the hour letter replaced, matching the hour's length: the locale's
/// `HH:mm` asked in h11 is `KK:mm a` (de `00:30 AM`, `01:05 PM`), where
/// ICU4X's h11 pattern is `K:mm a` (`0:30 AM`). A one-letter style hour (es,
/// ja `H:mm`, en-US `h:mm a`) gives what ICU4X gives.
fn style_pads_hour(
    options: &DateOptions,
    cycle: Option<&str>,
    pattern: &str,
    default_pattern: &str,
) -> bool {
    let hour_width = |pattern: &str| pattern_fields(pattern).get("hour").cloned();
    options.time_style.is_some()
        && cycle != hour_cycle(default_pattern)
        && hour_width(default_pattern) == Some(Value::from("2-digit"))
        && hour_width(pattern) == Some(Value::from("numeric"))
}

/// The hour cycle the options ask for, as ECMA-402 (2023, Node 20's V8)
/// resolves it: `hour12` picks by the locale's own cycle, `true` h11 where
/// that is h11 or h23 (de, en-GB, ja: `0:30 AM`) and h12 where it is h12
/// (en-US: `12:30 AM`), `false` h23 or h24 likewise (en-US: `24:30`); else
/// `hourCycle`; else none (the locale's). The locale's cycle is that of its
/// pattern for an hour alone.
fn requested_cycle(
    locale: &Locale,
    options: &DateOptions,
) -> Result<Option<&'static str>, IntlError> {
    let Some(twelve) = options.hour12 else {
        return match options.hour_cycle.as_deref() {
            None => Ok(None),
            Some("h11") => Ok(Some("h11")),
            Some("h12") => Ok(Some("h12")),
            Some("h23") => Ok(Some("h23")),
            Some("h24") => Ok(Some("h24")),
            Some(other) => Err(IntlError::Unsupported(format!("hourCycle {other:?}"))),
        };
    };
    let hour_alone = DateOptions {
        hour: Some("numeric".to_owned()),
        ..DateOptions::default()
    };
    let field_set = field_bag(&hour_alone)?
        .to_field_set_builder()
        .build_composite()
        .map_err(|e| IntlError::Unsupported(format!("{e:?}")))?;
    let own = FixedCalendarDateTimeFormatter::try_new(locale.into(), field_set)
        .map_err(|e| IntlError::Unsupported(one_line(&e.to_string())))?;
    let zero_based = matches!(hour_cycle(&own.pattern_text()), Some("h11" | "h23"));
    Ok(Some(match (twelve, zero_based) {
        (true, true) => "h11",
        (true, false) => "h12",
        (false, true) => "h23",
        (false, false) => "h24",
    }))
}

/// A date or time ICU4X formats ([`Formatter`]) or the host formats with a
/// CLDR pattern ([`CldrFormat`]).
enum Piece {
    Icu(Formatter),
    Cldr(CldrFormat),
}

impl Piece {
    fn parts(
        &self,
        input: &ZonedDateTime<Gregorian, icu_time::TimeZoneInfo<icu_time::zone::models::AtTime>>,
    ) -> Result<Parts, IntlError> {
        match self {
            Piece::Icu(formatter) => parts_of(formatter, input),
            Piece::Cldr(format) => format.parts(input),
        }
    }

    fn pattern_text(&self) -> String {
        match self {
            Piece::Icu(formatter) => formatter.pattern_text(),
            Piece::Cldr(format) => format.text.clone(),
        }
    }
}

/// A CLDR 48 `availableFormats` pattern ([`date_patterns`]), its fields'
/// widths adjusted to the options as ICU4C's pattern generator adjusts them,
/// formatted with ICU4X's names for its fields.
struct CldrFormat {
    names: FixedCalendarDateTimeNames<Gregorian, CompositeFieldSet>,
    pattern: DateTimePattern,
    text: String,
}

impl CldrFormat {
    fn new(prefs: DateTimeFormatterPreferences, text: &str) -> Result<Self, IntlError> {
        let unsupported = |e: &dyn fmt::Debug| IntlError::Unsupported(format!("{text:?}: {e:?}"));
        let pattern: DateTimePattern = text.parse().map_err(|e| unsupported(&e))?;
        let mut names = FixedCalendarDateTimeNames::try_new(prefs).map_err(|e| unsupported(&e))?;
        names
            .include_for_pattern(&pattern)
            .map_err(|e| unsupported(&e))?;
        Ok(CldrFormat {
            names,
            pattern,
            text: text.to_owned(),
        })
    }

    fn parts(
        &self,
        input: &ZonedDateTime<Gregorian, icu_time::TimeZoneInfo<icu_time::zone::models::AtTime>>,
    ) -> Result<Parts, IntlError> {
        let mut parts = Parts::default();
        self.names
            .with_pattern_unchecked(&self.pattern)
            .format(input)
            .try_write_to_parts(&mut parts)
            .map_err(|_| IntlError::Unsupported("formatting failed".to_owned()))?
            .map_err(|e| IntlError::Unsupported(format!("{e:?}")))?;
        Ok(parts)
    }
}

/// CLDR 48's `availableFormats` pattern of `skeleton` in `locale` ([`cldr_row`]);
/// `None` where CLDR has none.
fn cldr_pattern(locale: &Locale, skeleton: &str) -> Option<&'static str> {
    let column = date_patterns::SKELETONS
        .iter()
        .position(|s| *s == skeleton)?;
    let pattern = cldr_row(locale)?.1[column];
    (!pattern.is_empty()).then_some(pattern)
}

/// The row of `locale` in [`date_patterns`], else that of its tag less the
/// last subtag, down to `und` (which the generated table always has).
fn cldr_row(locale: &Locale) -> Option<&'static date_patterns::Row> {
    let mut tag = locale.to_string();
    loop {
        if let Ok(row) = date_patterns::PATTERNS.binary_search_by(|(l, ..)| (*l).cmp(tag.as_str()))
        {
            return Some(&date_patterns::PATTERNS[row]);
        }
        match tag.rfind('-') {
            Some(cut) => tag.truncate(cut),
            None if tag != "und" => tag = "und".to_owned(),
            None => return None,
        }
    }
}

/// `pattern` with each run of a field letter outside quotes replaced by what
/// `replace` gives for its letter and length (`None`: kept).
fn adjust_pattern(pattern: &str, replace: impl Fn(char, usize) -> Option<String>) -> String {
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut quoted = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            quoted = !quoted;
            out.push(c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while !quoted && c.is_ascii_alphabetic() && i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        match (!quoted && c.is_ascii_alphabetic())
            .then(|| replace(c, n))
            .flatten()
        {
            Some(text) => out.push_str(&text),
            None => out.extend(&chars[i..i + n]),
        }
        i += n;
    }
    out
}

/// The weekday's letters for its requested width, in place of a pattern's
/// `E`s or `c`s (`letter`, kept: `c` is the stand-alone form).
fn weekday_letters(options: &DateOptions, letter: char, n: usize) -> String {
    let n = match options.weekday.as_deref() {
        Some("long") => 4,
        Some("narrow") => 5,
        _ => n.min(3),
    };
    letter.to_string().repeat(n)
}

/// The hour's letters for the hour cycle, at least two for a `2-digit` hour,
/// in place of a pattern's hour (ICU4C's generator widens a field asked longer).
fn hour_letters(options: &DateOptions, cycle: &str, n: usize) -> String {
    let letter = match cycle {
        "h11" => "K",
        "h12" => "h",
        "h24" => "k",
        _ => "H",
    };
    let n = if options.hour.as_deref() == Some("2-digit") {
        n.max(2)
    } else {
        n
    };
    letter.repeat(n)
}

fn has_time(options: &DateOptions) -> bool {
    options.hour.is_some()
        || options.minute.is_some()
        || options.second.is_some()
        || options.fractional_second_digits.is_some()
        || options.time_zone_name.is_some()
}

/// A weekday with a numeric year, a `short` month and a numeric day: V8 has
/// ICU4C's pattern generator match CLDR's skeleton `yMMMEd` (de `E, d. MMM y`,
/// ja `y年M月d日(E)`), where ICU4X's field bag maps the options to one field
/// set (YMDE) whose single length applies to every field, and no length gives
/// an abbreviated month beside an abbreviated weekday in some locales (de and
/// ja medium `E, dd.MM.y`, `y/MM/dd(E)`; long `EEEE, d. MMMM y`). The date is
/// CLDR 48's `yMMMEd` with the weekday's width; beside a time it is joined to
/// it as a period is ([`PeriodBesideTime`]).
fn abbreviated_date(locale: &Locale, options: &DateOptions) -> Option<String> {
    let asked = options.date_style.is_none()
        && options.time_style.is_none()
        && options.era.is_none()
        && options.weekday.is_some()
        && options.year.as_deref() == Some("numeric")
        && options.month.as_deref() == Some("short")
        && options.day.as_deref() == Some("numeric");
    if !asked {
        return None;
    }
    let pattern = cldr_pattern(locale, "yMMMEd")?;
    Some(adjust_pattern(pattern, |c, n| {
        (c == 'E').then(|| weekday_letters(options, c, n))
    }))
}

/// An hour alone beside a zone name, which V8 has ICU4C's pattern generator
/// match to CLDR's `availableFormats` skeleton `Hv` or `hv` (en-GB `HH'h' v`,
/// es `H 'h' v`, de `HH 'Uhr' v`, pt `HH'h', v`), where ICU4X's semantic
/// skeletons write the hour and the zone apart (`08 GMT-5`): CLDR 48's
/// pattern, its zone at the requested width, its hour in the formatter's cycle.
fn cldr_time_pattern(
    locale: &Locale,
    options: &DateOptions,
    cycle: Option<&str>,
) -> Option<String> {
    let cycle = cycle?;
    if options.date_style.is_some()
        || options.time_style.is_some()
        || options.era.is_some()
        || options.year.is_some()
        || options.month.is_some()
        || options.day.is_some()
        || options.fractional_second_digits.is_some()
        || options.hour.is_none()
    {
        return None;
    }
    let twelve = matches!(cycle, "h11" | "h12");
    let hour = if twelve { "h" } else { "H" };
    if options.weekday.is_some()
        || options.time_zone_name.is_none()
        || options.minute.is_some()
        || options.second.is_some()
    {
        return None;
    }
    let skeleton = format!("{hour}v");
    let pattern = cldr_pattern(locale, &skeleton)?;
    let zone = match options.time_zone_name.as_deref() {
        Some("long") => "zzzz",
        Some("shortOffset") => "O",
        Some("longOffset") => "OOOO",
        Some("shortGeneric") => "v",
        Some("longGeneric") => "vvvv",
        _ => "z",
    };
    Some(adjust_pattern(pattern, |c, n| match c {
        'h' | 'H' | 'k' | 'K' => Some(hour_letters(options, cycle, n)),
        'v' => Some(zone.to_owned()),
        _ => None,
    }))
}

/// A weekday beside a time of hours (and minutes, and seconds), no date, zone
/// or fraction. V8 asks ICU4C's pattern generator for the skeleton `Ej`,
/// `Ejm` or `Ejms` (`j` the hour cycle's letter), which CLDR's
/// `availableFormats` has for 12-hour cycles (en `Eh` = `E h a`, ja `Eh` =
/// `aK時 (E)`) and for 24-hour ones with minutes (en-GB `EHm` = `E HH:mm`, de
/// `E, HH:mm`, ja `H:mm (E)`): the generator writes that pattern, its weekday
/// at the requested width and its hour as the pattern writes it (the
/// skeleton's `H` is the requested numeric hour, so `HH` stays) unless asked
/// `2-digit`. CLDR 48 has no `EH` (tests/intl/date_patterns.js checks), and
/// `Eh` does not match it (its `h` brings a day period, a field not asked for),
/// so for a 24-hour hour alone the generator formats the weekday with CLDR's
/// `E` (`ccc`) and the hour with its `H` (de `HH 'Uhr'`, fr `HH 'h'`, ja `H時`)
/// and joins them with the short atTime dateTimeFormat (de `{1}, {0}`, fr and
/// ja `{1} {0}`): `Montag, 08 Uhr`. ICU4X 2.4's field bag writes these
/// options otherwise: a 12-hour hour with a day period for `{weekday, hour}`
/// in every locale (`Montag, 8 AM`), the hour without `HH`'s zero once the
/// host's [`hour_unpadded`] applies (`Mon 8:05`), the long atTime glue beside
/// a long weekday with an hour cycle option (`Monday at 8 AM`). `cycle` is that of
/// the hour alone (the locale's, or hour12's or hourCycle's), which ICU4X
/// gets right.
fn weekday_time_pattern(
    locale: &Locale,
    options: &DateOptions,
    cycle: Option<&str>,
) -> Option<String> {
    let asked = options.date_style.is_none()
        && options.time_style.is_none()
        && options.weekday.is_some()
        && options.hour.is_some()
        && (options.minute.is_some() || options.second.is_none())
        && options.era.is_none()
        && options.year.is_none()
        && options.month.is_none()
        && options.day.is_none()
        && options.fractional_second_digits.is_none()
        && options.time_zone_name.is_none();
    let cycle = cycle.filter(|_| asked)?;
    let mut skeleton = String::from(if matches!(cycle, "h11" | "h12") {
        "Eh"
    } else {
        "EH"
    });
    if options.minute.is_some() {
        skeleton.push('m');
    }
    if options.second.is_some() {
        skeleton.push('s');
    }
    let adjust = |pattern: &str| {
        adjust_pattern(pattern, |c, n| match c {
            'E' | 'c' => Some(weekday_letters(options, c, n)),
            'h' | 'H' | 'k' | 'K' => Some(hour_letters(options, cycle, n)),
            _ => None,
        })
    };
    match cldr_pattern(locale, &skeleton) {
        Some(pattern) => Some(adjust(pattern)),
        None if skeleton == "EH" => {
            let (_, _, glue) = cldr_row(locale)?;
            let weekday = adjust(cldr_pattern(locale, "E")?);
            let hour = adjust(cldr_pattern(locale, "H")?);
            Some(glue.replace("{1}", &weekday).replace("{0}", &hour))
        }
        None => None,
    }
}

trait PatternText {
    fn pattern_text(&self) -> String;
}

impl PatternText for Formatter {
    /// The pattern of a formatted instant (the hour field is the same for every instant).
    fn pattern_text(&self) -> String {
        let noon = ZonedDateTime {
            date: Date::try_new_gregorian(2024, 1, 1).expect("a valid date"),
            time: Time::try_new(12, 0, 0, 0).expect("a valid time"),
            zone: TimeZone::from_iana_id("Etc/UTC")
                .with_offset(Some(UtcOffset::zero()))
                .at_date_time(DateTime {
                    date: Date::try_new_gregorian(2024, 1, 1).expect("a valid date"),
                    time: Time::try_new(12, 0, 0, 0).expect("a valid time"),
                }),
        };
        self.format(&noon).pattern().to_string()
    }
}

/// The hour cycle of a UTS 35 pattern: its hour field's letter, outside quotes.
fn hour_cycle(pattern: &str) -> Option<&'static str> {
    let mut quoted = false;
    for c in pattern.chars() {
        match c {
            '\'' => quoted = !quoted,
            'h' if !quoted => return Some("h12"),
            'H' if !quoted => return Some("h23"),
            'K' if !quoted => return Some("h11"),
            'k' if !quoted => return Some("h24"),
            _ => {}
        }
    }
    None
}

/// The fields of a UTS 35 pattern as ECMA-402 names them, with the widths
/// their letter counts mean (`MMM` a `short` month, `dd` a `2-digit` day).
fn pattern_fields(pattern: &str) -> Value {
    let mut fields = serde_json::Map::new();
    let mut quoted = false;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        i += n;
        if c == '\'' {
            quoted = !quoted;
            continue;
        }
        if quoted {
            continue;
        }
        let numeric = |n: usize| if n == 2 { "2-digit" } else { "numeric" };
        let text = |n: usize| match n {
            4 => "long",
            5 => "narrow",
            _ => "short",
        };
        let (name, width) = match c {
            'G' => ("era", text(n)),
            'y' => ("year", numeric(n)),
            'M' | 'L' if n <= 2 => ("month", numeric(n)),
            'M' | 'L' => ("month", text(n)),
            'd' => ("day", numeric(n)),
            'E' | 'c' | 'e' => ("weekday", text(n)),
            'h' | 'H' | 'k' | 'K' => ("hour", numeric(n)),
            'm' => ("minute", numeric(n)),
            's' => ("second", numeric(n)),
            'S' => {
                fields.insert("fractionalSecondDigits".to_owned(), Value::from(n));
                continue;
            }
            'z' => ("timeZoneName", if n == 4 { "long" } else { "short" }),
            'O' => (
                "timeZoneName",
                if n == 4 { "longOffset" } else { "shortOffset" },
            ),
            'v' => (
                "timeZoneName",
                if n == 4 {
                    "longGeneric"
                } else {
                    "shortGeneric"
                },
            ),
            _ => continue,
        };
        fields.insert(name.to_owned(), Value::from(width));
    }
    Value::Object(fields)
}

/// `dateStyle` / `timeStyle` as ICU4X field sets.
fn styles(options: &DateOptions) -> Result<FieldSetBuilder, IntlError> {
    let mut builder = FieldSetBuilder::new();
    let length = |style: &str| match style {
        "full" | "long" => Ok(Length::Long),
        "medium" => Ok(Length::Medium),
        "short" => Ok(Length::Short),
        other => Err(IntlError::Unsupported(format!("style {other:?}"))),
    };
    if let Some(style) = options.date_style.as_deref() {
        builder.length = Some(length(style)?);
        builder.date_fields = Some(if style == "full" {
            DateFields::YMDE
        } else {
            DateFields::YMD
        });
    }
    if let Some(style) = options.time_style.as_deref() {
        if builder.length.is_none() {
            builder.length = Some(length(style)?);
        }
        builder.time_precision = Some(if style == "short" {
            TimePrecision::Minute
        } else {
            TimePrecision::Second
        });
        builder.zone_style = match style {
            "full" => Some(ZoneStyle::SpecificLong),
            "long" => Some(ZoneStyle::SpecificShort),
            _ => None,
        };
    }
    if builder.date_fields == Some(DateFields::YMD)
        && options.date_style.as_deref() == Some("short")
    {
        builder.year_style = Some(YearStyle::Auto);
    }
    Ok(builder)
}

/// The individual field options as ICU4X's ECMA-402 field bag.
fn field_bag(options: &DateOptions) -> Result<DateTimeFieldBag, IntlError> {
    fn bad(name: &str, value: &str) -> IntlError {
        IntlError::Unsupported(format!("{name} {value:?}"))
    }
    let mut bag = DateTimeFieldBag::default();
    bag.weekday = match options.weekday.as_deref() {
        None => None,
        Some("long") => Some(field::Weekday::Long),
        Some("short") => Some(field::Weekday::Short),
        Some("narrow") => Some(field::Weekday::Narrow),
        Some(other) => return Err(bad("weekday", other)),
    };
    bag.era = match options.era.as_deref() {
        None => None,
        Some("long") => Some(field::Era::Long),
        Some("short") => Some(field::Era::Short),
        Some("narrow") => Some(field::Era::Narrow),
        Some(other) => return Err(bad("era", other)),
    };
    bag.year = match options.year.as_deref() {
        None => None,
        Some("numeric") => Some(field::Year::Numeric),
        Some("2-digit") => Some(field::Year::TwoDigit),
        Some(other) => return Err(bad("year", other)),
    };
    bag.month = match options.month.as_deref() {
        None => None,
        Some("numeric") => Some(field::Month::Numeric),
        Some("2-digit") => Some(field::Month::TwoDigit),
        Some("long") => Some(field::Month::Long),
        Some("short") => Some(field::Month::Short),
        Some("narrow") => Some(field::Month::Narrow),
        Some(other) => return Err(bad("month", other)),
    };
    bag.day = match options.day.as_deref() {
        None => None,
        Some("numeric") => Some(field::Day::Numeric),
        Some("2-digit") => Some(field::Day::TwoDigit),
        Some(other) => return Err(bad("day", other)),
    };
    bag.hour = match options.hour.as_deref() {
        None => None,
        Some("numeric") => Some(field::Hour::Numeric),
        Some("2-digit") => Some(field::Hour::TwoDigit),
        Some(other) => return Err(bad("hour", other)),
    };
    bag.minute = match options.minute.as_deref() {
        None => None,
        Some("numeric") => Some(field::Minute::Numeric),
        Some("2-digit") => Some(field::Minute::TwoDigit),
        Some(other) => return Err(bad("minute", other)),
    };
    bag.second = match options.second.as_deref() {
        None => None,
        Some("numeric") => Some(field::Second::Numeric),
        Some("2-digit") => Some(field::Second::TwoDigit),
        Some(other) => return Err(bad("second", other)),
    };
    bag.fractional_second_digits = match options.fractional_second_digits {
        None => None,
        Some(1) => Some(field::FractionalSecondDigits::F1),
        Some(2) => Some(field::FractionalSecondDigits::F2),
        Some(3) => Some(field::FractionalSecondDigits::F3),
        Some(other) => return Err(bad("fractionalSecondDigits", &other.to_string())),
    };
    bag.time_zone_name = match options.time_zone_name.as_deref() {
        None => None,
        Some("short") => Some(field::TimeZoneName::ShortSpecific),
        Some("long") => Some(field::TimeZoneName::LongSpecific),
        Some("shortOffset") => Some(field::TimeZoneName::ShortOffset),
        Some("longOffset") => Some(field::TimeZoneName::LongOffset),
        Some("shortGeneric") => Some(field::TimeZoneName::ShortGeneric),
        Some("longGeneric") => Some(field::TimeZoneName::LongGeneric),
        Some(other) => return Err(bad("timeZoneName", other)),
    };
    Ok(bag)
}

/// Collects formatted text as ECMA-402 parts: `[type, value]` pairs, text
/// outside any field a `literal`. A date field's digits stay that field; a
/// number's integer, group and fraction parts are each their own.
#[derive(Default)]
pub(crate) struct Parts {
    parts: Vec<(&'static str, String)>,
    /// The ECMA-402 types of the parts being written, innermost last.
    open: Vec<&'static str>,
}

impl Parts {
    pub(crate) fn push(&mut self, kind: &'static str, text: &str) {
        match self.parts.last_mut() {
            Some((last, value)) if *last == kind => value.push_str(text),
            _ => self.parts.push((kind, text.to_owned())),
        }
    }

    /// Puts `text` right after the first `kind` part, at the start of the
    /// literal that follows it, if one does.
    fn literal_after(&mut self, kind: &str, text: &str) {
        let Some(at) = self.parts.iter().position(|(part, _)| *part == kind) else {
            return;
        };
        match self.parts.get_mut(at + 1) {
            Some(("literal", value)) => value.insert_str(0, text),
            _ => self.parts.insert(at + 1, ("literal", text.to_owned())),
        }
    }

    /// Adds `years` to every full `year` part (one of more than two digits:
    /// a two-digit year's digits are the same 400 years on); for a date that
    /// [`within_jiff`] moved. An era's year counts back, so the same sum holds.
    fn add_to_year(&mut self, years: i64) {
        for (part, value) in &mut self.parts {
            if *part == "year"
                && value.len() > 2
                && let Ok(year) = value.parse::<i64>()
            {
                *value = (year + years).to_string();
            }
        }
    }

    /// Drops every `era` part, with the white space that set it apart.
    fn drop_era(&mut self) {
        while let Some(at) = self.parts.iter().position(|(part, _)| *part == "era") {
            self.parts.remove(at);
            let blank = |parts: &Vec<(&str, String)>, i: usize| matches!(parts.get(i), Some(("literal", text)) if text.trim().is_empty());
            if at > 0 && blank(&self.parts, at - 1) {
                self.parts.remove(at - 1);
            } else if blank(&self.parts, at) {
                self.parts.remove(at);
            }
        }
    }

    /// Drops the leading zero of every `kind` part of two digits.
    fn unpad(&mut self, kind: &str) {
        for (part, value) in &mut self.parts {
            if *part == kind && value.len() == 2 && value.starts_with('0') {
                value.remove(0);
            }
        }
    }

    /// Gives every one-digit `kind` part a leading zero.
    fn pad(&mut self, kind: &str) {
        for (part, value) in &mut self.parts {
            if *part == kind && value.len() == 1 {
                value.insert(0, '0');
            }
        }
    }

    /// Writes an hour 0 (`0`, `00`) as 24, the h24 cycle's (`k`) midnight.
    fn midnight_as_24(&mut self) {
        for (part, value) in &mut self.parts {
            if *part == "hour" && !value.is_empty() && value.chars().all(|c| c == '0') {
                *value = "24".to_owned();
            }
        }
    }

    pub(crate) fn finish(self) -> Value {
        Value::Array(
            self.parts
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(kind, value)| json!([kind, value]))
                .collect(),
        )
    }
}

impl fmt::Write for Parts {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let kind = self.open.last().copied().unwrap_or("literal");
        self.push(kind, text);
        Ok(())
    }
}

impl PartsWrite for Parts {
    type SubPartsWrite = Parts;

    fn with_part(
        &mut self,
        part: Part,
        mut f: impl FnMut(&mut Self::SubPartsWrite) -> fmt::Result,
    ) -> fmt::Result {
        let inside_date_field = self
            .open
            .last()
            .is_some_and(|kind| number::ecma_part_names().all(|n| n != *kind));
        let kind = match ecma_part(part) {
            Some(kind) if !inside_date_field => kind,
            // A number inside a date field (a year's digits) is that field.
            _ => return f(self),
        };
        // Each field starts its own part, even right after one of its type.
        self.parts.push((kind, String::new()));
        self.open.push(kind);
        let result = f(self);
        self.open.pop();
        result
    }
}

/// The ECMA-402 part type of an ICU4X part (`None`: not a field, a literal).
fn ecma_part(part: Part) -> Option<&'static str> {
    use icu_datetime::parts;
    Some(match part {
        p if p == parts::ERA => "era",
        p if p == parts::YEAR => "year",
        p if p == parts::RELATED_YEAR => "relatedYear",
        p if p == parts::YEAR_NAME => "yearName",
        p if p == parts::MONTH => "month",
        p if p == parts::DAY => "day",
        p if p == parts::WEEKDAY => "weekday",
        p if p == parts::DAY_PERIOD => "dayPeriod",
        p if p == parts::HOUR => "hour",
        p if p == parts::MINUTE => "minute",
        p if p == parts::SECOND => "second",
        p if p == parts::TIME_ZONE_NAME => "timeZoneName",
        p => return number::ecma_part(p),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_made_is_kept_and_bounded() {
        let made: Made<u32, String> = Made::new(3);
        let make = |n: u32| move || Ok::<_, ()>(n.to_string());
        let first = made.get(1, make(1)).unwrap();
        // Kept: the same value again, not made anew.
        assert!(Arc::ptr_eq(&first, &made.get(1, || Err(())).unwrap()));
        // A failure is not kept.
        assert_eq!(made.get(2, || Err("no")), Err("no"));
        assert_eq!(*made.get(2, make(2)).unwrap(), "2");
        made.get(3, make(3)).unwrap();
        assert_eq!(made.made.lock().unwrap().len(), 3);
        // Past the limit it starts again.
        made.get(4, make(4)).unwrap();
        assert_eq!(made.made.lock().unwrap().keys().collect::<Vec<_>>(), [&4]);
        assert_eq!(made.get(1, || Err(())), Err(()));
    }

    #[test]
    fn pattern_fields_and_hour_cycle_read_the_pattern_outside_quotes() {
        assert_eq!(
            pattern_fields("EEEE, d 'de' MMMM 'h' y, HH:mm:ss zzzz"),
            json!({"weekday": "long", "day": "numeric", "month": "long", "year": "numeric",
                   "hour": "2-digit", "minute": "2-digit", "second": "2-digit", "timeZoneName": "long"})
        );
        assert_eq!(hour_cycle("'h' H:mm"), Some("h23"));
        assert_eq!(hour_cycle("h:mm a"), Some("h12"));
        assert_eq!(hour_cycle("aK:mm"), Some("h11"));
        assert_eq!(hour_cycle("d.M.y"), None);
    }

    #[test]
    fn cldr_patterns_are_found_through_the_tag_and_take_the_options_widths() {
        let de_at = locale(Some("de-AT")).unwrap();
        assert_eq!(cldr_pattern(&de_at, "yMMMEd"), Some("E, d. MMM y"));
        assert_eq!(cldr_pattern(&de_at, "EH"), None);
        assert_eq!(
            cldr_pattern(&locale(Some("xx-YY")).unwrap(), "Hv"),
            Some("HH'h' v")
        );
        let options = DateOptions {
            weekday: Some("long".to_owned()),
            hour: Some("2-digit".to_owned()),
            time_zone_name: Some("long".to_owned()),
            ..DateOptions::default()
        };
        assert_eq!(
            cldr_time_pattern(&locale(Some("es-ES")).unwrap(), &options, Some("h23")),
            None
        );
        let options = DateOptions {
            weekday: None,
            ..options
        };
        assert_eq!(
            cldr_time_pattern(&locale(Some("es-ES")).unwrap(), &options, Some("h23")).as_deref(),
            Some("HH 'h' zzzz")
        );
        assert_eq!(
            cldr_time_pattern(&locale(Some("ja-JP")).unwrap(), &options, Some("h12")).as_deref(),
            Some("ahh時 zzzz")
        );
    }

    #[test]
    fn a_weekday_beside_a_time_takes_cldrs_pattern_or_its_e_and_h_joined() {
        let at = |tag: &str, options: &DateOptions, cycle: &str| {
            weekday_time_pattern(&locale(Some(tag)).unwrap(), options, Some(cycle))
        };
        let long_hour = DateOptions {
            weekday: Some("long".to_owned()),
            hour: Some("numeric".to_owned()),
            ..DateOptions::default()
        };
        // No `EH`: `E` and `H` joined by the short atTime dateTimeFormat.
        assert_eq!(
            at("de-AT", &long_hour, "h23").as_deref(),
            Some("cccc, HH 'Uhr'")
        );
        assert_eq!(
            at("fr-FR", &long_hour, "h23").as_deref(),
            Some("EEEE HH 'h'")
        );
        assert_eq!(at("pt-BR", &long_hour, "h24").as_deref(), Some("cccc, kk"));
        // `Eh`, in the cycle's letter.
        assert_eq!(
            at("ja-JP", &long_hour, "h11").as_deref(),
            Some("aK時 (EEEE)")
        );
        let short_minutes = DateOptions {
            weekday: Some("short".to_owned()),
            hour: Some("2-digit".to_owned()),
            minute: Some("2-digit".to_owned()),
            ..DateOptions::default()
        };
        // `EHm`, its hour widened for a 2-digit hour.
        assert_eq!(
            at("es-ES", &short_minutes, "h23").as_deref(),
            Some("E, HH:mm")
        );
        assert_eq!(
            at("en-US", &short_minutes, "h12").as_deref(),
            Some("E hh:mm\u{202f}a")
        );
        let with_day = DateOptions {
            day: Some("numeric".to_owned()),
            ..long_hour.clone()
        };
        assert_eq!(at("de-DE", &with_day, "h23"), None);
        let seconds_alone = DateOptions {
            second: Some("numeric".to_owned()),
            ..long_hour
        };
        assert_eq!(at("de-DE", &seconds_alone, "h23"), None);
    }

    #[test]
    fn hour12_picks_the_cycle_by_the_locales_own_as_v8_does() {
        let cycle = |tag: &str, hour12: Option<bool>, hour_cycle: Option<&str>| {
            let options = DateOptions {
                hour12,
                hour_cycle: hour_cycle.map(str::to_owned),
                ..DateOptions::default()
            };
            requested_cycle(&locale(Some(tag)).unwrap(), &options)
        };
        assert_eq!(cycle("en-US", Some(true), None), Ok(Some("h12")));
        assert_eq!(cycle("en-US", Some(false), None), Ok(Some("h24")));
        assert_eq!(cycle("de-DE", Some(true), None), Ok(Some("h11")));
        assert_eq!(cycle("ja-JP", Some(false), None), Ok(Some("h23")));
        // hour12 wins over hourCycle; hourCycle alone is taken as asked.
        assert_eq!(cycle("de-DE", Some(true), Some("h23")), Ok(Some("h11")));
        assert_eq!(cycle("de-DE", None, Some("h24")), Ok(Some("h24")));
        assert_eq!(cycle("de-DE", None, None), Ok(None));
        assert_eq!(
            cycle("de-DE", None, Some("h13")),
            Err(IntlError::Unsupported("hourCycle \"h13\"".to_owned()))
        );
        let mut parts = Parts::default();
        parts.push("hour", "0");
        parts.push("literal", ":");
        parts.push("minute", "00");
        parts.midnight_as_24();
        parts.pad("minute");
        assert_eq!(
            parts.finish(),
            json!([["hour", "24"], ["literal", ":"], ["minute", "00"]])
        );
    }

    #[test]
    fn bad_zone_locale_and_op_are_refused_with_v8s_messages() {
        let date = |locale: &str, zone: &str| {
            handle(&json!({"op": "date", "locale": locale, "timeZone": zone, "time": 0}))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            date("en-US", "Mars/Olympus"),
            "Invalid time zone specified: Mars/Olympus"
        );
        assert_eq!(
            date("not a locale", "UTC"),
            "Incorrect locale information provided"
        );
        assert_eq!(
            handle(&json!({"op": "date", "time": 8.65e15})).unwrap_err(),
            IntlError::Time
        );
        assert_eq!(
            handle(&json!({"op": "collate"})).unwrap_err().to_string(),
            "Intl: unknown operation \"collate\""
        );
    }

    #[test]
    fn a_locale_keeps_only_language_script_and_region() {
        let variants: Vec<String> = (0..1000).map(|i| format!("v{i:04}x")).collect();
        let long = format!("de-Latn-DE-{}-u-hc-h12", variants.join("-"));
        assert_eq!(locale(Some(&long)).unwrap().to_string(), "de-Latn-DE");
        assert_eq!(locale(Some("EN-gb")).unwrap().to_string(), "en-GB");
        assert_eq!(locale(None).unwrap().to_string(), "en-US");
    }

    #[test]
    fn offsets_are_written_as_cldr_48_writes_them_in_fr_and_pt_only() {
        let zone_names = |language: &str, names: &[&str]| {
            let mut parts = Parts::default();
            for name in names {
                parts.push("literal", " ");
                parts.push("timeZoneName", name);
            }
            cldr48_zone_names(&mut parts, &locale(Some(language)).unwrap());
            parts.finish()
        };
        assert_eq!(
            zone_names("fr-FR", &["UTC-5", "UTC+1", "UTC"]),
            json!([
                ["literal", " "],
                ["timeZoneName", "UTC\u{2212}5"],
                ["literal", " "],
                ["timeZoneName", "UTC+1"],
                ["literal", " "],
                ["timeZoneName", "UTC"]
            ])
        );
        assert_eq!(
            zone_names("pt-BR", &["-5 GMT", "+05:30 GMT", "GMT"]),
            json!([
                ["literal", " "],
                ["timeZoneName", "GMT-5"],
                ["literal", " "],
                ["timeZoneName", "GMT+05:30"],
                ["literal", " "],
                ["timeZoneName", "GMT"]
            ])
        );
        assert_eq!(
            zone_names("de-DE", &["UTC-5", "-5 GMT"]),
            json!([
                ["literal", " "],
                ["timeZoneName", "UTC-5"],
                ["literal", " "],
                ["timeZoneName", "-5 GMT"]
            ])
        );
    }

    #[test]
    fn a_date_in_its_zone_has_the_parts_node_gives() {
        // 2024-03-10T07:00:00Z, the first instant of EDT.
        let answer = handle(&json!({
            "op": "date", "locale": "en-US", "timeZone": "america/new_york", "time": 1_710_054_000_000_i64,
            "options": {"hour": "numeric", "minute": "2-digit", "timeZoneName": "short"},
        }))
        .unwrap();
        assert_eq!(answer["timeZone"], "America/New_York");
        assert_eq!(answer["hourCycle"], "h12");
        assert_eq!(
            answer["parts"],
            json!([
                ["hour", "3"],
                ["literal", ":"],
                ["minute", "00"],
                ["literal", "\u{202F}"],
                ["dayPeriod", "AM"],
                ["literal", " "],
                ["timeZoneName", "EDT"]
            ])
        );
    }
}
