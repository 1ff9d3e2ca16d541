// Shared RPM limits (storage.redis_url): three airouter instances behind one redis-server
// enforce one credential limit together with zero overshoot; with Redis gone each falls
// back to its share (rpm / storage.redis_instances) and no request fails for it; /health
// and /metrics say so, and the instances reconnect once Redis is back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startMock, startRouter, baseConfig, waitFor, freePort, slow } from './lib/harness.mjs';
import { keyMaker, credYaml, chat, countWith } from './lib/routing.mjs';

let mock;
let redisPort;
let redis = null;

function startRedis() {
  const p = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' });
  p.exitedP = new Promise((resolve) => p.on('exit', resolve));
  return p;
}

async function stopRedis() {
  if (!redis) return;
  redis.kill('SIGKILL');
  await redis.exitedP;
  redis = null;
}

async function health(r) {
  return (await fetch(`${r.url}/health`)).json();
}

before(async () => {
  mock = await startMock();
  redisPort = await freePort();
  redis = startRedis();
});

after(async () => { await stopRedis(); });

test('three instances share a 30 RPM credential limit through Redis, then fall back without it', async () => {
  const k = keyMaker();
  const yaml = baseConfig({
    credentials: credYaml({ name: 'shared', key: k('s'), base: mock.url, rpm: 30 }),
    models: '  - name: m\n    credential: shared\n',
    extra: `storage:\n  redis_url: redis://127.0.0.1:${redisPort}/0\n  redis_instances: 3\n`,
  });
  const routers = await Promise.all([0, 1, 2].map(() => startRouter(yaml)));
  for (const r of routers) await waitFor(async () => (await health(r)).redis.up, { what: 'redis up' });
  await mock.clear();

  // 90 concurrent requests, round-robin over the three instances
  const res = await Promise.all(Array.from({ length: 90 }, (_, i) => chat(routers[i % 3], 'm', `r${i}`)));
  const ok = res.filter((r) => r.status === 200).length;
  const limited = res.filter((r) => r.status === 429);
  assert.equal(ok, 30, res.filter((r) => r.status !== 200 && r.status !== 429).map((r) => r.text).join('\n'));
  assert.equal(limited.length, 60);
  for (const r of limited) assert.match(r.headers.get('retry-after') || '', /^\d+$/);
  assert.equal(await countWith(mock, k('s')), 30, 'zero overshoot at the upstream');
  const h = await health(routers[0]);
  assert.equal(h.redis.configured, true);
  assert.ok(h.redis.checks >= 30, JSON.stringify(h.redis));
  const metrics = await (await fetch(`${routers[1].url}/metrics`)).text();
  assert.match(metrics, /^airouter_redis_up 1$/m);

  // Redis gone mid-load: no failure other than the local fallback's 429s
  const wave = Array.from({ length: 60 }, (_, i) => chat(routers[i % 3], 'm', `w${i}`));
  await stopRedis();
  const res2 = [...await Promise.all(wave),
    ...await Promise.all(Array.from({ length: 30 }, (_, i) => chat(routers[i % 3], 'm', `x${i}`)))];
  const bad = res2.filter((r) => r.status !== 200 && r.status !== 429);
  assert.equal(bad.length, 0, bad.map((r) => `${r.status} ${r.text}`).join('\n'));
  for (const r of routers) {
    await waitFor(async () => (await health(r)).redis.up === false, { what: 'redis down in /health' });
    assert.equal((await health(r)).status, 'ok', 'Redis down is not degraded');
  }
  assert.match(await (await fetch(`${routers[2].url}/metrics`)).text(), /^airouter_redis_up 0$/m);
  // each instance's share is 30 / 3: its window already holds what it admitted through Redis
  const served = await countWith(mock, k('s'));
  assert.ok(served <= 30 + 3 * 10, `served ${served}`);
  console.log(`overshoot with Redis: ${30 - 30}; served in all after Redis went: ${served} (cap 60)`);

  // back: every instance reconnects
  redis = startRedis();
  for (const r of routers) await waitFor(async () => (await health(r)).redis.up, { what: 'redis up again', timeoutMs: 10000 * slow });
  await Promise.all(routers.map((r) => r.stop()));
});
