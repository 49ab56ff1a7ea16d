// `Intl` and the `toLocale*String` methods, installed on first use.
//
// Evaluated once at initialisation, after world.js, as a function expression
// the plugin calls with the global object, `load` (evaluates intl.js's
// bytecode and gives its function expression) and the native `request`.
// Few connectors format with `Intl`, and evaluating intl.js in every instance
// made each one slower to get ready, so until first use the global object
// holds an accessor for `Intl` and Date.prototype/Number.prototype hold
// stand-ins with the real methods' names and lengths. The first read of
// `Intl` or call of a stand-in evaluates intl.js and puts the real values in
// place as the data properties intl.js made when it ran eagerly (same
// attributes, same places in property order); from then on nothing of this
// file is reached. A property the connector replaced or deleted before first
// use keeps what the connector left.
(function (global, load, request) {
    'use strict';

    const reflectDefine = Reflect.defineProperty;
    const reflectApply = Reflect.apply;
    const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
    const DatePrototype = Date.prototype;
    const NumberPrototype = Number.prototype;

    let real = null;

    // intl.js's methods: Date's are anonymous, Number's is named, all take (locales, options).
    function dateStandIn(name) {
        return function (locales, options) {
            return reflectApply(evaluate().dateMethods[name], this, arguments);
        };
    }
    const standIns = [
        { target: DatePrototype, name: 'toLocaleString', standIn: dateStandIn('toLocaleString'), pick: (made) => made.dateMethods.toLocaleString },
        { target: DatePrototype, name: 'toLocaleDateString', standIn: dateStandIn('toLocaleDateString'), pick: (made) => made.dateMethods.toLocaleDateString },
        { target: DatePrototype, name: 'toLocaleTimeString', standIn: dateStandIn('toLocaleTimeString'), pick: (made) => made.dateMethods.toLocaleTimeString },
        {
            target: NumberPrototype,
            name: 'toLocaleString',
            standIn: function toLocaleString(locales, options) {
                return reflectApply(evaluate().numberToLocaleString, this, arguments);
            },
            pick: (made) => made.numberToLocaleString,
        },
    ];

    function getIntl() {
        return evaluate().Intl;
    }

    // What assigning to the data property does: the value changes, the
    // attributes stay (on another receiver, a new own data property).
    function setIntl(value) {
        if (this === global) {
            reflectDefine(global, 'Intl', { value, writable: true, configurable: true, enumerable: false });
        } else if ((typeof this === 'object' && this !== null) || typeof this === 'function') {
            reflectDefine(this, 'Intl', { value, writable: true, configurable: true, enumerable: true });
        }
    }

    // Evaluates intl.js once and replaces whatever stand-in is still in place.
    // Until it returns, nothing is changed, so a failure (a limit hit inside
    // intl.js) leaves the stand-ins to try again.
    function evaluate() {
        if (real !== null) return real;
        const made = load()(request);
        real = made;
        const intl = getOwnPropertyDescriptor(global, 'Intl');
        if (intl !== undefined && intl.get === getIntl) {
            reflectDefine(global, 'Intl', { value: made.Intl, writable: true, configurable: true, enumerable: false });
        }
        // An indexed loop: the connector may have replaced Array's iterator by now.
        for (let i = 0; i < standIns.length; i++) {
            const { target, name, standIn, pick } = standIns[i];
            const now = getOwnPropertyDescriptor(target, name);
            // Only the value: attributes the connector changed stay changed.
            if (now !== undefined && now.value === standIn) reflectDefine(target, name, { value: pick(made) });
        }
        return made;
    }

    for (const { target, name, standIn } of standIns) {
        reflectDefine(target, name, { value: standIn, writable: true, configurable: true, enumerable: false });
    }
    reflectDefine(global, 'Intl', { get: getIntl, set: setIntl, configurable: true, enumerable: false });
});
