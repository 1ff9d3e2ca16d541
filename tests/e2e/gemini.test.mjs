// Google providers end to end, with the official openai SDK against the C mock upstream
// speaking the Gemini and Vertex AI wire formats: chat, streams (incremental, usage only
// when asked), a tool-call round trip, JSON mode, embeddings, error translation and the
// outcome table; Vertex AI with a service account whose key pair is generated here (the
// mock verifies the RS256 JWT grant and issues the bearer tokens), background token
// refresh, a key the token endpoint refuses, API-key mode, and the URLs for `global`,
// a region and a base_url override, read back from the mock's request records.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import OpenAI from 'openai';
import { startMock, startRouter, baseConfig, writeConfig, waitFor, MASTER_KEY, slow } from './lib/harness.mjs';

let mock;
let router;
let client;
let keys;
let wrongKeys;

function keyPair() {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

// A service-account key file, as the Cloud console issues it, pointing at a mock's /token.
function serviceAccount(m, privateKey, email = 'airouter-e2e@e2e-proj.iam.gserviceaccount.com') {
  return writeConfig(JSON.stringify({
    type: 'service_account',
    project_id: 'e2e-proj',
    private_key_id: 'e2e0123456789',
    private_key: privateKey,
    client_email: email,
    client_id: '100000000000000000001',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: `${m.url}/token`,
  }), 'sa.json');
}

function sdk(r) {
  return new OpenAI({ apiKey: MASTER_KEY, baseURL: `${r.url}/v1`, maxRetries: 0, timeout: 20000 * slow });
}

const tokenRequests = async (m) => (await m.requests()).filter((r) => r.path === '/token');

before(async () => {
  keys = keyPair();
  wrongKeys = keyPair();
  const pub = writeConfig(keys.publicKey, 'oauth.pub');
  mock = await startMock(['--oauth-public-key', pub]);
  const sa = serviceAccount(mock, keys.privateKey);
  router = await startRouter(baseConfig({
    credentials: `
  - name: gem
    type: gemini
    api_key: AIza-e2e-gemini-key
    base_url: ${mock.url}
    headers:
      X-Team: green
  - name: vtx
    type: vertex-ai
    project_id: e2e-proj
    location: us-central1
    credentials_file: ${sa}
    base_url: ${mock.url}
  - name: vkey
    type: vertex-ai
    project_id: key-proj
    location: global
    api_key: vertex-e2e-api-key
    base_url: ${mock.url}
`,
    models: `
  - name: gem
    credential: gem
    model: gemini-2.0-flash
  - name: gemb
    credential: gem
    model: text-embedding-004
  - name: vtx
    credential: vtx
    model: gemini-2.5-pro
  - name: vemb
    credential: vtx
    model: text-embedding-005
  - name: vkey
    credential: vkey
    model: gemini-2.5-flash
`,
  }));
  client = sdk(router);
});

async function collect(stream) {
  const chunks = [];
  const times = [];
  for await (const c of stream) { chunks.push(c); times.push(performance.now()); }
  return { chunks, times };
}

test('gemini: chat is translated both ways', async () => {
  await mock.clear();
  const { data: r, response } = await client.chat.completions.create({
    model: 'gem',
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Hello world' },
    ],
    temperature: 0.3, top_p: 0.9, max_tokens: 64, stop: ['END'], n: 1,
  }).withResponse();
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, 'echo: Hello world');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.model, 'gemini-2.0-flash');
  assert.equal(r.usage.completion_tokens, 3);
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.deepEqual(r._router, {
    provider: 'gemini', credential: 'gem', model_name: 'gem', upstream_model: 'gemini-2.0-flash',
    attempts: 1, fallback_used: false, errors: [],
  });
  assert.equal(response.headers.get('x-airouter-credential'), 'gem');

  const [up] = await mock.requests();
  assert.equal(up.path, '/v1beta/models/gemini-2.0-flash:generateContent');
  assert.equal(up.query, '');
  assert.equal(up.headers['x-goog-api-key'], 'AIza-e2e-gemini-key');
  assert.equal(up.headers.authorization, undefined, 'the key goes in x-goog-api-key only');
  assert.equal(up.headers['x-team'], 'green');
  assert.deepEqual(up.body, {
    systemInstruction: { parts: [{ text: 'You are terse.' }] },
    contents: [
      { role: 'user', parts: [{ text: 'Hi' }] },
      { role: 'model', parts: [{ text: 'Hello!' }] },
      { role: 'user', parts: [{ text: 'Hello world' }] },
    ],
    generationConfig: { temperature: 0.3, topP: 0.9, maxOutputTokens: 64, stopSequences: ['END'] },
  });
});

