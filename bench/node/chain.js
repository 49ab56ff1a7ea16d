// The Node.js baselines of sandpipe's benchmark: the same connectors on the
// same events and GeoIP database, in three hosts a Node user could write.
//
//   node chain.js '<spec as JSON>'
//
// spec: { mode, threads, events, warmup, out, geoip, connectors: [{ dir, config }] }
//
// vm:        each connector's source in its own `vm` context, as PostHog's plugin
//            server runs them: one JSON.parse per event, the event object handed from
//            connector to connector, one JSON.stringify at the end; GeoIP answers are
//            the reader's objects. No isolation between connectors and the host.
// ivm-sync:  each connector in its own isolated-vm isolate (64 MB, 1 s per call),
//            called synchronously on the worker's thread (`applySync`): the event goes
//            in and comes out as JSON text; GeoIP lookups call back into the host
//            through a synchronous `Reference`, the answer as JSON text. A connector
//            whose processEvent returns a promise is called once more to collect the
//            result after the isolate's microtasks ran.
// ivm-async: the same isolates called asynchronously (`apply`, the result a
//            promise): each call hops to a thread of Node's pool and back.
//
// Events are split into `threads` contiguous shares, one worker thread each. Every
// worker first runs the `warmup` events (another file) through its chain; then all
// start together. The time is from the start signal until the last worker has its
// last output string in its array; sending the outputs back and writing them are
// outside it. Prints {"events": n, "seconds": s}.
'use strict'

const fs = require('fs')
const path = require('path')
const vm = require('vm')
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads')

const MEMORY_LIMIT_MB = 64
const TIMEOUT_MS = 1000

function loadConnector({ dir, config }, position) {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'plugin.json'), 'utf8'))
    // The connectors are ES modules; PostHog transpiled them to scripts.
    const source = fs.readFileSync(path.join(dir, manifest.main || 'index.js'), 'utf8').replace(/^export\s+/gm, '')
    return { name: manifest.name, label: `${manifest.name} (${position})`, source, config }
}

const isThenable = (value) => value !== null && typeof value === 'object' && typeof value.then === 'function'

// PostHog's bookkeeping after the chain, as sandpipe adds it, on the final event object.
function finish(event, labels) {
    event.properties = event.properties || {}
    event.properties.$plugins_succeeded = labels
    event.properties.$plugins_failed = []
    return JSON.stringify(event)
}

// Runs `stages` (each `(input) => output or a promise of it`, a falsy output drops the
// event) from `index`; synchronous until a stage answers with a promise.
function runStages(stages, index, input, done) {
    for (let i = index; i < stages.length; i++) {
        const output = stages[i](input)
        if (isThenable(output)) {
            return output.then((resolved) => (resolved ? runStages(stages, i + 1, resolved, done) : 'null'))
        }
        if (!output) return 'null'
        input = output
    }
    return done(input)
}

function vmChain(connectors, reader) {
    const locate = (ip) => {
        try {
            return reader.city(ip)
        } catch (error) {
            return null
        }
    }
    const stages = connectors.map((connector) => {
        const context = vm.createContext({ console })
        vm.runInContext(connector.source, context, { filename: `${connector.name}/index.js` })
        const meta = { config: connector.config, global: {}, geoip: { locate } }
        const processEvent = context.processEvent
        const setup = typeof context.setupPlugin === 'function' ? context.setupPlugin(meta) : undefined
        return { setup, stage: (event) => processEvent(event, meta) }
    })
    const labels = connectors.map((c) => c.label)
    const stageFns = stages.map((s) => s.stage)
    return {
        ready: Promise.all(stages.map((s) => s.setup)),
        process: (line) => runStages(stageFns, 0, JSON.parse(line), (event) => finish(event, labels)),
    }
}

// One isolate per connector; `__run(json)` answers JSON text, `null` to drop, or
// `undefined` when processEvent returned a promise (then `__take()` has the answer
// once the isolate's microtasks ran, which isolated-vm does at the end of every call).
const IVM_WRAPPER = (config) => `
    const meta = {
        config: ${JSON.stringify(config)},
        global: {},
        geoip: { locate: (ip) => { const json = $locate.applySync(undefined, [ip]); return json === null ? null : JSON.parse(json) } },
    }
    let taken
    const answer = (result) => (result ? JSON.stringify(result) : null)
    globalThis.__setup = async () => { if (typeof setupPlugin === 'function') await setupPlugin(meta) }
    globalThis.__run = (json) => {
        const result = processEvent(JSON.parse(json), meta)
        if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
            result.then((event) => { taken = { json: answer(event) } }, (error) => { taken = { error } })
            return undefined
        }
        return answer(result)
    }
    globalThis.__take = () => {
        const { json, error } = taken
        if (error) throw error
        return json
    }
    globalThis.__runAsync = async (json) => answer(await processEvent(JSON.parse(json), meta))`

