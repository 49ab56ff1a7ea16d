export async function processEvent(event, { cache }) {
    if (event.event === 'attack') while (true) await cache.get('key')
    return event
}
