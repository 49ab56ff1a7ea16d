// The admin page: sign in, teams, the chain editor, a dry run of an event,
// health, logs and webhooks. Everything goes through the /v1 API (api.js).

import * as api from './api.js';
import { diff } from './diff.js';
import * as form from './form.js';
import { $, h, say, table } from './ui.js';

const REFRESH_MS = 2000;

const state = {
    admin: false,
    teams: [],
    team: null,
    view: 'chain',
    // What the Bundle list offers, id → plugin name: the bundles
    // `GET /v1/bundles` lists (every one for the admin, the chain's for a
    // team), the chain's, and those uploaded in this tab.
    choices: new Map(),
    // Bundle answers ({id, manifest}) uploaded or fetched here, by id.
    bundles: new Map(),
    // The chain being edited: connector models (form.js).
    chain: [],
    logs: { lastId: 0, rows: [] },
    // The deliveries shown, newest first, and whether older ones are left;
    // `seq` numbers listings (a newer one, or a team switch, drops an older
    // one's answer), `loading` marks a "Show older" in flight.
    webhooks: { rows: [], more: false, seq: 0, loading: false },
    timer: null,
};

// Rows a page of `GET …/webhooks` holds at most (the service's `WEBHOOK_PAGE`).
const WEBHOOK_PAGE = 1000;

const SAMPLES = {
    pageview: { event: '$pageview', distinct_id: 'user-1', properties: { $current_url: 'https://example.com/', plan: 'free' } },
    signup: { event: 'signup', distinct_id: 'user-2', properties: { plan: 'pro', email: 'ada@example.com' } },
    autocapture: { event: '$autocapture', distinct_id: 'user-3', properties: { $event_type: 'click' } },
    identify: { event: '$identify', distinct_id: 'user-4' },
};

// ---- signing in ----

async function signIn(token) {
    api.signIn(token);
    try {
        const { teams } = await api.get('/v1/teams');
        state.teams = teams;
    } catch (error) {
        api.signOut();
        throw error;
    }
    // The metrics route answers the admin token (a team token gets 403).
    state.admin = await api.get('/metrics').then(() => true, () => false);
    $('#who').textContent = state.admin ? 'Signed in as admin' : `Signed in as team ${state.teams[0]?.name ?? ''}`;
    $('#sign-in').hidden = true;
    $('#app').hidden = false;
    $('#sign-out').hidden = false;
    $('#nav-teams').hidden = !state.admin;
    $('#token').value = '';
    renderTeamChoice();
    await show(state.admin ? 'teams' : 'chain');
}

function signOut() {
    api.signOut();
    clearInterval(state.timer);
    location.reload();
}

// ---- views ----

async function show(view) {
    state.view = view;
    for (const button of document.querySelectorAll('nav button')) {
        if (button.dataset.view === view) button.setAttribute('aria-current', 'page');
        else button.removeAttribute('aria-current');
    }
    for (const section of document.querySelectorAll('.view')) {
        section.hidden = section.id !== `view-${view}`;
    }
    clearInterval(state.timer);
    state.timer = null;
    await refresh();
    if (['health', 'logs', 'webhooks'].includes(view)) {
        state.timer = setInterval(() => refresh({ auto: true }).catch(() => {}), REFRESH_MS);
    }
}

async function refresh({ auto = false } = {}) {
    switch (state.view) {
        case 'teams': return renderTeams();
        case 'chain': return auto ? undefined : loadChain();
        case 'try': return renderSamples();
        case 'health': return renderHealth();
        case 'logs':
            if (!auto && state.team !== null) await connectorFilter($('#logs-connector'));
            return $('#logs-auto').checked || !auto ? renderLogs() : undefined;
        case 'webhooks':
            if (!auto && state.team !== null) await connectorFilter($('#webhooks-connector'));
            return !auto || autoRefreshesWebhooks() ? renderWebhooks() : undefined;
        default: return undefined;
    }
}

