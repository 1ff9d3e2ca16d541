// The command line and config errors: `config check`, FILE:LINE messages, exit codes,
// and an invalid config never starting a server. Config keys do what they say: the upstream
// pool keys are applied (seen through a TCP relay that counts airouter's connections), a key
// libcurl cannot honour is refused, and keys nothing reads yet are reported as warnings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import {
  runCli, writeConfig, repo, startMock, startRouter, baseConfig, waitFor, MASTER_KEY,
} from './lib/harness.mjs';

const good = `server:
  master_key: sk-test-0123456789abcdef
credentials:
  - name: local
    type: mock
`;

test('config check: a valid file exits 0', async () => {
  const f = writeConfig(good);
  const r = await runCli(['config', 'check', '-config', f]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /configuration OK/);
});

test('config check: problems as FILE:LINE, exit 1', async () => {
  const f = writeConfig(`server:
  master_key: sk-test-0123456789abcdef
  prot: 8080
credentials:
  - name: local
    type: mock
models:
  - name: m
    credential: missing
`);
  const r = await runCli(['config', 'check', '--config', f]);
  assert.equal(r.code, 1);
  assert.ok(r.err.includes(`${f}:3: unknown key 'prot' in server`), r.err);
  assert.match(r.err, /did you mean 'port'/);
  assert.ok(r.err.includes(`${f}:9:`), r.err);
  assert.match(r.err, /no credential named 'missing'/);
});

test('serve with an invalid config exits 2 and prints FILE:LINE', async () => {
  const f = writeConfig(`server:
  master_key: "os.environ/AIROUTER_E2E_UNSET_VAR"
credentials:
  - name: local
    type: mock
`);
  const env = { ...process.env };
  delete env.AIROUTER_E2E_UNSET_VAR;
  const r = await runCli(['-config', f], env);
  assert.equal(r.code, 2);
  assert.ok(r.err.includes(`${f}:2:`), r.err);
  assert.match(r.err, /AIROUTER_E2E_UNSET_VAR/);
});

test('env substitution in both syntaxes', async () => {
  const f = writeConfig(`server:
  master_key: "os.environ/E2E_KEY"
  port: \${E2E_PORT}
credentials:
  - name: local
    type: mock
`);
  const r = await runCli(['config', 'check', '-config', f], { E2E_KEY: 'sk-abcdef0123456789', E2E_PORT: '9123' });
  assert.equal(r.code, 0, r.err);
});

test('the quickstart config is valid', async () => {
  const r = await runCli(['config', 'check', '-config', `${repo}/examples/config.yaml`], { MASTER_KEY: 'sk-quickstart-000000' });
  assert.equal(r.code, 0, r.err);
});

test('the example of docs/configuration.md is valid', async () => {
  const doc = fs.readFileSync(`${repo}/docs/configuration.md`, 'utf8');
  const example = doc.slice(doc.indexOf('## A complete example')).match(/```yaml\n([\s\S]*?)```/)[1];
  const env = { MASTER_KEY: 'sk-doc-0123456789', OPENAI_API_KEY: 'sk-o', ANTHROPIC_API_KEY: 'sk-a' };
  const r = await runCli(['config', 'check', '-config', writeConfig(example)], env);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, '', 'the example sets no key that is not used yet');
});

test('the benchmark configs are valid (placeholders filled as bench/lib.sh does)', async () => {
  const dir = `${repo}/bench/configs`;
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.yaml'))) {
    const text = fs.readFileSync(`${dir}/${name}`, 'utf8').replaceAll('@PORT@', '18080')
      .replaceAll('@MOCK_PORT@', '18081').replaceAll('@MASTER_KEY@', 'sk-bench-0123456789')
      .replaceAll('@WORKERS@', '2').replaceAll('@DB_URL@', 'postgresql://airouter@127.0.0.1:5432/postgres')
      .replaceAll('@REDIS_PORT@', '6379').replaceAll('@INSTANCES@', '3');
    const r = await runCli(['config', 'check', '-config', writeConfig(text, name)]);
    assert.equal(r.code, 0, `${name}: ${r.err}`);
  }
});

