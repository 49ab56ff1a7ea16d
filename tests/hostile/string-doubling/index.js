export function processEvent(event) {
    if (event.event === 'attack') {
        let text = 'x'
        while (true) text = text + text
    }
    return event
}
