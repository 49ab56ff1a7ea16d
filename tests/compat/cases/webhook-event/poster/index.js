// The whole event composeWebhook is handed, as a webhook body; its timestamp
// is a Date. An event with no time of its own gets the time of the call, which
// differs from run to run: the body says only what kind of value it is.
function composeWebhook(event, { config }) {
    const seen = { ...event, keys: Object.keys(event), isDate: event.timestamp instanceof Date }
    if (event.event === 'no-time') seen.timestamp = typeof event.timestamp.getTime()
    return { url: config.url, body: JSON.stringify(seen) }
}
