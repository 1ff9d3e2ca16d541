// The dashboard (GET /) in a real browser: Debian's chromium driven by puppeteer-core.
// Sign-in (a wrong key refused, the master key kept in sessionStorage only, never in the
// URL or localStorage), every tab with live data, the API tester's round trip (whole and
// streamed, with the routing metadata), a model reset, key creation and revocation, and no
// console error or failed request anywhere. Also the page's own headers (CSP and friends).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMock, startRouter, baseConfig, waitFor, MASTER_KEY, slow } from './lib/harness.mjs';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
let puppeteer = null;
try {
  puppeteer = (await import('puppeteer-core')).default;
} catch {
  puppeteer = null;
}
const skip = !CHROMIUM || !puppeteer ? 'needs chromium and puppeteer-core (scripts/deps.sh test)' : false;

let mock;
let router;
let browser;
let page;
const problems = []; // console errors, page errors, failed requests

before(async () => {
  if (skip) return;
  mock = await startMock();
  const db = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dash-')), 'airouter.db');
  router = await startRouter(baseConfig({
    credentials: `
  - name: up
    type: openai
    api_key: sk-e2e-upstream
    base_url: ${mock.url}
    rpm: 600
  - name: local
    type: mock
`,
    models: `
  - name: gpt-4o
    credential: up
    model: mock-gpt-4o
  - name: mocky
    credential: local
`,
    server: '  router_metadata: true\n',
    extra: `storage:
  database_url: sqlite://${db}
`,
  }));
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    timeout: 30000 * slow,
  });
  page = await browser.newPage();
  page.setDefaultTimeout(10000 * slow);
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
});

after(async () => {
  if (browser) await browser.close();
});

const text = (sel) => page.$eval(sel, (e) => e.textContent);
const visible = (sel) => page.$eval(sel, (e) => !e.hidden && e.offsetParent !== null);

async function tab(name) {
  await page.click(`#tabs button[data-tab="${name}"]`);
  await page.waitForFunction((n) => !document.getElementById(n).hidden, {}, name);
}

test('the page and its files come with a strict Content-Security-Policy', { skip }, async () => {
  for (const [p, type] of [['/', 'text/html'], ['/dashboard.js', 'text/javascript'], ['/dashboard.css', 'text/css']]) {
    const r = await fetch(`${router.url}${p}`);
    assert.equal(r.status, 200, p);
    assert.match(r.headers.get('content-type'), new RegExp(`^${type}`), p);
    const csp = r.headers.get('content-security-policy');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  }
  const html = await (await fetch(`${router.url}/`)).text();
  assert.doesNotMatch(html, /<script>[^<]/, 'no inline script');
  assert.doesNotMatch(html, /https?:\/\//, 'nothing fetched from elsewhere');
});

test('sign in: a wrong key is refused, the master key is kept for the tab only', { skip }, async () => {
  await page.goto(`${router.url}/`, { waitUntil: 'networkidle0' });
  assert.ok(await visible('#login'));
  assert.ok(!(await visible('#tabs')));
  const before = problems.length;
  await page.type('#key', 'sk-not-the-key');
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
  assert.match(await text('#login-error'), /not the master key/);
  // the refused attempt is an expected 401, not a problem of the page
  problems.splice(before);
  await page.type('#key', MASTER_KEY);
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => !document.getElementById('tabs').hidden);
  assert.ok(!(await visible('#login')));
  const stored = await page.evaluate(() => ({
    session: sessionStorage.getItem('airouter.master_key'), local: localStorage.length, url: location.href,
  }));
  assert.equal(stored.session, MASTER_KEY);
  assert.equal(stored.local, 0);
  assert.ok(!stored.url.includes(MASTER_KEY));
});

test('overview: totals and live charts', { skip }, async () => {
  // some traffic for the figures
  for (let i = 0; i < 5; i++) {
    await fetch(`${router.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}` },
      body: JSON.stringify({ model: 'mocky', messages: [{ role: 'user', content: `hi ${i}` }] }),
    });
  }
  await tab('overview');
  // the next refresh shows them (the page may still hold figures from before they were sent)
  await page.waitForFunction(() => {
    const c = document.querySelector('#totals .card[data-name="requests"] .v');
    return c && Number(c.textContent.replace(/,/g, '')) >= 5;
  }, { timeout: 8000 * slow });
  const cards = await page.$$eval('#totals .card', (cs) => Object.fromEntries(cs.map((c) => [c.dataset.name, c.querySelector('.v').textContent])));
  assert.equal(cards['models available'], '2', JSON.stringify(cards));
  // the page refreshes by itself: the status line changes without a reload
  const first = await text('#status');
  await page.waitForFunction((f) => document.getElementById('status').textContent !== f, { timeout: 8000 * slow }, first);
});

