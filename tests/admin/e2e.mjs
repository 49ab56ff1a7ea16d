// The admin page's scenario in headless chromium (run by tests/admin.rs,
// which starts the server and passes its address and files in the
// environment). Controls are found by their visible label or role, as a
// user (or a screen reader) finds them. Exits non-zero on the first failure.

import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import assert from 'node:assert/strict';

const env = process.env;
const BASE = env.SANDPIPE_URL;
const SECRET = 'Bearer e2e-s3cret-value';
const shots = env.SCREENSHOTS;

const browser = await chromium.launch({ executablePath: env.CHROMIUM, args: ['--no-sandbox'] });
const problems = [];
// Every response body the page receives, to check that no secret reaches it.
const received = [];
let page;

function step(name) {
    console.log(`- ${name}`);
}

async function expectText(locator, text, timeout = 10_000) {
    await locator.filter({ hasText: text }).first().waitFor({ timeout });
}

async function screenshot(name) {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function option(select, text) {
    const value = await select.locator('option', { hasText: text }).first().getAttribute('value');
    await select.selectOption(value);
}

const card = (name) => page.locator('li.connector').filter({ has: page.locator('legend', { hasText: name }) });

// A team's chain as the API answers it (the admin token): what the page saved.
async function chainOf(team) {
    const response = await fetch(`${BASE}/v1/teams/${team}/chain`, {
        headers: { Authorization: `Bearer ${env.SANDPIPE_ADMIN_TOKEN}` },
    });
    assert.equal(response.status, 200);
    return (await response.json()).connectors;
}

const idsOf = async (team) => (await chainOf(team)).map((connector) => connector.id);

try {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
    page = await context.newPage();
    // Error answers the scenario asks for (401, 400, 422, and the 403 of the
    // page's admin check for a team token) are logged by the browser as failed loads; anything else (a CSP violation, a script
    // error) is a problem.
    page.on('console', (message) => {
        if (message.type() === 'error' && !/^Failed to load resource: the server responded with a status of (400|401|403|422) /.test(message.text())) {
            problems.push(message.text());
        }
    });
    page.on('pageerror', (error) => problems.push(String(error)));
    page.on('response', async (response) => {
        try { received.push({ url: response.url(), body: await response.text() }); } catch { /* redirects, aborted */ }
    });

    step('sign in with the keyboard');
    await page.goto(`${BASE}/`);
    await screenshot('sign-in');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'token', 'Tab reaches the Token field first');
    await page.keyboard.type('wrong-token');
    await page.keyboard.press('Enter');
    await expectText(page.getByRole('alert'), 'That token is not known here.');
    await page.getByLabel('Token', { exact: true }).fill(env.SANDPIPE_ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expectText(page.getByRole('status'), 'Signed in as admin');
    assert.equal(await page.evaluate(() => Object.keys(localStorage).length), 0, 'nothing in localStorage');
    assert.equal(await page.evaluate(() => document.cookie), '', 'no cookie');

    step('create a team; its token is shown once with a copy button');
    await page.getByLabel('Team name').fill('acme');
    await page.getByRole('button', { name: 'Create team', exact: true }).click();
    const tokenField = page.getByLabel('New team token');
    await tokenField.waitFor();
    const teamToken = await tokenField.inputValue();
    assert.match(teamToken, /^sp_team_/);
    await page.getByRole('button', { name: 'Copy token', exact: true }).click();
    await expectText(page.getByRole('status'), 'Copied.');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), teamToken);
    await expectText(page.getByRole('cell'), 'acme');
    await screenshot('teams');
    const team = Number(await page.getByLabel('Team', { exact: true }).inputValue());

    step('upload: a refused bundle shows why; the picker and drag and drop');
    await page.getByRole('button', { name: 'Chain', exact: true }).click();
    await page.getByLabel('Upload bundle').setInputFiles({ name: 'broken.wasm', mimeType: 'application/wasm', buffer: Buffer.from('not wasm') });
    await expectText(page.getByRole('alert'), 'broken.wasm was refused: bundle is not a valid WebAssembly module');
    await page.getByLabel('Upload bundle').setInputFiles(env.HELLO_BUNDLE);
    await expectText(page.getByRole('status'), 'Uploaded Hello World');
    const webhookBytes = readFileSync(env.WEBHOOK_BUNDLE).toString('base64');
    const dropped = await page.evaluateHandle((base64) => {
        const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'webhook.wasm', { type: 'application/wasm' }));
        return transfer;
    }, webhookBytes);
    await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: dropped });
    await expectText(page.getByRole('status'), 'Uploaded Webhook');
    await page.getByLabel('Upload bundle').setInputFiles(env.BLOCKLIST_BUNDLE);
    await expectText(page.getByRole('status'), 'Uploaded Blocklist');

    step('add both connectors and fill the generated forms');
    await option(page.getByLabel('Bundle', { exact: true }), 'Hello World');
    await page.getByRole('button', { name: 'Add connector', exact: true }).click();
    await card('Hello World (0)').getByLabel('Person to greet').fill('Ada');
    await option(page.getByLabel('Bundle', { exact: true }), 'Webhook');
    await page.getByRole('button', { name: 'Add connector', exact: true }).click();
    const webhook = card('Webhook (1)');
    assert.equal(await webhook.getByLabel('Method').evaluate((e) => e.tagName), 'SELECT');
    assert.equal(await webhook.getByLabel('Method').inputValue(), 'POST', 'the default is filled in');
    assert.equal(await webhook.getByLabel('Authorization header').getAttribute('type'), 'password');
    assert.equal(await webhook.getByLabel('Webhook URL').getAttribute('aria-required'), 'true');
    await webhook.getByLabel('Extra headers').fill('{"X-Source": ');
    await expectText(webhook.locator('.field-error'), 'Not valid JSON');
    await webhook.getByLabel('Extra headers').fill('{"X-Source": "sandpipe"}');
    assert.equal(await webhook.locator('.field-error').filter({ hasText: 'Not valid JSON' }).count(), 0);
    await webhook.getByLabel('Authorization header').fill(SECRET);
    await option(page.getByLabel('Bundle', { exact: true }), 'Blocklist');
    await page.getByRole('button', { name: 'Add connector', exact: true }).click();
    const blocklist = card('Blocklist (2)').getByLabel('Blocked users');
    assert.equal(await blocklist.getAttribute('type'), 'file');
    await blocklist.setInputFiles({ name: 'blocked.txt', mimeType: 'text/plain', buffer: Buffer.from('mallory\n') });
    // A new connector's id may be typed; the others are left to the default.
    const blocklistId = card('Blocklist (2)').getByLabel('Connector id', { exact: true });
    assert.equal(await blocklistId.getAttribute('readonly'), null, 'a new connector\'s id can be typed');
    await blocklistId.fill('blocklist-custom');

    step('save without the required URL: the 422 is shown next to that field');
    await page.getByRole('button', { name: 'Save chain', exact: true }).click();
    const urlField = webhook.getByLabel('Webhook URL');
    await expectText(webhook.locator('.field-error'), 'config field "url" is required but has no value');
    await expectText(page.locator('#chain-error'), 'Not saved: Webhook (1) needs a fix.');
    assert.equal(await urlField.getAttribute('aria-invalid'), 'true');
    const described = await urlField.getAttribute('aria-describedby');
    const errorText = await page.evaluate((ids) => ids.split(' ').map((id) => document.getElementById(id).textContent).join(' '), described);
    assert.match(errorText, /config field "url" is required/, 'the error describes the field');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-invalid')), 'true', 'the field has the focus');
    await screenshot('chain-error');

    step('save');
    await urlField.fill(env.WEBHOOK_URL);
    const secretSaved = received.length;
    await page.getByRole('button', { name: 'Save chain', exact: true }).click();
    await expectText(page.getByRole('status'), 'Saved: 3 connector(s).');
    assert.deepEqual(await idsOf(team), ['Hello World', 'Webhook', 'blocklist-custom'], 'the typed id, else the plugin\'s name');
    const savedId = card('Blocklist (2)').getByLabel('Connector id', { exact: true });
    assert.equal(await savedId.inputValue(), 'blocklist-custom');
    assert.equal(await savedId.getAttribute('readonly'), '', 'a saved connector\'s id is read-only');

    step('reorder with the buttons and by dragging');
    const order = () => page.locator('li.connector legend').allTextContents();
    await card('Hello World (0)').getByRole('button', { name: 'Move down', exact: true }).click();
    assert.deepEqual((await order()).map((t) => t.split(' (')[0]), ['Webhook', 'Hello World', 'Blocklist']);
    const transfer = await page.evaluateHandle(() => new DataTransfer());
    await page.locator('li.connector').nth(1).dispatchEvent('dragstart', { dataTransfer: transfer });
    await page.locator('li.connector').nth(0).dispatchEvent('dragover', { dataTransfer: transfer });
    await page.locator('li.connector').nth(0).dispatchEvent('drop', { dataTransfer: transfer });
    assert.deepEqual((await order()).map((t) => t.split(' (')[0]), ['Hello World', 'Webhook', 'Blocklist']);
    // Saved again without retyping the secret or picking the file again:
    // the stored ones are kept (the trace below shows both).
    await page.getByRole('button', { name: 'Save chain', exact: true }).click();
    await expectText(page.getByRole('status'), 'Saved: 3 connector(s).');
    assert.deepEqual(await idsOf(team), ['Hello World', 'Webhook', 'blocklist-custom'], 'a save keeps each connector\'s id');
    await screenshot('chain');

    step('try an event: hello added in the diff, the webhook listed');
    await page.getByRole('button', { name: 'Try an event', exact: true }).click();
    await page.getByLabel('Event (JSON)').fill(JSON.stringify({ event: 'signup', distinct_id: 'ada', properties: { plan: 'pro' } }));
    await page.getByRole('button', { name: 'Run event', exact: true }).click();
    const helloStep = page.locator('li.step').filter({ hasText: 'Hello World (0): kept' });
    await expectText(helloStep.locator('.diff li.added'), 'properties.hello');
    assert.equal(await helloStep.locator('.diff li.added ins').textContent(), '"Hello Ada"');
    await expectText(page.locator('li.step'), 'Webhook (1): skipped');
    const blockStep = page.locator('li.step').filter({ hasText: 'Blocklist (2): kept' });
    await expectText(blockStep.locator('.diff li.added'), 'properties.blocked');
    assert.equal(await blockStep.locator('.diff li.added ins').textContent(), '"mallory"');
    const hooks = page.getByRole('table', { name: 'Webhooks it would send (not sent)' });
    await expectText(hooks.getByRole('row'), env.WEBHOOK_URL);
    await expectText(hooks.getByRole('row'), '"Authorization":"**********"');
    await screenshot('try-event');

    step('a real event from the team\'s service: its webhook is delivered');
    const sent = await fetch(`${BASE}/v1/teams/${team}/events`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${teamToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ event: 'pageview', distinct_id: 'ada', properties: {} }),
    });
    assert.equal(sent.status, 200);
    await page.getByRole('button', { name: 'Webhooks', exact: true }).click();
    const deliveries = page.getByRole('table', { name: 'Webhook deliveries, newest first' });
    await expectText(deliveries.getByRole('row'), 'delivered');
    await expectText(deliveries.getByRole('row'), env.WEBHOOK_URL);
    await expectText(page.locator('#webhooks-table p.hint'), 'All 1 shown.');
    await screenshot('webhooks');
    // The service filters by connector: Hello World composed none.
    const connectorFilter = page.locator('#view-webhooks').getByLabel('Connector');
    await connectorFilter.selectOption('Hello World (0)');
    await expectText(page.locator('#webhooks-table'), 'No webhook deliveries.');
    await connectorFilter.selectOption('Webhook (1)');
    await expectText(deliveries.getByRole('row'), env.WEBHOOK_URL);
    await connectorFilter.selectOption('');

    step('health');
    await page.getByRole('button', { name: 'Health', exact: true }).click();
    const health = page.getByRole('table', { name: "Each connector's health" });
    await expectText(health.getByRole('row'), 'Hello World (0)');
    const helloRow = await health.getByRole('row').filter({ hasText: 'Hello World (0)' }).getByRole('cell').allTextContents();
    assert.deepEqual(helloRow.slice(0, 3).concat(helloRow.slice(4, 6)), ['Hello World (0)', 'yes', 'healthy', '1', '0']);
    assert.match(helloRow[6], /^\d+\.\d\d ms$/);
    await screenshot('health');

    step('disable a connector: a log line says so; the ids the page loaded are kept');
    await page.getByRole('button', { name: 'Chain', exact: true }).click();
    await card('Hello World (0)').getByLabel('Enabled').uncheck();
    await page.getByRole('button', { name: 'Save chain', exact: true }).click();
    await expectText(page.getByRole('status'), 'Saved: 3 connector(s).');
    assert.deepEqual(await idsOf(team), ['Hello World', 'Webhook', 'blocklist-custom'],
        'a chain loaded and saved keeps each id (else the service gives the plugin\'s name and its storage is another id\'s)');
    await page.getByRole('button', { name: 'Logs', exact: true }).click();
    const logs = page.getByRole('table', { name: 'Log lines, newest first' });
    await expectText(logs.getByRole('row'), 'configuration: now disabled');
    await page.locator('#view-logs').getByLabel('Level').selectOption('info');
    await expectText(logs.getByRole('row'), 'configuration: now disabled');
    await page.locator('#view-logs').getByLabel('Connector').selectOption('Webhook (1)');
    await expectText(page.locator('#logs-table'), 'No log lines.');
    await page.locator('#view-logs').getByLabel('Connector').selectOption('');
    await expectText(logs.getByRole('row'), 'Hello World (0)');
    await screenshot('logs');

    step('the secret never reached the page after it was saved');
    for (const { url, body } of received.slice(secretSaved)) {
        assert.ok(!body.includes('e2e-s3cret'), `the secret is in the answer of ${url}`);
    }
    await page.getByRole('button', { name: 'Chain', exact: true }).click();
    await card('Webhook (1)').waitFor();
    assert.ok(!(await page.content()).includes('e2e-s3cret'), 'the secret is in the DOM');
    const values = await page.evaluate(() => [...document.querySelectorAll('input, textarea, select')].map((e) => e.value));
    assert.ok(!values.some((v) => v.includes('e2e-s3cret')), 'the secret is in a field');
    assert.ok(!(await page.evaluate(() => JSON.stringify(sessionStorage))).includes('e2e-s3cret'));

    step('a narrow window');
    await page.setViewportSize({ width: 360, height: 740 });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scroll at 360 px');
    await screenshot('narrow');
    await page.setViewportSize({ width: 1100, height: 800 });

    step('a stored secret is kept when untouched, gone when cleared');
    assert.equal((await chainOf(team))[1].config.authorization, '**********', 'untouched through every save: still stored');
    const authorization = card('Webhook (1)').getByLabel('Authorization header');
    assert.equal(await authorization.getAttribute('placeholder'), 'Stored; type to replace');
    await card('Webhook (1)').getByLabel('Clear the stored value', { exact: true }).check();
    assert.equal(await authorization.getAttribute('placeholder'), 'Cleared when saved');
    await page.getByRole('button', { name: 'Save chain', exact: true }).click();
    await expectText(page.getByRole('status'), 'Saved: 3 connector(s).');
    assert.ok(!('authorization' in (await chainOf(team))[1].config), 'the cleared secret is not stored');
    assert.equal(await card('Webhook (1)').getByLabel('Authorization header').getAttribute('placeholder'), '');
    assert.equal(await card('Webhook (1)').getByLabel('Clear the stored value', { exact: true }).count(), 0, 'nothing left to clear');

    step('the Bundle list offers every uploaded bundle (GET /v1/bundles), not only this tab\'s');
    await page.reload();
    await expectText(page.getByRole('status'), 'Signed in as admin');
    await expectText(page.getByRole('cell'), 'acme');
    await page.getByLabel('Team name').fill('beta');
    await page.getByRole('button', { name: 'Create team', exact: true }).click();
    await expectText(page.getByRole('cell'), 'beta');
    const beta = Number(await page.getByLabel('Team', { exact: true }).inputValue());
    assert.notEqual(beta, team);
    await page.getByRole('button', { name: 'Chain', exact: true }).click();
    // A new tab and a team without a chain: only the list can fill it.
    const choices = page.getByLabel('Bundle', { exact: true }).locator('option');
    await choices.filter({ hasText: 'Blocklist' }).first().waitFor({ state: 'attached', timeout: 10_000 });
    assert.deepEqual((await choices.allTextContents()).map((t) => t.split(' (')[0]).sort(), ['Blocklist', 'Hello World', 'Webhook']);
    await option(page.getByLabel('Bundle', { exact: true }), 'Hello World');
    await page.getByRole('button', { name: 'Add connector', exact: true }).click();
    await card('Hello World (0)').getByLabel('Person to greet').fill('Bea');
    await page.getByRole('button', { name: 'Save chain', exact: true }).click();
    await expectText(page.getByRole('status'), 'Saved: 1 connector(s).');
    assert.deepEqual(await idsOf(beta), ['Hello World']);

    step('a team token sees its team only');
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByLabel('Token', { exact: true }).fill(teamToken);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expectText(page.getByRole('status'), 'Signed in as team acme');
    assert.equal(await page.getByRole('button', { name: 'Teams', exact: true }).count(), 0);
    await card('Webhook (1)').waitFor();

    assert.deepEqual(problems, [], 'the console had errors (a CSP violation is one)');
    console.log('admin page: every step passed');
} catch (error) {
    if (page) await page.screenshot({ path: join(tmpdir(), 'sandpipe-admin-failure.png'), fullPage: true }).catch(() => {});
    console.error(`screenshot of the failure: ${join(tmpdir(), 'sandpipe-admin-failure.png')}`);
    console.error(error);
    console.error('console problems:', problems);
    process.exitCode = 1;
} finally {
    await browser.close();
}
