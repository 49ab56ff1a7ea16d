export function processEvent(event) {
    if (event.event === 'attack') event.team_id = 1
    return event
}
