// The admin API (SPEC sections 3 and 8; master key only): /admin/metrics, /admin/rate-limits,
// /admin/timeseries, and the store's keys, plans and spend (/admin/keys, /admin/plans,
// /admin/spend, /admin/spend.csv). Every endpoint answers the master key, refuses a missing
// key (401) and a virtual key (403); the time series shows the requests just made; a key
// created through the API works at once and a revoked one gets 401 at once (the key cache
// TTL is long here, so no poll helps); spend totals match the requests made.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRouter, waitFor, MASTER_KEY } from './lib/harness.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airouter-admin-'));
const db = path.join(dir, 'admin.db');

const config = `server:
  host: 127.0.0.1
  port: \${PORT}
  workers: 2
  master_key: "\${MASTER_KEY}"
storage:
  database_url: sqlite://${db}
  key_cache_ttl: 60s
  spend_fsync_interval: 50ms
rate_limiting:
  enabled: true
  global: { requests_per_minute: 1000, burst_size: 1000 }
  per_model: { requests_per_minute: 500, burst_size: 500 }
credentials:
  - name: local
    type: mock
    rpm: 100
  - name: dead
    type: openai
    api_key: sk-upstream-test-key
    base_url: http://127.0.0.1:9/v1
models:
  - name: broken
    credential: dead
  - name: m
    credential: local
  - name: other
    credential: local
`;

const master = { authorization: `Bearer ${MASTER_KEY}` };
let router;

async function api(method, p, { key = MASTER_KEY, body } = {}) {
  const headers = key ? { authorization: `Bearer ${key}` } : {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${router.url}${p}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* CSV, or an empty body */ }
  return { status: r.status, headers: r.headers, text, json };
}

function chat(key, model = 'm') {
  return fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello admin' }] }),
  });
}

test.before(async () => {
  router = await startRouter(config);
});

const endpoints = [
  ['GET', '/admin/metrics'], ['GET', '/admin/rate-limits'], ['GET', '/admin/timeseries'],
  ['GET', '/admin/keys'], ['POST', '/admin/keys', { name: 'x' }],
  ['POST', '/admin/keys/1/revoke'], ['POST', '/admin/keys/1/limits', { rpm: 1 }],
  ['GET', '/admin/plans'], ['POST', '/admin/plans', { name: 'p', max_tokens: 1 }],
  ['GET', '/admin/spend'], ['GET', '/admin/spend.csv'],
];

test('every admin endpoint: 401 without a key, 403 with a virtual key', async () => {
  const made = await api('POST', '/admin/keys', { body: { name: 'reader' } });
  assert.equal(made.status, 201, made.text);
  for (const [method, p, body] of endpoints) {
    let r = await api(method, p, { key: null, body });
    assert.equal(r.status, 401, `${method} ${p} without a key: ${r.text}`);
    assert.equal(r.json.error.type, 'authentication_error');
    r = await api(method, p, { key: made.json.key, body });
    assert.equal(r.status, 403, `${method} ${p} with a virtual key: ${r.text}`);
    assert.equal(r.json.error.type, 'permission_error');
  }
  // the key that was refused is still there, unrevoked
  const list = await api('GET', '/admin/keys');
  assert.equal(list.json.keys.find((k) => k.id === made.json.id).revoked, false);
});

