// 500 concurrent requests through airouter to the mock upstream (mixed streaming and
// not): every one answered, each with its own content.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startRouter, baseConfig, MASTER_KEY } from './lib/harness.mjs';

let mock;
let router;

before(async () => {
  mock = await startMock(['--no-record']);
  router = await startRouter(baseConfig({
    credentials: `  - name: up\n    type: openai\n    api_key: sk-up-0000000000\n    base_url: ${mock.url}\n`,
    models: '  - name: gpt-4o\n    credential: up\n',
  }));
});

after(async () => { await router.stop(); });

test('500 concurrent requests, half streaming', async () => {
  const { Agent, setGlobalDispatcher } = await import('node:undici').catch(() => ({}));
  if (Agent) setGlobalDispatcher(new Agent({ connections: 500 }));
  const client = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${router.url}/v1`, maxRetries: 0, timeout: 60000 });
  const one = async (i) => {
    const content = `request ${i} [mock latency=50ms]`;
    if (i % 2) {
      const s = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content }] });
      let text = '';
      for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
      return text;
    }
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content }] });
    return r.choices[0].message.content;
  };
  const results = await Promise.all(Array.from({ length: 500 }, (_, i) => one(i)));
  results.forEach((t, i) => assert.equal(t, `echo: request ${i}`));
});
