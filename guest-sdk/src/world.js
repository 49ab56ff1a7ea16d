// The JavaScript world a connector runs in, and the dispatcher the plugin calls.
//
// Evaluated once, when the plugin is initialised (so it is part of the
// pre-initialised snapshot), as a function expression that the plugin calls
// with the global object and its native functions. Everything the dispatcher
// needs is captured here, before any connector code runs, so a connector that
// replaces `JSON` or pollutes prototypes cannot redirect the plugin.
(function (global, nativeLog, specialNames) {
    'use strict';

    const stringify = JSON.stringify;
    const objectToString = Object.prototype.toString;
    const isArray = Array.isArray;
    const DateCtor = Date;
    const ErrorCtor = Error;
    const ProxyCtor = Proxy;

    // console.* → one host log line per call (levels as in sandpipe-abi LogLevel).
    function formatArg(value) {
        if (typeof value === 'string') return value;
        if (value instanceof ErrorCtor) return value.stack ? `${value.name}: ${value.message}\n${value.stack}` : `${value.name}: ${value.message}`;
        if (value === undefined || typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') return String(value);
        try {
            const text = stringify(value);
            return text === undefined ? String(value) : text;
        } catch (_) {
            return objectToString.call(value);
        }
    }
    function logger(level) {
        return function () {
            let line = '';
            for (let i = 0; i < arguments.length; i++) line += (i ? ' ' : '') + formatArg(arguments[i]);
            nativeLog(level, line);
        };
    }
    const console = {
        debug: logger(0),
        info: logger(1),
        log: logger(2),
        warn: logger(3),
        error: logger(4),
    };
    console.trace = console.debug;
    global.console = console;

    class RetryError extends ErrorCtor {
        constructor(message) {
            super(message);
            this.name = 'RetryError';
        }
    }
    global.RetryError = RetryError;

    // CommonJS globals: connectors written as `module.exports = {...}` or `exports.f = ...`
    // (and ES modules, which the compiler rewrites to the same shape) fill these.
    const module = { exports: {} };
    global.module = module;
    global.exports = module.exports;

    // Parts of `meta` that PostHog deprecated: any use fails with a clear message.
    function unsupported(name, why) {
        return new ProxyCtor({}, {
            get(_, prop) {
                if (typeof prop === 'symbol') return undefined;
                return function () {
                    throw new ErrorCtor(`meta.${name}.${String(prop)}() is not supported by sandpipe: ${why}`);
                };
            },
        });
    }

    // The special functions the connector defines: name → [function, receiver].
    const connector = {};
    let meta = null;

    function pick(owner, name) {
        if (owner === null || (typeof owner !== 'object' && typeof owner !== 'function')) return undefined;
        let fn;
        try { fn = owner[name]; } catch (_) { return undefined; }
        return typeof fn === 'function' ? [fn, owner] : undefined;
    }

    // Finds each special function the way PostHog authors write them: CommonJS
    // exports first, then a default-exported object, then plain top-level
    // declarations (`topLevel` is the script's completion value, built by the
    // plugin's compile step). Returns the names found.
    function resolve(topLevel) {
        const exported = module.exports;
        let fallback;
        try { fallback = exported !== null && typeof exported === 'object' ? exported.default : undefined; } catch (_) { fallback = undefined; }
        const found = [];
        for (let i = 0; i < specialNames.length; i++) {
            const name = specialNames[i];
            const entry = pick(exported, name) || pick(fallback, name) || pick(topLevel, name);
            if (entry) {
                connector[name] = entry;
                found.push(name);
            }
        }
        return found;
    }

    function invoke(name, args) {
        const entry = connector[name];
        if (!entry) return undefined;
        return entry[0].apply(entry[1], args);
    }

    function makeMeta(input) {
        return {
            config: input.config !== null && typeof input.config === 'object' ? input.config : {},
            attachments: input.attachments !== null && typeof input.attachments === 'object' ? input.attachments : {},
            global: {},
            jobs: unsupported('jobs', 'jobs were removed from PostHog plugins'),
            metrics: unsupported('metrics', 'metrics were removed from PostHog plugins'),
            utils: unsupported('utils', 'utils (cursor) were removed from PostHog plugins'),
        };
    }

    // PostHog hands composeWebhook a reduced copy of the event whose timestamp is a Date.
    function webhookEvent(event) {
        let timestamp = event.timestamp;
        if (typeof timestamp === 'string' || typeof timestamp === 'number') {
            const date = new DateCtor(timestamp);
            if (date.getTime() === date.getTime()) timestamp = date;
        }
        return {
            uuid: event.uuid,
            event: event.event,
            team_id: event.team_id,
            distinct_id: event.distinct_id,
            properties: event.properties,
            timestamp,
        };
    }

    function describeType(value) {
        if (value === null) return 'null';
        if (isArray(value)) return 'an array';
        return `a ${typeof value}`;
    }

    // Starts a call (Call numbers as in sandpipe-abi); may return a promise.
    function call(kind, input) {
        switch (kind) {
            case 1:
                meta = makeMeta(input);
                return invoke('setupPlugin', [meta]);
            case 2:
                return invoke('processEvent', [input, meta]);
            case 3:
                return invoke('composeWebhook', [webhookEvent(input), meta]);
            case 4:
                return invoke('teardownPlugin', [meta]);
            default:
                throw new ErrorCtor(`unknown call ${kind}`);
        }
    }

    // Turns a settled call's value into the JSON text the host reads.
    function output(kind, value) {
        if (kind === 2 || kind === 3) {
            const what = kind === 2 ? 'processEvent' : 'composeWebhook';
            if (!value) return 'null';
            if (typeof value !== 'object' || isArray(value)) {
                throw new TypeError(`${what} returned ${describeType(value)}, expected ${kind === 2 ? 'an event object' : 'a request object'} or null`);
            }
            const text = stringify(value);
            if (typeof text !== 'string') throw new TypeError(`${what} returned a value that is not JSON`);
            return text;
        }
        return 'null';
    }

    // A stack without the frames of this file (and the native `apply` that calls into the connector).
    function authorFrames(stack) {
        const lines = stack.split('\n');
        const kept = [];
        for (let i = 0; i < lines.length; i++) {
            const line = lines[i];
            if (line.indexOf('sandpipe:world') >= 0 || line.trim() === 'at apply (native)') continue;
            kept.push(line);
        }
        return kept.join('\n');
    }

    // Any thrown value → JSON {name, message, stack}; name is null for non-Error values.
    function describe(error) {
        let name = null, message, stack = '';
        try {
            if (error instanceof ErrorCtor) {
                name = String(error.name);
                message = String(error.message);
                stack = error.stack === undefined ? '' : authorFrames(String(error.stack));
            } else if (typeof error === 'symbol') {
                message = error.toString();
            } else if (error !== null && typeof error === 'object') {
                message = stringify(error);
                if (typeof message !== 'string') message = objectToString.call(error);
            } else {
                message = String(error);
            }
        } catch (_) {
            message = objectToString.call(error);
        }
        return stringify({ name, message, stack });
    }

    return { resolve, call, output, describe };
})
