// The LiteLLM data plane end to end: a throwaway PostgreSQL server from tests/pg.sh
// (skipped when PostgreSQL is not installed) holding LiteLLM's two tables as its prisma
// migration creates them, tokens inserted as LiteLLM stores them (SHA-256 hex of the key),
// and airouter started with litellm_db: the keys authenticate or are refused with the
// documented statuses, every answered request becomes a "LiteLLM_SpendLogs" row and grows
// the token's spend, and with the database stopped a key already cached keeps working.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { startRouter, repo, waitFor, MASTER_KEY } from './lib/harness.mjs';

const pgScript = path.join(repo, 'tests', 'pg.sh');
const pgDir = path.join(os.tmpdir(), `airouter-e2e-litellm-${process.pid}`);
let baseUrl = null;
let skipWhy = null;

// As LiteLLM's prisma migrations create them (quoted CamelCase names, prisma's types).
const DDL = `
CREATE TABLE "LiteLLM_VerificationToken" (
    "token" TEXT NOT NULL,
    "key_name" TEXT,
    "key_alias" TEXT,
    "soft_budget_cooldown" BOOLEAN NOT NULL DEFAULT false,
    "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "expires" TIMESTAMP(3),
    "models" TEXT[],
    "aliases" JSONB NOT NULL DEFAULT '{}',
    "config" JSONB NOT NULL DEFAULT '{}',
    "user_id" TEXT,
    "team_id" TEXT,
    "permissions" JSONB NOT NULL DEFAULT '{}',
    "max_parallel_requests" INTEGER,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "blocked" BOOLEAN,
    "tpm_limit" BIGINT,
    "rpm_limit" BIGINT,
    "max_budget" DOUBLE PRECISION,
    "budget_duration" TEXT,
    "budget_reset_at" TIMESTAMP(3),
    "allowed_cache_controls" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "model_spend" JSONB NOT NULL DEFAULT '{}',
    "model_max_budget" JSONB NOT NULL DEFAULT '{}',
    "budget_id" TEXT,
    "organization_id" TEXT,
    "created_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
    "created_by" TEXT,
    "updated_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
    "updated_by" TEXT,
    CONSTRAINT "LiteLLM_VerificationToken_pkey" PRIMARY KEY ("token")
);
CREATE TABLE "LiteLLM_SpendLogs" (
    "request_id" TEXT NOT NULL,
    "call_type" TEXT NOT NULL,
    "api_key" TEXT NOT NULL DEFAULT '',
    "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "total_tokens" INTEGER NOT NULL DEFAULT 0,
    "prompt_tokens" INTEGER NOT NULL DEFAULT 0,
    "completion_tokens" INTEGER NOT NULL DEFAULT 0,
    "startTime" TIMESTAMP(3) NOT NULL,
    "endTime" TIMESTAMP(3) NOT NULL,
    "request_duration_ms" INTEGER,
    "completionStartTime" TIMESTAMP(3),
    "model" TEXT NOT NULL DEFAULT '',
    "model_id" TEXT DEFAULT '',
    "model_group" TEXT DEFAULT '',
    "custom_llm_provider" TEXT DEFAULT '',
    "api_base" TEXT DEFAULT '',
    "user" TEXT DEFAULT '',
    "metadata" JSONB DEFAULT '{}',
    "cache_hit" TEXT DEFAULT '',
    "cache_key" TEXT DEFAULT '',
    "request_tags" JSONB DEFAULT '[]',
    "team_id" TEXT,
    "organization_id" TEXT,
    "end_user" TEXT,
    "requester_ip_address" TEXT,
    "messages" JSONB DEFAULT '{}',
    "response" JSONB DEFAULT '{}',
    "session_id" TEXT,
    "status" TEXT,
    "mcp_namespaced_tool_name" TEXT,
    "agent_id" TEXT,
    "proxy_server_request" JSONB DEFAULT '{}',
    CONSTRAINT "LiteLLM_SpendLogs_pkey" PRIMARY KEY ("request_id")
);`;

before(() => {
  const r = spawnSync(pgScript, ['start', pgDir], { encoding: 'utf8' });
  if (r.status === 2) skipWhy = `PostgreSQL is not installed: ${r.stderr.trim()}`;
  else if (r.status !== 0) throw new Error(`tests/pg.sh start failed: ${r.stderr}`);
  else baseUrl = r.stdout.trim();
});

