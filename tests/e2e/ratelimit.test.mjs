// Client rate limiting (SPEC section 4, `rate_limiting`): token buckets checked in the
// order global, per client (X-Client-ID, else the API key, else the address), per model;
// a refusal is 429 with Retry-After and the exact SPEC body, and every answer carries
// X-RateLimit-* while rate limiting is on, streaming ones included. Uses the official
// openai SDK (maxRetries: 0) and raw fetch, against in-process mock credentials. The
// routers are stopped (and checked) by the harness at the end of the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import fs from 'node:fs';
import { startRouter, baseConfig, waitFor, MASTER_KEY } from './lib/harness.mjs';

const credentials = '  - name: local\n    type: mock\n';
const models = '  - name: x\n    credential: local\n  - name: y\n    credential: local\n';
const refusal = (type) =>
  `{"error":{"message":"Rate limit exceeded","type":"rate_limit_error","limit_type":"${type}"}}`;

function start(extra) {
  return startRouter(baseConfig({ credentials, models, extra }));
}

function sdk(router, headers = {}) {
  return new OpenAI({
    apiKey: MASTER_KEY, baseURL: `${router.url}/v1`, maxRetries: 0, defaultHeaders: headers,
  });
}

function chat(router, { model = 'x', headers = {}, stream = false } = {}) {
  return fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
  });
}

// The three headers as numbers; all must be present.
function limits(headers) {
  const v = {};
  for (const k of ['limit', 'remaining', 'reset']) {
    const raw = headers.get(`x-ratelimit-${k}`);
    assert.ok(raw !== null, `x-ratelimit-${k} present`);
    assert.match(raw, /^\d+$/);
    v[k] = Number(raw);
  }
  return v;
}

async function expectRefused(r, type) {
  assert.equal(r.status, 429);
  assert.equal(await r.text(), refusal(type));
  assert.equal(r.headers.get('content-type'), 'application/json');
  const retry = Number(r.headers.get('retry-after'));
  assert.ok(Number.isInteger(retry) && retry >= 1, `Retry-After ${r.headers.get('retry-after')}`);
  const l = limits(r.headers);
  assert.equal(l.remaining, 0);
  return { retry, ...l };
}

test('global limit: burst of 3, then 429 global with Retry-After and X-RateLimit-*', async () => {
  const router = await start(`
rate_limiting:
  enabled: true
  global: { requests_per_minute: 3, burst_size: 3 }
`);
  const client = sdk(router);
  const before = Math.floor(Date.now() / 1000);
  let lastReset = 0;
  for (let i = 0; i < 3; i++) {
    const { data, response } = await client.chat.completions
      .create({ model: 'x', messages: [{ role: 'user', content: `n${i}` }] })
      .withResponse();
    assert.equal(data.choices[0].message.content, `echo: n${i}`);
    const l = limits(response.headers);
    assert.equal(l.limit, 3);
    assert.equal(l.remaining, 2 - i);
    // Reset: when the bucket is full again; each request pushes it 20 s later (3 a minute)
    assert.ok(l.reset >= before + 20 * (i + 1) - 1 && l.reset <= before + 20 * (i + 1) + 2,
      `reset ${l.reset - before}s after the start`);
    assert.ok(l.reset >= lastReset);
    lastReset = l.reset;
  }
  await assert.rejects(
    client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'n3' }] }),
    (e) => e instanceof OpenAI.RateLimitError && e.status === 429 &&
      e.error?.limit_type === 'global' && e.error?.type === 'rate_limit_error' &&
      Number(e.headers.get('retry-after')) >= 1,
  );
  const { retry, limit } = await expectRefused(await chat(router), 'global');
  assert.ok(retry <= 20, `Retry-After ${retry} is at most one refill interval`);
  assert.equal(limit, 3);
});

test('per client: A exhausted does not affect B; refusals give the global token back', async () => {
  const router = await start(`
rate_limiting:
  enabled: true
  global: { requests_per_minute: 5 }
  per_client: { requests_per_minute: 2, burst_size: 2 }
`);
  const a = sdk(router, { 'X-Client-ID': 'client-a' });
  const b = sdk(router, { 'X-Client-ID': 'client-b' });
  const ask = (c) => c.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();

  let { response } = await ask(a);
  // the tighter bucket is reported: client (1 left of 2) rather than global (4 of 5)
  assert.deepEqual([limits(response.headers).limit, limits(response.headers).remaining], [2, 1]);
  await ask(a);
  for (let i = 0; i < 3; i++)
    await expectRefused(await chat(router, { headers: { 'X-Client-ID': 'client-a' } }), 'client');
  await assert.rejects(ask(a), (e) => e instanceof OpenAI.RateLimitError && e.error?.limit_type === 'client');

  // B is a different bucket
  ({ response } = await ask(b));
  assert.equal(limits(response.headers).remaining, 1);
  await ask(b);
  // no X-Client-ID: the API key identifies the caller, another bucket again. The four
  // refusals of A did not count globally: 5 - 2 (A) - 2 (B) = 1 left for it.
  ({ response } = await ask(sdk(router)));
  assert.deepEqual([limits(response.headers).limit, limits(response.headers).remaining], [5, 0]);
  await expectRefused(await chat(router, { headers: { 'X-Client-ID': 'client-c' } }), 'global');
});

