// The Node.js baselines of sandpipe's benchmark: the same connectors, run the
// way PostHog's plugin server runs them, on the same events and GeoIP database.
//
//   node chain.js <vm|ivm> <threads> <events.ndjson> <out.ndjson> <GeoLite2-City.mmdb> <connector dir>...
//
// vm:  each connector's source in its own `vm` context (PostHog's plugin server);
// ivm: each connector in its own isolated-vm isolate (64 MB, 1 s per call).
// Between connectors the event is serialised and parsed, as between plugins in
// PostHog. Events are split into `threads` contiguous shares, one worker thread
// each. Prints {"events": n, "seconds": s} (the processing time, after set-up).
'use strict'

const fs = require('fs')
const path = require('path')
const vm = require('vm')
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads')

// Config per connector, as in examples/geoip-chain.json.
const CONFIG = {
    'Hello World': { name: 'Ada' },
    'Property Filter': { properties: '$ip, $geoip_latitude, $geoip_longitude' },
}

function loadConnector(dir) {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'plugin.json'), 'utf8'))
    // The connectors are ES modules; PostHog transpiled them to scripts.
    const source = fs.readFileSync(path.join(dir, manifest.main || 'index.js'), 'utf8').replace(/^export\s+/gm, '')
    return { name: manifest.name, source, config: CONFIG[manifest.name] || {} }
}

// The GeoIP answer as the Node MaxMind reader gives it, as plain JSON.
function geoipLookup(reader) {
    return (ip) => {
        try {
            return JSON.parse(JSON.stringify(reader.city(ip)))
        } catch (error) {
            return null
        }
    }
}

async function vmChain(connectors, reader) {
    const locate = geoipLookup(reader)
    const stages = []
    for (const connector of connectors) {
        const context = vm.createContext({ console })
        vm.runInContext(connector.source, context, { filename: `${connector.name}/index.js` })
        const meta = { config: connector.config, global: {}, geoip: { locate: async (ip) => locate(ip) } }
        if (typeof context.setupPlugin === 'function') await context.setupPlugin(meta)
        stages.push({ processEvent: context.processEvent, meta, label: connector.label })
    }
    return async (json) => {
        for (const stage of stages) {
            const result = await stage.processEvent(JSON.parse(json), stage.meta)
            if (!result) return null
            json = JSON.stringify(result)
        }
        return json
    }
}

async function ivmChain(connectors, reader) {
    const ivm = require('isolated-vm')
    const locate = geoipLookup(reader)
    const stages = []
    for (const connector of connectors) {
        const isolate = new ivm.Isolate({ memoryLimit: 64 })
        const context = await isolate.createContext()
        const jail = context.global
        await jail.set('global', jail.derefInto())
        await jail.set('$locate', new ivm.Reference((ip) => JSON.stringify(locate(ip))))
        await context.eval(connector.source, { filename: `${connector.name}/index.js`, timeout: 1000 })
        await context.eval(`
            const meta = {
                config: ${JSON.stringify(connector.config)},
                global: {},
                geoip: { locate: async (ip) => JSON.parse($locate.applySync(undefined, [ip])) },
            }
            globalThis.__setup = async () => { if (typeof setupPlugin === 'function') await setupPlugin(meta) }
            globalThis.__run = async (json) => {
                const result = await processEvent(JSON.parse(json), meta)
                return result ? JSON.stringify(result) : null
            }`, { timeout: 1000 })
        await (await context.global.get('__setup', { reference: true })).apply(undefined, [], { result: { promise: true }, timeout: 1000 })
        stages.push({ run: await context.global.get('__run', { reference: true }), label: connector.label })
    }
    return async (json) => {
        for (const stage of stages) {
            json = await stage.run.apply(undefined, [json], { result: { promise: true }, timeout: 1000 })
            if (json === null) return null
        }
        return json
    }
}

// PostHog's bookkeeping after the chain, as sandpipe adds it.
function withPlugins(json, labels) {
    const event = JSON.parse(json)
    event.properties = event.properties || {}
    event.properties.$plugins_succeeded = labels
    event.properties.$plugins_failed = []
    return JSON.stringify(event)
}

// One worker: set up, report ready, wait for the start signal, process its share.
async function runShare({ mode, lines, db, dirs }) {
    const { Reader } = require('@maxmind/geoip2-node')
    const reader = Reader.openBuffer(fs.readFileSync(db))
    const connectors = dirs.map(loadConnector).map((c, i) => ({ ...c, label: `${c.name} (${i})` }))
    const labels = connectors.map((c) => c.label)
    const chain = mode === 'vm' ? await vmChain(connectors, reader) : await ivmChain(connectors, reader)
    await new Promise((resolve) => {
        parentPort.once('message', resolve)
        parentPort.postMessage('ready')
    })
    const out = []
    for (const line of lines) {
        const json = await chain(line)
        out.push(json === null ? 'null' : withPlugins(json, labels))
    }
    return out
}

async function main() {
    const [mode, threads, eventsFile, outFile, db, ...dirs] = process.argv.slice(2)
    const lines = fs.readFileSync(eventsFile, 'utf8').split('\n').filter((l) => l.length > 0)
    const n = Math.max(1, Number(threads))
    const size = Math.ceil(lines.length / n)
    const shares = Array.from({ length: n }, (_, i) => lines.slice(i * size, (i + 1) * size))
    // Every worker sets up, then all start together: the time is processing only.
    const workers = await Promise.all(
        shares.map(
            (share) =>
                new Promise((resolve, reject) => {
                    const worker = new Worker(__filename, { workerData: { mode, lines: share, db, dirs } })
                    worker.once('message', () => resolve(worker))
                    worker.once('error', reject)
                }),
        ),
    )
    const started = process.hrtime.bigint()
    const outputs = await Promise.all(
        workers.map(
            (worker) =>
                new Promise((resolve, reject) => {
                    worker.once('message', resolve)
                    worker.once('error', reject)
                    worker.postMessage('go')
                }),
        ),
    )
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    await Promise.all(workers.map((worker) => worker.terminate()))
    fs.writeFileSync(outFile, outputs.flat().join('\n') + '\n')
    process.stdout.write(JSON.stringify({ events: lines.length, seconds }) + '\n')
}

if (isMainThread) {
    main().catch((error) => {
        console.error(error)
        process.exit(1)
    })
} else {
    runShare(workerData).then((out) => parentPort.postMessage(out))
}
