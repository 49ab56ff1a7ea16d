// onEvent asks for a retry twice per event (three times in all for 'always'),
// and says what it was handed each time.
async function onEvent(event, meta) {
    const key = `attempts:${event.distinct_id}`
    const attempt = (meta.global[key] || 0) + 1
    meta.global[key] = attempt
    await new Promise((resolve) => setTimeout(resolve, 1))
    console.log(`attempt ${attempt}`, JSON.stringify({ ...event, timestamp: event.timestamp.toISOString() }))
    if (event.event === 'always' || attempt < 3) throw new RetryError(`destination busy (${attempt})`)
    console.log(`exported ${event.distinct_id}`)
}
function processEvent(event) {
    if (event.event === 'skip') return null
    return event
}
