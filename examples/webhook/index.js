// The seed's composeWebhook, with the URL (and, optionally, a body template, the
// method, extra headers and a secret Authorization header) from config.

// `{{path.to.value}}` placeholders filled from the event; objects become JSON.
function render(template, event) {
    return template.replace(/\{\{\s*([\w$.]+)\s*\}\}/g, (_, path) => {
        let value = event
        for (const key of path.split('.')) {
            value = value === null || value === undefined ? undefined : value[key]
        }
        if (value === undefined || value === null) return ''
        return typeof value === 'object' ? JSON.stringify(value) : String(value)
    })
}

/* Runs on every event */
function composeWebhook(event, meta) {
    if (event.event == '$autocapture') {
        return null
    }
    // Extra headers: JSON text, as PostHog's UI stores it, or an object given through the API.
    const extra = meta.config.headers
    const headers = {
        'Content-Type': 'application/json',
        ...(typeof extra === 'string' ? (extra ? JSON.parse(extra) : {}) : extra || {}),
    }
    if (meta.config.authorization) {
        headers['Authorization'] = meta.config.authorization
    }
    return {
        url: meta.config.url,
        body: meta.config.bodyTemplate ? render(meta.config.bodyTemplate, event) : JSON.stringify(event),
        headers,
        method: meta.config.method || 'POST',
    }

    // Don't need to return event, any return value is discarded, and the event is not modified
}
