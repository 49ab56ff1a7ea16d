// What changed between two events: every added, changed and removed value,
// by path (`properties.hello`), objects compared key by key, anything else
// (arrays included) as a whole.

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function pathOf(prefix, key) {
    return prefix ? `${prefix}.${key}` : key;
}

// [{kind: 'added'|'changed'|'removed', path, before, after}] in key order.
export function diff(before, after, prefix = '') {
    if (!isObject(before) || !isObject(after)) {
        return JSON.stringify(before) === JSON.stringify(after)
            ? []
            : [{ kind: 'changed', path: prefix || '(event)', before, after }];
    }
    const changes = [];
    for (const key of Object.keys(before)) {
        if (!(key in after)) {
            changes.push({ kind: 'removed', path: pathOf(prefix, key), before: before[key] });
        }
    }
    for (const key of Object.keys(after)) {
        const path = pathOf(prefix, key);
        if (!(key in before)) {
            changes.push({ kind: 'added', path, after: after[key] });
        } else if (isObject(before[key]) && isObject(after[key])) {
            changes.push(...diff(before[key], after[key], path));
        } else if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) {
            changes.push({ kind: 'changed', path, before: before[key], after: after[key] });
        }
    }
    return changes;
}
