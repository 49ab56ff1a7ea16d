async function processEvent(event, { storage }) {
    const p = event.properties
    p.missing = await storage.get('never-set')
    p.missingType = typeof (await storage.get('never-set'))
    p.withDefault = await storage.get('never-set', 'default')
    await storage.set('k', { n: 1 })
    p.stored = await storage.get('k', 'default')
    await storage.set('k', undefined)
    p.afterUndefined = await storage.get('k', 'default')
    await storage.set('nothing', null)
    p.storedNull = await storage.get('nothing', 'default')
    const count = (await storage.get('count', 0)) + 1
    await storage.set('count', count)
    p.count = count
    return event
}