after(() => {
  spawnSync(pgScript, ['stop', pgDir]);
});

function psql(url, query) {
  return execFileSync('psql', [url, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', query],
    { encoding: 'utf8' }).trim();
}

const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');

// A token row as LiteLLM's /key/generate writes it; returns the raw key.
function insertKey(url, name, cols = {}) {
  const key = `sk-litellm-test-${name}-${crypto.randomBytes(8).toString('hex')}`;
  const names = ['token', 'key_alias', 'user_id', 'team_id', ...Object.keys(cols)];
  const vals = [`'${sha(key)}'`, `'${name}'`, "'user-1'", "'team-1'", ...Object.values(cols)];
  psql(url, `INSERT INTO "LiteLLM_VerificationToken" (${names.map((n) => `"${n}"`).join(', ')})
             VALUES (${vals.join(', ')})`);
  return key;
}

function config(url, extra = '') {
  return `server:
  host: 127.0.0.1
  port: \${PORT}
  workers: 2
  master_key: "\${MASTER_KEY}"
litellm_db:
  enabled: true
  database_url: ${url}
  connect_timeout: 2s
  auth_cache_ttl: 1h
  health_check_interval: 200ms
  log_batch_size: 2
  log_flush_interval: 100ms
  log_retry_attempts: 1
  log_retry_delay: 100ms
${extra}
credentials:
  - name: local
    type: mock
models:
  - name: m
    credential: local
    input_cost_per_token: 0.001
    output_cost_per_token: 0.002
  - name: m2
    credential: local
`;
}

function chat(router, key, model = 'm', id = undefined) {
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  if (id) headers['x-request-id'] = id;
  return fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
}

// A separate session holding the row lock of a token (SELECT ... FOR UPDATE in an open
// transaction): a spend batch that adds to that token waits for it.
function holdRowLock(url, token) {
  const p = spawn('psql', [url, '-XAtq', '-v', 'ON_ERROR_STOP=1'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => p.on('exit', resolve));
  p.stdin.write(`BEGIN;\nSELECT 1 FROM "LiteLLM_VerificationToken" WHERE token = '${token}' FOR UPDATE;\n\\echo locked\n`);
  return {
    locked: () => waitFor(() => out.includes('locked'), { what: `the row lock (${out})` }),
    release: () => { p.stdin.end('COMMIT;\n'); return exited; },
  };
}

// min_conns/max_conns: a pool of connections. One writer writes the spend batches (one at a
// time: two would update the same token rows in two transactions); the other connections
// answer key lookups, so a batch stuck on a row lock does not hold up a key being checked.
// With min_conns 2 both connections are open from the start; with min_conns 1 the second
// one opens when a lookup finds every connection busy. Never more than max_conns.
test('LiteLLM data plane: a lookup is answered while the spend batch waits on a row lock', async (t) => {
  if (skipWhy) return t.skip(skipWhy);
  for (const min of [2, 1]) {
    const db = `litellm_pool${min}`;
    psql(baseUrl, `CREATE DATABASE ${db}`);
    const url = baseUrl.replace(/\/[^/]*$/, `/${db}`);
    psql(url, DDL);
    const a = insertKey(url, 'a');
    const b = insertKey(url, 'b');
    const c = insertKey(url, 'c');
    const conns = (extra = '') => psql(url, `SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '${db}'
        AND application_name = 'airouter-litellm' ${extra}`);
    const waiting = () => conns("AND wait_event_type = 'Lock'");
    const health = async (router) => (await (await fetch(`${router.url}/health`)).json()).litellm_db;

    const router = await startRouter(config(url, `  max_conns: 2\n  min_conns: ${min}`));
    assert.equal(conns(), String(min), `min_conns ${min}: connections open at start`);
    let h = await health(router);
    assert.equal(h.connections, min, JSON.stringify(h));
    assert.equal(h.max_conns, 2, JSON.stringify(h));

    let r = await chat(router, a, 'm', `pool${min}-a-0`); // a is looked up and cached
    assert.equal(r.status, 200, await r.text());
    const rowsOf = (k) => psql(url, `SELECT COUNT(*) FROM "LiteLLM_SpendLogs" WHERE api_key = '${sha(k)}'`);
    await waitFor(() => rowsOf(a) === '1', { what: 'the first row of a' });

    const lock = holdRowLock(url, sha(a));
    await lock.locked();
    for (let i = 1; i <= 4; i++) {
      r = await chat(router, a, 'm', `pool${min}-a-${i}`); // cached: no lookup
      assert.equal(r.status, 200, await r.text());
    }
    await waitFor(() => waiting() === '1', { what: 'the spend batch waiting on the row lock' });

    // b and c were never seen: each needs a lookup, which another connection answers
    for (const k of [b, c]) {
      const t0 = Date.now();
      r = await chat(router, k);
      assert.equal(r.status, 200, await r.text());
      assert.ok(Date.now() - t0 < 5000, `min_conns ${min}: the lookup took ${Date.now() - t0} ms`);
    }
    assert.equal(waiting(), '1', 'the batch was still waiting when the lookups were answered');
    assert.equal(conns(), '2', 'max_conns 2: two connections, no more');
    h = await health(router);
    assert.equal(h.connections, 2, JSON.stringify(h));
    assert.equal(h.threads, 2, JSON.stringify(h));

    // released: every row lands once, and each token's spend is the sum of its rows
    await lock.release();
    await waitFor(() => rowsOf(a) === '5' && rowsOf(b) === '1' && rowsOf(c) === '1',
      { what: 'all seven spend rows' });
    for (const k of [a, b, c]) {
      await waitFor(() => psql(url, `SELECT abs(spend - (SELECT SUM(spend) FROM "LiteLLM_SpendLogs"
          WHERE api_key = '${sha(k)}')) < 1e-9 AND spend > 0 FROM "LiteLLM_VerificationToken"
          WHERE token = '${sha(k)}'`) === 't', { what: 'a token spend equal to its rows' });
    }
    h = await health(router);
    assert.equal(h.spend_logs.written, 7, JSON.stringify(h));
    assert.equal(h.spend_logs.failed, 0, JSON.stringify(h));
    assert.equal(h.spend_logs.dropped, 0, JSON.stringify(h));
    router.signal('SIGTERM');
    assert.equal((await router.exited).code, 0, router.out);
    assert.equal(conns(), '0', 'every connection closed at exit');
  }
});

test('LiteLLM data plane: keys from LiteLLM_VerificationToken, rows in LiteLLM_SpendLogs', async (t) => {
  if (skipWhy) return t.skip(skipWhy);
  psql(baseUrl, 'CREATE DATABASE litellm');
  const url = baseUrl.replace(/\/[^/]*$/, '/litellm');
  psql(url, DDL);
  const good = insertKey(url, 'good', { models: "ARRAY['m']", max_budget: '100' });
  const any = insertKey(url, 'any', { models: 'ARRAY[]::TEXT[]' });
  const blocked = insertKey(url, 'blocked', { blocked: 'true' });
  const expired = insertKey(url, 'expired', { expires: "now() - interval '1 hour'" });
  const future = insertKey(url, 'future', { expires: "(now() AT TIME ZONE 'UTC') + interval '1 day'" });
  const broke = insertKey(url, 'broke', { spend: '5', max_budget: '5' });
  const slow = insertKey(url, 'slow', { rpm_limit: '2' });

  const router = await startRouter(config(url));
  let r = await chat(router, good, 'm', 'll-good-1');
  assert.equal(r.status, 200, await r.text());
  r = await chat(router, good, 'm', 'll-good-2');
  assert.equal(r.status, 200, await r.text());
  r = await chat(router, any, 'm2');
  assert.equal(r.status, 200, await r.text());
  r = await chat(router, future);
  assert.equal(r.status, 200, await r.text());
  r = await chat(router, MASTER_KEY); // the master key is not looked up in LiteLLM's table
  assert.equal(r.status, 200, await r.text());

  r = await chat(router, good, 'm2');
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.code, 'model_not_allowed');
  r = await chat(router, blocked);
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error.code, 'key_blocked');
  r = await chat(router, expired);
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error.code, 'key_expired');
  r = await chat(router, broke);
  assert.equal(r.status, 429);
  assert.equal((await r.json()).error.type, 'budget_exceeded');
  r = await chat(router, 'sk-litellm-test-nobody-0123');
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error.code, 'invalid_api_key');
  for (let i = 0; i < 2; i++) assert.equal((await chat(router, slow)).status, 200);
  r = await chat(router, slow);
  assert.equal(r.status, 429);
  await r.text();

  // the rows: the hashed token, tokens, the model, and the token's spend grown to match
  const h = sha(good);
  await waitFor(() => psql(url, `SELECT COUNT(*) FROM "LiteLLM_SpendLogs" WHERE api_key = '${h}'`) === '2',
    { what: 'two spend rows of the good key' });
  const row = psql(url, `SELECT call_type, model_group, "user", team_id, status,
      prompt_tokens > 0, completion_tokens > 0, total_tokens = prompt_tokens + completion_tokens,
      spend > 0, "endTime" >= "startTime", metadata->>'user_api_key_alias'
      FROM "LiteLLM_SpendLogs" WHERE request_id = 'll-good-1'`);
  assert.equal(row, 'acompletion|m|user-1|team-1|success|t|t|t|t|t|good');
  // every answered request has its row: 2 good, any, future, 2 slow
  await waitFor(() => psql(url, 'SELECT COUNT(*) FROM "LiteLLM_SpendLogs"') === '6',
    { what: 'six spend rows' });
  await waitFor(() => psql(url, `SELECT abs(spend - (SELECT SUM(spend) FROM "LiteLLM_SpendLogs"
      WHERE api_key = '${h}')) < 1e-9 AND spend > 0 FROM "LiteLLM_VerificationToken" WHERE token = '${h}'`) === 't',
  { what: 'the token spend equal to its rows' });
  let health = await (await fetch(`${router.url}/health`)).json();
  assert.equal(health.litellm_db.up, true, JSON.stringify(health));
  assert.equal(health.litellm_db.spend_logs.dropped, 0);
  let metrics = await (await fetch(`${router.url}/metrics`)).text();
  assert.match(metrics, /^airouter_litellm_db_up 1$/m);
  assert.match(metrics, /^airouter_litellm_spend_rows_total\{result="written"\} 6$/m);
  assert.match(metrics, /^airouter_litellm_spend_rows_total\{result="dropped"\} 0$/m);
  assert.match(metrics, /^airouter_litellm_key_lookups_total\{result="ok"\} [1-9]\d*$/m);

  // the database gone: a cached key still works, a key never seen cannot be checked (503)
  spawnSync(pgScript, ['stop', pgDir]);
  r = await chat(router, good, 'm');
  assert.equal(r.status, 200, await r.text());
  r = await chat(router, 'sk-litellm-test-unseen-0123');
  assert.equal(r.status, 503);
  await r.text();
  await waitFor(async () => {
    health = await (await fetch(`${router.url}/health`)).json();
    return health.litellm_db.up === false;
  }, { what: '/health saying the database is down' });
  metrics = await (await fetch(`${router.url}/metrics`)).text();
  assert.match(metrics, /^airouter_litellm_db_up 0$/m);
  router.signal('SIGTERM'); // the rows still queued are tried once, then a clean exit
  assert.equal((await router.exited).code, 0, router.out);
});

test('LiteLLM data plane: is_required decides whether an unreachable database stops the start', async (t) => {
  if (skipWhy) return t.skip(skipWhy);
  const bad = 'postgresql://u:hunter2pw@127.0.0.1:1/none';
  const req = await startRouter(config(bad, '  is_required: true'), { expectReady: false });
  const e = await req.exited;
  assert.notEqual(e.code, 0);
  assert.match(req.out, /litellm_db.database_url: cannot connect to PostgreSQL/);
  assert.match(req.out, /is_required/);
  assert.doesNotMatch(req.out, /hunter2pw/);

  const opt = await startRouter(config(bad));
  const health = await (await fetch(`${opt.url}/health`)).json();
  assert.equal(health.litellm_db.up, false);
  const r = await chat(opt, MASTER_KEY);
  assert.equal(r.status, 200, await r.text());
  opt.signal('SIGTERM');
  assert.equal((await opt.exited).code, 0, opt.out);
});
