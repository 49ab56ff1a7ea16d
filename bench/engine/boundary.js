// The boundary-bound chain (bench/connectors/chain.json) as one script:
// run.sh puts each connector's own source before this, each in a function
// of its own (`connector_tagger()` … returning its `processEvent` and
// `setupPlugin`). `hops` runs them as isolated connectors must (the event as
// JSON text between them), `once` as Node's vm host does (one parse, the
// object handed on, one stringify), `passThrough` is the boundary alone.
function ready(connector, config) {
    const meta = { config, global: {} }
    if (connector.setupPlugin) connector.setupPlugin(meta)
    return (event) => connector.processEvent(event, meta)
}
const tagger = ready(connector_tagger(), { source: 'web-shop', environment: 'production' })
const counter = ready(connector_counter(), {})
const filter = ready(connector_filter(), {
    dropEvents: '$pageleave, feature_flag_called',
    removeProperties: '$session_id, $lib_version, experiment',
})
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
