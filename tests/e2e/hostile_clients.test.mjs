// Hostile and careless clients must not hurt the gateway or anyone else: a client that
// hangs up while its request waits for a retry, a model name built to inject headers or
// log lines, a body whose members disagree with what the upstream would read, and client
// input or client stalls that must never count against a shared credential.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startMock, startRouter, baseConfig, waitFor, MASTER_KEY, slow } from './lib/harness.mjs';
import { keyMaker, credYaml, modelYaml, chat, countWith } from './lib/routing.mjs';

let mock;
before(async () => { mock = await startMock(); });

// Sends one request on a raw socket; resolves with the socket once the bytes are out.
function sendRaw(port, body, headers = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('error', () => {});
    s.on('connect', () => {
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MASTER_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`);
      resolve(s);
    });
  });
}

const accessLines = (out) => out.split('\n').filter((l) => / request method=/.test(l));

test('a client that hangs up while its request waits for a retry frees nothing in use', async () => {
  const k = keyMaker();
  const router = await startRouter(baseConfig({
    credentials: credYaml({ name: 'cred_a', key: k('a'), base: mock.url }),
    models: modelYaml({ name: 'm', credential: 'cred_a' }),
    extra: 'routing:\n  rate_limit_retries: 2\n  retry_delay: 300ms\nfail2ban:\n  max_attempts: -1\n',
  }));
  for (const first of [{ status: 429 }, { reset: 'before_headers' }]) {
    await mock.queue([first, first, first], k('a'));
    const before = accessLines(router.out).length;
    const s = await sendRaw(router.port, JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }));
    // the first attempt failed and the retry timer is pending: now the client leaves
    await waitFor(async () => (await countWith(mock, k('a'))) >= 1, { what: 'first attempt' });
    await waitFor(() => /retry 1 of 2/.test(router.out), { what: 'retry scheduled' });
    s.destroy();
    // the timer fires after the connection is gone; the access line is written then
    const line = await waitFor(() => {
      if (!router.alive) throw new Error(`airouter died:\n${router.out.slice(-3000)}`);
      return accessLines(router.out)[before];
    }, { what: 'access line' });
    assert.match(line, / status=499 /);
    assert.match(line, / client=127\.0\.0\.1 /);
    await mock.clear();
  }
  const ok = await chat(router, 'm', 'still serving');
  assert.equal(ok.status, 200, ok.text);
  await router.stop();
});

// POSTs a raw body (a string, sent as is) to the chat endpoint.
async function postRaw(router, body, path = '/v1/chat/completions', headers = {}) {
  const r = await fetch(`${router.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json', ...headers },
    body,
    signal: AbortSignal.timeout(15000 * slow),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}

test('model names with control characters are a 400 and never reach a header', async () => {
  const k = keyMaker();
  const router = await startRouter(baseConfig({
    credentials: credYaml({ name: 'cred_a', key: k('a'), base: mock.url }), // open: any model
    server: '  replace_v1_models: false\n',
  }));
  const names = [
    'cred_a/x\r\nSet-Cookie: a=1',
    'cred_a/x\nX-Injected: 1',
    'cred_a/x\u0000y',
    'x\u007fy',
    ['cred_a/ok', 'cred_a/x\r\nSet-Cookie: a=1'],
  ];
  for (const model of names) {
    const r = await postRaw(router, JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }));
    assert.equal(r.status, 400, `${JSON.stringify(model)}: ${r.text}`);
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.match(r.json.error.message, /'model' must be a non-empty string without control characters/);
    assert.equal(r.headers.get('set-cookie'), null);
    assert.equal(r.headers.get('x-injected'), null);
  }
  // a model name that does not decode (a lone surrogate, an escaped NUL) is refused too
  for (const raw of ['"cred_a/\\ud800"', '"cred_a/x\\u0000"', '"\\udc00"']) {
    const r = await postRaw(router, `{"model":${raw},"messages":[{"role":"user","content":"hi"}]}`);
    assert.equal(r.status, 400, `${raw}: ${r.text}`);
    assert.equal(r.json.error.type, 'invalid_request_error');
  }
  const seen = (await mock.requests()).filter((r) => r.path === '/v1/chat/completions' && r.headers.authorization === `Bearer ${k('a')}`);
  assert.equal(seen.length, 0, 'nothing reached the upstream');
  const ok = await chat(router, 'cred_a/gpt-x', 'fine');
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.headers.get('x-airouter-model'), 'gpt-x');
  await router.stop();
});

