// Observability: /health shows a fail2ban ban and RPM counts after real traffic, /vhealth
// is an HTML page with the credential names, /admin/state needs the master key and reset
// lifts the ban, /openapi.json is JSON listing every path, and /metrics passes
// `promtool check metrics` and counts the requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import OpenAI from 'openai';
import { startMock, startRouter, baseConfig, MASTER_KEY } from './lib/harness.mjs';

let mock;
let router;
let quiet; // a second instance with metrics disabled
const N = 6;

before(async () => {
  mock = await startMock();
  // started first: its signal handlers are in place long before the last test stops it
  quiet = await startRouter(baseConfig({
    credentials: '  - name: m\n    type: mock\n',
    extra: 'monitoring:\n  prometheus_enabled: false\n',
  }));
  router = await startRouter(baseConfig({
    credentials: `
  - name: cred_ok
    type: openai
    api_key: sk-cred-ok-000000000000
    base_url: ${mock.url}
    rpm: 100
  - name: cred_bad
    type: openai
    api_key: sk-cred-bad-00000000000
    base_url: ${mock.url}
    headers:
      x-mock-status: "500"`,
    models: '  - name: gpt-4o\n    credential: cred_ok\n  - name: gpt-4o\n    credential: cred_bad\n',
    extra: 'fail2ban:\n  max_attempts: 2\n  ban_duration: 10m\nrouting:\n  strategy: round_robin\n',
  }));
  const client = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${router.url}/v1`, maxRetries: 0 });
  for (let i = 0; i < N; i++) {
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `q${i}` }] });
    assert.equal(r._router.credential, 'cred_ok');
  }
});

after(async () => {
  await router?.stop();
  await quiet?.stop();
});

const auth = { authorization: `Bearer ${MASTER_KEY}` };

async function health() {
  const r = await fetch(`${router.url}/health`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  return r.json();
}

test('/health: the failing credential is banned, counts and limits are shown', async () => {
  const h = await health();
  assert.equal(h.status, 'degraded');
  assert.equal(typeof h.uptime_s, 'number');
  const ok = h.credentials.find((c) => c.name === 'cred_ok');
  const bad = h.credentials.find((c) => c.name === 'cred_bad');
  assert.deepEqual(ok.rpm, { current: N, limit: 100 });
  assert.equal(ok.type, 'openai');
  assert.equal(ok.banned, false);
  assert.equal(ok.ban_until, null);
  assert.equal(ok.requests, N);
  assert.equal(ok.errors, 0);
  assert.equal(ok.in_flight, 0);
  assert.equal(bad.banned, true);
  assert.match(bad.ban_until, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const until = Date.parse(bad.ban_until);
  assert.ok(until > Date.now() + 8 * 60000 && until <= Date.now() + 10 * 60000 + 2000, bad.ban_until);
  assert.equal(bad.requests, 2);
  assert.equal(bad.errors, 2);
  assert.deepEqual(bad.rpm, { current: 2, limit: -1 });

  assert.equal(h.models.length, 2);
  const mok = h.models.find((m) => m.credential === 'cred_ok');
  assert.equal(mok.name, 'gpt-4o');
  assert.equal(mok.state, 'CLOSED');
  assert.equal(mok.success_rate, 1);
  assert.equal(typeof mok.latency_ms_p50, 'number');
  assert.equal(mok.rpm.current, N);
  const mbad = h.models.find((m) => m.credential === 'cred_bad');
  assert.equal(mbad.success_rate, 0);
  assert.equal(mbad.latency_ms_p50, null);
  assert.deepEqual(h.proxies, []);
  // the default store (sqlite://./airouter.db in the server's directory) and its ledger
  assert.equal(h.storage.type, 'sqlite');
  assert.deepEqual(Object.keys(h.storage.ledger).sort(),
    ['applied', 'apply_errors', 'pending', 'replayed', 'write_errors', 'written']);
  assert.equal(h.storage.ledger.write_errors, 0);
  assert.deepEqual(h.redis, { configured: false });
});

test('/vhealth: a self-contained HTML page naming the credentials', async () => {
  const r = await fetch(`${router.url}/vhealth`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  const html = await r.text();
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<meta http-equiv="refresh" content="10">/);
  assert.ok(html.includes('cred_ok') && html.includes('cred_bad'));
  assert.match(html, /banned until \d{4}-/);
  assert.ok(!/<script|src=|https?:\/\//.test(html), 'no scripts or external assets');
});

test('/metrics: passes promtool and counts the requests', async () => {
  const r = await fetch(`${router.url}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const text = await r.text();
  const p = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(p.error, undefined, `promtool: ${p.error}`);
  assert.equal(p.status, 0, `promtool check metrics failed:\n${p.stdout}${p.stderr}`);
  assert.equal((p.stdout + p.stderr).trim(), '', `promtool reported:\n${p.stdout}${p.stderr}`);
  const lines = text.split('\n');
  assert.ok(lines.includes(`airouter_requests_total{model="gpt-4o",credential="cred_ok",status="200"} ${N}`),
    text.split('\n').filter((l) => l.startsWith('airouter_requests_total')).join('\n'));
  assert.ok(!lines.some((l) => l.startsWith('airouter_requests_total{model="gpt-4o",credential="cred_bad"')));
  assert.ok(lines.includes('airouter_upstream_errors_total{credential="cred_bad",kind="http_5xx"} 2'));
  assert.ok(lines.includes('airouter_credential_banned{credential="cred_bad"} 1'));
  assert.ok(lines.includes('airouter_credential_banned{credential="cred_ok"} 0'));
  assert.ok(lines.includes(`airouter_credential_rpm_current{credential="cred_ok"} ${N}`));
  assert.ok(lines.includes('airouter_breaker_state{model="gpt-4o",credential="cred_ok"} 0'));
  assert.ok(lines.includes(`airouter_request_duration_seconds_count{model="gpt-4o",credential="cred_ok"} ${N}`));
  assert.ok(lines.includes(`airouter_request_duration_seconds_bucket{model="gpt-4o",credential="cred_ok",le="+Inf"} ${N}`));
  assert.ok(lines.includes('airouter_in_flight 0'));
  for (const fam of ['airouter_time_to_first_byte_seconds', 'airouter_tokens_total', 'airouter_cost_usd_total',
    'airouter_credential_tpm_current']) {
    assert.equal(lines.filter((l) => l.startsWith(`# TYPE ${fam} `)).length, 1, fam);
  }
});

