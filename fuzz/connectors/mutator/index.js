// For the `shared_level` fuzz target: applies the operations the event names
// in `properties.$ops` (the fuzzer picks them), so that every kind of result
// crosses from one connector to the next, at both isolation levels.
const make = {
    date: () => new Date(0),
    negzero: () => -0,
    nan: () => NaN,
    lone: () => 'x\ud800',
    loneKey: () => ({ ['\udc00']: 1 }),
    index: () => ({ b: 1, 3: 'c' }),
    undef: () => undefined,
    fn: () => function () {},
    sym: () => Symbol('s'),
    deep: () => { let v = 0; for (let i = 0; i < 70; i++) v = [v]; return v },
    cycle: () => { const o = {}; o.o = o; return o },
    big: () => 'y'.repeat(300000),
    rawKey: () => ({ '$serde_json::private::RawValue': '1' }),
    bare: () => Object.create(null),
    getter: () => ({ get g() { return 1 } }),
    toJSON: () => ({ toJSON: () => 'j' }),
    rope: () => 'r'.repeat(400) + String(Date.now()).slice(0, 0) + 's'.repeat(400),
    wide: () => '\u4e2d\u{1F600}',
    nested: () => ({ a: [1, { b: [null, true, 1.5, 'c'] }] }),
    undefs: () => Array.from({ length: 30000 }),
    tiny: () => Array(3000).fill(-0.0000012345678901234567),
    controls: () => '\u0001\n"'.repeat(3000),
    doubles: () => [0.1, 2 ** 53 + 2, 1e21, -1e-7, 4294967296.5, 5e-324],
};

// What this connector sees of each property: kinds the text would not show.
function probe(properties) {
    const seen = {};
    for (const [key, v] of Object.entries(properties)) {
        if (key === '$ops' || key === 'probe') continue;
        seen[key] = [
            typeof v,
            Object.is(v, -0),
            v !== null && typeof v === 'object' ? Object.getPrototypeOf(v) === (Array.isArray(v) ? Array.prototype : Object.prototype) : null,
            v !== null && typeof v === 'object' ? Object.keys(v).slice(0, 8) : null,
            v !== null && typeof v === 'object' ? Object.isExtensible(v) : null,
        ];
    }
    return seen;
}
function processEvent(event) {
    const ops = event.properties && event.properties.$ops;
    if (!Array.isArray(ops)) return event;
    for (const op of ops) {
        if (typeof op !== 'string') continue;
        if (op === 'drop') return null;
        if (op === 'throw') throw new Error('asked to');
        if (op === 'team') { event.team_id = 'other'; continue }
        if (op === 'spread') { event = { ...event, properties: { ...event.properties } }; continue }
        if (op === 'probe') { event.properties.probe = probe(event.properties); continue }
        if (op === 'delete') {
            for (const key of Object.keys(event.properties)) {
                if (key !== '$ops') { delete event.properties[key]; break }
            }
            continue;
        }
        if (Object.prototype.hasOwnProperty.call(make, op)) event.properties[op] = make[op]();
    }
    return event;
}
