// Chat, completions and embeddings through airouter to the C mock upstream, with the
// official openai SDK: non-streaming and streaming, usage handling, metadata, and what
// airouter actually sent upstream.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startRouter, baseConfig, MASTER_KEY } from './lib/harness.mjs';

let mock;
let router;
let client;

before(async () => {
  mock = await startMock();
  router = await startRouter(baseConfig({
    credentials: `
  - name: up_a
    type: openai
    api_key: sk-upstream-a-0123456789
    base_url: ${mock.url}
    headers:
      X-Team: blue
`,
    models: `
  - name: gpt-4o
    credential: up_a
    model: mock-gpt-4o-2024-08-06
    tags: [general]
  - name: emb
    credential: up_a
    model: text-embedding-3-small
`,
  }));
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${router.url}/v1`, maxRetries: 0 });
});

test('non-streaming chat: content, usage, _router and headers', async () => {
  await mock.clear();
  const { data: r, response } = await client.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello world' }] })
    .withResponse();
  assert.equal(r.choices[0].message.content, 'echo: Hello world');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens === 3);
  assert.deepEqual(r._router, {
    provider: 'openai', credential: 'up_a', model_name: 'gpt-4o',
    upstream_model: 'mock-gpt-4o-2024-08-06', attempts: 1, fallback_used: false, errors: [],
  });
  assert.equal(response.headers.get('x-airouter-credential'), 'up_a');
  assert.equal(response.headers.get('x-airouter-model'), 'gpt-4o'); // the public name
  assert.equal(response.headers.get('x-airouter-attempts'), '1');
  assert.match(response.headers.get('x-request-id'), /^[0-9a-f]{16,}$/);

  const [up] = await mock.requests();
  assert.equal(up.path, '/v1/chat/completions');
  assert.equal(up.headers.authorization, 'Bearer sk-upstream-a-0123456789');
  assert.equal(up.headers['x-team'], 'blue');
  assert.equal(up.body.model, 'mock-gpt-4o-2024-08-06', 'upstream gets models[].model');
  assert.equal(up.body.stream_options, undefined, 'no stream options on a whole answer');
});

test('x-request-id from the client is kept', async () => {
  const r = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'x-request-id': 'my-trace-42' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-request-id'), 'my-trace-42');
});

test('airouter-only request fields are removed before forwarding', async () => {
  await mock.clear();
  await client.chat.completions.create({
    model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }],
    tags: ['general'], prefer_fast: true, min_success_rate: 0.5, temperature: 0.2,
  });
  const [up] = await mock.requests();
  for (const k of ['tags', 'prefer_fast', 'min_success_rate']) assert.equal(up.body[k], undefined, k);
  assert.equal(up.body.temperature, 0.2);
});

async function collect(stream) {
  const chunks = [];
  const times = [];
  for await (const c of stream) { chunks.push(c); times.push(performance.now()); }
  return { chunks, times };
}

test('streaming: chunks arrive as the upstream sends them (no buffering)', async () => {
  await mock.clear();
  const start = performance.now();
  const stream = await client.chat.completions.create({
    model: 'gpt-4o', stream: true,
    messages: [{ role: 'user', content: 'one two three four five [mock chunks=5 chunk_delay=150ms]' }],
  });
  const { chunks, times } = await collect(stream);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'echo: one two three four five');
  // 5 content chunks 150 ms apart: the first must reach us long before the last.
  const contentTimes = times.filter((_, i) => chunks[i].choices[0]?.delta?.content);
  assert.ok(contentTimes.length >= 5, `got ${contentTimes.length} content chunks`);
  const spread = contentTimes.at(-1) - contentTimes[0];
  assert.ok(spread >= 450, `first-to-last spread ${spread} ms should be >= 450`);
  assert.ok(contentTimes[0] - start < spread, 'first chunk arrived before the stream ended');
  // usage was asked upstream but the client did not ask: no usage-only chunk
  assert.ok(chunks.every((c) => c.choices.length > 0), 'usage-only chunk removed');
  const [up] = await mock.requests();
  assert.deepEqual(up.body.stream_options, { include_usage: true });
});

test('streaming with include_usage: exactly one usage chunk, passed through', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'count these words' }],
  });
  const { chunks } = await collect(stream);
  const usage = chunks.filter((c) => c.choices.length === 0);
  assert.equal(usage.length, 1);
  assert.equal(usage[0].usage.completion_tokens, 4);
  assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
});

test('legacy completions, streaming and not', async () => {
  const r = await client.completions.create({ model: 'gpt-4o', prompt: 'Say hi' });
  assert.equal(r.choices[0].text, 'echo: Say hi');
  const s = await client.completions.create({ model: 'gpt-4o', prompt: 'a b c', stream: true });
  let text = '';
  for await (const c of s) text += c.choices[0]?.text ?? '';
  assert.equal(text, 'echo: a b c');
});

test('embeddings', async () => {
  const r = await client.embeddings.create({ model: 'emb', input: ['alpha', 'beta'], dimensions: 16 });
  assert.equal(r.data.length, 2);
  assert.equal(r.data[0].embedding.length, 16);
  assert.ok(r.usage.prompt_tokens > 0);
});

test('/api/v1 is the same API as /v1', async () => {
  const c2 = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${router.url}/api/v1`, maxRetries: 0 });
  const r = await c2.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.choices[0].message.content, 'echo: hi');
});

test('the upstream 400 reaches the client unchanged', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x [mock status=400]' }] }),
    (e) => e.status === 400 && /mock error 400/.test(e.message),
  );
});

test('the router stops cleanly', async () => {
  await router.stop();
  assert.match(router.out, /airouter listening on 127\.0\.0\.1/);
  assert.ok(!router.out.includes(MASTER_KEY), 'master key never logged');
  assert.ok(!router.out.includes('sk-upstream-a-0123456789'), 'upstream key never logged');
});
