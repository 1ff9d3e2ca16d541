// Hostile clients (issue 7, items 5, 6 and 10): a request is authenticated when its head
// is complete, before any body byte is read or any body memory is reserved; body memory
// grows only as bytes arrive; a request head has an absolute deadline (header_timeout,
// 408) that dribbling bytes cannot extend; server.max_connections caps open client
// connections (refused ones get a 503 and are closed) and /health shows the count; and a
// port another process serves cannot be taken over (exit 1).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import {
  startRouter, baseConfig, rawRequest, runCli, writeConfig, waitFor, freePort, MASTER_KEY, slow,
} from './lib/harness.mjs';

const credentials = '  - name: local\n    type: mock\n';
const models = '  - name: m\n    credential: local\n';
const chatBody = '{"model":"m","messages":[{"role":"user","content":"hello"}]}';

// A raw keep-alive connection that reads whole responses (Content-Length framed, or a
// 1xx head alone) one at a time.
class Conn {
  constructor(port) {
    this.buf = Buffer.alloc(0);
    this.closed = false;
    this.waiters = [];
    this.s = net.connect({ port, host: '127.0.0.1' });
    this.s.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
    this.s.on('close', () => { this.closed = true; this.wake(); });
    this.s.on('error', () => {});
    this.connected = new Promise((resolve) => this.s.on('connect', resolve));
  }
  wake() { for (const w of this.waiters.splice(0)) w(); }
  write(s) { this.s.write(s); }
  destroy() { this.s.destroy(); }
  // The next response, or null when the connection closed (or ms passed) without one.
  async response(ms = 5000 * slow) {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = this.parse();
      if (r) return r;
      if (this.closed || Date.now() > deadline) return null;
      await new Promise((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }
  parse() {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const head = this.buf.subarray(0, end).toString('latin1');
    const status = Number(head.split(' ')[1]);
    const headers = {};
    for (const line of head.split('\r\n').slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const len = status < 200 ? 0 : Number(headers['content-length'] || 0);
    if (this.buf.length < end + 4 + len) return null;
    const body = this.buf.subarray(end + 4, end + 4 + len).toString();
    this.buf = this.buf.subarray(end + 4 + len);
    return { status, headers, body };
  }
  // Resolves true once the server closed the connection (within ms).
  async closedWithin(ms) {
    await waitFor(() => this.closed, { timeoutMs: ms, what: 'connection closed' }).catch(() => {});
    return this.closed;
  }
}

const head = (path, key, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
  (key === null ? '' : `Authorization: Bearer ${key}\r\n`) +
  `Content-Type: application/json\r\n${extra}`;

// The airouter process's memory figures from /proc (kB).
function procMem(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(s)[1]);
  return { rss: kb('VmRSS'), data: kb('VmData') };
}

let router;

before(async () => {
  router = await startRouter(baseConfig({ credentials, models }));
});

after(async () => { await router.stop(); });

test('a wrong or missing key is refused at the head, before the body is sent', async () => {
  for (const key of ['sk-wrong', null]) {
    const t0 = Date.now();
    // 50 MB declared, nothing of it sent: the answer must come without waiting for it
    const r = await rawRequest(router.port,
      head('/v1/chat/completions', key, 'Content-Length: 50000000\r\n\r\n'), { timeoutMs: 3000 * slow });
    assert.match(r.data, /^HTTP\/1\.1 401 /, `key ${key}: ${r.data}`);
    assert.match(r.data, /\r\nConnection: close\r\n/i);
    const body = JSON.parse(r.data.slice(r.data.indexOf('\r\n\r\n') + 4));
    assert.equal(body.error.type, 'authentication_error');
    assert.equal(body.error.code, key ? 'invalid_api_key' : 'missing_api_key');
    assert.ok(r.closed, 'the connection is closed after the refusal');
    assert.ok(Date.now() - t0 < 3000 * slow);
  }
});

test('refused at the head: Anthropic shape for /v1/messages, 404/405 for other paths', async () => {
  let r = await rawRequest(router.port,
    head('/v1/messages', 'sk-wrong', 'Content-Length: 1000000\r\n\r\n'), { timeoutMs: 3000 * slow });
  assert.match(r.data, /^HTTP\/1\.1 401 /);
  const body = JSON.parse(r.data.slice(r.data.indexOf('\r\n\r\n') + 4));
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'authentication_error');

  r = await rawRequest(router.port,
    head('/v1/nothing-here', MASTER_KEY, 'Content-Length: 1000000\r\n\r\n'), { timeoutMs: 3000 * slow });
  assert.match(r.data, /^HTTP\/1\.1 404 /);
  r = await rawRequest(router.port,
    head('/health', MASTER_KEY, 'Content-Length: 1000000\r\n\r\n'), { timeoutMs: 3000 * slow });
  assert.match(r.data, /^HTTP\/1\.1 405 /);
  assert.match(r.data, /\r\nAllow: GET\r\n/);
});

test('Expect: 100-continue with a bad key gets the 401 instead of 100 Continue', async () => {
  const c = new Conn(router.port);
  c.write(head('/v1/chat/completions', 'sk-wrong', 'Expect: 100-continue\r\nContent-Length: 10000000\r\n\r\n'));
  const r = await c.response(3000 * slow);
  assert.ok(r, 'an answer without sending the body');
  assert.equal(r.status, 401);
  assert.ok(await c.closedWithin(5000 * slow));

  // a good key gets 100 Continue, then the answer to the body
  const g = new Conn(router.port);
  g.write(head('/v1/chat/completions', MASTER_KEY,
    `Expect: 100-continue\r\nContent-Length: ${chatBody.length}\r\n\r\n`));
  const cont = await g.response();
  assert.equal(cont.status, 100);
  g.write(chatBody);
  const ok = await g.response();
  assert.equal(ok.status, 200);
  assert.equal(JSON.parse(ok.body).choices[0].message.content.includes('hello'), true);
  g.destroy();
});

test('one access line for a request refused at the head; a good request is served as before', async () => {
  const rid = `head-refusal-${Date.now()}`;
  const r = await rawRequest(router.port,
    head('/v1/chat/completions', 'sk-wrong', `x-request-id: ${rid}\r\nContent-Length: 5000000\r\n\r\n`),
    { timeoutMs: 3000 * slow });
  assert.match(r.data, /^HTTP\/1\.1 401 /);
  await waitFor(() => router.out.includes(rid), { what: 'the access line' });
  const lines = router.out.split('\n').filter((l) => l.includes(rid));
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0], /status=401/);

  // keep-alive requests with a body and a good key: answered, the connection stays open
  const c = new Conn(router.port);
  for (let i = 0; i < 3; i++) {
    c.write(head('/v1/chat/completions', MASTER_KEY, `Content-Length: ${chatBody.length}\r\n\r\n`) + chatBody);
    const a = await c.response();
    assert.equal(a.status, 200);
    assert.equal(a.headers.connection, undefined);
  }
  // a bodyless request with a bad key keeps today's answer and keeps the connection
  c.write('GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-wrong\r\n\r\n');
  const m = await c.response();
  assert.equal(m.status, 401);
  c.write(`GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MASTER_KEY}\r\n\r\n`);
  assert.equal((await c.response()).status, 200);
  c.destroy();
});

