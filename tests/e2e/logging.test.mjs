// Logs (SPEC section 8): one access line per request with every field, in text and in
// JSON; configured secrets never appear (masked as `sk-abc...xyz`); levels; long fields
// shortened in debug dumps; error lines copied to monitoring.errors_log_path.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startMock, startRouter, baseConfig, waitFor, MASTER_KEY, slow } from './lib/harness.mjs';

let mock;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'airouter-logging-'));

before(async () => { mock = await startMock(); });
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const KEY_A = 'sk-log-cred-a-7f3e9c1b2d4a6e8f0011';
const KEY_B = 'sk-log-cred-b-1a2b3c4d5e6f7a8b2233';
const STORAGE_SECRET = 'log-storage-secret-0123456789abcdef';
const mask = (s) => `${s.slice(0, 6)}...${s.slice(-3)}`;

// cred_a answers; cred_bad always fails with 500. Models: gpt-4o (cred_a), emb
// (cred_a), bad (cred_bad only), flaky (cred_bad and cred_a).
function config({ level = 'info', server = '', extra = '' } = {}) {
  return baseConfig({
    server,
    credentials: `
  - name: cred_a
    type: openai
    api_key: ${KEY_A}
    base_url: ${mock.url}
  - name: cred_bad
    type: openai
    api_key: ${KEY_B}
    base_url: ${mock.url}
    headers:
      x-mock-status: "500"
`,
    models: `  - name: gpt-4o
    credential: cred_a
  - name: emb
    credential: cred_a
    model: text-embedding-3-small
  - name: bad
    credential: cred_bad
  - name: flaky
    credential: cred_bad
  - name: flaky
    credential: cred_a
`,
    extra: `routing:\n  retry_delay: 10ms\nfail2ban:\n  max_attempts: 1000\n${extra}`,
  }).replace('  logging_level: info\n', `  logging_level: ${level}\n`);
}

const client = (router, apiKey = MASTER_KEY) =>
  new OpenAI({ apiKey, baseURL: `${router.url}/v1`, maxRetries: 0, timeout: 20000 * slow });

