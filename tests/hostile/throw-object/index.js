export function processEvent(event) {
    if (event.event === 'attack') throw { message: 'not an Error', toString() { return 'still not an Error' } }
    return event
}
