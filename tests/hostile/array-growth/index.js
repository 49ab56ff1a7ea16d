const kept = []
export function processEvent(event) {
    if (event.event === 'attack') while (true) kept.push(kept.length)
    return event
}
