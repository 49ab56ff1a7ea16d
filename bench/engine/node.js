// The harness's measurement in Node: the script in one vm context (the three
// connectors share it here, where PostHog gave each its own; the object
// handed between them is the same either way), the lines made strings first,
// one untimed round, the median of ROUNDS timed ones, then the same output
// hash as harness.c (FNV-1a over each result's UTF-8 and a newline).
//
//   node node.js SCRIPT EVENTS FUNCTION ROUNDS
const fs = require('fs')
const vm = require('vm')
const [script, events, name, rounds] = process.argv.slice(2)
const context = vm.createContext({})
vm.runInContext(fs.readFileSync(script, 'utf8'), context)
const fn = vm.runInContext(name, context)
const lines = fs.readFileSync(events, 'utf8').split('\n').filter(Boolean)
const times = []
for (let round = -1; round < Number(rounds); round++) {
    const start = process.hrtime.bigint()
    for (const line of lines) fn(line)
    if (round >= 0) times.push(Number(process.hrtime.bigint() - start) / 1000 / lines.length)
}
let hash = 2166136261
let bytes = 0
const mix = (buffer) => {
    for (const byte of buffer) hash = Math.imul(hash ^ byte, 16777619) >>> 0
}
for (const line of lines) {
    const out = fn(line)
    const text = Buffer.from(typeof out === 'string' ? out : 'null')
    if (typeof out === 'string') bytes += text.length
    mix(text)
    mix(Buffer.from('\n'))
}
times.sort((a, b) => a - b)
const median = times[times.length >> 1]
console.log(`output ${hash.toString(16).padStart(8, '0')} (${bytes} bytes), ${median.toFixed(2)} us/event (${rounds} rounds: ${times[0].toFixed(2)}-${times[times.length - 1].toFixed(2)})`)
