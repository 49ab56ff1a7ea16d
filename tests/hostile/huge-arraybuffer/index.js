export function processEvent(event) {
    if (event.event === 'attack') {
        const buffer = new ArrayBuffer(2 ** 30)
        new Uint8Array(buffer).fill(1)
        event.properties.size = buffer.byteLength
    }
    return event
}
