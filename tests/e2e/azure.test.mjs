// The `azure` credential type end to end: the official openai SDK -> airouter -> the C mock's
// Azure OpenAI routes. Deployment URLs with the default and a configured api-version, the v1
// API, chat (whole and streamed), completions and embeddings; what the mock received (path,
// api-version query, api-key header and never a Bearer, model only where it belongs); Azure's
// errors relayed or handled per the outcome table; Azure's prompt-filter chunk dropped from
// streams; and the Azure SDK client against airouter.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { AzureOpenAI } from 'openai';
import { startMock, startRouter, baseConfig, MASTER_KEY } from './lib/harness.mjs';

const KEY = 'azure-key-0123456789abcdef';
const KEY_V1 = 'azure-key-v1-0123456789';
const KEY_RL = 'azure-key-ratelimited-0123';
const DEFAULT_VERSION = '2024-10-21'; // the latest GA data-plane api-version with a date

let mock;
let router;
let client;

before(async () => {
  mock = await startMock(['--require-key', KEY, '--require-key', KEY_V1, '--require-key', KEY_RL]);
  router = await startRouter(baseConfig({
    credentials: `
  - name: az_eu
    type: azure
    api_key: ${KEY}
    base_url: ${mock.url}
    headers:
      X-Team: ml
  - name: az_preview
    type: azure
    api_key: ${KEY}
    base_url: ${mock.url}/openai
    api_version: 2025-04-01-preview
  - name: az_v1
    type: azure
    api_key: ${KEY_V1}
    base_url: ${mock.url}/openai/v1
    api_version: v1
  - name: az_rl
    type: azure
    api_key: ${KEY_RL}
    base_url: ${mock.url}
  - name: az_badkey
    type: azure
    api_key: not-the-right-key
    base_url: ${mock.url}
`,
    models: `
  - name: gpt-4o
    credential: az_eu
    model: gpt-4o-eu
  - name: gpt-4o-preview
    credential: az_preview
    model: gpt-4o-preview-dep
  - name: instruct
    credential: az_eu
    model: instruct-dep
  - name: emb
    credential: az_eu
    model: emb-3-small
  - name: gpt-4o-v1
    credential: az_v1
    model: gpt-4o-v1-dep
  - name: emb-v1
    credential: az_v1
    model: emb-v1-dep
  - name: limited
    credential: az_rl
    model: limited-dep
  - name: badkey
    credential: az_badkey
    model: whatever
`,
    extra: `fail2ban:
  max_attempts: -1
circuit_breaker:
  failure_threshold: -1
routing:
  rate_limit_retries: 1
  retry_delay: 50ms
`,
  }));
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${router.url}/v1`, maxRetries: 0 });
});

async function lastRequest() {
  const all = await mock.requests();
  assert.ok(all.length > 0, 'the mock saw a request');
  return all.at(-1);
}

function assertAzureAuth(up, key = KEY) {
  assert.equal(up.headers['api-key'], key);
  assert.equal(up.headers.authorization, undefined, 'no Bearer for Azure');
}

test('chat: deployment URL, default api-version, api-key, no model in the body', async () => {
  await mock.clear();
  const { data: r, response } = await client.chat.completions
    .create({
      model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello Azure' }], temperature: 0.3,
    })
    .withResponse();
  assert.equal(r.choices[0].message.content, 'echo: Hello Azure');
  assert.equal(r.model, 'gpt-4o-eu', 'the mock answers with the deployment');
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens === 3);
  assert.equal(r._router.provider, 'azure');
  assert.equal(r._router.credential, 'az_eu');
  assert.equal(r._router.model_name, 'gpt-4o');
  assert.equal(r._router.upstream_model, 'gpt-4o-eu');
  assert.equal(response.headers.get('x-airouter-credential'), 'az_eu');

  const up = await lastRequest();
  assert.equal(up.path, '/openai/deployments/gpt-4o-eu/chat/completions');
  assert.equal(up.query, `api-version=${DEFAULT_VERSION}`);
  assertAzureAuth(up);
  assert.equal(up.headers['x-team'], 'ml');
  assert.equal(up.body.model, undefined, 'the deployment is in the URL, not the body');
  assert.equal(up.body.temperature, 0.3);
  assert.deepEqual(up.body.messages, [{ role: 'user', content: 'Hello Azure' }]);
});

test('chat: a configured api_version, base_url given with /openai', async () => {
  await mock.clear();
  const r = await client.chat.completions.create({
    model: 'gpt-4o-preview', messages: [{ role: 'user', content: 'x' }],
  });
  assert.equal(r.model, 'gpt-4o-preview-dep');
  const up = await lastRequest();
  assert.equal(up.path, '/openai/deployments/gpt-4o-preview-dep/chat/completions');
  assert.equal(up.query, 'api-version=2025-04-01-preview');
  assertAzureAuth(up);
});

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

test('streaming chat: chunks relayed, usage asked upstream, usage-only chunk removed', async () => {
  await mock.clear();
  const chunks = await collect(await client.chat.completions.create({
    model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'one two three' }],
  }));
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'echo: one two three');
  assert.ok(chunks.every((c) => c.choices.length > 0), 'no usage-only chunk for the client');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  const up = await lastRequest();
  assert.equal(up.path, '/openai/deployments/gpt-4o-eu/chat/completions');
  assert.equal(up.body.model, undefined);
  assert.equal(up.body.stream, true);
  assert.deepEqual(up.body.stream_options, { include_usage: true });
  assert.equal(up.headers.accept, 'text/event-stream');
});

test('streaming chat with include_usage: exactly one usage chunk', async () => {
  const chunks = await collect(await client.chat.completions.create({
    model: 'gpt-4o', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'count these four' }],
  }));
  const usage = chunks.filter((c) => c.choices.length === 0);
  assert.equal(usage.length, 1);
  assert.equal(usage[0].usage.completion_tokens, 4);
});

test('streaming chat: Azure\'s prompt-filter chunk (no choices) never reaches the client', async () => {
  // the mock really sends it first (the prompt_filter directive), as Azure does
  const raw = await fetch(`${mock.url}/openai/deployments/gpt-4o-eu/chat/completions?api-version=${DEFAULT_VERSION}`, {
    method: 'POST',
    headers: { 'api-key': KEY, 'content-type': 'application/json', 'x-mock-prompt-filter': '1' },
    body: JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'x' }] }),
  }).then((r) => r.text());
  assert.match(raw.split('\n\n')[0], /^data: \{"choices":\[\],.*"object":"","prompt_filter_results":/);

  for (const includeUsage of [false, true]) {
    const body = {
      model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: '[mock prompt_filter=1] filtered words' }],
      ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
    };
    const r = await fetch(`${router.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 200);
    const events = (await r.text()).split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, '')));
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk', JSON.stringify(c));
      assert.equal(c.prompt_filter_results, undefined);
    }
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'echo: filtered words');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    // the include_usage chunk (choices empty, usage set) stays, and only when asked
    const usage = chunks.filter((c) => c.choices.length === 0);
    assert.equal(usage.length, includeUsage ? 1 : 0);
    if (includeUsage) assert.equal(usage[0].usage.completion_tokens, 3);
  }
  // the official SDK sees only chunks too
  const sdkChunks = await collect(await client.chat.completions.create({
    model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: '[mock prompt_filter=1] hi' }],
  }));
  assert.ok(sdkChunks.every((c) => c.object === 'chat.completion.chunk' && c.choices.length > 0));
});

