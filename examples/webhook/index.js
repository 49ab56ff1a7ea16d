/* Runs on every event */
function composeWebhook(event, meta) {
    if (event.event == '$autocapture') {
        return null
    }
    return {
        url: meta.config.url,
        body: JSON.stringify(event),
        headers: {
            'Content-Type': 'application/json',
        },
        method: 'POST',
    }

    // Don't need to return event, any return value is discarded, and the event is not modified
}
