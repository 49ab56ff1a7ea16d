// Drops the configured events and removes the configured keys from `properties`.

function list(text) {
    return String(text)
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item.length > 0)
}

export function setupPlugin({ config, global }) {
    global.dropped = new Set(list(config.dropEvents))
    global.removed = list(config.removeProperties)
}

export function processEvent(event, { global }) {
    if (global.dropped.has(event.event)) {
        return null
    }
    if (event.properties) {
        for (const key of global.removed) {
            delete event.properties[key]
        }
    }
    return event
}
