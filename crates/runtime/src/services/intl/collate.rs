//! `String.prototype.localeCompare` and `Intl.Collator`: two strings ordered
//! as CLDR's collation orders them in a locale (ICU4X's `icu_collator`,
//! compiled data), with ECMA-402's options mapped onto the collation's
//! attributes as V8 maps them onto ICU's: `sensitivity` to the strength (and
//! the case level for `"case"`), `ignorePunctuation` to shifted alternate
//! handling, `numeric` and `caseFirst` to the `kn` and `kf` preferences, which
//! a locale's Unicode extension may also set, and `usage: "search"` to the
//! search collation. The plugin reads and checks the options; this module
//! resolves and compares.

use super::{IntlError, Made, locale};
use icu_collator::options::{AlternateHandling, CaseLevel, CollatorOptions, Strength};
use icu_collator::preferences::{CollationCaseFirst, CollationNumericOrdering, CollationType};
use icu_collator::{CollatorBorrowed, CollatorPreferences};
use icu_locale_core::Locale;
use serde::Deserialize;
use serde_json::{Value, json};

/// The options the plugin resolved (ECMA-402's `InitializeCollator`).
#[derive(Debug, Default, Deserialize, Clone, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollateOptions {
    usage: Option<String>,
    sensitivity: Option<String>,
    ignore_punctuation: Option<bool>,
    numeric: Option<bool>,
    case_first: Option<String>,
}

/// `{"op": "collator", locale, options}`: what `resolvedOptions` shows.
#[derive(Debug, Deserialize)]
pub struct CollatorRequest {
    locale: Option<String>,
    #[serde(default)]
    options: CollateOptions,
}

/// `{"op": "keys", locale, options, texts}`: each text's sort key.
#[derive(Debug, Deserialize)]
pub struct KeysRequest {
    locale: Option<String>,
    #[serde(default)]
    options: CollateOptions,
    texts: Vec<String>,
}

/// A collator's settings, resolved from the locale and the options.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Resolved {
    /// Language, script and region.
    base: Locale,
    numeric: bool,
    /// Asked for by the options or the locale's `kf`; else the locale's
    /// collation decides (upper first in Danish and Maltese).
    case_first: Option<CollationCaseFirst>,
    /// A collation the locale's `-u-co-` asked for (not `search` or `standard`).
    collation: Option<CollationType>,
    /// The locale's own `kn` and `kf`, which its tag keeps (as V8's does,
    /// even when the options set another value).
    locale_numeric: Option<bool>,
    locale_case_first: Option<CollationCaseFirst>,
    /// As the options say; always in Thai, as in Node 20's V8.
    ignore_punctuation: bool,
    options: CollateOptions,
}

impl Resolved {
    fn new(requested: Option<&str>, options: &CollateOptions) -> Result<Resolved, IntlError> {
        let base = locale(requested)?;
        let full = match requested {
            Some(tag) => Locale::try_from_str(tag).map_err(|_| IntlError::Locale)?,
            None => base.clone(),
        };
        let prefs = CollatorPreferences::from(&full);
        let from_locale_numeric = prefs
            .numeric_ordering
            .map(|n| n == CollationNumericOrdering::True);
        let numeric = options.numeric.or(from_locale_numeric).unwrap_or(false);
        let case_first = match options.case_first.as_deref() {
            Some("upper") => Some(CollationCaseFirst::Upper),
            Some("lower") => Some(CollationCaseFirst::Lower),
            Some("false") => Some(CollationCaseFirst::False),
            Some(other) => return Err(IntlError::Options(format!("caseFirst {other:?}"))),
            None => None,
        };
        // Only the values the plugin sends: a cache key stays a few bytes.
        if !matches!(options.usage.as_deref(), None | Some("sort" | "search")) {
            return Err(IntlError::Options(format!("usage {:?}", options.usage)));
        }
        if !matches!(
            options.sensitivity.as_deref(),
            None | Some("base" | "accent" | "case" | "variant")
        ) {
            return Err(IntlError::Options(format!(
                "sensitivity {:?}",
                options.sensitivity
            )));
        }
        let collation = prefs
            .collation_type
            .filter(|co| !matches!(co, CollationType::Search | CollationType::Standard));
        Ok(Resolved {
            base,
            numeric,
            case_first: case_first.or(prefs.case_first),
            collation,
            locale_numeric: from_locale_numeric,
            locale_case_first: prefs.case_first,
            // Node 20's V8 ignores punctuation in Thai whatever the option says.
            ignore_punctuation: options.ignore_punctuation == Some(true)
                || full.id.language.as_str() == "th",
            options: options.clone(),
        })
    }

