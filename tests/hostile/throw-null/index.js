export function processEvent(event) {
    if (event.event === 'attack') throw null
    return event
}
