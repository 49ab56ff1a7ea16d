// Writes crates/runtime/src/services/intl/date_patterns.rs: for each CLDR 48
// locale, the availableFormats patterns of the skeletons the host formats
// itself where ICU4X's semantic skeletons give another pattern (see that
// file's doc). Run from the repository's root, with the npm package unpacked
// somewhere:
//
//   npm pack cldr-dates-full@48.0.0
//   mkdir dates
//   tar xzf cldr-dates-full-48.0.0.tgz -C dates
//   node tests/intl/date_patterns.js dates/package
//   cargo fmt --all
'use strict';
const fs = require('fs');
const path = require('path');

const [datesDir] = process.argv.slice(2);
if (!datesDir) {
    console.error('usage: node tests/intl/date_patterns.js <cldr-dates-full>');
    process.exit(2);
}
const datesPackage = JSON.parse(fs.readFileSync(path.join(datesDir, 'package.json'), 'utf8'));
// The skeletons, in the order of each row's patterns.
const SKELETONS = ['yMMMEd', 'Hv', 'hv'];

const patterns = {};
for (const locale of fs.readdirSync(path.join(datesDir, 'main')).sort()) {
    const file = path.join(datesDir, 'main', locale, 'ca-gregorian.json');
    // cldr-json's locales are resolved: each has its ancestors' availableFormats.
    const formats = JSON.parse(fs.readFileSync(file, 'utf8'))
        .main[locale].dates.calendars.gregorian.dateTimeFormats.availableFormats;
    patterns[locale] = SKELETONS.map((skeleton) => formats[skeleton] || '');
}
// The tag less its last subtag: the chain the host walks (intl.rs).
function truncated(locale) {
    const cut = locale.lastIndexOf('-');
    return cut < 0 ? 'und' : locale.slice(0, cut);
}
function patternsOf(locale) {
    for (let l = locale; ; l = truncated(l)) {
        if (patterns[l]) return patterns[l];
    }
}
const rows = [];
for (const locale of Object.keys(patterns).sort()) {
    const own = patterns[locale];
    const parent = locale === 'und' ? null : patternsOf(truncated(locale));
    if (!parent || own.some((p, i) => p !== parent[i])) rows.push([locale, own]);
}
const quote = (s) => JSON.stringify(s);
const out = `//! CLDR's \`availableFormats\` patterns for a few skeletons, by locale: generated
//! by \`tests/intl/date_patterns.js\` from the npm package ${datesPackage.name}
//! ${datesPackage.version} (CLDR ${datesPackage.cldrVersion}, the CLDR of Node 20's ICU 78); regenerate with the
//! commands at the top of that script. The data is Unicode's CLDR, under the
//! Unicode License v3 (Unicode-3.0).
//!
//! ICU4C's pattern generator (so V8) formats ECMA-402's field options with the
//! \`availableFormats\` pattern whose skeleton matches them best; ICU4X has no
//! \`availableFormats\`, and where its semantic skeletons write a pattern of
//! other fields or widths the host formats these (see [\`super\`]). Each row is a
//! CLDR locale with its patterns for [\`SKELETONS\`], in that order (\`""\`: none),
//! listed only where they differ from those of its tag less the last subtag
//! (\`de-AT\` → \`de\`, a language → \`und\`, CLDR's root), the chain the host walks.

/// The skeletons of each row's patterns, in order.
pub(super) const SKELETONS: [&str; ${SKELETONS.length}] = [${SKELETONS.map(quote).join(', ')}];

/// (CLDR locale, its patterns for [\`SKELETONS\`]); sorted by locale.
pub(super) static PATTERNS: &[(&str, [&str; ${SKELETONS.length}])] = &[
${rows.map(([locale, own]) => `    (${quote(locale)}, [${own.map(quote).join(', ')}]),`).join('\n')}
];
`;
fs.writeFileSync(path.join(__dirname, '../../crates/runtime/src/services/intl/date_patterns.rs'), out);
console.log(`${rows.length} locales`);