function renderTeamChoice() {
    const select = $('#team');
    select.replaceChildren(...state.teams.map((team) => h('option', { value: team.id }, `${team.name} (${team.id})`)));
    if (!state.teams.some((team) => team.id === state.team)) state.team = state.teams[0]?.id ?? null;
    if (state.team !== null) select.value = String(state.team);
    select.disabled = state.teams.length < 2;
}

const teamPath = (rest) => `/v1/teams/${state.team}${rest}`;

function needTeam(container) {
    if (state.team !== null) return false;
    container.replaceChildren(h('p', { class: 'hint' }, 'Create a team first.'));
    return true;
}

// ---- teams ----

async function renderTeams() {
    const { teams } = await api.get('/v1/teams');
    state.teams = teams;
    renderTeamChoice();
    $('#teams-table').replaceChildren(table('Every team', ['Id', 'Name', 'Created'],
        teams.map((team) => [String(team.id), team.name, team.created_at])));
}

async function createTeam(event) {
    event.preventDefault();
    const name = $('#team-name').value;
    say($('#create-team-error'), '');
    try {
        const team = await api.call('POST', '/v1/teams', { json: { name } });
        $('#team-name').value = '';
        $('#new-token-title').textContent = `Team ${team.name} (${team.id}) was created. Its token is shown only now: store it.`;
        $('#new-token-value').value = team.token;
        say($('#copy-status'), '');
        $('#new-token').hidden = false;
        state.team = team.id;
        await renderTeams();
    } catch (error) {
        say($('#create-team-error'), error.message);
    }
}

async function copyToken() {
    const input = $('#new-token-value');
    try {
        await navigator.clipboard.writeText(input.value);
    } catch {
        input.select();
        document.execCommand('copy');
    }
    say($('#copy-status'), 'Copied.');
}

// ---- bundles ----

async function upload(file) {
    say($('#upload-status'), '');
    say($('#upload-error'), '');
    if (!file) return;
    try {
        const bytes = await file.arrayBuffer();
        const bundle = await api.call('POST', '/v1/bundles', { bytes });
        state.bundles.set(bundle.id, bundle);
        state.choices.set(bundle.id, bundle.manifest.name);
        renderBundleChoice(bundle.id);
        say($('#upload-status'), `Uploaded ${bundle.manifest.name} (${bundle.id.slice(0, 12)}…): choose "Add connector" to use it.`);
    } catch (error) {
        say($('#upload-error'), `${file.name} was refused: ${error.message}`);
    } finally {
        $('#bundle-file').value = '';
    }
}

async function bundle(id) {
    if (!state.bundles.has(id)) state.bundles.set(id, await api.get(`/v1/bundles/${encodeURIComponent(id)}`));
    return state.bundles.get(id);
}

// The uploaded bundles `GET /v1/bundles` lists join the choices. Refused
// (a token that may not list them), the choices stay the chain's and this
// tab's uploads.
async function listBundles() {
    try {
        const { bundles } = await api.get('/v1/bundles');
        for (const listed of bundles) state.choices.set(listed.id, listed.name);
    } catch (error) {
        if (!(error instanceof api.ApiError)) throw error;
    }
}

function renderBundleChoice(selected) {
    const select = $('#bundle-choice');
    const current = selected ?? select.value;
    select.replaceChildren(...[...state.choices].map(([id, name]) =>
        h('option', { value: id }, `${name} (${id.slice(0, 12)}…)`)));
    if (current && state.choices.has(current)) select.value = current;
    $('#add-connector').disabled = state.choices.size === 0;
}

// ---- the chain editor ----

async function loadChain() {
    if (needTeam($('#connectors'))) return;
    const [chain] = await Promise.all([api.get(teamPath('/chain')), listBundles()]);
    for (const entry of chain.connectors) state.choices.set(entry.bundle, entry.name);
    state.chain = await Promise.all(chain.connectors.map(async (entry) =>
        form.fromChain(entry, (await bundle(entry.bundle)).manifest)));
    renderBundleChoice();
    renderChain();
}

