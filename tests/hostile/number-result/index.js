export function processEvent(event) {
    return event.event === 'attack' ? 42 : event
}