test('/openapi.json: JSON listing every path', async () => {
  const r = await fetch(`${router.url}/openapi.json`);
  assert.equal(r.status, 200);
  const doc = await r.json();
  assert.match(doc.openapi, /^3\./);
  for (const p of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/models', '/v1/models/{id}',
    '/health', '/vhealth', '/metrics', '/admin/state', '/admin/state/{model}/reset', '/openapi.json',
    '/v1/messages', '/v1/messages/count_tokens', '/openai/deployments/{deployment}/chat/completions',
    '/v1/responses', '/v1/responses/{id}', '/v1/responses/{id}/input_items',
    '/admin/metrics', '/admin/rate-limits', '/admin/timeseries', '/admin/keys', '/admin/keys/{id}/revoke',
    '/admin/keys/{id}/limits', '/admin/plans', '/admin/spend', '/admin/spend.csv'])
    assert.ok(doc.paths[p], p);
});

test('/admin/state needs the master key; reset lifts the ban', async () => {
  let r = await fetch(`${router.url}/admin/state`);
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error.type, 'authentication_error');
  r = await fetch(`${router.url}/admin/state`, { headers: { authorization: 'Bearer sk-wrong-key-00000000' } });
  assert.equal(r.status, 401);
  r = await fetch(`${router.url}/admin/state/gpt-4o/reset`, { method: 'POST' });
  assert.equal(r.status, 401);

  r = await fetch(`${router.url}/admin/state`, { headers: auth });
  assert.equal(r.status, 200);
  const s = await r.json();
  const d = s.deployments.find((x) => x.credential === 'cred_ok');
  assert.deepEqual(d.public_names, ['gpt-4o']);
  assert.deepEqual(d.status_counts, { 200: N });
  assert.equal(d.requests, N);
  const bad = s.credentials.find((c) => c.name === 'cred_bad');
  assert.equal(bad.ban.banned, true);
  assert.equal(bad.ban.last_code, 500);
  assert.deepEqual(bad.upstream_errors, { http_5xx: 2 });

  r = await fetch(`${router.url}/admin/state/no-such-model/reset`, { method: 'POST', headers: auth });
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error.code, 'model_not_found');
  r = await fetch(`${router.url}/admin/state/gpt-4o/reset`, { method: 'GET', headers: auth });
  assert.equal(r.status, 405);
  r = await fetch(`${router.url}/admin/state/gpt-4o/reset`, { method: 'POST', headers: auth });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { reset: 2 });

  const h = await health();
  assert.equal(h.status, 'ok');
  const b = h.credentials.find((c) => c.name === 'cred_bad');
  assert.equal(b.banned, false);
  assert.equal(b.ban_until, null);
});

test('/metrics is 404 when monitoring.prometheus_enabled is false', async () => {
  const r = await fetch(`${quiet.url}/metrics`);
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error.type, 'not_found_error');
  const h = await fetch(`${quiet.url}/health`);
  assert.equal(h.status, 200);
  assert.equal((await h.json()).status, 'ok');
});
