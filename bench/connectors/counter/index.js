// Counts events in top-level state, which lives as long as the connector's
// instance: `$sequence` is the event's number among all events this instance
// saw, `$event_number` among those with the same name.

const counts = new Map()
let seen = 0

export function processEvent(event) {
    seen += 1
    const count = (counts.get(event.event) || 0) + 1
    counts.set(event.event, count)
    if (event.properties) {
        event.properties.$sequence = seen
        event.properties.$event_number = count
    }
    return event
}