const labelOf = (connector, index) => `${connector.name} (${index})`;

function move(from, to) {
    if (to < 0 || to >= state.chain.length || from === to) return;
    const [connector] = state.chain.splice(from, 1);
    state.chain.splice(to, 0, connector);
    renderChain();
}

function renderChain() {
    const list = $('#connectors');
    $('#chain-empty').hidden = state.chain.length > 0;
    list.replaceChildren(...state.chain.map((connector, index) => {
        const last = index === state.chain.length - 1;
        const item = h('li', {
            class: connector.enabled ? 'connector' : 'connector off',
            draggable: 'true',
            'data-index': index,
            ondragstart: (e) => { e.dataTransfer.setData('text/plain', String(index)); e.dataTransfer.effectAllowed = 'move'; },
            ondragover: (e) => { e.preventDefault(); item.classList.add('drop-target'); },
            ondragleave: () => item.classList.remove('drop-target'),
            ondrop: (e) => {
                e.preventDefault();
                item.classList.remove('drop-target');
                const from = Number(e.dataTransfer.getData('text/plain'));
                if (Number.isInteger(from)) move(from, index);
            },
        },
        h('fieldset', {},
            h('legend', {}, labelOf(connector, index),
                connector.status ? h('span', { class: `badge ${connector.status}` }, connector.status) : null),
            h('div', { class: 'controls' },
                h('button', { type: 'button', disabled: index === 0, onclick: () => move(index, index - 1) }, 'Move up'),
                h('button', { type: 'button', disabled: last, onclick: () => move(index, index + 1) }, 'Move down'),
                h('span', { class: 'check' },
                    h('input', {
                        type: 'checkbox', id: `c${connector.uid}-enabled`, checked: connector.enabled,
                        onchange: (e) => { connector.enabled = e.target.checked; item.classList.toggle('off', !connector.enabled); },
                    }),
                    h('label', { for: `c${connector.uid}-enabled` }, 'Enabled')),
                h('button', {
                    type: 'button', class: 'danger',
                    onclick: () => { state.chain.splice(index, 1); renderChain(); },
                }, 'Remove')),
            h('p', { class: 'field-error', id: `c${connector.uid}-error`, role: 'alert' }),
            form.idField(connector),
            form.fields(connector)));
        return item;
    }));
}

// A listed bundle's manifest is fetched when it is first added.
async function addConnector() {
    const id = $('#bundle-choice').value;
    if (!id) return;
    say($('#chain-error'), '');
    let chosen;
    try {
        chosen = await bundle(id);
    } catch (error) {
        say($('#chain-error'), `${state.choices.get(id)} cannot be added: ${error.message}`);
        return;
    }
    state.chain.push(form.fromBundle(chosen));
    renderChain();
    const added = state.chain[state.chain.length - 1];
    const first = added.manifest.config[0];
    document.getElementById(first ? form.fieldId(added, first.key) : `c${added.uid}-enabled`)?.focus();
}

async function saveChain() {
    say($('#chain-status'), '');
    say($('#chain-error'), '');
    for (const slot of document.querySelectorAll('#connectors .field-error')) slot.textContent = '';
    for (const input of document.querySelectorAll('#connectors [aria-invalid]')) input.removeAttribute('aria-invalid');
    const body = {
        connectors: state.chain.map((connector) => form.entryOf(connector, api.REDACTED)),
    };
    try {
        const saved = await api.call('PUT', teamPath('/chain'), { json: body });
        // What the service now runs, secrets redacted: typed secrets are dropped.
        state.chain = await Promise.all(saved.connectors.map(async (entry) =>
            form.fromChain(entry, (await bundle(entry.bundle)).manifest)));
        renderChain();
        say($('#chain-status'), `Saved: ${saved.connectors.length} connector(s).`);
    } catch (error) {
        showChainError(error);
    }
}

