// Writes the events of tests/numbers.rs with Node's JSON.stringify, and what a
// PostHog host on Node gives back for each through an identity connector:
//   node doubles.js COUNT SEED OUT_DIR
// events.ndjson   one event per line, PER_EVENT doubles in properties.values;
// expected.ndjson the event after the chain (the bookkeeping PostHog adds),
//                 which is also the webhook body composeWebhook writes.
'use strict'
const fs = require('fs')
const path = require('path')
const [count, seed, out] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]]
const PER_EVENT = 100

// A small deterministic generator (xorshift32), so a failure can be replayed.
let state = seed >>> 0 || 1
function next() {
    state ^= state << 13; state >>>= 0
    state ^= state >>> 17
    state ^= state << 5; state >>>= 0
    return state
}
const view = new DataView(new ArrayBuffer(8))
function fromBits(high, low) {
    view.setUint32(0, high); view.setUint32(4, low)
    return view.getFloat64(0)
}
const kinds = [
    // Random bit patterns (NaN and infinities skipped: JSON has no such number).
    () => fromBits(next(), next()),
    // 17-significant-digit decimals, as a measuring instrument writes them.
    () => Number(`${next() % 10}.${String(next()).padStart(10, '0')}${String(next() % 1e6).padStart(6, '0')}e${(next() % 40) - 20}`),
    // Integers near 2^53, on both sides, and their negatives.
    () => (2 ** 53 + (next() % 4096) - 2048) * (next() & 1 ? -1 : 1),
    // Subnormals.
    () => fromBits(next() & 0x000fffff, next()) * (next() & 1 ? -1 : 1),
    // Every exponent, the extremes included.
    () => fromBits(((next() % 2047) << 20) | (next() & 0xfffff), next()),
    // Everyday magnitudes: prices, coordinates, ratios.
    () => (next() % 1e7) / 10 ** (next() % 9),
    // Powers of two, subnormal to the largest: the double below one is half as
    // far as the double above, so the shortest digits that read back are not
    // always the nearest (2 ** -24 is 5.960464477539063e-8).
    () => 2 ** ((next() % 2098) - 1074),
]
const events = [], expected = []
for (let i = 0; i < count / PER_EVENT; i++) {
    const values = []
    while (values.length < PER_EVENT) {
        const value = kinds[values.length % kinds.length]()
        if (Number.isFinite(value)) values.push(value)
    }
    // The timestamp last and in toISOString's form: the reduced event composeWebhook
    // sees (its timestamp a Date) then writes the same text as the event.
    const event = { event: 'numbers', team_id: 1, distinct_id: `d${i}`, properties: { values, texts: values.map(String) }, timestamp: '2024-01-01T00:00:00.000Z' }
    events.push(JSON.stringify(event))
    const after = JSON.parse(JSON.stringify(event))
    after.properties.exact = true
    after.properties.$plugins_succeeded = ['Identity (0)']
    after.properties.$plugins_failed = []
    expected.push(JSON.stringify(after))
}
fs.writeFileSync(path.join(out, 'events.ndjson'), events.join('\n') + '\n')
fs.writeFileSync(path.join(out, 'expected.ndjson'), expected.join('\n') + '\n')
