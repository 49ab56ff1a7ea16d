export function processEvent(event) {
    if (event.event === 'attack') {
        const found = []
        if (typeof process !== 'undefined' && process.env && Object.keys(process.env).length) found.push('process.env')
        if (typeof Javy !== 'undefined' && Javy.IO) found.push('Javy.IO')
        if (typeof std !== 'undefined' || typeof os !== 'undefined') found.push('quickjs std/os')
        if (typeof WebAssembly !== 'undefined') found.push('WebAssembly')
        if (typeof Deno !== 'undefined' || typeof Bun !== 'undefined') found.push('other runtime')
        // The last door: a dynamic require of fs, which throws if it is shut.
        const load = globalThis['req' + 'uire']
        const fs = load('f' + 's')
        found.push('fs')
        event.properties.stolen = fs.readFileSync('/etc/passwd', 'utf8')
        event.properties.found = found
    }
    return event
}