// A 422 of config values lists every problem (`problems`: the connector's
// position, the field, the error): each message goes next to its field, and
// the first such field gets the focus. Another 422 names at most a connector.
function showChainError(error) {
    const position = error.body?.connector;
    const problems = error.body?.problems
        ?? (Number.isInteger(position) ? [{ connector: position, field: error.body.field, error: error.message }] : []);
    const needFix = [];
    let focused = false;
    for (const problem of problems) {
        const connector = state.chain[problem.connector];
        if (!connector) continue;
        const key = problem.field;
        const slot = key !== undefined ? document.getElementById(form.errorId(connector, key)) : null;
        const target = slot ?? document.getElementById(`c${connector.uid}-error`);
        target.textContent = target.textContent ? `${target.textContent}; ${problem.error}` : problem.error;
        const input = key !== undefined ? document.getElementById(form.fieldId(connector, key)) : null;
        if (input) {
            input.setAttribute('aria-invalid', 'true');
            if (!focused) input.focus();
            focused = true;
        }
        const label = labelOf(connector, problem.connector);
        if (!needFix.includes(label)) needFix.push(label);
    }
    if (needFix.length > 0) {
        say($('#chain-error'), `Not saved: ${needFix.join(', ')} ${needFix.length === 1 ? 'needs' : 'need'} a fix.`);
    } else {
        say($('#chain-error'), `Not saved: ${error.message}`);
    }
}

// ---- try an event ----

function renderSamples() {
    const select = $('#event-sample');
    if (select.options.length === 0) {
        select.replaceChildren(...Object.keys(SAMPLES).map((name) => h('option', { value: name }, name)));
        $('#event-input').value = JSON.stringify(SAMPLES.pageview, null, 2);
    }
}

function jsonText(value) {
    return value === undefined ? '' : JSON.stringify(value);
}

function diffList(before, after) {
    const changes = diff(before, after);
    if (changes.length === 0) return h('p', { class: 'hint' }, 'No change.');
    return h('ul', { class: 'diff' }, changes.map((change) => h('li', { class: change.kind },
        h('span', { class: 'kind' }, change.kind), ' ',
        h('code', { class: 'path' }, change.path), ' ',
        change.kind !== 'added' ? h('del', {}, jsonText(change.before)) : null,
        change.kind === 'changed' ? ' → ' : null,
        change.kind !== 'removed' ? h('ins', {}, jsonText(change.after)) : null)));
}

async function runEvent() {
    say($('#event-error'), '');
    $('#event-input').removeAttribute('aria-invalid');
    let event;
    try {
        event = JSON.parse($('#event-input').value);
    } catch (error) {
        $('#event-input').setAttribute('aria-invalid', 'true');
        say($('#event-error'), `Not valid JSON: ${error.message}`);
        return;
    }
    const out = $('#trace');
    try {
        const trace = await api.call('POST', teamPath('/events?trace=true'), { json: event });
        let before = event;
        const steps = trace.steps.map((step) => {
            const failure = trace.failures.find((f) => f.connector === step.connector && f.stage === 'processEvent');
            let body;
            switch (step.outcome) {
                case 'kept': body = diffList(before, step.event); before = step.event; break;
                case 'skipped': body = h('p', { class: 'hint' }, 'No processEvent: the event went on unchanged.'); break;
                case 'dropped': body = h('p', { class: 'dropped' }, 'Dropped the event: the chain stops here.'); break;
                default: body = h('p', { class: 'error' }, `Failed: ${failure?.error ?? ''}. The event went on as it was.`);
            }
            return h('li', { class: `step ${step.outcome}` }, h('h4', {}, `${step.connector}: ${step.outcome}`), body);
        });
        const composeFailures = trace.failures.filter((f) => f.stage !== 'processEvent');
        out.replaceChildren(...[
            h('h3', {}, 'Each connector'),
            h('ol', { class: 'steps' }, steps),
            trace.result === null
                ? h('p', { class: 'dropped' }, `Dropped by ${trace.dropped_by}.`)
                : h('div', {}, h('h3', {}, 'Result, with the chain\'s bookkeeping'), diffList(before, trace.result)),
            composeFailures.length ? h('div', {}, h('h3', {}, 'Failures'),
                h('ul', {}, composeFailures.map((f) => h('li', { class: 'error' }, `${f.connector} ${f.stage}: ${f.error}`)))) : null,
            h('h3', {}, 'Webhooks it would send'),
            trace.webhooks.length
                ? table('Webhooks it would send (not sent)', ['Connector', 'Method', 'URL', 'Headers', 'Body'],
                    trace.webhooks.map((w) => [w.connector, w.method, w.url, JSON.stringify(w.headers), w.body ?? '']))
                : h('p', { class: 'hint' }, 'None.'),
            h('h3', {}, 'Logs'),
            trace.logs.length
                ? h('ul', { class: 'logs' }, trace.logs.map((l) => h('li', {}, `[${l.level}] ${l.connector}: ${l.message}`)))
                : h('p', { class: 'hint' }, 'None.'),
        ].filter(Boolean));
    } catch (error) {
        out.replaceChildren(h('p', { class: 'error', role: 'alert' }, error.message));
    }
}

