// The Intl cases tests/intl.rs runs through sandpipe and through Node 20: each
// case is [label, output], the output a string or the error it threw
// ("Name: message"). Plain script (no require), so the same text is a
// connector's top level and a Node program.
function intlCases() {
    const results = [];
    function check(label, f) {
        let out;
        try {
            out = f();
            if (typeof out !== 'string') out = JSON.stringify(out);
        } catch (e) {
            out = `${e && e.name}: ${e && e.message}`;
        }
        results.push([label, out]);
    }
    const LOCALES = ['en-US', 'en-GB', 'de-DE', 'fr-FR', 'es-ES', 'pt-BR', 'ja-JP'];
    const ZONES = ['UTC', 'America/New_York', 'Europe/Berlin', 'Asia/Tokyo', 'America/Sao_Paulo', 'Australia/Sydney'];
    // Instants around DST transitions and year ends (milliseconds since the epoch).
    const INSTANTS = {
        ordinary: Date.UTC(2024, 0, 15, 13, 5, 9, 45),
        nyBeforeSpring: Date.UTC(2024, 2, 10, 6, 59, 59), // 01:59:59 EST
        nyAfterSpring: Date.UTC(2024, 2, 10, 7, 0, 0), // 03:00:00 EDT
        nyBeforeFall: Date.UTC(2024, 10, 3, 5, 59, 59), // 01:59:59 EDT
        nyAfterFall: Date.UTC(2024, 10, 3, 6, 0, 0), // 01:00:00 EST
        berlinBeforeSpring: Date.UTC(2024, 2, 31, 0, 59, 59), // 01:59:59 CET
        berlinAfterSpring: Date.UTC(2024, 2, 31, 1, 0, 0), // 03:00:00 CEST
        berlinFall: Date.UTC(2024, 9, 27, 0, 30, 0), // 02:30 CEST
        berlinFallAgain: Date.UTC(2024, 9, 27, 1, 30, 0), // 02:30 CET
        newYear: Date.UTC(2023, 11, 31, 23, 30, 0),
        midnight: Date.UTC(2024, 6, 4, 0, 0, 0),
        noon: Date.UTC(2024, 6, 4, 12, 0, 0),
        old: Date.UTC(1969, 6, 20, 20, 17, 40),
    };
    const DATE_OPTIONS = [
        undefined,
        { weekday: 'long' },
        { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' },
        { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' },
        { year: 'numeric', month: '2-digit', day: '2-digit' },
        { month: 'long', day: 'numeric' },
        { month: 'long', year: 'numeric' },
        { hour: '2-digit', minute: '2-digit' },
        { hour: 'numeric', minute: '2-digit', hour12: false },
        { hour: 'numeric', minute: '2-digit', second: '2-digit', hour12: true },
        { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' },
        { year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', timeZoneName: 'short' },
        { dateStyle: 'full' },
        { dateStyle: 'long' },
        { dateStyle: 'medium' },
        { dateStyle: 'short' },
        { timeStyle: 'short' },
        { timeStyle: 'medium' },
        { dateStyle: 'medium', timeStyle: 'short' },
        { dateStyle: 'short', timeStyle: 'short' },
        // Where V8 drops the hour's leading zero, and where it keeps it.
        { hour: 'numeric', minute: '2-digit', second: 'numeric' },
        { hour: 'numeric', minute: '2-digit', timeZoneName: 'short' },
        { day: 'numeric', hour: 'numeric', minute: '2-digit' },
        { hour: 'numeric', minute: '2-digit', hourCycle: 'h23' },
        { timeStyle: 'long' },
        { year: 'numeric', hour: 'numeric', minute: '2-digit' },
        { year: 'numeric', month: 'long', hour: 'numeric', minute: '2-digit', timeZoneName: 'short' },
        { month: 'short', hour: 'numeric' },
        { hour: 'numeric' },
        // CLDR's availableFormats Hv and Eh, EHm (en-GB `08h GMT-5`, ja `8:05 (月曜日)`).
        { hour: 'numeric', timeZoneName: 'short' },
        { hour: '2-digit', timeZoneName: 'long' },
        { weekday: 'long', hour: 'numeric' },
        { weekday: 'short', hour: 'numeric', minute: '2-digit' },
        // A weekday beside an hour: CLDR's E and H joined by the short atTime
        // dateTimeFormat, in the requested or the locale's cycle; EHm's padding.
        { weekday: 'short', hour: 'numeric' },
        { weekday: 'narrow', hour: '2-digit' },
        { weekday: 'long', hour: 'numeric', hour12: false },
        { weekday: 'long', hour: 'numeric', hourCycle: 'h23' },
        { weekday: 'long', hour: 'numeric', hour12: true },
        { weekday: 'long', hour: 'numeric', minute: '2-digit', hour12: false },
        { weekday: 'short', hour: 'numeric', minute: '2-digit', second: '2-digit' },
    ];
    for (const locale of LOCALES) {
        for (const zone of ZONES) {
            for (const [name, time] of Object.entries(INSTANTS)) {
                const d = new Date(time);
                check(`${locale} ${zone} ${name} toLocaleString`, () => d.toLocaleString(locale, { timeZone: zone }));
            }
        }
        const d = new Date(INSTANTS.ordinary);
        for (let i = 0; i < DATE_OPTIONS.length; i++) {
            for (const zone of ['America/New_York', 'Europe/Berlin']) {
                const options = Object.assign({ timeZone: zone }, DATE_OPTIONS[i]);
                check(`${locale} ${zone} options ${i} format`, () => new Intl.DateTimeFormat(locale, options).format(d));
            }
        }
        check(`${locale} toLocaleDateString`, () => d.toLocaleDateString(locale));
        check(`${locale} toLocaleTimeString`, () => d.toLocaleTimeString(locale));
        check(`${locale} weekday long Berlin`, () => d.toLocaleDateString(locale, { weekday: 'long', timeZone: 'Europe/Berlin' }));
        check(`${locale} formatToParts`, () => new Intl.DateTimeFormat(locale, { timeZone: 'America/New_York', weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZoneName: 'short' }).formatToParts(d));
        check(`${locale} resolvedOptions`, () => new Intl.DateTimeFormat(locale, { timeZone: 'europe/berlin' }).resolvedOptions());
        // A weekday beside an hour, formatted by the host from CLDR's E, H, Eh and EHm.
        for (const options of [{ weekday: 'long', hour: 'numeric' }, { weekday: 'short', hour: 'numeric', minute: '2-digit' }]) {
            const format = new Intl.DateTimeFormat(locale, Object.assign({ timeZone: 'Europe/Berlin' }, options));
            check(`${locale} ${JSON.stringify(options)} formatToParts`, () => format.formatToParts(d));
            check(`${locale} ${JSON.stringify(options)} resolvedOptions`, () => format.resolvedOptions());
        }
    }
    // hour12 and hourCycle at midnight, where the cycles differ (0, 12 or 24):
    // hour12 picks h11/h12 or h23/h24 by the locale's own cycle, as in V8.
    const CYCLE_OPTIONS = [
        { hour12: true },
        { hour12: false },
        { hour: 'numeric', minute: '2-digit', hourCycle: 'h11' },
        { hour: 'numeric', minute: '2-digit', hourCycle: 'h12' },
        { hour: 'numeric', minute: '2-digit', hourCycle: 'h23' },
        { hour: 'numeric', minute: '2-digit', hourCycle: 'h24' },
        { timeStyle: 'short', hour12: true },
        { timeStyle: 'medium', hour12: false },
        { timeStyle: 'medium', hourCycle: 'h12' },
        { dateStyle: 'short', timeStyle: 'full', hourCycle: 'h11' },
        { timeStyle: 'medium', hourCycle: 'h23' },
        { weekday: 'short', hour: 'numeric', hour12: true },
        { weekday: 'short', hour: 'numeric', minute: '2-digit', hour12: false },
    ];
    for (const locale of LOCALES) {
        const times = [0.5, 1.1, 13.1].map((hours) => new Date(INSTANTS.midnight + hours * 3600 * 1000));
        for (let i = 0; i < CYCLE_OPTIONS.length; i++) {
            const options = Object.assign({ timeZone: 'UTC' }, CYCLE_OPTIONS[i]);
            check(`${locale} cycle ${i} toLocaleTimeString`, () => times.map((t) => t.toLocaleTimeString(locale, options)).join(' | '));
            check(`${locale} cycle ${i} hourCycle`, () => String(new Intl.DateTimeFormat(locale, options).resolvedOptions().hourCycle));
        }
    }
    // Weekday names through a whole week, in the connector's zone.
    for (let day = 0; day < 7; day++) {
        const d = new Date(Date.UTC(2024, 5, 2 + day, 23, 30));
        for (const locale of LOCALES) {
            check(`weekday ${locale} ${day}`, () => d.toLocaleDateString(locale, { weekday: 'long', timeZone: 'Asia/Tokyo' }));
        }
    }
    // Defaults: the host's zone is UTC, its locale en-US.
    const d = new Date(INSTANTS.nyBeforeFall);
    check('default toLocaleString', () => d.toLocaleString());
    check('default toLocaleDateString', () => d.toLocaleDateString());
    check('default toLocaleTimeString', () => d.toLocaleTimeString());
    check('default format', () => new Intl.DateTimeFormat().format(d));
    check('default resolvedOptions', () => new Intl.DateTimeFormat().resolvedOptions());
    check('invalid date', () => new Date(NaN).toLocaleString('de-DE'));
    // The last of JavaScript's dates, and years past 9999. (The first,
    // -8.64e15, is a year before 1 AD, which README lists as written with its era.)
    for (const time of [8.64e15, Date.UTC(9999, 11, 31, 23, 59), Date.UTC(10000, 0, 1), Date.UTC(123456, 6, 4, 15)]) {
        for (const locale of ['en-US', 'en-GB', 'de-DE']) {
            check(`far ${time} ${locale}`, () => new Date(time).toLocaleDateString(locale, { timeZone: 'UTC' }));
            check(`far ${time} ${locale} full`, () => new Date(time).toLocaleString(locale, { timeZone: 'Asia/Tokyo', dateStyle: 'full', timeStyle: 'long' }));
        }
    }
    // Years under 1000 of the common era: the era only when asked for.
    for (const year of [1, 50, 500, 999]) {
        const d = new Date(Date.UTC(2000, 5, 1, 12));
        d.setUTCFullYear(year);
        for (const locale of ['en-US', 'en-GB', 'de-DE', 'fr-FR', 'pt-BR']) {
            check(`year ${year} ${locale}`, () => d.toLocaleDateString(locale, { timeZone: 'UTC' }));
            check(`year ${year} ${locale} long`, () => d.toLocaleDateString(locale, { timeZone: 'UTC', dateStyle: 'long' }));
            check(`year ${year} ${locale} with time`, () => d.toLocaleString(locale, { timeZone: 'UTC' }));
            check(`year ${year} ${locale} era`, () => d.toLocaleDateString(locale, { timeZone: 'UTC', year: 'numeric', era: 'short' }));
        }
    }
    // Errors, with V8's messages.
    check('bad zone', () => new Intl.DateTimeFormat('en-US', { timeZone: 'Mars/Olympus' }));
    check('bad locale', () => new Date(0).toLocaleString('not a locale'));
    check('bad option', () => new Date(0).toLocaleString('en-US', { weekday: 'longest' }));
    check('style and field', () => new Intl.DateTimeFormat('en-US', { dateStyle: 'short', hour: 'numeric' }));
    check('timeStyle in a date', () => new Date(0).toLocaleDateString('en-US', { timeStyle: 'short' }));
    check('format NaN', () => new Intl.DateTimeFormat('en-US').format(NaN));
    check('typeof Intl', () => typeof Intl);

    // Numbers.
    const NUMBERS = [0, -0, 1, -1, 0.5, 1.005, 2.5, -2.5, 1234.5, 1234567.891, -9876543.21, 0.000123, 1e21, 123456789012, NaN, Infinity, -Infinity];
    const NUMBER_OPTIONS = [
        undefined,
        { maximumFractionDigits: 0 },
        { minimumFractionDigits: 2 },
        { minimumFractionDigits: 2, maximumFractionDigits: 2 },
        { maximumFractionDigits: 5 },
        { useGrouping: false },
        { minimumIntegerDigits: 3 },
        { style: 'percent' },
        { style: 'percent', minimumFractionDigits: 1 },
        { style: 'currency', currency: 'USD' },
        { style: 'currency', currency: 'EUR' },
        { style: 'currency', currency: 'JPY' },
        { style: 'currency', currency: 'GBP', currencyDisplay: 'code' },
        { style: 'currency', currency: 'BRL', maximumFractionDigits: 0 },
        // A symbol of letters: spaced from digits, not from NaN and ∞.
        { style: 'currency', currency: 'CHF' },
    ];
    for (const locale of LOCALES) {
        for (let i = 0; i < NUMBER_OPTIONS.length; i++) {
            const format = new Intl.NumberFormat(locale, NUMBER_OPTIONS[i]);
            check(`${locale} number options ${i}`, () => NUMBERS.map((n) => format.format(n)).join(' | '));
            check(`${locale} toLocaleString options ${i}`, () => (1234.5678).toLocaleString(locale, NUMBER_OPTIONS[i]));
        }
        check(`${locale} number parts`, () => new Intl.NumberFormat(locale, { style: 'currency', currency: 'EUR' }).formatToParts(-1234567.891));
        check(`${locale} number resolvedOptions`, () => new Intl.NumberFormat(locale, { style: 'currency', currency: 'JPY' }).resolvedOptions());
    }
    // Every ISO currency Node 20 knows (Intl.supportedValuesOf('currency'), written
    // out: the guest has no supportedValuesOf) as symbol and narrowSymbol: where a
    // locale's CLDR symbol is the code itself (es and fr JPY), ICU4X's data falls
    // back to root's (crates/runtime/src/services/intl/currency_codes.rs).
    const CURRENCIES = (
        'AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN ' +
        'BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL ' +
        'GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF ' +
        'KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR ' +
        'MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG ' +
        'SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD ' +
        'UYU UZS VES VND VUV WST XAF XCD XCG XDR XOF XPF XSU YER ZAR ZMW ZWG ZWL '
    ).trim().split(' ');
    for (const locale of LOCALES) {
        for (const currency of CURRENCIES) {
            check(`${locale} currency ${currency}`, () => ['symbol', 'narrowSymbol']
                .map((currencyDisplay) => new Intl.NumberFormat(locale, { style: 'currency', currency, currencyDisplay }).format(-1234.5))
                .join(' | '));
        }
    }
    // A BigInt keeps every digit (a double would end 12,345,678,901,234,567,000).
    const BIGINTS = [0n, -7n, 12345678901234567891n, -98765432109876543210123456789n, 2n ** 64n];
    for (const locale of LOCALES) {
        for (let i = 0; i < NUMBER_OPTIONS.length; i++) {
            const format = new Intl.NumberFormat(locale, NUMBER_OPTIONS[i]);
            check(`${locale} BigInt options ${i}`, () => BIGINTS.map((n) => format.format(n)).join(' | '));
        }
        check(`${locale} BigInt toLocaleString`, () => BIGINTS.map((n) => n.toLocaleString(locale)).join(' | '));
        check(`${locale} BigInt parts`, () => new Intl.NumberFormat(locale, { style: 'percent' }).formatToParts(-12345678901234567891n));
    }
    check('BigInt toLocaleString default', () => (12345678901234567891n).toLocaleString());
    check('BigInt toLocaleString options', () => (5n).toLocaleString('en-US', { minimumFractionDigits: 2, minimumIntegerDigits: 3 }));
    check('BigInt toLocaleString bad option', () => (5n).toLocaleString('en-US', { style: 'money' }));
    check('BigInt toLocaleString receiver', () => BigInt.prototype.toLocaleString.call(5));
    check('BigInt toLocaleString boxed', () => BigInt.prototype.toLocaleString.call(Object(5n), 'de-DE'));
    check('number toLocaleString bad options', () => [{ style: 'money' }, { useGrouping: 'x' }, { currencyDisplay: 'x' }]
        .map((options) => { try { return (5).toLocaleString('en', options); } catch (e) { return e.message; } }).join(' | '));
    check('number toLocaleString receiver', () => Number.prototype.toLocaleString.call('5'));
    check('default number', () => (1234567.891).toLocaleString());
    check('number no currency', () => (1).toLocaleString('en-US', { style: 'currency' }));
    check('number bad currency', () => (1).toLocaleString('en-US', { style: 'currency', currency: 'EURO' }));
    check('number fraction range', () => (1).toLocaleString('en-US', { minimumFractionDigits: 3, maximumFractionDigits: 1 }));
    // Collation: localeCompare and Intl.Collator, sorting words that tell
    // locales, strengths, case and numeric ordering apart.
    const WORDS = ['B', 'a', 'ä', 'b', 'e', 'é', 'Z', 'z', 'Ä', 'ae', 'a10', 'a2', 'A2', 'co-op', 'coop',
        'Æ', 'ß', 'ss', 'ñ', 'n', 'o', 'ö', 'å', 'ø', 'Å', 'ch', 'c', 'h', 'ı', 'i', 'İ', 'I', 'Ab', 'ab',
        'résumé', 'resume', 'Resume', '', ' ', '10', '9', 'x-ray', 'xray', '😀', 'ゃ', 'や', 'カ', 'か', '中'];
    for (const locale of [undefined, 'en-US', 'de-DE', 'sv-SE', 'es-ES', 'tr-TR', 'da-DK', 'fr-FR', 'ja-JP', 'de-u-co-phonebk', 'en-u-kn', 'en-u-kf-upper']) {
        check(`${locale} collation`, () => WORDS.slice().sort(new Intl.Collator(locale).compare).join(' '));
    }
    const COLLATOR_OPTIONS = [
        { sensitivity: 'base' }, { sensitivity: 'accent' }, { sensitivity: 'case' }, { sensitivity: 'variant' },
        { numeric: true }, { numeric: false }, { caseFirst: 'upper' }, { caseFirst: 'lower' }, { caseFirst: 'false' },
        { ignorePunctuation: true }, { usage: 'search' }, { usage: 'search', sensitivity: 'base' },
        { numeric: true, sensitivity: 'base', caseFirst: 'upper' },
    ];
    for (let i = 0; i < COLLATOR_OPTIONS.length; i++) {
        const collator = Intl.Collator('en', COLLATOR_OPTIONS[i]);
        check(`collator options ${i}`, () => WORDS.slice().sort(collator.compare).join(' '));
        check(`collator options ${i} pairs`, () => [['a', 'A'], ['a', 'á'], ['a', 'b'], ['co-op', 'coop'], ['a2', 'a10'], ['ß', 'ss'], ['', 'a']]
            .map(([x, y]) => collator.compare(x, y)).join(' '));
        check(`collator options ${i} resolvedOptions`, () => collator.resolvedOptions());
    }
    for (const locale of [undefined, 'en', 'de', 'da', 'mt', 'de-u-co-phonebk', 'en-u-kn-true', 'en-u-kf-upper', 'da-u-kf-lower']) {
        check(`${locale} collator resolvedOptions`, () => new Intl.Collator(locale).resolvedOptions());
    }
    check('localeCompare', () => [
        'a'.localeCompare('B'), 'a'.localeCompare('b'), ''.localeCompare('a'), 'a'.localeCompare('a'),
        'résumé'.localeCompare('resume', 'en', { sensitivity: 'base' }), 'ä'.localeCompare('z', 'de'), 'ä'.localeCompare('z', 'sv'),
        'a2'.localeCompare('a10', undefined, { numeric: true }), 'a'.localeCompare(), 'undefined'.localeCompare(),
        String.prototype.localeCompare.call(12, 3), String.prototype.localeCompare.length, typeof Intl.Collator().compare,
        Intl.Collator().compare.length, Intl.Collator().compare === Intl.Collator().compare,
    ]);
    check('localeCompare on null', () => String.prototype.localeCompare.call(null, 'a'));
    check('localeCompare of a symbol', () => 'a'.localeCompare(Symbol()));
    check('lone surrogates', () => ['\ud83d'.localeCompare('a'), 'a'.localeCompare('\ud83d'), ['b', '\ud800', 'a'].sort(Intl.Collator().compare),
        'A\ud83dB'.toLocaleLowerCase('tr'), '\udc00i'.toLocaleUpperCase('tr')]);
    check('lone surrogate against U+FFFD', () => '\ud83d'.localeCompare('\ufffd'));
    check('Collator bad collation', () => new Intl.Collator('en', { collation: 'x' }));
    check('Collator collation option', () => new Intl.Collator('en', { collation: 'phonebk' }).resolvedOptions().collation);
    check('Thai ignores punctuation', () => [new Intl.Collator('th').resolvedOptions().ignorePunctuation,
        new Intl.Collator('th', { ignorePunctuation: false }).resolvedOptions().ignorePunctuation,
        ['a b', 'ab', 'a-b', 'a.b', 'b', 'a'].sort(new Intl.Collator('th').compare)]);
    check('locale keys kept', () => [new Intl.Collator('en-u-kn', { numeric: true }).resolvedOptions().locale,
        new Intl.Collator('en-u-kn', { numeric: false }).resolvedOptions().locale,
        new Intl.Collator('en-u-kf-upper', { caseFirst: 'lower' }).resolvedOptions().locale]);
    check('Collator wrong receiver', () => Intl.Collator.prototype.resolvedOptions.call({}));
    check('Collator compare wrong receiver', () => Object.getOwnPropertyDescriptor(Intl.Collator.prototype, 'compare').get.call({}));
    check('localeCompare bad option', () => 'a'.localeCompare('b', 'en', { sensitivity: 'loud' }));
    check('Collator bad usage', () => new Intl.Collator('en', { usage: 'x' }));
    check('Collator bad caseFirst', () => new Intl.Collator('en', { caseFirst: 'x' }));
    check('Collator bad locale', () => new Intl.Collator('not a locale!'));
    check('Collator shape', () => [Intl.Collator.name, Intl.Collator.length, Object.prototype.toString.call(Intl.Collator()),
        Object.getOwnPropertyNames(Intl.Collator).join(','), Intl.Collator.supportedLocalesOf('de').join(',')]);
    // Casing by a locale's rules.
    check('locale casing', () => ['I'.toLocaleLowerCase('tr'), 'i'.toLocaleUpperCase('tr'), 'İSTANBUL'.toLocaleLowerCase('tr-TR'),
        'istanbul'.toLocaleUpperCase(['az', 'en']), 'I'.toLocaleLowerCase('en'), 'Iİ'.toLocaleLowerCase(), 'ΣΑΣ'.toLocaleLowerCase('el'),
        'ß'.toLocaleUpperCase('de'), 'Straße'.toLocaleUpperCase(), 'ÉCOLE'.toLocaleLowerCase('fr'), 'άδεια'.toLocaleUpperCase('el'), String.prototype.toLocaleLowerCase.call(12),
        String.prototype.toLocaleLowerCase.length, String.prototype.toLocaleUpperCase.name]);
    check('locale casing bad locale', () => 'a'.toLocaleLowerCase('not a locale!'));
    check('locale casing on null', () => String.prototype.toLocaleUpperCase.call(undefined));
    // The constructors called without `new`, as ECMA-402 allows, and their shape.
    check('DateTimeFormat without new', () => Intl.DateTimeFormat().resolvedOptions().timeZone);
    check('DateTimeFormat without new, options', () => Intl.DateTimeFormat('de-DE', { dateStyle: 'long' }).format(INSTANTS.ordinary));
    check('NumberFormat without new', () => Intl.NumberFormat('en-US').format(1234.5));
    check('NumberFormat without new, bad option', () => Intl.NumberFormat('en-US', { style: 'money' }));
    for (const name of ['DateTimeFormat', 'NumberFormat']) {
        const C = Intl[name];
        check(`${name} shape`, () => [C.name, C.length, typeof C, Object.getOwnPropertyNames(C).join(','),
            JSON.stringify(Object.getOwnPropertyDescriptor(C, 'prototype')),
            Object.getPrototypeOf(C()) === C.prototype, new C() instanceof C, C() instanceof C,
            C.prototype.constructor === C, Object.prototype.toString.call(C()),
            C.supportedLocalesOf('en-US').join(',')]);
        check(`${name} subclass`, () => {
            class Mine extends C { extra() { return 'mine' } }
            const mine = new Mine('en-US');
            return [mine instanceof Mine, mine instanceof C, mine.extra(), typeof mine.format, mine.resolvedOptions().locale];
        });
    }
    // Plural categories: cardinal and ordinal, in the tested locales and in
    // languages with more categories; fraction digits round first.
    const PLURAL_NUMBERS = [0, 1, 2, 3, 4, 5, 6, 11, 12, 21, 22, 23, 101, 111, 1.5, 0.5, 1.0005, 0.9999, -1, -2.5, 1e6, 1234567];
    for (const locale of [...LOCALES, 'ar', 'ru', 'pl', 'cy', 'ga', 'sl', 'he', 'pt-PT', 'zh-Hant-TW', 'sr-Latn']) {
        for (const type of ['cardinal', 'ordinal']) {
            check(`${locale} ${type} plurals`, () => {
                const rules = new Intl.PluralRules(locale, { type });
                return [rules.resolvedOptions(), PLURAL_NUMBERS.map((n) => rules.select(n)).join(',')];
            });
        }
    }
    check('plurals with fraction digits', () => [1, 1.5, 2, 0, 1.04, 1.05].map((n) =>
        [new Intl.PluralRules('en', { minimumFractionDigits: 1 }).select(n), new Intl.PluralRules('en', { maximumFractionDigits: 0 }).select(n),
            new Intl.PluralRules('fr', { minimumFractionDigits: 2 }).select(n), new Intl.PluralRules('sl', { maximumFractionDigits: 1 }).select(n)].join('/')).join(','));
    check('plurals resolvedOptions with digits', () => [new Intl.PluralRules('en', { minimumFractionDigits: 5 }).resolvedOptions(),
        new Intl.PluralRules('de', { maximumFractionDigits: 0, minimumIntegerDigits: 3 }).resolvedOptions()]);
    check('plurals of odd values', () => {
        const rules = new Intl.PluralRules('en');
        return [rules.select(), rules.select('1'), rules.select(NaN), rules.select(Infinity), rules.select(-Infinity), rules.select(null),
            rules.select(true), rules.select('abc'), rules.select(-0), rules.select({ valueOf: () => 1 })].join(',');
    });
    check('plurals of a BigInt', () => new Intl.PluralRules('en').select(1n));
    check('plural ranges', () => [['en', 1, 2], ['en', 0, 1], ['fr', 0, 1], ['fr', 1, 2], ['ar', 0, 3], ['ar', 3, 11], ['ru', 1, 2], ['ru', 2, 5],
        ['pl', 1, 5], ['en', 1, Infinity], ['en', 5, 1]].map(([locale, a, b]) => new Intl.PluralRules(locale).selectRange(a, b)).join(','));
    check('plural range of NaN', () => new Intl.PluralRules('en').selectRange(NaN, 1));
    check('plural range without an end', () => new Intl.PluralRules('en').selectRange(1));
    check('plural range without a start', () => new Intl.PluralRules('en').selectRange());
    check('PluralRules without new', () => Intl.PluralRules('en'));
    check('PluralRules bad type', () => new Intl.PluralRules('en', { type: 'x' }));
    check('PluralRules bad digits', () => new Intl.PluralRules('en', { minimumFractionDigits: 2, maximumFractionDigits: 1 }));
    check('PluralRules null options', () => new Intl.PluralRules('en', null));
    check('PluralRules bad locale', () => new Intl.PluralRules('not a locale!'));
    check('PluralRules wrong receiver', () => Intl.PluralRules.prototype.select.call({}, 1));
    check('PluralRules shape', () => [Intl.PluralRules.name, Intl.PluralRules.length, Object.prototype.toString.call(new Intl.PluralRules()),
        Object.getOwnPropertyNames(Intl.PluralRules.prototype).join(','), Intl.PluralRules.supportedLocalesOf('en-US').join(','),
        new Intl.PluralRules().resolvedOptions().locale]);
    // Lists: and, or and unit lists in every style, in every tested locale.
    const LISTS = [[], ['a'], ['a', 'b'], ['España', 'Suiza', 'Italia'], ['1', '2', '3', '4'], ['', 'x']];
    for (const locale of [...LOCALES, 'ar', 'he', 'zh-Hant-TW', 'th', 'cy']) {
        for (const type of ['conjunction', 'disjunction', 'unit']) {
            for (const style of ['long', 'short', 'narrow']) {
                check(`${locale} ${type} ${style} list`, () => {
                    const format = new Intl.ListFormat(locale, { type, style });
                    return [format.resolvedOptions(), LISTS.map((list) => format.format(list)).join(' | ')];
                });
            }
        }
    }
    check('list parts', () => [new Intl.ListFormat('en').formatToParts(['a', 'b', 'c']), new Intl.ListFormat('es', { type: 'disjunction' }).formatToParts(['', 'ocho']),
        new Intl.ListFormat('ja').formatToParts(), new Intl.ListFormat('en').formatToParts(new Set(['x', 'y']))]);
    check('list of odd values', () => [new Intl.ListFormat('en').format(), new Intl.ListFormat('en').format('ab'),
        new Intl.ListFormat('en').format(['a\ud800', '\udc00b']), new Intl.ListFormat('en').formatToParts(['a\ud800', 'b'])]);
    for (const [label, list] of [['number', 5], ['null', null], ['object', {}], ['array in a list', [[1, 2]]], ['number in a list', ['a', 1]],
        ['symbol in a list', [Symbol('s')]], ['object in a list', [{}]], ['undefined in a list', [undefined]], ['date in a list', [new Date(0)]]]) {
        check(`list of a ${label}`, () => new Intl.ListFormat('en').format(list));
    }
    check('ListFormat without new', () => Intl.ListFormat('en'));
    check('ListFormat bad type', () => new Intl.ListFormat('en', { type: 'x' }));
    check('ListFormat bad style', () => new Intl.ListFormat('en', { style: 'x' }));
    check('ListFormat string options', () => new Intl.ListFormat('en', 'x'));
    check('ListFormat null options', () => new Intl.ListFormat('en', null));
    check('ListFormat bad locale', () => new Intl.ListFormat('not a locale!'));
    check('ListFormat wrong receiver', () => [5, [], {}, undefined].map((receiver) => {
        try { return Intl.ListFormat.prototype.format.call(receiver, []) } catch (e) { return `${e.name}: ${e.message}` }
    }));
    check('ListFormat shape', () => [Intl.ListFormat.name, Intl.ListFormat.length, Object.prototype.toString.call(new Intl.ListFormat()),
        Object.getOwnPropertyNames(Intl.ListFormat.prototype).join(','), Intl.ListFormat.supportedLocalesOf('en-US').join(','),
        new Intl.ListFormat().resolvedOptions().locale]);
    // Null options: V8 names the caller, or the conversion.
    check('null options', () => [() => new Intl.DateTimeFormat('en', null), () => new Date(0).toLocaleString('en', null),
        () => (5).toLocaleString('en', null), () => 'a'.localeCompare('b', 'en', null), () => new Intl.Collator('en', null),
        () => new Intl.NumberFormat('en', null), () => new Date(0).toLocaleDateString('en', null)].map((f) => {
        try { return f() } catch (e) { return `${e.name}: ${e.message}` }
    }));
    return results;
}
