// Master-key authentication: the four header spellings of SPEC section 3, 401 JSON
// errors, and keys never appearing in logs.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startRouter, baseConfig, MASTER_KEY } from './lib/harness.mjs';

let router;
const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });

before(async () => {
  router = await startRouter(baseConfig({
    credentials: '  - name: local\n    type: mock\n',
    models: '  - name: m\n    credential: local\n',
  }));
});

async function post(headers) {
  return fetch(`${router.url}/v1/chat/completions`, { method: 'POST', headers, body });
}

test('missing key: 401 authentication_error', async () => {
  const r = await post({});
  assert.equal(r.status, 401);
  const j = await r.json();
  assert.equal(j.error.type, 'authentication_error');
  assert.match(j.error.message, /Missing API key/);
});

test('wrong key: 401, and the key is not echoed back', async () => {
  const r = await post({ authorization: 'Bearer sk-wrong-key-1234567890' });
  assert.equal(r.status, 401);
  const text = await r.text();
  assert.equal(JSON.parse(text).error.type, 'authentication_error');
  assert.ok(!text.includes('sk-wrong-key-1234567890'));
});

for (const [name, headers] of [
  ['Authorization: Bearer', { authorization: `Bearer ${MASTER_KEY}` }],
  ['x-api-key', { 'x-api-key': MASTER_KEY }],
  ['api-key', { 'api-key': MASTER_KEY }],
  ['x-goog-api-key', { 'x-goog-api-key': MASTER_KEY }],
]) {
  test(`master key accepted in ${name}`, async () => {
    const r = await post(headers);
    assert.equal(r.status, 200);
    assert.equal((await r.json()).choices[0].message.content, 'echo: hi');
  });
}

test('the openai SDK with a wrong key gets AuthenticationError', async () => {
  const c = new OpenAI({ apiKey: 'sk-nope-000000000000', baseURL: `${router.url}/v1`, maxRetries: 0 });
  await assert.rejects(c.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
});

test('keys never reach the log', async () => {
  await router.stop();
  assert.ok(!router.out.includes(MASTER_KEY));
  assert.ok(!router.out.includes('sk-wrong-key-1234567890'));
});
