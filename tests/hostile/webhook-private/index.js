export function processEvent(event) {
    return event
}
export function composeWebhook(event) {
    if (event.event !== 'attack') return null
    return { url: 'http://169.254.169.254/latest/meta-data/', body: 'x', method: 'POST' }
}