test('per model: model x limited, model y fine; errors after the check carry the headers', async () => {
  const router = await start(`
rate_limiting:
  enabled: true
  per_model: { requests_per_minute: 2 }
`);
  for (let i = 0; i < 2; i++) {
    const r = await chat(router, { model: 'x' });
    assert.equal(r.status, 200);
    assert.equal(limits(r.headers).remaining, 1 - i);
  }
  await expectRefused(await chat(router, { model: 'x' }), 'model');
  const client = sdk(router);
  const { response } = await client.chat.completions
    .create({ model: 'y', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.deepEqual([limits(response.headers).limit, limits(response.headers).remaining], [2, 1]);
  // a priority list is limited by its first name
  await expectRefused(await chat(router, { model: ['x', 'y'] }), 'model');
  // an unknown model is still counted (by its name) and its 404 has the headers
  const r = await chat(router, { model: 'nope' });
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error.code, 'model_not_found');
  assert.equal(limits(r.headers).remaining, 1);
});

test('streaming answers carry the headers too', async () => {
  const router = await start(`
rate_limiting:
  enabled: true
  global: { requests_per_minute: 1, burst_size: 50 }
`);
  const client = sdk(router);
  const { data: stream, response } = await client.chat.completions
    .create({ model: 'x', stream: true, messages: [{ role: 'user', content: 'one two three' }] })
    .withResponse();
  assert.match(response.headers.get('content-type'), /text\/event-stream/);
  const l = limits(response.headers);
  assert.equal(l.limit, 50);
  assert.equal(l.remaining, 49);
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'echo: one two three');
  // and raw: the head of the SSE answer
  const r = await chat(router, { stream: true });
  assert.equal(r.status, 200);
  assert.equal(limits(r.headers).remaining, 48);
  await r.text();
});

test('SIGHUP keeps the buckets and applies the new limits to them', async () => {
  const conf = (burst) => baseConfig({
    credentials, models,
    extra: `rate_limiting:\n  enabled: true\n  global: { requests_per_minute: 1, burst_size: ${burst} }\n`,
  });
  const router = await startRouter(conf(2));
  // signal handlers are installed just after this line is logged
  await waitFor(() => router.out.includes('airouter listening'), { what: 'startup log' });
  for (let i = 0; i < 2; i++) assert.equal((await chat(router)).status, 200);
  const { retry } = await expectRefused(await chat(router), 'global');
  assert.ok(retry > 50 && retry <= 60, `Retry-After ${retry}: a token a minute`);

  fs.writeFileSync(router.configFile,
    conf(3).replaceAll('${PORT}', String(router.port)).replaceAll('${MASTER_KEY}', MASTER_KEY));
  router.signal('SIGHUP');
  await waitFor(() => {
    assert.ok(router.alive, router.out);
    return router.out.includes('configuration reloaded');
  }, { what: 'reload' });
  // the two tokens taken before the reload still count: one left of three, not three
  const r = await chat(router);
  assert.equal(r.status, 200);
  assert.deepEqual([limits(r.headers).limit, limits(r.headers).remaining], [3, 0]);
  await expectRefused(await chat(router), 'global');
});

test('disabled (or only unlimited buckets): no X-RateLimit headers, nothing refused', async () => {
  for (const extra of [
    '',
    'rate_limiting:\n  enabled: false\n  global: { requests_per_minute: 1 }\n',
    'rate_limiting:\n  enabled: true\n  global: { requests_per_minute: -1 }\n',
  ]) {
    const router = await start(extra);
    for (let i = 0; i < 3; i++) {
      const r = await chat(router);
      assert.equal(r.status, 200, extra);
      await r.text();
      for (const k of ['limit', 'remaining', 'reset'])
        assert.equal(r.headers.get(`x-ratelimit-${k}`), null, `${extra}: no x-ratelimit-${k}`);
    }
  }
});

test('with CORS too; answers given before the check (401, 404, /v1/models, /health) have none', async () => {
  const router = await startRouter(baseConfig({
    credentials, models, server: '  cors_origins: ["https://app.example"]',
    extra: 'rate_limiting:\n  enabled: true\n  global: { requests_per_minute: 1, burst_size: 1000 }\n',
  }));
  const origin = { origin: 'https://app.example' };
  for (let i = 0; i < 20; i++) {
    const r = await chat(router, { headers: origin });
    await r.text();
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal(r.headers.get('vary'), 'Origin');
    assert.equal(limits(r.headers).remaining, 999 - i);
  }
  const auth = { authorization: `Bearer ${MASTER_KEY}`, ...origin };
  for (let i = 0; i < 20; i++) {
    for (const [path, init, status] of [
      ['/v1/chat/completions', { method: 'POST', body: '{}', headers: origin }, 401],
      ['/v1/nope', { headers: auth }, 404],
      ['/v1/models', { headers: auth }, 200],
      ['/health', {}, 200],
    ]) {
      const r = await fetch(`${router.url}${path}`, init);
      assert.equal(r.status, status, path);
      await r.text();
      assert.equal(r.headers.get('x-ratelimit-limit'), null, path);
    }
  }
});

test('on /v1/messages a refusal comes in Anthropic\'s error shape, with Retry-After', async () => {
  const router = await startRouter(baseConfig({
    credentials,
    models,
    extra: 'rate_limiting:\n  enabled: true\n  global: { requests_per_minute: 1, burst_size: 1 }\n',
  }));
  const post = () => fetch(`${router.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': MASTER_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'x', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal((await post()).status, 200);
  const r = await post();
  assert.equal(r.status, 429);
  assert.ok(Number(r.headers.get('retry-after')) >= 1);
  const body = await r.json();
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'rate_limit_error');
  assert.match(body.error.message, /global limit/);
  await router.stop();
});
