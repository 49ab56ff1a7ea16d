export async function processEvent(event, { storage }) {
    if (event.event === 'attack') for (let i = 0; ; i++) await storage.set(`key-${i % 16}`, i)
    return event
}
