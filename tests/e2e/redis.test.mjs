// Shared RPM limits (storage.redis_url): three airouter instances behind one redis-server
// enforce one credential limit of 100 RPM together with zero overshoot; with Redis gone each falls
// back to its share (rpm / storage.redis_instances) and no request fails for it; /health
// and /metrics say so, and the instances reconnect once Redis is back. A virtual key's RPM
// (one key, copied to each instance's SQLite store) is shared the same way, and an admission no
// upstream ever saw is given back. Credential and key TPM limits are shared too: each
// admission charges its estimate, corrected with the real usage when the answer is done, so
// requests one after another (each once the previous correction landed) overshoot by at
// most one request's estimate error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { startMock, startRouter, baseConfig, waitFor, slow, runCli } from './lib/harness.mjs';
import { TestRedis, KeyStore, health } from './lib/redis.mjs';
import { keyMaker, credYaml, chat, countWith } from './lib/routing.mjs';

let mock;
let redis;

before(async () => {
  mock = await startMock();
  redis = await new TestRedis().init();
});

after(async () => { await redis.stop(); });

const LIMIT = 100;
test('three instances share a 100 RPM credential limit through Redis, then fall back without it', async () => {
  const k = keyMaker();
  const yaml = baseConfig({
    credentials: credYaml({ name: 'shared', key: k('s'), base: mock.url, rpm: LIMIT }),
    models: '  - name: m\n    credential: shared\n',
    extra: `storage:\n  redis_url: redis://127.0.0.1:${redis.port}/0\n  redis_instances: 3\n`,
  });
  const routers = await Promise.all([0, 1, 2].map(() => startRouter(yaml)));
  for (const r of routers) await waitFor(async () => (await health(r)).redis.up, { what: 'redis up' });
  await mock.clear();

  // 300 concurrent requests, round-robin over the three instances
  const res = await Promise.all(Array.from({ length: 3 * LIMIT }, (_, i) => chat(routers[i % 3], 'm', `r${i}`)));
  const ok = res.filter((r) => r.status === 200).length;
  const limited = res.filter((r) => r.status === 429);
  assert.equal(ok, LIMIT, res.filter((r) => r.status !== 200 && r.status !== 429).map((r) => r.text).join('\n'));
  assert.equal(limited.length, 2 * LIMIT);
  for (const r of limited) assert.match(r.headers.get('retry-after') || '', /^\d+$/);
  assert.equal(await countWith(mock, k('s')), LIMIT, 'zero overshoot at the upstream');
  const h = await health(routers[0]);
  assert.equal(h.redis.configured, true);
  assert.ok(h.redis.checks >= LIMIT, JSON.stringify(h.redis));
  const metrics = await (await fetch(`${routers[1].url}/metrics`)).text();
  assert.match(metrics, /^airouter_redis_up 1$/m);

  // Redis gone mid-load: no failure other than the local fallback's 429s
  const wave = Array.from({ length: 60 }, (_, i) => chat(routers[i % 3], 'm', `w${i}`));
  await redis.stop();
  const res2 = [...await Promise.all(wave),
    ...await Promise.all(Array.from({ length: 30 }, (_, i) => chat(routers[i % 3], 'm', `x${i}`)))];
  const bad = res2.filter((r) => r.status !== 200 && r.status !== 429);
  assert.equal(bad.length, 0, bad.map((r) => `${r.status} ${r.text}`).join('\n'));
  for (const r of routers) {
    await waitFor(async () => (await health(r)).redis.up === false, { what: 'redis down in /health' });
    assert.equal((await health(r)).status, 'degraded', 'Redis down: the limits are this instance\'s share');
  }
  assert.match(await (await fetch(`${routers[2].url}/metrics`)).text(), /^airouter_redis_up 0$/m);
  // each instance's share is 100 / 3: its window already holds what it admitted through Redis
  const served = await countWith(mock, k('s'));
  const cap = LIMIT + 3 * Math.floor(LIMIT / 3);
  assert.ok(served <= cap, `served ${served}`);
  console.log(`credential rpm ${LIMIT} over 3 instances: ${ok} served of ${3 * LIMIT} (overshoot ${ok - LIMIT}); served in all after Redis went: ${served} (cap ${cap})`);

  // back: every instance reconnects
  redis.start();
  for (const r of routers) await waitFor(async () => (await health(r)).redis.up, { what: 'redis up again', timeoutMs: 10000 * slow });
  await Promise.all(routers.map((r) => r.stop()));
});

