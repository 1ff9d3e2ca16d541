// GET /v1/models: `models:` entries merged with models discovered from an OpenAI-type
// upstream at start (replace_v1_models), each with tags, type, context_size, available.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startRouter, baseConfig, MASTER_KEY } from './lib/harness.mjs';

let mock;
let router;
let client;

before(async () => {
  mock = await startMock(['--models', 'disc-a,disc-b']);
  router = await startRouter(baseConfig({
    credentials: `
  - name: open_up
    type: openai
    api_key: sk-open-0123456789
    base_url: ${mock.url}
  - name: local
    type: mock
`,
    models: `
  - name: gpt-4o
    credential: local
    tags: [general, code]
    type: fast
    context_size: 128000
  - name: gpt-4o
    credential: local
    model: other
    tags: [vision]
    context_size: 64000
  - name: old-model
    credential: local
    available: false
`,
  }));
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${router.url}/v1`, maxRetries: 0 });
});

test('the list merges configured and discovered models', async () => {
  const list = [];
  for await (const m of client.models.list()) list.push(m);
  const ids = list.map((m) => m.id).sort();
  assert.deepEqual(ids, ['disc-a', 'disc-b', 'gpt-4o', 'old-model']);
  const g = list.find((m) => m.id === 'gpt-4o');
  assert.equal(g.object, 'model');
  assert.deepEqual([...g.tags].sort(), ['code', 'general', 'vision']);
  assert.equal(g.type, 'fast');
  assert.equal(g.context_size, 128000);
  assert.equal(g.available, true);
  assert.equal(list.find((m) => m.id === 'old-model').available, false);
  assert.equal(list.find((m) => m.id === 'disc-a').owned_by, 'openai');
});

test('discovery asked the upstream with its key', async () => {
  const reqs = await mock.requests();
  const disc = reqs.find((r) => r.path === '/v1/models');
  assert.ok(disc, 'airouter fetched /v1/models at start');
  assert.equal(disc.headers.authorization, 'Bearer sk-open-0123456789');
});

test('retrieve one model, and 404 for an unknown one', async () => {
  const m = await client.models.retrieve('disc-b');
  assert.equal(m.id, 'disc-b');
  await assert.rejects(client.models.retrieve('nope'), (e) => e.status === 404);
});

test('discovered models route to their credential; others are unknown there', async () => {
  await mock.clear();
  const r = await client.chat.completions.create({ model: 'disc-a', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(r._router.credential, 'open_up');
  await assert.rejects(
    client.chat.completions.create({ model: 'not-listed', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 404 && e.error?.code === 'model_not_found',
  );
});

test('a model whose deployments are all unavailable is 503', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'old-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 503 && e.error?.code === 'no_available_deployment',
  );
});

test('/api/v1/models equals /v1/models', async () => {
  const h = { authorization: `Bearer ${MASTER_KEY}` };
  const a = await (await fetch(`${router.url}/v1/models`, { headers: h })).json();
  const b = await (await fetch(`${router.url}/api/v1/models`, { headers: h })).json();
  assert.deepEqual(a, b);
});
