// Virtual keys on a running server (SPEC section 6): keys made with the CLI authenticate
// requests (a key the server has not seen waits for the store, not the loop); revocation
// and new limits reach it within storage.key_cache_ttl; /admin needs the master key; a
// key's models (403), RPM (429 "key"), token and budget quotas (429 "quota", exact under
// 60 concurrent requests); /usage /limits /tariff /rate-limit; and the spend ledger:
// every finished request has a record, after a SIGTERM and after a kill -9 alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startRouter, startMock, runCli, waitFor, MASTER_KEY, slow } from './lib/harness.mjs';

function storeDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'airouter-tenancy-'));
}

function config({ db, upstream, ttl = '200ms', models = '', extraModel = '' }) {
  const cred = upstream
    ? `  - name: up\n    type: openai\n    api_key: sk-upstream-test-key\n    base_url: ${upstream.url}/v1\n`
    : '  - name: local\n    type: mock\n';
  return `server:
  host: 127.0.0.1
  port: \${PORT}
  workers: 2
  master_key: "\${MASTER_KEY}"
storage:
  database_url: sqlite://${db}
  key_cache_ttl: ${ttl}
  spend_fsync_interval: 50ms
credentials:
${cred}models:
  - name: m
    credential: ${upstream ? 'up' : 'local'}
${extraModel}  - name: other
    credential: ${upstream ? 'up' : 'local'}
${models}`;
}

const cli = (cfgFile, ...args) => runCli([...args, '-config', cfgFile]);

async function makeKey(cfgFile, ...flags) {
  const r = await cli(cfgFile, 'key', 'create', '--name', 't', '--json', ...flags);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out);
}

function chat(router, key, body = {}, headers = {}) {
  return fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...body }),
  });
}

const get = (router, p, key) =>
  fetch(`${router.url}${p}`, { headers: { authorization: `Bearer ${key}` } });

function sql(db, query) {
  return execFileSync('sqlite3', [db, query], { encoding: 'utf8' }).trim();
}

// A config file the CLI and the server share (the server's own file is written by startRouter).
function cliConfig(db) {
  const f = path.join(path.dirname(db), 'cli.yaml');
  fs.writeFileSync(f, `server:\n  master_key: x\nstorage:\n  database_url: sqlite://${db}\n`);
  return f;
}

test('virtual keys: accepted, unknown refused, /admin is master-only, revocation reaches the server', async () => {
  const dir = storeDir();
  const db = path.join(dir, 't.db');
  const cfg = cliConfig(db);
  const k = await makeKey(cfg);
  const router = await startRouter(config({ db }));
  let r = await chat(router, k.key);
  const text = await r.text();
  assert.equal(r.status, 200, text);
  const body = JSON.parse(text);
  assert.match(body.choices[0].message.content, /echo: hi/);
  // well formed but unknown: 401, twice (the second from the negative cache)
  for (let i = 0; i < 2; i++) {
    r = await chat(router, 'sk-' + 'Z'.repeat(48));
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error.type, 'authentication_error');
  }
  r = await get(router, '/admin/state', k.key);
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.type, 'permission_error');
  r = await get(router, '/admin/state', MASTER_KEY);
  assert.equal(r.status, 200);
  // a key created while the server runs works at once (it was never remembered as unknown)
  const k2 = await makeKey(cfg);
  assert.equal((await chat(router, k2.key)).status, 200);
  // revoked with the CLI: refused within key_cache_ttl (200ms) and a poll
  const rev = await cli(cfg, 'key', 'revoke', '--key', String(k.id));
  assert.equal(rev.code, 0, rev.err);
  const t0 = Date.now();
  await waitFor(async () => (await chat(router, k.key)).status === 401, { what: 'revocation' });
  assert.ok(Date.now() - t0 < 3000 * slow, `revocation took ${Date.now() - t0} ms`);
  assert.equal((await chat(router, k2.key)).status, 200);
  // a new limit reaches it too
  assert.equal((await cli(cfg, 'key', 'set-limit', '--key', String(k2.id), '--rpm', '1')).code, 0);
  await waitFor(async () => (await chat(router, k2.key)).status === 429, { what: 'new rpm' });
  await router.stop();
});

