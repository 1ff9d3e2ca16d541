// The mock upstream's Responses API (tests/mock_upstream/responses.c), talked to directly
// with the official openai SDK: if the SDK's typed stream helpers parse what the mock sends,
// the shapes are the real ones, and the tests that point Codex or airouter at the mock can
// trust them.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock } from './lib/harness.mjs';

let mock;
let client;

const tools = [{
  type: 'function',
  name: 'get_weather',
  description: 'weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } } },
  strict: false,
}];

before(async () => {
  mock = await startMock();
  client = new OpenAI({ apiKey: 'sk-mock', baseURL: `${mock.url}/v1`, maxRetries: 0 });
});

test('create: a message item with the echo, usage, and the request recorded as sent', async () => {
  await mock.clear();
  const r = await client.responses.create({
    model: 'mock-gpt-4o',
    instructions: 'be brief',
    input: 'hello there',
  });
  assert.match(r.id, /^resp_mock_\d+$/);
  assert.equal(r.object, 'response');
  assert.equal(r.status, 'completed');
  assert.equal(r.model, 'mock-gpt-4o');
  assert.equal(r.output.length, 1);
  assert.equal(r.output[0].type, 'message');
  assert.match(r.output[0].id, /^msg_mock_\d+$/);
  assert.deepEqual(r.output[0].content[0].annotations, []);
  assert.equal(r.output_text, 'echo: hello there');
  // ceil((8 + 11) / 4) = 5; "echo: hello there" is 3 words
  assert.deepEqual(
    { i: r.usage.input_tokens, o: r.usage.output_tokens, t: r.usage.total_tokens },
    { i: 5, o: 3, t: 8 });
  assert.equal(r.usage.input_tokens_details.cached_tokens, 0);
  const [rec] = await mock.requests();
  assert.equal(rec.path, '/v1/responses');
  assert.equal(rec.body.instructions, 'be brief');
});

test('create: input items, the last user message parts, reasoning item first', async () => {
  const r = await client.responses.create({
    model: 'mock-gpt-4o',
    reasoning: { effort: 'low' },
    include: ['reasoning.encrypted_content'],
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'first' }] },
      { role: 'assistant', content: [{ type: 'output_text', text: 'ok' }] },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'a' }, { type: 'input_text', text: 'b' }] },
    ],
  });
  assert.deepEqual(r.output.map((o) => o.type), ['reasoning', 'message']);
  assert.equal(r.output[0].summary[0].text, 'thinking');
  assert.equal(typeof r.output[0].encrypted_content, 'string');
  assert.equal(r.output_text, 'echo: a b');
  assert.equal(r.usage.output_tokens_details.reasoning_tokens, 1);
  assert.equal(r.usage.output_tokens, 4);
});

test('stream: the SDK helper assembles the text from the deltas; sequence numbers count up', async () => {
  const stream = client.responses.stream({ model: 'mock-gpt-4o', input: 'one two three' });
  const types = [];
  const seqs = [];
  let text = '';
  stream.on('response.output_text.delta', (e) => { text += e.delta; });
  for await (const e of stream) {
    types.push(e.type);
    seqs.push(e.sequence_number);
  }
  const final = await stream.finalResponse();
  assert.equal(text, 'echo: one two three');
  assert.equal(final.output_text, 'echo: one two three');
  assert.equal(final.usage.output_tokens, 4);
  assert.deepEqual(seqs, seqs.map((_, i) => i));
  assert.deepEqual(types.filter((t) => !t.endsWith('.delta')), [
    'response.created', 'response.in_progress', 'response.output_item.added',
    'response.content_part.added', 'response.output_text.done', 'response.content_part.done',
    'response.output_item.done', 'response.completed']);
  assert.equal(types.filter((t) => t === 'response.output_text.delta').length, 4);
});

test('tool call, then the function_call_output round trip, streamed and not', async () => {
  const input = [{ role: 'user', content: 'weather please [tool]' }];
  const r = await client.responses.create({ model: 'mock-gpt-4o', input, tools });
  assert.equal(r.output.length, 1);
  const call = r.output[0];
  assert.equal(call.type, 'function_call');
  assert.equal(call.name, 'get_weather');
  assert.equal(call.call_id, 'call_mock_1');
  assert.deepEqual(JSON.parse(call.arguments), { x: 1 });

  const stream = client.responses.stream({ model: 'mock-gpt-4o', input, tools });
  let args = '';
  stream.on('response.function_call_arguments.delta', (e) => { args += e.delta; });
  const final = await stream.finalResponse();
  assert.equal(args, '{"x":1}');
  assert.equal(final.output[0].type, 'function_call');
  assert.equal(final.output[0].arguments, '{"x":1}');

  const r2 = await client.responses.create({
    model: 'mock-gpt-4o',
    tools,
    input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
  });
  assert.equal(r2.output_text, 'echo: sunny');
});

test('errors: missing input, bad JSON, status directive; latency delays the answer', async () => {
  await assert.rejects(client.responses.create({ model: 'mock-gpt-4o' }),
    (e) => e.status === 400 && /'input'/.test(e.message));
  await assert.rejects(client.responses.create({ input: 'x' }),
    (e) => e.status === 400 && /'model'/.test(e.message));
  const bad = await fetch(`${mock.url}/v1/responses`, { method: 'POST', body: '{"model":' });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.type, 'invalid_request_error');
  await assert.rejects(client.responses.create({ model: 'mock-gpt-4o', input: 'hi [mock status=429]' }),
    (e) => e.status === 429);
  const t0 = Date.now();
  const r = await client.responses.create({ model: 'mock-gpt-4o', input: 'hi [mock latency=200ms]' });
  assert.ok(Date.now() - t0 >= 190);
  assert.equal(r.output_text, 'echo: hi');
});

test('directives: chunks splits the deltas, usage=0, malformed, reset=mid_stream', async () => {
  const post = (input, extra = {}) => fetch(`${mock.url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-gpt-4o', input, ...extra }),
  });
  const deltas = (text) => text.split('\n\n').filter((e) => e.startsWith('event: response.output_text.delta\n'));

  let text = await (await post('a b c d [mock chunks=2]', { stream: true })).text();
  const d = deltas(text).map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)).delta);
  assert.deepEqual(d, ['echo: ', 'a b c d']);

  const r = await (await post('hi [mock usage=0]')).json();
  assert.equal(r.usage, null);

  text = await (await post('hi [mock malformed=1]', { stream: true })).text();
  assert.match(text, /data: \{not json\n\n/);
  assert.match(text, /event: response\.completed\n/);

  text = '';
  await assert.rejects((async () => {
    const res = await post('one two three four five six [mock reset=mid_stream]', { stream: true });
    text = await res.text();
  })());
  assert.equal(text, ''); // the body never completed
});