test('three instances share a virtual key\'s 12 RPM through Redis; unused admissions are given back', async () => {
  const store = new KeyStore('redis-keys');
  const vkey = (await store.key('shared', '--rpm', '12')).key;
  const k = keyMaker();
  const routers = await Promise.all([0, 1, 2].map((i) => {
    return startRouter(baseConfig({
      credentials: credYaml({ name: 'open', key: k('o'), base: mock.url })
        + credYaml({ name: 'closed', key: k('c'), base: mock.url, rpm: 0 }),
      models: '  - name: m\n    credential: open\n  - name: shut\n    credential: closed\n',
      extra: `storage:\n  database_url: ${store.url(i)}\n  redis_url: redis://127.0.0.1:${redis.port}/0\n  redis_instances: 3\n`,
    }));
  }));
  for (const r of routers) await waitFor(async () => (await health(r)).redis.up, { what: 'redis up' });

  // refused by the deployment's limit: the key's admissions come back
  const shut = await Promise.all(Array.from({ length: 9 }, (_, i) => chat(routers[i % 3], 'shut', `s${i}`, { key: vkey })));
  assert.deepEqual(shut.map((r) => r.status), Array(9).fill(429));

  const res = await Promise.all(Array.from({ length: 36 }, (_, i) => chat(routers[i % 3], 'm', `k${i}`, { key: vkey })));
  const ok = res.filter((r) => r.status === 200).length;
  const limited = res.filter((r) => r.status === 429);
  assert.equal(ok, 12, res.filter((r) => r.status !== 200 && r.status !== 429).map((r) => r.text).join('\n'));
  assert.equal(limited.length, 24);
  for (const r of limited) {
    assert.equal(r.body.error.limit_type, 'key', r.text);
    assert.match(r.headers.get('retry-after') || '', /^\d+$/);
  }
  assert.equal(await countWith(mock, k('o')), 12, 'exactly the key\'s limit reached the upstream');
  console.log(`virtual key rpm 12 over 3 instances: ${ok} served, ${limited.length} refused`);

  // Redis gone: each instance's share (12 / 3) decides, against a window that already holds
  // at least what that instance admitted through Redis (which instance got how many of the
  // 12 is up to the race): never more than the share, and refused, never failed
  const servedBy = [0, 1, 2].map((i) => res.filter((r, j) => j % 3 === i && r.status === 200).length);
  await redis.stop();
  try {
    for (const r of routers) await waitFor(async () => (await health(r)).redis.up === false, { what: 'redis down' });
    const res3 = await Promise.all(Array.from({ length: 9 }, (_, i) => chat(routers[i % 3], 'm', `d${i}`, { key: vkey })));
    let extra = 0;
    for (let i = 0; i < 3; i++) {
      const mine = res3.filter((_, j) => j % 3 === i);
      const ok3 = mine.filter((r) => r.status === 200).length;
      assert.ok(ok3 <= Math.max(0, 4 - servedBy[i]), `instance ${i}: ${ok3} served beyond its share (it had ${servedBy[i]})`);
      for (const r of mine.filter((x) => x.status !== 200)) {
        assert.equal(r.status, 429, r.text);
        assert.equal(r.body.error.limit_type, 'key', r.text);
      }
      extra += ok3;
    }
    assert.equal(await countWith(mock, k('o')), 12 + extra);
  } finally {
    redis.start();
  }
  for (const r of routers) await waitFor(async () => (await health(r)).redis.up, { what: 'redis up again', timeoutMs: 10000 * slow });
  await Promise.all(routers.map((r) => r.stop()));
  store.remove();
});

