// A connector's form: its id (typed for a new connector, kept read-only once
// saved) and its config fields, generated from its plugin.json fields (as
// `POST /v1/bundles` and `GET /v1/bundles/{id}` show them): string as a text
// input (a secret as a password input that starts empty and never shows the
// stored value, with a box to clear a stored one), json as a checked
// textarea, choice as a select, attachment as a file input. Required fields
// are marked; defaults fill new connectors. Also the connector's entry in a
// `PUT …/chain`.

import { h } from './ui.js';

let next = 0;

// A new connector model from a bundle's upload answer, with defaults.
export function fromBundle(bundle) {
    const values = {};
    for (const field of bundle.manifest.config) {
        if (field.default !== null && field.default !== undefined && !field.secret) {
            values[field.key] = typeof field.default === 'string' ? field.default : JSON.stringify(field.default);
        }
    }
    return {
        uid: next++, id: '', saved: false, bundle: bundle.id, name: bundle.manifest.name, manifest: bundle.manifest,
        enabled: true, status: null, values, secrets: {}, stored: new Set(), cleared: new Set(), files: {},
    };
}

// A connector model from `GET …/chain`'s entry and its bundle's manifest.
// Its id is kept as the service gave it (its meta.storage and meta.cache
// belong to it). Secret values shown redacted count as stored; they are
// never kept here.
export function fromChain(entry, manifest) {
    const values = {};
    const stored = new Set();
    for (const field of manifest.config) {
        if (!(field.key in entry.config)) continue;
        const value = entry.config[field.key];
        if (field.secret) {
            stored.add(field.key);
        } else {
            values[field.key] = typeof value === 'string' ? value : JSON.stringify(value);
        }
    }
    return {
        uid: next++, id: entry.id, saved: true, bundle: entry.bundle, name: entry.name, manifest,
        enabled: entry.enabled, status: entry.status, values, secrets: {}, stored, cleared: new Set(), files: {},
    };
}

// The connector's entry in a `PUT …/chain`. Its `id` is always sent once
// saved (without it the service would give the plugin's name, and the
// connector's meta.storage and meta.cache, and its stored secrets, would be
// another id's); a new connector's typed id, or none for the default.
export function entryOf(connector, REDACTED) {
    const id = connector.id !== '' ? { id: connector.id } : {};
    return { ...id, bundle: connector.bundle, enabled: connector.enabled, config: configOf(connector, REDACTED) };
}

// The `config` of a PUT: what was typed; a secret or attachment left empty
// is sent as the redacted placeholder, which keeps the stored value. A
// secret whose stored value the user cleared is left out: the connector has
// no value then (or the field's default; a required one is a 422). An empty
// string would not do: the service keeps "" as the value, shown redacted as
// if stored.
function configOf(connector, REDACTED) {
    const config = {};
    for (const field of connector.manifest.config) {
        const key = field.key;
        if (field.type === 'attachment') {
            config[key] = connector.files[key] || REDACTED;
        } else if (field.secret) {
            if (connector.secrets[key]) config[key] = connector.secrets[key];
            else if (connector.stored.has(key) && !connector.cleared.has(key)) config[key] = REDACTED;
        } else if (connector.values[key] !== undefined && connector.values[key] !== '') {
            config[key] = connector.values[key];
        }
    }
    return config;
}

export const fieldId = (connector, key) => `c${connector.uid}-${key}`;
export const errorId = (connector, key) => `c${connector.uid}-${key}-error`;
const clearId = (connector, key) => `c${connector.uid}-${key}-clear`;

function label(field) {
    return field.name || field.key;
}

function jsonProblem(text) {
    if (!text) return '';
    try {
        JSON.parse(text);
        return '';
    } catch (error) {
        return `Not valid JSON: ${error.message}`;
    }
}