    /// The locale `resolvedOptions` shows: the base, with the Unicode
    /// extension keys that were taken from the requested locale.
    fn tag(&self) -> String {
        let mut keys = Vec::new();
        if let Some(collation) = self.collation {
            keys.push(format!("co-{}", collation_name(collation)));
        }
        if let Some(case_first) = self.locale_case_first {
            keys.push(format!("kf-{}", case_first_name(case_first)));
        }
        if let Some(numeric) = self.locale_numeric {
            // `true` is a key's default value, so it is left out.
            keys.push(if numeric {
                "kn".into()
            } else {
                "kn-false".into()
            });
        }
        match keys.is_empty() {
            true => self.base.to_string(),
            false => format!("{}-u-{}", self.base, keys.join("-")),
        }
    }

    fn collator(&self) -> Result<CollatorBorrowed<'static>, IntlError> {
        let mut prefs = CollatorPreferences::from(&self.base);
        prefs.numeric_ordering = Some(match self.numeric {
            true => CollationNumericOrdering::True,
            false => CollationNumericOrdering::False,
        });
        prefs.case_first = self.case_first;
        prefs.collation_type = match self.options.usage.as_deref() {
            Some("search") => Some(CollationType::Search),
            _ => self.collation,
        };
        let mut options = CollatorOptions::default();
        match self.options.sensitivity.as_deref() {
            Some("base") => options.strength = Some(Strength::Primary),
            Some("accent") => options.strength = Some(Strength::Secondary),
            Some("case") => {
                options.strength = Some(Strength::Primary);
                options.case_level = Some(CaseLevel::On);
            }
            Some("variant") | None => options.strength = Some(Strength::Tertiary),
            Some(other) => return Err(IntlError::Options(format!("sensitivity {other:?}"))),
        }
        if self.ignore_punctuation {
            options.alternate_handling = Some(AlternateHandling::Shifted);
        }
        CollatorBorrowed::try_new(prefs, options).map_err(|e| IntlError::Unsupported(e.to_string()))
    }
}

fn collation_name(collation: CollationType) -> &'static str {
    match collation {
        CollationType::Compat => "compat",
        CollationType::Dict => "dict",
        CollationType::Ducet => "ducet",
        CollationType::Emoji => "emoji",
        CollationType::Eor => "eor",
        CollationType::Phonebk => "phonebk",
        CollationType::Phonetic => "phonetic",
        CollationType::Pinyin => "pinyin",
        CollationType::Searchjl => "searchjl",
        CollationType::Stroke => "stroke",
        CollationType::Trad => "trad",
        CollationType::Unihan => "unihan",
        CollationType::Zhuyin => "zhuyin",
        _ => "standard",
    }
}

fn case_first_name(case_first: CollationCaseFirst) -> &'static str {
    match case_first {
        CollationCaseFirst::Upper => "upper",
        CollationCaseFirst::Lower => "lower",
        _ => "false",
    }
}

/// The collators made so far, by their resolved settings (the locale's
/// language, script and region, and checked options: a few bytes each): a
/// connector that sorts compares many pairs with one collator.
static COLLATORS: Made<Resolved, CollatorBorrowed<'static>> = Made::new(MAX_COLLATORS);

/// Most collators kept.
const MAX_COLLATORS: usize = 64;