test('gemini: streams arrive incrementally, end with finish_reason and [DONE]', async () => {
  await mock.clear();
  const start = performance.now();
  const stream = await client.chat.completions.create({
    model: 'gem', stream: true,
    messages: [{ role: 'user', content: 'one two three four five [mock chunks=5 chunk_delay=150ms]' }],
  });
  const { chunks, times } = await collect(stream);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'echo: one two three four five');
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const contentTimes = times.filter((_, i) => chunks[i].choices[0]?.delta?.content);
  assert.ok(contentTimes.length >= 5, `got ${contentTimes.length} content chunks`);
  const spread = contentTimes.at(-1) - contentTimes[0];
  assert.ok(spread >= 450, `first-to-last spread ${spread} ms should be >= 450`);
  assert.ok(contentTimes[0] - start < spread, 'the first chunk arrived before the stream ended');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  assert.ok(chunks.every((c) => c.choices.length > 0), 'no usage chunk when not asked');
  assert.ok(chunks.every((c) => c.id === chunks[0].id && c.object === 'chat.completion.chunk'));

  const [up] = await mock.requests();
  assert.equal(up.path, '/v1beta/models/gemini-2.0-flash:streamGenerateContent');
  assert.equal(up.query, 'alt=sse');
  assert.equal(up.body.stream, undefined);

  // the raw bytes: OpenAI SSE frames ending with [DONE]
  const raw = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}` },
    body: JSON.stringify({ model: 'gem', stream: true, messages: [{ role: 'user', content: 'a b' }] }),
  });
  assert.equal(raw.headers.get('content-type'), 'text/event-stream');
  const body = await raw.text();
  assert.ok(body.endsWith('data: [DONE]\n\n'), body.slice(-80));
  assert.equal(body.match(/"finish_reason":"stop"/g).length, 1);
});

test('gemini: stream usage only with include_usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'gem', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'count these words' }],
  });
  const { chunks } = await collect(stream);
  const usage = chunks.filter((c) => c.choices.length === 0);
  assert.equal(usage.length, 1);
  assert.equal(chunks.at(-1), usage[0], 'the usage chunk comes last');
  assert.equal(usage[0].usage.completion_tokens, 4);
  assert.ok(usage[0].usage.prompt_tokens > 0);
  assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
});

test('gemini: tool call round trip', async () => {
  await mock.clear();
  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather', description: 'Weather for a city',
      parameters: {
        type: 'object', additionalProperties: false, $schema: 'http://json-schema.org/draft-07/schema#',
        properties: { city: { type: 'string' }, unit: { type: ['string', 'null'], enum: ['c', 'f'] } },
        required: ['city'],
      },
    },
  }];
  const messages = [{ role: 'user', content: 'What is the weather in Paris? [tool]' }];
  const r1 = await client.chat.completions.create({ model: 'gem', messages, tools, tool_choice: 'auto' });
  const msg = r1.choices[0].message;
  assert.equal(r1.choices[0].finish_reason, 'tool_calls');
  assert.equal(msg.content, null);
  assert.equal(msg.tool_calls.length, 1);
  assert.equal(msg.tool_calls[0].type, 'function');
  assert.equal(msg.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { x: 1 });
  assert.match(msg.tool_calls[0].id, /^call_[0-9a-f]{24}$/);

  let [up] = await mock.requests();
  assert.deepEqual(up.body.tools, [{
    functionDeclarations: [{
      name: 'get_weather', description: 'Weather for a city',
      parameters: {
        type: 'object', required: ['city'],
        properties: { city: { type: 'string' }, unit: { type: 'string', nullable: true, enum: ['c', 'f'] } },
      },
    }],
  }]);
  assert.deepEqual(up.body.toolConfig, { functionCallingConfig: { mode: 'AUTO' } });

  // the result goes back; the mock echoes the function response
  await mock.clear();
  messages.push(msg, { role: 'tool', tool_call_id: msg.tool_calls[0].id, content: JSON.stringify({ temp: 21 }) });
  const r2 = await client.chat.completions.create({ model: 'gem', messages, tools });
  assert.equal(r2.choices[0].message.content, 'echo: {"temp":21}');
  assert.equal(r2.choices[0].finish_reason, 'stop');
  [up] = await mock.requests();
  assert.deepEqual(up.body.contents.slice(1), [
    { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { x: 1 } } }] },
    { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp: 21 } } }] },
  ]);

  // streamed: one complete tool_calls delta, then finish_reason tool_calls
  const stream = await client.chat.completions.create({
    model: 'gem', stream: true, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } },
    messages: [{ role: 'user', content: 'again [tool]' }],
  });
  const { chunks } = await collect(stream);
  const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].index, 0);
  assert.equal(calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(calls[0].function.arguments), { x: 1 });
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
  const last = (await mock.requests()).at(-1);
  assert.deepEqual(last.body.toolConfig, {
    functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] },
  });
});

test('gemini: JSON mode with a schema', async () => {
  await mock.clear();
  const r = await client.chat.completions.create({
    model: 'gem',
    messages: [{ role: 'user', content: 'give me json' }],
    response_format: {
      type: 'json_schema',
      json_schema: {
        name: 'echo', strict: true,
        schema: { type: 'object', properties: { echo: { type: 'string' } }, required: ['echo'], additionalProperties: false },
      },
    },
  });
  assert.deepEqual(JSON.parse(r.choices[0].message.content), { echo: 'echo: give me json' });
  const [up] = await mock.requests();
  assert.deepEqual(up.body.generationConfig, {
    responseMimeType: 'application/json',
    responseSchema: { type: 'object', properties: { echo: { type: 'string' } }, required: ['echo'] },
  });
  const o = await client.chat.completions.create({
    model: 'gem', messages: [{ role: 'user', content: 'obj' }], response_format: { type: 'json_object' },
  });
  assert.deepEqual(JSON.parse(o.choices[0].message.content), { echo: 'echo: obj' });
});

test('gemini: reasoning_effort becomes thinkingConfig with the thoughts asked for', async () => {
  await mock.clear();
  const r = await client.chat.completions.create({
    model: 'gem', messages: [{ role: 'user', content: 'think' }], reasoning_effort: 'medium', max_tokens: 100,
  });
  assert.equal(r.choices[0].message.content, 'echo: think');
  const [up] = await mock.requests();
  assert.deepEqual(up.body.generationConfig, {
    maxOutputTokens: 4196, thinkingConfig: { thinkingBudget: 4096, includeThoughts: true }, // raised by the budget
  });
  await assert.rejects(
    client.chat.completions.create({ model: 'gem', messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'extreme' }),
    (e) => e.status === 400 && /reasoning_effort/.test(e.message),
  );
});

test('gemini: embeddings, single and batch, base64 (SDK default) and float', async () => {
  await mock.clear();
  const one = await client.embeddings.create({ model: 'gemb', input: 'hello embeddings' });
  assert.equal(one.object, 'list');
  assert.equal(one.data.length, 1);
  assert.equal(one.data[0].embedding.length, 8);
  assert.equal(one.model, 'text-embedding-004');
  const flt = await client.embeddings.create({ model: 'gemb', input: 'hello embeddings', encoding_format: 'float' });
  flt.data[0].embedding.forEach((v, i) => assert.ok(Math.abs(v - one.data[0].embedding[i]) < 1e-6));
  let recs = await mock.requests();
  assert.equal(recs[0].path, '/v1beta/models/text-embedding-004:embedContent');
  assert.deepEqual(recs[0].body, { model: 'models/text-embedding-004', content: { parts: [{ text: 'hello embeddings' }] } });
  assert.equal(recs[0].body.encoding_format, undefined);

  await mock.clear();
  const many = await client.embeddings.create({ model: 'gemb', input: ['a', 'b', 'a'], dimensions: 16 });
  assert.equal(many.data.length, 3);
  assert.deepEqual(many.data.map((d) => d.index), [0, 1, 2]);
  assert.ok(many.data.every((d) => d.embedding.length === 16));
  assert.deepEqual(many.data[0].embedding, many.data[2].embedding, 'same text, same vector');
  assert.notDeepEqual(many.data[0].embedding, many.data[1].embedding);
  recs = await mock.requests();
  assert.equal(recs[0].path, '/v1beta/models/text-embedding-004:batchEmbedContents');
  assert.equal(recs[0].body.requests.length, 3);
  assert.deepEqual(recs[0].body.requests[1], {
    model: 'models/text-embedding-004', content: { parts: [{ text: 'b' }] }, outputDimensionality: 16,
  });
});

test('gemini: errors keep Google\'s words; 400 is returned, not retried', async () => {
  await mock.clear();
  await assert.rejects(
    client.chat.completions.create({ model: 'gem', messages: [{ role: 'user', content: 'x [mock status=400]' }] }),
    (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.error.message, 'mock error 400');
      assert.equal(e.error.type, 'invalid_request_error');
      assert.equal(e.error.code, 'invalid_argument');
      return true;
    },
  );
  assert.equal((await mock.requests()).length, 1);
  // a request Gemini refuses as invalid (the mock validates like Google does)
  const bad = await fetch(`${mock.url}/v1beta/models/m:generateContent`, {
    method: 'POST', headers: { 'x-goog-api-key': 'k' },
    body: JSON.stringify({ contents: [{ role: 'assistant', parts: [{ text: 'x' }] }] }),
  });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.status, 'INVALID_ARGUMENT');
});

test('gemini: 429 is retried on the same deployment, then the next one serves', async () => {
  const r = await startRouter(baseConfig({
    credentials: `
  - name: g1
    type: gemini
    api_key: gem-key-429-a
    base_url: ${mock.url}
  - name: g2
    type: gemini
    api_key: gem-key-429-b
    base_url: ${mock.url}