test('the gateway and the upstream read the same request: escaped keys, duplicates, bad text', async () => {
  const k = keyMaker();
  const router = await startRouter(baseConfig({
    credentials: credYaml({ name: 'cred_a', key: k('a'), base: mock.url }),
    models: modelYaml({ name: 'cheap', credential: 'cred_a', model: 'up-cheap' }) +
      modelYaml({ name: 'expensive', credential: 'cred_a', model: 'up-expensive' }),
  }));
  const msgs = '"messages":[{"role":"user","content":"hi"}]';
  // duplicates, also when they differ only in how the key is escaped: 400 naming the key
  const dups = [
    [`{"model":"cheap",${msgs},"mod\\u0065l":"expensive"}`, 'model', 'the request body'],
    [`{"model":"cheap",${msgs},"model":"expensive"}`, 'model', 'the request body'],
    [`{"model":"cheap",${msgs},"stream":false,"str\\u0065am":true}`, 'stream', 'the request body'],
    [`{"model":"cheap",${msgs},${msgs}}`, 'messages', 'the request body'],
    [`{"model":"cheap",${msgs},"stream":true,"stream_options":{"include_usage":false,"include_usage":true}}`,
      'include_usage', "'stream_options'"],
  ];
  for (const [body, key, where] of dups) {
    const r = await postRaw(router, body);
    assert.equal(r.status, 400, `${body}: ${r.text}`);
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.equal(r.json.error.message, `Duplicate member '${key}' in ${where}`);
  }
  // an escaped key is the key: routed and priced under the model the upstream reads
  await mock.clear();
  const r = await postRaw(router, `{"mod\\u0065l":"expensive",${msgs}}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-airouter-model'), 'expensive');
  const seen = (await mock.requests()).filter((q) => q.path === '/v1/chat/completions');
  assert.equal(seen.length, 1);
  assert.equal(seen[0].body.model, 'up-expensive');
  // a stream asked for with an escaped key is a stream on both sides
  const s = await postRaw(router, `{"model":"cheap",${msgs},"str\\u0065am":true}`);
  assert.equal(s.status, 200, s.text);
  assert.match(s.headers.get('content-type'), /text\/event-stream/);
  assert.match(s.text, /data: \[DONE\]/);
  // text no JSON parser upstream would read the same way is refused up front
  const bad = [
    [`{"model":"cheap","messages":[{"role":"user","content":"\\ud800"}]}`, /lone surrogate/],
    [`{"model":"cheap","messages":[{"role":"user","content":"x\\udc00y"}]}`, /lone surrogate/],
    [Buffer.from(`{"model":"cheap","messages":[{"role":"user","content":"\xff\xfe"}]}`, 'latin1'), /invalid UTF-8/],
  ];
  for (const [body, why] of bad) {
    const b = await postRaw(router, body);
    assert.equal(b.status, 400, b.text);
    assert.equal(b.json.error.type, 'invalid_request_error');
    assert.match(b.json.error.message, why);
  }
  await router.stop();
});

test('keys quoted by an upstream error are masked in everything relayed', async () => {
  const k = keyMaker();
  const creds = credYaml({ name: 'cred_a', key: k('a'), base: mock.url }) +
    credYaml({ name: 'cred_b', key: k('b'), base: mock.url });
  const router = await startRouter(baseConfig({
    credentials: creds,
    models: modelYaml({ name: 'm', credential: 'cred_a', weight: 1 }) +
      modelYaml({ name: 'm', credential: 'cred_b', weight: 0 }) +
      modelYaml({ name: 'solo', credential: 'cred_a' }),
    extra: 'routing:\n  strategy: weighted\nfail2ban:\n  max_attempts: -1\n',
  }));
  const foreign = 'sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1';
  const quoting = (key) => JSON.stringify({ error: {
    message: `Incorrect API key provided: ${key}. Also tried ${foreign} and AIzaSyA1234567890abcdefghijklmnopqrstu.`,
    type: 'invalid_request_error', code: 'invalid_api_key' } });
  // failover: the 200 answer carries cred_a's error in _router.errors
  await mock.queue([{ status: 401, body: quoting(k('a')) }], k('a'));
  const r = await chat(router, 'm', 'x');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body._router.credential, 'cred_b');
  for (const secret of [k('a'), foreign, 'AIzaSyA1234567890abcdefghijklmnopqrstu']) assert.ok(!r.text.includes(secret), r.text);
  assert.match(r.body._router.errors[0].message, /Incorrect API key provided: sk-a-t\.\.\.000\./);
  // nowhere else to go: the upstream's 401 body itself is relayed, masked
  await mock.queue([{ status: 401, body: quoting(k('a')) }], k('a'));
  const e = await chat(router, 'solo', 'x');
  assert.equal(e.status, 401, e.text);
  for (const secret of [k('a'), foreign, 'AIzaSyA1234567890abcdefghijklmnopqrstu']) assert.ok(!e.text.includes(secret), e.text);
  assert.match(e.body.error.message, /sk-pro\.\.\.Ji1/);
  // and through the Anthropic front (a translated error)
  await mock.queue([{ status: 401, body: quoting(k('a')) }], k('a'));
  const a = await postRaw(router, JSON.stringify({ model: 'solo', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
    '/v1/messages', { 'anthropic-version': '2023-06-01' });
  assert.equal(a.status, 401, a.text);
  assert.ok(!a.text.includes(k('a')) && !a.text.includes(foreign), a.text);
  // the logs never had them either
  for (const secret of [k('a'), foreign]) assert.ok(!router.out.includes(secret), 'a key reached the log');
  await router.stop();
});

test('a client that stops reading a stream is cut by write_timeout and costs the credential nothing', async () => {
  const k = keyMaker();
  const router = await startRouter(baseConfig({
    credentials: credYaml({ name: 'cred_a', key: k('a'), base: mock.url }),
    models: modelYaml({ name: 'm', credential: 'cred_a' }),
    // request_timeout is shorter than the stall, longer than the upstream needs to answer
    server: `  request_timeout: ${2 * slow}s\n  write_timeout: ${4 * slow}s\n`,
    extra: 'fail2ban:\n  max_attempts: 1\n  ban_duration: permanent\n' +
      'circuit_breaker:\n  failure_threshold: 1\n',
  }));
  // a 16 MB answer in 400 events: far more than the socket buffers hold
  const content = `[mock chunks=400] ${'word '.repeat(3_200_000)}`;
  const s = await sendRaw(router.port, JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content }] }));
  s.on('data', () => s.pause()); // reads a little, then stops
  await waitFor(() => /client stopped reading/.test(router.out), { what: 'write_timeout', timeoutMs: 20000 * slow });
  s.destroy(); // a paused socket would not even notice the close
  // not banned, breaker not open: the next request is served by the same credential
  const ok = await chat(router, 'm', 'after the stall');
  assert.equal(ok.status, 200, ok.text);
  const health = await (await fetch(`${router.url}/health`)).json();
  assert.equal(health.credentials[0].banned, false);
  assert.equal(health.credentials[0].errors, 0);
  assert.doesNotMatch(router.out, /status 504|upstream timed out/);
  await router.stop();
});
