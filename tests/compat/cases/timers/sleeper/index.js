// Timers inside a call: run in Node's order, awaited within the call.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function processEvent(event) {
    const order = []
    setTimeout(() => order.push('a:20'), 20)
    setTimeout(() => order.push('b:5'), 5)
    setTimeout((x, y) => order.push(`g:20:${x}${y}`), 20, 'x', 'y')
    setTimeout(() => order.push('h:0'))
    const cancelled = setTimeout(() => order.push('never'), 10)
    queueMicrotask(() => order.push('microtask'))
    Promise.resolve().then(() => order.push('promise'))
    order.push('sync')
    clearTimeout(cancelled)
    await sleep(10)
    order.push('slept 10')
    await sleep(30)
    let ticks = 0
    await new Promise((resolve) => {
        const interval = setInterval(() => {
            ticks += 1
            order.push(`tick ${ticks}`)
            if (ticks === 3) {
                clearInterval(interval)
                resolve()
            }
        }, 4)
    })
    console.log(order.join(', '))
    event.properties.order = order
    return event
}