// The integer Redis holds at key (0: none).
function redisInt(key) {
  return Number(execFileSync('redis-cli', ['-p', String(redis.port), 'GET', key], { encoding: 'utf8' }).trim() || 0);
}

// Requests one after another, round-robin over three instances, until the shared TPM
// window of 1000 (sum kept at sumKey) refuses; each answer is ~101 real tokens where
// airouter estimates ~15. Each next request waits for the previous one's correction to
// land in Redis (it is sent before the answer, but asynchronously).
// @return what was served and the bound: one request's estimate error.
async function fillTpm(routers, model, upstreamKey, sumKey, key) {
  const words = Array.from({ length: 100 }, (_, i) => `w${i}`).join(' ');
  await mock.queue(Array.from({ length: 40 }, () => ({ content: words })), upstreamKey);
  // airouter's estimate: the body's bytes / 4, + 1
  const est = (c) => Math.floor(Buffer.byteLength(JSON.stringify({ model, messages: [{ role: 'user', content: c }] })) / 4) + 1;
  let served = 0;
  let maxErr = 0;
  let ok = 0;
  for (let i = 0; i < 40; i++) {
    const content = `q${i}`;
    const res = await chat(routers[i % 3], model, content, key ? { key } : {});
    if (res.status !== 200) {
      assert.equal(res.status, 429, res.text);
      return { ok, served, overshoot: served - 1000, maxErr, refused: res, est: est(content) };
    }
    ok++;
    served += res.body.usage.total_tokens;
    maxErr = Math.max(maxErr, res.body.usage.total_tokens - est(content));
    await waitFor(async () => redisInt(sumKey) === served, { what: `${sumKey} = ${served}` });
  }
  assert.fail(`the shared window never closed: ${served} tokens served`);
}

test('three instances share a credential\'s 1000 TPM, then a virtual key\'s: overshoot at most one request\'s estimate error', async () => {
  const store = new KeyStore('redis-tpm');
  const { key: vkey, id: vid } = await store.key('tok', '--tpm', '1000');
  const k = keyMaker();
  const routers = await Promise.all([0, 1, 2].map((i) => {
    return startRouter(baseConfig({
      credentials: credYaml({ name: 'tok', key: k('t'), base: mock.url, tpm: 1000 })
        + credYaml({ name: 'free', key: k('f'), base: mock.url }),
      models: '  - name: t\n    credential: tok\n  - name: f\n    credential: free\n',
      extra: `storage:\n  database_url: ${store.url(i)}\n  redis_url: redis://127.0.0.1:${redis.port}/0\n  redis_instances: 3\n`,
    }));
  }));
  for (const r of routers) await waitFor(async () => (await health(r)).redis.up, { what: 'redis up' });

  const c = await fillTpm(routers, 't', k('t'), 'airouter:{tok}:tpm:sum');
  console.log(`credential tpm 1000 over 3 instances: ${c.ok} served, ${c.served} tokens, overshoot ${c.overshoot} (bound: one estimate error, ${c.maxErr})`);
  assert.ok(c.overshoot <= c.maxErr, JSON.stringify(c));
  // refused only once the window could not take one more estimate
  assert.ok(c.served + c.est > 1000, JSON.stringify(c));

  const v = await fillTpm(routers, 'f', k('f'), `airouter:key:{${vid}}:tpm:sum`, vkey);
  console.log(`virtual key tpm 1000 over 3 instances: ${v.ok} served, ${v.served} tokens, overshoot ${v.overshoot} (bound: one estimate error, ${v.maxErr})`);
  assert.ok(v.overshoot <= v.maxErr, JSON.stringify(v));
  assert.ok(v.served + v.est > 1000, JSON.stringify(v));
  assert.equal(v.refused.body.error.limit_type, 'key', v.refused.text);
  await Promise.all(routers.map((r) => r.stop()));
  store.remove();
});

