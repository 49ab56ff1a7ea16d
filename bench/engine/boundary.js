// The boundary-bound chain's three connectors (bench/connectors/tagger,
// counter and filter, written here as plain functions so one script holds
// them), with their config from bench/connectors/chain.json. `hops` runs them
// as isolated connectors must (the event as JSON text between them), `once`
// as Node's vm host does (one parse, the object handed on, one stringify),
// `passThrough` is the boundary alone (parse and stringify).
const config = { source: 'web-shop', environment: 'production' }
function tagger(event) {
    const properties = event.properties || {}
    properties.$source = config.source
    properties.$environment = config.environment
    properties.$day = typeof event.timestamp === 'string' ? event.timestamp.slice(0, 10) : null
    properties.$identified = Boolean(properties.$set && properties.$set.email)
    event.properties = properties
    return event
}
const counts = new Map()
let seen = 0
function counter(event) {
    seen += 1
    const count = (counts.get(event.event) || 0) + 1
    counts.set(event.event, count)
    if (event.properties) {
        event.properties.$sequence = seen
        event.properties.$event_number = count
    }
    return event
}
function list(text) {
    return String(text).split(',').map((item) => item.trim()).filter((item) => item.length > 0)
}
const dropped = new Set(list('$pageleave, feature_flag_called'))
const removed = list('$session_id, $lib_version, experiment')
function filter(event) {
    if (dropped.has(event.event)) return null
    if (event.properties) {
        for (const key of removed) delete event.properties[key]
    }
    return event
}
function hops(text) {
    let t = JSON.stringify(tagger(JSON.parse(text)))
    t = JSON.stringify(counter(JSON.parse(t)))
    const e = filter(JSON.parse(t))
    return e === null ? null : JSON.stringify(e)
}
function once(text) {
    const e = filter(counter(tagger(JSON.parse(text))))
    return e === null ? null : JSON.stringify(e)
}
function passThrough(text) {
    return JSON.stringify(JSON.parse(text))
}