async function ivmChain(connectors, reader, synchronous) {
    const ivm = require('isolated-vm')
    const locate = new ivm.Reference((ip) => {
        try {
            return JSON.stringify(reader.city(ip))
        } catch (error) {
            return null
        }
    })
    const stages = []
    for (const connector of connectors) {
        const isolate = new ivm.Isolate({ memoryLimit: MEMORY_LIMIT_MB })
        const context = isolate.createContextSync()
        const jail = context.global
        jail.setSync('global', jail.derefInto())
        jail.setSync('$locate', locate)
        context.evalSync(connector.source, { filename: `${connector.name}/index.js`, timeout: TIMEOUT_MS })
        context.evalSync(IVM_WRAPPER(connector.config), { timeout: TIMEOUT_MS })
        await jail
            .getSync('__setup', { reference: true })
            .apply(undefined, [], { result: { promise: true }, timeout: TIMEOUT_MS })
        const run = jail.getSync('__run', { reference: true })
        const take = jail.getSync('__take', { reference: true })
        const runAsync = jail.getSync('__runAsync', { reference: true })
        stages.push(
            synchronous
                ? (json) => {
                      const answer = run.applySync(undefined, [json], { timeout: TIMEOUT_MS })
                      return answer === undefined ? take.applySync(undefined, [], { timeout: TIMEOUT_MS }) : answer
                  }
                : (json) => runAsync.apply(undefined, [json], { result: { promise: true }, timeout: TIMEOUT_MS }),
        )
    }
    const labels = connectors.map((c) => c.label)
    return {
        ready: Promise.resolve(),
        // The host reads the last connector's JSON to add its bookkeeping.
        process: (line) => runStages(stages, 0, line, (json) => finish(JSON.parse(json), labels)),
    }
}

function readLines(file) {
    return fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line.length > 0)
}

// Every line through the chain, in order; the outputs as an array of strings.
async function runLines(chain, lines) {
    const out = new Array(lines.length)
    for (let i = 0; i < lines.length; i++) {
        const json = chain.process(lines[i])
        out[i] = isThenable(json) ? await json : json
    }
    return out
}

// One worker: set up and warm up, report ready, wait for the start signal, process its
// share, note the time it finished, then send the outputs.
async function runShare({ mode, lines, warmup, geoip, connectors }) {
    const { Reader } = require('@maxmind/geoip2-node')
    // `Reader.open`, as MaxMind documents it: it keeps an LRU of 10,000 decoded
    // records (sandpipe's host keeps its records too, services/geoip.rs).
    const reader = await Reader.open(geoip)
    const loaded = connectors.map(loadConnector)
    const chain =
        mode === 'vm'
            ? vmChain(loaded, reader)
            : mode === 'ivm-sync' || mode === 'ivm-async'
              ? await ivmChain(loaded, reader, mode === 'ivm-sync')
              : null
    if (!chain) throw new Error(`unknown mode ${mode}`)
    await chain.ready
    await runLines(chain, readLines(warmup))
    await new Promise((resolve) => {
        parentPort.once('message', resolve)
        parentPort.postMessage('ready')
    })
    const out = await runLines(chain, lines)
    const finished = process.hrtime.bigint()
    return { out, finished }
}

async function main() {
    const spec = JSON.parse(process.argv[2])
    const lines = readLines(spec.events)
    const n = Math.max(1, Number(spec.threads))
    const size = Math.ceil(lines.length / n)
    const shares = Array.from({ length: n }, (_, i) => lines.slice(i * size, (i + 1) * size))
    const workers = await Promise.all(
        shares.map(
            (share) =>
                new Promise((resolve, reject) => {
                    const worker = new Worker(__filename, { workerData: { ...spec, lines: share } })
                    worker.once('message', () => resolve(worker))
                    worker.once('error', reject)
                }),
        ),
    )
    const started = process.hrtime.bigint()
    const results = await Promise.all(
        workers.map(
            (worker) =>
                new Promise((resolve, reject) => {
                    worker.once('message', resolve)
                    worker.once('error', reject)
                    worker.postMessage('go')
                }),
        ),
    )
    const finished = results.reduce((latest, r) => (r.finished > latest ? r.finished : latest), started)
    const seconds = Number(finished - started) / 1e9
    await Promise.all(workers.map((worker) => worker.terminate()))
    fs.writeFileSync(spec.out, results.map((r) => r.out.join('\n')).join('\n') + '\n')
    process.stdout.write(JSON.stringify({ events: lines.length, seconds }) + '\n')
}

if (isMainThread) {
    main().catch((error) => {
        console.error(error)
        process.exit(1)
    })
} else {
    runShare(workerData).then(
        (result) => parentPort.postMessage(result),
        (error) => {
            throw error
        },
    )
}