test('declared Content-Length is not reserved: 20 x 100 MB heads cost far less than 2 GB', async (t) => {
  const pid = router.child.pid;
  const base = procMem(pid);
  const conns = [];
  for (let i = 0; i < 20; i++) {
    const c = new Conn(router.port);
    // 100 Continue proves the server has parsed the head and set up the body
    c.write(head('/v1/chat/completions', MASTER_KEY,
      'Expect: 100-continue\r\nContent-Length: 104857600\r\n\r\n'));
    conns.push(c);
  }
  for (const c of conns) assert.equal((await c.response()).status, 100);
  // and a little of each body
  for (const c of conns) c.write('{"model":"m","messages":[');
  const now = procMem(pid);
  for (const c of conns) c.destroy();
  const grewMb = (now.data - base.data) / 1024;
  const rssMb = (now.rss - base.rss) / 1024;
  t.diagnostic(`VmData +${grewMb.toFixed(1)} MB, VmRSS +${rssMb.toFixed(1)} MB for 20 x 100 MB declared`);
  t.diagnostic(`VmData +${grewMb.toFixed(1)} MB, VmRSS +${rssMb.toFixed(1)} MB for 20 x 100 MB declared`);
  assert.ok(grewMb < 200, `VmData grew ${grewMb.toFixed(0)} MB for 2000 MB declared`);
  assert.ok(rssMb < 200, `VmRSS grew ${rssMb.toFixed(0)} MB`);
});

test('bodies larger than the first allocation arrive whole', async () => {
  // ~3 MB in many writes: the buffer grows as the bytes come
  const content = 'abcdefghij'.repeat(300000);
  const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] });
  const c = new Conn(router.port);
  c.write(head('/v1/chat/completions', MASTER_KEY, `Content-Length: ${body.length}\r\n\r\n`));
  for (let off = 0; off < body.length; off += 65536) c.write(body.slice(off, off + 65536));
  const r = await c.response(20000 * slow);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).choices[0].message.content.length >= content.length, true);
  c.destroy();
});

