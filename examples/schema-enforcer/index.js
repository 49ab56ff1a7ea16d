// Drops events whose properties do not conform to the JSON schema configured
// for their event name (the seed's example of returning null).

function typeOf(value) {
    if (value === null) return 'null'
    if (Array.isArray(value)) return 'array'
    if (typeof value === 'number' && Number.isInteger(value)) return 'integer'
    return typeof value
}

function matchesType(value, type) {
    const actual = typeOf(value)
    return actual === type || (type === 'number' && actual === 'integer')
}

// The first reason `value` does not conform to `schema`, or null.
function violation(value, schema, path) {
    if (!schema || typeof schema !== 'object') return null
    if (schema.type !== undefined) {
        const types = Array.isArray(schema.type) ? schema.type : [schema.type]
        if (!types.some((type) => matchesType(value, type))) {
            return `${path} should be ${types.join(' or ')}, not ${typeOf(value)}`
        }
    }
    if (schema.enum && !schema.enum.some((allowed) => JSON.stringify(allowed) === JSON.stringify(value))) {
        return `${path} should be one of ${JSON.stringify(schema.enum)}`
    }
    if (typeof value === 'number') {
        if (schema.minimum !== undefined && value < schema.minimum) return `${path} should be >= ${schema.minimum}`
        if (schema.maximum !== undefined && value > schema.maximum) return `${path} should be <= ${schema.maximum}`
    }
    if (typeof value === 'string') {
        if (schema.minLength !== undefined && value.length < schema.minLength) return `${path} is shorter than ${schema.minLength}`
        if (schema.maxLength !== undefined && value.length > schema.maxLength) return `${path} is longer than ${schema.maxLength}`
    }
    if (typeOf(value) === 'object') {
        for (const key of schema.required || []) {
            if (!(key in value)) return `${path}.${key} is required`
        }
        for (const [key, child] of Object.entries(schema.properties || {})) {
            if (key in value) {
                const reason = violation(value[key], child, `${path}.${key}`)
                if (reason) return reason
            }
        }
        if (schema.additionalProperties === false) {
            const extra = Object.keys(value).find((key) => !(key in (schema.properties || {})))
            if (extra !== undefined) return `${path}.${extra} is not allowed`
        }
    }
    if (typeOf(value) === 'array' && schema.items) {
        for (let i = 0; i < value.length; i++) {
            const reason = violation(value[i], schema.items, `${path}[${i}]`)
            if (reason) return reason
        }
    }
    return null
}

export function setupPlugin({ config, global }) {
    const schemas = config.eventSchemas
    global.schemas = typeof schemas === 'string' ? JSON.parse(schemas) : schemas
    global.logDropped = config.logDropped === 'yes'
}

export function processEvent(event, { global }) {
    const schema = global.schemas[event.event]
    if (!schema) return event
    const reason = violation(event.properties || {}, schema, 'properties')
    if (reason) {
        if (global.logDropped) console.log(`dropped ${event.event}: ${reason}`)
        return null
    }
    return event
}
