// Two popular frameworks through POST /v1/responses, against an openai credential (native
// pass-through), an anthropic one and a gemini one (the chat translation): the Vercel AI
// SDK (`ai` + `@ai-sdk/openai`, whose default `openai(model)` speaks the Responses API) and
// LangChain JS (`ChatOpenAI` with `useResponsesApi: true`). Each does text, a stream, a tool
// round trip (whole and streamed), a second turn, and reports usage; a recording fetch shows
// that the client spoke the Responses API and the mock's recorded requests which upstream
// API each model reached.
//
// These packages ask for Node.js 22 (ai, @ai-sdk/openai) and 20 (@langchain/core); they run
// on 20, and the file is skipped on an older node (Debian 12's 18), loading nothing.
import { test as nodeTest, before } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startRouter, baseConfig, MASTER_KEY, slow } from './lib/harness.mjs';

const tooOld = Number(process.versions.node.split('.')[0]) < 20 &&
  `the AI SDK and LangChain need Node.js 20 or later, this is ${process.version}`;
const test = (name, fn) => nodeTest(name, { skip: tooOld }, fn);

let generateText, streamText, tool, isStepCount, createOpenAI;
let ChatOpenAI, HumanMessage, ToolMessage, lcTool, z;
let mock;
let router;

const BACKENDS = ['oai', 'claude', 'gem'];
const TIMEOUT_MS = 20000 * slow;

before(async () => {
  if (tooOld) return;
  ({ generateText, streamText, tool, isStepCount } = await import('ai'));
  ({ createOpenAI } = await import('@ai-sdk/openai'));
  ({ ChatOpenAI } = await import('@langchain/openai'));
  ({ HumanMessage, ToolMessage } = await import('@langchain/core/messages'));
  ({ tool: lcTool } = await import('@langchain/core/tools'));
  ({ z } = await import('zod'));
  mock = await startMock();
  router = await startRouter(baseConfig({
    credentials: `
  - name: oa
    type: openai
    api_key: sk-e2e-openai
    base_url: ${mock.url}
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
  - name: claude
    credential: an
    model: claude-sonnet-4-5
  - name: gem
    credential: gm
    model: gemini-2.5-flash
`,
  }));
});

// The upstream API each model must reach, and what the mock recorded of it.
const UPSTREAM = {
  oai: (r) => r.path === '/v1/responses',
  claude: (r) => r.path === '/v1/messages',
  gem: (r) => r.path.includes(':generateContent') || r.path.includes(':streamGenerateContent'),
};

// Checks that the client sent n requests, all to POST /v1/responses, and that airouter made
// n upstream requests, all to the API of the model's credential; returns those.
async function upstream(model, n) {
  assert.deepEqual(asked, Array(n).fill('/v1/responses'), `${model}: what the client asked`);
  const all = await mock.requests();
  assert.equal(all.length, n, `${model}: upstream requests`);
  assert.ok(all.every(UPSTREAM[model]), `${model}: upstream paths ${all.map((r) => r.path)}`);
  return all;
}

// What the frameworks asked airouter: both must speak the Responses API to every model.
const asked = [];
async function recordingFetch(url, init) {
  asked.push(new URL(String(url)).pathname);
  return fetch(url, init);
}

async function clear() {
  asked.length = 0;
  await mock.clear();
}

// ---- Vercel AI SDK ----

function aiSdk() {
  return createOpenAI({ baseURL: `${router.url}/v1`, apiKey: MASTER_KEY, fetch: recordingFetch });
}

function aiUsage(usage, what) {
  assert.ok(usage.inputTokens > 0, `${what}: inputTokens ${usage.inputTokens}`);
  assert.ok(usage.outputTokens > 0, `${what}: outputTokens ${usage.outputTokens}`);
}

test('AI SDK: generateText from every backend', async () => {
  const openai = aiSdk();
  for (const model of BACKENDS) {
    await clear();
    const r = await generateText({
      model: openai(model), prompt: 'Hello there', maxRetries: 0, timeout: TIMEOUT_MS,
    });
    assert.equal(r.text, 'echo: Hello there', model);
    assert.equal(r.finishReason, 'stop', model);
    aiUsage(r.usage, model);
    const ups = await upstream(model, 1);
    if (model === 'oai') assert.equal(ups[0].body.model, 'mock-gpt-4o', 'the default provider call is the Responses API');
  }
});

