// The reference side of tests/compat.rs: runs a chain file over NDJSON events
// in Node.js with PostHog's plugin-server semantics, and writes what
// `sandpipe run CHAIN --events EVENTS --webhooks WEBHOOKS` writes.
//
//   node runner.js CHAIN.json EVENTS.ndjson WEBHOOKS.ndjson
//
// - Each connector's source runs non-strict in its own `vm` context (as PostHog
//   ran them), with `console` (lines on stderr as sandpipe prints them:
//   `[<name> (<position>)] <level>: <message>`), `RetryError`, Node's own timers
//   and `queueMicrotask`, `global`, and `require` for what PostHog gave every
//   plugin: Node's `crypto`, `url` and `buffer`, `node-fetch` (here Node's own
//   fetch in node-fetch's shape: the cases make no request) and
//   `@posthog/plugin-scaffold` (its `RetryError` the context's). The
//   connectors of tests/compat/cases are scripts or CommonJS
//   (`module.exports`), which need no transpiling.
// - meta: `{config, attachments, global, cache, storage, geoip, jobs, metrics,
//   utils}`, PostHog's parts; cache and storage in memory, jobs/metrics/utils
//   empty objects (no connector here declares jobs or metrics).
// - The chain: `$snapshot` skips it; each connector gets a copy of the event,
//   a falsy result drops it, a throw leaves it as it was and lists the
//   connector in `properties.$plugins_failed`, a result lists it in
//   `$plugins_succeeded` (both added once any connector ran); a connector an
//   event already lists in either (in an array) is passed over. A connector
//   exporting only `processEventBatch` is called with `[event]`; the first
//   event of the array it returns goes on, an empty array drops the event.
// - On a kept event: `composeWebhook` (synchronous, defaults POST and
//   Content-Type) then `onEvent`, each on the reduced event PostHog hands them
//   (`{uuid, event, team_id, distinct_id, properties, timestamp}`, properties
//   `{}` when missing, timestamp a Date from `timestamp`, `now` or `sent_at`,
//   else the time of the call); an onEvent that throws a RetryError is
//   called again, up to 5 calls in all (any other throw ends it).
// - `exportEvents`, as PostHog's export upgrade patched `onEvent`: each event
//   not named by `config.exportEventsToIgnore` (comma-separated) is added to
//   the connector's buffer, which goes to `exportEvents(batch, meta)` as
//   PostHog's buffer flushed: before an event that would take it past
//   `config.exportEventsBufferBytes` (parseInt, default 900 KiB), and at once
//   when an event took it past; then the event goes to the connector's own
//   `onEvent`. What is left goes when the input ends (these inputs end long
//   before `exportEventsBufferSeconds`). A RetryError retries the whole batch as
//   above. An event's size is what sandpipe counts: the bytes of the kept
//   event's JSON text, plus one (PostHog counted the reduced copy's length).
'use strict'

const fs = require('fs')
const path = require('path')
const vm = require('vm')

const ON_EVENT_ATTEMPTS = 5
const SPECIAL = ['setupPlugin', 'processEvent', 'processEventBatch', 'composeWebhook', 'onEvent', 'exportEvents']

function format(value) {
    if (typeof value === 'string') return value
    if (value instanceof Error) return `${value.name}: ${value.message}`
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') return String(value)
    const text = JSON.stringify(value)
    return text === undefined ? String(value) : text
}

function makeConsole(label) {
    const line = (level) => (...args) => process.stderr.write(`[${label}] ${level}: ${args.map(format).join(' ')}\n`)
    return { debug: line('debug'), info: line('info'), log: line('log'), warn: line('warn'), error: line('error') }
}

// meta.storage: get/set/del, values JSON, as PostHog's createStorage: a key
// not stored gives the default (undefined without one); setting undefined deletes.
function memoryStorage() {
    const values = new Map()
    return {
        get: async (key, defaultValue) => (values.has(key) ? JSON.parse(values.get(key)) : defaultValue),
        set: async (key, value) => {
            if (value === undefined) values.delete(key)
            else values.set(key, JSON.stringify(value))
        },
        del: async (key) => { values.delete(key) },
    }
}