// `config check` on one server key's value: its exit code and stderr.
async function checkServerKey(line) {
  const f = writeConfig(`server:
  master_key: sk-test-0123456789abcdef
  ${line}
credentials:
${credentials}`);
  return { f, ...(await runCli(['config', 'check', '-config', f])) };
}

test('config: header_timeout takes a duration or -1; anything else is FILE:LINE', async () => {
  for (const bad of ['header_timeout: soon', 'header_timeout: 0', 'header_timeout: -2']) {
    const r = await checkServerKey(bad);
    assert.equal(r.code, 1, bad);
    assert.ok(r.err.includes(`${r.f}:3:`), r.err);
    assert.match(r.err, /header_timeout/);
  }
  for (const good of ['header_timeout: -1', 'header_timeout: 250ms', 'header_timeout: 30s'])
    assert.equal((await checkServerKey(good)).code, 0, good);
});

test('config: max_connections takes a count, 0 or -1; anything else is FILE:LINE', async () => {
  for (const bad of ['max_connections: -5', 'max_connections: many', 'max_connections: 1.5']) {
    const r = await checkServerKey(bad);
    assert.equal(r.code, 1, bad);
    assert.ok(r.err.includes(`${r.f}:3:`), r.err);
    assert.match(r.err, /max_connections/);
  }
  for (const good of ['max_connections: -1', 'max_connections: 0', 'max_connections: 5000'])
    assert.equal((await checkServerKey(good)).code, 0, good);
});

// ---- header_timeout ----

test('header_timeout: a client dribbling its head gets 408; a slow but timely one is served', async () => {
  const r2 = await startRouter(baseConfig({
    credentials, models, server: '  header_timeout: 1s\n  idle_timeout: 3s\n',
  }));
  try {
    // one header byte every 100 ms, far inside idle_timeout: today that lasts forever
    const c = new Conn(r2.port);
    await c.connected;
    const t0 = Date.now();
    const req = head('/v1/chat/completions', MASTER_KEY) + 'X-Pad: ' + 'a'.repeat(1000);
    let i = 0;
    const drip = setInterval(() => { if (i < req.length && !c.closed) c.write(req[i++]); }, 100);
    const r = await c.response(6000 * slow);
    clearInterval(drip);
    const dt = Date.now() - t0;
    assert.ok(r, 'an answer while still dribbling');
    assert.equal(r.status, 408);
    assert.equal(r.headers.connection, 'close');
    assert.equal(JSON.parse(r.body).error.type, 'invalid_request_error');
    assert.ok(dt >= 900 && dt < 3000 * slow, `408 after ${dt} ms`);
    assert.ok(await c.closedWithin(5000 * slow));

    // the whole head in three pieces over ~500 ms: inside the deadline
    const g = new Conn(r2.port);
    const full = head('/v1/chat/completions', MASTER_KEY, `Content-Length: ${chatBody.length}\r\n\r\n`);
    const third = Math.floor(full.length / 3);
    g.write(full.slice(0, third));
    await new Promise((resolve) => setTimeout(resolve, 250));
    g.write(full.slice(third, 2 * third));
    await new Promise((resolve) => setTimeout(resolve, 250));
    g.write(full.slice(2 * third) + chatBody);
    assert.equal((await g.response()).status, 200);

    // idle between requests longer than header_timeout: idle_timeout governs, not it
    await new Promise((resolve) => setTimeout(resolve, 1500));
    g.write(full + chatBody);
    const again = await g.response();
    assert.ok(again, 'the keep-alive connection is still open');
    assert.equal(again.status, 200);
    g.destroy();

    // a connection that never sends a byte is closed once header_timeout passes
    const idle = new Conn(r2.port);
    await idle.connected;
    const t1 = Date.now();
    assert.ok(await idle.closedWithin(6000 * slow));
    assert.ok(Date.now() - t1 < 2900, 'closed by header_timeout, before idle_timeout');
  } finally {
    await r2.stop();
  }
});

