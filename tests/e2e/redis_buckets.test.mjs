// Client token buckets shared through Redis (`rate_limiting` with storage.redis_url): three
// airouter instances behind one redis-server let exactly a client's (and the global)
// burst through together, refusing the rest as a local bucket does (429, limit_type,
// Retry-After, X-RateLimit-*); with Redis gone each instance keeps to its share
// (burst / storage.redis_instances) and no request fails for it; /health says so, and the
// buckets are shared again once Redis is back. Buckets refill one token a minute here, so
// nothing refills while a test runs and the counts are exact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startMock, startRouter, baseConfig, waitFor, slow, MASTER_KEY } from './lib/harness.mjs';
import { TestRedis, KeyStore, health } from './lib/redis.mjs';
import { keyMaker, credYaml, countWith } from './lib/routing.mjs';

let mock;
let redis;

// Every worker's connection is ready (/health's up means one is).
async function allUp(r) {
  const h = (await health(r)).redis;
  return h.up && h.connections_ready === h.connections;
}

// A chat completion as client `id` (X-Client-ID): {status, headers, body, text}.
async function ask(router, id, content) {
  const r = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json', 'x-client-id': id },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] }),
    signal: AbortSignal.timeout(15000 * slow),
  });
  const text = await r.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* keep the text */ }
  return { status: r.status, headers: r.headers, body, text };
}

// n concurrent requests of client id, round-robin over the routers (request j goes to
// routers[j % 3]).
function wave(routers, id, n) {
  return Promise.all(Array.from({ length: n }, (_, j) => ask(routers[j % routers.length], id, `${id}${j}`)));
}

// How often the routers fell back (a check without an answer, a connection lost): a wave
// asserted exact must see none, which a machine too loaded to answer within 50 ms breaks.
async function fallbacks(routers) {
  let n = 0;
  for (const r of routers) {
    const h = (await health(r)).redis;
    n += h.fallbacks + h.disconnects;
  }
  return n;
}

// wave() of a client with Redis up throughout: tried again as a new client (id-2, id-3)
// when a fallback came in its way. The mock's records start empty with the wave that counts.
// @return [answers, the id that got them].
async function sharedWave(routers, id, n) {
  for (let attempt = 1; ; attempt++) {
    const who = attempt === 1 ? id : `${id}-${attempt}`;
    await mock.clear();
    const before = await fallbacks(routers);
    const res = await wave(routers, who, n);
    if (await fallbacks(routers) === before || attempt === 3) return [res, who];
    console.log(`${who}: Redis fell back during the wave (a loaded machine), again as a new client`);
    for (const r of routers) await waitFor(async () => allUp(r), { what: 'redis up', timeoutMs: 10000 * slow });
  }
}

function redisKeys(pattern) {
  return execFileSync('redis-cli', ['-p', String(redis.port), '--scan', '--pattern', pattern], { encoding: 'utf8' })
    .split('\n').filter(Boolean);
}

// Every answer is 200 or a 429 of the client buckets; the 429s as a local bucket's.
function checkRefusals(res, types, limits) {
  const bad = res.filter((r) => r.status !== 200 && r.status !== 429);
  assert.equal(bad.length, 0, bad.map((r) => `${r.status} ${r.text}`).join('\n'));
  for (const r of res.filter((x) => x.status === 429)) {
    assert.ok(types.includes(r.body.error.limit_type), r.text);
    assert.equal(r.body.error.type, 'rate_limit_error', r.text);
    assert.match(r.headers.get('retry-after') || '', /^[1-9]\d*$/);
    assert.equal(r.headers.get('x-ratelimit-remaining'), '0', r.text);
    assert.equal(r.headers.get('x-ratelimit-limit'), String(limits[r.body.error.limit_type]), r.text);
    assert.match(r.headers.get('x-ratelimit-reset') || '', /^\d+$/);
  }
}

const ok = (res) => res.filter((r) => r.status === 200).length;

before(async () => {
  mock = await startMock();
  redis = await new TestRedis().init();
});

after(async () => { await redis.stop(); });