async function post(router, p, body, headers = {}) {
  const r = await fetch(`${router.url}${p}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, id: r.headers.get('x-request-id'), text: await r.text() };
}

const lines = (out) => out.split('\n').filter(Boolean);

// Text access line of a request: "... info request method=M path=P status=S model=..."
function textAccess(out, id) {
  return lines(out).filter((l) => / request method=/.test(l) && l.endsWith(` request_id=${id}`));
}

// logfmt: a quoted value is one token (its text as logged, quotes off), so `a=b` inside
// it is no field
function parseKv(line) {
  const kv = {};
  for (const m of line.matchAll(/ (\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/g)) kv[m[1]] = m[2] ?? m[3];
  return kv;
}

async function waitAccess(router, id, find = textAccess, timeoutMs = 5000 * slow) {
  return waitFor(() => { const l = find(router.out, id); return l.length ? l : false; },
    { timeoutMs, what: `access line for ${id}` });
}

// ---- access lines ----

test('text: one access line per LLM request with every field', async () => {
  const router = await startRouter(config());
  const c = client(router);
  const cases = [];

  const { data: r1, response: h1 } = await c.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello log' }] }).withResponse();
  cases.push({ id: h1.headers.get('x-request-id'), status: 200, model: 'gpt-4o', credential: 'cred_a',
    attempts: 1, prompt: r1.usage.prompt_tokens, completion: r1.usage.completion_tokens, stream: 'false' });

  const { data: s, response: h2 } = await c.chat.completions
    .create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'a streamed answer' }] }).withResponse();
  for await (const _ of s);
  cases.push({ id: h2.headers.get('x-request-id'), status: 200, model: 'gpt-4o', credential: 'cred_a', attempts: 1, stream: 'true' });

  const mine = await post(router, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] },
    { 'x-request-id': 'log-trace-0001' });
  assert.equal(mine.id, 'log-trace-0001');
  cases.push({ id: 'log-trace-0001', status: 200, model: 'gpt-4o', credential: 'cred_a', attempts: 1 });

  const bad = await post(router, '/v1/chat/completions', { model: 'bad', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(bad.status, 500);
  cases.push({ id: bad.id, status: 500, model: 'bad', credential: 'cred_bad', attempts: 1 });

  for (let i = 0; i < 2; i++) {
    const { data, response } = await c.chat.completions
      .create({ model: 'flaky', messages: [{ role: 'user', content: 'x' }] }).withResponse();
    cases.push({ id: response.headers.get('x-request-id'), status: 200, model: 'flaky', credential: 'cred_a',
      attempts: data._router.attempts });
  }
  assert.ok(cases.some((k) => k.attempts === 2), 'one flaky request needed two attempts');

  for (const k of cases) {
    assert.match(k.id, /\S+/);
    const found = await waitAccess(router, k.id);
    assert.equal(found.length, 1, `one access line for ${k.id}:\n${found.join('\n')}`);
    const kv = parseKv(found[0]);
    assert.match(found[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info request /);
    assert.equal(kv.method, 'POST');
    assert.equal(kv.path, '/v1/chat/completions');
    assert.equal(Number(kv.status), k.status, found[0]);
    assert.equal(kv.model, k.model, found[0]);
    assert.equal(kv.credential, k.credential, found[0]);
    assert.equal(Number(kv.attempts), k.attempts, found[0]);
    assert.ok(Number(kv.latency_ms) >= 0 && kv.latency_ms !== '', found[0]);
    assert.match(kv.prompt_tokens, /^\d+$/, found[0]);
    assert.match(kv.completion_tokens, /^\d+$/, found[0]);
    if (k.prompt !== undefined) {
      assert.equal(Number(kv.prompt_tokens), k.prompt);
      assert.equal(Number(kv.completion_tokens), k.completion);
    }
    if (k.stream) assert.equal(kv.stream, k.stream);
    assert.equal(kv.client, '127.0.0.1');
    assert.equal(kv.request_id, k.id);
  }
  await router.stop();
});

test('every request gets an access line: models list, 401, 404, unknown model, bad JSON', async () => {
  const router = await startRouter(config());
  const got = [];
  const models = await fetch(`${router.url}/v1/models`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
  got.push({ id: models.headers.get('x-request-id'), status: 200, method: 'GET', path: '/v1/models' });
  const wrong = await post(router, '/v1/chat/completions', { model: 'gpt-4o', messages: [] }, { authorization: 'Bearer sk-wrong-0000000000' });
  got.push({ id: wrong.id, status: 401, method: 'POST', path: '/v1/chat/completions' });
  const nopath = await post(router, '/v1/nothing-here', {});
  got.push({ id: nopath.id, status: 404, method: 'POST', path: '/v1/nothing-here' });
  const nomodel = await post(router, '/v1/chat/completions', { model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] });
  got.push({ id: nomodel.id, status: nomodel.status, method: 'POST', path: '/v1/chat/completions' });
  const badjson = await post(router, '/v1/chat/completions', '{"model":');
  assert.equal(badjson.status, 400);
  got.push({ id: badjson.id, status: 400, method: 'POST', path: '/v1/chat/completions' });
  for (const k of got) {
    assert.ok(k.id, 'the response has x-request-id');
    const found = await waitAccess(router, k.id, textAccess, 1500 * slow);
    assert.equal(found.length, 1);
    const kv = parseKv(found[0]);
    assert.equal(kv.method, k.method);
    assert.equal(kv.path, k.path);
    assert.equal(Number(kv.status), k.status);
  }
  await router.stop();
});

// The `reason` of an error the gateway answered itself: quoted right after status.
const reasonOf = (line) => (/ status=\d+ reason="/.test(line) ? parseKv(line).reason : undefined);

test('errors of the gateway own carry a reason; client bytes cannot break the line', async () => {
  const router = await startRouter(config({
    extra: 'rate_limiting:\n  enabled: true\n  per_model: { requests_per_minute: 1, burst_size: 1 }\n',
  }));
  const msg = [{ role: 'user', content: 'x' }];
  const cases = [];
  const badjson = await post(router, '/v1/chat/completions', '{"model":');
  cases.push({ r: badjson, status: 400, reason: /^Malformed JSON in request body: / });
  const badmsg = await post(router, '/v1/chat/completions', { model: 'gpt-4o', messages: [1] });
  cases.push({ r: badmsg, status: 400, reason: /^'messages\[0\]' must be an object with a string 'role'$/ });
  // a key (decoded into the message) that tries to end the field and forge a line
  const key = 'k\\" x\\n2026-01-01T00:00:00.000Z info request method=GET status=200';
  const dup = await post(router, '/v1/chat/completions', `{"model":"gpt-4o","messages":[],"${key}":1,"${key}":2}`);
  cases.push({ r: dup, status: 400,
    reason: /^Duplicate member 'k\\" x\\n2026-01-01T00:00:00\.000Z info request method=GET status=200' in the request body$/ });
  const wrong = await post(router, '/v1/chat/completions', { model: 'gpt-4o', messages: msg },
    { authorization: 'Bearer sk-wrong-key-abcdef0123456789' });
  cases.push({ r: wrong, status: 401, reason: /API key/i, absent: 'sk-wrong-key-abcdef0123456789' });
  const nomodel = await post(router, '/v1/chat/completions', { model: 'no-such-model', messages: msg });
  cases.push({ r: nomodel, status: 404, reason: /^The model 'no-such-model' does not exist/ });
  const nopath = await post(router, '/v1/nothing-here', {});
  cases.push({ r: nopath, status: 404, reason: /^Unknown path: \/v1\/nothing-here$/ });
  const first = await post(router, '/v1/chat/completions', { model: 'gpt-4o', messages: msg });
  assert.equal(first.status, 200);
  const limited = await post(router, '/v1/chat/completions', { model: 'gpt-4o', messages: msg });
  cases.push({ r: limited, status: 429, reason: /^Rate limit exceeded \(model limit\)$/ });
  // a model name that tries to end the field and forge fields of its own
  const evil = 'evil" status=200 model=m credential=c request_id=x';
  const forged = await post(router, '/v1/chat/completions', { model: evil, messages: msg });
  cases.push({ r: forged, status: 404, reason: /^The model 'evil\\" status=200 model=m credential=c request_id=x' does not exist/ });
  // a newline in it is refused before anything echoes it
  const newline = await post(router, '/v1/chat/completions', { model: 'a\n2026-01-01T00:00:00.000Z info request', messages: msg });
  cases.push({ r: newline, status: 400, reason: /^'model' must be a non-empty string without control characters$/ });

  for (const k of cases) {
    assert.equal(k.r.status, k.status, k.r.text);
    const found = await waitAccess(router, k.r.id);
    assert.equal(found.length, 1, found.join('\n'));
    const reason = reasonOf(found[0]);
    assert.ok(reason !== undefined, `no reason in ${found[0]}`);
    assert.match(reason, k.reason, found[0]);
    assert.ok(reason.length <= 220, found[0]);
    if (k.absent) assert.ok(!found[0].includes(k.absent), found[0]);
    const kv = parseKv(found[0]);
    assert.equal(kv.status, String(k.status));
    assert.equal(kv.request_id, k.r.id);
    assert.notEqual(kv.model, 'm');
  }
  assert.ok(!lines(router.out).some((l) => l.startsWith('2026-01-01T00:00:00.000Z')));
  // an answer that is no error has no reason
  const ok = await waitAccess(router, first.id);
  assert.equal(reasonOf(ok[0]), undefined, ok[0]);
  assert.ok(!ok[0].includes(' reason='), ok[0]);
  await router.stop();
});

test('log_format json: a refused request carries its reason', async () => {
  const router = await startRouter(config({ server: '  log_format: json\n' }));
  const evil = 'q"uote \\ back\\slash';
  const r = await post(router, '/v1/chat/completions', { model: evil, messages: [{ role: 'user', content: 'x' }] });
  assert.equal(r.status, 404);
  const find = (out, id) => lines(out).filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l)).filter((j) => j.request_id === id && 'status' in j);
  const [a] = await waitAccess(router, r.id, find);
  assert.equal(a.status, 404);
  assert.equal(a.reason, `The model '${evil}' does not exist or no credential serves it`);
  await router.stop();
});

// Access lines are parsed strictly: a stray byte would make them invalid JSON.
const parseLine = (l) => JSON.parse(l);

test('log_format json: access lines carry every field', async () => {
  const router = await startRouter(config({ server: '  log_format: json\n' }));
  const c = client(router);
  const ids = [];
  const { data: r, response } = await c.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'json "quoted" line' }] }).withResponse();
  ids.push({ id: response.headers.get('x-request-id'), status: 200, model: 'gpt-4o', credential: 'cred_a', attempts: 1, usage: r.usage });
  for (let i = 0; i < 2; i++) {
    const { data, response: h } = await c.chat.completions
      .create({ model: 'flaky', messages: [{ role: 'user', content: 'x' }] }).withResponse();
    ids.push({ id: h.headers.get('x-request-id'), status: 200, model: 'flaky', credential: 'cred_a', attempts: data._router.attempts });
  }
  const bad = await post(router, '/v1/chat/completions', { model: 'bad', messages: [{ role: 'user', content: 'x' }] });
  ids.push({ id: bad.id, status: 500, model: 'bad', credential: 'cred_bad', attempts: 1 });

  const find = (out, id) => lines(out).filter((l) => l.startsWith('{'))
    .map(parseLine).filter((j) => j.request_id === id && 'status' in j);
  for (const k of ids) {
    const [a, ...more] = await waitAccess(router, k.id, find);
    assert.equal(more.length, 0, 'exactly one access line');
    assert.equal(a.level, 'info');
    assert.match(a.time, /^\d{4}-\d\d-\d\dT/);
    assert.equal(a.method, 'POST');
    assert.equal(a.path, '/v1/chat/completions');
    assert.equal(a.status, k.status);
    assert.equal(a.model, k.model);
    assert.equal(a.credential, k.credential);
    assert.equal(a.attempts, k.attempts);
    assert.equal(typeof a.latency_ms, 'number');
    assert.equal(typeof a.prompt_tokens, 'number');
    assert.equal(typeof a.completion_tokens, 'number');
    if (k.usage) {
      assert.equal(a.prompt_tokens, k.usage.prompt_tokens);
      assert.equal(a.completion_tokens, k.usage.completion_tokens);
    }
    assert.equal(a.client, '127.0.0.1');
    assert.equal(a.request_id, k.id);
  }
  await router.stop();
});

test('log_format json: every line of the log is valid JSON', async () => {
  const router = await startRouter(config({ server: '  log_format: json\n' }));
  const r = await post(router, '/v1/chat/completions', { model: 'flaky', messages: [{ role: 'user', content: 'a "quoted"\nline' }] });
  assert.equal(r.status, 200);
  const bad = await post(router, '/v1/chat/completions', { model: 'bad', messages: [{ role: 'user', content: 'x' }] });
  await waitAccess(router, bad.id, (out, id) => lines(out).filter((l) => l.includes(id) && l.includes('"status"')));
  await router.stop();
  const all = lines(router.out);
  assert.ok(all.length >= 4);
  for (const l of all) {
    assert.doesNotThrow(() => JSON.parse(l), `not JSON: ${JSON.stringify(l)}`);
    assert.ok(!l.includes('\0'), `NUL byte in ${JSON.stringify(l)}`);
  }
});

// ---- secrets ----

for (const format of ['text', 'json']) {
  test(`secrets never appear in the log (${format}, debug level)`, async () => {
    const router = await startRouter(config({
      level: 'debug',
      server: `  log_format: ${format}\n`,
      extra: `storage:\n  database_url: "sqlite://${tmp}/secrets-${format}.db"\n  secret_key: "${STORAGE_SECRET}"\n`,
    }));
    const secrets = [MASTER_KEY, KEY_A, KEY_B, STORAGE_SECRET];
    const c = client(router);
    // success, with every secret in the prompt: it is dumped (request and echoed answer)
    for (const s of secrets) {
      const r = await c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `say ${s}` }] });
      assert.equal(r.choices[0].message.content, `echo: say ${s}`);
    }
    const st = await c.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: `stream ${KEY_A}` }] });
    for await (const _ of st);
    // auth failures: a wrong key, and a configured upstream key used as a client key
    for (const k of ['sk-wrong-key-1234567890', KEY_A, KEY_B]) {
      const r = await post(router, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] },
        { authorization: `Bearer ${k}` });
      assert.equal(r.status, 401);
      assert.ok(!r.text.includes(k));
    }
    // upstream failures (500 from cred_bad), with secrets in the body
    const f = await post(router, '/v1/chat/completions', { model: 'bad', messages: [{ role: 'user', content: `fail ${MASTER_KEY} ${KEY_B}` }] });
    assert.equal(f.status, 500);
    await c.chat.completions.create({ model: 'flaky', messages: [{ role: 'user', content: `flaky ${STORAGE_SECRET}` }] });
    // wait until the last request's access line is out, then stop
    const last = await post(router, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'last' }] });
    await waitFor(() => router.out.includes(format === 'json' ? `"request_id":"${last.id}"}` : ` request_id=${last.id}\n`),
      { what: 'the last access line' });
    await router.stop();
    const out = router.out;
    assert.match(out, /upstream request body/, 'bodies were dumped');
    for (const s of secrets) {
      assert.ok(!out.includes(s), `secret ${mask(s)} appears in the log:\n` +
        lines(out).filter((l) => l.includes(s)).slice(0, 3).join('\n'));
    }
    for (const s of secrets) assert.ok(out.includes(mask(s)), `masked form ${mask(s)} is shown`);
  });
}

// ---- levels and debug dumps ----

test('logging_level error: no access or info lines, error lines still printed', async () => {
  const router = await startRouter(config({ level: 'error' }));
  const c = client(router);
  const { response } = await c.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'quiet' }] }).withResponse();
  const id = response.headers.get('x-request-id');
  await c.chat.completions.create({ model: 'flaky', messages: [{ role: 'user', content: 'x' }] });
  // an error-level line as a marker that the logger got this far
  const s = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'one two three four five six [mock reset=mid_stream chunk_delay=30ms]' }] }),
  });
  await s.text();
  await waitFor(() => / error /.test(router.out), { what: 'the error line' });
  await router.stop();
  assert.ok(!router.out.includes(id), 'no line names the quiet request');
  assert.doesNotMatch(router.out, / request method=/);
  assert.doesNotMatch(router.out, / (info|debug|warn) /);
});

test('debug: bodies are dumped; embedding vectors and long strings are shortened', async () => {
  const router = await startRouter(config({ level: 'debug' }));
  const c = client(router);
  const { response } = await c.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'dump me please' }] }).withResponse();
  const id = response.headers.get('x-request-id');
  await waitAccess(router, id);
  const mine = lines(router.out).filter((l) => l.includes(`[${id}]`));
  assert.ok(mine.some((l) => / debug /.test(l) && /upstream request body/.test(l) && l.includes('dump me please')), mine.join('\n'));
  assert.ok(mine.some((l) => / debug /.test(l) && /upstream response body/.test(l) && l.includes('echo: dump me please')), mine.join('\n'));

  const long = Array.from({ length: 600 }, (_, i) => `w${i % 10}`).join(' '); // ~1800 chars
  const emb = await post(router, '/v1/embeddings', { model: 'emb', input: long, dimensions: 1536, encoding_format: 'float' });
  assert.equal(emb.status, 200, emb.text);
  const vec = JSON.parse(emb.text).data[0].embedding;
  assert.equal(vec.length, 1536);
  const raw = emb.text.match(/"embedding":\s*\[([^\]]*)\]/)[1];
  const b64 = await post(router, '/v1/embeddings', { model: 'emb', input: 'base64 please', dimensions: 1536, encoding_format: 'base64' });
  assert.equal(b64.status, 200, b64.text);
  const b64str = JSON.parse(b64.text).data[0].embedding;
  assert.equal(typeof b64str, 'string');
  assert.ok(b64str.length > 8000);
  await waitAccess(router, b64.id);
  await router.stop();

  const out = router.out;
  const embLines = lines(out).filter((l) => l.includes(`[${emb.id}]`) && / debug /.test(l));
  assert.ok(embLines.length >= 2, `request and response dumped:\n${out.slice(-3000)}`);
  assert.ok(!out.includes(raw.slice(0, 200)), 'the vector is not in the log');
  assert.ok(!out.includes(long), 'the long input is not in the log');
  assert.match(out, /\[1536 numbers\]/);
  assert.match(out, /\.\.\.\(\d+ chars\)/);
  assert.ok(!out.includes(b64str.slice(0, 500)), 'the base64 vector is not in the log');
  const b64Lines = lines(out).filter((l) => l.includes(`[${b64.id}]`) && /upstream response body/.test(l));
  assert.equal(b64Lines.length, 1);
  assert.match(b64Lines[0], new RegExp(`\\.\\.\\.\\(${b64str.length} chars\\)`));
});

// ---- errors file ----

test('monitoring.log_errors: a stream broken midway writes an error line to errors_log_path', async () => {
  const file = path.join(tmp, 'errors.log');
  const router = await startRouter(config({
    extra: `monitoring:\n  log_errors: true\n  errors_log_path: ${file}\n`,
  }));
  await waitFor(() => fs.existsSync(file), { what: 'the errors file' });
  const ok = await post(router, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'fine' }] });
  assert.equal(ok.status, 200);
  const s = await post(router, '/v1/chat/completions', {
    model: 'gpt-4o', stream: true,
    messages: [{ role: 'user', content: 'one two three four five six seven eight [mock reset=mid_stream chunk_delay=30ms]' }],
  });
  assert.equal(s.status, 200);
  assert.match(s.text, /data: \{"error":/, 'the client got an SSE error event');
  const text = await waitFor(() => {
    const t = fs.readFileSync(file, 'utf8');
    return t.includes(s.id) ? t : false;
  }, { what: 'the error line in the errors file' });
  await waitAccess(router, ok.id);
  await router.stop();
  const errLines = lines(fs.readFileSync(file, 'utf8'));
  assert.ok(errLines.length >= 1);
  for (const l of errLines) assert.match(l, / error /, `only error lines in the file: ${l}`);
  assert.ok(errLines.some((l) => l.includes(s.id) && /stream/.test(l)), text);
  assert.ok(!errLines.some((l) => l.includes(ok.id)), 'the successful request is not in the errors file');
  assert.doesNotMatch(errLines.join('\n'), / info | request method=/);
  // the same error line also went to the normal log
  assert.ok(lines(router.out).some((l) => l.includes(s.id) && / error /.test(l)));
});