`,
    models: `
  - name: m
    credential: g1
    model: gemini-2.0-flash
    weight: 1
  - name: m
    credential: g2
    model: gemini-2.0-flash-001
    weight: 0
`,
    extra: 'routing:\n  strategy: weighted\n  rate_limit_retries: 1\n  retry_delay: 10ms\n'
      + 'circuit_breaker:\n  failure_threshold: -1\n'
      + 'fail2ban:\n  max_attempts: -1\n',
  }));
  await mock.clear();
  await mock.queue([{ status: 429 }, { status: 429 }], 'gem-key-429-a');
  const { data, response } = await sdk(r).chat.completions
    .create({ model: 'm', messages: [{ role: 'user', content: 'retry me' }] }).withResponse();
  assert.equal(response.status, 200);
  assert.equal(data.choices[0].message.content, 'echo: retry me');
  assert.equal(data._router.credential, 'g2');
  assert.equal(data._router.attempts, 3);
  assert.deepEqual(data._router.errors.map((e) => [e.credential, e.status, e.message]), [
    ['g1', 429, 'mock error 429'], ['g1', 429, 'mock error 429'],
  ]);
  const recs = await mock.requests();
  assert.deepEqual(recs.map((x) => x.headers['x-goog-api-key']), ['gem-key-429-a', 'gem-key-429-a', 'gem-key-429-b']);

  // when every attempt is refused the client gets 429 with Google's message
  await mock.queue([{ status: 429 }, { status: 429 }], 'gem-key-429-a');
  await mock.queue([{ status: 429 }, { status: 429 }], 'gem-key-429-b');
  await assert.rejects(
    sdk(r).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }),
    (e) => { assert.equal(e.status, 429); assert.equal(e.error.message, 'mock error 429'); return true; },
  );
  await r.stop();
});

test('vertex-ai: a service account\'s token is fetched and used', async () => {
  await mock.clear();
  const r = await client.chat.completions.create({ model: 'vtx', messages: [{ role: 'user', content: 'hello vertex' }] });
  assert.equal(r.choices[0].message.content, 'echo: hello vertex');
  assert.equal(r._router.provider, 'vertex-ai');
  const [up] = await mock.requests();
  assert.equal(up.path, '/v1/projects/e2e-proj/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent');
  assert.match(up.headers.authorization, /^Bearer ya29\.mock-[0-9a-f]{32}$/);
  assert.equal(up.headers['x-goog-api-key'], undefined);

  // streams and :predict embeddings carry the same token
  await mock.clear();
  const stream = await client.chat.completions.create({
    model: 'vtx', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'stream from vertex' }],
  });
  const { chunks } = await collect(stream);
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'echo: stream from vertex');
  assert.equal(chunks.at(-1).usage.completion_tokens, 4);
  const emb = await client.embeddings.create({ model: 'vemb', input: ['alpha', 'beta gamma'] });
  assert.equal(emb.data.length, 2);
  assert.ok(emb.usage.prompt_tokens > 0, 'token_count of the predictions');
  const recs = await mock.requests();
  assert.equal(recs[0].path, '/v1/projects/e2e-proj/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent');
  assert.equal(recs[0].query, 'alt=sse');
  assert.equal(recs[1].path, '/v1/projects/e2e-proj/locations/us-central1/publishers/google/models/text-embedding-005:predict');
  assert.deepEqual(recs[1].body, { instances: [{ content: 'alpha' }, { content: 'beta gamma' }] });
  assert.equal(recs[0].headers.authorization, up.headers.authorization);
  assert.equal(recs[1].headers.authorization, up.headers.authorization);
});

test('vertex-ai: the JWT grant the mock verified', async () => {
  // the grant made at start is not in the records any more: reload to see a fresh one
  await mock.clear();
  router.signal('SIGHUP');
  const [grant] = await waitFor(async () => {
    const t = await tokenRequests(mock);
    return t.length ? t : false;
  }, { what: 'a token request after SIGHUP' });
  assert.equal(grant.method, 'POST');
  assert.equal(grant.headers['content-type'], 'application/x-www-form-urlencoded');
  const form = new URLSearchParams(grant.body);
  assert.equal(form.get('grant_type'), 'urn:ietf:params:oauth:grant-type:jwt-bearer');
  const [h, c, s] = form.get('assertion').split('.');
  assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url')), { alg: 'RS256', typ: 'JWT', kid: 'e2e0123456789' });
  const claims = JSON.parse(Buffer.from(c, 'base64url'));
  assert.equal(claims.iss, 'airouter-e2e@e2e-proj.iam.gserviceaccount.com');
  assert.equal(claims.aud, `${mock.url}/token`);
  assert.equal(claims.scope, 'https://www.googleapis.com/auth/cloud-platform');
  assert.equal(claims.exp - claims.iat, 3600);
  assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 60);
  assert.equal(Buffer.from(s, 'base64url').length, 256);
  // the reloaded runtime serves with its own token
  await waitFor(async () => {
    const r = await client.chat.completions.create({ model: 'vtx', messages: [{ role: 'user', content: 'after reload' }] });
    return r.choices[0].message.content === 'echo: after reload';
  }, { what: 'vertex after reload' });
});

test('vertex-ai: api_key mode and the global location', async () => {
  await mock.clear();
  const r = await client.chat.completions.create({ model: 'vkey', messages: [{ role: 'user', content: 'keyed' }] });
  assert.equal(r.choices[0].message.content, 'echo: keyed');
  const [up] = await mock.requests();
  // base_url replaces https://aiplatform.googleapis.com; the path keeps `global`
  assert.equal(up.path, '/v1/projects/key-proj/locations/global/publishers/google/models/gemini-2.5-flash:generateContent');
  assert.equal(up.headers['x-goog-api-key'], 'vertex-e2e-api-key');
  assert.equal(up.headers.authorization, undefined);
  assert.equal((await tokenRequests(mock)).length, 0, 'an API key needs no token');
});

test('vertex-ai: a short-lived token is renewed in the background', async () => {
  const pub = writeConfig(keys.publicKey, 'oauth.pub');
  const m = await startMock(['--oauth-public-key', pub, '--oauth-expires-in', '62']);
  const sa = serviceAccount(m, keys.privateKey);
  const r = await startRouter(baseConfig({
    credentials: `
  - name: short
    type: vertex-ai
    project_id: short-proj
    location: europe-west4
    credentials_file: ${sa}
    base_url: ${m.url}
