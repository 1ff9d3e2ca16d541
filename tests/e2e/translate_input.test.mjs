// Issue 7, item 4(a): client bodies that a translator cannot load (a number beyond double
// range or an integer beyond 64 bits, which jansson refuses; lone surrogate escapes and
// invalid UTF-8, which the gateway's validator already refuses up front) are the client's
// 400 invalid_request_error naming the problem, and touch no upstream state: nothing is sent, fail2ban and the circuit breaker
// count nothing. Before, each was a 502 "malformed input" counted against the credential,
// so three of them banned a shared credential for good. Covered for an OpenAI model (an
// airouter extension field forces the translation), an Anthropic and a Gemini model.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startRouter, baseConfig, MASTER_KEY, slow } from './lib/harness.mjs';
import { keyMaker, credYaml, modelYaml } from './lib/routing.mjs';

let mock;
let router;
const k = keyMaker();

before(async () => {
  mock = await startMock();
  router = await startRouter(baseConfig({
    credentials: [
      credYaml({ name: 'oai', key: k('oai'), base: mock.url }),
      credYaml({ name: 'claude', type: 'anthropic', key: k('claude'), base: mock.url }),
      credYaml({ name: 'gem', type: 'gemini', key: k('gem'), base: mock.url }),
    ].join(''),
    models: [
      modelYaml({ name: 'gpt', credential: 'oai', model: 'mock-gpt-4o' }),
      modelYaml({ name: 'claude', credential: 'claude', model: 'claude-3-5-sonnet-20241022' }),
      modelYaml({ name: 'gem', credential: 'gem', model: 'gemini-2.5-flash' }),
    ].join(''),
    // the strictest settings: one counted failure would ban the credential for good and
    // open the deployment's breaker
    extra: 'fail2ban:\n  max_attempts: 1\n  ban_duration: permanent\n' +
      'circuit_breaker:\n  failure_threshold: 1\n  cooldown_period: 1h\n' +
      'routing:\n  max_retries: 0\n  rate_limit_retries: 0\n',
  }));
});

// POSTs a chat body given as raw bytes (JSON.stringify cannot write 1e400 or a lone
// surrogate escape): {status, body}.
async function post(bytes) {
  const r = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: Buffer.from(bytes, 'latin1'),
    signal: AbortSignal.timeout(15000 * slow),
  });
  const text = await r.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* keep the text */ }
  return { status: r.status, body };
}

const upstreamCalls = async () => (await mock.requests()).length;

// The bad bodies per model, each with the words its error must contain. The shapes avoid
// the pass-through paths (which forward the bytes as they are and never load them):
// `tags` for the OpenAI model, content parts for the Anthropic one.
const cases = [
  ['gpt', '{"model":"gpt","prefer_fast":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":1e400}',
    "real number overflow near '1e400'"],
  ['gpt', '{"model":"gpt","prefer_fast":true,"messages":[{"role":"user","content":"\\ud800"}]}',
    'lone surrogate'],
  ['claude', '{"model":"claude","messages":[{"role":"user","content":"hi"}],"max_tokens":1e400}',
    "real number overflow near '1e400'"],
  ['claude', '{"model":"claude","messages":[{"role":"user","content":[{"type":"text","text":"\\ud800"}]}]}',
    'lone surrogate'],
  ['claude', '{"model":"claude","messages":[{"role":"user","content":"hi"}],"max_tokens":123456789012345678901234567890}',
    'too big integer'],
  ['gem', '{"model":"gem","messages":[{"role":"user","content":"hi"}],"temperature":-1e400}',
    "real number overflow near '-1e400'"],
  ['gem', '{"model":"gem","messages":[{"role":"user","content":"caf\xe9"}]}',
    'invalid UTF-8'],
];

for (const [model, bytes, words] of cases) {
  test(`${model}: ${words} -> 400 three times, nothing sent, nothing counted`, async () => {
    const before = await upstreamCalls();
    for (let i = 0; i < 3; i++) {
      const r = await post(bytes);
      assert.equal(r.status, 400, `request ${i}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.type, 'invalid_request_error');
      // refused up front as malformed JSON, or by the translator that could not load it
      assert.match(r.body.error.message, /request body cannot be translated|Malformed JSON in request body/);
      assert.ok(r.body.error.message.includes(words), r.body.error.message);
    }
    assert.equal(await upstreamCalls(), before, 'nothing may reach the upstream');
    // neither banned nor OPEN: the model still answers
    const ok = await post(`{"model":"${model}","messages":[{"role":"user","content":"still there?"}]}`);
    assert.equal(ok.status, 200, `the credential was counted against: ${JSON.stringify(ok.body)}`);
    assert.equal(await upstreamCalls(), before + 1);
  });
}

test('/health: no credential banned, no breaker open', async () => {
  const r = await fetch(`${router.url}/health`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  assert.match(text, /"banned":false/);
  assert.doesNotMatch(text, /"banned":\s*true/);
  assert.doesNotMatch(text, /"(state|breaker)":\s*"(OPEN|open)"/);
});
