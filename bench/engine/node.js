// The harness's measurement in Node: the script in a vm context (as PostHog's
// host ran connectors), the lines made strings first, the median round.
//
//   node node.js SCRIPT EVENTS FUNCTION ROUNDS
const fs = require('fs'), vm = require('vm')
const [script, events, fn, rounds] = process.argv.slice(2)
const ctx = vm.createContext({})
vm.runInContext(fs.readFileSync(script, 'utf8'), ctx)
const f = vm.runInContext(fn, ctx)
const lines = fs.readFileSync(events, 'utf8').split('\n').filter(Boolean)
const times = []
let bytes = 0
for (let r = 0; r < Number(rounds); r++) {
  bytes = 0
  const start = process.hrtime.bigint()
  for (const line of lines) { const out = f(line); if (typeof out === 'string') bytes += out.length }
  times.push(Number(process.hrtime.bigint() - start) / 1000 / lines.length)
}
times.sort((a, b) => a - b)
console.log(`${rounds} rounds, ${lines.length} events, ${bytes} chars out, ${times[times.length >> 1].toFixed(2)} us/event (min ${times[0].toFixed(2)}, max ${times[times.length - 1].toFixed(2)})`)
