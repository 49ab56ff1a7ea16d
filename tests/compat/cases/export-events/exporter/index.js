// exportEvents gets each batch with the reduced events; the destination asks
// for a retry the first time it sees "retry-me", and onEvent runs after it.
async function exportEvents(events, meta) {
    const batch = events.map((event) => ({ ...event, timestamp: event.timestamp.toISOString() }))
    const key = `exported:${batch.map((event) => event.distinct_id).join(',')}`
    const attempt = (meta.global[key] || 0) + 1
    meta.global[key] = attempt
    console.log(`exportEvents attempt ${attempt}: ${events.length} event(s)`, JSON.stringify(batch))
    if (events.some((event) => event.event === 'retry-me') && attempt === 1) {
        throw new RetryError('destination busy')
    }
}
function onEvent(event) {
    console.log(`onEvent ${event.event} ${event.distinct_id}`)
}
