// SPEC section 4 fallbacks (is_fallback credentials, routing.fallback) and section 5's
// proxy type: a router in front of another router.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startRouter, baseConfig, MASTER_KEY } from './lib/harness.mjs';
import { keyMaker, credYaml, modelYaml, client, chat, seenWith, countWith, collectStream } from './lib/routing.mjs';

let mock;

before(async () => { mock = await startMock(); });

const NOBAN = 'fail2ban:\n  max_attempts: -1\n';
const NOBREAKER = 'circuit_breaker:\n  failure_threshold: -1\n';

test('is_fallback: never used while a primary works, used when no primary can serve', async () => {
  const k = keyMaker();
  // the fallback is listed first and round_robin rotates: only its is_fallback flag keeps it last
  const r = await startRouter(baseConfig({
    credentials: credYaml({ name: 'cred_fb', key: k('fb'), base: mock.url, is_fallback: true }) +
      credYaml({ name: 'cred_p', key: k('p'), base: mock.url }),
    models: modelYaml({ name: 'm', credential: 'cred_fb' }) + modelYaml({ name: 'm', credential: 'cred_p' }),
    extra: NOBAN + NOBREAKER + 'routing:\n  strategy: round_robin\n  retry_delay: 50ms\n',
  }));
  await mock.clear();
  const c = client(r);
  for (let i = 0; i < 6; i++) {
    const res = await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `p${i}` }] });
    assert.equal(res._router.credential, 'cred_p');
    assert.equal(res._router.fallback_used, false);
  }
  assert.equal(await countWith(mock, k('fb')), 0);

  await mock.queue([{ status: 500 }], k('p'));
  const res = await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'primary down' }] });
  assert.equal(res._router.credential, 'cred_fb');
  assert.equal(res._router.fallback_used, true);
  assert.equal(res._router.attempts, 2);
  assert.equal(res._router.errors[0].credential, 'cred_p');
  assert.equal(res.choices[0].message.content, 'echo: primary down');
  await r.stop();
});

test('routing.fallback: the last resort after every candidate failed, with its own model name', async () => {
  const k = keyMaker();
  const r = await startRouter(baseConfig({
    credentials: credYaml({ name: 'cred_a', key: k('a'), base: mock.url }) +
      credYaml({ name: 'cred_b', key: k('b'), base: mock.url }) +
      credYaml({ name: 'cred_last', key: k('last'), base: mock.url }),
    models: modelYaml({ name: 'm', credential: 'cred_a' }) + modelYaml({ name: 'm', credential: 'cred_b' }) +
      modelYaml({ name: 'unrelated', credential: 'cred_last' }),
    extra: NOBAN + NOBREAKER +
      'routing:\n  retry_delay: 50ms\n  fallback:\n    enabled: true\n    credential: cred_last\n    model: last-resort-model\n',
  }));
  await mock.clear();
  // while the candidates work, the fallback is not touched
  for (let i = 0; i < 2; i++) {
    const ok = await chat(r, 'm', 'x');
    assert.equal(ok.body._router.fallback_used, false);
    assert.notEqual(ok.body._router.credential, 'cred_last');
  }
  assert.equal(await countWith(mock, k('last')), 0);

  await mock.queue([{ status: 500 }], k('a'));
  await mock.queue([{ status: 503 }], k('b'));
  const res = await chat(r, 'm', 'everything failed');
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body._router.credential, 'cred_last');
  assert.equal(res.body._router.model_name, 'last-resort-model');
  assert.equal(res.body._router.upstream_model, 'last-resort-model');
  assert.equal(res.body._router.fallback_used, true);
  assert.equal(res.body._router.attempts, 3);
  assert.deepEqual(res.body._router.errors.map((e) => e.status).sort(), [500, 503]);
  assert.equal(res.body.choices[0].message.content, 'echo: everything failed');
  const sent = await seenWith(mock, k('last'));
  assert.equal(sent.length, 1);
  assert.equal(sent[0].body.model, 'last-resort-model', 'the upstream got the fallback model name');
  await r.stop();
});