test('completions: the deployment URL of /completions', async () => {
  await mock.clear();
  const r = await client.completions.create({
    model: 'instruct', prompt: 'Say this', max_tokens: 5,
  });
  assert.equal(r.choices[0].text, 'echo: Say this');
  assert.equal(r.model, 'instruct-dep');
  const up = await lastRequest();
  assert.equal(up.path, '/openai/deployments/instruct-dep/completions');
  assert.equal(up.query, `api-version=${DEFAULT_VERSION}`);
  assertAzureAuth(up);
  assert.equal(up.body.model, undefined);
  assert.equal(up.body.max_tokens, 5);
});

test('embeddings: the deployment URL of /embeddings', async () => {
  await mock.clear();
  const r = await client.embeddings.create({ model: 'emb', input: ['a', 'b'], dimensions: 16 });
  assert.equal(r.data.length, 2);
  assert.equal(r.data[0].embedding.length, 16);
  assert.equal(r.model, 'emb-3-small');
  assert.ok(r.usage.prompt_tokens > 0);
  const up = await lastRequest();
  assert.equal(up.path, '/openai/deployments/emb-3-small/embeddings');
  assert.equal(up.query, `api-version=${DEFAULT_VERSION}`);
  assertAzureAuth(up);
  assert.equal(up.body.model, undefined);
  assert.deepEqual(up.body.input, ['a', 'b']);
});

