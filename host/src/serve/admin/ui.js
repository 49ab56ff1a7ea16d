// DOM helpers: elements built from data with textContent, never from HTML
// strings, so nothing a connector or an event holds can become markup.

// h('p', {class: 'x', for: 'id', onclick: fn}, 'text', child…)
export function h(tag, attributes = {}, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
        if (value === undefined || value === null || value === false) continue;
        if (name.startsWith('on') && typeof value === 'function') {
            element.addEventListener(name.slice(2), value);
        } else if (name === 'value') {
            element.value = value;
        } else if (name === 'checked') {
            element.checked = Boolean(value);
        } else {
            element.setAttribute(name, value === true ? '' : String(value));
        }
    }
    for (const child of children.flat()) {
        if (child === undefined || child === null || child === false) continue;
        element.append(child instanceof Node ? child : String(child));
    }
    return element;
}

export function $(selector) {
    return document.querySelector(selector);
}

// Shows `message` in a status or alert element (empty hides it).
export function say(element, message) {
    element.textContent = message || '';
    element.hidden = !message;
}

// A table whose head is `columns` and whose rows are `rows` (arrays of cells).
export function table(caption, columns, rows) {
    return h('div', { class: 'table-scroll' },
        h('table', {},
            h('caption', {}, caption),
            h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c)))))));
}