test('AI SDK: streamText from every backend', async () => {
  const openai = aiSdk();
  for (const model of BACKENDS) {
    await clear();
    const r = streamText({
      model: openai(model), prompt: 'Stream me some words', maxRetries: 0, timeout: TIMEOUT_MS,
      onError: ({ error }) => { throw error; },
    });
    let text = '';
    let parts = 0;
    for await (const piece of r.textStream) {
      text += piece;
      parts++;
    }
    assert.equal(text, 'echo: Stream me some words', model);
    assert.ok(parts > 1, `${model}: streamed in pieces (${parts})`);
    assert.equal(await r.finishReason, 'stop', model);
    aiUsage(await r.usage, model);
    const ups = await upstream(model, 1);
    if (model !== 'gem') assert.equal(ups[0].body.stream, true, model);
    else assert.match(ups[0].path, /:streamGenerateContent/);
  }
});

// The tool the mock calls with {"x":1}; the calls it got are pushed on `calls`.
function aiWeather(calls) {
  return tool({
    description: 'Get the weather',
    inputSchema: z.object({ x: z.number() }),
    execute: async (input) => {
      calls.push(input);
      return 'sunny';
    },
  });
}

test('AI SDK: a tool round trip from every backend, whole and streamed', async () => {
  const openai = aiSdk();
  for (const model of BACKENDS) {
    for (const streamed of [false, true]) {
      const what = `${model}${streamed ? ' streamed' : ''}`;
      await clear();
      const calls = [];
      const args = {
        model: openai(model),
        prompt: 'What is the weather? [tool]',
        tools: { weather: aiWeather(calls) },
        stopWhen: isStepCount(3),
        maxRetries: 0,
        timeout: TIMEOUT_MS,
      };
      let r;
      if (streamed) {
        const s = streamText({ ...args, onError: ({ error }) => { throw error; } });
        let text = '';
        for await (const piece of s.textStream) text += piece;
        r = { text, steps: await s.steps, totalUsage: await s.totalUsage };
        assert.equal(r.text, await s.text, what);
      } else {
        r = await generateText(args);
      }
      assert.deepEqual(calls, [{ x: 1 }], `${what}: the tool ran once with the mock's arguments`);
      assert.equal(r.steps.length, 2, what);
      assert.equal(r.steps[0].finishReason, 'tool-calls', what);
      assert.equal(r.steps[0].toolCalls[0].toolName, 'weather', what);
      assert.equal(r.steps[1].finishReason, 'stop', what);
      assert.match(r.text, /^echo: .*sunny/, `${what}: the tool output went back (${r.text})`);
      aiUsage(r.totalUsage, what);
      await upstream(model, 2);
    }
  }
});

// A second turn sends the first answer back. By default (store not false) the AI SDK sends
// the assistant's earlier text as an item_reference to its id: OpenAI resolves its own ids
// natively, airouter resolves the ids of the responses it translated from its store; with
// store: false the SDK sends the text itself. Every backend takes both.
test('AI SDK: a second turn from every backend, the text itself or an item_reference', async () => {
  const openai = aiSdk();
  for (const model of BACKENDS) {
    for (const store of [false, undefined]) {
      const what = `${model} store: ${store}`;
      await clear();
      const args = { model: openai(model), maxRetries: 0, timeout: TIMEOUT_MS, providerOptions: { openai: { store } } };
      const first = await generateText({ ...args, prompt: 'Hello there' });
      const messages = [{ role: 'user', content: 'Hello there' }, ...first.response.messages, { role: 'user', content: 'Again' }];
      const second = await generateText({ ...args, messages });
      assert.equal(second.text, 'echo: Again', what);
      const ups = await upstream(model, 2);
      if (model === 'oai' && store === undefined) {
        assert.deepEqual(ups[1].body.input[1], { type: 'item_reference', id: first.response.messages[0].content[0].providerOptions.openai.itemId }, what);
      } else if (model === 'claude') {
        assert.deepEqual(ups[1].body.messages.map((m) => m.role), ['user', 'assistant', 'user'], what);
        assert.deepEqual(ups[1].body.messages[1].content, [{ type: 'text', text: 'echo: Hello there' }], what);
      } else if (model === 'gem') {
        assert.deepEqual(ups[1].body.contents.map((c) => c.role), ['user', 'model', 'user'], what);
      }
    }
  }
});

