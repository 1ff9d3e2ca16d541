// POST /v1/responses end to end with the official openai SDK: to an openai credential
// natively (the request arrives byte-equal except the model, events relayed as they came)
// and to anthropic, gemini and OpenAI-chat-only (native_api: false) credentials through
// the chat translation; text, streams (the Responses event sequence with sequence
// numbers), a tool round trip, built-in tools, stored responses (previous_response_id,
// GET/DELETE, input_items) and their owner, errors.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startMock, startRouter, baseConfig, runCli, MASTER_KEY, slow } from './lib/harness.mjs';

let mock;
let router;
let client;

const BACKENDS = ['oai', 'claude', 'gem', 'compat'];

before(async () => {
  mock = await startMock();
  // an absolute store path: the CLI that makes a key below runs elsewhere
  const db = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'resp-')), 'airouter.db');
  router = await startRouter(baseConfig({
    credentials: `
  - name: oa
    type: openai
    api_key: sk-e2e-openai
    base_url: ${mock.url}
  - name: chatonly
    type: openai
    api_key: sk-e2e-chatonly
    base_url: ${mock.url}
    native_api: false
  - name: an
    type: anthropic
    api_key: sk-ant-e2e
    base_url: ${mock.url}
  - name: gm
    type: gemini
    api_key: AIza-e2e
    base_url: ${mock.url}
`,
    models: `
  - name: oai
    credential: oa
    model: mock-gpt-4o
  - name: compat
    credential: chatonly
    model: mock-gpt-4o-mini
  - name: claude
    credential: an
    model: claude-sonnet-4-5
  - name: gem
    credential: gm
    model: gemini-2.5-flash
`,
    extra: `storage:
  database_url: sqlite://${db}
`,
  }));
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${router.url}/v1`, maxRetries: 0, timeout: 20000 * slow });
});

// What the upstream of `model` saw last.
async function seen(model) {
  const all = await mock.requests();
  const path = {
    oai: (r) => r.path === '/v1/responses',
    compat: (r) => r.path === '/v1/chat/completions',
    claude: (r) => r.path === '/v1/messages',
    gem: (r) => r.path.includes(':generateContent') || r.path.includes(':streamGenerateContent'),
  }[model];
  return all.filter(path);
}

test('responses.create: text from every backend', async () => {
  for (const model of BACKENDS) {
    await mock.clear();
    const r = await client.responses.create({ model, instructions: 'Be brief.', input: 'Hello there', store: false });
    assert.equal(r.object, 'response', model);
    assert.equal(r.status, 'completed', model);
    assert.equal(r.output_text, 'echo: Hello there', model);
    assert.ok(r.usage.input_tokens >= 1, model);
    assert.ok(r.usage.output_tokens >= 1, model);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens, model);
    const [up] = await seen(model);
    assert.ok(up, `${model}: the upstream was asked`);
    if (model === 'oai') {
      assert.match(r.id, /^resp_mock_/, 'the upstream response itself');
      assert.equal(up.body.model, 'mock-gpt-4o');
      assert.equal(up.body.instructions, 'Be brief.');
    } else {
      assert.match(r.id, /^resp_[0-9a-f]{48}$/, model);
      assert.equal(r.model, model, 'the name the client used');
      const msg = r.output.find((o) => o.type === 'message');
      assert.equal(msg.role, 'assistant');
      assert.deepEqual(msg.content.map((c) => c.type), ['output_text']);
    }
    if (model === 'compat') {
      assert.deepEqual(up.body.messages, [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello there' },
      ]);
    }
  }
});

test('native pass-through: the body arrives byte-equal except the model', async () => {
  await mock.clear();
  const body = '{ "model": "oai", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],\n' +
    '  "reasoning": {"effort": "low", "summary": "auto"}, "include": ["reasoning.encrypted_content"],\n' +
    '  "store": false, "prompt_cache_key": "k1", "text": {"verbosity": "low"}, "parallel_tool_calls": false }';
  const r = await fetch(`${router.url}/v1/responses`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' }, body,
  });
  assert.equal(r.status, 200);
  const j = await r.json();
  assert.equal(j.output[0].type, 'reasoning');
  assert.ok(j.output[0].encrypted_content, 'what only the native API returns');
  const [up] = await seen('oai');
  assert.equal(up.raw, body.replace('"oai"', '"mock-gpt-4o"'));
  assert.equal(up.headers.authorization, 'Bearer sk-e2e-openai');
});

test('responses.stream: the event sequence from every backend', async () => {
  for (const model of BACKENDS) {
    const stream = client.responses.stream({ model, input: 'one two three', store: false });
    const types = [];
    const seqs = [];
    let text = '';
    for await (const e of stream) {
      types.push(e.type);
      seqs.push(e.sequence_number);
      if (e.type === 'response.output_text.delta') text += e.delta;
    }
    const final = await stream.finalResponse();
    assert.equal(text, 'echo: one two three', model);
    assert.equal(final.output_text, 'echo: one two three', model);
    assert.equal(types[0], 'response.created', model);
    assert.equal(types[1], 'response.in_progress', model);
    assert.equal(types.at(-1), 'response.completed', model);
    for (const t of ['response.output_item.added', 'response.content_part.added', 'response.output_text.done',
      'response.content_part.done', 'response.output_item.done']) assert.ok(types.includes(t), `${model}: ${t}`);
    assert.deepEqual(seqs, seqs.map((_, i) => i), `${model}: sequence numbers count from 0`);
    assert.ok(final.usage.output_tokens >= 1, model);
  }
});

const weather = {
  type: 'function',
  name: 'get_weather',
  description: 'Weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};

test('tools: a function call and its output, from every backend, whole and streamed', async () => {
  for (const model of BACKENDS) {
    const r = await client.responses.create({ model, tools: [weather], input: 'weather? [tool]', store: false });
    const call = r.output.find((o) => o.type === 'function_call');
    assert.ok(call, `${model}: ${JSON.stringify(r.output)}`);
    assert.equal(call.name, 'get_weather', model);
    assert.deepEqual(JSON.parse(call.arguments), { x: 1 }, model);
    assert.ok(call.call_id, model);

    // streamed: the arguments arrive as deltas and the item completes
    const stream = client.responses.stream({ model, tools: [weather], input: 'weather? [tool]', store: false });
    let args = '';
    const done = [];
    for await (const e of stream) {
      if (e.type === 'response.function_call_arguments.delta') args += e.delta;
      if (e.type === 'response.output_item.done') done.push(e.item.type);
    }
    assert.deepEqual(JSON.parse(args), { x: 1 }, model);
    assert.ok(done.includes('function_call'), model);

    // the round trip: the call and its output go back as input items
    await mock.clear();
    const back = await client.responses.create({
      model,
      tools: [weather],
      store: false,
      input: [
        { role: 'user', content: 'weather? [tool]' },
        { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: 'sunny' },
      ],
    });
    assert.equal(back.status, 'completed', model);
    const [up] = await seen(model);
    if (model === 'claude') {
      assert.equal(back.output_text, 'echo: sunny');
      assert.equal(up.body.messages[1].content[0].type, 'tool_use');
      assert.equal(up.body.messages[2].content[0].type, 'tool_result');
    } else if (model === 'oai') {
      assert.equal(back.output_text, 'echo: sunny');
    } else if (model === 'compat') {
      assert.equal(up.body.messages[1].tool_calls[0].function.name, 'get_weather');
      assert.deepEqual(up.body.messages[2], { role: 'tool', tool_call_id: call.call_id, content: 'sunny' });
    }
  }
});

test('built-in tools: native upstreams run them, the others answer a 400 that says so', async () => {
  await mock.clear();
  const r = await client.responses.create({ model: 'oai', tools: [{ type: 'web_search_preview' }], input: 'news?', store: false });
  assert.equal(r.status, 'completed');
  assert.deepEqual((await seen('oai'))[0].body.tools, [{ type: 'web_search_preview' }]);
  for (const model of ['claude', 'gem', 'compat']) {
    await assert.rejects(
      client.responses.create({ model, tools: [{ type: 'web_search_preview' }], input: 'news?', store: false }),
      (e) => {
        assert.equal(e.status, 400, model);
        assert.match(e.message, /web_search_preview/, model);
        return true;
      },
    );
  }
});

test('stored responses: previous_response_id, retrieve, input_items, delete', async () => {
  for (const model of BACKENDS) {
    const first = await client.responses.create({ model, input: 'first question' });
    await mock.clear();
    const second = await client.responses.create({ model, previous_response_id: first.id, input: 'second question' });
    assert.equal(second.output_text, 'echo: second question', model);
    // a native upstream's own response echoes what it was sent: the whole conversation
    assert.equal(second.previous_response_id, model === 'oai' ? null : first.id, model);
    // the upstream got the whole conversation, with no previous_response_id of ours
    const [up] = await seen(model);
    if (model === 'oai') {
      assert.equal(up.body.previous_response_id, undefined);
      assert.equal(up.body.input.length, 3);
      assert.equal(up.body.input[1].type, 'message');
      assert.equal(up.body.input[1].role, 'assistant');
    } else if (model === 'compat') {
      assert.deepEqual(up.body.messages.map((m) => m.role), ['user', 'assistant', 'user']);
      assert.equal(up.body.messages[1].content, 'echo: first question');
    } else if (model === 'claude') {
      assert.deepEqual(up.body.messages.map((m) => m.role), ['user', 'assistant', 'user']);
    }
    // a chain of three
    const third = await client.responses.create({ model, previous_response_id: second.id, input: 'third' });
    assert.equal(third.output_text, 'echo: third');

    const got = await client.responses.retrieve(second.id);
    assert.equal(got.id, second.id, model);
    assert.equal(got.output_text, 'echo: second question', model);
    const items = await client.responses.inputItems.list(second.id);
    assert.equal(items.data.length, 1, model);
    assert.equal(items.data[0].role, 'user');
    assert.equal(items.data[0].content[0].text, 'second question');

    const del = await client.responses.delete(first.id);
    assert.deepEqual(del, { id: first.id, object: 'response', deleted: true });
    await assert.rejects(client.responses.retrieve(first.id), (e) => e.status === 404);
    // the chain is broken where the deleted response was: the rest still works
    const fourth = await client.responses.create({ model, previous_response_id: third.id, input: 'fourth' });
    assert.equal(fourth.output_text, 'echo: fourth');
  }
  // store: false keeps nothing
  const gone = await client.responses.create({ model: 'claude', input: 'x', store: false });
  await assert.rejects(client.responses.retrieve(gone.id), (e) => e.status === 404);
  await assert.rejects(
    client.responses.create({ model: 'claude', previous_response_id: gone.id, input: 'y' }),
    (e) => e.status === 404 && /not found/.test(e.message),
  );
  // streamed answers are stored too
  const stream = client.responses.stream({ model: 'gem', input: 'streamed' });
  for await (const e of stream) void e;
  const final = await stream.finalResponse();
  assert.equal((await client.responses.retrieve(final.id)).output_text, 'echo: streamed');
});

test('stored responses belong to the key that made them', async () => {
  const r = await runCli(['key', 'create', '--name', 'resp-owner', '--json', '-config', router.configFile]);
  assert.equal(r.code, 0, r.err);
  const key = JSON.parse(r.out).key;
  const other = new OpenAI({ apiKey: key, baseURL: `${router.url}/v1`, maxRetries: 0 });
  const mine = await client.responses.create({ model: 'compat', input: 'master' });
  await assert.rejects(other.responses.retrieve(mine.id), (e) => e.status === 404);
  await assert.rejects(other.responses.delete(mine.id), (e) => e.status === 404);
  await assert.rejects(
    other.responses.create({ model: 'compat', previous_response_id: mine.id, input: 'x' }),
    (e) => e.status === 404,
  );
  // an item_reference to another key's answer is not resolved either
  const msgId = mine.output.find((o) => o.type === 'message').id;
  await assert.rejects(
    other.responses.create({ model: 'compat', input: [{ type: 'item_reference', id: msgId }, { role: 'user', content: 'x' }] }),
    (e) => e.status === 400 && /item_reference/.test(e.message),
  );
  const resolved = await client.responses.create({
    model: 'compat', store: false, input: [{ role: 'user', content: 'master' }, { type: 'item_reference', id: msgId }, { role: 'user', content: 'again' }],
  });
  assert.equal(resolved.output_text, 'echo: again');
  const theirs = await other.responses.create({ model: 'compat', input: 'theirs' });
  assert.equal((await other.responses.retrieve(theirs.id)).output_text, 'echo: theirs');
  await assert.rejects(client.responses.retrieve(theirs.id), (e) => e.status === 404);
});

test('errors: bad requests are precise 400s in OpenAI shape', async () => {
  const post = (body) => fetch(`${router.url}/v1/responses`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}` }, body,
  });
  for (const [body, re] of [
    ['{not json', /Malformed JSON/],
    ['[]', /JSON object/],
    ['{"model":"compat"}', /input/],
    ['{"model":"compat","input":"x","store":"yes"}', /store/],
    ['{"model":"compat","input":[{"type":"bogus"}]}', /input\[0\]/],
  ]) {
    const r = await post(body);
    assert.equal(r.status, 400, body);
    const j = await r.json();
    assert.equal(j.error.type, 'invalid_request_error', body);
    assert.match(j.error.message, re, body);
  }
  const unknown = await post('{"model":"nope","input":"x"}');
  assert.equal(unknown.status, 404);
  const m = await fetch(`${router.url}/v1/responses/resp_x`, { method: 'PUT', headers: { authorization: `Bearer ${MASTER_KEY}` } });
  assert.equal(m.status, 405);
  assert.equal(m.headers.get('allow'), 'GET, DELETE');
});

test('a stream that breaks keeps what came before the break, then error and response.failed', async () => {
  // the chat upstream writes its chunks and the bad one in one go: the events translated
  // from the good chunks of that read must still reach the client
  const r = await fetch(`${router.url}/v1/responses`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'compat', stream: true, store: false, input: 'one two three [mock malformed=1]' }),
  });
  assert.equal(r.status, 200);
  const text = await r.text();
  const events = text.split('\n\n').filter((e) => e.startsWith('event: ')).map((e) => {
    const [head, data] = e.split('\ndata: ');
    return { type: head.slice(7), data: JSON.parse(data) };
  });
  const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.data.delta).join('');
  assert.match(deltas, /^echo: one two three/);
  assert.deepEqual(events.slice(-2).map((e) => e.type), ['error', 'response.failed']);
  assert.deepEqual(events.map((e) => e.data.sequence_number), events.map((_, i) => i));
});
