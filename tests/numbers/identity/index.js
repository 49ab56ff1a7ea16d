// Passes every event on, noting whether each double arrived as the one Node
// wrote: `String(v)` gives Node's text back and that text parses to `v`.
export function processEvent(event) {
    const { values, texts } = event.properties
    event.properties.exact = values.every((v, i) => String(v) === texts[i] && Number(texts[i]) === v)
    return event
}

// The whole event as the webhook body, written by the connector's own JSON.stringify.
export function composeWebhook(event) {
    return { url: 'http://127.0.0.1:9/numbers', body: JSON.stringify(event) }
}