// ---- LangChain JS ----

function chat(model) {
  return new ChatOpenAI({
    model,
    apiKey: MASTER_KEY,
    configuration: { baseURL: `${router.url}/v1`, fetch: recordingFetch },
    useResponsesApi: true,
    maxRetries: 0,
    timeout: TIMEOUT_MS,
  });
}

function lcUsage(msg, what) {
  assert.ok(msg.usage_metadata, `${what}: usage_metadata`);
  assert.ok(msg.usage_metadata.input_tokens > 0, `${what}: input_tokens`);
  assert.ok(msg.usage_metadata.output_tokens > 0, `${what}: output_tokens`);
}

test('LangChain: invoke from every backend', async () => {
  for (const model of BACKENDS) {
    await clear();
    const m = await chat(model).invoke('Hello there');
    assert.equal(m.text, 'echo: Hello there', model);
    lcUsage(m, model);
    await upstream(model, 1);
  }
});

test('LangChain: stream from every backend', async () => {
  for (const model of BACKENDS) {
    await clear();
    const { whole, parts } = await gather(await chat(model).stream('Stream me some words'));
    assert.equal(whole.text, 'echo: Stream me some words', model);
    assert.ok(parts > 1, `${model}: streamed in pieces (${parts})`);
    lcUsage(whole, model);
    await upstream(model, 1);
  }
});

// A streamed answer gathered into one AIMessageChunk, with the number of chunks.
async function gather(stream) {
  let whole;
  let parts = 0;
  for await (const chunk of stream) {
    whole = whole ? whole.concat(chunk) : chunk;
    parts++;
  }
  return { whole, parts };
}

test('LangChain: bindTools and a tool round trip from every backend, whole and streamed', async () => {
  const weather = lcTool(async () => 'sunny', {
    name: 'weather',
    description: 'Get the weather',
    schema: z.object({ x: z.number() }),
  });
  for (const model of BACKENDS) {
    for (const streamed of [false, true]) {
      const what = `${model}${streamed ? ' streamed' : ''}`;
      await clear();
      const m = chat(model).bindTools([weather]);
      const ask = async (history) => (streamed ? (await gather(await m.stream(history))).whole : m.invoke(history));
      const history = [new HumanMessage('What is the weather? [tool]')];
      const ai = await ask(history);
      assert.equal(ai.tool_calls.length, 1, what);
      const [call] = ai.tool_calls;
      assert.equal(call.name, 'weather', what);
      assert.deepEqual(call.args, { x: 1 }, what);
      assert.ok(call.id, `${what}: the call has an id`);
      lcUsage(ai, what);
      history.push(ai, new ToolMessage({ content: await weather.invoke(call.args), tool_call_id: call.id }));
      const last = await ask(history);
      assert.equal(last.tool_calls.length, 0, what);
      assert.match(last.text, /^echo: .*sunny/, `${what}: the tool output went back (${last.text})`);
      lcUsage(last, what);
      await upstream(model, 2);
    }
  }
});

test('LangChain: a second turn from every backend', async () => {
  for (const model of BACKENDS) {
    await clear();
    const m = chat(model);
    const history = [new HumanMessage('Hello there')];
    history.push(await m.invoke(history), new HumanMessage('Again'));
    const last = await m.invoke(history);
    assert.equal(last.text, 'echo: Again', model);
    const ups = await upstream(model, 2);
    if (model === 'claude') assert.deepEqual(ups[1].body.messages.map((x) => x.role), ['user', 'assistant', 'user']);
    if (model === 'gem') assert.deepEqual(ups[1].body.contents.map((x) => x.role), ['user', 'model', 'user']);
  }
});
