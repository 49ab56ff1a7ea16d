// A connector's config form, generated from its plugin.json fields (as
// `POST /v1/bundles` and `GET /v1/bundles/{id}` show them): string as a text
// input (a secret as a password input that starts empty and never shows the
// stored value), json as a checked textarea, choice as a select, attachment
// as a file input. Required fields are marked; defaults fill new connectors.

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
        uid: next++, bundle: bundle.id, name: bundle.manifest.name, manifest: bundle.manifest,
        enabled: true, status: null, values, secrets: {}, stored: new Set(), files: {},
    };
}

// A connector model from `GET …/chain`'s entry and its bundle's manifest.
// Secret values shown redacted count as stored; they are never kept here.
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
        uid: next++, bundle: entry.bundle, name: entry.name, manifest,
        enabled: entry.enabled, status: entry.status, values, secrets: {}, stored, files: {},
    };
}

// The `config` of a PUT: what was typed; a secret or attachment left empty
// is sent as the redacted placeholder, which keeps the stored value.
export function configOf(connector, REDACTED) {
    const config = {};
    for (const field of connector.manifest.config) {
        const key = field.key;
        if (field.type === 'attachment') {
            config[key] = connector.files[key] || REDACTED;
        } else if (field.secret) {
            if (connector.secrets[key]) config[key] = connector.secrets[key];
            else if (connector.stored.has(key)) config[key] = REDACTED;
        } else if (connector.values[key] !== undefined && connector.values[key] !== '') {
            config[key] = connector.values[key];
        }
    }
    return config;
}

export const fieldId = (connector, key) => `c${connector.uid}-${key}`;
export const errorId = (connector, key) => `c${connector.uid}-${key}-error`;

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
                    placeholder: connector.stored.has(key) ? 'Stored; type to replace' : '',
                    oninput: (e) => { connector.secrets[key] = e.target.value; },
                });
            }
            return h('input', {
                ...common, type: 'text', autocomplete: 'off', value: connector.values[key] ?? '',
                placeholder: field.default ?? '',
                oninput: (e) => { connector.values[key] = e.target.value; },
            });
    }
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
        return h('div', { class: 'field' },
            h('label', { for: id }, label(field),
                notes.length ? h('span', { class: 'note' }, ` (${notes.join(', ')})`) : null),
            control(connector, field, id, describedBy),
            field.hint ? h('p', { class: 'hint', id: hintId }, field.hint) : null,
            h('p', { class: 'field-error', id: errId, role: 'alert' }));
    });
}