// ---- health, logs, webhooks ----

// What a queued row that is not an HTTP request calls, by its kind.
const CALLS = { on_event: 'onEvent', export: 'exportEvents' };

async function renderHealth() {
    if (needTeam($('#health-table'))) return;
    const { connectors } = await api.get(teamPath('/health'));
    $('#health-table').replaceChildren(connectors.length === 0
        ? h('p', { class: 'hint' }, 'No chain yet.')
        : table('Each connector\'s health', ['Connector', 'Enabled', 'Status', 'Reason', 'Calls', 'Errors', 'p99'],
            connectors.map((c) => [c.connector, c.enabled ? 'yes' : 'no',
                h('span', { class: `badge ${c.status}` }, c.status), c.reason ?? '', String(c.calls), String(c.errors),
                c.p99_ms === null ? '–' : `${c.p99_ms.toFixed(2)} ms`])));
}

async function connectorFilter(select) {
    const chain = await api.get(teamPath('/chain'));
    const labels = chain.connectors.map((c, i) => `${c.name} (${i})`);
    const current = select.value;
    select.replaceChildren(h('option', { value: '' }, 'All'), ...labels.map((l) => h('option', { value: l }, l)));
    if (labels.includes(current)) select.value = current;
}

function resetLogs() {
    state.logs = { lastId: 0, rows: [] };
}

async function renderLogs() {
    if (needTeam($('#logs-table'))) return;
    const select = $('#logs-connector');
    const query = new URLSearchParams({ since: String(state.logs.lastId) });
    if (select.value) query.set('connector', select.value);
    if ($('#logs-level').value) query.set('level', $('#logs-level').value);
    const { logs } = await api.get(teamPath(`/logs?${query}`));
    if (logs.length) state.logs.lastId = logs[logs.length - 1].id;
    state.logs.rows = [...logs.reverse(), ...state.logs.rows].slice(0, 1000);
    $('#logs-table').replaceChildren(state.logs.rows.length === 0
        ? h('p', { class: 'hint' }, 'No log lines.')
        : table('Log lines, newest first', ['Time', 'Connector', 'Level', 'Message'],
            state.logs.rows.map((l) => [l.time, l.connector, h('span', { class: `level ${l.level}` }, l.level), l.message])));
}

// Auto-refresh shows the newest page again, so it waits while older pages
// are open or loading, and while the list has the focus (its "Show older"
// button would be made again under the keyboard).
function autoRefreshesWebhooks() {
    return $('#webhooks-auto').checked
        && !state.webhooks.loading
        && state.webhooks.rows.length <= WEBHOOK_PAGE
        && !$('#webhooks-table').contains(document.activeElement);
}