test('three instances share a client bucket of 12 through Redis, then fall back to their share without it', async () => {
  const k = keyMaker();
  const yaml = baseConfig({
    credentials: credYaml({ name: 'c', key: k('c'), base: mock.url }),
    models: '  - name: m\n    credential: c\n',
    extra: `storage:\n  redis_url: redis://127.0.0.1:${redis.port}/0\n  redis_instances: 3\n`
      + 'rate_limiting:\n  enabled: true\n  per_client: { requests_per_minute: 1, burst_size: 12 }\n',
  });
  const routers = await Promise.all([0, 1, 2].map(() => startRouter(yaml)));
  for (const r of routers) await waitFor(async () => allUp(r), { what: 'redis up' });
  await mock.clear();

  const [res, alice] = await sharedWave(routers, 'alice', 36);
  checkRefusals(res, ['client'], { client: 12 });
  assert.equal(ok(res), 12, 'exactly the bucket');
  assert.equal(await countWith(mock, k('c')), 12, 'zero overshoot at the upstream');
  // the headers of an admitted request speak of the fleet's bucket
  const left = res.filter((r) => r.status === 200).map((r) => Number(r.headers.get('x-ratelimit-remaining')));
  assert.deepEqual(left.sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i));
  // no client bytes in Redis: the bucket's key is a hash
  const keys = redisKeys('airouter:rl:*');
  assert.ok(keys.length >= 1, keys.join(' '));
  for (const key of keys) assert.match(key, /^airouter:rl:client:c[0-9a-f]{32}$/);
  console.log(`client bucket 12 over 3 instances: ${ok(res)} served of 36`);

  // Redis stuck (no answer within 50 ms): the takes already sent fall back to the share
  // too, as do the ones after them; nothing fails
  redis.signal('SIGSTOP');
  try {
    const frank = await wave(routers, 'frank', 36);
    checkRefusals(frank, ['client'], { client: 4 });
    for (let i = 0; i < 3; i++) assert.equal(ok(frank.filter((_, j) => j % 3 === i)), 4, `instance ${i}`);
    console.log(`Redis stuck: a new client got ${ok(frank)} (4 per instance)`);
  } finally {
    redis.signal('SIGCONT');
  }
  for (const r of routers) await waitFor(async () => allUp(r), { what: 'redis up after the stall', timeoutMs: 10000 * slow });

  // Redis gone: each instance's share (12 / 3) decides, in its own buckets
  const servedBy = [0, 1, 2].map((i) => res.filter((r, j) => j % 3 === i && r.status === 200).length);
  await redis.stop();
  try {
    for (const r of routers) await waitFor(async () => (await health(r)).redis.up === false, { what: 'redis down' });
    for (const r of routers) assert.equal((await health(r)).status, 'degraded', 'Redis down: the limits are this instance\'s share');
    assert.match(await (await fetch(`${routers[0].url}/metrics`)).text(), /^airouter_redis_up 0$/m);
    // a new client: exactly 4 on each instance
    const dave = await wave(routers, 'dave', 36);
    checkRefusals(dave, ['client'], { client: 4 });
    for (let i = 0; i < 3; i++) assert.equal(ok(dave.filter((_, j) => j % 3 === i)), 4, `instance ${i}`);
    // alice: each instance's bucket already holds what it admitted through Redis
    const more = await wave(routers, alice, 18);
    checkRefusals(more, ['client'], { client: 4 });
    for (let i = 0; i < 3; i++) {
      const got = ok(more.filter((_, j) => j % 3 === i));
      assert.ok(got <= Math.max(0, 4 - servedBy[i]), `instance ${i}: ${got} beyond its share (had ${servedBy[i]})`);
    }
    console.log(`Redis down: a new client got ${ok(dave)} (4 per instance), alice ${ok(more)} more`);
  } finally {
    redis.start();
  }
  for (const r of routers) await waitFor(async () => allUp(r), { what: 'redis up again', timeoutMs: 10000 * slow });
  const [erin] = await sharedWave(routers, 'erin', 36);
  checkRefusals(erin, ['client'], { client: 12 });
  assert.equal(ok(erin), 12, 'shared again');
  await Promise.all(routers.map((r) => r.stop()));
});