// A virtual key's budget shared by three instances: every answer costs exactly 1/64 USD (16
// completion tokens at 2^-10 USD, prompts free, max_tokens 16: the reservation is the real
// cost, all in binary fractions), so exactness is countable: a budget of 8 answers lets
// exactly 8 through of 30 concurrent requests spread over the three. Then Redis is gone:
// another key's budget of 12 answers is split, each instance spending its third (4).
test('three instances share a virtual key\'s budget through Redis: zero overshoot; without Redis each spends its third', async () => {
  const store = new KeyStore('redis-budget');
  const each = 1 / 64;
  const mk = (name, budget) => store.key(name, '--budget', String(budget));
  // each test's store numbers its keys from 1: another test's counters must not be this key's
  execFileSync('redis-cli', ['-p', String(redis.port), 'FLUSHALL']);
  const shared = await mk('budget8', 8 * each);
  const split = await mk('budget12', 12 * each);
  const k = keyMaker();
  const routers = await Promise.all([0, 1, 2].map((i) => {
    return startRouter(baseConfig({
      credentials: credYaml({ name: 'paid', key: k('p'), base: mock.url }),
      models: '  - name: p\n    credential: paid\n    input_cost_per_token: 0\n    output_cost_per_token: 0.0009765625\n',
      extra: `storage:\n  database_url: ${store.url(i)}\n  redis_url: redis://127.0.0.1:${redis.port}/0\n  redis_instances: 3\n`,
    }));
  }));
  for (const r of routers) await waitFor(async () => (await health(r)).redis.up, { what: 'redis up' });
  // "echo:" and 15 words: 16 completion tokens
  const words = Array.from({ length: 14 }, (_, i) => `w${i}`).join(' ');
  const ask = (r, i, key) => chat(r, 'p', `${words} q${i}`, { key, extra: { max_tokens: 16 } });
  const spent = (res) => res.filter((r) => r.status === 200)
    .reduce((s, r) => { assert.equal(r.body.usage.completion_tokens, 16); return s + r.body.usage.completion_tokens / 1024; }, 0);

  const res = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(routers[i % 3], i, shared.key)));
  const ok = res.filter((r) => r.status === 200).length;
  for (const r of res.filter((x) => x.status !== 200)) {
    assert.equal(r.status, 429, r.text);
    assert.equal(r.body.error.limit_type, 'quota', r.text);
    assert.match(r.body.error.message, /Budget exceeded/);
  }
  console.log(`virtual key budget of 8 answers over 3 instances: ${ok} served, spent ${spent(res)} of ${8 * each} USD (overshoot ${spent(res) - 8 * each})`);
  assert.equal(ok, 8);
  assert.equal(spent(res), 8 * each);
  // the usage reaches the fleet's counter (nano-USD) with each lease's next renewal
  const usd = () => Number(execFileSync('redis-cli', ['-p', String(redis.port), 'HGET', `airouter:key:{${shared.id}}:quota`, 'usd'], { encoding: 'utf8' }).trim());
  await waitFor(() => usd() === 8 * each * 1e9, { what: 'the fleet\'s counter holds what was spent' });

  await redis.stop();
  try {
    for (const r of routers) await waitFor(async () => (await health(r)).redis.up === false, { what: 'redis down' });
    const res2 = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(routers[i % 3], 100 + i, split.key)));
    for (let i = 0; i < 3; i++) {
      const mine = res2.filter((_, j) => j % 3 === i);
      assert.equal(mine.filter((r) => r.status === 200).length, 4, `instance ${i} spends its third`);
      for (const r of mine.filter((x) => x.status !== 200)) {
        assert.equal(r.status, 429, r.text);
        assert.equal(r.body.error.limit_type, 'quota', r.text);
      }
    }
    assert.equal(spent(res2), 12 * each);
  } finally {
    redis.start();
  }
  for (const r of routers) await waitFor(async () => (await health(r)).redis.up, { what: 'redis up again', timeoutMs: 10000 * slow });
  await Promise.all(routers.map((r) => r.stop()));
  store.remove();
});

