// Results that are thenables, not promises: PostHog awaited processEvent, and
// `await` resolves a thenable as it resolves a promise. And a console line
// with half a surrogate pair (a title cut in the middle of an emoji).
function processEvent(event) {
    console.log('title:', `Hi \u{1F44B} there`.slice(0, 4))
    switch (event.event) {
        case 'resolves':
            event.properties.how = 'resolved'
            return { then(resolve) { resolve(event) } }
        case 'resolves-later':
            return { then(resolve) { Promise.resolve().then(() => resolve({ ...event, later: true })) } }
        case 'resolves-to-null':
            return { then(resolve) { resolve(null) } }
        case 'rejects':
            event.properties.changed = true
            return { then(_, reject) { reject(new Error('not today')) } }
        case 'throws-in-then':
            return { then() { throw new Error('then threw') } }
        default:
            return event
    }
}
