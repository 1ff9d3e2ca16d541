// Shutdown and reload (SPEC sections 1 and 9): SIGTERM/SIGINT drain (running requests
// finish, listeners close, requests arriving on open connections get 503, the rest is
// cancelled after shutdown_timeout, exit 0), and SIGHUP reload (new config for new
// requests, connections kept, invalid files rejected with FILE:LINE, limits and bans of
// unchanged credentials kept, no failed request under load).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startMock, startRouter, baseConfig, waitFor, MASTER_KEY, slow } from './lib/harness.mjs';

let mock;

before(async () => { mock = await startMock(); });

const CANCEL_BODY = '{"statusCode":503,"message":"Request cancelled: server is shutting down","error":"Service Unavailable"}';

// ---- helpers ----

function config({ server = '', headers = '', models = '', cred = '', extra = '' } = {}) {
  return baseConfig({
    server,
    credentials: `
  - name: up
    type: openai
    api_key: sk-lifecycle-up-0123456789
    base_url: ${mock.url}
${cred}${headers ? `    headers:\n${headers}` : ''}`,
    models: `  - name: gpt-4o\n    credential: up\n${models}`,
    extra,
  });
}

// Rewrites the running router's config file (same ${PORT}/${MASTER_KEY} substitution
// as startRouter does).
function rewrite(router, yaml) {
  fs.writeFileSync(router.configFile,
    yaml.replaceAll('${PORT}', String(router.port)).replaceAll('${MASTER_KEY}', MASTER_KEY));
}

// Sends SIGHUP and waits until the router logged the outcome (reloaded or rejected).
async function reload(router, { expect = 'configuration reloaded' } = {}) {
  const from = router.out.length;
  router.signal('SIGHUP');
  await waitFor(() => router.out.indexOf(expect, from) >= 0, { what: `log: ${expect}` });
}

function client(router) {
  return new OpenAI({ apiKey: MASTER_KEY, baseURL: `${router.url}/v1`, maxRetries: 0, timeout: 30000 * slow });
}

const chat = (router, content, model = 'gpt-4o') =>
  client(router).chat.completions.create({ model, messages: [{ role: 'user', content }] });