// The newest deliveries first, a page at a time, filtered by the service:
// `older` adds the page before the last row shown; otherwise the list starts
// again at the newest. An answer that a newer listing overtook is dropped.
async function renderWebhooks({ older = false } = {}) {
    if (needTeam($('#webhooks-table'))) return;
    const query = new URLSearchParams({ newest: 'true' });
    if ($('#webhooks-connector').value) query.set('connector', $('#webhooks-connector').value);
    if ($('#webhooks-status').value) query.set('status', $('#webhooks-status').value);
    const before = older ? state.webhooks.rows : [];
    if (before.length > 0) query.set('before', String(before[before.length - 1].id));
    const seq = ++state.webhooks.seq;
    state.webhooks.loading = older;
    let webhooks;
    try {
        ({ webhooks } = await api.get(teamPath(`/webhooks?${query}`)));
    } finally {
        if (seq === state.webhooks.seq) state.webhooks.loading = false;
    }
    if (seq !== state.webhooks.seq) return;
    state.webhooks = { ...state.webhooks, rows: [...before, ...webhooks], more: webhooks.length === WEBHOOK_PAGE };
    const shown = state.webhooks.rows;
    $('#webhooks-table').replaceChildren(...(shown.length === 0
        ? [h('p', { class: 'hint' }, 'No webhook deliveries.')]
        : [table('Webhook deliveries, newest first', ['Id', 'Connector', 'Method', 'URL', 'Status', 'Attempts', 'Last error', 'Created'],
            shown.map((w) => [String(w.id), w.connector, CALLS[w.kind] ?? w.method, w.url,
                h('span', { class: `badge ${w.status}` }, w.status), String(w.attempts), w.last_error ?? '', w.created_at])),
        state.webhooks.more
            ? h('button', { type: 'button', id: 'webhooks-older', onclick: () => renderWebhooks({ older: true }) },
                `Show older (${shown.length} shown)`)
            : h('p', { class: 'hint' }, `All ${shown.length} shown.`)]));
}

// ---- wiring ----

function wire() {
    $('#sign-in-form').addEventListener('submit', async (event) => {
        event.preventDefault();
        say($('#sign-in-error'), '');
        const token = $('#token').value.trim();
        if (!token) {
            say($('#sign-in-error'), 'Enter a token.');
            return;
        }
        try {
            await signIn(token);
        } catch (error) {
            say($('#sign-in-error'), error.status === 401 ? 'That token is not known here.' : error.message);
        }
    });
    $('#sign-out').addEventListener('click', signOut);
    for (const button of document.querySelectorAll('nav button')) {
        button.addEventListener('click', () => show(button.dataset.view));
    }
    $('#team').addEventListener('change', (e) => {
        state.team = Number(e.target.value);
        resetLogs();
        $('#logs-connector').replaceChildren();
        $('#webhooks-connector').replaceChildren();
        state.webhooks = { rows: [], more: false, seq: state.webhooks.seq + 1, loading: false };
        refresh();
    });
    $('#create-team').addEventListener('submit', createTeam);
    $('#copy-token').addEventListener('click', copyToken);
    $('#bundle-file').addEventListener('change', (e) => upload(e.target.files[0]));
    const zone = $('#drop-zone');
    zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => {
        e.preventDefault();
        zone.classList.remove('over');
        upload(e.dataTransfer.files[0]);
    });
    $('#add-connector').addEventListener('click', addConnector);
    $('#save-chain').addEventListener('click', saveChain);
    $('#event-sample').addEventListener('change', (e) => {
        $('#event-input').value = JSON.stringify(SAMPLES[e.target.value], null, 2);
    });
    $('#run-event').addEventListener('click', runEvent);
    for (const id of ['#logs-connector', '#logs-level']) {
        $(id).addEventListener('change', () => { resetLogs(); renderLogs(); });
    }
    for (const id of ['#webhooks-connector', '#webhooks-status']) {
        $(id).addEventListener('change', () => renderWebhooks());
    }
}

wire();
renderBundleChoice();
if (api.token()) {
    signIn(api.token()).catch(() => {});
}
