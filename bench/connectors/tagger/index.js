// Adds a few properties to every event: where it came from and on which day.

export function processEvent(event, { config }) {
    const properties = event.properties || {}
    properties.$source = config.source
    properties.$environment = config.environment
    properties.$day = typeof event.timestamp === 'string' ? event.timestamp.slice(0, 10) : null
    properties.$identified = Boolean(properties.$set && properties.$set.email)
    event.properties = properties
    return event
}
