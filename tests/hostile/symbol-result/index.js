export function processEvent(event) {
    return event.event === 'attack' ? Symbol('event') : event
}
