// SPEC section 10: every malformed request gets a precise error, never a crash, hang or
// leak, and never blocks other requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startRouter, baseConfig, rawRequest, MASTER_KEY, slow } from './lib/harness.mjs';

let router;
const auth = `Authorization: Bearer ${MASTER_KEY}\r\n`;

before(async () => {
  router = await startRouter(baseConfig({
    server: '  max_body_size_mb: 1\n  idle_timeout: 400ms\n',
    credentials: '  - name: local\n    type: mock\n',
    models: '  - name: m\n    credential: local\n',
  }));
});

after(async () => { await router.stop(); });

async function postJson(body, headers = {}) {
  const r = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, ...headers }, body,
  });
  return { status: r.status, json: await r.json() };
}

test('malformed JSON: 400 naming the problem and where', async () => {
  const { status, json } = await postJson('{"model": "m", "messages": [1,,2]}');
  assert.equal(status, 400);
  assert.equal(json.error.type, 'invalid_request_error');
  assert.match(json.error.message, /Malformed JSON/);
  assert.match(json.error.message, /column \d+/);
});

test('body that is not an object, and an empty body', async () => {
  assert.equal((await postJson('[1,2]')).status, 400);
  const r = await postJson('');
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /empty/);
});

test('missing messages: 400 naming the parameter', async () => {
  const { status, json } = await postJson('{"model":"m"}');
  assert.equal(status, 400);
  assert.match(json.error.message, /'messages'/);
});

test('wrong field types: 400', async () => {
  assert.equal((await postJson('{"model":"m","messages":"hi"}')).status, 400);
  assert.equal((await postJson('{"model":"m","messages":[{"content":"x"}]}')).status, 400);
  assert.equal((await postJson('{"model":5,"messages":[{"role":"user","content":"x"}]}')).status, 400);
  assert.equal((await postJson('{"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}')).status, 400);
  const emb = await fetch(`${router.url}/v1/embeddings`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}` }, body: '{"model":"m"}',
  });
  assert.equal(emb.status, 400);
});

test('body over max_body_size_mb: 413', async () => {
  const big = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(1100000) }] });
  const { status, json } = await postJson(big);
  assert.equal(status, 413);
  assert.match(json.error.message, /too large/);
});

test('unknown path: 404 JSON; wrong method: 405 JSON with Allow', async () => {
  const r = await fetch(`${router.url}/v1/nothing`);
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error.type, 'not_found_error');
  const m = await fetch(`${router.url}/v1/chat/completions`);
  assert.equal(m.status, 405);
  assert.equal(m.headers.get('allow'), 'POST');
  assert.equal((await m.json()).error.code, 'method_not_allowed');
});

const reqBody = '{"model":"m","messages":[{"role":"user","content":"x"}]}';

test('Content-Length and Transfer-Encoding together: 400 and the connection closes', async () => {
  const r = await rawRequest(router.port,
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: ${reqBody.length}\r\n` +
    `Transfer-Encoding: chunked\r\n\r\n${reqBody.length.toString(16)}\r\n${reqBody}\r\n0\r\n\r\n`);
  assert.match(r.data, /^HTTP\/1\.1 400 /);
  assert.ok(r.closed);
  assert.equal((r.data.match(/HTTP\/1\.1/g) || []).length, 1, 'the smuggled request is not served');
});

test('duplicate Content-Length: 400 and close', async () => {
  const r = await rawRequest(router.port,
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: ${reqBody.length}\r\n` +
    `Content-Length: 5\r\n\r\n${reqBody}`);
  assert.match(r.data, /^HTTP\/1\.1 400 /);
  assert.ok(r.closed);
});

test('header block over 64 KiB: 431', async () => {
  const r = await rawRequest(router.port,
    `GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70000)}\r\n\r\n`);
  assert.match(r.data, /^HTTP\/1\.1 431 /);
});

test('garbage instead of HTTP: 400, then close', async () => {
  const r = await rawRequest(router.port, '\x00\x01\x02 NOT HTTP AT ALL\r\n\r\n');
  assert.match(r.data, /^HTTP\/1\.1 400 /);
  assert.ok(r.closed);
});

test('a slow client is cut by the idle timeout (408, close)', async () => {
  const t0 = Date.now();
  const r = await rawRequest(router.port, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Len');
  assert.match(r.data, /^HTTP\/1\.1 408 /);
  assert.ok(r.closed);
  assert.ok(Date.now() - t0 < 3000 * slow);
});

test('an idle keep-alive connection is closed after idle_timeout', async () => {
  const closed = await new Promise((resolve) => {
    const s = net.connect(router.port, '127.0.0.1');
    const t = setTimeout(() => { s.destroy(); resolve(false); }, 5000 * slow);
    s.on('close', () => { clearTimeout(t); resolve(true); });
    s.on('error', () => {});
  });
  assert.ok(closed);
});

test('bad clients do not block others: requests still succeed during a stalled one', async () => {
  const stalled = net.connect(router.port, '127.0.0.1');
  stalled.on('error', () => {});
  stalled.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{');
  const ok = await Promise.all(Array.from({ length: 20 }, () => postJson(reqBody)));
  assert.ok(ok.every((r) => r.status === 200));
  stalled.destroy();
});