test('models: every deployment with its state, and a reset', { skip }, async () => {
  await tab('models');
  await page.waitForFunction(() => document.querySelectorAll('#models-body tr').length >= 2);
  const rows = await page.$$eval('#models-body tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.ok(rows.some((r) => r[1] === 'up'), JSON.stringify(rows));
  assert.ok(rows.some((r) => r[1] === 'local'));
  assert.ok(rows.every((r) => r[3].length > 0), 'a breaker state on each');
  await page.click('#models-body tr button');
  await page.waitForFunction(() => /^reset /.test(document.getElementById('status').textContent));
});

test('API tester: a whole answer and a stream, with the routing metadata', { skip }, async () => {
  await tab('tester');
  await page.waitForFunction(() => document.querySelectorAll('#t-model option').length >= 2);
  await page.select('#t-model', 'gpt-4o');
  await page.$eval('#t-prompt', (e) => { e.value = 'hello from the browser'; });
  await page.click('#t-send');
  await page.waitForFunction(() => document.getElementById('t-answer').textContent.startsWith('echo:'));
  assert.equal(await text('#t-answer'), 'echo: hello from the browser');
  const meta = JSON.parse(await text('#t-meta'));
  assert.equal(meta['x-airouter-credential'], 'up');
  assert.equal(meta._router.credential, 'up');
  // streamed
  await page.click('#t-stream');
  await page.$eval('#t-prompt', (e) => { e.value = 'one two three'; });
  await page.click('#t-send');
  await page.waitForFunction(() => document.getElementById('t-answer').textContent === 'echo: one two three'
    && !document.getElementById('t-send').disabled);
  assert.equal((await mock.requests()).filter((r) => r.body && r.body.stream === true).length >= 1, true);
});

test('rate limits: each credential against its limits', { skip }, async () => {
  await tab('limits');
  await page.waitForFunction(() => document.querySelectorAll('#limits-creds tr').length >= 1);
  const rows = await page.$$eval('#limits-creds tr', (trs) => trs.map((tr) => tr.children[0].textContent + ' ' + tr.children[1].textContent));
  assert.ok(rows.some((r) => /^up .*\/ 600$/.test(r)), JSON.stringify(rows));
});

test('keys & spend: create a key, see it, revoke it', { skip }, async () => {
  await tab('keys');
  await page.type('#k-name', 'from-the-dashboard');
  await page.type('#k-daily', '100000');
  await page.type('#k-budget', '5');
  await page.click('#key-form button[type=submit]');
  await page.waitForFunction(() => /new key \(shown once\): sk-/.test(document.getElementById('k-created').textContent));
  const created = (await text('#k-created')).split(': ')[1];
  // it works at once
  const r = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${created}` },
    body: JSON.stringify({ model: 'mocky', messages: [{ role: 'user', content: 'with the new key' }] }),
  });
  assert.equal(r.status, 200);
  await page.waitForFunction(() => [...document.querySelectorAll('#keys-body tr')].some((tr) => tr.children[1].textContent === 'from-the-dashboard'));
  // its daily tokens and its budget as bars
  const bars = await page.evaluate(() => {
    const tr = [...document.querySelectorAll('#keys-body tr')].find((t) => t.children[1].textContent === 'from-the-dashboard');
    return [tr.children[3].querySelector('.bar') !== null, tr.children[4].querySelector('.bar') !== null, tr.children[4].textContent];
  });
  assert.deepEqual(bars.slice(0, 2), [true, true], bars[2]);
  assert.match(bars[2], /\/ \$5/);
  await page.evaluate(() => {
    const tr = [...document.querySelectorAll('#keys-body tr')].find((t) => t.children[1].textContent === 'from-the-dashboard');
    tr.querySelector('button').click();
  });
  await page.waitForFunction(() => /^revoked key /.test(document.getElementById('status').textContent));
  await waitFor(async () => (await fetch(`${router.url}/v1/models`, { headers: { authorization: `Bearer ${created}` } })).status === 401,
    { what: 'the revoked key refused' });
});

test('sign out forgets the key; no console errors or failed requests anywhere', { skip }, async () => {
  await page.click('#logout');
  await page.waitForFunction(() => !document.getElementById('login').hidden);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('airouter.master_key')), null);
  assert.deepEqual(problems, []);
});
