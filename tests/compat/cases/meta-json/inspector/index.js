// Real connectors put meta, or parts of it, into webhook bodies and logs:
// looking at meta never throws; only calling a function that is not there does.
function setupPlugin(meta) {
    meta.global.started = true
}
function processEvent(event, meta) {
    const seen = {}
    seen.meta = JSON.stringify(meta)
    seen.keys = Object.keys(meta)
    for (const part of ['jobs', 'metrics', 'utils', 'geoip', 'cache', 'storage']) {
        const spread = { ...meta[part] }
        const enumerated = []
        for (const key in meta[part]) enumerated.push(key)
        seen[part] = [JSON.stringify(meta[part]), Object.keys(spread).length, enumerated.length, String(meta[part])]
    }
    seen.entries = Object.entries({ ...meta }).map(([key, value]) => `${key}:${typeof value}`)
    seen.awaited = typeof meta.metrics.then
    try {
        meta.metrics.increment('events', 1)
        seen.called = 'returned'
    } catch (error) {
        seen.called = error instanceof Error ? 'threw an Error' : 'threw something else'
    }
    console.log('metrics', JSON.stringify(meta.metrics), 'geoip', JSON.stringify({ geoip: meta.geoip }))
    event.properties.seen = seen
    return event
}