test('keys: created through the API works at once, limits change, revoked gets 401 at once', async () => {
  let r = await api('POST', '/admin/plans', { body: { name: 'gold', max_tokens: 100000, description: 'd' } });
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(Object.keys(r.json).sort(), ['created_at', 'description', 'id', 'max_tokens', 'name']);
  assert.equal(r.json.name, 'gold');
  r = await api('POST', '/admin/plans', { body: { name: 'gold', max_tokens: 1 } });
  assert.equal(r.status, 400, 'a taken plan name');
  r = await api('POST', '/admin/plans', { body: { name: 'bad' } });
  assert.equal(r.status, 400);
  r = await api('GET', '/admin/plans');
  assert.equal(r.status, 200);
  assert.ok(r.json.plans.some((p) => p.name === 'gold' && p.max_tokens === 100000));

  r = await api('POST', '/admin/keys', {
    body: { name: 'app', rpm: 50, daily_tokens: 100000, plan: 'gold', models: ['m'], expires: '30d' },
  });
  assert.equal(r.status, 201, r.text);
  const k = r.json;
  assert.match(k.key, /^sk-[A-Za-z0-9]{40,}$/);
  assert.equal(k.name, 'app');
  assert.equal(k.rpm, 50);
  assert.equal(k.tpm, null);
  assert.equal(k.plan, 'gold');
  assert.deepEqual(k.models, ['m']);
  assert.equal(k.revoked, false);
  assert.ok(k.expires_at && k.created_at);
  assert.ok(k.masked.startsWith(k.key.slice(0, 6)) && !k.masked.includes(k.key.slice(10, 30)));
  assert.deepEqual(Object.keys(k.usage), ['day', 'month']);

  // bad settings, an unknown plan
  r = await api('POST', '/admin/keys', { body: { rpm: 1 } });
  assert.equal(r.status, 400, 'name is required');
  r = await api('POST', '/admin/keys', { body: { name: 'x', rpm: -1 } });
  assert.equal(r.status, 400);
  r = await api('POST', '/admin/keys', { body: { name: 'x', plan: 'nope' } });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /No plan named 'nope'/);

  // works at once
  let c = await chat(k.key);
  assert.equal(c.status, 200, await c.text());
  c = await chat(k.key, 'other');
  assert.equal(c.status, 403, 'a model the key does not list');
  await c.text();

  // the listing shows it, never the key itself
  r = await api('GET', '/admin/keys');
  assert.equal(r.status, 200);
  assert.ok(!r.text.includes(k.key));
  const listed = r.json.keys.find((x) => x.id === k.id);
  assert.equal(listed.name, 'app');

  // limits: rpm 1 reaches the running cache at once (the cache TTL is 60 s)
  r = await api('POST', `/admin/keys/${k.id}/limits`, { body: { rpm: 1, tpm: null, plan: null } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.rpm, 1);
  assert.equal(r.json.plan, null);
  assert.equal(r.json.daily_tokens, 100000, 'untouched');
  c = await chat(k.key);
  await c.text();
  c = await chat(k.key);
  assert.equal(c.status, 429, 'rpm 1 in force');
  await c.text();
  r = await api('GET', '/admin/rate-limits');
  const kl = r.json.keys.find((x) => x.id === k.id);
  assert.deepEqual(kl.rpm.limit, 1);
  assert.ok(kl.rpm.current >= 1);
  r = await api('POST', `/admin/keys/${k.id}/limits`, { body: { rpm: 'x' } });
  assert.equal(r.status, 400);
  r = await api('POST', '/admin/keys/999999/limits', { body: { rpm: 1 } });
  assert.equal(r.status, 404);

  // revoked: 401 at once
  r = await api('POST', `/admin/keys/${k.id}/revoke`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.revoked, true);
  c = await chat(k.key);
  assert.equal(c.status, 401);
  await c.text();
  r = await api('POST', '/admin/keys/999999/revoke');
  assert.equal(r.status, 404);
  r = await api('POST', '/admin/keys/abc/revoke');
  assert.equal(r.status, 400);
});

