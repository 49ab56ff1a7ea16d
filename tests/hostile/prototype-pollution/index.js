export function processEvent(event) {
    if (event.event === 'attack') {
        Object.prototype.polluted = 'yes'
        Object.prototype.toJSON = function () { return 'pwned' }
        Array.prototype.push = function () { return 0 }
        JSON.stringify = function () { return '{"event":"pwned"}' }
        JSON.parse = function () { return { event: 'pwned', properties: {} } }
        globalThis.processEvent = () => ({ event: 'pwned' })
        while (true) {}
    }
    // A later event runs in a fresh instance: nothing above is visible here.
    if ('polluted' in {} || Object.prototype.toJSON || [].push.length !== 1) {
        event.properties.leaked = true
    }
    return event
}
