// The PostgreSQL store end to end: a throwaway server from tests/pg.sh (skipped when
// PostgreSQL is not installed), airouter started with storage.database_url
// postgresql://..., a key made with the CLI against the same database, requests with it,
// and the spend records in PostgreSQL itself (psql): every one there after a SIGTERM,
// after a kill -9 (the journal replays into PostgreSQL at the restart), counted once in
// usage_daily, and the key still valid after the restart. A server stopped or frozen
// (SIGSTOP) mid-load fails no request with a cached key and loses no record.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { startRouter, runCli, repo, waitFor, airouterBin, MASTER_KEY } from './lib/harness.mjs';

const pgScript = path.join(repo, 'tests', 'pg.sh');
const pgDir = path.join(os.tmpdir(), `airouter-e2e-pg-${process.pid}`);
let baseUrl = null;
let skipWhy = null;

before(() => {
  const r = spawnSync(pgScript, ['start', pgDir], { encoding: 'utf8' });
  if (r.status === 2) skipWhy = `PostgreSQL is not installed: ${r.stderr.trim()}`;
  else if (r.status !== 0) throw new Error(`tests/pg.sh start failed: ${r.stderr}`);
  else baseUrl = r.stdout.trim();
});

after(() => {
  spawnSync(pgScript, ['stop', pgDir]);
});

// A new database on the test server, and its URL.
function newDatabase(name) {
  psql(baseUrl, `CREATE DATABASE ${name}`);
  return baseUrl.replace(/\/[^/]*$/, `/${name}`);
}