// meta.cache: PostHog's Redis-backed operations, in memory, without TTLs.
function memoryCache() {
    const values = new Map()
    const list = (key) => (values.has(key) ? values.get(key) : [])
    return {
        set: async (key, value) => { values.set(key, JSON.stringify(value === undefined ? null : value)) },
        get: async (key, fallback) => (values.has(key) ? JSON.parse(values.get(key)) : fallback === undefined ? null : fallback),
        incr: async (key) => {
            const next = (values.has(key) ? Number(JSON.parse(values.get(key))) : 0) + 1
            values.set(key, JSON.stringify(next))
            return next
        },
        expire: async (key) => values.has(key),
        lpush: async (key, elements) => {
            const items = (Array.isArray(elements) ? elements : [elements]).map((e) => (typeof e === 'string' ? e : JSON.stringify(e)))
            values.set(key, [...items.reverse(), ...list(key)])
            return list(key).length
        },
        lrange: async (key, start, stop) => list(key).slice(start, stop < 0 ? list(key).length + stop + 1 : stop + 1),
        llen: async (key) => list(key).length,
        lrem: async (key, count, element) => {
            const kept = list(key).filter((e) => e !== element)
            const removed = list(key).length - kept.length
            values.set(key, kept)
            return removed
        },
        lpop: async (key, count = 1) => {
            const items = list(key)
            values.set(key, items.slice(count))
            return items.slice(0, count)
        },
    }
}

function load(chainFile, entry, position) {
    const dir = path.resolve(path.dirname(chainFile), entry.path)
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'plugin.json'), 'utf8'))
    const label = `${manifest.name} (${position})`
    class RetryError extends Error {
        constructor(message) {
            super(message)
            this.name = 'RetryError'
        }
    }
    const module = { exports: {} }
    class FetchError extends Error {
        constructor(message, type) {
            super(message)
            this.name = 'FetchError'
            this.type = type
        }
    }
    const nodeFetch = (input, init) => fetch(input, init)
    Object.assign(nodeFetch, { default: nodeFetch, Headers, Response, FetchError })
    const provided = {
        crypto: require('crypto'),
        url: require('url'),
        buffer: require('buffer'),
        'node-fetch': nodeFetch,
        '@posthog/plugin-scaffold': { __esModule: true, RetryError },
    }
    const context = vm.createContext({
        console: makeConsole(label),
        RetryError,
        module,
        exports: module.exports,
        require: (name) => {
            if (!Object.prototype.hasOwnProperty.call(provided, name)) throw new Error(`Cannot find module '${name}'`)
            return provided[name]
        },
        Buffer,
        setTimeout, clearTimeout, setInterval, clearInterval, queueMicrotask,
    })
    context.global = context
    const file = path.join(dir, manifest.main || 'index.js')
    const completion = vm.runInContext(
        `${fs.readFileSync(file, 'utf8')}\n;({${SPECIAL.map((n) => `${n}: typeof ${n} === 'function' ? ${n} : undefined`).join(', ')}})`,
        context,
        { filename: file },
    )
    const functions = {}
    for (const name of SPECIAL) {
        const owner = [module.exports, module.exports && module.exports.default, completion]
            .find((o) => o && typeof o[name] === 'function')
        if (owner) functions[name] = owner[name].bind(owner)
    }
    if (!functions.processEvent && functions.processEventBatch) {
        const batch = functions.processEventBatch
        functions.processEvent = async (event, meta) => {
            const events = await batch([event], meta)
            if (!events) return null
            if (!Array.isArray(events)) throw new TypeError('processEventBatch did not return an array')
            return events.length === 0 ? null : events[0]
        }
    }
    const config = {}
    for (const field of manifest.config || []) {
        if (field.key !== undefined && field.default !== undefined) config[field.key] = field.default
    }
    Object.assign(config, entry.config || {})
    const meta = {
        config,
        attachments: {},
        global: {},
        cache: memoryCache(),
        storage: memoryStorage(),
        geoip: { locate: async () => null },
        jobs: {},
        metrics: {},
        utils: {},
    }
    const realmDate = vm.runInContext('Date', context)
    const list = config.exportEventsToIgnore
    const buffer = {
        events: [],
        points: 0,
        limit: Math.min(Math.max(numberOr(parseInt(config.exportEventsBufferBytes), 900 * 1024), 1), 100 * 1024 * 1024),
        ignored: new Set(list ? String(list).split(',').map((name) => name.trim()) : null),
    }
    return { label, functions, meta, realmDate, buffer, RetryError, ready: functions.setupPlugin ? Promise.resolve(functions.setupPlugin(meta)) : Promise.resolve() }
}

// PostHog's stringClamp reading: NaN gives the default, 0 stays 0.
function numberOr(value, fallback) {
    return Number.isNaN(value) ? fallback : value
}

// Calls `call` until it succeeds, ON_EVENT_ATTEMPTS times at most, again
// only after a RetryError (PostHog's runRetriableFunction).
async function withAttempts(connector, name, call) {
    for (let attempt = 1; attempt <= ON_EVENT_ATTEMPTS; attempt++) {
        try {
            await call()
            return
        } catch (error) {
            process.stderr.write(`[${connector.label}] error: ${name}: ${format(error)}\n`)
            if (!(error instanceof connector.RetryError)) return
        }
    }
}

async function flushExports(connector) {
    const batch = connector.buffer.events
    connector.buffer.events = []
    connector.buffer.points = 0
    if (batch.length > 0) {
        await withAttempts(connector, 'exportEvents', () => connector.functions.exportEvents(batch, connector.meta))
    }
}