function chatRequest(content, { model = 'gpt-4o', stream = false } = {}) {
  const body = JSON.stringify({ model, stream, messages: [{ role: 'user', content }] });
  return `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${MASTER_KEY}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

// Resolves 'connected' or the connect error code (ECONNREFUSED once listeners are closed).
function tryConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('connect', () => { s.destroy(); resolve('connected'); });
    s.on('error', (e) => resolve(e.code));
  });
}

// One client TCP connection speaking HTTP/1.1 by hand: requests are written as given,
// responses parsed (Content-Length or chunked) in order, so keep-alive reuse is explicit.
class RawConn {
  constructor(port) {
    this.buf = Buffer.alloc(0);
    this.closed = false;
    this.sock = net.connect({ port, host: '127.0.0.1' });
    this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); });
    this.sock.on('close', () => { this.closed = true; });
    this.sock.on('error', (e) => { this.error = e; });
    this.ready = new Promise((resolve, reject) => {
      this.sock.once('connect', resolve);
      this.sock.once('error', reject);
    });
  }

  send(text) { return new Promise((resolve) => this.sock.write(text, resolve)); }

  // Parses one complete response at the head of the buffer, or returns null.
  parse() {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const head = this.buf.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(head[0].split(' ')[1]);
    const headers = {};
    for (const h of head.slice(1)) {
      const i = h.indexOf(':');
      headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
    }
    let pos = end + 4;
    let body;
    if (headers['transfer-encoding'] === 'chunked') {
      const parts = [];
      for (;;) {
        const eol = this.buf.indexOf('\r\n', pos);
        if (eol < 0) return null;
        const n = parseInt(this.buf.subarray(pos, eol).toString('latin1'), 16);
        if (this.buf.length < eol + 2 + n + 2) return null;
        parts.push(this.buf.subarray(eol + 2, eol + 2 + n));
        pos = eol + 2 + n + 2;
        if (n === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      const n = Number(headers['content-length'] || 0);
      if (this.buf.length < pos + n) return null;
      body = this.buf.subarray(pos, pos + n);
      pos += n;
    }
    this.buf = this.buf.subarray(pos);
    return { status, headers, body: body.toString('utf8') };
  }

  // The next response, or { closed: true } when the server closed the connection first.
  async response({ timeoutMs = 10000 * slow } = {}) {
    return waitFor(() => this.parse() || (this.closed && { closed: true, rest: this.buf.toString('latin1') }),
      { timeoutMs, what: 'an HTTP response on the raw connection' });
  }

  close() { this.sock.destroy(); }
}

// Marks when a promise settles, to assert that a request was still running at some point.
function tracked(promise) {
  const t = { done: false };
  t.promise = promise.finally(() => { t.done = true; });
  return t;
}

// Shuts the router down with `sig` while one request (upstream latency 1 s) runs:
// it completes, new connections are refused meanwhile, exit 0 right after it.
async function drainWithRequestInFlight(sig) {
  const router = await startRouter(config({ server: '  shutdown_timeout: 5s\n' }));
  await mock.clear();
  let doneAt = 0;
  const inFlight = chat(router, `${sig} in flight [mock latency=1s]`).then((r) => { doneAt = performance.now(); return r; });
  await waitFor(async () => (await mock.requests()).length === 1, { what: 'the request to reach the upstream' });
  const signalledAt = performance.now();
  router.signal(sig);
  await waitFor(async () => (await tryConnect(router.port)) === 'ECONNREFUSED', { what: 'listener closed' });
  assert.equal(doneAt, 0, 'the listener closed while the request was still running');
  assert.ok(router.alive, 'the process waits for the running request');
  const r = await inFlight;
  assert.equal(r.choices[0].message.content, `echo: ${sig} in flight`);
  const e = await router.exited;
  const exitedAt = performance.now();
  assert.equal(e.code, 0, router.out);
  assert.ok(exitedAt - doneAt < 1000 * slow, `exit ${Math.round(exitedAt - doneAt)} ms after the request ended`);
  assert.ok(exitedAt - signalledAt < 3500 * slow, 'exit long before shutdown_timeout (5 s)');
  await router.stop();
}

// ---- shutdown ----

test('SIGTERM: the running request completes, new connections are refused, exit 0 soon after', async () => {
  await drainWithRequestInFlight('SIGTERM');
});

test('SIGINT behaves like SIGTERM', async () => {
  await drainWithRequestInFlight('SIGINT');
});

test('SIGTERM: a request arriving on an open keep-alive connection gets 503', async () => {
  const router = await startRouter(config({ server: '  shutdown_timeout: 5s\n' }));
  await mock.clear();
  const conn = new RawConn(router.port);
  await conn.ready;
  conn.send(chatRequest('first'));
  const first = await conn.response();
  assert.equal(first.status, 200);
  assert.notEqual(first.headers.connection, 'close');
  // a slow request on another connection keeps the drain going
  const slowReq = tracked(chat(router, 'keeps the drain open [mock latency=1500ms]'));
  await waitFor(async () => (await mock.requests()).length === 2, { what: 'the slow request upstream' });
  router.signal('SIGTERM');
  await waitFor(async () => (await tryConnect(router.port)) === 'ECONNREFUSED', { what: 'listener closed' });
  const closedBeforeSend = conn.closed;
  await conn.send(chatRequest('after SIGTERM'));
  const second = await conn.response();
  assert.ok(!slowReq.done, 'the drain was still running');
  assert.ok(!closedBeforeSend, 'the idle keep-alive connection was closed by the drain before any request was sent');
  assert.equal(second.closed, undefined, `the keep-alive connection was closed instead of answering 503 (${second.rest ?? ''})`);
  assert.equal(second.status, 503);
  assert.equal(second.headers.connection, 'close');
  assert.equal((await mock.requests()).length, 2, 'the 503 request never went upstream');
  assert.equal((await slowReq.promise).choices[0].message.content, 'echo: keeps the drain open');
  conn.close();
  assert.equal((await router.exited).code, 0);
  await router.stop();
});

test('SIGTERM: a request already being sent on a connection is completed with 503', async () => {
  // one worker, so a round trip on another connection proves the partial bytes were read
  const router = await startRouter(config({ server: '  shutdown_timeout: 5s\n' }).replace('  workers: 2\n', '  workers: 1\n'));
  await mock.clear();
  const conn = new RawConn(router.port);
  await conn.ready;
  conn.send(chatRequest('accepted first'));
  assert.equal((await conn.response()).status, 200);
  const slowReq = tracked(chat(router, 'keeps the drain open [mock latency=1500ms]'));
  await waitFor(async () => (await mock.requests()).length === 2, { what: 'the slow request upstream' });
  const req = chatRequest('half sent');
  const cut = req.indexOf('\r\n\r\n') + 4;
  await conn.send(req.slice(0, cut)); // the head only, the body after SIGTERM
  assert.equal((await fetch(`${router.url}/health`)).status, 200);
  router.signal('SIGTERM');
  await waitFor(async () => (await tryConnect(router.port)) === 'ECONNREFUSED', { what: 'listener closed' });
  await conn.send(req.slice(cut));
  const r = await conn.response();
  assert.equal(r.closed, undefined, `connection closed without an answer (${r.rest ?? ''})\n${router.out}`);
  assert.equal(r.status, 503);
  assert.equal(r.headers.connection, 'close');
  assert.match(JSON.parse(r.body).error.message, /shutting down/);
  assert.ok(!slowReq.done, 'the drain was still running');
  assert.equal((await mock.requests()).length, 2, 'the 503 request never went upstream');
  assert.equal((await slowReq.promise).choices[0].message.content, 'echo: keeps the drain open');
  assert.equal((await router.exited).code, 0);
  await router.stop();
});

test('past shutdown_timeout: 503 cancellation body, SSE error event on a started stream, exit 0', async () => {
  // One worker and a first request before the two concurrent ones: on a cold upstream
  // pool the second concurrent request would wait for the first one's answer (reported
  // separately: CURLOPT_PIPEWAIT on plain http://).
  const router = await startRouter(config({ server: '  shutdown_timeout: 300ms\n' }).replace('  workers: 2\n', '  workers: 1\n'));
  await chat(router, 'warm-up');
  await mock.clear();
  const post = (body) => fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const whole = post({ model: 'gpt-4o', messages: [{ role: 'user', content: 'slow [mock latency=5s]' }] })
    .then(async (r) => ({ status: r.status, type: r.headers.get('content-type'), body: await r.text() }));
  await waitFor(async () => (await mock.requests()).length === 1, { what: 'the slow request upstream' });
  const streamRes = await post({
    model: 'gpt-4o', stream: true,
    messages: [{ role: 'user', content: 'a slow stream of many words [mock chunks=40 chunk_delay=250ms]' }],
  });
  assert.equal(streamRes.status, 200);
  const reader = streamRes.body.getReader();
  const dec = new TextDecoder();
  let sse = '';
  const readMore = async () => {
    const { value, done } = await reader.read();
    if (done) return false;
    sse += dec.decode(value, { stream: true });
    return true;
  };
  while (!/"content":"[^"]+"/.test(sse)) assert.ok(await readMore(), 'stream ended before any content');
  assert.equal((await mock.requests()).length, 2);

  const signalledAt = performance.now();
  router.signal('SIGTERM');
  while (await readMore());
  const streamEndedAt = performance.now();
  const w = await whole;
  const wholeEndedAt = performance.now();

  assert.equal(w.status, 503, router.out);
  assert.match(w.type, /application\/json/);
  assert.equal(w.body, CANCEL_BODY);
  const events = sse.split('\n\n').filter((e) => e.startsWith('data: '));
  const last = events.at(-1).slice(6);
  assert.notEqual(last, '[DONE]', 'a cancelled stream does not end with [DONE]');
  const err = JSON.parse(last).error;
  assert.ok(err, `the last event is an error event: ${last}`);
  assert.match(err.message, /shutting down/);
  assert.ok(events.length >= 3, 'chunks were delivered before the error event');
  for (const t of [streamEndedAt, wholeEndedAt])
    assert.ok(t - signalledAt < 2500 * slow, `cancelled ${Math.round(t - signalledAt)} ms after SIGTERM (timeout 300 ms)`);
  const e = await router.exited;
  assert.equal(e.code, 0, router.out);
  await router.stop();
});

// Signal handlers are installed before the port opens: a signal right after it opens must
// drain, never take the default action (a regression fails about one start in eight, so
// it is tried several times).
test('a signal right after the port opens is handled (SIGTERM exits 0)', async () => {
  for (let i = 0; i < 15; i++) {
    const router = await startRouter(baseConfig({ credentials: '  - name: local\n    type: mock\n' }));
    router.signal('SIGTERM');
    const e = await router.exited;
    assert.deepEqual(e, { code: 0, sig: null }, `start ${i + 1}: killed by the signal`);
  }
});

// ---- reload ----

test('SIGHUP: new config for new requests, keep-alive connections and running requests survive', async () => {
  const router = await startRouter(config({ headers: '      X-Team: blue\n' }));
  await mock.clear();
  const conn = new RawConn(router.port);
  await conn.ready;
  conn.send(chatRequest('before reload'));
  assert.equal((await conn.response()).status, 200);
  await assert.rejects(chat(router, 'x', 'gpt-new'), (e) => e.status === 404 || e.status === 400);

  const running = tracked(chat(router, 'during reload [mock latency=1s]'));
  await waitFor(async () => (await mock.requests()).some((r) => r.body?.messages?.[0]?.content?.startsWith('during')),
    { what: 'the running request upstream' });

  rewrite(router, config({
    headers: '      X-Team: green\n',
    models: '  - name: gpt-new\n    credential: up\n    model: mock-gpt-4o-mini\n',
  }));
  await reload(router);
  assert.ok(!running.done, 'the reload happened while the request was running');
  const r = await waitFor(() => chat(router, 'new model', 'gpt-new').catch(() => null), { what: 'gpt-new to answer' });
  assert.equal(r.choices[0].message.content, 'echo: new model');

  assert.equal((await running.promise).choices[0].message.content, 'echo: during reload');
  // the connection opened before the reload is still open and served by the new config
  conn.send(chatRequest('same socket after reload', { model: 'gpt-new' }));
  const again = await conn.response();
  assert.equal(again.closed, undefined, 'the keep-alive connection survived the reload');
  assert.equal(again.status, 200);
  assert.equal(JSON.parse(again.body).choices[0].message.content, 'echo: same socket after reload');

  const reqs = await mock.requests();
  const team = (prefix) => reqs.find((q) => q.body?.messages?.[0]?.content?.startsWith(prefix)).headers['x-team'];
  assert.equal(team('before reload'), 'blue');
  assert.equal(team('during reload'), 'blue', 'the running request kept the config it started with');
  assert.equal(team('new model'), 'green');
  assert.equal(team('same socket'), 'green');
  assert.equal(reqs.find((q) => q.body?.messages?.[0]?.content === 'new model').body.model, 'mock-gpt-4o-mini');
  conn.close();
  await router.stop();
});

test('SIGHUP with an invalid file: FILE:LINE in the log, the old config keeps serving', async () => {
  const router = await startRouter(config());
  await chat(router, 'up and running'); // see the signal-window test below
  const good = config();
  const bad = good.replace('  logging_level: info\n', '  logging_level: info\n  prot: 8080\n');
  const line = bad.split('\n').indexOf('  prot: 8080') + 1;
  rewrite(router, bad);
  await reload(router, { expect: 'reload rejected' });
  assert.ok(router.out.includes(`${router.configFile}:${line}:`), router.out.slice(-2000));
  assert.match(router.out, /unknown key 'prot'/);
  assert.ok(router.alive);
  assert.equal((await chat(router, 'still here')).choices[0].message.content, 'echo: still here');
  // a good file afterwards is taken again
  rewrite(router, config({ models: '  - name: gpt-later\n    credential: up\n' }));
  await reload(router);
  assert.equal((await chat(router, 'later', 'gpt-later')).choices[0].message.content, 'echo: later');
  await router.stop();
});

test('SIGHUP keeps the RPM window of an unchanged credential', async () => {
  const yaml = (models = '') => config({ cred: '    rpm: 2\n', models });
  const router = await startRouter(yaml());
  await chat(router, 'one');
  await chat(router, 'two');
  await assert.rejects(chat(router, 'three'), (e) => e.status === 429, 'rpm 2 is reached before the reload');
  rewrite(router, yaml('  - name: gpt-other\n    credential: up\n'));
  await reload(router);
  await assert.rejects(chat(router, 'after reload'), (e) => e.status === 429, 'still limited after the reload');
  await assert.rejects(chat(router, 'other model', 'gpt-other'), (e) => e.status === 429, 'the credential is what is limited');
  await router.stop();
});

test('SIGHUP keeps the ban of an unchanged credential', async () => {
  const creds = `
  - name: cred_a
    type: openai
    api_key: sk-lifecycle-cred-a-000000
    base_url: ${mock.url}
  - name: cred_b
    type: openai
    api_key: sk-lifecycle-cred-b-000000
    base_url: ${mock.url}
`;
  const yaml = (more = '') => baseConfig({
    credentials: creds,
    models: `  - name: gpt-4o\n    credential: cred_a\n  - name: gpt-4o\n    credential: cred_b\n${more}`,
    extra: 'fail2ban:\n  max_attempts: 1\n  ban_duration: permanent\n  error_codes: [500]\n',
  });
  const router = await startRouter(yaml());
  await mock.clear();
  await mock.queue([{ status: 500 }], 'sk-lifecycle-cred-a-000000');
  // round robin: one of the first two requests tries cred_a, fails over to cred_b
  const first = [await chat(router, 'r1'), await chat(router, 'r2')];
  assert.ok(first.some((r) => r._router.attempts === 2 && r._router.errors[0].credential === 'cred_a'),
    JSON.stringify(first.map((r) => r._router)));
  rewrite(router, yaml('  - name: gpt-extra\n    credential: cred_b\n'));
  await reload(router);
  await mock.clear();
  for (let i = 0; i < 4; i++) {
    const r = await chat(router, `after reload ${i}`);
    assert.equal(r._router.credential, 'cred_b');
    assert.equal(r._router.attempts, 1);
  }
  const keys = (await mock.requests()).map((q) => q.headers.authorization);
  assert.ok(keys.every((k) => k === 'Bearer sk-lifecycle-cred-b-000000'), 'banned cred_a got no request after the reload');
  await router.stop();
});

test('SIGHUP under load: no socket error, no non-2xx response', async (t) => {
  if (spawnSync('wrk', ['--version']).error) { t.skip('wrk is not installed'); return; }
  const router = await startRouter(config());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airouter-wrk-'));
  const script = path.join(dir, 'post.lua');
  fs.writeFileSync(script, `wrk.method = "POST"
wrk.body = '{"model":"gpt-4o","messages":[{"role":"user","content":"load"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${MASTER_KEY}"
`);
  const wrk = spawn('wrk', ['-t2', '-c16', '-d3s', '-s', script, `${router.url}/v1/chat/completions`]);
  let out = '';
  wrk.stdout.on('data', (d) => { out += d; });
  wrk.stderr.on('data', (d) => { out += d; });
  const done = new Promise((resolve) => wrk.on('exit', (code) => resolve(code)));
  let finished = false;
  done.then(() => { finished = true; });

  // reload back and forth while wrk runs, paced over its 3 s (one every 300 ms), each
  // one waited for in the log
  await waitFor(() => router.out.includes('request method=') || finished, { what: 'load to start' });
  const start = performance.now();
  let reloads = 0;
  while (!finished && reloads < 8) {
    const at = start + 300 * (reloads + 1);
    await waitFor(() => performance.now() >= at || finished, { what: 'the next reload time' });
    if (finished) break;
    rewrite(router, config({ headers: `      X-Reload: "${reloads}"\n`, models: reloads % 2 ? '' : '  - name: gpt-alt\n    credential: up\n' }));
    await reload(router);
    reloads++;
  }
  const code = await done;
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, out);
  assert.ok(reloads >= 3, `only ${reloads} reloads happened during the load`);
  const m = out.match(/(\d+) requests in/);
  assert.ok(m && Number(m[1]) > 100, out);
  assert.doesNotMatch(out, /Socket errors/, out);
  assert.doesNotMatch(out, /Non-2xx or 3xx responses/, out);
  await router.stop();
  if (process.env.E2E_VERBOSE) console.log(`${reloads} reloads during:\n${out}`);
});
