// Anthropic both ways. (a) The official openai SDK -> airouter -> an `anthropic` credential ->
// the mock upstream speaking Anthropic's wire format: text, streams, usage (cache reads
// included), a tool-call round trip, images, JSON mode, stop sequences, max_tokens, errors
// and the outcome table (429 retried, 529 switched), and what the mock received.
// (b) The official @anthropic-ai/sdk -> airouter POST /v1/messages -> a `mock`, an `openai`
// and an `anthropic` credential: whole and streamed messages, system prompts, a tool-use
// round trip, Anthropic-shaped errors, x-api-key and Authorization: Bearer, count_tokens.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startRouter, baseConfig, waitFor, MASTER_KEY } from './lib/harness.mjs';

const KEY_A = 'sk-ant-upstream-a-0123456789';
const KEY_B = 'sk-ant-upstream-b-0123456789';
const KEY_OAI = 'sk-oai-upstream-0123456789';
const CLAUDE = 'claude-3-5-sonnet-20241022';

let mock;
let router;
let oai;
let anth;

before(async () => {
  mock = await startMock(['--require-key', KEY_A, '--require-key', KEY_B, '--require-key', KEY_OAI]);
  router = await startRouter(baseConfig({
    credentials: `
  - name: claude_a
    type: anthropic
    api_key: ${KEY_A}
    base_url: ${mock.url}
    headers:
      anthropic-beta: "prompt-caching-2024-07-31"
  - name: claude_b
    type: anthropic
    api_key: ${KEY_B}
    base_url: ${mock.url}
  - name: oai
    type: openai
    api_key: ${KEY_OAI}
    base_url: ${mock.url}
  - name: local
    type: mock
`,
    models: `
  - name: claude
    credential: claude_a
    model: ${CLAUDE}
    max_output_tokens: 2048
  - name: claude-pair
    credential: claude_a
    model: ${CLAUDE}
    weight: 1
  - name: claude-pair
    credential: claude_b
    model: claude-3-5-haiku-20241022
    weight: 0
  - name: claude-b
    credential: claude_b
    model: claude-3-5-haiku-20241022
  - name: gpt
    credential: oai
    model: mock-gpt-4o
  - name: gpt-r
    credential: oai
    model: mock-o3
    type: reasoning
  - name: mocky
    credential: local
`,
    extra: `routing:
  strategy: weighted
  retry_delay: 10ms
  rate_limit_retries: 2
fail2ban:
  max_attempts: -1
circuit_breaker:
  failure_threshold: -1
`,
  }));
  oai = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${router.url}/v1`, maxRetries: 0, timeout: 20000 });
  anth = new Anthropic({ apiKey: MASTER_KEY, baseURL: router.url, maxRetries: 0, timeout: 20000 });
});

// The mock's records of requests to the Anthropic route made with an upstream key.
async function anthropicSeen(key = KEY_A) {
  return (await mock.requests()).filter((r) => r.path === '/v1/messages' && r.headers['x-api-key'] === key);
}

async function collect(stream) {
  const chunks = [];
  let error = null;
  try {
    for await (const c of stream) chunks.push(c);
  } catch (e) {
    error = e;
  }
  return { chunks, error, content: chunks.map((c) => c.choices?.[0]?.delta?.content || '').join('') };
}

// ---- (a) OpenAI clients, anthropic credential ----

test('openai sdk -> anthropic: text, usage, metadata, and the wire request', async () => {
  await mock.clear();
  const { data: r, response } = await oai.chat.completions.create({
    model: 'claude',
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hello world' },
    ],
    temperature: 0.2,
    top_p: 0.8,
    user: 'user-7',
    stop: ['NEVER'],
    seed: 3,
  }).withResponse();
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-msg_mock_\d+$/);
  assert.equal(r.model, CLAUDE);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, 'echo: Hello world');
  assert.equal(r.choices[0].finish_reason, 'stop');
  // "You are terse." + "Hello world" = 25 characters -> 7 tokens; 3 words out
  assert.deepEqual(r.usage, { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10, prompt_tokens_details: { cached_tokens: 0 } });
  assert.equal(r._router.provider, 'anthropic');
  assert.equal(r._router.credential, 'claude_a');
  assert.equal(response.headers.get('x-airouter-credential'), 'claude_a');

  const [up] = await anthropicSeen();
  assert.equal(up.method, 'POST');
  assert.equal(up.headers['x-api-key'], KEY_A);
  assert.equal(up.headers['anthropic-version'], '2023-06-01');
  assert.equal(up.headers['anthropic-beta'], 'prompt-caching-2024-07-31');
  assert.equal(up.headers.authorization, undefined, 'no bearer key upstream');
  assert.deepEqual(up.body, {
    model: CLAUDE,
    system: 'You are terse.',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello world' }] }],
    max_tokens: 2048, // the deployment's max_output_tokens
    temperature: 0.2,
    top_p: 0.8,
    stop_sequences: ['NEVER'],
    metadata: { user_id: 'user-7' },
  });
});

test('openai sdk -> anthropic: reasoning_effort becomes a thinking budget', async () => {
  await mock.clear();
  const r = await oai.chat.completions.create({
    model: 'claude', messages: [{ role: 'user', content: 'think' }], reasoning_effort: 'low', max_tokens: 500, temperature: 0.3,
  });
  assert.equal(r.choices[0].message.content, 'echo: think');
  const [up] = await anthropicSeen();
  assert.deepEqual(up.body.thinking, { type: 'enabled', budget_tokens: 1024 });
  assert.equal(up.body.max_tokens, 1524, 'raised above the budget');
  assert.equal(up.body.temperature, undefined, 'Anthropic refuses temperature with thinking');
  await assert.rejects(
    oai.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'extreme' }),
    (e) => e.status === 400 && /reasoning_effort/.test(e.message),
  );
});

test('openai sdk -> anthropic: merged turns, stop sequences, max_tokens, JSON mode', async () => {
  await mock.clear();
  // consecutive user messages are one Anthropic turn; the mock refuses non-alternating roles
  let r = await oai.chat.completions.create({
    model: 'claude',
    messages: [
      { role: 'user', content: 'first' },
      { role: 'user', content: 'alpha beta STOP gamma' },
    ],
    stop: 'STOP',
  });
  assert.equal(r.choices[0].message.content, 'echo: first alpha beta ');
  assert.equal(r.choices[0].finish_reason, 'stop');
  let [up] = await anthropicSeen();
  assert.deepEqual(up.body.messages, [{ role: 'user', content: [{ type: 'text', text: 'first' }, { type: 'text', text: 'alpha beta STOP gamma' }] }]);
  assert.deepEqual(up.body.stop_sequences, ['STOP']);

  await mock.clear();
  r = await oai.chat.completions.create({
    model: 'claude',
    messages: [{ role: 'user', content: 'one two three four five' }],
    max_completion_tokens: 3,
  });
  assert.equal(r.choices[0].message.content, 'echo: one two');
  assert.equal(r.choices[0].finish_reason, 'length', 'max_tokens -> length');
  [up] = await anthropicSeen();
  assert.equal(up.body.max_tokens, 3);

  await mock.clear();
  await oai.chat.completions.create({
    model: 'claude',
    messages: [{ role: 'user', content: 'Alice is 31' }],
    response_format: { type: 'json_schema', json_schema: { name: 'p', schema: { type: 'object', properties: { age: { type: 'integer' } } } } },
  });
  [up] = await anthropicSeen();
  assert.equal(typeof up.body.system, 'string');
  assert.match(up.body.system, /only with a single valid JSON object/);
  assert.match(up.body.system, /"age":\{"type":"integer"\}/);
  assert.equal(up.body.response_format, undefined);
});

test('openai sdk -> anthropic: streaming chunks, finish_reason and usage', async () => {
  await mock.clear();
  let s = await collect(await oai.chat.completions.create({
    model: 'claude',
    messages: [{ role: 'user', content: 'one two three' }],
    stream: true,
    stream_options: { include_usage: true },
  }));
  assert.equal(s.error, null);
  assert.equal(s.content, 'echo: one two three');
  assert.deepEqual(s.chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  assert.equal(s.chunks[0].object, 'chat.completion.chunk');
  assert.match(s.chunks[0].id, /^chatcmpl-msg_mock_/);
  const fin = s.chunks.filter((c) => c.choices?.[0]?.finish_reason);
  assert.equal(fin.length, 1);
  assert.equal(fin[0].choices[0].finish_reason, 'stop');
  const last = s.chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 4);
  assert.equal(last.usage.prompt_tokens, 4);
  assert.equal(last.usage.total_tokens, 8);
  const [up] = await anthropicSeen();
  assert.equal(up.body.stream, true);
  assert.equal(up.headers.accept, 'text/event-stream');
  assert.equal(up.body.stream_options, undefined);

  // no include_usage: no usage chunk
  s = await collect(await oai.chat.completions.create({
    model: 'claude', messages: [{ role: 'user', content: 'a b' }], stream: true,
  }));
  assert.equal(s.content, 'echo: a b');
  assert.ok(s.chunks.every((c) => c.choices.length === 1 && !c.usage));

  // max_tokens in a stream ends with finish_reason length
  s = await collect(await oai.chat.completions.create({
    model: 'claude', messages: [{ role: 'user', content: 'a b c d' }], stream: true, max_tokens: 2,
  }));
  assert.equal(s.content, 'echo: a');
  assert.equal(s.chunks.at(-1).choices[0].finish_reason, 'length');
});

test('openai sdk -> anthropic: cache reads count in prompt_tokens and cached_tokens', async () => {
  const r = await oai.chat.completions.create({
    model: 'claude',
    messages: [
      // 40 characters of cached system prompt -> 10 cache-read tokens
      { role: 'system', content: [{ type: 'text', text: 'x'.repeat(40), cache_control: { type: 'ephemeral' } }] },
      { role: 'user', content: 'abcd' },
    ],
  });
  assert.equal(r.usage.prompt_tokens_details.cached_tokens, 10);
  assert.equal(r.usage.prompt_tokens, 11, 'input 1 + cache read 10');
  const [up] = (await anthropicSeen()).slice(-1);
  assert.deepEqual(up.body.system, [{ type: 'text', text: 'x'.repeat(40), cache_control: { type: 'ephemeral' } }]);
});

test('openai sdk -> anthropic: tool call round trip, whole and streamed', async () => {
  const tools = [{
    type: 'function',
    function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { x: { type: 'integer' } } } },
  }];
  await mock.clear();
  const q = { role: 'user', content: 'What is the weather? [tool]' };
  const r1 = await oai.chat.completions.create({ model: 'claude', messages: [q], tools, tool_choice: 'required' });
  const msg = r1.choices[0].message;
  assert.equal(r1.choices[0].finish_reason, 'tool_calls');
  assert.equal(msg.content, null);
  assert.deepEqual(msg.tool_calls, [{ id: 'toolu_mock_1', type: 'function', function: { name: 'get_weather', arguments: '{"x":1}' } }]);
  let [up] = await anthropicSeen();
  assert.deepEqual(up.body.tools, [{ name: 'get_weather', description: 'Weather of a city', input_schema: tools[0].function.parameters }]);
  assert.deepEqual(up.body.tool_choice, { type: 'any' });

  await mock.clear();
  const r2 = await oai.chat.completions.create({
    model: 'claude',
    tools,
    messages: [q, msg, { role: 'tool', tool_call_id: 'toolu_mock_1', content: 'sunny, 21C' }],
  });
  assert.equal(r2.choices[0].message.content, 'echo: sunny, 21C');
  assert.equal(r2.choices[0].finish_reason, 'stop');
  [up] = await anthropicSeen();
  assert.deepEqual(up.body.messages, [
    { role: 'user', content: [{ type: 'text', text: 'What is the weather? [tool]' }] },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_mock_1', name: 'get_weather', input: { x: 1 } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_mock_1', content: 'sunny, 21C' }] },
  ]);

  // streamed: the tool call arrives as OpenAI deltas, arguments in pieces
  const s = await collect(await oai.chat.completions.create({ model: 'claude', messages: [q], tools, stream: true }));
  assert.equal(s.error, null);
  const calls = s.chunks.flatMap((c) => c.choices?.[0]?.delta?.tool_calls || []);
  assert.equal(calls[0].id, 'toolu_mock_1');
  assert.equal(calls[0].function.name, 'get_weather');
  assert.ok(calls.length >= 3, 'arguments come in pieces');
  assert.ok(calls.every((c) => c.index === 0));
  assert.equal(calls.map((c) => c.function.arguments || '').join(''), '{"x":1}');
  assert.equal(s.chunks.at(-1).choices[0].finish_reason, 'tool_calls');

  // arguments that are not JSON cannot be sent to Anthropic: refused, nothing sent
  await mock.clear();
  await assert.rejects(
    oai.chat.completions.create({
      model: 'claude',
      tools,
      messages: [q, { role: 'assistant', tool_calls: [{ id: 't', type: 'function', function: { name: 'get_weather', arguments: '{oops' } }] }],
    }),
    (e) => e.status === 400 && e.error?.type === 'invalid_request_error' && /arguments/.test(e.message),
  );
  assert.equal((await anthropicSeen()).length, 0);
});

test('openai sdk -> anthropic: images by URL and base64', async () => {
  await mock.clear();
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
  const r = await oai.chat.completions.create({
    model: 'claude',
    messages: [{
      role: 'user',
      content: [
        { type: 'text', text: 'Describe these' },
        { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
      ],
    }],
  });
  assert.equal(r.choices[0].message.content, 'echo: Describe these');
  const [up] = await anthropicSeen();
  assert.deepEqual(up.body.messages[0].content, [
    { type: 'text', text: 'Describe these' },
    { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
  ]);
});

test('openai sdk -> anthropic: upstream errors translated, 429 retried, 529 switched', async () => {
  await mock.clear();
  // 400: returned as is, OpenAI-shaped, with the upstream's message
  await mock.queue([{ status: 400 }], KEY_A);
  await assert.rejects(
    oai.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'x' }] }),
    (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.error.message, 'mock error 400');
      assert.equal(e.error.type, 'invalid_request_error');
      return true;
    },
  );
  // 429 twice: retried on the same deployment (rate_limit_retries: 2), then served
  await mock.clear();
  await mock.queue([{ status: 429 }, { status: 429 }], KEY_A);
  const { data: r, response } = await oai.chat.completions
    .create({ model: 'claude', messages: [{ role: 'user', content: 'retry me' }] })
    .withResponse();
  assert.equal(r.choices[0].message.content, 'echo: retry me');
  assert.equal(response.headers.get('x-airouter-attempts'), '3');
  assert.deepEqual(r._router.errors.map((e) => [e.credential, e.status, e.message]),
    [['claude_a', 429, 'mock error 429'], ['claude_a', 429, 'mock error 429']]);
  assert.equal((await anthropicSeen()).length, 3);
  // 529 (overloaded) counts like a 5xx: the next candidate serves
  await mock.clear();
  await mock.queue([{ status: 529 }], KEY_A);
  const r2 = await oai.chat.completions.create({ model: 'claude-pair', messages: [{ role: 'user', content: 'switch' }] });
  assert.equal(r2.choices[0].message.content, 'echo: switch');
  assert.equal(r2._router.credential, 'claude_b');
  assert.equal(r2.model, 'claude-3-5-haiku-20241022');
  assert.deepEqual(r2._router.errors.map((e) => [e.credential, e.status, e.message]), [['claude_a', 529, 'mock error 529']]);
  assert.equal((await anthropicSeen(KEY_B)).length, 1);
  // a broken event mid-stream ends the stream with an error the SDK raises
  await mock.clear();
  await mock.queue([{ malformed: 1 }], KEY_A);
  const s = await collect(await oai.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'a b c' }], stream: true }));
  assert.ok(s.error, 'the stream ends in an error');
  assert.equal(s.content, 'echo: a b c', 'what came before the error was delivered');
});

// ---- (b) Anthropic clients, POST /v1/messages ----

const BACKENDS = ['mocky', 'gpt', 'claude'];

test('anthropic sdk -> /v1/messages: whole messages from every backend', async () => {
  for (const model of BACKENDS) {
    await mock.clear();
    const { data: m, response } = await anth.messages.create({
      model,
      max_tokens: 100,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Hello there' }],
    }).withResponse();
    assert.equal(m.type, 'message', model);
    assert.equal(m.role, 'assistant');
    assert.match(m.id, /^msg_/);
    assert.deepEqual(m.content, [{ type: 'text', text: 'echo: Hello there' }], model);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.stop_sequence, null);
    assert.equal(m.usage.output_tokens, 3, model);
    assert.ok(m.usage.input_tokens >= 1, model);
    assert.equal(m._router, undefined, 'the body stays pure Anthropic');
    assert.ok(response.headers.get('x-airouter-credential'), 'metadata headers still go out');
    assert.equal(response.headers.get('content-type'), 'application/json');
  }
  // what the upstreams saw: OpenAI wire for `gpt`, Anthropic wire for `claude`
  await mock.clear();
  await anth.messages.create({
    model: 'gpt',
    max_tokens: 100,
    system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi', cache_control: { type: 'ephemeral' } }] }],
    stop_sequences: ['END'],
    temperature: 0.1,
    top_k: 3,
    metadata: { user_id: 'u1' },
  });
  const [o] = (await mock.requests()).filter((r) => r.path === '/v1/chat/completions');
  assert.equal(o.headers.authorization, `Bearer ${KEY_OAI}`);
  // no cache_control and no top_k: OpenAI refuses unknown fields
  assert.deepEqual(o.body.messages, [
    { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
    { role: 'user', content: [{ type: 'text', text: 'Hi' }] },
  ]);
  assert.equal(o.body.top_k, undefined);
  assert.equal(o.body.model, 'mock-gpt-4o');
  assert.equal(o.body.max_tokens, 100);
  assert.deepEqual(o.body.stop, ['END']);
  assert.equal(o.body.temperature, 0.1);
  assert.equal(o.body.user, 'u1');
  await mock.clear();
  await anth.messages.create({ model: 'claude', max_tokens: 100, system: [{ type: 'text', text: 'Be brief.' }], messages: [{ role: 'user', content: 'Hi' }] });
  const [a] = await anthropicSeen();
  assert.equal(a.headers['x-api-key'], KEY_A, 'the upstream key, never the client key');
  assert.equal(a.headers['anthropic-version'], '2023-06-01');
  // an anthropic credential gets the request as the client wrote it
  assert.deepEqual(a.body.system, [{ type: 'text', text: 'Be brief.' }]);
  assert.equal(a.body.max_tokens, 100);
  assert.deepEqual(a.body.messages, [{ role: 'user', content: 'Hi' }]);
  // prompt caching survives the trip to an Anthropic upstream (Claude Code relies on it)
  await mock.clear();
  await anth.messages.create({
    model: 'claude',
    max_tokens: 100,
    system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi', cache_control: { type: 'ephemeral' } }] }],
  });
  const [c] = await anthropicSeen();
  assert.deepEqual(c.body.system, [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }]);
  assert.deepEqual(c.body.messages, [{ role: 'user', content: [{ type: 'text', text: 'Hi', cache_control: { type: 'ephemeral' } }] }]);
});

test('anthropic sdk -> /v1/messages: stop reasons come back mapped', async () => {
  for (const model of ['gpt', 'claude']) {
    const m = await anth.messages.create({ model, max_tokens: 2, messages: [{ role: 'user', content: 'one two three' }] });
    if (model === 'claude') {
      assert.equal(m.stop_reason, 'max_tokens', model);
      assert.deepEqual(m.content, [{ type: 'text', text: 'echo: one' }]);
    } else {
      assert.equal(m.stop_reason, 'end_turn', 'the OpenAI mock ignores max_tokens');
    }
  }
});

test('anthropic sdk -> /v1/messages: streams from every backend', async () => {
  for (const model of BACKENDS) {
    const stream = anth.messages.stream({ model, max_tokens: 100, messages: [{ role: 'user', content: 'one two three' }] });
    const types = [];
    let start = null;
    stream.on('streamEvent', (e) => {
      types.push(e.type);
      if (e.type === 'message_start') start = e;
    });
    let text = '';
    stream.on('text', (t) => { text += t; });
    const m = await stream.finalMessage();
    assert.equal(text, 'echo: one two three', model);
    assert.deepEqual(m.content, [{ type: 'text', text: 'echo: one two three' }], model);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.usage.output_tokens, 4, model);
    assert.ok(m.usage.input_tokens >= 1, `${model}: input tokens reach message_delta`);
    // message_start already has an input count (the estimate until the upstream says)
    assert.ok(start.message.usage.input_tokens > 0, `${model}: message_start input_tokens`);
    assert.equal(types[0], 'message_start');
    assert.equal(types[1], 'content_block_start');
    assert.equal(types.at(-3), 'content_block_stop');
    assert.equal(types.at(-2), 'message_delta');
    assert.equal(types.at(-1), 'message_stop');
    assert.ok(types.filter((t) => t === 'content_block_delta').length >= 2, model);
  }
  // create({stream: true}) gives the raw events
  const raw = await anth.messages.create({ model: 'claude', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'x y' }] });
  const events = [];
  for await (const e of raw) events.push(e);
  assert.equal(events[0].type, 'message_start');
  assert.match(events[0].message.id, /^msg_mock_/);
  assert.equal(events[0].message.model, CLAUDE);
  assert.equal(events[0].message.usage.input_tokens, 1, '"x y": 3 characters -> 1');
  const deltas = events.filter((e) => e.type === 'content_block_delta').map((e) => e.delta);
  assert.ok(deltas.every((d) => d.type === 'text_delta'));
  assert.equal(deltas.map((d) => d.text).join(''), 'echo: x y');
  const md = events.find((e) => e.type === 'message_delta');
  assert.equal(md.delta.stop_reason, 'end_turn');
  assert.equal(md.usage.output_tokens, 3);
  // the upstream was asked for a stream
  const [a] = (await anthropicSeen()).slice(-1);
  assert.equal(a.body.stream, true);
});

test('anthropic sdk -> /v1/messages: tool use round trip through each backend', async () => {
  const tools = [{ name: 'get_weather', description: 'Weather of a city', input_schema: { type: 'object', properties: { x: { type: 'integer' } }, required: ['x'] } }];
  for (const model of ['gpt', 'claude']) {
    await mock.clear();
    const q = { role: 'user', content: 'Weather in Paris? [tool]' };
    const m1 = await anth.messages.create({ model, max_tokens: 100, tools, tool_choice: { type: 'auto' }, messages: [q] });
    assert.equal(m1.stop_reason, 'tool_use', model);
    const use = m1.content.find((b) => b.type === 'tool_use');
    assert.ok(use, model);
    assert.equal(use.name, 'get_weather');
    assert.deepEqual(use.input, { x: 1 });
    assert.equal(use.id, model === 'gpt' ? 'call_mock_1' : 'toolu_mock_1');

    const m2 = await anth.messages.create({
      model,
      max_tokens: 100,
      tools,
      messages: [
        q,
        { role: 'assistant', content: m1.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' }, { type: 'text', text: 'Summarize.' }] },
      ],
    });
    // the OpenAI mock echoes the last user message, the Anthropic mock the tool result
    const echo = model === 'gpt' ? 'echo: Summarize.' : 'echo: sunny';
    assert.deepEqual(m2.content, [{ type: 'text', text: echo }], model);
    assert.equal(m2.stop_reason, 'end_turn');

    const seen = await mock.requests();
    if (model === 'gpt') {
      const last = seen.filter((r) => r.path === '/v1/chat/completions').at(-1).body;
      assert.deepEqual(last.tools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: tools[0].input_schema } }]);
      assert.deepEqual(last.messages.slice(1), [
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_mock_1', type: 'function', function: { name: 'get_weather', arguments: '{"x":1}' } }] },
        { role: 'tool', tool_call_id: 'call_mock_1', content: 'sunny' },
        { role: 'user', content: [{ type: 'text', text: 'Summarize.' }] },
      ]);
    } else {
      const last = seen.filter((r) => r.path === '/v1/messages').at(-1).body;
      assert.deepEqual(last.tools, tools);
      assert.deepEqual(last.messages.slice(1), [
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_mock_1', name: 'get_weather', input: { x: 1 } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_mock_1', content: 'sunny' }, { type: 'text', text: 'Summarize.' }] },
      ]);
    }
    // the same call streamed: input_json_delta pieces assemble into the input
    const m3 = await anth.messages.stream({ model, max_tokens: 100, tools, messages: [q] }).finalMessage();
    assert.equal(m3.stop_reason, 'tool_use', model);
    assert.deepEqual(m3.content.find((b) => b.type === 'tool_use').input, { x: 1 }, model);
  }
});

test('anthropic sdk -> /v1/messages: errors are Anthropic errors', async () => {
  await assert.rejects(
    anth.messages.create({ model: 'no-such-model', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
    (e) => {
      assert.ok(e instanceof Anthropic.NotFoundError, e.constructor.name);
      assert.equal(e.status, 404);
      assert.equal(e.error.type, 'error');
      assert.equal(e.error.error.type, 'not_found_error');
      assert.match(e.error.error.message, /no-such-model/);
      return true;
    },
  );
  const bad = new Anthropic({ apiKey: 'sk-wrong', baseURL: router.url, maxRetries: 0 });
  await assert.rejects(
    bad.messages.create({ model: 'mocky', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
    (e) => {
      assert.ok(e instanceof Anthropic.AuthenticationError, e.constructor.name);
      assert.equal(e.error.error.type, 'authentication_error');
      return true;
    },
  );
  // validation: Anthropic's required fields, named
  const r = await fetch(`${router.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': MASTER_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mocky', messages: [{ role: 'user', content: 'x' }] }),
  });
  assert.equal(r.status, 400);
  assert.deepEqual(await r.json(), { type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } });
  const r2 = await fetch(`${router.url}/v1/messages`, {
    method: 'POST', headers: { 'x-api-key': MASTER_KEY }, body: '{"model": ',
  });
  assert.equal(r2.status, 400);
  assert.equal((await r2.json()).error.type, 'invalid_request_error');
  // upstream errors keep their words, in Anthropic's shape, from either wire format
  for (const [model, key] of [['claude', KEY_A], ['gpt', KEY_OAI]]) {
    await mock.clear();
    await mock.queue([{ status: 400 }], key);
    await assert.rejects(
      anth.messages.create({ model, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
      (e) => {
        assert.ok(e instanceof Anthropic.BadRequestError, `${model}: ${e.constructor.name}`);
        assert.deepEqual(e.error, { type: 'error', error: { type: 'invalid_request_error', message: 'mock error 400' } });
        return true;
      },
    );
  }
  // overloaded everywhere: the last upstream status, typed overloaded_error
  await mock.clear();
  await mock.queue([{ status: 529 }], KEY_A);
  await assert.rejects(
    anth.messages.create({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
    (e) => {
      assert.equal(e.status, 529);
      assert.equal(e.error.error.type, 'overloaded_error');
      return true;
    },
  );
  // a stream that breaks midway ends with an Anthropic `error` event
  await mock.clear();
  await mock.queue([{ malformed: 1 }], KEY_A);
  const stream = await anth.messages.create({ model: 'claude', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'a b' }] });
  const seen = [];
  await assert.rejects(
    (async () => { for await (const e of stream) seen.push(e.type); })(),
    (e) => {
      assert.ok(e instanceof Anthropic.APIError, e.constructor.name);
      assert.equal(e.error.type, 'error');
      assert.equal(e.error.error.type, 'api_error');
      return true;
    },
  );
  assert.equal(seen[0], 'message_start');
  assert.ok(!seen.includes('message_stop'));
});