test('three instances share a global bucket of 30 and client buckets of 12 exactly', async () => {
  const k = keyMaker();
  const yaml = baseConfig({
    credentials: credYaml({ name: 'g', key: k('g'), base: mock.url }),
    models: '  - name: m\n    credential: g\n',
    extra: `storage:\n  redis_url: redis://127.0.0.1:${redis.port}/0\n  redis_instances: 3\n`
      + 'rate_limiting:\n  enabled: true\n  global: { requests_per_minute: 1, burst_size: 30 }\n'
      + '  per_client: { requests_per_minute: 1, burst_size: 12 }\n',
  });
  const routers = await Promise.all([0, 1, 2].map(() => startRouter(yaml)));
  for (const r of routers) await waitFor(async () => allUp(r), { what: 'redis up' });
  const limits = { client: 12, global: 30 };
  // the three waves together, again (from empty buckets) if a fallback came in their way
  let a; let b; let c;
  for (let attempt = 1; attempt <= 2; attempt++) {
    execFileSync('redis-cli', ['-p', String(redis.port), 'FLUSHALL']);
    await mock.clear();
    const before = await fallbacks(routers);
    a = await wave(routers, `g${attempt}-alice`, 36);
    b = await wave(routers, `g${attempt}-bob`, 36);
    c = await wave(routers, `g${attempt}-carol`, 36);
    if (await fallbacks(routers) === before) break;
    console.log('Redis fell back during the waves (a loaded machine): again');
    for (const r of routers) await waitFor(async () => allUp(r), { what: 'redis up', timeoutMs: 10000 * slow });
  }
  checkRefusals([...a, ...b], ['client'], limits);
  assert.equal(ok(a), 12);
  assert.equal(ok(b), 12);
  // 6 left in the global bucket: carol gets exactly those, the rest is refused by it
  checkRefusals(c, ['global'], limits);
  assert.equal(ok(c), 6);
  assert.equal(await countWith(mock, k('g')), 30, 'exactly the global bucket reached the upstream');
  console.log(`global 30 + client 12 over 3 instances: ${ok(a)} + ${ok(b)} + ${ok(c)} served`);
  await Promise.all(routers.map((r) => r.stop()));
});

// A shared bucket's refusal comes after the key's own checks: what they charged (its RPM
// here) is given back, so the key is not short of a request it never made.
test('a client bucket refused in Redis gives back the virtual key\'s RPM', async () => {
  const store = new KeyStore('redis-giveback');
  const free = (await store.key('free')).key;
  const one = (await store.key('one', '--rpm', '1')).key;
  const k = keyMaker();
  const routers = await Promise.all([0, 1].map((i) => {
    return startRouter(baseConfig({
      credentials: credYaml({ name: 'up', key: k('u'), base: mock.url }),
      models: '  - name: m\n    credential: up\n',
      extra: `rate_limiting:\n  enabled: true\n  per_client:\n    requests_per_minute: 1\n    burst_size: 1\n`
        + `storage:\n  database_url: ${store.url(i)}\n  redis_url: redis://127.0.0.1:${redis.port}/0\n  redis_instances: 2\n`,
    }));
  }));
  for (const r of routers) await waitFor(() => allUp(r), { what: 'redis up' });
  const as = (router, key, id) => fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-client-id': id },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
  // client "shared" spends its one token on instance 0 (with the free key) ...
  assert.equal((await as(routers[0], free, 'shared')).status, 200);
  // ... so instance 1's own bucket admits it, the key's RPM is charged there, and Redis
  // refuses the bucket
  const refused = await as(routers[1], one, 'shared');
  assert.equal(refused.status, 429);
  assert.equal(refused.body.error.limit_type, 'client');
  // the key's one request a minute is still there, for another client
  const next = await as(routers[1], one, 'other');
  assert.equal(next.status, 200, JSON.stringify(next.body));
  await Promise.all(routers.map((r) => r.stop()));
  store.remove();
});
