//! `Intl.PluralRules`: a number's plural category in a locale (`icu_plurals`),
//! after the number is rounded as its fraction digit options round it, as V8
//! rounds it (`1` is "one" in English, `1.0` with a fraction digit "other").

use super::{IntlError, Made, locale, number};
use fixed_decimal::{Decimal, FloatPrecision};
use icu_locale_core::Locale;
use icu_plurals::{
    PluralCategory, PluralRuleType, PluralRules, PluralRulesOptions, PluralRulesPreferences,
    PluralRulesWithRanges,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// `{"op": "plural", locale, type, …}`: the resolved locale and the locale's
/// categories; with `value`, its category; with `end` as well, the category
/// of the range from `value` to `end` (`selectRange`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PluralRequest {
    locale: Option<String>,
    /// `"cardinal"` (the default) or `"ordinal"`.
    #[serde(rename = "type")]
    rule_type: Option<String>,
    value: Option<f64>,
    end: Option<f64>,
    minimum_integer_digits: Option<u8>,
    minimum_fraction_digits: Option<u8>,
    maximum_fraction_digits: Option<u8>,
}

/// The locale's rules of one type, with its ranges, by locale and type.
static RULES: Made<(Locale, bool), PluralRulesWithRanges<PluralRules>> =
    Made::new(super::CACHED_FORMATTERS);

pub(crate) fn select(request: &PluralRequest) -> Result<Value, IntlError> {
    let ordinal = match request.rule_type.as_deref() {
        None | Some("cardinal") => false,
        Some("ordinal") => true,
        Some(other) => return Err(IntlError::Options(format!("type {other:?}"))),
    };
    // V8 names the default locale as it is (`en-US`), a requested one as resolved.
    let locale = match request.locale {
        None => locale(None)?,
        Some(_) => resolved(locale(request.locale.as_deref())?),
    };
    let rules = RULES.get((locale.clone(), ordinal), || {
        let options = PluralRulesOptions::default().with_type(match ordinal {
            true => PluralRuleType::Ordinal,
            false => PluralRuleType::Cardinal,
        });
        PluralRulesWithRanges::try_new(PluralRulesPreferences::from(&locale), options)
            .map_err(|e| IntlError::Unsupported(e.to_string()))
    })?;
    // CLDR 48 (Node 20's) has no Spanish ordinal rules; CLDR 49 (ICU4X's)
    // makes 1 and 3 "one" (1.º… ): Node's "other" throughout.
    let cldr48_other = ordinal && locale.id.language.as_str() == "es";
    // V8 (Node 20) lists the categories in alphabetical order, "other" last.
    let mut categories: Vec<&str> = match cldr48_other {
        true => vec!["other"],
        false => rules.rules().categories().map(name).collect(),
    };
    categories.sort_by_key(|category| (*category == "other", *category));
    let category = |value: f64| -> Result<PluralCategory, IntlError> {
        if !value.is_finite() {
            return Ok(PluralCategory::Other);
        }
        let mut decimal = Decimal::try_from_f64(value.abs(), FloatPrecision::RoundTrip)
            .map_err(|_| IntlError::Options("value out of range".to_owned()))?;
        number::round_digits(
            &mut decimal,
            request.minimum_integer_digits.unwrap_or(1),
            request.minimum_fraction_digits.unwrap_or(0),
            request.maximum_fraction_digits.unwrap_or(3),
        );
        Ok(match cldr48_other {
            true => PluralCategory::Other,
            false => rules.rules().category_for(&decimal),
        })
    };
    let selected = match (request.value, request.end) {
        (None, _) => None,
        (Some(value), None) => Some(category(value)?),
        (Some(start), Some(end)) => Some(rules.resolve_range(category(start)?, category(end)?)),
    };
    Ok(json!({
        "locale": locale.to_string(),
        "categories": categories,
        "category": selected.map(name),
    }))
}

/// The locale V8 resolves for plural rules: ICU has them by language (and for
/// European Portuguese apart), so `en-US` resolves to `en`.
fn resolved(locale: Locale) -> Locale {
    let mut id = icu_locale_core::LanguageIdentifier::UNKNOWN;
    id.language = locale.id.language;
    if locale.id.language.as_str() == "pt" && locale.id.region.is_some_and(|r| r.as_str() == "PT") {
        id.region = locale.id.region;
    }
    Locale::from(id)
}

fn name(category: PluralCategory) -> &'static str {
    match category {
        PluralCategory::Zero => "zero",
        PluralCategory::One => "one",
        PluralCategory::Two => "two",
        PluralCategory::Few => "few",
        PluralCategory::Many => "many",
        PluralCategory::Other => "other",
    }
}