test('v1 API: /openai/v1/... with the model in the body and no api-version', async () => {
  await mock.clear();
  const r = await client.chat.completions.create({
    model: 'gpt-4o-v1', messages: [{ role: 'user', content: 'v1' }],
  });
  assert.equal(r.choices[0].message.content, 'echo: v1');
  assert.equal(r.model, 'gpt-4o-v1-dep');
  let up = await lastRequest();
  assert.equal(up.path, '/openai/v1/chat/completions', 'base_url .../openai/v1 is not doubled');
  assert.equal(up.query, '');
  assertAzureAuth(up, KEY_V1);
  assert.equal(up.body.model, 'gpt-4o-v1-dep');

  const chunks = await collect(await client.chat.completions.create({
    model: 'gpt-4o-v1', stream: true, messages: [{ role: 'user', content: 'streamed v1' }],
  }));
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'echo: streamed v1');
  up = await lastRequest();
  assert.equal(up.body.model, 'gpt-4o-v1-dep');
  assert.deepEqual(up.body.stream_options, { include_usage: true });

  const e = await client.embeddings.create({ model: 'emb-v1', input: 'x' });
  assert.equal(e.data.length, 1);
  up = await lastRequest();
  assert.equal(up.path, '/openai/v1/embeddings');
  assert.equal(up.body.model, 'emb-v1-dep');
});

test('a 400 (content filter) is relayed as Azure sent it, not retried', async () => {
  await mock.clear();
  await assert.rejects(
    client.chat.completions.create({
      model: 'gpt-4o', messages: [{ role: 'user', content: 'bad [mock status=400]' }],
    }),
    (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.code, 'content_filter');
      assert.equal(e.param, 'prompt');
      assert.match(e.message, /content management policy/);
      assert.equal(e.error.innererror.code, 'ResponsibleAIPolicyViolation');
      assert.equal(e.error.innererror.content_filter_result.violence.filtered, true);
      return true;
    },
  );
  assert.equal((await mock.requests()).length, 1, 'a 400 goes back to the client at once');
});

test('429: retried on the same deployment (rate_limit_retries), then answered', async () => {
  await mock.clear();
  await mock.queue([{ status: 429 }], KEY_RL);
  const r = await client.chat.completions.create({
    model: 'limited', messages: [{ role: 'user', content: 'again' }],
  });
  assert.equal(r.choices[0].message.content, 'echo: again');
  assert.equal(r._router.attempts, 2);
  assert.deepEqual(r._router.errors.map((x) => [x.credential, x.status]), [['az_rl', 429]]);
  assert.match(r._router.errors[0].message, /mock error 429/, 'the Azure platform message is read');
  const reqs = await mock.requests();
  assert.equal(reqs.length, 2);
  assert.ok(reqs.every((x) => x.path === '/openai/deployments/limited-dep/chat/completions'));

  // every try limited: the client gets the 429 once rate_limit_retries are spent
  await mock.clear();
  await mock.queue([{ status: 429 }, { status: 429 }], KEY_RL);
  await assert.rejects(
    client.chat.completions.create({
      model: 'limited', messages: [{ role: 'user', content: 'x' }],
    }),
    (e) => e.status === 429,
  );
  assert.equal((await mock.requests()).length, 2);
});

test('a wrong upstream key: Azure\'s 401, returned when no other credential is left', async () => {
  await mock.clear();
  await assert.rejects(
    client.chat.completions.create({ model: 'badkey', messages: [{ role: 'user', content: 'x' }] }),
    (e) => {
      assert.equal(e.status, 401);
      assert.match(e.message, /Access denied due to invalid subscription key/);
      return true;
    },
  );
  const up = await lastRequest();
  assert.equal(up.headers['api-key'], 'not-the-right-key');
});

test('Azure SDKs: the api-key header is accepted as the client key', async () => {
  const ok = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'api-key': MASTER_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'via api-key' }] }),
  });
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).choices[0].message.content, 'echo: via api-key');
  const bad = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'api-key': 'sk-wrong', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
  });
  assert.equal(bad.status, 401);
});

// The AzureOpenAI client addresses {endpoint}/openai/deployments/{deployment}/chat/completions
// ?api-version=V with the key in api-key: SPEC section 3 accepts Azure SDKs' api-key header,
// so airouter serves their URL shape too, the deployment naming the model (and
// /openai/v1/... like /v1/...).
test('Azure SDKs: the AzureOpenAI client works against airouter (deployment = model)', async () => {
  const az = new AzureOpenAI({
    apiKey: MASTER_KEY, endpoint: router.url, apiVersion: DEFAULT_VERSION, maxRetries: 0,
  });
  await mock.clear();
  const r = await az.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi from azure sdk' }] });
  assert.equal(r.choices[0].message.content, 'echo: hi from azure sdk');
  const s = await az.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'streamed' }] });
  let text = '';
  for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'echo: streamed');
  const e = await az.embeddings.create({ model: 'emb', input: 'vector please' });
  assert.ok(e.data[0].embedding.length > 0);
  await assert.rejects(
    az.chat.completions.create({ model: 'no-such-deployment', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err.status === 404,
  );
  const v1 = await fetch(`${router.url}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'api-key': MASTER_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'v1 shape' }] }),
  });
  assert.equal(v1.status, 200);
  assert.equal((await v1.json()).choices[0].message.content, 'echo: v1 shape');
});