test('--version, --help, bad usage', async () => {
  assert.match((await runCli(['--version'])).out, /^airouter \d+\.\d+/);
  assert.match((await runCli(['--help'])).out, /config check/);
  const bad = await runCli(['--bogus']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /unknown argument/);
  const missing = await runCli(['-config', '/nonexistent/x.yaml']);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /nonexistent\/x\.yaml/);
});

// ---- the upstream pool keys are applied ----

// A TCP relay to the mock that counts the connections airouter opens and holds open.
async function relayTo(port) {
  const stats = { opened: 0, open: 0 };
  const socks = new Set();
  const server = net.createServer((c) => {
    stats.opened++;
    stats.open++;
    const u = net.connect({ port, host: '127.0.0.1' });
    socks.add(c).add(u);
    c.pipe(u);
    u.pipe(c);
    let done = false;
    const close = () => {
      if (done) return;
      done = true;
      stats.open--;
      c.destroy();
      u.destroy();
      socks.delete(c);
      socks.delete(u);
    };
    for (const s of [c, u]) { s.on('close', close); s.on('error', close); }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    stats,
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => { for (const s of socks) s.destroy(); return new Promise((r) => server.close(r)); },
  };
}

// One worker, so every request uses the same libcurl pool; a `models:` entry, so no model
// discovery connection is counted.
function poolConfig(relay, server) {
  return baseConfig({
    server,
    credentials: `  - name: up\n    type: openai\n    api_key: sk-up-0123456789\n    base_url: ${relay.url}`,
    models: '  - name: m\n    credential: up\n    model: mock-gpt-4o',
  }).replace('workers: 2', 'workers: 1');
}

async function ask(router, content = 'hi') {
  const r = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

// Lets a pooled connection sit idle past a 1 s idle_conn_timeout (libcurl counts whole
// seconds, so the wait is a time, not a condition).
const idleMoreThanOneSecond = () => new Promise((r) => setTimeout(r, 1300));

test('idle_conn_timeout: an upstream connection idle that long is not reused (also after SIGHUP)', async () => {
  const mock = await startMock();
  const relay = await relayTo(mock.port);
  try {
    const short = await startRouter(poolConfig(relay, '  idle_conn_timeout: 1s'));
    await ask(short);
    assert.equal(relay.stats.opened, 1);
    await idleMoreThanOneSecond();
    await ask(short);
    assert.equal(relay.stats.opened, 2, 'a connection idle past idle_conn_timeout was reused');
    // libcurl closes the stale one when it looks for a connection, so one stays open
    await waitFor(() => relay.stats.open === 1, { what: 'the stale connection closed' });
    await short.stop();

    // the default (120s) reuses the connection after the same pause ...
    relay.stats.opened = 0;
    const dflt = await startRouter(poolConfig(relay, ''));
    await ask(dflt);
    await idleMoreThanOneSecond();
    await ask(dflt);
    assert.equal(relay.stats.opened, 1);
    // ... and a reload to 1s applies to the pool of the running workers
    fs.writeFileSync(dflt.configFile, fs.readFileSync(dflt.configFile, 'utf8')
      .replace('workers: 1', 'workers: 1\n  idle_conn_timeout: 1s'));
    const from = dflt.out.length;
    dflt.signal('SIGHUP');
    await waitFor(() => dflt.out.indexOf('configuration reloaded', from) >= 0, { what: 'reload' });
    await ask(dflt);
    await idleMoreThanOneSecond();
    await ask(dflt);
    assert.equal(relay.stats.opened, 2, 'the reloaded idle_conn_timeout was not applied');
    await dflt.stop();
  } finally {
    await relay.close();
    await mock.stop();
  }
});

test('max_idle_conns: the pool keeps at most that many connections (0: none)', async () => {
  const mock = await startMock();
  const relay = await relayTo(mock.port);
  try {
    for (const [max, left] of [[1, 1], [0, 0]]) {
      relay.stats.opened = 0;
      const router = await startRouter(poolConfig(relay, `  max_idle_conns: ${max}`));
      // three requests at once need three HTTP/1.1 connections
      await Promise.all([1, 2, 3].map((i) => ask(router, `[mock latency=300ms] r${i}`)));
      assert.equal(relay.stats.opened, 3);
      await waitFor(() => relay.stats.open === left,
        { what: `${left} pooled connection(s) left, ${relay.stats.open} open` });
      await router.stop();
      await waitFor(() => relay.stats.open === 0, { what: 'connections closed at exit' });
    }
  } finally {
    await relay.close();
    await mock.stop();
  }
});

test('max_idle_conns counts idle connections: requests beyond it do not close in-use ones', async () => {
  // libcurl caps its whole pool, in use and idle together; with max_idle_conns as that cap,
  // a request that ended while another still ran lost its connection and the next request
  // paid a new connect (one per request under load).
  const mock = await startMock();
  const relay = await relayTo(mock.port);
  try {
    relay.stats.opened = 0;
    const router = await startRouter(poolConfig(relay, '  max_idle_conns: 1'));
    const slow = ask(router, '[mock latency=600ms] slow');
    await ask(router, '[mock latency=50ms] quick');
    assert.equal(relay.stats.opened, 2);
    await ask(router, 'next'); // the quick request's connection is idle, not closed
    assert.equal(relay.stats.opened, 2, 'the idle connection was closed while another was in use');
    await slow;
    await router.stop();
  } finally {
    await relay.close();
    await mock.stop();
  }
});

test('max_idle_conns_per_host (auto_ai_router sets it) is ignored with a FILE:LINE warning saying what to use instead', async () => {
  const f = writeConfig(`server:
  master_key: sk-test-0123456789abcdef
  max_idle_conns_per_host: 20
credentials:
  - name: local
    type: mock
`);
  const check = await runCli(['config', 'check', '-config', f]);
  assert.equal(check.code, 0, check.err);
  assert.ok(check.err.includes(`${f}:3: server.max_idle_conns_per_host: ignored (`), check.err);
  assert.match(check.err, /no per-host limit/);
  assert.match(check.err, /size the pool with server\.max_idle_conns/);
});

// litellm_db's pool sizes are read (no warning); a mock credential's api_key is not
const notUsedYet = `server:
  master_key: sk-test-0123456789abcdef
storage:
  database_url: "sqlite://./keys.db"
  redis_url: ""
litellm_db:
  max_conns: 10
credentials:
  - name: local
    type: mock
    api_key: sk-unused-0123
`;

test('config check: keys nothing reads are warnings with FILE:LINE, not failures', async () => {
  const f = writeConfig(notUsedYet);
  const r = await runCli(['config', 'check', '-config', f]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /configuration OK \(1 credentials, 0 models, 1 warning\)/);
  const lines = r.err.trim().split('\n');
  assert.equal(lines.length, 1, r.err);
  assert.equal(lines[0], `warning: ${f}:11: credentials[0].api_key: not used by type mock`, r.err);
  // redis_url "" is the same as not set: no warning
  assert.ok(!r.err.includes('redis_url'), r.err);
  assert.ok(!r.err.includes('litellm_db.max_conns'), r.err);
});

test('serve: keys nothing reads are logged once each at start, and the server serves', async () => {
  const router = await startRouter(notUsedYet.replace('  master_key: sk-test-0123456789abcdef',
    `  host: 127.0.0.1\n  port: \${PORT}\n  workers: 1\n  master_key: "\${MASTER_KEY}"`));
  await waitFor(() => router.out.includes('airouter listening'), { what: 'start line' });
  const n = router.out.split(': credentials[0].api_key: not used by type mock').length - 1;
  assert.equal(n, 1, `credentials[0].api_key logged ${n} times:\n${router.out}`);
  assert.ok(router.out.includes(`${router.configFile}:14: credentials[0].api_key`), router.out);
  assert.ok(!router.out.includes('litellm_db.max_conns'), router.out);
  const r = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(r.status, 200);
  await router.stop();
});
