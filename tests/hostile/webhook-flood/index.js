export function processEvent(event) {
    if (event.event === 'attack') {
        let captured = 0
        try {
            for (; captured < 10000; captured++) posthog.capture('flood', { captured })
        } catch (error) {
            // Over the cap: the host refused (and logged) the 101st.
        }
        if (captured !== 100) throw new Error(`captured ${captured}`)
    }
    return event
}

export function composeWebhook(event) {
    if (event.event !== 'attack') return null
    return Array.from({ length: 10000 }, (_, i) => ({ url: `https://hooks.example.com/${i}`, body: String(i) }))
}
