// Notes in `properties.ran` that it ran; the chain passes it over on an event
// that already lists it in `$plugins_succeeded` or `$plugins_failed`, as
// PostHog passes over the plugins that processed an event already.
let calls = 0
function processEvent(event) {
    calls += 1
    event.properties = event.properties || {}
    event.properties.ran = (event.properties.ran || 0) + 1
    if (event.event === 'fail') throw new Error(`marker fails (${calls})`)
    return event
}
