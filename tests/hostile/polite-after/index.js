// Well-behaved, last in every hostile chain.
export function processEvent(event) {
    const inherited = []
    for (const key in {}) inherited.push(key)
    for (const key in []) inherited.push(key)
    event.properties = event.properties || {}
    event.properties.after = {
        inherited,
        arrayPrototype: Object.getOwnPropertyNames(Array.prototype).length,
        json: typeof JSON.stringify === 'function' && JSON.stringify({ a: [1, 'b'] }),
        size: JSON.stringify(event).length,
    }
    return event
}

export function composeWebhook(event) {
    return { url: 'https://hooks.example.com/collect', body: JSON.stringify({ event: event.event }) }
}