test('a key\'s models (403) and RPM (429 limit_type key)', async () => {
  const dir = storeDir();
  const db = path.join(dir, 't.db');
  const cfg = cliConfig(db);
  const k = await makeKey(cfg, '--models', 'm', '--rpm', '2');
  const router = await startRouter(config({ db }));
  let r = await chat(router, k.key, { model: 'other' });
  assert.equal(r.status, 403);
  const err = (await r.json()).error;
  assert.equal(err.type, 'permission_error');
  assert.match(err.message, /may not use the model 'other'/);
  assert.equal((await chat(router, k.key)).status, 200);
  assert.equal((await chat(router, k.key)).status, 200);
  r = await chat(router, k.key);
  assert.equal(r.status, 429);
  const e = (await r.json()).error;
  assert.equal(e.limit_type, 'key');
  assert.ok(Number(r.headers.get('retry-after')) >= 1);
  const rl = await (await get(router, '/rate-limit', k.key)).json();
  assert.equal(rl.limit, 2);
  assert.equal(rl.current_count, 2);
  assert.equal(rl.remaining, 0);
  assert.equal(rl.window_seconds, 60);
  assert.match(rl.api_key, /^sk-\w{3}\.\.\.\w{3}$/);
  await router.stop();
});

// 60 requests at once against a quota that fits 10 of them: each reserves its worst case
// (prompt estimate + max_tokens) before it is sent; the upstream holds every answer 600ms,
// so every admission is decided before any request settles.
const maxTokens = 5;
const quotaReq = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: maxTokens };
const quotaEst = Math.floor(JSON.stringify(quotaReq).length / 4) + 1; // what airouter estimates
const inPrice = 0.001, outPrice = 0.002;

// A key made with keyFlags(worst case of one request), 60 concurrent requests with it.
async function sixtyAtOnce(keyFlags, priced = '') {
  const mock = await startMock();
  const db = path.join(storeDir(), 't.db');
  const k = await makeKey(cliConfig(db), ...keyFlags);
  await mock.queue(Array.from({ length: 60 }, () => ({ latency: '600ms', content: 'a b c d e' })));
  const text = config({ db, upstream: mock }).replace('    credential: up\n', `    credential: up\n${priced}`);
  const router = await startRouter(text);
  const rs = await Promise.all(Array.from({ length: 60 }, () => chat(router, k.key, quotaReq)));
  const served = rs.filter((r) => r.status === 200).length;
  for (const r of rs) {
    if (r.status === 429) assert.equal((await r.json()).error.limit_type, 'quota');
    else assert.equal(r.status, 200, await r.text());
  }
  return { mock, db, k, router, served };
}

test('token quota: 60 concurrent requests, a limit that fits 10: exactly 10 served, the rest 429 quota', async () => {
  const worst = quotaEst + maxTokens;
  const { mock, db, k, router, served } = await sixtyAtOnce(['--limit', String(10 * worst)]);
  assert.equal(served, 10);
  const u = await (await get(router, '/usage', k.key)).json();
  assert.equal(u.total.requests, 10);
  assert.equal(u.total.limit_tokens, 10 * worst);
  assert.ok(u.total.total_tokens <= 10 * worst, JSON.stringify(u));
  assert.equal(u.key.id, k.id);
  await router.stop();
  // the ledger has the 10 served requests, and nothing for the refused ones
  assert.equal(sql(db, `SELECT COUNT(*) FROM spend WHERE key_id = ${k.id} AND status = 200`), '10');
  await mock.stop();
});

