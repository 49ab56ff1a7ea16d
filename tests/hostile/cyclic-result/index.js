export function processEvent(event) {
    if (event.event === 'attack') event.properties.self = event
    return event
}
