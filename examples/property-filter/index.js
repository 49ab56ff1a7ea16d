// Removes configured properties, including nested ones written as `a.b.c`,
// from `properties`, `properties.$set` and `properties.$set_once`.

export function setupPlugin({ config, global }) {
    global.paths = String(config.properties)
        .split(',')
        .map((path) => path.trim())
        .filter((path) => path.length > 0)
        .map((path) => path.split('.'))
}

// A copy of `object` without the property at `path`; untouched branches are shared.
function without(object, path) {
    if (!object || typeof object !== 'object' || !(path[0] in object)) {
        return object
    }
    const copy = { ...object }
    if (path.length === 1) {
        delete copy[path[0]]
    } else {
        copy[path[0]] = without(copy[path[0]], path.slice(1))
    }
    return copy
}

export function processEvent(event, { global }) {
    let properties = event.properties
    for (const path of global.paths) {
        if (path.length === 1 && path[0] === '$ip') {
            delete event.ip
        }
        properties = without(properties, path)
        for (const personKey of ['$set', '$set_once']) {
            if (properties && properties[personKey]) {
                properties = { ...properties, [personKey]: without(properties[personKey], path) }
            }
        }
    }
    if (properties !== undefined) {
        event.properties = properties
    }
    return event
}
