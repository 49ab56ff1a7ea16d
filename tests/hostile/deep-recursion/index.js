function down(depth) {
    return down(depth + 1) + 1
}
export function processEvent(event) {
    if (event.event === 'attack') down(0)
    return event
}
