export function processEvent(event) {
    return event.event === 'attack' ? [event, event] : event
}
