// Only the old batch API: PostHog wrapped it, so each event is a batch of one.
async function processEventBatch(events, meta) {
    console.log('batch of', events.length)
    if (events.some((event) => event.event === 'bad-batch')) return 'not an array'
    return events
        .filter((event) => event.event !== 'drop-me')
        .map((event) => ({ ...event, properties: { ...event.properties, batched: true } }))
}
module.exports = { processEventBatch }
