export function processEvent(event) {
    if (event.event === 'attack') return 'x'.repeat(100 * 1000 * 1000)
    return event
}
