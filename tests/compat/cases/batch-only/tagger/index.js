function processEvent(event) {
    event.properties = event.properties || {}
    event.properties.tagged = event.event
    return event
}
