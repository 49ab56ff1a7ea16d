export function processEvent(event) {
    if (event.event === 'attack') {
        Object.prototype.polluted = 'yes'
        Object.defineProperty(Array.prototype, 'extra', { value: 1, enumerable: true })
    }
    return event
}