`,
    models: '  - name: v\n    credential: short\n    model: gemini-2.0-flash\n',
  }));
  const first = await tokenRequests(m);
  assert.equal(first.length, 1, 'one token fetched before serving');
  // 62 s of life: renewed 60 s before expiry, i.e. about 2 s after it was issued
  await waitFor(async () => (await tokenRequests(m)).length >= 2,
    { timeoutMs: 15000 * slow, what: 'a second token request' });
  const c = sdk(r);
  const t0 = performance.now();
  const res = await c.chat.completions.create({ model: 'v', messages: [{ role: 'user', content: 'fresh' }] });
  assert.equal(res.choices[0].message.content, 'echo: fresh');
  assert.ok(performance.now() - t0 < 2000 * slow, 'requests never wait for a token');
  const calls = (await m.requests()).filter((x) => x.path.endsWith(':generateContent'));
  assert.equal(calls.length, 1);
  assert.equal(calls[0].path, '/v1/projects/short-proj/locations/europe-west4/publishers/google/models/gemini-2.0-flash:generateContent');
  await r.stop();
  await m.stop();
});

test('vertex-ai: a key the token endpoint refuses fails over, and nothing blocks', async () => {
  const sa = serviceAccount(mock, wrongKeys.privateKey, 'wrong@e2e-proj.iam.gserviceaccount.com');
  await mock.clear();
  const started = performance.now();
  const r = await startRouter(baseConfig({
    credentials: `
  - name: vbad
    type: vertex-ai
    project_id: bad-proj
    location: us-east5
    credentials_file: ${sa}
    base_url: ${mock.url}
  - name: gfb
    type: gemini
    api_key: gem-fallback-key
    base_url: ${mock.url}
