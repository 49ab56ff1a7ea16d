//! `Intl.ListFormat`: a list of strings joined as a locale joins them
//! (`icu_list`: "and", "or" and unit lists, long, short and narrow), as parts.

use super::{IntlError, Made, locale};
use icu_list::options::{ListFormatterOptions, ListLength};
use icu_list::{ListFormatter, ListFormatterPreferences, parts};
use icu_locale_core::Locale;
use serde::Deserialize;
use serde_json::{Value, json};
use std::fmt;
use writeable::{Part, PartsWrite, Writeable};

/// `{"op": "list", locale, type, style, items}`: the resolved locale and the
/// list's parts (`[["element", "a"], ["literal", ", "], …]`).
#[derive(Debug, Deserialize)]
pub(crate) struct ListRequest {
    locale: Option<String>,
    /// `"conjunction"`, `"disjunction"` or `"unit"`.
    #[serde(rename = "type")]
    list_type: String,
    /// `"long"`, `"short"` or `"narrow"`.
    style: String,
    items: Vec<String>,
}

static FORMATTERS: Made<(Locale, String, String), ListFormatter> =
    Made::new(super::CACHED_FORMATTERS);

pub(crate) fn format(request: &ListRequest) -> Result<Value, IntlError> {
    let locale = locale(request.locale.as_deref())?;
    let length = match request.style.as_str() {
        "long" => ListLength::Wide,
        "short" => ListLength::Short,
        "narrow" => ListLength::Narrow,
        other => return Err(IntlError::Options(format!("style {other:?}"))),
    };
    let key = (
        locale.clone(),
        request.list_type.clone(),
        request.style.clone(),
    );
    let formatter = FORMATTERS.get(key, || {
        let prefs = ListFormatterPreferences::from(&locale);
        let options = ListFormatterOptions::default().with_length(length);
        match request.list_type.as_str() {
            "conjunction" => ListFormatter::try_new_and(prefs, options),
            "disjunction" => ListFormatter::try_new_or(prefs, options),
            "unit" => ListFormatter::try_new_unit(prefs, options),
            other => return Err(IntlError::Options(format!("type {other:?}"))),
        }
        .map_err(|e| IntlError::Unsupported(e.to_string()))
    })?;
    let mut sink = ListParts::default();
    formatter
        .format(request.items.iter().map(String::as_str))
        .write_to_parts(&mut sink)
        .map_err(|_| IntlError::Unsupported("formatting failed".to_owned()))?;
    if locale.id.language.as_str() == "he" {
        // CLDR 49 (ICU4X's) joins Hebrew's ו to the last item with a
        // non-breaking hyphen; CLDR 48 (Node 20's) with a hyphen-minus.
        for (_, literal) in sink.parts.iter_mut().filter(|(kind, _)| *kind == "literal") {
            *literal = literal.replace('\u{2011}', "-");
        }
    }
    Ok(json!({ "locale": locale.to_string(), "parts": sink.finish() }))
}

/// Collects a list's parts: each element its own part, even an empty one
/// (the plugin puts the items it was given back in them, in order), the
/// text between them `literal`.
#[derive(Default)]
struct ListParts {
    parts: Vec<(&'static str, String)>,
    /// Writing inside a part.
    open: bool,
}

impl ListParts {
    fn finish(self) -> Value {
        Value::Array(
            self.parts
                .into_iter()
                .filter(|(kind, value)| *kind == "element" || !value.is_empty())
                .map(|(kind, value)| json!([kind, value]))
                .collect(),
        )
    }
}

impl fmt::Write for ListParts {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        match self.parts.last_mut() {
            Some((_, value)) if self.open => value.push_str(text),
            Some(("literal", value)) => value.push_str(text),
            _ => self.parts.push(("literal", text.to_owned())),
        }
        Ok(())
    }
}

impl PartsWrite for ListParts {
    type SubPartsWrite = ListParts;

    fn with_part(
        &mut self,
        part: Part,
        mut f: impl FnMut(&mut Self::SubPartsWrite) -> fmt::Result,
    ) -> fmt::Result {
        // A part inside an element (its own text's) stays the element's.
        if self.open {
            return f(self);
        }
        let kind = if part == parts::ELEMENT {
            "element"
        } else {
            "literal"
        };
        self.parts.push((kind, String::new()));
        self.open = true;
        let result = f(self);
        self.open = false;
        result
    }
}