test('budget: priced model, 60 concurrent requests against a budget that fits 10: at most 11 served', async () => {
  const worst = quotaEst * inPrice + maxTokens * outPrice;
  const priced = `    input_cost_per_token: ${inPrice}\n    output_cost_per_token: ${outPrice}\n`;
  const { mock, k, router, served } = await sixtyAtOnce(['--budget', String(10.5 * worst)], priced);
  assert.ok(served >= 10 && served <= 11, `served ${served}`);
  let u = await (await get(router, '/usage', k.key)).json();
  assert.equal(u.total.requests, served);
  assert.ok(u.total.cost_usd > 0);
  // the answers cost less than their reservations: one at a time, the key spends the rest
  // of its budget, then is refused; it never spends more than one request's worst case over
  let last;
  for (let i = 0; i < 200; i++) {
    await mock.queue([{ content: 'a b c d e' }]);
    last = await chat(router, k.key, quotaReq);
    await last.text();
    if (last.status !== 200) break;
  }
  assert.equal(last.status, 429);
  u = await (await get(router, '/usage', k.key)).json();
  assert.ok(u.total.cost_usd <= 10.5 * worst + worst, JSON.stringify(u.total));
  assert.ok(u.total.cost_usd > 10.5 * worst - worst, JSON.stringify(u.total));
  await router.stop();
  await mock.stop();
});

test('/usage, /limits, /tariff for a key on a plan', async () => {
  const dir = storeDir();
  const db = path.join(dir, 't.db');
  const cfg = cliConfig(db);
  assert.equal((await cli(cfg, 'plan', 'create', '--name', 'basic', '--max-tokens', '1000',
    '--description', 'small')).code, 0);
  const k = await makeKey(cfg, '--plan', 'basic', '--daily', '500', '--budget', '2');
  const router = await startRouter(config({ db }));
  for (let i = 0; i < 3; i++) assert.equal((await chat(router, k.key)).status, 200);
  const u = await (await get(router, '/usage', k.key)).json();
  assert.deepEqual(Object.keys(u).sort(), ['day', 'key', 'month', 'total']);
  assert.deepEqual(Object.keys(u.day).sort(),
    ['completion_tokens', 'cost_usd', 'limit_tokens', 'prompt_tokens', 'requests', 'total_tokens']);
  assert.equal(u.day.requests, 3);
  assert.equal(u.day.total_tokens, u.day.prompt_tokens + u.day.completion_tokens);
  assert.equal(u.day.limit_tokens, 500);
  assert.equal(u.total.limit_tokens, 1000); // the plan's max_tokens
  assert.equal(u.key.masked, k.masked ?? u.key.masked);
  assert.doesNotMatch(JSON.stringify(u), new RegExp(k.key));
  const used = u.total.total_tokens;
  const l = await (await get(router, '/limits', k.key)).json();
  assert.equal(l.limits.daily_tokens, 500);
  assert.equal(l.limits.max_budget_usd, 2);
  assert.equal(l.remaining.day_tokens, 500 - used);
  assert.equal(l.remaining.total_tokens, 1000 - used);
  assert.match(l.resets.day, /^\d{4}-\d\d-\d\dT00:00:00Z$/);
  const t = await (await get(router, '/tariff', k.key)).json();
  assert.equal(t.tariff.name, 'basic');
  assert.equal(t.tariff.description, 'small');
  assert.equal(t.tariff.max_tokens, 1000);
  assert.match(t.tariff.api_key, /^sk-\w{3}\.\.\.\w{3}$/);
  assert.equal(t.usage.used_tokens, used);
  assert.equal(t.usage.remaining_tokens, 1000 - used);
  assert.ok(Math.abs(t.usage.usage_percentage - used / 10) < 1e-9);
  // the master key has its own usage, and no plan
  const mu = await (await get(router, '/usage', MASTER_KEY)).json();
  assert.equal(mu.key.id, 0);
  assert.equal((await get(router, '/usage', 'sk-' + 'Y'.repeat(48))).status, 401);
  await router.stop();
  // the usage survives a restart: it is read back from the ledger
  const again = await startRouter(config({ db }));
  const u2 = await (await get(again, '/usage', k.key)).json();
  assert.equal(u2.total.total_tokens, used);
  assert.equal(u2.total.requests, 3);
  await again.stop();
});