test('anthropic sdk -> /v1/messages: Authorization: Bearer works too; count_tokens', async () => {
  const bearer = new Anthropic({ apiKey: null, authToken: MASTER_KEY, baseURL: router.url, maxRetries: 0 });
  const m = await bearer.messages.create({ model: 'mocky', max_tokens: 10, messages: [{ role: 'user', content: 'via bearer' }] });
  assert.equal(m.content[0].text, 'echo: via bearer');
  // any anthropic-version is accepted, and none at all
  const r = await fetch(`${router.url}/v1/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'anthropic-version': '2099-01-01' },
    body: JSON.stringify({ model: 'mocky', max_tokens: 5, messages: [{ role: 'user', content: 'v' }] }),
  });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).content[0].text, 'echo: v');
  // a missing key is a 401 in Anthropic's shape
  const r2 = await fetch(`${router.url}/v1/messages`, { method: 'POST', body: '{}' });
  assert.equal(r2.status, 401);
  assert.equal((await r2.json()).error.type, 'authentication_error');

  const c = await anth.messages.countTokens({ model: 'claude', system: 'abcd', messages: [{ role: 'user', content: 'efghijkl' }] });
  assert.deepEqual(c, { input_tokens: 3 });
  const r3 = await fetch(`${router.url}/v1/messages/count_tokens`, {
    method: 'POST', headers: { 'x-api-key': MASTER_KEY }, body: JSON.stringify({ messages: [] }),
  });
  assert.equal(r3.status, 400);
  assert.equal((await r3.json()).error.type, 'invalid_request_error');
});

test('anthropic sdk -> /v1/messages: system entries inside messages (Claude Code 2.1)', async () => {
  const messages = [
    { role: 'user', content: 'first' },
    { role: 'assistant', content: 'ok' },
    { role: 'system', content: 'Plan mode is on.' },
    { role: 'user', content: 'second' },
    { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
  ];
  // an OpenAI-format upstream gets a system message at each position
  await mock.clear();
  const m = await anth.messages.create({ model: 'gpt', max_tokens: 50, system: 'Top.', messages });
  assert.equal(m.type, 'message');
  const [o] = (await mock.requests()).filter((r) => r.path === '/v1/chat/completions');
  assert.deepEqual(o.body.messages, [
    { role: 'system', content: 'Top.' },
    { role: 'user', content: 'first' },
    { role: 'assistant', content: 'ok' },
    { role: 'system', content: 'Plan mode is on.' },
    { role: 'user', content: 'second' },
    { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
  ]);
  // an Anthropic upstream gets them where the client put them (Anthropic accepts them)
  await mock.clear();
  const c = await anth.messages.create({ model: 'claude', max_tokens: 50, system: 'Top.', messages });
  assert.equal(c.content[0].text, 'echo: second');
  const [a] = await anthropicSeen();
  assert.equal(a.body.system, 'Top.');
  assert.deepEqual(a.body.messages, messages);
  // a role that is neither is still refused, in Anthropic's shape
  await assert.rejects(
    anth.messages.create({ model: 'gpt', max_tokens: 5, messages: [{ role: 'tool', content: 'x' }] }),
    (e) => e.status === 400 && /messages\.0\.role/.test(e.error.error.message),
  );
});

test('anthropic pass-through: an anthropic credential gets the body and betas as sent', async () => {
  // what Claude Code sends: thinking, context management, effort, a server tool, metadata
  const body = '{ "model" : "claude-b", "max_tokens": 4096,\n' +
    ' "thinking": {"type": "enabled", "budget_tokens": 2048},' +
    ' "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},' +
    ' "output_config": {"effort": "medium"}, "metadata": {"user_id": "u-1"},' +
    ' "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2},' +
    ' {"name": "get_weather", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],' +
    ' "messages": [{"role": "user", "content": [{"type": "text", "text": "weather?", "cache_control": {"type": "ephemeral"}}]}]}';
  const headers = {
    'x-api-key': MASTER_KEY,
    'content-type': 'application/json',
    'anthropic-version': '2023-06-01',
    'anthropic-beta': 'context-management-2025-06-27,interleaved-thinking-2025-05-14',
  };
  for (const stream of [false, true]) {
    await mock.clear();
    const sent = stream ? body.replace('"max_tokens"', '"stream": true, "max_tokens"') : body;
    const r = await fetch(`${router.url}/v1/messages`, { method: 'POST', headers, body: sent });
    assert.equal(r.status, 200);
    const text = await r.text();
    const [up] = await anthropicSeen(KEY_B);
    // byte-equal except the model
    assert.equal(up.raw, sent.replace('"claude-b"', '"claude-3-5-haiku-20241022"'));
    assert.equal(up.headers['anthropic-beta'], headers['anthropic-beta']);
    assert.equal(up.headers['anthropic-version'], '2023-06-01');
    assert.equal(up.headers['x-api-key'], KEY_B);
    if (stream) {
      // the upstream's events relayed as they came
      assert.match(text, /^event: message_start\n/);
      assert.match(text, /event: message_stop/);
    } else {
      const m = JSON.parse(text);
      assert.equal(m.type, 'message');
      assert.match(m.id, /^msg_mock_/, 'the upstream message itself, not a translation');
      assert.equal(m.model, 'claude-3-5-haiku-20241022');
    }
  }
  // the usage read from the relayed answer is accounted
  const line = await waitFor(() => router.out.split('\n').filter((l) => l.includes('credential=claude_b') && l.includes('stream=true')).pop() || false, { what: 'the access line' });
  assert.match(line, /prompt_tokens=[1-9]/);
  assert.match(line, /completion_tokens=[1-9]/);
  // an OpenAI-format upstream cannot run Anthropic's server tools: a 400 that says why
  const r = await fetch(`${router.url}/v1/messages`, { method: 'POST', headers, body: body.replace('"claude-b"', '"gpt"') });
  assert.equal(r.status, 400);
  const e = await r.json();
  assert.equal(e.error.type, 'invalid_request_error');
  assert.match(e.error.message, /tools/);
  // airouter's own routing fields steer and go no further (Anthropic refuses unknown ones)
  await mock.clear();
  const steer = await fetch(`${router.url}/v1/messages`, {
    method: 'POST', headers,
    body: '{"model":"claude-b","max_tokens":5,"prefer_fast":true,"messages":[{"role":"user","content":"hi"}]}',
  });
  assert.equal(steer.status, 200);
  const [up] = await anthropicSeen(KEY_B);
  assert.equal(up.body.prefer_fast, undefined);
  assert.deepEqual(up.body.messages, [{ role: 'user', content: 'hi' }]);
});

test('anthropic sdk -> /v1/messages: thinking becomes reasoning_effort for reasoning deployments', async () => {
  for (const [model, want] of [['gpt', undefined], ['gpt-r', 'high']]) {
    await mock.clear();
    await anth.messages.create({
      model, max_tokens: 32000, thinking: { type: 'enabled', budget_tokens: 31999 },
      messages: [{ role: 'user', content: 'think' }],
    });
    const [o] = (await mock.requests()).filter((r) => r.path === '/v1/chat/completions');
    assert.equal(o.body.reasoning_effort, want, model);
  }
});

test('anthropic sdk -> /v1/models: the list and one model in Anthropic shape', async () => {
  const page = await anth.models.list();
  const ids = page.data.map((m) => m.id);
  assert.deepEqual(ids.slice(0, 6), ['claude', 'claude-pair', 'claude-b', 'gpt', 'gpt-r', 'mocky']);
  for (const m of page.data) {
    assert.deepEqual(Object.keys(m).sort(), ['created_at', 'display_name', 'id', 'type']);
    assert.equal(m.type, 'model');
    assert.equal(m.display_name, m.id);
    assert.match(m.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(Math.abs(Date.parse(m.created_at) - Date.now()) < 86400e3);
  }
  assert.equal(page.has_more, false);
  assert.equal(page.first_id, ids[0]);
  assert.equal(page.last_id, ids.at(-1));
  const all = [];
  for await (const m of anth.models.list()) all.push(m.id);
  assert.deepEqual(all, ids, 'auto-pagination stops at has_more: false');
  const one = await anth.models.retrieve('gpt');
  assert.deepEqual(Object.keys(one).sort(), ['created_at', 'display_name', 'id', 'type']);
  assert.equal(one.type, 'model');
  assert.equal(one.id, 'gpt');
  await assert.rejects(anth.models.retrieve('no-such-model'), (e) => {
    assert.equal(e.status, 404);
    assert.equal(e.error.type, 'error');
    assert.equal(e.error.error.type, 'not_found_error');
    assert.match(e.error.error.message, /no-such-model/);
    return true;
  });
  // a wrong key with anthropic-version: Anthropic's 401
  const r = await fetch(`${router.url}/v1/models`, { headers: { 'x-api-key': 'sk-wrong', 'anthropic-version': '2023-06-01' } });
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error.type, 'authentication_error');
  // without the header, OpenAI's shape as before
  const o = await oai.models.list();
  assert.equal(o.data[0].object, 'model');
  assert.equal(typeof o.data[0].created, 'number');
  assert.equal(o.data[0].display_name, undefined);
  const raw = await (await fetch(`${router.url}/v1/models`, { headers: { authorization: `Bearer ${MASTER_KEY}` } })).json();
  assert.equal(raw.object, 'list');
  assert.equal(raw.has_more, undefined);
  const gone = await fetch(`${router.url}/v1/models/no-such-model`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
  assert.equal(gone.status, 404);
  assert.equal((await gone.json()).error.code, 'model_not_found');
  const gpt = await oai.models.retrieve('gpt');
  assert.deepEqual([gpt.id, gpt.object, gpt.owned_by], ['gpt', 'model', 'openai']);
});