test('metrics, rate limits and the time series show the requests just made', async () => {
  const before = (await api('GET', '/admin/metrics')).json;
  const made = await api('POST', '/admin/keys', { body: { name: 'traffic' } });
  const start = Math.floor(Date.now() / 1000);
  for (let i = 0; i < 5; i++) {
    const c = await chat(made.json.key);
    assert.equal(c.status, 200);
    await c.text();
  }
  const bad = await chat(made.json.key, 'broken'); /* its upstream refuses connections */
  assert.ok(bad.status >= 500, String(bad.status));
  await bad.text();

  const m = await api('GET', '/admin/metrics');
  assert.equal(m.status, 200);
  assert.deepEqual(Object.keys(m.json), ['uptime', 'totalRequests', 'successfulRequests',
    'failedRequests', 'fallbacksUsed', 'avgLatency', 'modelsAvailable', 'models']);
  assert.equal(m.json.totalRequests - before.totalRequests, 6);
  assert.equal(m.json.successfulRequests - before.successfulRequests, 5);
  assert.equal(m.json.failedRequests - before.failedRequests, 1);
  assert.ok(m.json.modelsAvailable >= 2);
  const mm = m.json.models.find((x) => x.name === 'm');
  assert.deepEqual(Object.keys(mm), ['name', 'requests', 'successful', 'failed', 'avgLatency', 'available']);
  assert.ok(mm.requests >= 5 && mm.available === true && mm.avgLatency >= 0);

  const rl = await api('GET', '/admin/rate-limits');
  assert.equal(rl.status, 200);
  assert.equal(rl.json.client.enabled, true);
  assert.equal(rl.json.client.global.enabled, true);
  assert.ok(rl.json.client.global.remaining < 1000);
  assert.equal(rl.json.client.per_model.enabled, true);
  const pm = rl.json.client.per_model.models.find((x) => x.name === 'm');
  assert.ok(pm.remaining < 500, JSON.stringify(pm));
  assert.equal(rl.json.client.per_client.enabled, false);
  const cred = rl.json.credentials.find((x) => x.name === 'local');
  assert.equal(cred.rpm.limit, 100);
  assert.ok(cred.rpm.current >= 5);
  assert.ok(rl.json.deployments.some((d) => d.credential === 'local' && d.model === 'm'));
  assert.ok(rl.json.keys.some((k) => k.id === made.json.id && k.rpm.current === 6 && k.rpm.limit === -1));

  let ts = await api('GET', '/admin/timeseries');
  assert.equal(ts.status, 200);
  assert.equal(ts.json.interval_s, 1);
  assert.equal(ts.json.points.length, 300);
  ts = await api('GET', '/admin/timeseries?seconds=60');
  const pts = ts.json.points;
  assert.equal(pts.length, 60);
  for (let i = 1; i < pts.length; i++) assert.equal(pts[i].t, pts[i - 1].t + 1);
  assert.deepEqual(Object.keys(pts[0]), ['t', 'requests', 'errors', 'p50_ms', 'p99_ms',
    'prompt_tokens', 'completion_tokens']);
  const recent = pts.filter((p) => p.t >= start);
  const sum = (k) => recent.reduce((a, p) => a + p[k], 0);
  assert.ok(sum('requests') >= 6, JSON.stringify(recent));
  assert.ok(sum('errors') >= 1);
  assert.ok(sum('prompt_tokens') > 0 && sum('completion_tokens') > 0);
  const busy = recent.find((p) => p.requests > 0);
  assert.ok(busy.p50_ms >= 0 && busy.p99_ms >= busy.p50_ms);
  assert.ok(pts.some((p) => p.requests === 0 && p.p50_ms === null));
  for (const q of ['0', '3601', 'x']) {
    const r = await api('GET', `/admin/timeseries?seconds=${q}`);
    assert.equal(r.status, 400, q);
  }
  assert.equal((await api('GET', '/admin/timeseries?seconds=3600')).json.points.length, 3600);
});