test('ledger: SIGTERM drains the journal into the database before exit 0', async () => {
  const dir = storeDir();
  const db = path.join(dir, 't.db');
  const router = await startRouter(config({ db }));
  const ids = [];
  await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    const id = `drain-${i}`;
    ids.push(id);
    const r = await chat(router, MASTER_KEY, { stream: i % 2 === 0 }, { 'x-request-id': id });
    assert.equal(r.status, 200);
    await r.text();
  }));
  const h = await (await fetch(`${router.url}/health`)).json();
  assert.equal(h.storage.type, 'sqlite');
  assert.equal(h.storage.ledger.written, 20);
  assert.equal(h.storage.ledger.write_errors, 0);
  const m = await (await fetch(`${router.url}/metrics`)).text();
  assert.match(m, /^airouter_ledger_records_total\{state="written"\} 20$/m);
  await router.stop(); // expects exit 0
  const rows = sql(db, "SELECT request_id FROM spend ORDER BY request_id").split('\n');
  assert.deepEqual(rows.sort(), ids.sort());
  const left = fs.existsSync(db + '.spend') ? fs.readdirSync(db + '.spend') : [];
  assert.deepEqual(left.filter((f) => f.endsWith('.log')), [], 'no journal left to replay');
});

test('ledger: kill -9 with 40 requests in flight loses no record of an answer that ended', async () => {
  const mock = await startMock();
  const dir = storeDir();
  const db = path.join(dir, 't.db');
  // answers end 25ms apart over a second: some before the kill, some after
  await mock.queue(Array.from({ length: 40 }, (_, i) => ({ latency: `${25 * i}ms` })));
  const router = await startRouter(config({ db, upstream: mock }));
  const ended = [];
  const started = Array.from({ length: 40 }, async (_, i) => {
    const id = `kill-${i}`;
    try {
      const r = await chat(router, MASTER_KEY, { stream: i % 2 === 1 }, { 'x-request-id': id });
      const text = await r.text();
      if (r.status === 200 && (i % 2 === 0 ? text.includes('echo: hi') : text.includes('[DONE]')))
        ended.push(id);
    } catch { /* cut by the kill */ }
  });
  await waitFor(() => ended.length >= 10, { what: '10 answers' });
  router.signal('SIGKILL');
  await Promise.all(started);
  await router.exited;
  assert.ok(ended.length >= 10 && ended.length < 40, `${ended.length} ended before the kill`);
  // the restart replays the journal before it serves
  const again = await startRouter(config({ db, upstream: mock }));
  const rows = new Set(sql(db, 'SELECT request_id FROM spend').split('\n'));
  for (const id of ended) assert.ok(rows.has(id), `record of ${id} lost`);
  const total = sql(db, "SELECT COUNT(*) FROM spend WHERE request_id LIKE 'kill-%'");
  assert.equal(Number(total), new Set(sql(db, "SELECT id FROM spend WHERE request_id LIKE 'kill-%'").split('\n')).size);
  await again.stop();
  await mock.stop();
});

test('a stream the client cuts before its usage arrives still bills its prompt estimate', async () => {
  const mock = await startMock();
  const db = path.join(storeDir(), 't.db');
  const router = await startRouter(config({ db, upstream: mock }));
  await mock.queue([{ chunks: 20, chunk_delay: '100ms' }]);
  const body = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  const ac = new AbortController();
  const r = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST', signal: ac.signal, body,
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json', 'x-request-id': 'cut-1' },
  });
  assert.equal(r.status, 200);
  await r.body.getReader().read(); // the first bytes of the stream, then the client leaves
  ac.abort();
  let u;
  await waitFor(async () => {
    u = (await (await get(router, '/usage', MASTER_KEY)).json()).total;
    return u.requests === 1;
  }, { what: 'the cut request settled' });
  assert.equal(u.prompt_tokens, Math.floor(body.length / 4) + 1);
  assert.equal(u.completion_tokens, 0);
  await router.stop();
  assert.equal(sql(db, "SELECT status || ' ' || prompt_tokens FROM spend WHERE request_id = 'cut-1'"),
    `499 ${Math.floor(body.length / 4) + 1}`);
  await mock.stop();
});