// Far from its limits a key's quota costs no Redis round trip per request: each worker
// leases room (16 worst cases at a time here) and renews it with the usage settled since,
// so the fleet's counters catch up within a moment, and an idle lease gives its room back.
test('a key\'s budget far from its limit: leased room, few Redis calls, exact counters, room given back when idle', async () => {
  const store = new KeyStore('redis-lease');
  const { key, id } = await store.key('rich', '--budget', '1000');
  const k = keyMaker();
  const router = await startRouter(baseConfig({
    credentials: credYaml({ name: 'paid', key: k('p'), base: mock.url }),
    models: '  - name: p\n    credential: paid\n    input_cost_per_token: 0\n    output_cost_per_token: 0.0009765625\n',
    extra: `storage:\n  database_url: ${store.url()}\n  redis_url: redis://127.0.0.1:${redis.port}/0\n`,
  }));
  await waitFor(async () => (await health(router)).redis.up, { what: 'redis up' });
  const words = Array.from({ length: 14 }, (_, i) => `w${i}`).join(' ');
  const hget = (field) => Number(execFileSync('redis-cli', ['-p', String(redis.port), 'HGET', `airouter:key:{${id}}:quota`, field], { encoding: 'utf8' }).trim());
  const spentBefore = hget('usd') || 0; // each test's store numbers its keys from 1
  const before = (await health(router)).redis.checks;
  for (let i = 0; i < 48; i++) {
    const r = await chat(router, 'p', `${words} q${i}`, { key, extra: { max_tokens: 16 } });
    assert.equal(r.status, 200, r.text);
  }
  const calls = (await health(router)).redis.checks - before;
  console.log(`48 requests of a key with a budget: ${calls} Redis calls`);
  assert.ok(calls < 24, `${calls} Redis calls for 48 requests`);
  // every answer cost 1/64 USD: the fleet's counter holds all 48 soon after
  await waitFor(() => hget('usd') - spentBefore === 48 * 1e9 / 64, { what: 'usage counted in Redis' });
  // and nothing stays reserved once the lease is idle
  await waitFor(() => hget('ru') === 0, { what: 'room given back', timeoutMs: 10000 * slow });
  await router.stop();
  store.remove();
});

// Room leased on a connection that was lost is not used again before Redis confirms it: a
// Redis that restarted has lost the lease (here another instance then spent the budget).
test('a key\'s lease does not outlive a lost Redis connection', async () => {
  const store = new KeyStore('redis-epoch');
  // each test's store numbers its keys from 1: another test's counters must not be this key's
  execFileSync('redis-cli', ['-p', String(redis.port), 'FLUSHALL']);
  const { key, id } = (await store.key('four', '--budget', String(4 / 64)));
  const k = keyMaker();
  const router = await startRouter(baseConfig({
    credentials: credYaml({ name: 'paid', key: k('p'), base: mock.url }),
    models: '  - name: p\n    credential: paid\n    input_cost_per_token: 0\n    output_cost_per_token: 0.0009765625\n',
    extra: `storage:\n  database_url: ${store.url()}\n  redis_url: redis://127.0.0.1:${redis.port}/0\n`,
  }).replace('workers: 2', 'workers: 1')); // one worker: one lease
  await waitFor(async () => (await health(router)).redis.up, { what: 'redis up' });
  const words = Array.from({ length: 14 }, (_, i) => `w${i}`).join(' ');
  const ask = (i) => chat(router, 'p', `${words} e${i}`, { key, extra: { max_tokens: 16 } });
  assert.equal((await ask(0)).status, 200); // the lease now holds room for 3 more
  await redis.stop();
  redis.start();
  await waitFor(async () => (await health(router)).redis.connections_ready === 1, { what: 'reconnected', timeoutMs: 10000 * slow });
  // meanwhile another instance spent the whole budget
  const now = new Date();
  const day = Math.floor(now.getTime() / 86400000);
  const month = now.getUTCFullYear() * 12 + now.getUTCMonth();
  execFileSync('redis-cli', ['-p', String(redis.port), 'HSET', `airouter:key:{${id}}:quota`, 'day', String(day),
    'month', String(month), 'dt', '64', 'mt', '64', 'tt', '64', 'usd', String(4 * 1e9 / 64), 'rt', '0', 'ru', '0']);
  const r = await ask(1);
  assert.equal(r.status, 429, r.text);
  assert.equal(r.body.error.limit_type, 'quota');
  await router.stop();
  store.remove();
});

