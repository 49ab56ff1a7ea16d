export async function processEvent(event) {
    if (event.event === 'attack') {
        await null
        while (true) {}
    }
    return event
}
