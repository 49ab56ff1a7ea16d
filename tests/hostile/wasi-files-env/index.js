// Each door to files, the environment or WASI is tried on its own, and what it
// opened is logged as `probe <door>: <what was there>`; the suite expects every
// door shut, one line each.
function probe(door, attempt) {
    let seen
    try {
        seen = attempt()
    } catch (error) {
        seen = `threw ${error}`
    }
    console.log(`probe ${door}: ${seen}`)
}

// What a name is bound to (`typeof` sees lexical bindings too): nothing, or
// its type and own property names.
function shape(name, value) {
    if (value === undefined) return `no ${name}`
    const names = value !== null && (typeof value === 'object' || typeof value === 'function')
        ? Object.getOwnPropertyNames(value).sort().join(',')
        : String(value)
    return `${name} is a ${typeof value} (${names})`
}

export function processEvent(event) {
    if (event.event === 'attack') {
        probe('process.env', () =>
            typeof process === 'undefined'
                ? 'no process'
                : `process.env holds ${JSON.stringify(Object.keys(process.env || {}))}`)
        probe('Javy.IO', () =>
            typeof Javy === 'undefined' ? 'no Javy' : shape('Javy.IO', Javy.IO))
        probe('quickjs std/os', () => [
            shape('std', typeof std === 'undefined' ? undefined : std),
            shape('os', typeof os === 'undefined' ? undefined : os),
            shape('scriptArgs', typeof scriptArgs === 'undefined' ? undefined : scriptArgs),
        ].join('; '))
        probe('WebAssembly', () =>
            shape('WebAssembly', typeof WebAssembly === 'undefined' ? undefined : WebAssembly))
        probe('other runtime', () => [
            shape('Deno', typeof Deno === 'undefined' ? undefined : Deno),
            shape('Bun', typeof Bun === 'undefined' ? undefined : Bun),
        ].join('; '))
        // The last door: a dynamic require of fs, which throws if it is shut.
        const load = globalThis['req' + 'uire']
        let fs
        try {
            fs = load('f' + 's')
        } catch (error) {
            console.log(`probe fs: threw ${error}`)
            throw error
        }
        console.log(`probe fs: opened (${Object.keys(fs).sort()})`)
        event.properties.stolen = fs.readFileSync('/etc/passwd', 'utf8')
    }
    return event
}