// A budget lowered while a worker holds leased room: the room was granted under the old
// budget and is not used before Redis weighs it against the new one. Instance B leases,
// instance A spends what the new budget allows (B last heard of the fleet before that, so
// its own checks still see room), then the budget comes down to what was spent.
test('a key\'s lease is weighed again when its limits change', async () => {
  execFileSync('redis-cli', ['-p', String(redis.port), 'FLUSHALL']);
  const store = new KeyStore('redis-relimit');
  const { key, id } = await store.key('rich', '--budget', '1000');
  const k = keyMaker();
  const [a, b] = await Promise.all([0, 1].map((i) => startRouter(baseConfig({
    credentials: credYaml({ name: 'paid', key: k('p'), base: mock.url }),
    models: '  - name: p\n    credential: paid\n    input_cost_per_token: 0\n    output_cost_per_token: 0.0009765625\n',
    extra: `storage:\n  database_url: ${store.url(i)}\n  key_cache_ttl: 200ms\n  redis_url: redis://127.0.0.1:${redis.port}/0\n`,
  }).replace('workers: 2', 'workers: 1')))); // one worker each: one lease each
  for (const r of [a, b]) await waitFor(async () => (await health(r)).redis.up, { what: 'redis up' });
  const words = Array.from({ length: 14 }, (_, i) => `w${i}`).join(' ');
  const ask = (r, i) => chat(r, 'p', `${words} l${i}`, { key, extra: { max_tokens: 16 } });
  const usd = () => Number(execFileSync('redis-cli', ['-p', String(redis.port), 'HGET', `airouter:key:{${id}}:quota`, 'usd'], { encoding: 'utf8' }).trim());
  assert.equal((await ask(b, 0)).status, 200); // B's lease: room for 15 more
  await waitFor(() => usd() === 1e9 / 64, { what: 'B\'s usage counted' });
  for (let i = 1; i <= 3; i++) assert.equal((await ask(a, i)).status, 200);
  await waitFor(() => usd() === 4 * 1e9 / 64, { what: 'A\'s usage counted' });
  // B's own copy of the store is where its poller looks (one shared PostgreSQL in real life)
  const bCli = `${store.cli}.b`;
  fs.writeFileSync(bCli, `server:\n  master_key: x\nstorage:\n  database_url: sqlite://${store.db}.1\n`);
  const set = await runCli(['key', 'set-limit', '--key', String(id), '--budget', String(4 / 64), '-config', bCli]);
  assert.equal(set.code, 0, set.err);
  const limits = async () => (await (await fetch(`${b.url}/limits`, { headers: { authorization: `Bearer ${key}` } })).json()).limits.max_budget_usd;
  await waitFor(async () => (await limits()) === 4 / 64, { what: 'the new budget in B\'s cache' });
  const r = await ask(b, 9);
  assert.equal(r.status, 429, r.text);
  assert.equal(r.body.error.limit_type, 'quota');
  await Promise.all([a, b].map((x) => x.stop()));
  store.remove();
});
