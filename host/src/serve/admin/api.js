// The /v1 API, with the token the user signed in with. The token lives in
// this tab's sessionStorage only: gone when the tab closes, never in a cookie.

const KEY = 'sandpipe.token';

export const REDACTED = '**********';

export function token() {
    return sessionStorage.getItem(KEY);
}

export function signIn(value) {
    sessionStorage.setItem(KEY, value);
}

export function signOut() {
    sessionStorage.removeItem(KEY);
}

// An error answer: its status and its JSON body ({error, …}).
export class ApiError extends Error {
    constructor(status, body) {
        super(body && typeof body.error === 'string' ? body.error : `HTTP ${status}`);
        this.status = status;
        this.body = body || {};
    }
}

// `fetch` of a /v1 route: a JSON body for `json`, raw bytes for `bytes`;
// resolves to the parsed answer, rejects with an ApiError.
export async function call(method, path, { json, bytes } = {}) {
    const headers = { Authorization: `Bearer ${token()}` };
    let body;
    if (json !== undefined) {
        headers['Content-Type'] = 'application/json';
        body = JSON.stringify(json);
    } else if (bytes !== undefined) {
        headers['Content-Type'] = 'application/wasm';
        body = bytes;
    }
    const response = await fetch(path, { method, headers, body, cache: 'no-store' });
    const text = await response.text();
    let parsed;
    try {
        parsed = text ? JSON.parse(text) : null;
    } catch {
        parsed = text;
    }
    if (!response.ok) {
        throw new ApiError(response.status, typeof parsed === 'object' ? parsed : { error: text });
    }
    return parsed;
}

export const get = (path) => call('GET', path);