/// The most sort-key text one answer carries.
const MAX_KEYS_ANSWER: usize = 1 << 20;

/// `resolvedOptions`' locale and the settings the locale gave.
pub fn resolve(request: &CollatorRequest) -> Result<Value, IntlError> {
    let resolved = Resolved::new(request.locale.as_deref(), &request.options)?;
    let collator = COLLATORS.get(resolved.clone(), || resolved.collator())?;
    Ok(json!({
        "locale": resolved.tag(),
        "numeric": resolved.numeric,
        "caseFirst": case_first_name(collator.resolved_options().case_first),
        "collation": resolved.collation.map_or("default", collation_name),
        "ignorePunctuation": resolved.ignore_punctuation,
    }))
}

/// Each text's sort key, as lower-case hex: two keys compared as strings
/// (bytewise) order as the collator orders their texts, and are equal when
/// it finds them equal. The plugin keeps the keys of the strings it saw, so
/// a sort asks for each string's key once rather than for every comparison.
pub fn keys(request: &KeysRequest) -> Result<Value, IntlError> {
    let resolved = Resolved::new(request.locale.as_deref(), &request.options)?;
    let collator = COLLATORS.get(resolved.clone(), || resolved.collator())?;
    // A character may make many collation elements: the answer is bounded
    // apart from the request.
    let mut keys = Vec::with_capacity(request.texts.len());
    let mut size = 0;
    for text in &request.texts {
        let mut key = Vec::new();
        let Ok(()) = collator.write_sort_key_to(text, &mut key);
        size += key.len() * 2;
        if size > MAX_KEYS_ANSWER {
            return Err(IntlError::TooLarge(MAX_KEYS_ANSWER));
        }
        keys.push(Value::String(hex(&key)));
    }
    Ok(Value::Array(keys))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    fn order(locale: &str, options: CollateOptions, a: &str, b: &str) -> Ordering {
        let resolved = Resolved::new(Some(locale), &options).unwrap();
        let collator = resolved.collator().unwrap();
        let request = KeysRequest {
            locale: Some(locale.into()),
            options,
            texts: vec![a.into(), b.into()],
        };
        let keys = keys(&request).unwrap();
        let by_keys = keys[0].as_str().cmp(&keys[1].as_str());
        assert_eq!(by_keys, collator.compare(a, b), "{a:?} {b:?} in {locale}");
        by_keys
    }

    #[test]
    fn sort_keys_order_as_the_collator_compares() {
        let base = CollateOptions {
            sensitivity: Some("base".into()),
            ..CollateOptions::default()
        };
        assert_eq!(
            order("en", CollateOptions::default(), "a", "B"),
            Ordering::Less
        );
        assert_eq!(
            order("en", CollateOptions::default(), "a", "A"),
            Ordering::Less
        );
        assert_eq!(order("en", base.clone(), "a", "A"), Ordering::Equal);
        assert_eq!(order("en", base, "résumé", "resume"), Ordering::Equal);
        assert_eq!(
            order("sv", CollateOptions::default(), "ä", "z"),
            Ordering::Greater
        );
        assert_eq!(
            order("de", CollateOptions::default(), "ä", "z"),
            Ordering::Less
        );
        let numeric = CollateOptions {
            numeric: Some(true),
            ..CollateOptions::default()
        };
        assert_eq!(order("en", numeric, "a2", "a10"), Ordering::Less);
        assert_eq!(
            order("en", CollateOptions::default(), "a2", "a10"),
            Ordering::Greater
        );
    }

    #[test]
    fn options_outside_ecma_402s_are_refused() {
        let loud = CollateOptions {
            sensitivity: Some("loud".into()),
            ..CollateOptions::default()
        };
        assert!(Resolved::new(Some("en"), &loud).is_err());
        let odd = CollateOptions {
            usage: Some("x".repeat(1000)),
            ..CollateOptions::default()
        };
        assert!(Resolved::new(Some("en"), &odd).is_err());
    }
}