function psql(url, query) {
  return execFileSync('psql', [url, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', query],
    { encoding: 'utf8' }).trim();
}

function config(url, storageExtra = '') {
  return `server:
  host: 127.0.0.1
  port: \${PORT}
  workers: 2
  master_key: "\${MASTER_KEY}"
storage:
  database_url: ${url}
  key_cache_ttl: 200ms
  spend_fsync_interval: 50ms
${storageExtra}credentials:
  - name: local
    type: mock
models:
  - name: m
    credential: local
`;
}

// Starts airouter again on the config file (and so the port and working directory) of one
// that was killed: with PostgreSQL the spend journal is ./airouter.spend of the working
// directory, and the restart must find it there to replay it.
async function restartIn(old) {
  const child = spawn(airouterBin, ['-config', old.configFile],
    { cwd: path.dirname(old.configFile), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  let exited = false;
  const done = new Promise((resolve) => child.on('exit', (code) => { exited = true; resolve(code); }));
  await waitFor(() => {
    if (exited) throw new Error(`airouter died: ${out}`);
    return new Promise((resolve) => {
      const s = net.connect(old.port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
  }, { what: 'airouter port after the restart' });
  return {
    url: old.url,
    stop: async () => { child.kill('SIGTERM'); assert.equal(await done, 0, out); },
  };
}

function chat(router, key, id) {
  return fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': id },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
  });
}

test('PostgreSQL store: CLI key, requests, every spend record in PostgreSQL across restarts', async (t) => {
  if (skipWhy) return t.skip(skipWhy);
  const url = newDatabase('e2e_spend');
  const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airouter-pg-cli-'));
  const cliCfg = path.join(cfgDir, 'cli.yaml');
  fs.writeFileSync(cliCfg, `server:\n  master_key: x\nstorage:\n  database_url: ${url}\n`);
  const made = await runCli(['key', 'create', '--name', 'pg-team', '--json', '-config', cliCfg]);
  assert.equal(made.code, 0, made.err);
  const k = JSON.parse(made.out);
  assert.equal(psql(url, `SELECT name FROM keys WHERE id = ${k.id}`), 'pg-team');
  const listed = await runCli(['key', 'list', '-config', cliCfg]);
  assert.equal(listed.code, 0, listed.err);
  assert.match(listed.out, /pg-team/);

  let router = await startRouter(config(url));
  const h = await (await fetch(`${router.url}/health`)).json();
  assert.equal(h.storage.type, 'postgresql');
  for (let i = 0; i < 5; i++) {
    const r = await chat(router, k.key, `pg-a-${i}`);
    assert.equal(r.status, 200, await r.text());
  }
  await router.stop(); // SIGTERM: the ledger is applied before exit
  assert.equal(psql(url, `SELECT COUNT(*) FROM spend WHERE key_id = ${k.id} AND status = 200`), '5');

  // a restart: the key still works, and a kill -9 loses no record of an answer that ended
  router = await startRouter(config(url));
  for (let i = 0; i < 3; i++) {
    const r = await chat(router, k.key, `pg-b-${i}`);
    assert.equal(r.status, 200, await r.text());
  }
  router.signal('SIGKILL');
  await router.exited;
  router = await restartIn(router); // replays the journal into PostgreSQL before it serves
  await waitFor(() => psql(url, `SELECT COUNT(*) FROM spend WHERE key_id = ${k.id}`) === '8',
    { what: '8 spend rows' });
  const ids = psql(url, 'SELECT request_id FROM spend ORDER BY request_id').split('\n');
  assert.deepEqual(ids, ['pg-a-0', 'pg-a-1', 'pg-a-2', 'pg-a-3', 'pg-a-4', 'pg-b-0', 'pg-b-1', 'pg-b-2']);
  // usage_daily counted each record once, replay included
  assert.equal(psql(url, `SELECT SUM(requests) FROM usage_daily WHERE key_id = ${k.id}`), '8');
  // the admin API reads the same ledger
  const spend = await (await fetch(`${router.url}/admin/spend?group_by=key`,
    { headers: { authorization: `Bearer ${MASTER_KEY}` } })).json();
  assert.ok(JSON.stringify(spend).includes('"requests":8'), JSON.stringify(spend));
  // revoked with the CLI: the running server refuses the key within key_cache_ttl
  const rv = await runCli(['key', 'revoke', '--key', String(k.id), '-config', cliCfg]);
  assert.equal(rv.code, 0, rv.err);
  await waitFor(async () => (await chat(router, k.key, 'pg-c')).status === 401, { what: 'revocation' });
  await router.stop();
  fs.rmSync(cfgDir, { recursive: true, force: true });
});

// A virtual key in a fresh database and a router on it, for the outage tests: wave(tag, n)
// sends n concurrent requests that must all be answered 200; settled() waits until each
// answered request is a spend row and usage_daily counts them all.
async function outageRig(name, storageExtra = '') {
  const url = newDatabase(`e2e_${name}`);
  const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), `airouter-pg-${name}-`));
  const cliCfg = path.join(cfgDir, 'cli.yaml');
  fs.writeFileSync(cliCfg, `server:\n  master_key: x\nstorage:\n  database_url: ${url}\n`);
  const made = await runCli(['key', 'create', '--name', name, '--json', '-config', cliCfg]);
  assert.equal(made.code, 0, made.err);
  const k = JSON.parse(made.out);
  const other = await runCli(['key', 'create', '--name', `${name}-unseen`, '--json', '-config', cliCfg]);
  assert.equal(other.code, 0, other.err);
  const router = await startRouter(config(url, storageExtra));
  let answered = 0;
  return {
    router,
    unseen: JSON.parse(other.out).key, // a valid key this router has not cached
    async wave(tag, n) {
      const rs = await Promise.all(Array.from({ length: n }, (_, i) => chat(router, k.key, `${tag}-${i}`)));
      for (const r of rs) assert.equal(r.status, 200, await r.text());
      answered += n;
    },
    async settled() {
      await waitFor(() => psql(url, `SELECT COUNT(*) FROM spend WHERE key_id = ${k.id} AND status = 200`) === String(answered),
        { what: `${answered} spend rows`, timeoutMs: 30000 });
      assert.equal(psql(url, `SELECT SUM(requests) FROM usage_daily WHERE key_id = ${k.id}`), String(answered));
      await router.stop();
      fs.rmSync(cfgDir, { recursive: true, force: true });
    },
  };
}

function pg(what) {
  const done = spawnSync(pgScript, [what, pgDir], { encoding: 'utf8' });
  assert.equal(done.status, 0, done.stderr);
}

test('PostgreSQL stopped mid-load: no request fails, no spend record is lost once it is back', async (t) => {
  if (skipWhy) return t.skip(skipWhy);
  const rig = await outageRig('outage');
  await rig.wave('before', 10); // the key is in the cache now
  pg('pause');
  try {
    await rig.wave('during', 20);
    await rig.wave('during2', 20);
  } finally {
    pg('resume');
  }
  await rig.wave('after', 10);
  await rig.settled();
});

test('PostgreSQL frozen mid-load (SIGSTOP): cached keys keep working, no spend record is lost', async (t) => {
  if (skipWhy) return t.skip(skipWhy);
  const rig = await outageRig('frozen', '  connect_timeout: 1s\n  query_timeout: 1s\n  max_conns: 3\n');
  await rig.wave('before', 10); // the key is in the cache now
  pg('freeze');
  try {
    await rig.wave('during', 20);
    // the ledger's apply gives up at the query timeout (the records stay in the journal)
    await waitFor(() => /timed out after 1000 ms/.test(rig.router.out), { what: 'a timed-out apply' });
    // a key it never saw cannot be checked now: 503, not a 401 that would condemn the key
    const r = await chat(rig.router, rig.unseen, 'unseen');
    const text = await r.text();
    assert.equal(r.status, 503, text);
    assert.equal(JSON.parse(text).error.code, 'key_store_unavailable');
    await rig.wave('during2', 20);
    const h = await fetch(`${rig.router.url}/health`);
    assert.equal(h.status, 200);
  } finally {
    pg('thaw');
  }
  await rig.wave('after', 10);
  await rig.settled();
});

test('PostgreSQL store: an unreachable server is a clear start-up error, the password not shown', async (t) => {
  if (skipWhy) return t.skip(skipWhy);
  const router = await startRouter(config('postgresql://u:hunter2pw@127.0.0.1:1/none?connect_timeout=2'),
    { expectReady: false });
  const e = await router.exited;
  assert.notEqual(e.code, 0);
  assert.match(router.out, /cannot connect to PostgreSQL/);
  assert.doesNotMatch(router.out, /hunter2pw/);
});
