export async function processEvent(event) {
    if (event.event === 'attack') {
        await null
        throw 42
    }
    return event
}