test('spend: totals and groups match the requests made; CSV rows', async () => {
  const made = await api('POST', '/admin/keys', { body: { name: 'spender' } });
  const key = made.json;
  const usage = { prompt: 0, completion: 0 };
  for (const model of ['m', 'm', 'other']) {
    const c = await chat(key.key, model);
    const body = await c.json();
    assert.equal(c.status, 200);
    usage.prompt += body.usage.prompt_tokens;
    usage.completion += body.usage.completion_tokens;
  }
  // the ledger is applied in batches: wait until all three records are in
  let s;
  await waitFor(async () => {
    s = await api('GET', `/admin/spend?key=${key.id}&group_by=model`);
    return s.status === 200 && s.json.totals.requests === 3;
  }, { what: 'three spend records' });
  assert.equal(s.json.group_by, 'model');
  assert.equal(s.json.filters.key, key.id);
  assert.equal(s.json.totals.prompt_tokens, usage.prompt);
  assert.equal(s.json.totals.completion_tokens, usage.completion);
  assert.equal(s.json.totals.total_tokens, usage.prompt + usage.completion);
  assert.equal(s.json.totals.errors, 0);
  assert.deepEqual(s.json.groups.map((g) => [g.group, g.requests]), [['m', 2], ['other', 1]]);

  s = await api('GET', `/admin/spend?key=${key.id}&model=other`);
  assert.equal(s.json.totals.requests, 1);
  assert.deepEqual(s.json.groups, []);
  assert.equal(s.json.group_by, null);
  s = await api('GET', `/admin/spend?key=${key.id}&group_by=day`);
  assert.equal(s.json.groups.length, 1);
  assert.equal(s.json.groups[0].group, new Date().toISOString().slice(0, 10));
  s = await api('GET', `/admin/spend?key=${key.id}&credential=local&group_by=credential`);
  assert.deepEqual(s.json.groups.map((g) => g.group), ['local']);
  s = await api('GET', '/admin/spend?group_by=key');
  assert.ok(s.json.groups.some((g) => g.group === String(key.id) && g.requests === 3));
  s = await api('GET', `/admin/spend?key=${key.id}&from=2000-01-01&to=2000-01-02`);
  assert.equal(s.json.totals.requests, 0);
  s = await api('GET', `/admin/spend?key=${key.id}&from=${Math.floor(Date.now() / 1000) - 600}`);
  assert.equal(s.json.totals.requests, 3);
  for (const q of ['group_by=week', 'from=yesterday', 'key=-1']) {
    const r = await api('GET', `/admin/spend?${q}`);
    assert.equal(r.status, 400, q);
  }
  // the key listing carries the same usage
  const list = await api('GET', '/admin/keys');
  const listed = list.json.keys.find((x) => x.id === key.id);
  assert.equal(listed.usage.day.requests, 3);
  assert.equal(listed.usage.month.total_tokens, usage.prompt + usage.completion);

  const csv = await api('GET', `/admin/spend.csv?key=${key.id}`);
  assert.equal(csv.status, 200);
  assert.match(csv.headers.get('content-type'), /^text\/csv/);
  const lines = csv.text.trim().split('\n');
  assert.equal(lines[0], 'time,request_id,key_id,model,upstream_model,credential,prompt_tokens,'
    + 'completion_tokens,cached_tokens,reasoning_tokens,cost_usd,status,latency_ms,ttfb_ms,stream');
  assert.equal(lines.length, 4);
  const row = lines[1].split(',');
  assert.equal(row[2], String(key.id));
  assert.equal(row[3], 'm');
  assert.equal(row[5], 'local');
  assert.equal(row[11], '200');
  const tokens = lines.slice(1).reduce((a, l) => a + Number(l.split(',')[6]), 0);
  assert.equal(tokens, usage.prompt);
});

test('/openapi.json describes the admin endpoints', async () => {
  const r = await fetch(`${router.url}/openapi.json`);
  const doc = await r.json();
  for (const p of ['/admin/metrics', '/admin/rate-limits', '/admin/timeseries', '/admin/keys',
    '/admin/keys/{id}/revoke', '/admin/keys/{id}/limits', '/admin/plans', '/admin/spend',
    '/admin/spend.csv']) {
    assert.ok(doc.paths[p], `${p} in /openapi.json`);
  }
  assert.ok(doc.paths['/admin/keys'].get && doc.paths['/admin/keys'].post);
});
