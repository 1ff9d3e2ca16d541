// store_models.test.mjs: provider connections, models and assignments from the store serve
// requests on a running server (SPEC section 6, virtual-key proxy): added with the CLI while
// the server runs, a key's alias reaches the upstream with the decrypted key, its --tps
// limits it (429 limit_type key), other keys and the internal name cannot reach it, removing
// the connection stops it without a restart, a SIGHUP reload keeps it, and the provider
// secret appears in no log line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRouter, startMock, runCli, waitFor, MASTER_KEY, slow } from './lib/harness.mjs';

const SECRET = 'sk-upstream-STORED-plaintext-7311';
const ENV = { AIROUTER_SECRET: 'the e2e store secret key, from the environment' };

function config(db) {
  return `server:
  host: 127.0.0.1
  port: \${PORT}
  workers: 2
  master_key: "\${MASTER_KEY}"
  logging_level: debug
storage:
  database_url: sqlite://${db}
  key_cache_ttl: 200ms
  secret_key: "os.environ/AIROUTER_SECRET"
credentials:
  - name: local
    type: mock
models:
  - name: m
    credential: local
`;
}

function cliConfig(db) {
  const f = path.join(path.dirname(db), 'cli.yaml');
  fs.writeFileSync(f, `server:\n  master_key: x\nstorage:\n  database_url: sqlite://${db}\n` +
    '  secret_key: "os.environ/AIROUTER_SECRET"\n');
  return f;
}

async function cli(cfg, ...args) {
  const r = await runCli([...args, '--json', '-config', cfg], ENV);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out);
}

function chat(router, key, model) {
  return fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('store connections and assignments serve a key\'s alias, limited, private, removable at run time', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airouter-storemodels-'));
  const db = path.join(dir, 't.db');
  const cfg = cliConfig(db);
  const mock = await startMock();
  const k1 = await cli(cfg, 'key', 'create', '--name', 'one');
  const k2 = await cli(cfg, 'key', 'create', '--name', 'two');
  const router = await startRouter(config(db), { env: ENV });
  try {
    // nothing in the store yet: the alias means nothing
    assert.equal((await chat(router, k1.key, 'fast')).status, 404);

    const conn = await cli(cfg, 'connection', 'add', '--name', 'up', '--provider', 'openai',
      '--endpoint', `${mock.url}/v1`, '--api-key', SECRET);
    const model = await cli(cfg, 'model', 'add', '--conn-id', String(conn.id), '--name', 'mini',
      '--remote', 'gpt-4o-mini');
    await cli(cfg, 'assign', '--vkey-id', String(k1.id), '--model-id', String(model.id), '--alias',
      'fast', '--tps', '2');

    // within a few seconds the alias reaches the mock with the decrypted key
    const t0 = Date.now();
    await waitFor(async () => (await chat(router, k1.key, 'fast')).status === 200,
      { what: 'the alias served', timeoutMs: 5000 * slow });
    assert.ok(Date.now() - t0 < 4000 * slow, `took ${Date.now() - t0} ms`);
    const reqs = await mock.requests();
    const last = reqs[reqs.length - 1];
    assert.equal(last.headers.authorization, `Bearer ${SECRET}`);
    assert.equal(last.body.model, 'gpt-4o-mini');

    // --tps 2: a third request in the same second is refused
    await sleep(1100);
    const rs = await Promise.all([0, 1, 2].map(() => chat(router, k1.key, 'fast')));
    const codes = rs.map((r) => r.status).sort();
    assert.deepEqual(codes, [200, 200, 429]);
    const refused = rs.find((r) => r.status === 429);
    const err = (await refused.json()).error;
    assert.equal(err.limit_type, 'key');
    assert.match(err.message, /2 requests per second/);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);

    // another key, the master key, and the internal name reach nothing
    assert.equal((await chat(router, k2.key, 'fast')).status, 404);
    assert.equal((await chat(router, k2.key, 'store:up/mini')).status, 404);
    assert.equal((await chat(router, k2.key, 'store:up/gpt-4o')).status, 404);
    assert.equal((await chat(router, MASTER_KEY, 'store:up/mini')).status, 404);
    assert.equal((await chat(router, MASTER_KEY, 'auto')).status, 200); // the file's model only
    const list = await (await fetch(`${router.url}/v1/models`, {
      headers: { authorization: `Bearer ${MASTER_KEY}` } })).json();
    assert.ok(!JSON.stringify(list).includes('store:'), JSON.stringify(list));
    // the file's models still serve the key
    assert.equal((await chat(router, k1.key, 'm')).status, 200);

    // a change to keys alone rebuilds nothing
    await cli(cfg, 'key', 'create', '--name', 'three');
    await sleep(500);

    // a SIGHUP reload keeps the store's entries
    router.signal('SIGHUP');
    await waitFor(() => /configuration reloaded/.test(router.out), { what: 'reload' });
    await sleep(1100);
    assert.equal((await chat(router, k1.key, 'fast')).status, 200);

    // removing the connection stops the alias without a restart
    await cli(cfg, 'connection', 'remove', '--id', String(conn.id), '--force');
    await waitFor(async () => (await chat(router, k1.key, 'fast')).status === 404,
      { what: 'the alias gone', timeoutMs: 5000 * slow });
    assert.equal((await chat(router, k1.key, 'm')).status, 200);
  } finally {
    await router.stop();
    await mock.stop();
  }
  // applied twice: the model added (the connection alone serves nothing), the connection gone
  const applied = router.out.match(/store connections applied: \d+ connections, \d+ models/g);
  assert.deepEqual(applied, ['store connections applied: 1 connections, 1 models',
    'store connections applied: 0 connections, 0 models']);
  assert.ok(!router.out.includes(SECRET), 'the provider secret reached a log line');
});

test('a connection that cannot be decrypted is left out with one error naming it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airouter-storemodels-'));
  const db = path.join(dir, 't.db');
  const cfg = cliConfig(db);
  const mock = await startMock();
  const k = await cli(cfg, 'key', 'create', '--name', 'one');
  const conn = await cli(cfg, 'connection', 'add', '--name', 'up', '--provider', 'openai',
    '--endpoint', `${mock.url}/v1`, '--api-key', SECRET);
  const model = await cli(cfg, 'model', 'add', '--conn-id', String(conn.id), '--name', 'mini',
    '--remote', 'gpt-4o-mini');
  await cli(cfg, 'assign', '--vkey-id', String(k.id), '--model-id', String(model.id), '--alias',
    'fast');
  // the server has another secret_key: it cannot open the stored key
  const router = await startRouter(config(db), { env: { AIROUTER_SECRET: 'a different key' } });
  try {
    assert.equal((await chat(router, k.key, 'm')).status, 200);
    assert.equal((await chat(router, k.key, 'fast')).status, 404);
  } finally {
    await router.stop();
    await mock.stop();
  }
  const lines = router.out.split('\n').filter((l) => /connection 'up' is not served/.test(l));
  assert.equal(lines.length, 1, router.out);
  assert.ok(!router.out.includes(SECRET));
});