function control(connector, field, id, describedBy) {
    const common = { id, 'aria-describedby': describedBy, 'aria-required': field.required ? 'true' : undefined };
    const key = field.key;
    switch (field.type) {
        case 'choice':
            return h('select', {
                ...common,
                onchange: (e) => { connector.values[key] = e.target.value; },
            },
            h('option', { value: '' }, field.required ? 'Choose…' : '(none)'),
            field.choices.map((choice) => h('option', { value: choice, selected: connector.values[key] === choice }, choice)));
        case 'json': {
            const area = h('textarea', {
                ...common, rows: 3, spellcheck: 'false', value: connector.values[key] ?? '',
                oninput: (e) => {
                    connector.values[key] = e.target.value;
                    const problem = jsonProblem(e.target.value);
                    const slot = document.getElementById(`${id}-error`);
                    slot.textContent = problem;
                    e.target.setAttribute('aria-invalid', problem ? 'true' : 'false');
                },
            });
            return area;
        }
        case 'attachment':
            return h('input', {
                ...common, type: 'file',
                onchange: async (e) => {
                    const file = e.target.files[0];
                    if (!file) { delete connector.files[key]; return; }
                    const bytes = new Uint8Array(await file.arrayBuffer());
                    let binary = '';
                    for (let i = 0; i < bytes.length; i += 0x8000) {
                        binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
                    }
                    connector.files[key] = {
                        content_type: file.type || 'application/octet-stream',
                        file_name: file.name,
                        contents_base64: btoa(binary),
                    };
                },
            });
        default:
            if (field.secret) {
                return h('input', {
                    ...common, type: 'password', autocomplete: 'new-password',
                    placeholder: secretPlaceholder(connector, key),
                    oninput: (e) => {
                        connector.secrets[key] = e.target.value;
                        if (e.target.value) setCleared(connector, key, false);
                    },
                });
            }
            return h('input', {
                ...common, type: 'text', autocomplete: 'off', value: connector.values[key] ?? '',
                placeholder: field.default ?? '',
                oninput: (e) => { connector.values[key] = e.target.value; },
            });
    }
}

function secretPlaceholder(connector, key) {
    if (!connector.stored.has(key)) return '';
    return connector.cleared.has(key) ? 'Cleared when saved' : 'Stored; type to replace';
}

// Whether a stored secret is cleared by the next save, in the model and on
// the page: clearing empties what was typed; typing a value unticks the box.
function setCleared(connector, key, cleared) {
    const input = document.getElementById(fieldId(connector, key));
    const box = document.getElementById(clearId(connector, key));
    if (cleared) {
        connector.cleared.add(key);
        delete connector.secrets[key];
        if (input) input.value = '';
    } else {
        connector.cleared.delete(key);
    }
    if (box) box.checked = cleared;
    if (input) input.placeholder = secretPlaceholder(connector, key);
}

// The box that clears a stored secret (left unticked, the save keeps it).
// Its name does not repeat the field's label, which describes it instead.
function clearBox(connector, field, labelId) {
    const id = clearId(connector, field.key);
    return h('span', { class: 'check' },
        h('input', {
            type: 'checkbox', id, 'aria-describedby': labelId, checked: connector.cleared.has(field.key),
            onchange: (e) => setCleared(connector, field.key, e.target.checked),
        }),
        h('label', { for: id }, 'Clear the stored value'));
}

// The connector's id: a text input for a new connector (empty: the service
// gives the plugin's name), read-only once saved, since another id would be
// another connector (a new meta.storage and meta.cache, its secrets not kept).
export function idField(connector) {
    // Not `c{uid}-{key}`, which a config field named "id" has.
    const id = `id-c${connector.uid}`;
    return h('div', { class: 'field' },
        h('label', { for: id }, 'Connector id'),
        h('input', {
            id, type: 'text', autocomplete: 'off', spellcheck: 'false', value: connector.id,
            readonly: connector.saved, 'aria-describedby': `${id}-hint`,
            placeholder: connector.saved ? undefined : connector.name,
            oninput: (e) => { connector.id = e.target.value; },
        }),
        h('p', { class: 'hint', id: `${id}-hint` }, connector.saved
            ? 'Its meta.storage and meta.cache belong to this id; it is kept when the chain is saved.'
            : 'Optional: its meta.storage and meta.cache belong to it. Empty: the plugin\'s name (NAME#2… for a later one of the same plugin). Fixed once saved.'));
}

// The form's fields, each with its visible label, hint and error slot.
export function fields(connector) {
    return connector.manifest.config.map((field) => {
        const id = fieldId(connector, field.key);
        const hintId = field.hint ? `${id}-hint` : null;
        const errId = errorId(connector, field.key);
        const describedBy = [hintId, errId].filter(Boolean).join(' ');
        const notes = [];
        if (field.required) notes.push('required');
        if (field.secret) notes.push('secret');
        if (field.type === 'attachment') notes.push('file; leave empty to keep the stored one');
        const labelId = `${id}-label`;
        return h('div', { class: 'field' },
            h('label', { for: id, id: labelId }, label(field),
                notes.length ? h('span', { class: 'note' }, ` (${notes.join(', ')})`) : null),
            control(connector, field, id, describedBy),
            field.secret && connector.stored.has(field.key) ? clearBox(connector, field, labelId) : null,
            field.hint ? h('p', { class: 'hint', id: hintId }, field.hint) : null,
            h('p', { class: 'field-error', id: errId, role: 'alert' }));
    });
}
