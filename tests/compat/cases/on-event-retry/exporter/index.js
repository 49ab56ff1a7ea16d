// onEvent asks for a retry twice per event (every time for 'always'), fails
// without asking for 'broken', and says what it was handed each time.
async function onEvent(event, meta) {
    const key = `attempts:${event.distinct_id}`
    const attempt = (meta.global[key] || 0) + 1
    meta.global[key] = attempt
    await new Promise((resolve) => setTimeout(resolve, 1))
    console.log(`attempt ${attempt}`, JSON.stringify({ ...event, timestamp: event.timestamp.toISOString() }))
    if (event.event === 'broken') throw new Error(`cannot export this one (${attempt})`)
    if (event.event === 'always' || attempt < 3) throw new RetryError(`destination busy (${attempt})`)
    console.log(`exported ${event.distinct_id}`)
}
function processEvent(event) {
    if (event.event === 'skip') return null
    return event
}