test('header_timeout is applied by a reload (SIGHUP)', async () => {
  const yaml = (t) => baseConfig({ credentials, models, server: `  header_timeout: ${t}\n  idle_timeout: 5s\n` });
  const r2 = await startRouter(yaml('10s'));
  try {
    fs.writeFileSync(r2.configFile, yaml('500ms').replaceAll('${PORT}', String(r2.port))
      .replaceAll('${MASTER_KEY}', MASTER_KEY));
    const from = r2.out.length;
    r2.signal('SIGHUP');
    await waitFor(() => r2.out.indexOf('configuration reloaded', from) >= 0, { what: 'reload' });
    const t0 = Date.now();
    const r = await rawRequest(r2.port, 'GET /v1/models HTTP/1.1\r\nHost: x\r\n', { timeoutMs: 4000 * slow });
    assert.match(r.data, /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - t0 < 3000 * slow);
  } finally {
    await r2.stop();
  }
});

// ---- max_connections ----

test('max_connections: the connection over the limit gets 503 and is closed; /health counts', async () => {
  const r2 = await startRouter(baseConfig({ credentials, models, server: '  max_connections: 3\n' }));
  try {
    const get = (c, path) => {
      c.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MASTER_KEY}\r\n\r\n`);
      return c.response();
    };
    // the harness's readiness probe is a connection too: wait until only ours is open
    const h = new Conn(r2.port);
    await waitFor(async () => JSON.parse((await get(h, '/health')).body).connections.open === 1,
      { what: 'only the /health connection open' });
    const a = new Conn(r2.port);
    const b = new Conn(r2.port);
    assert.equal((await get(a, '/v1/models')).status, 200);
    assert.equal((await get(b, '/v1/models')).status, 200);
    const health = await get(h, '/health');
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body).connections, { open: 3, max: 3 });

    // the fourth: a 503 JSON answer with Connection: close, never half-served
    const d = new Conn(r2.port);
    const refused = await get(d, '/v1/models');
    assert.ok(refused, 'the refused connection gets an answer');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.connection, 'close');
    assert.equal(JSON.parse(refused.body).error.code, 'too_many_connections');
    assert.ok(await d.closedWithin(5000 * slow));

    // /vhealth and /metrics say so too
    const v = await get(h, '/vhealth');
    assert.match(v.body, /3 of 3 client connections/);
    const m = await get(h, '/metrics');
    assert.match(m.body, /^airouter_client_connections 3$/m);
    assert.match(m.body, /^airouter_client_connections_max 3$/m);

    // closing one makes room again
    a.destroy();
    await waitFor(async () => JSON.parse((await get(h, '/health')).body).connections.open === 2,
      { what: 'open connections back to 2' });
    const e = new Conn(r2.port);
    assert.equal((await get(e, '/v1/models')).status, 200);
    for (const c of [b, h, e]) c.destroy();
  } finally {
    await r2.stop();
  }
});

test('max_connections 0 is sized from the fd limit; /health shows it', async () => {
  const r = await fetch(`${router.url}/health`);
  const { connections } = await r.json();
  assert.ok(connections.open >= 1);
  assert.ok(connections.max > 100, `max ${connections.max}`);
});

// ---- one port, one instance ----

// The exit of an airouter expected to refuse to start, or null if it is still running
// after a few seconds (then it is stopped).
async function exitOf(p) {
  const e = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r(null), 5000 * slow))]);
  if (!e) await p.stop({ expectCode: null });
  return e;
}

test('a second airouter on a port another airouter serves exits 1 naming host:port', async () => {
  const yaml = baseConfig({ credentials, models }).replaceAll('${PORT}', String(router.port));
  const second = await startRouter(yaml, { expectReady: false });
  const e = await exitOf(second);
  assert.ok(e, `the second airouter started on port ${router.port}: ${second.out}`);
  assert.equal(e.code, 1, second.out);
  assert.ok(second.out.includes(`127.0.0.1:${router.port}`), second.out);
  assert.match(second.out, /in use/);
  // the first one still serves every request
  for (let i = 0; i < 10; i++) assert.equal((await fetch(`${router.url}/health`)).status, 200);
});

test('a port held by another program: exit 1 naming host:port', async () => {
  const port = await freePort();
  const other = net.createServer(() => {});
  await new Promise((resolve) => other.listen(port, '127.0.0.1', resolve));
  try {
    const yaml = baseConfig({ credentials, models }).replaceAll('${PORT}', String(port));
    const p = await startRouter(yaml, { expectReady: false });
    const e = await exitOf(p);
    assert.ok(e, `airouter started on a port in use: ${p.out}`);
    assert.equal(e.code, 1, p.out);
    assert.ok(p.out.includes(`127.0.0.1:${port}`), p.out);
    assert.match(p.out, /in use/);
  } finally {
    other.close();
  }
});
