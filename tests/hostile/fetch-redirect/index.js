export async function processEvent(event, { config }) {
    if (event.event === 'attack') {
        const response = await fetch(`http://127.0.0.1:${config.redirector_port}/to-metadata`)
        event.properties.metadata = await response.text()
    }
    return event
}