`,
    models: `
  - name: m
    credential: vbad
    model: gemini-2.5-pro
    weight: 1
  - name: m
    credential: gfb
    model: gemini-2.0-flash
    weight: 0
  - name: only
    credential: vbad
    model: gemini-2.5-pro
`,
    // a token-endpoint failure is transient and ours: it must not count (max_attempts 1 would
    // ban the credential for good on the first counted failure)
    extra: 'routing:\n  strategy: weighted\nfail2ban:\n  max_attempts: 1\n  ban_duration: permanent\n' +
      'circuit_breaker:\n  failure_threshold: 1\n',
  }));
  assert.ok(performance.now() - started < 10000 * slow, 'start is not held up by the refusal');
  assert.ok((await tokenRequests(mock)).length >= 1, 'the grant was tried');
  const c = sdk(r);
  const { data } = await c.chat.completions
    .create({ model: 'm', messages: [{ role: 'user', content: 'fail over' }] }).withResponse();
  assert.equal(data.choices[0].message.content, 'echo: fail over');
  assert.equal(data._router.credential, 'gfb');
  assert.equal(data._router.errors.length, 1);
  assert.equal(data._router.errors[0].credential, 'vbad');
  assert.equal(data._router.errors[0].status, 503);
  assert.match(data._router.errors[0].message, /no access token yet/);
  // with no other credential the client gets 503 saying why, at once, every time: the
  // credential is neither banned nor tripped by it
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await assert.rejects(
      c.chat.completions.create({ model: 'only', messages: [{ role: 'user', content: 'x' }] }),
      (e) => { assert.equal(e.status, 503); assert.match(e.message, /no access token yet/); return true; },
    );
    assert.ok(performance.now() - t0 < 2000 * slow);
  }
  const health = await (await fetch(`${r.url}/health`)).json();
  const vbad = health.credentials.find((x) => x.name === 'vbad');
  assert.equal(vbad.banned, false);
  assert.ok(health.models.filter((x) => x.credential === 'vbad').every((x) => x.state === 'CLOSED'),
    JSON.stringify(health.models));
  // nothing reached the Vertex paths without a token
  const vertexCalls = (await mock.requests()).filter((x) => x.path.startsWith('/v1/projects/bad-proj/'));
  assert.equal(vertexCalls.length, 0);
  // the refused grant is retried in the background with backoff
  await waitFor(async () => (await tokenRequests(mock)).length >= 2,
    { timeoutMs: 10000 * slow, what: 'a retried token request' });
  await r.stop();
});
