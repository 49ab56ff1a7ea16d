export function processEvent(event) {
    if (event.event === 'attack') while (true) {}
    return event
}
