// `Intl` and the `toLocale*String` methods, as Node 20 (full ICU) gives them.
//
// Evaluated once at initialisation, after world.js, as a function expression
// the plugin calls with the global object and the native `request`. This file
// does ECMA-402's option processing (reading, validating and defaulting the
// options, with the errors V8 throws); the host formats (the Intl service,
// crates/runtime/src/services/intl.rs: ICU4X with CLDR data, IANA zones from
// jiff's tz database) and answers with the locale it resolved and the parts.
(function (global, request) {
    'use strict';

    const INTL = 6; // sandpipe-abi Service::Intl
    const RangeErrorCtor = RangeError;
    const TypeErrorCtor = TypeError;
    const ObjectCtor = Object;
    const NumberCtor = Number;
    const StringCtor = String;
    const isArray = Array.isArray;
    const dateNow = Date.now;
    const timeOf = Function.prototype.call.bind(Date.prototype.getTime);
    const numberValueOf = Function.prototype.call.bind(Number.prototype.valueOf);
    const bigintValueOf = Function.prototype.call.bind(BigInt.prototype.valueOf);
    const bigintToString = Function.prototype.call.bind(BigInt.prototype.toString);
    const defineProperty = Object.defineProperty;

    function host(payload) {
        const response = request(INTL, payload);
        if (response.error !== undefined) throw new RangeErrorCtor(response.error);
        return response.ok;
    }

    // The one locale a `locales` argument asks for (the first: ICU has data for them all), or null.
    function requestedLocale(locales) {
        if (locales === undefined) return null;
        if (typeof locales === 'string') return locales;
        if (locales === null) throw new TypeErrorCtor('Cannot convert undefined or null to object');
        const list = isArray(locales) ? locales : ObjectCtor(locales);
        if (list.length === undefined || list.length === 0) return null;
        const first = list[0];
        if (typeof first !== 'string' && (typeof first !== 'object' || first === null)) {
            throw new TypeErrorCtor('Language ID should be string or object.');
        }
        return StringCtor(first);
    }

    function optionsObject(options) {
        if (options === undefined) return ObjectCtor.create(null);
        if (options === null) throw new TypeErrorCtor('Cannot convert undefined or null to object');
        return ObjectCtor(options);
    }

    function stringOption(options, name, allowed, service) {
        const value = options[name];
        if (value === undefined) return undefined;
        const text = StringCtor(value);
        if (allowed.indexOf(text) < 0) {
            throw new RangeErrorCtor(`Value ${text} out of range for ${service} options property ${name}`);
        }
        return text;
    }

    function numberOption(options, name, minimum, maximum, fallback) {
        const value = options[name];
        if (value === undefined) return fallback;
        const n = NumberCtor(value);
        if (n !== n || n < minimum || n > maximum) throw new RangeErrorCtor(`${name} value is out of range.`);
        return Math.floor(n);
    }

    function unsupported(name) {
        return function () {
            throw new TypeErrorCtor(`Intl.${name} is not supported by sandpipe (provided: DateTimeFormat, NumberFormat, Collator, PluralRules, ListFormat)`);
        };
    }

    // ---- Dates.

    const DATE_SERVICE = 'Intl.DateTimeFormat';
    const DATE_FIELDS = ['weekday', 'era', 'year', 'month', 'day', 'hour', 'minute', 'second', 'fractionalSecondDigits', 'timeZoneName'];
    const STYLES = ['full', 'long', 'medium', 'short'];

    // ECMA-402 CreateDateTimeFormat's option reading and ToDateTimeOptions's
    // defaults: `required` is 'date', 'time' or 'any'; `defaults` 'date', 'time' or 'all'.
    function dateOptions(given, required, defaults, service) {
        const options = optionsObject(given);
        const resolved = {};
        const hour12 = options.hour12;
        if (hour12 !== undefined) resolved.hour12 = !!hour12;
        const hourCycle = stringOption(options, 'hourCycle', ['h11', 'h12', 'h23', 'h24'], service);
        if (hourCycle !== undefined && hour12 === undefined) resolved.hourCycle = hourCycle;
        let timeZone = options.timeZone;
        timeZone = timeZone === undefined ? null : StringCtor(timeZone);
        const fields = {
            weekday: ['narrow', 'short', 'long'],
            era: ['narrow', 'short', 'long'],
            year: ['2-digit', 'numeric'],
            month: ['2-digit', 'numeric', 'narrow', 'short', 'long'],
            day: ['2-digit', 'numeric'],
            hour: ['2-digit', 'numeric'],
            minute: ['2-digit', 'numeric'],
            second: ['2-digit', 'numeric'],
        };
        let anyField = null;
        for (const name of DATE_FIELDS) {
            let value;
            if (name === 'fractionalSecondDigits') {
                value = options.fractionalSecondDigits === undefined ? undefined : numberOption(options, name, 1, 3, undefined);
            } else if (name === 'timeZoneName') {
                value = stringOption(options, name, ['short', 'long', 'shortOffset', 'longOffset', 'shortGeneric', 'longGeneric'], service);
            } else {
                value = stringOption(options, name, fields[name], service);
            }
            if (value !== undefined) {
                resolved[name] = value;
                if (anyField === null) anyField = name;
            }
        }
        const dateStyle = stringOption(options, 'dateStyle', STYLES, service);
        const timeStyle = stringOption(options, 'timeStyle', STYLES, service);
        if (dateStyle !== undefined || timeStyle !== undefined) {
            if (anyField !== null) {
                throw new TypeErrorCtor(`Can't set option ${anyField} when ${dateStyle !== undefined ? 'dateStyle' : 'timeStyle'} is used`);
            }
            if (required === 'date' && timeStyle !== undefined) throw new TypeErrorCtor('Invalid option : timeStyle');
            if (required === 'time' && dateStyle !== undefined) throw new TypeErrorCtor('Invalid option : dateStyle');
            if (dateStyle !== undefined) resolved.dateStyle = dateStyle;
            if (timeStyle !== undefined) resolved.timeStyle = timeStyle;
        } else {
            const hasDate = resolved.weekday !== undefined || resolved.year !== undefined || resolved.month !== undefined || resolved.day !== undefined;
            const hasTime = resolved.hour !== undefined || resolved.minute !== undefined || resolved.second !== undefined || resolved.fractionalSecondDigits !== undefined;
            const needDefaults = !((required !== 'time' && hasDate) || (required !== 'date' && hasTime));
            if (needDefaults && (defaults === 'date' || defaults === 'all')) {
                resolved.year = resolved.month = resolved.day = 'numeric';
            }
            if (needDefaults && (defaults === 'time' || defaults === 'all')) {
                resolved.hour = resolved.minute = resolved.second = 'numeric';
            }
        }
        return { timeZone, options: resolved };
    }

    function formatDate(locale, timeZone, options, time) {
        return host({ op: 'date', locale, timeZone, time, options });
    }

    function joinParts(parts) {
        let text = '';
        for (let i = 0; i < parts.length; i++) text += parts[i][1];
        return text;
    }
    // V8 (Node 20) writes the U+202F NARROW NO-BREAK SPACE that CLDR 42+ puts
    // before AM/PM as a plain space in a formatted date (not in formatToParts).
    function joinDateParts(parts) {
        return joinParts(parts).replace(/\u202f/g, ' ');
    }

    // The instant `date` stands for, as DateTimeFormat's format reads it.
    function timeValue(date) {
        const time = date === undefined ? dateNow() : NumberCtor(date);
        if (time !== time || time === Infinity || time === -Infinity) throw new RangeErrorCtor('Invalid time value');
        return time;
    }

    // ECMA-402's older constructors may be called without `new`
    // (`Intl.DateTimeFormat().resolvedOptions().timeZone`); a class may not, and
    // the newer ones (PluralRules, ListFormat) refuse it with V8's error
    // (`requireNew`). The constructor is a function that makes an instance of
    // the class, whose prototype it shares; `length` is 0 as in V8.
    function callable(Class, name, requireNew) {
        const construct = Reflect.construct;
        const constructor = {
            [name]: function () {
                if (requireNew && new.target === undefined) throw new TypeErrorCtor(`Constructor Intl.${name} requires 'new'`);
                return construct(Class, [arguments[0], arguments[1]], new.target || constructor);
            },
        }[name];
        defineProperty(constructor, 'length', { value: 0, configurable: true });
        defineProperty(constructor, 'prototype', { value: Class.prototype, writable: false });
        defineProperty(Class.prototype, 'constructor', { value: constructor, writable: true, configurable: true });
        defineProperty(constructor, 'supportedLocalesOf', {
            value: Class.supportedLocalesOf, writable: true, configurable: true,
        });
        return constructor;
    }

    const dateState = new WeakMap();

    class DateTimeFormat {
        constructor(locales, options) {
            const locale = requestedLocale(locales);
            const { timeZone, options: resolved } = dateOptions(options, 'any', 'date', DATE_SERVICE);
            // Resolves locale, zone and pattern now, so a bad locale or zone throws here as in V8.
            const answer = formatDate(locale, timeZone, resolved, 0);
            dateState.set(this, { locale: answer.locale, timeZone: answer.timeZone, options: resolved, answer, bound: undefined });
        }

        get format() {
            const state = stateOf(this);
            if (state.bound === undefined) {
                state.bound = (date) => joinDateParts(formatDate(state.locale, state.timeZone, state.options, timeValue(date)).parts);
            }
            return state.bound;
        }

        formatToParts(date) {
            const state = stateOf(this);
            const parts = formatDate(state.locale, state.timeZone, state.options, timeValue(date)).parts;
            return parts.map((part) => ({ type: part[0], value: part[1] }));
        }

        resolvedOptions() {
            const state = stateOf(this);
            const answer = state.answer;
            const result = {
                locale: answer.locale,
                calendar: 'gregory',
                numberingSystem: 'latn',
                timeZone: answer.timeZone,
            };
            if (answer.hourCycle !== null) {
                result.hourCycle = answer.hourCycle;
                result.hour12 = answer.hourCycle === 'h11' || answer.hourCycle === 'h12';
            }
            if (state.options.dateStyle === undefined && state.options.timeStyle === undefined) {
                for (const name of DATE_FIELDS) {
                    if (answer.fields[name] !== undefined) result[name] = answer.fields[name];
                }
            } else {
                if (state.options.dateStyle !== undefined) result.dateStyle = state.options.dateStyle;
                if (state.options.timeStyle !== undefined) result.timeStyle = state.options.timeStyle;
            }
            return result;
        }

        static supportedLocalesOf(locales) {
            const locale = requestedLocale(locales);
            return locale === null ? [] : [formatDate(locale, null, {}, 0).locale];
        }
    }
    defineProperty(DateTimeFormat.prototype, Symbol.toStringTag, { value: 'Intl.DateTimeFormat', configurable: true });

    function stateOf(format) {
        const state = dateState.get(format);
        if (state === undefined) throw new TypeErrorCtor('Method Intl.DateTimeFormat.prototype.format called on incompatible receiver');
        return state;
    }

    function toLocale(name, required, defaults) {
        const service = `Date.prototype.${name}`;
        return function (locales, options) {
            const time = timeOf(this);
            if (time !== time) return 'Invalid Date';
            const locale = requestedLocale(locales);
            const { timeZone, options: resolved } = dateOptions(options, required, defaults, service);
            return joinDateParts(formatDate(locale, timeZone, resolved, time).parts);
        };
    }
    const dateMethods = {
        toLocaleString: toLocale('toLocaleString', 'any', 'all'),
        toLocaleDateString: toLocale('toLocaleDateString', 'date', 'date'),
        toLocaleTimeString: toLocale('toLocaleTimeString', 'time', 'time'),
    };
    for (const name of ['toLocaleString', 'toLocaleDateString', 'toLocaleTimeString']) {
        defineProperty(Date.prototype, name, { value: dateMethods[name], writable: true, configurable: true, enumerable: false });
    }

    // ---- Numbers.

    const NUMBER_SERVICE = 'Intl.NumberFormat';
    // Fraction digits of the currencies whose digits are not 2: CLDR 48's currencyData
    // `digits` (not ISO 4217's minor units: CLDR gives COP, HUF, IDR, PKR 0 and RSD 2), as ICU uses them.
    const CURRENCY_DIGITS = {
        AFN: 0, ALL: 0, BHD: 3, BIF: 0, CLF: 4, CLP: 0, COP: 0, DJF: 0, GNF: 0, HUF: 0, IDR: 0,
        IQD: 0, IRR: 0, ISK: 0, JOD: 3, JPY: 0, KMF: 0, KPW: 0, KRW: 0, KWD: 3, LAK: 0, LBP: 0,
        LYD: 3, MGA: 0, MMK: 0, OMR: 3, PKR: 0, PYG: 0, RWF: 0, SLL: 0, SOS: 0, SYP: 0, TND: 3,
        UGX: 0, UYI: 0, UYW: 4, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0, YER: 0,
    };

    // `caller` names the function in V8's message for null options.
    function numberOptions(given, caller) {
        if (given === null) throw new TypeErrorCtor(`${caller} called on null or undefined`);
        const options = optionsObject(given);
        const resolved = {};
        const style = stringOption(options, 'style', ['decimal', 'percent', 'currency', 'unit'], caller) || 'decimal';
        if (style === 'unit') throw new TypeErrorCtor('Intl.NumberFormat style "unit" is not supported by sandpipe');
        let currency = options.currency;
        if (currency !== undefined) {
            currency = StringCtor(currency);
            if (!/^[A-Za-z]{3}$/.test(currency)) throw new RangeErrorCtor(`Invalid currency code : ${currency}`);
            currency = currency.toUpperCase();
        }
        const currencyDisplay = stringOption(options, 'currencyDisplay', ['code', 'symbol', 'narrowSymbol', 'name'], caller) || 'symbol';
        const currencySign = stringOption(options, 'currencySign', ['standard', 'accounting'], caller) || 'standard';
        if (style === 'currency') {
            if (currency === undefined) throw new TypeErrorCtor('Currency code is required with currency style.');
            if (currencyDisplay === 'name') throw new TypeErrorCtor('Intl.NumberFormat currencyDisplay "name" is not supported by sandpipe');
            if (currencySign !== 'standard') throw new TypeErrorCtor('Intl.NumberFormat currencySign "accounting" is not supported by sandpipe');
        }
        const notation = stringOption(options, 'notation', ['standard', 'scientific', 'engineering', 'compact'], caller) || 'standard';
        if (notation !== 'standard') throw new TypeErrorCtor(`Intl.NumberFormat notation "${notation}" is not supported by sandpipe`);
        const digits = style === 'currency' ? (CURRENCY_DIGITS[currency] === undefined ? 2 : CURRENCY_DIGITS[currency]) : 0;
        const minimumDefault = digits;
        const maximumDefault = style === 'currency' ? digits : style === 'percent' ? 0 : 3;
        const { minimumIntegerDigits, minimumFractionDigits: minimum, maximumFractionDigits: maximum } =
            fractionDigits(options, minimumDefault, maximumDefault, caller);
        let useGrouping = options.useGrouping;
        if (useGrouping === undefined || useGrouping === true || useGrouping === 'true' || useGrouping === 'false') {
            useGrouping = 'auto';
        } else if (useGrouping === false || useGrouping === null || useGrouping === 0 || useGrouping === '') {
            useGrouping = false;
        } else {
            useGrouping = StringCtor(useGrouping);
            if (useGrouping !== 'always' && useGrouping !== 'auto' && useGrouping !== 'min2') {
                throw new RangeErrorCtor(`Value ${useGrouping} out of range for ${caller} options property useGrouping`);
            }
        }
        const signDisplay = stringOption(options, 'signDisplay', ['auto', 'never', 'always', 'exceptZero', 'negative'], caller) || 'auto';
        if (signDisplay !== 'auto') throw new TypeErrorCtor(`Intl.NumberFormat signDisplay "${signDisplay}" is not supported by sandpipe`);
        resolved.style = style;
        if (style === 'currency') {
            resolved.currency = currency;
            resolved.currencyDisplay = currencyDisplay;
        }
        resolved.minimumIntegerDigits = minimumIntegerDigits;
        resolved.minimumFractionDigits = minimum;
        resolved.maximumFractionDigits = maximum;
        resolved.useGrouping = useGrouping;
        return resolved;
    }

    // ECMA-402 SetNumberFormatDigitOptions, without significant digits.
    function fractionDigits(options, minimumDefault, maximumDefault, service) {
        const minimumIntegerDigits = numberOption(options, 'minimumIntegerDigits', 1, 21, 1);
        if (options.minimumSignificantDigits !== undefined || options.maximumSignificantDigits !== undefined) {
            throw new TypeErrorCtor(`${service} significant digits are not supported by sandpipe`);
        }
        let minimum = numberOption(options, 'minimumFractionDigits', 0, 100, undefined);
        let maximum = numberOption(options, 'maximumFractionDigits', 0, 100, undefined);
        if (minimum === undefined && maximum === undefined) {
            minimum = minimumDefault;
            maximum = maximumDefault;
        } else if (minimum === undefined) {
            minimum = Math.min(minimumDefault, maximum);
        } else if (maximum === undefined) {
            maximum = Math.max(maximumDefault, minimum);
        } else if (minimum > maximum) {
            throw new RangeErrorCtor('maximumFractionDigits value is out of range.');
        }
        return { minimumIntegerDigits, minimumFractionDigits: minimum, maximumFractionDigits: maximum };
    }

    function numberValue(value) {
        // A BigInt keeps every digit: its decimal text goes to the host.
        if (typeof value === 'bigint') return { bigint: bigintToString(value) };
        const n = NumberCtor(value);
        if (n !== n) return 'NaN';
        if (n === Infinity) return 'Infinity';
        if (n === -Infinity) return '-Infinity';
        // JSON has no -0, which formats as "-0".
        if (n === 0 && 1 / n < 0) return '-0';
        return n;
    }

    function formatNumber(locale, options, value) {
        return host({ op: 'number', locale, value: numberValue(value), options });
    }

    const numberState = new WeakMap();

    class NumberFormat {
        constructor(locales, options) {
            const locale = requestedLocale(locales);
            const resolved = numberOptions(options, NUMBER_SERVICE);
            const answer = formatNumber(locale, resolved, 0);
            numberState.set(this, { locale: answer.locale, options: resolved, bound: undefined });
        }

        get format() {
            const state = numberStateOf(this);
            if (state.bound === undefined) {
                state.bound = (value) => joinParts(formatNumber(state.locale, state.options, value).parts);
            }
            return state.bound;
        }

        formatToParts(value) {
            const state = numberStateOf(this);
            return formatNumber(state.locale, state.options, value).parts.map((part) => ({ type: part[0], value: part[1] }));
        }

        resolvedOptions() {
            const state = numberStateOf(this);
            const options = state.options;
            const result = { locale: state.locale, numberingSystem: 'latn', style: options.style };
            if (options.style === 'currency') {
                result.currency = options.currency;
                result.currencyDisplay = options.currencyDisplay;
                result.currencySign = 'standard';
            }
            result.minimumIntegerDigits = options.minimumIntegerDigits;
            result.minimumFractionDigits = options.minimumFractionDigits;
            result.maximumFractionDigits = options.maximumFractionDigits;
            result.useGrouping = options.useGrouping;
            result.notation = 'standard';
            result.signDisplay = 'auto';
            result.roundingMode = 'halfExpand';
            result.roundingIncrement = 1;
            result.trailingZeroDisplay = 'auto';
            result.roundingPriority = 'auto';
            return result;
        }

        static supportedLocalesOf(locales) {
            const locale = requestedLocale(locales);
            return locale === null ? [] : [formatNumber(locale, {}, 0).locale];
        }
    }
    defineProperty(NumberFormat.prototype, Symbol.toStringTag, { value: 'Intl.NumberFormat', configurable: true });

    function numberStateOf(format) {
        const state = numberState.get(format);
        if (state === undefined) throw new TypeErrorCtor('Method Intl.NumberFormat.prototype.format called on incompatible receiver');
        return state;
    }

    // The primitive a `toLocaleString` method's receiver holds, with V8's
    // error when it holds none (`valueOf` reads it, `type` names it).
    function thisValue(valueOf, receiver, type) {
        try {
            return valueOf(receiver);
        } catch (_) {
            throw new TypeErrorCtor(`${type}.prototype.toLocaleString requires that 'this' be a ${type}`);
        }
    }

    defineProperty(Number.prototype, 'toLocaleString', {
        value: function toLocaleString(locales, options) {
            const value = thisValue(numberValueOf, this, 'Number');
            return joinParts(formatNumber(requestedLocale(locales), numberOptions(options, 'Number.prototype.toLocaleString'), value).parts);
        },
        writable: true, configurable: true, enumerable: false,
    });

    defineProperty(BigInt.prototype, 'toLocaleString', {
        value: function toLocaleString(locales, options) {
            const value = thisValue(bigintValueOf, this, 'BigInt');
            return joinParts(formatNumber(requestedLocale(locales), numberOptions(options, 'BigInt.prototype.toLocaleString'), value).parts);
        },
        writable: true, configurable: true, enumerable: false,
    });

    // ---- Collation: `localeCompare` and `Intl.Collator`, ordered by the host
    // (crates/runtime/src/services/intl/collate.rs).

    const COLLATOR_SERVICE = 'Intl.Collator';

    const COLLATION_TYPE = /^[a-z0-9]{3,8}(-[a-z0-9]{3,8})*$/i;

    // ECMAScript's ToString, with V8's message for a symbol.
    function toText(value) {
        if (typeof value === 'string') return value;
        if (typeof value === 'symbol') throw new TypeErrorCtor('Cannot convert a Symbol value to a string');
        return `${value}`;
    }

    // ECMA-402 InitializeCollator's option reading, in its order.
    function collatorOptions(given, service) {
        if (given === null) throw new TypeErrorCtor(`${service} called on null or undefined`);
        const options = optionsObject(given);
        const usage = stringOption(options, 'usage', ['sort', 'search'], service);
        stringOption(options, 'localeMatcher', ['lookup', 'best fit'], service);
        // Checked as V8 checks it (a Unicode collation type's syntax), not used.
        const collation = options.collation;
        if (collation !== undefined && !COLLATION_TYPE.test(`${collation}`)) {
            throw new RangeErrorCtor(`Invalid collation : ${collation}`);
        }
        const numeric = options.numeric === undefined ? undefined : !!options.numeric;
        const caseFirst = stringOption(options, 'caseFirst', ['upper', 'lower', 'false'], service);
        const sensitivity = stringOption(options, 'sensitivity', ['base', 'accent', 'case', 'variant'], service);
        const ignorePunctuation = options.ignorePunctuation === undefined ? undefined : !!options.ignorePunctuation;
        const resolved = { usage: usage === undefined ? 'sort' : usage, sensitivity: sensitivity === undefined ? 'variant' : sensitivity };
        // Left out when not given: the locale decides (Thai ignores punctuation).
        if (ignorePunctuation !== undefined) resolved.ignorePunctuation = ignorePunctuation;
        if (numeric !== undefined) resolved.numeric = numeric;
        if (caseFirst !== undefined) resolved.caseFirst = caseFirst;
        return resolved;
    }

    // A collator's order: the host's sort key of each string (hex, so two keys
    // compare as strings as the collator orders their texts), kept per collator
    // for the strings seen lately, so a sort asks the host once per string
    // rather than once per comparison.
    // The keys of one order at a time, the one used last (a sort uses one),
    // bounded by the characters kept (texts, keys and a share per entry for
    // the map itself), so a connector that compares ever new strings, in any
    // number of orders, does not fill its memory with keys.
    const MAX_KEYED_CHARS = 1 << 18;
    const ENTRY_CHARS = 32;
    const MAX_KEYED_LENGTH = 1000;
    const MapCtor = Map;
    const keyed = { order: null, keys: new MapCtor(), chars: 0 };
    function newOrder(locale, options) {
        return { locale, options };
    }
    function keysOf(order) {
        if (keyed.order !== order) {
            keyed.order = order;
            keyed.keys = new MapCtor();
            keyed.chars = 0;
        }
        return keyed.keys;
    }
    function keep(text, key) {
        if (text.length > MAX_KEYED_LENGTH) return;
        const chars = text.length + key.length + ENTRY_CHARS;
        if (keyed.chars + chars > MAX_KEYED_CHARS) {
            keyed.keys.clear();
            keyed.chars = 0;
        }
        keyed.keys.set(text, key);
        keyed.chars += chars;
    }
    // Half of a surrogate pair cannot cross to the host as JSON text; ICU
    // orders one as U+FFFD, as V8's does.
    const isWellFormed = Function.prototype.call.bind(String.prototype.isWellFormed);
    const toWellFormed = Function.prototype.call.bind(String.prototype.toWellFormed);
    function compareStrings(order, a, b) {
        if (a === b) return 0;
        const keys = keysOf(order);
        let ka = keys.get(a);
        let kb = keys.get(b);
        if (ka === undefined || kb === undefined) {
            const texts = ka === undefined ? (kb === undefined ? [a, b] : [a]) : [b];
            for (let i = 0; i < texts.length; i++) texts[i] = toWellFormed(texts[i]);
            const answer = host({ op: 'keys', locale: order.locale, options: order.options, texts });
            if (ka === undefined) keep(a, (ka = answer[0]));
            if (kb === undefined) keep(b, (kb = answer[answer.length - 1]));
        }
        return ka < kb ? -1 : ka > kb ? 1 : 0;
    }

    const collatorState = new WeakMap();

    class Collator {
        constructor(locales, options) {
            const locale = requestedLocale(locales);
            const resolved = collatorOptions(options, COLLATOR_SERVICE);
            // Resolved now, so a bad locale throws here as in V8.
            const answer = host({ op: 'collator', locale, options: resolved });
            collatorState.set(this, { order: newOrder(locale, resolved), options: resolved, answer, bound: undefined });
        }

        get compare() {
            const state = collatorStateOf(this, 'get Intl.Collator.prototype.compare');
            if (state.bound === undefined) {
                const order = state.order;
                state.bound = (x, y) => compareStrings(
                    order,
                    toText(x),
                    toText(y),
                );
            }
            return state.bound;
        }

        resolvedOptions() {
            const state = collatorStateOf(this, 'Intl.Collator.prototype.resolvedOptions');
            return {
                locale: state.answer.locale,
                usage: state.options.usage,
                sensitivity: state.options.sensitivity,
                ignorePunctuation: state.answer.ignorePunctuation,
                collation: state.answer.collation,
                numeric: state.answer.numeric,
                caseFirst: state.answer.caseFirst,
            };
        }

        static supportedLocalesOf(locales) {
            const locale = requestedLocale(locales);
            return locale === null ? [] : [formatNumber(locale, {}, 0).locale];
        }
    }
    defineProperty(Collator.prototype, Symbol.toStringTag, { value: 'Intl.Collator', configurable: true });

    function collatorStateOf(collator, method) {
        const state = collatorState.get(collator);
        if (state === undefined) {
            const receiver = typeof collator === 'object' && collator !== null
                ? `#<${(collator.constructor && collator.constructor.name) || 'Object'}>`
                : StringCtor(collator);
            throw new TypeErrorCtor(`Method ${method} called on incompatible receiver ${receiver}`);
        }
        return state;
    }

    // localeCompare's orders: the default one, read once (most calls pass no
    // locale or options), and those of the last locales and options given.
    const DEFAULT_ORDER = newOrder(null, collatorOptions(undefined, COLLATOR_SERVICE));
    const givenOrders = new MapCtor();
    const stringify = JSON.stringify;
    function orderFor(locales, options) {
        const locale = requestedLocale(locales);
        const resolved = collatorOptions(options, 'String.prototype.localeCompare');
        const name = stringify([locale, resolved]);
        let order = givenOrders.get(name);
        if (order === undefined) {
            host({ op: 'collator', locale, options: resolved });
            if (givenOrders.size >= 16) givenOrders.clear();
            order = newOrder(locale, resolved);
            givenOrders.set(name, order);
        }
        return order;
    }

    defineProperty(String.prototype, 'localeCompare', {
        value: function localeCompare(that, locales, options) {
            if (this === undefined || this === null) {
                throw new TypeErrorCtor('String.prototype.localeCompare called on null or undefined');
            }
            const a = toText(this);
            const b = toText(that);
            if (locales === undefined && options === undefined) {
                // The common case, inline: both keys known.
                if (keyed.order === DEFAULT_ORDER) {
                    const ka = keyed.keys.get(a);
                    const kb = keyed.keys.get(b);
                    if (ka !== undefined && kb !== undefined) return ka < kb ? -1 : ka > kb ? 1 : 0;
                }
                return compareStrings(DEFAULT_ORDER, a, b);
            }
            return compareStrings(orderFor(locales, options), a, b);
        },
        writable: true, configurable: true, enumerable: false,
    });
    defineProperty(String.prototype.localeCompare, 'length', { value: 1, configurable: true });

    // ---- Casing by a locale's rules (`'I'.toLocaleLowerCase('tr')` is 'ı'):
    // with a locale, the host's `icu_casemap`; without one, the default locale
    // (en-US) cases as `toLowerCase`/`toUpperCase` do.
    const toLower = Function.prototype.call.bind(String.prototype.toLowerCase);
    const toUpper = Function.prototype.call.bind(String.prototype.toUpperCase);
    const split = Function.prototype.call.bind(String.prototype.split);
    const join = Function.prototype.call.bind(Array.prototype.join);
    const LONE_SURROGATE = /(\p{Cs})/u;
    function localeCase(name, upper) {
        const method = {
            [name]: function () {
                if (this === undefined || this === null) {
                    throw new TypeErrorCtor(`String.prototype.${name} called on null or undefined`);
                }
                const text = toText(this);
                const locales = arguments[0];
                if (locales === undefined) return upper ? toUpper(text) : toLower(text);
                const locale = requestedLocale(locales);
                if (isWellFormed(text)) return host({ op: 'case', locale, upper, text });
                // Half a surrogate pair stays as it is, as in V8; the rest is cased.
                const pieces = split(text, LONE_SURROGATE);
                for (let i = 0; i < pieces.length; i += 2) {
                    if (pieces[i] !== '') pieces[i] = host({ op: 'case', locale, upper, text: pieces[i] });
                }
                return join(pieces, '');
            },
        }[name];
        defineProperty(String.prototype, name, { value: method, writable: true, configurable: true, enumerable: false });
    }
    localeCase('toLocaleLowerCase', false);
    localeCase('toLocaleUpperCase', true);

    // ---- Plural categories (`Intl.PluralRules`) and lists (`Intl.ListFormat`),
    // by the host (crates/runtime/src/services/intl/plural.rs and list.rs).

    // How V8 writes a value in a TypeError's message (`#<Object>`, `[object Array]`).
    const objectToString = Function.prototype.call.bind(Object.prototype.toString);
    const functionToString = Function.prototype.call.bind(Function.prototype.toString);
    const getPrototypeOf = Object.getPrototypeOf;
    function describe(value) {
        if (typeof value === 'function') return functionToString(value);
        if (typeof value === 'symbol') return StringCtor(value);
        if (typeof value !== 'object' || value === null) return `${value}`;
        if (getPrototypeOf(value) === ObjectCtor.prototype) return '#<Object>';
        return objectToString(value);
    }

    // The state `map` keeps for `receiver`, an instance of `service`; V8's
    // error naming `method` and the receiver when it is none.
    function stateIn(map, service, method, receiver) {
        const state = map.get(receiver);
        if (state === undefined) {
            throw new TypeErrorCtor(`Method ${service}.prototype.${method} called on incompatible receiver ${describe(receiver)}`);
        }
        return state;
    }

    // ECMAScript's ToNumber, with V8's message for a BigInt.
    function toNumber(value) {
        if (typeof value === 'bigint') throw new TypeErrorCtor('Cannot convert a BigInt value to a number');
        return NumberCtor(value);
    }

    // ECMA-402 SetNumberFormatDigitOptions for PluralRules (no significant digits).
    function pluralOptions(given) {
        if (given === null) throw new TypeErrorCtor(`${PLURAL_SERVICE} called on null or undefined`);
        const options = optionsObject(given);
        stringOption(options, 'localeMatcher', ['lookup', 'best fit'], PLURAL_SERVICE);
        const type = stringOption(options, 'type', ['cardinal', 'ordinal'], PLURAL_SERVICE) || 'cardinal';
        const digits = fractionDigits(options, 0, 3, PLURAL_SERVICE);
        return {
            type,
            minimumIntegerDigits: digits.minimumIntegerDigits,
            minimumFractionDigits: digits.minimumFractionDigits,
            maximumFractionDigits: digits.maximumFractionDigits,
        };
    }

    const PLURAL_SERVICE = 'Intl.PluralRules';
    const pluralState = new WeakMap();

    function plural(state, value, end) {
        return host({ op: 'plural', locale: state.locale, ...state.options, value, end });
    }

    class PluralRules {
        constructor(locales, options) {
            const locale = requestedLocale(locales);
            const resolved = pluralOptions(options);
            const answer = host({ op: 'plural', locale, ...resolved });
            pluralState.set(this, { locale: answer.locale, options: resolved, categories: answer.categories });
        }

        resolvedOptions() {
            const state = stateIn(pluralState, PLURAL_SERVICE, 'resolvedOptions', this);
            const options = state.options;
            return {
                locale: state.locale,
                type: options.type,
                minimumIntegerDigits: options.minimumIntegerDigits,
                minimumFractionDigits: options.minimumFractionDigits,
                maximumFractionDigits: options.maximumFractionDigits,
                pluralCategories: state.categories.slice(),
            };
        }

        select(value) {
            const state = stateIn(pluralState, PLURAL_SERVICE, 'select', this);
            const n = toNumber(value);
            // NaN and the infinities are "other" in every locale.
            if (n !== n || n === Infinity || n === -Infinity) return 'other';
            return plural(state, n).category;
        }

        selectRange(start, end) {
            const state = stateIn(pluralState, PLURAL_SERVICE, 'selectRange', this);
            if (start === undefined) throw new TypeErrorCtor('Invalid startRange : undefined');
            if (end === undefined) throw new TypeErrorCtor('Invalid endRange : undefined');
            const from = toNumber(start);
            const to = toNumber(end);
            if (from !== from) throw new RangeErrorCtor('Invalid startRange : NaN');
            if (to !== to) throw new RangeErrorCtor('Invalid endRange : NaN');
            const finite = (n) => (n === Infinity || n === -Infinity ? undefined : n);
            if (finite(from) === undefined || finite(to) === undefined) return 'other';
            return plural(state, from, to).category;
        }

        static supportedLocalesOf(locales) {
            const locale = requestedLocale(locales);
            return locale === null ? [] : [formatNumber(locale, {}, 0).locale];
        }
    }
    defineProperty(PluralRules.prototype, Symbol.toStringTag, { value: 'Intl.PluralRules', configurable: true });

    const LIST_SERVICE = 'Intl.ListFormat';
    const listState = new WeakMap();

    // ECMA-402 StringListFromIterable.
    function stringList(list) {
        if (list === undefined) return [];
        if (list === null || list[Symbol.iterator] === undefined) {
            const what = list === null ? 'object null' : typeof list === 'object' ? 'object' : `${typeof list} ${describe(list)}`;
            throw new TypeErrorCtor(`${what} is not iterable (cannot read property Symbol(Symbol.iterator))`);
        }
        const items = [];
        for (const item of list) {
            if (typeof item !== 'string') throw new TypeErrorCtor(`Iterable yielded ${describe(item)} which is not a string`);
            items.push(item);
        }
        return items;
    }

    // The list's parts: the host writes the literals; each element is the
    // item as given (half a surrogate pair, which cannot cross as JSON text,
    // is sent well-formed and given back as it was).
    function listParts(state, list) {
        const items = stringList(list);
        const sent = items.map((item) => (isWellFormed(item) ? item : toWellFormed(item)));
        const parts = host({ op: 'list', locale: state.locale, type: state.type, style: state.style, items: sent }).parts;
        let element = 0;
        for (let i = 0; i < parts.length; i++) {
            if (parts[i][0] === 'element') parts[i][1] = items[element++];
        }
        // V8 leaves out an empty element.
        return parts.filter((part) => part[1] !== '');
    }

    class ListFormat {
        constructor(locales, options) {
            const locale = requestedLocale(locales);
            // GetOptionsObject: undefined or an object.
            if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeErrorCtor('invalid_argument');
            const given = options === undefined ? ObjectCtor.create(null) : options;
            stringOption(given, 'localeMatcher', ['lookup', 'best fit'], LIST_SERVICE);
            const type = stringOption(given, 'type', ['conjunction', 'disjunction', 'unit'], LIST_SERVICE) || 'conjunction';
            const style = stringOption(given, 'style', ['long', 'short', 'narrow'], LIST_SERVICE) || 'long';
            const answer = host({ op: 'list', locale, type, style, items: [] });
            listState.set(this, { locale: answer.locale, type, style });
        }

        resolvedOptions() {
            const state = stateIn(listState, LIST_SERVICE, 'resolvedOptions', this);
            return { locale: state.locale, type: state.type, style: state.style };
        }

        format(list) {
            return joinParts(listParts(stateIn(listState, LIST_SERVICE, 'format', this), list));
        }

        formatToParts(list) {
            return listParts(stateIn(listState, LIST_SERVICE, 'formatToParts', this), list).map((part) => ({ type: part[0], value: part[1] }));
        }

        static supportedLocalesOf(locales) {
            const locale = requestedLocale(locales);
            return locale === null ? [] : [formatNumber(locale, {}, 0).locale];
        }
    }
    defineProperty(ListFormat.prototype, Symbol.toStringTag, { value: 'Intl.ListFormat', configurable: true });

    const Intl = {
        DateTimeFormat: callable(DateTimeFormat, 'DateTimeFormat'),
        NumberFormat: callable(NumberFormat, 'NumberFormat'),
        Collator: callable(Collator, 'Collator'),
        PluralRules: callable(PluralRules, 'PluralRules', true),
        ListFormat: callable(ListFormat, 'ListFormat', true),
        RelativeTimeFormat: unsupported('RelativeTimeFormat'),
        DisplayNames: unsupported('DisplayNames'),
        Segmenter: unsupported('Segmenter'),
        Locale: unsupported('Locale'),
        getCanonicalLocales(locales) {
            const locale = requestedLocale(locales);
            return locale === null ? [] : [formatNumber(locale, {}, 0).locale];
        },
        supportedValuesOf: unsupported('supportedValuesOf'),
    };
    defineProperty(Intl, Symbol.toStringTag, { value: 'Intl', configurable: true });
    defineProperty(global, 'Intl', { value: Intl, writable: true, configurable: true, enumerable: false });
});