// The member names of a JSON text's top-level object, duplicates included (JSON.parse
// keeps only the last of duplicate names).
function topLevelKeys(text) {
  const keys = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const str = text.slice(i + 1, j);
      let n = j + 1;
      while (/\s/.test(text[n])) n++;
      if (depth === 1 && text[n] === ':') keys.push(str);
      i = j;
    } else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
  }
  return keys;
}

const B_KEY = 'sk-e2e-router-b-key-9876543210zyxwvutsrq';

test('a chain of two routers: router A serves through a proxy credential pointing at router B', async () => {
  const k = keyMaker();
  const b = await startRouter(baseConfig({
    credentials: credYaml({ name: 'b_upstream', key: k('up'), base: mock.url }),
    models: modelYaml({ name: 'gpt-4o', credential: 'b_upstream', model: 'upstream-gpt' }),
  }).replace('"${MASTER_KEY}"', `"${B_KEY}"`));
  assert.notEqual(B_KEY, MASTER_KEY);
  // B refuses A's key: the proxy credential must send B's own key
  assert.equal((await chat(b, 'gpt-4o', 'x')).status, 401);

  const a = await startRouter(baseConfig({
    credentials: credYaml({ name: 'to_b', type: 'proxy', key: B_KEY, base: b.url }),
    models: modelYaml({ name: 'gpt-4o', credential: 'to_b' }),
  }));
  await mock.clear();
  const c = client(a);
  const { data, response } = await c.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'through two routers' }] })
    .withResponse();
  assert.equal(data.choices[0].message.content, 'echo: through two routers');
  assert.equal(data._router.credential, 'to_b');
  assert.equal(data._router.provider, 'proxy');
  assert.equal(response.headers.get('x-airouter-credential'), 'to_b');
  const sent = await seenWith(mock, k('up'));
  assert.equal(sent.length, 1, 'B forwarded the request upstream');
  assert.equal(sent[0].body.model, 'upstream-gpt');

  // streaming through both
  const { chunks, content, error } = await collectStream(await c.chat.completions.create({
    model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'streamed through two routers' }],
  }));
  assert.equal(error, null);
  assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
  assert.equal(content, 'echo: streamed through two routers');
  assert.equal(await countWith(mock, k('up')), 2);
  for (const ch of chunks) assert.ok(!ch.usage, 'no usage chunk the client did not ask for');

  // B's upstream error travels back through A
  await mock.queue([{ status: 400 }], k('up'));
  const bad = await chat(a, 'gpt-4o', 'x');
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.body.error.message, 'mock error 400');
  await a.stop();
  await b.stop();
});

test('a chained answer carries one _router member (router A\'s), not B\'s and A\'s side by side',
  async () => {
    const k = keyMaker();
    const b = await startRouter(baseConfig({
      credentials: credYaml({ name: 'b_upstream', key: k('up'), base: mock.url }),
      models: modelYaml({ name: 'gpt-4o', credential: 'b_upstream' }),
    }).replace('"${MASTER_KEY}"', `"${B_KEY}"`));
    const a = await startRouter(baseConfig({
      credentials: credYaml({ name: 'to_b', type: 'proxy', key: B_KEY, base: b.url }),
      models: modelYaml({ name: 'gpt-4o', credential: 'to_b' }),
    }));
    const r = await chat(a, 'gpt-4o', 'x');
    assert.equal(r.status, 200, r.text);
    const keys = topLevelKeys(r.text);
    assert.equal(keys.filter((x) => x === '_router').length, 1, `top-level members: ${keys.join(', ')}`);
    assert.equal(r.body._router.credential, 'to_b');
    assert.equal(r.body._router.upstream.credential, 'b_upstream', 'B\'s metadata nested');
    assert.equal(r.body.choices[0].message.content, 'echo: x');
    await a.stop();
    await b.stop();
  });
