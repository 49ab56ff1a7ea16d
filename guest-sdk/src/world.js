// The JavaScript world a connector runs in, and the dispatcher the plugin calls.
//
// Evaluated once, when the plugin is initialised (so it is part of the
// pre-initialised snapshot), as a function expression that the plugin calls
// with the global object and its native functions. Everything the dispatcher
// needs is captured here, before any connector code runs, so a connector that
// replaces `JSON` or pollutes prototypes cannot redirect the plugin.
(function (global, nativeLog, natives) {
    'use strict';

    const stringify = JSON.stringify;
    const parse = JSON.parse;
    const objectToString = Object.prototype.toString;
    const isArray = Array.isArray;
    const DateCtor = Date;
    const ErrorCtor = Error;
    const ProxyCtor = Proxy;
    const Uint8ArrayCtor = Uint8Array;
    const StringCtor = String;
    // Uncurried: a connector that replaces String.prototype.slice cannot unbound an error.
    const uncurry = (fn) => Function.prototype.call.bind(fn);
    const sliceString = uncurry(String.prototype.slice);
    const charCodeAt = uncurry(String.prototype.charCodeAt);
    const toWellFormed = uncurry(String.prototype.toWellFormed);
    const describeObject = uncurry(Object.prototype.toString);
    const textEncoder = new TextEncoder();
    const textDecoder = new TextDecoder();

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
            // Half a surrogate pair is printed as U+FFFD, as Node prints it.
            nativeLog(level, toWellFormed(line));
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
    // Node's name for the global object, which PostHog's sandbox had too.
    global.global = global;

    // ---- Timers, on a virtual clock that starts at 0 with every call.
    //
    // setTimeout/setInterval callbacks run in the call's own job loop, in the
    // order Node would fire them (earliest due first, ties in the order they
    // were set; the promise jobs they cause run before the next timer). The
    // clock jumps to each timer's time instead of waiting for it, so a delay
    // orders timers but costs nothing, and `Date` does not move with it. A timer
    // due after the call's deadline fails the call, as the deadline would have
    // stopped it in real time; timers still pending when the call's result is
    // ready are cancelled.
    const MAX_TIMER_DELAY = 2147483647;
    let timers = [];
    let clock = 0;
    let timerSeq = 0;
    let nextTimerId = 1;
    let callDeadlineMs = Infinity;
    // A scheduled task's own deadline, while it runs (`task`); `endTimers`,
    // which the plugin runs after every task, ends it.
    let taskDeadlineMs;
    const deadlineMs = () => (taskDeadlineMs === undefined ? callDeadlineMs : taskDeadlineMs);

    class Timeout {
        constructor(id) { this._id = id; }
        ref() { return this; }
        unref() { return this; }
        hasRef() { return true; }
        [Symbol.toPrimitive]() { return this._id; }
    }

    function schedule(callback, delay, args, repeat) {
        if (typeof callback !== 'function') {
            throw new TypeError(`The "callback" argument must be of type function. Received ${describeType(callback)}`);
        }
        let ms = Number(delay);
        // As Node: a delay under 1 ms, over the maximum or not a number is 1 ms.
        if (!(ms >= 1 && ms <= MAX_TIMER_DELAY)) ms = 1;
        ms = Math.trunc(ms);
        const id = nextTimerId++;
        natives.timerSet();
        timers.push({ id, due: clock + ms, seq: timerSeq++, callback, args, interval: repeat ? ms : 0 });
        return new Timeout(id);
    }
    function cancel(handle) {
        if (handle === undefined || handle === null) return;
        const id = handle instanceof Timeout ? handle._id : Number(handle);
        timers = timers.filter((timer) => timer.id !== id);
    }
    global.setTimeout = function setTimeout(callback, delay, ...args) { return schedule(callback, delay, args, false); };
    global.setInterval = function setInterval(callback, delay, ...args) { return schedule(callback, delay, args, true); };
    global.clearTimeout = cancel;
    global.clearInterval = cancel;
    const resolvedPromise = Promise.resolve();
    const promiseThen = uncurry(Promise.prototype.then);
    global.queueMicrotask = function queueMicrotask(callback) {
        if (typeof callback !== 'function') {
            throw new TypeError(`The "callback" argument must be of type function. Received ${describeType(callback)}`);
        }
        promiseThen(resolvedPromise, () => callback());
    };

    // Fires the next timer; false when none is pending. Called by the plugin's
    // job loop while a call's promise is pending and no job is left.
    function fireTimer() {
        if (timers.length === 0) return false;
        let next = 0;
        for (let i = 1; i < timers.length; i++) {
            const timer = timers[i];
            if (timer.due < timers[next].due || (timer.due === timers[next].due && timer.seq < timers[next].seq)) next = i;
        }
        const timer = timers[next];
        if (timer.due > deadlineMs()) {
            timers = [];
            throw new ErrorCtor(`a timer set for ${timer.due} ms into the call fires after the call's deadline (${deadlineMs()} ms)`);
        }
        clock = timer.due;
        if (timer.interval) {
            timer.due = clock + timer.interval;
            timer.seq = timerSeq++;
        } else {
            timers.splice(next, 1);
        }
        timer.callback.apply(undefined, timer.args);
        return true;
    }
    // Ends a call's timers: pending ones are cancelled, the clock goes back to 0.
    // The plugin calls it only after a call in which `schedule` told it a timer
    // was set (natives.timerSet); without one there is nothing to end.
    function endTimers() {
        timers = [];
        clock = 0;
        taskDeadlineMs = undefined;
    }


    // ---- Node-style globals: Buffer, atob/btoa, crypto, URL, URLSearchParams, structuredClone.

    function normalizeEncoding(encoding) {
        const name = encoding === undefined || encoding === null ? 'utf8' : String(encoding).toLowerCase();
        switch (name) {
            case 'utf8': case 'utf-8': return 'utf8';
            case 'base64': return 'base64';
            case 'base64url': return 'base64url';
            case 'hex': return 'hex';
            case 'latin1': case 'binary': return 'latin1';
            case 'ascii': return 'ascii';
            case 'ucs2': case 'ucs-2': case 'utf16le': case 'utf-16le': return 'utf16le';
            default: throw new TypeError(`Unknown encoding: ${encoding}`);
        }
    }

    function stringBytes(text, encoding) {
        switch (normalizeEncoding(encoding)) {
            case 'utf8': return textEncoder.encode(text);
            case 'base64': case 'base64url': return natives.base64Decode(text);
            case 'hex': {
                const out = [];
                for (let i = 0; i + 1 < text.length; i += 2) {
                    const byte = parseInt(text.substr(i, 2), 16);
                    if (byte !== byte) break;
                    out.push(byte);
                }
                return new Uint8ArrayCtor(out);
            }
            case 'latin1': case 'ascii': {
                const out = new Uint8ArrayCtor(text.length);
                for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
                return out;
            }
            case 'utf16le': {
                const out = new Uint8ArrayCtor(text.length * 2);
                for (let i = 0; i < text.length; i++) {
                    const code = text.charCodeAt(i);
                    out[2 * i] = code & 0xff;
                    out[2 * i + 1] = code >> 8;
                }
                return out;
            }
        }
    }

    function bytesOf(value, encoding) {
        if (typeof value === 'string') return stringBytes(value, encoding);
        if (value instanceof ArrayBuffer) return new Uint8ArrayCtor(value);
        if (ArrayBuffer.isView(value)) return new Uint8ArrayCtor(value.buffer, value.byteOffset, value.byteLength);
        if (isArray(value)) return new Uint8ArrayCtor(value);
        if (value && value.type === 'Buffer' && isArray(value.data)) return new Uint8ArrayCtor(value.data);
        throw new TypeError('The first argument must be a string, Buffer, ArrayBuffer, Array, or array-like object');
    }

    class Buffer extends Uint8ArrayCtor {
        static from(value, encodingOrOffset, length) {
            if (value instanceof ArrayBuffer) {
                const offset = encodingOrOffset === undefined ? 0 : encodingOrOffset >>> 0;
                return new Buffer(value, offset, length === undefined ? value.byteLength - offset : length >>> 0);
            }
            const bytes = bytesOf(value, encodingOrOffset);
            const out = new Buffer(bytes.length);
            out.set(bytes);
            return out;
        }
        static alloc(size, fill, encoding) {
            const out = new Buffer(size >>> 0);
            if (fill !== undefined && fill !== 0) {
                const pattern = typeof fill === 'number' ? [fill & 0xff] : bytesOf(fill, encoding);
                for (let i = 0; i < out.length && pattern.length; i++) out[i] = pattern[i % pattern.length];
            }
            return out;
        }
        static allocUnsafe(size) { return Buffer.alloc(size); }
        static isBuffer(value) { return value instanceof Buffer; }
        static isEncoding(encoding) {
            try { normalizeEncoding(encoding); return typeof encoding === 'string'; } catch (_) { return false; }
        }
        static byteLength(value, encoding) {
            return typeof value === 'string' ? stringBytes(value, encoding).length : value.byteLength;
        }
        static concat(list, totalLength) {
            let length = 0;
            for (let i = 0; i < list.length; i++) length += list[i].length;
            const out = Buffer.alloc(totalLength === undefined ? length : totalLength);
            let at = 0;
            for (let i = 0; i < list.length && at < out.length; i++) {
                const part = list[i].subarray(0, out.length - at);
                out.set(part, at);
                at += part.length;
            }
            return out;
        }
        static compare(a, b) {
            const n = Math.min(a.length, b.length);
            for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
            return a.length === b.length ? 0 : (a.length < b.length ? -1 : 1);
        }
        toString(encoding, start, end) {
            const view = this.subarray(start === undefined ? 0 : start, end === undefined ? this.length : end);
            switch (normalizeEncoding(encoding)) {
                case 'utf8': return textDecoder.decode(view);
                case 'base64': return natives.base64Encode(view, false);
                case 'base64url': return natives.base64Encode(view, true);
                case 'hex': {
                    let out = '';
                    for (let i = 0; i < view.length; i++) out += (view[i] < 16 ? '0' : '') + view[i].toString(16);
                    return out;
                }
                case 'latin1': case 'ascii': {
                    const mask = normalizeEncoding(encoding) === 'ascii' ? 0x7f : 0xff;
                    let out = '';
                    for (let i = 0; i < view.length; i++) out += String.fromCharCode(view[i] & mask);
                    return out;
                }
                case 'utf16le': {
                    let out = '';
                    for (let i = 0; i + 1 < view.length; i += 2) out += String.fromCharCode(view[i] | (view[i + 1] << 8));
                    return out;
                }
            }
        }
        toJSON() { return { type: 'Buffer', data: Array.prototype.slice.call(this) }; }
        equals(other) { return Buffer.compare(this, other) === 0; }
        compare(other) { return Buffer.compare(this, other); }
        slice(start, end) { return this.subarray(start, end); }
        write(text, offset, encoding) {
            const bytes = stringBytes(text, encoding);
            const at = offset === undefined ? 0 : offset >>> 0;
            const part = bytes.subarray(0, Math.max(0, this.length - at));
            this.set(part, at);
            return part.length;
        }
    }
    global.Buffer = Buffer;

    global.btoa = function btoa(text) {
        text = String(text);
        const bytes = new Uint8ArrayCtor(text.length);
        for (let i = 0; i < text.length; i++) {
            const code = text.charCodeAt(i);
            if (code > 0xff) throw new ErrorCtor('InvalidCharacterError: btoa() argument has characters outside Latin1');
            bytes[i] = code;
        }
        return natives.base64Encode(bytes, false);
    };
    global.atob = function atob(text) {
        const bytes = natives.base64Decode(String(text));
        let out = '';
        for (let i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]);
        return out;
    };

    class Hash {
        constructor(algorithm) {
            natives.digest(String(algorithm), new Uint8ArrayCtor(0)); // throws for unknown algorithms
            this.algorithm = String(algorithm);
            this.chunks = [];
        }
        update(data, encoding) {
            this.chunks.push(bytesOf(data, encoding));
            return this;
        }
        digest(encoding) {
            const out = Buffer.from(natives.digest(this.algorithm, Buffer.concat(this.chunks)));
            return encoding === undefined ? out : out.toString(encoding);
        }
    }
    // HMAC (RFC 2104) over the same digests: H((K ^ opad) || H((K ^ ipad) || m)),
    // the key hashed first when it is longer than the digest's block.
    class Hmac {
        constructor(algorithm, key) {
            const name = String(algorithm);
            const block = /^sha(384|512)$/i.test(name) ? 128 : 64;
            let bytes = bytesOf(key === undefined ? '' : key);
            if (bytes.length > block) bytes = natives.digest(name, bytes);
            this.algorithm = name;
            this.inner = new Uint8ArrayCtor(block);
            this.outer = new Uint8ArrayCtor(block);
            for (let i = 0; i < block; i++) {
                const k = i < bytes.length ? bytes[i] : 0;
                this.inner[i] = k ^ 0x36;
                this.outer[i] = k ^ 0x5c;
            }
            this.chunks = [this.inner];
        }
        update(data, encoding) {
            this.chunks.push(bytesOf(data, encoding));
            return this;
        }
        digest(encoding) {
            const inner = natives.digest(this.algorithm, Buffer.concat(this.chunks));
            const out = Buffer.from(natives.digest(this.algorithm, Buffer.concat([this.outer, new Uint8ArrayCtor(inner)])));
            return encoding === undefined ? out : out.toString(encoding);
        }
    }
    // Randomness comes from the host's CSPRNG (WASI random_get, drawn per call in
    // natives.rs), never from Math.random, which a connector may replace.
    class DOMException extends ErrorCtor {
        constructor(message, name) {
            super(message);
            this.name = name;
        }
    }
    const crypto = {
        createHash: (algorithm) => new Hash(algorithm),
        createHmac: (algorithm, key) => {
            natives.digest(String(algorithm), new Uint8ArrayCtor(0)); // throws for unknown algorithms
            return new Hmac(algorithm, key);
        },
        randomUUID: () => natives.randomUUID(),
        // Web Crypto: integer typed arrays only, at most 65,536 bytes, filled in place.
        getRandomValues(array) {
            switch (natives.randomFill(array)) {
                case 0: return array;
                case 1: throw new DOMException('The data argument must be an integer-type TypedArray', 'TypeMismatchError');
                default: throw new DOMException('The requested length exceeds 65,536 bytes', 'QuotaExceededError');
            }
        },
    };
    global.crypto = crypto;

    class URLSearchParams {
        constructor(init) {
            this._list = [];
            this._url = null;
            if (init === undefined || init === null) return;
            if (typeof init === 'string') {
                this._list = natives.formParse(init);
            } else if (init instanceof URLSearchParams) {
                this._list = init._list.map((pair) => [pair[0], pair[1]]);
            } else if (typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
                for (const pair of init) this._list.push([String(pair[0]), String(pair[1])]);
            } else if (typeof init === 'object') {
                for (const key of Object.keys(init)) this._list.push([key, String(init[key])]);
            } else {
                this._list = natives.formParse(String(init));
            }
        }
        _update() { if (this._url) this._url._setPart('search', this.toString()); }
        get size() { return this._list.length; }
        append(name, value) { this._list.push([String(name), String(value)]); this._update(); }
        delete(name) { name = String(name); this._list = this._list.filter((p) => p[0] !== name); this._update(); }
        get(name) { name = String(name); const pair = this._list.find((p) => p[0] === name); return pair ? pair[1] : null; }
        getAll(name) { name = String(name); return this._list.filter((p) => p[0] === name).map((p) => p[1]); }
        has(name) { name = String(name); return this._list.some((p) => p[0] === name); }
        set(name, value) {
            name = String(name);
            const at = this._list.findIndex((p) => p[0] === name);
            if (at < 0) this._list.push([name, String(value)]);
            else this._list = this._list.filter((p, i) => i === at || p[0] !== name).map((p, i) => (i === at ? [name, String(value)] : p));
            this._update();
        }
        sort() { this._list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this._update(); }
        forEach(callback, thisArg) { for (const [k, v] of this._list) callback.call(thisArg, v, k, this); }
        keys() { return this._list.map((p) => p[0])[Symbol.iterator](); }
        values() { return this._list.map((p) => p[1])[Symbol.iterator](); }
        entries() { return this._list.map((p) => [p[0], p[1]])[Symbol.iterator](); }
        [Symbol.iterator]() { return this.entries(); }
        toString() { return this._list.map((p) => `${natives.formEncode(p[0])}=${natives.formEncode(p[1])}`).join('&'); }
    }
    global.URLSearchParams = URLSearchParams;

    class URL {
        constructor(input, base) {
            const parts = natives.urlParse(String(input), base === undefined ? undefined : String(base));
            if (parts === null) throw new TypeError(`Invalid URL: ${input}`);
            this._parts = parts;
            this._params = null;
        }
        static canParse(input, base) {
            return natives.urlParse(String(input), base === undefined ? undefined : String(base)) !== null;
        }
        _setPart(part, value) {
            this._parts = natives.urlSet(this._parts.href, part, String(value));
            if (part !== 'search' && this._params) this._params._list = natives.formParse(this._parts.search);
        }
        get href() { return this._parts.href; }
        set href(value) {
            const parts = natives.urlParse(String(value));
            if (parts === null) throw new TypeError(`Invalid URL: ${value}`);
            this._parts = parts;
            if (this._params) this._params._list = natives.formParse(parts.search);
        }
        get origin() { return this._parts.origin; }
        get searchParams() {
            if (!this._params) {
                this._params = new URLSearchParams(this._parts.search);
                this._params._url = this;
            }
            return this._params;
        }
        toString() { return this._parts.href; }
        toJSON() { return this._parts.href; }
    }
    for (const part of ['protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash']) {
        Object.defineProperty(URL.prototype, part, {
            get() { return this._parts[part]; },
            set(value) {
                this._setPart(part, value);
                if (part === 'search' && this._params) this._params._list = natives.formParse(this._parts.search);
            },
            configurable: true,
        });
    }
    global.URL = URL;

    global.structuredClone = function structuredClone(value) {
        const seen = new Map();
        function clone(v) {
            if (v === null || typeof v !== 'object') {
                if (typeof v === 'function' || typeof v === 'symbol') throw new ErrorCtor('DataCloneError: value could not be cloned');
                return v;
            }
            if (seen.has(v)) return seen.get(v);
            let out;
            if (v instanceof DateCtor) out = new DateCtor(v.getTime());
            else if (v instanceof RegExp) out = new RegExp(v.source, v.flags);
            else if (ArrayBuffer.isView(v)) out = new v.constructor(v);
            else if (v instanceof ArrayBuffer) out = v.slice(0);
            else if (v instanceof Map) { out = new Map(); seen.set(v, out); v.forEach((val, key) => out.set(clone(key), clone(val))); return out; }
            else if (v instanceof Set) { out = new Set(); seen.set(v, out); v.forEach((val) => out.add(clone(val))); return out; }
            else if (isArray(v)) { out = []; seen.set(v, out); for (let i = 0; i < v.length; i++) out[i] = clone(v[i]); return out; }
            else { out = {}; seen.set(v, out); for (const key of Object.keys(v)) out[key] = clone(v[key]); return out; }
            seen.set(v, out);
            return out;
        }
        return clone(value);
    };

    // Node's legacy `url.parse`, `url.format` and `url.resolve`, for the
    // common cases: a URL split as Node splits it (the host name lower-cased,
    // `/` for an empty path after a host of a web scheme, spaces and the other
    // characters Node escapes escaped); `url.resolve` against an absolute URL,
    // a path or `//host`, as WHATWG resolves it.
    const SLASHED = ['http:', 'https:', 'ftp:', 'gopher:', 'file:', 'ws:', 'wss:'];
    const AUTO_ESCAPE = { '\t': '%09', '\n': '%0A', '\r': '%0D', ' ': '%20', '"': '%22', "'": '%27', '<': '%3C', '>': '%3E', '\\': '%5C', '^': '%5E', '`': '%60', '{': '%7B', '|': '%7C', '}': '%7D' };
    function autoEscape(text) {
        return text === null ? null : text.replace(/[\t\n\r "'<>\\^`{|}]/g, (c) => AUTO_ESCAPE[c]);
    }
    class Url {
        constructor() {
            this.protocol = null; this.slashes = null; this.auth = null; this.host = null; this.port = null;
            this.hostname = null; this.hash = null; this.search = null; this.query = null;
            this.pathname = null; this.path = null; this.href = null;
        }
    }
    function urlParse(input, parseQuery, slashesDenoteHost) {
        if (typeof input !== 'string') throw new TypeError(`The "url" argument must be of type string. Received ${typeof input}`);
        const url = new Url();
        let rest = input.trim();
        const hash = rest.indexOf('#');
        if (hash !== -1) { url.hash = rest.slice(hash); rest = rest.slice(0, hash); }
        const search = rest.indexOf('?');
        if (search !== -1) { url.search = rest.slice(search); url.query = rest.slice(search + 1); rest = rest.slice(0, search); }
        const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:/.exec(rest);
        if (scheme) { url.protocol = scheme[0].toLowerCase(); rest = rest.slice(scheme[0].length); }
        const hostless = url.protocol === 'javascript:';
        if (rest.startsWith('//') && (url.protocol || slashesDenoteHost) && !hostless) {
            url.slashes = true;
            rest = rest.slice(2);
        }
        // A host after `//`, or right after a scheme Node does not slash (`mailto:`).
        if (!hostless && (url.slashes || (url.protocol && !SLASHED.includes(url.protocol)))) {
            const end = rest.search(/[/\\]/);
            let authority = end === -1 ? rest : rest.slice(0, end);
            rest = end === -1 ? '' : rest.slice(end);
            const at = authority.lastIndexOf('@');
            if (at !== -1) { url.auth = decodeURIComponent(authority.slice(0, at)); authority = authority.slice(at + 1); }
            const port = /:([0-9]*)$/.exec(authority);
            if (port) { if (port[1] !== '') url.port = port[1]; authority = authority.slice(0, port.index); }
            url.hostname = authority.toLowerCase();
            url.host = url.port === null ? url.hostname : `${url.hostname}:${url.port}`;
            if (rest === '' && SLASHED.includes(url.protocol)) rest = '/';
        }
        if (rest !== '') url.pathname = autoEscape(rest);
        url.search = autoEscape(url.search);
        url.query = autoEscape(url.query);
        url.hash = autoEscape(url.hash);
        if (url.pathname !== null || url.search !== null) url.path = (url.pathname || '') + (url.search || '');
        if (parseQuery) {
            const query = {};
            new URLSearchParams(url.query || '').forEach((value, key) => {
                if (!Object.prototype.hasOwnProperty.call(query, key)) query[key] = value;
                else if (isArray(query[key])) query[key].push(value);
                else query[key] = [query[key], value];
            });
            url.query = query;
        }
        url.href = urlFormat(url);
        return url;
    }
    function urlFormat(url) {
        if (typeof url === 'string') return urlParse(url).href;
        if (url instanceof URL) return url.href;
        const protocol = url.protocol ? (url.protocol.endsWith(':') ? url.protocol : `${url.protocol}:`) : '';
        let host = '';
        if (url.host) host = url.host;
        else if (url.hostname) host = url.port ? `${url.hostname}:${url.port}` : url.hostname;
        const auth = url.auth ? `${encodeURIComponent(url.auth).replace(/%3A/i, ':')}@` : '';
        const slashes = url.slashes || (host !== '' && SLASHED.includes(protocol)) ? '//' : '';
        let pathname = url.pathname || '';
        if (slashes && pathname !== '' && !pathname.startsWith('/')) pathname = `/${pathname}`;
        let search = url.search || '';
        if (!search && url.query && typeof url.query === 'object') {
            // As Node's querystring.stringify: each value (each of a list) encoded.
            const pairs = [];
            for (const key of Object.keys(url.query)) {
                const value = url.query[key];
                for (const item of isArray(value) ? value : [value]) {
                    const text = typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean' ? String(item) : '';
                    pairs.push(`${encodeURIComponent(key)}=${encodeURIComponent(text)}`);
                }
            }
            if (pairs.length > 0) search = `?${pairs.join('&')}`;
        }
        if (search && !search.startsWith('?')) search = `?${search}`;
        let hash = url.hash || '';
        if (hash && !hash.startsWith('#')) hash = `#${hash}`;
        return `${protocol}${slashes}${auth}${host}${pathname}${search}${hash}`;
    }
    function urlResolve(from, to) {
        from = String(from);
        to = String(to);
        // A base that is not absolute (`//host/…`, `/path`, `a/b`) is resolved
        // under a placeholder scheme (and host), given back without them.
        try {
            if (URL.canParse(from)) return new URL(to, from).href;
            const hosted = from.startsWith('//');
            const base = hosted ? `x-resolve:${from}` : `x-resolve://x${from.startsWith('/') ? '' : '/'}${from}`;
            const resolved = new URL(to, base).href;
            if (!resolved.startsWith('x-resolve:')) return resolved;
            const rest = resolved.slice('x-resolve:'.length);
            if (hosted || to.startsWith('//')) return rest;
            const path = rest.slice('//x'.length);
            return from.startsWith('/') || to.startsWith('/') ? path : path.slice(1);
        } catch (error) {
            return to;
        }
    }

    // `require` for the Node built-ins the world provides, and the packages
    // PostHog gave every plugin (`node-fetch`, `@posthog/plugin-scaffold`,
    // added below with `fetch`); the compiler bundles other npm packages.
    const builtins = {
        crypto,
        buffer: { Buffer },
        url: { URL, URLSearchParams, Url, parse: urlParse, format: urlFormat, resolve: urlResolve },
    };
    global.require = function require(name) {
        const key = String(name).replace(/^node:/, '');
        if (Object.prototype.hasOwnProperty.call(builtins, key)) return builtins[key];
        throw new ErrorCtor(`Cannot find module '${name}'`);
    };
    // Helpers the compiler's module linker and ES module rewrite emit calls to.
    global.__sandpipe_builtin_require = global.require;
    global.__sandpipe_default = function (module) {
        return module && module.__esModule ? module.default : module;
    };
    global.__sandpipe_export_all = function (target, source) {
        for (const key of Object.keys(source)) {
            if (key !== 'default' && key !== '__esModule' && !(key in target)) target[key] = source[key];
        }
    };

    // CommonJS globals: connectors written as `module.exports = {...}` or `exports.f = ...`
    // (and ES modules, which the compiler rewrites to the same shape) fill these.
    const module = { exports: {} };
    global.module = module;
    global.exports = module.exports;

    // Parts of `meta` that PostHog deprecated: calling any of their functions
    // fails with a clear message. Looking at them does not: they have no own
    // properties (so they enumerate, spread and stringify as `{}`, as PostHog's
    // did), `toJSON` and `then` are absent (JSON.stringify and `await` see a
    // plain object), and Object.prototype's members are the ordinary ones.
    const objectPrototype = Object.prototype;
    const reflectGet = Reflect.get;
    function unsupported(name, why) {
        return new ProxyCtor({}, {
            get(target, prop, receiver) {
                if (typeof prop === 'symbol' || prop === 'toJSON' || prop === 'then') return undefined;
                if (prop in objectPrototype) return reflectGet(target, prop, receiver);
                return function () {
                    throw new ErrorCtor(`meta.${name}.${String(prop)}() is not supported by sandpipe: ${why}`);
                };
            },
        });
    }
    // Made once, with the world: an instance's one `meta` is made from them.
    const jobs = unsupported('jobs', 'jobs were removed from PostHog plugins');
    const metrics = unsupported('metrics', 'metrics were removed from PostHog plugins');
    const utils = unsupported('utils', 'utils (cursor) were removed from PostHog plugins');

    // The special functions the connector defines: name → [function, receiver].
    // The plugin fills it when the connector loads (world.rs, `resolve`).
    const connector = {};
    let meta = null;

    // Once `connector` is filled: PostHog's stand-in for a connector that
    // defines processEventBatch without processEvent. (exportEvents is called
    // by itself, with the batches the host buffers: call 9.)
    function standIns() {
        if (!connector.processEvent && connector.processEventBatch) {
            connector.processEvent = [batchOfOne(connector.processEventBatch), undefined];
        }
    }

    // processEvent for a connector that exports only processEventBatch, as
    // PostHog wrapped one: a batch of this one event; the first event of the
    // array it returns goes on, and an empty array (or nothing) drops it.
    function batchOfOne(entry) {
        const batch = entry[0];
        const owner = entry[1];
        function first(events) {
            if (!events) return null;
            if (!isArray(events)) {
                throw new TypeError(`processEventBatch returned ${describeType(events)}, expected an array of events`);
            }
            return events.length === 0 ? null : events[0];
        }
        return function (event, meta) {
            const events = batch.call(owner, [event], meta);
            return events !== null && typeof events === 'object' && typeof events.then === 'function'
                ? events.then(first) : first(events);
        };
    }

    function invoke(name, args) {
        const entry = connector[name];
        if (!entry) return undefined;
        return entry[0].apply(entry[1], args);
    }

    // Host services (numbers as in sandpipe-abi Service): JSON request, {ok} or {error} back.
    function hostRequest(service, payload) {
        const response = natives.request(service, payload);
        if (response.error !== undefined) throw new ErrorCtor(response.error);
        return response.ok;
    }
    const CACHE = 1;
    const STORAGE = 2;
    const CAPTURE = 3;
    const GEOIP = 4;
    const FETCH = 5;

    // fetch: HTTP through the host, which enforces the operator's policy.
    class Headers {
        constructor(init) {
            this._map = {};
            if (init === undefined || init === null) return;
            const pairs = init instanceof Headers ? init.entries()
                : typeof init[Symbol.iterator] === 'function' ? init : Object.entries(init);
            for (const [name, value] of pairs) this.append(name, value);
        }
        get(name) { const value = this._map[String(name).toLowerCase()]; return value === undefined ? null : value; }
        set(name, value) { this._map[String(name).toLowerCase()] = String(value); }
        append(name, value) {
            const key = String(name).toLowerCase();
            this._map[key] = key in this._map ? `${this._map[key]}, ${value}` : String(value);
        }
        has(name) { return String(name).toLowerCase() in this._map; }
        delete(name) { delete this._map[String(name).toLowerCase()]; }
        entries() { return Object.entries(this._map)[Symbol.iterator](); }
        keys() { return Object.keys(this._map)[Symbol.iterator](); }
        values() { return Object.values(this._map)[Symbol.iterator](); }
        forEach(callback, thisArg) { for (const [k, v] of Object.entries(this._map)) callback.call(thisArg, v, k, this); }
        [Symbol.iterator]() { return this.entries(); }
    }
    class Response {
        constructor(body, init) {
            init = init || {};
            this._body = body instanceof Uint8ArrayCtor ? Buffer.from(body) : Buffer.from(body === undefined || body === null ? '' : String(body));
            this.status = init.status === undefined ? 200 : init.status;
            this.statusText = init.statusText || '';
            this.headers = new Headers(init.headers);
            this.url = init.url || '';
            this.redirected = false;
            this.bodyUsed = false;
        }
        get ok() { return this.status >= 200 && this.status < 300; }
        async text() { this.bodyUsed = true; return this._body.toString('utf8'); }
        async json() { return parse(await this.text()); }
        async arrayBuffer() {
            this.bodyUsed = true;
            return this._body.buffer.slice(this._body.byteOffset, this._body.byteOffset + this._body.byteLength);
        }
        clone() { return new Response(this._body, this); }
    }
    global.Headers = Headers;
    global.Response = Response;
    global.fetch = async function fetch(input, init) {
        init = init || {};
        const url = typeof input === 'string' ? input : input instanceof URL ? input.href : String(input && input.url ? input.url : input);
        const headers = {};
        new Headers(init.headers).forEach((value, name) => { headers[name] = value; });
        let body = init.body;
        if (body !== undefined && body !== null && typeof body !== 'string') {
            body = body instanceof Uint8ArrayCtor || body instanceof ArrayBuffer ? Buffer.from(body).toString() : String(body);
        }
        let answer;
        try {
            answer = hostRequest(FETCH, { url, method: init.method || 'GET', headers, body: body === undefined ? null : body });
        } catch (error) {
            throw new TypeError(error.message);
        }
        return new Response(Buffer.from(answer.body, 'base64'), answer);
    };
    // `node-fetch`, as PostHog gave it to plugins: the world's fetch (held
    // here, so a binding named `fetch` elsewhere cannot make it call itself),
    // a failed request rejected with node-fetch's `FetchError`.
    class FetchError extends ErrorCtor {
        constructor(message, type) {
            super(message);
            this.name = 'FetchError';
            this.type = type;
        }
    }
    const worldFetch = global.fetch;
    function nodeFetch(input, init) {
        return worldFetch(input, init).catch((error) => {
            const url = typeof input === 'string' ? input : input instanceof URL ? input.href : String(input && input.url ? input.url : input);
            throw new FetchError(`request to ${url} failed, reason: ${error.message}`, 'system');
        });
    }
    nodeFetch.default = nodeFetch;
    nodeFetch.Headers = Headers;
    nodeFetch.Response = Response;
    nodeFetch.FetchError = FetchError;
    nodeFetch.isRedirect = (code) => code === 301 || code === 302 || code === 303 || code === 307 || code === 308;
    builtins['node-fetch'] = nodeFetch;
    // `@posthog/plugin-scaffold` at run time: its `RetryError` (the types are
    // TypeScript's alone), the same class as the global one.
    builtins['@posthog/plugin-scaffold'] = { __esModule: true, RetryError };
    // meta.geoip: MaxMind City records shaped as the Node reader returns them, or null.
    const geoip = {
        locate: async (ip) => hostRequest(GEOIP, { op: 'locate', ip: String(ip) }),
    };
    // posthog.capture: events the host emits after the chain, marked with this connector.
    global.posthog = {
        capture(event, properties) {
            hostRequest(CAPTURE, { event: String(event), properties: properties === undefined ? null : properties });
        },
    };
    function seconds(value) {
        return value === undefined || value === null ? null : Number(value);
    }
    // meta.cache: Redis-like, values JSON-serialised, list elements strings; every call returns a promise.
    const cache = {
        set: async (key, value, ttlSeconds) => { hostRequest(CACHE, { op: 'set', key: String(key), value: value === undefined ? null : value, ttl: seconds(ttlSeconds) }); },
        get: async (key, defaultValue) => {
            const found = hostRequest(CACHE, { op: 'get', key: String(key) });
            return found === null ? (defaultValue === undefined ? null : defaultValue) : found.value;
        },
        incr: async (key) => hostRequest(CACHE, { op: 'incr', key: String(key) }),
        expire: async (key, ttlSeconds) => hostRequest(CACHE, { op: 'expire', key: String(key), ttl: seconds(ttlSeconds) }),
        lpush: async (key, elementOrArray) => hostRequest(CACHE, {
            op: 'lpush', key: String(key),
            elements: (isArray(elementOrArray) ? elementOrArray : [elementOrArray]).map((e) => (typeof e === 'string' ? e : stringify(e))),
        }),
        lrange: async (key, start, stop) => hostRequest(CACHE, { op: 'lrange', key: String(key), start: Number(start), stop: Number(stop) }),
        llen: async (key) => hostRequest(CACHE, { op: 'llen', key: String(key) }),
        lrem: async (key, count, elementKey) => hostRequest(CACHE, { op: 'lrem', key: String(key), count: Number(count), element: String(elementKey) }),
        lpop: async (key, count) => hostRequest(CACHE, { op: 'lpop', key: String(key), count: count === undefined ? 1 : Number(count) }),
    };
    // meta.storage: persistent per connector config, values JSON. As PostHog's:
    // a key not stored gives the default (undefined without one), and setting
    // undefined deletes the key.
    const storage = {
        get: async (key, defaultValue) => {
            const found = hostRequest(STORAGE, { op: 'get', key: String(key) });
            return found === null ? defaultValue : found.value;
        },
        set: async (key, value) => {
            if (value === undefined) {
                hostRequest(STORAGE, { op: 'del', key: String(key) });
            } else {
                hostRequest(STORAGE, { op: 'set', key: String(key), value });
            }
        },
        del: async (key) => { hostRequest(STORAGE, { op: 'del', key: String(key) }); },
    };

    // meta.attachments: { content_type, file_name, contents } with contents a Buffer
    // (the host sends file bytes as contents_base64).
    function attachments(given) {
        const out = {};
        if (given === null || typeof given !== 'object') return out;
        const keys = Object.keys(given);
        for (let i = 0; i < keys.length; i++) {
            const key = keys[i];
            const value = given[key];
            if (value === null || typeof value !== 'object') continue;
            const contents = typeof value.contents_base64 === 'string'
                ? Buffer.from(value.contents_base64, 'base64')
                : Buffer.from(value.contents === undefined ? '' : String(value.contents));
            out[key] = { content_type: value.content_type || 'application/octet-stream', file_name: value.file_name || key, contents };
        }
        return out;
    }

    // Every meta has this one's keys, in this order. It is made with the world
    // and kept, so its shape stays alive: a spread of it adopts that shape
    // whole, where a literal would build it again key by key (about 18,000
    // fuel at each instance's setup).
    const metaTemplate = {
        config: null,
        attachments: null,
        global: null,
        cache,
        storage,
        geoip,
        jobs,
        metrics,
        utils,
    };

    function makeMeta(input) {
        const meta = { ...metaTemplate };
        meta.config = input.config !== null && typeof input.config === 'object' ? input.config : {};
        meta.attachments = attachments(input.attachments);
        meta.global = {};
        return meta;
    }

    // The first of `values` that makes a valid Date; else the time of the call,
    // as PostHog's ingestion stamped an event that carried no time at all.
    function eventTime(values) {
        for (let i = 0; i < values.length; i++) {
            const value = values[i];
            if (typeof value !== 'string' && typeof value !== 'number') continue;
            const date = new DateCtor(value);
            if (date.getTime() === date.getTime()) return date;
        }
        return new DateCtor();
    }

    // PostHog hands composeWebhook and onEvent a reduced copy of the event:
    // `properties` an object (`{}` when the event has none), `timestamp` a Date
    // from the event's `timestamp`, else its `now`, else its `sent_at`.
    function webhookEvent(event) {
        const properties = event.properties;
        return {
            uuid: event.uuid,
            event: event.event,
            team_id: event.team_id,
            distinct_id: event.distinct_id,
            properties: properties === undefined || properties === null ? {} : properties,
            timestamp: eventTime([event.timestamp, event.now, event.sent_at]),
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
                callDeadlineMs = typeof input.deadline_ms === 'number' ? input.deadline_ms : Infinity;
                meta = makeMeta(input);
                return connector.setupPlugin ? invoke('setupPlugin', [meta]) : undefined;
            case 2:
                return invoke('processEvent', [input, meta]);
            case 3:
                return invoke('composeWebhook', [webhookEvent(input), meta]);
            case 4:
                return invoke('teardownPlugin', [meta]);
            case 5:
                return invoke('onEvent', [webhookEvent(input), meta]);
            case 9: {
                const events = [];
                for (let i = 0; i < input.length; i++) events[i] = webhookEvent(input[i]);
                return invoke('exportEvents', [events, meta]);
            }
            case 6:
            case 7:
            case 8:
                return task(kind === 6 ? 'runEveryMinute' : kind === 7 ? 'runEveryHour' : 'runEveryDay', input);
            default:
                throw new ErrorCtor(`unknown call ${kind}`);
        }
    }

    // A scheduled task: its own deadline bounds its timers' clock while it
    // runs. Telling the plugin a timer was set makes it end the call's timers
    // after the task however it ends (settled, thrown, never settled), and
    // with them the task's deadline.
    function task(name, input) {
        taskDeadlineMs = typeof input.deadline_ms === 'number' ? input.deadline_ms : undefined;
        natives.timerSet();
        return invoke(name, [meta]);
    }

    // Checks a settled call's value and returns what the host reads, as JSON:
    // the event or request object, or null (the plugin stringifies it).
    function output(kind, value) {
        if (kind === 2 || kind === 3) {
            const what = kind === 2 ? 'processEvent' : 'composeWebhook';
            if (!value) return null;
            if (typeof value !== 'object' || isArray(value)) {
                throw new TypeError(`${what} returned ${describeType(value)}, expected ${kind === 2 ? 'an event object' : 'a request object'} or null`);
            }
            return value;
        }
        return null;
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

    // Thrown values are described within these bounds (UTF-16 code units), so an
    // error costs the host a few KiB however large the thrown value was.
    const MAX_ERROR_NAME = 256;
    const MAX_ERROR_MESSAGE = 4096;
    const MAX_ERROR_STACK = 4096;

    // 49995904 → '49,995,904'.
    function grouped(n) {
        const digits = `${n}`;
        let out = '';
        for (let i = 0; i < digits.length; i++) out += (i > 0 && (digits.length - i) % 3 === 0 ? ',' : '') + digits[i];
        return out;
    }

    // `text` (a string) cut to `max` code units (never inside a surrogate pair),
    // with a marker saying how many were cut; lone surrogates become U+FFFD.
    function clip(text, max) {
        const length = text.length;
        if (length <= max) return toWellFormed(text);
        let end = max;
        const last = charCodeAt(text, end - 1);
        if (last >= 0xd800 && last <= 0xdbff) end -= 1;
        return `${toWellFormed(sliceString(text, 0, end))}… [truncated ${grouped(length - end)} characters]`;
    }

    // Any thrown value → [name, message, stack, retry]: each of the first
    // three a bounded string (name null for non-Error values), and whether it
    // is a RetryError (PostHog retries a call only then); the plugin writes
    // them as the error JSON.
    function describe(error) {
        let name = null, message, stack = '', retry = false;
        try { retry = error instanceof RetryError; } catch (_) {}
        try {
            if (error instanceof ErrorCtor) {
                name = StringCtor(error.name);
                message = StringCtor(error.message);
                const raw = error.stack === undefined ? '' : StringCtor(error.stack);
                // Cut before filtering, so the filtering's work is bounded too.
                stack = authorFrames(clip(raw, MAX_ERROR_STACK));
            } else if (typeof error === 'symbol') {
                const description = error.description;
                message = typeof description === 'string' ? `Symbol(${clip(description, MAX_ERROR_MESSAGE)})` : 'Symbol()';
            } else if (error !== null && typeof error === 'object') {
                message = stringify(error);
                if (typeof message !== 'string') message = describeObject(error);
            } else {
                message = StringCtor(error);
            }
            if (typeof message !== 'string') message = '';
        } catch (_) {
            try { message = describeObject(error); } catch (_) { message = '[unknown]'; }
        }
        // Cut again whatever connector code (getters, toJSON, a replaced Array.prototype.join) returned.
        if (typeof name === 'string') name = clip(name, MAX_ERROR_NAME);
        if (typeof stack !== 'string') stack = '';
        return [name, clip(message, MAX_ERROR_MESSAGE), clip(stack, 2 * MAX_ERROR_STACK), retry === true];
    }

    // What the plugin calls `name` with when it calls it itself (processEvent,
    // without going through `call`): [function, this, meta], once setupPlugin's
    // call has made meta; null otherwise.
    function direct(name) {
        const entry = connector[name];
        return entry && meta !== null ? [entry[0], entry[1], meta] : null;
    }

    return { module, connector, standIns, call, output, describe, direct, fireTimer, endTimers };
})