// PostHog's buffer `add`, with sandpipe's measure of an event.
async function exportEvent(connector, event) {
    const buffer = connector.buffer
    if (buffer.ignored.has(event.event)) return
    const points = Buffer.byteLength(JSON.stringify(event)) + 1
    if (buffer.points && buffer.points + points > buffer.limit) await flushExports(connector)
    buffer.points += points
    buffer.events.push(reduced(copy(event), connector.realmDate))
    if (buffer.points > buffer.limit) await flushExports(connector)
}

const copy = (value) => JSON.parse(JSON.stringify(value))

function reduced(event, DateInRealm) {
    let timestamp
    for (const value of [event.timestamp, event.now, event.sent_at]) {
        if (typeof value !== 'string' && typeof value !== 'number') continue
        const date = new DateInRealm(value)
        if (!Number.isNaN(date.getTime())) { timestamp = date; break }
    }
    return {
        uuid: event.uuid,
        event: event.event,
        team_id: event.team_id,
        distinct_id: event.distinct_id,
        properties: event.properties === undefined || event.properties === null ? {} : event.properties,
        timestamp: timestamp || new DateInRealm(),
    }
}

function request(label, result) {
    if (typeof result.url !== 'string' || result.url === '') throw new Error('composeWebhook returned a request without a url')
    return {
        connector: label,
        url: result.url,
        method: result.method == null ? 'POST' : String(result.method).toUpperCase(),
        headers: result.headers == null ? { 'Content-Type': 'application/json' } : result.headers,
        body: result.body == null ? null : result.body,
    }
}

async function processChain(connectors, event) {
    if (event.event === '$snapshot') return event
    const succeeded = []
    const failed = []
    // PostHog passes over the plugins the event lists as having processed it.
    const listed = (key) => {
        const properties = event.properties
        const list = properties !== null && typeof properties === 'object' ? properties[key] : undefined
        return Array.isArray(list) ? list : []
    }
    const already = new Set([...listed('$plugins_succeeded'), ...listed('$plugins_failed')])
    for (const connector of connectors) {
        const processEvent = connector.functions.processEvent
        if (!processEvent || already.has(connector.label)) continue
        try {
            const result = await processEvent(copy(event), connector.meta)
            if (!result) return null
            if (typeof result !== 'object' || Array.isArray(result)) throw new TypeError('not an event')
            if (JSON.stringify(result.team_id) !== JSON.stringify(event.team_id)) throw new Error('team_id changed')
            event = copy(result)
            succeeded.push(connector.label)
        } catch (error) {
            failed.push(connector.label)
            process.stderr.write(`[${connector.label}] error: processEvent: ${format(error)}\n`)
        }
    }
    if (succeeded.length || failed.length) {
        if (event.properties === null || typeof event.properties !== 'object' || Array.isArray(event.properties)) event.properties = {}
        const list = (key) => (Array.isArray(event.properties[key]) ? event.properties[key] : (event.properties[key] = []))
        list('$plugins_succeeded').push(...succeeded)
        list('$plugins_failed').push(...failed)
    }
    return event
}

async function main() {
    const [chainFile, eventsFile, webhooksFile] = process.argv.slice(2)
    const chain = JSON.parse(fs.readFileSync(chainFile, 'utf8'))
    const connectors = chain.connectors.map((entry, position) => load(chainFile, entry, position))
    for (const connector of connectors) await connector.ready
    const webhooks = []
    const lines = fs.readFileSync(eventsFile, 'utf8').split('\n').filter((line) => line.trim() !== '')
    for (const line of lines) {
        const event = await processChain(connectors, JSON.parse(line))
        process.stdout.write(`${JSON.stringify(event)}\n`)
        if (!event) continue
        for (const connector of connectors) {
            const composeWebhook = connector.functions.composeWebhook
            if (!composeWebhook) continue
            try {
                const result = composeWebhook(reduced(copy(event), connector.realmDate), connector.meta)
                if (result) webhooks.push(request(connector.label, result))
            } catch (error) {
                process.stderr.write(`[${connector.label}] error: composeWebhook: ${format(error)}\n`)
            }
        }
        for (const connector of connectors) {
            if (connector.functions.exportEvents) await exportEvent(connector, event)
            const onEvent = connector.functions.onEvent
            if (!onEvent) continue
            await withAttempts(connector, 'onEvent', () => onEvent(reduced(copy(event), connector.realmDate), connector.meta))
        }
    }
    for (const connector of connectors) {
        if (connector.functions.exportEvents) await flushExports(connector)
    }
    fs.writeFileSync(webhooksFile, webhooks.map((w) => `${JSON.stringify(w)}\n`).join(''))
}

main().catch((error) => {
    process.stderr.write(`runner: ${error.stack}\n`)
    process.exit(1)
})
