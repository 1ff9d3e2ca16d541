// Balancing: round_robin spreads evenly over two credentials, weighted follows the
// weights exactly, and an upstream failure moves the request to the next candidate.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startRouter, baseConfig, MASTER_KEY } from './lib/harness.mjs';

let mock;

before(async () => { mock = await startMock(); });

function creds(a = '', b = '') {
  return `
  - name: cred_a
    type: openai
    api_key: sk-cred-a-000000000000
    base_url: ${mock.url}
${a}
  - name: cred_b
    type: openai
    api_key: sk-cred-b-000000000000
    base_url: ${mock.url}
${b}`;
}

async function spread(router, n) {
  const client = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${router.url}/v1`, maxRetries: 0 });
  await mock.clear();
  for (let i = 0; i < n; i++)
    await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `r${i}` }] });
  const counts = {};
  for (const r of await mock.requests()) counts[r.headers.authorization] = (counts[r.headers.authorization] || 0) + 1;
  return counts;
}

test('round_robin: 20 requests over two credentials -> 10 and 10', async () => {
  const router = await startRouter(baseConfig({
    credentials: creds(),
    models: '  - name: gpt-4o\n    credential: cred_a\n  - name: gpt-4o\n    credential: cred_b\n',
    extra: 'routing:\n  strategy: round_robin\n',
  }));
  const c = await spread(router, 20);
  assert.deepEqual(c, { 'Bearer sk-cred-a-000000000000': 10, 'Bearer sk-cred-b-000000000000': 10 });
  await router.stop();
});

test('weighted 1:3 -> exactly 5 and 15 over 20 requests', async () => {
  const router = await startRouter(baseConfig({
    credentials: creds(),
    models: '  - name: gpt-4o\n    credential: cred_a\n    weight: 1\n  - name: gpt-4o\n    credential: cred_b\n    weight: 3\n',
    extra: 'routing:\n  strategy: weighted\n',
  }));
  const c = await spread(router, 20);
  assert.deepEqual(c, { 'Bearer sk-cred-a-000000000000': 5, 'Bearer sk-cred-b-000000000000': 15 });
  await router.stop();
});

test('open credentials (no models: entries) are balanced too', async () => {
  const router = await startRouter(baseConfig({
    credentials: creds(), server: '  replace_v1_models: false\n',
  }));
  const c = await spread(router, 10);
  assert.deepEqual(Object.values(c).sort(), [5, 5]);
  await router.stop();
});

test('a failing credential (500) is skipped: the next one serves, errors are reported', async () => {
  const router = await startRouter(baseConfig({
    credentials: creds('    headers:\n      x-mock-status: "500"\n'),
    models: '  - name: gpt-4o\n    credential: cred_a\n  - name: gpt-4o\n    credential: cred_b\n',
  }));
  const client = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${router.url}/v1`, maxRetries: 0 });
  for (let i = 0; i < 4; i++) {
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r._router.credential, 'cred_b');
    if (r._router.attempts === 2) {
      assert.equal(r._router.errors.length, 1);
      assert.equal(r._router.errors[0].credential, 'cred_a');
      assert.equal(r._router.errors[0].status, 500);
    }
  }
  await router.stop();
});
