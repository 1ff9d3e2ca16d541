// Smart routing (SPEC sections 3 and 4): the request filters tags, type, min_context_size,
// json_response and min_success_rate keep only matching deployments (a model they empty is
// 503 naming them), prefer_fast picks the measured fastest, "auto" and an absent model are
// smart selection, priority lists take pins and a trailing "auto", routing.fallback comes
// last with fallback_used, and _router.model_name / x-airouter-model give the public name.
// Strategies are round_robin unless a test says otherwise, so a filter that does nothing
// shows up as the wrong credential within a few requests.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startRouter, baseConfig, MASTER_KEY } from './lib/harness.mjs';
import { keyMaker, credYaml, chat, seenWith } from './lib/routing.mjs';

let mock;

before(async () => { mock = await startMock(); });

const NOBAN = 'fail2ban:\n  max_attempts: -1\ncircuit_breaker:\n  failure_threshold: -1\n';

// Three credentials a, b, c serving `m` with different capabilities, and `plain` on a.
async function capsRouter(k, extra = '') {
  return startRouter(baseConfig({
    credentials: ['a', 'b', 'c'].map((n) => credYaml({ name: n, key: k(n), base: mock.url })).join(''),
    models: [
      '  - name: m\n    credential: a\n    model: up-a\n    tags: [code, general]\n    type: fast\n' +
        '    context_size: 8000\n    json_response: true\n',
      '  - name: m\n    credential: b\n    model: up-b\n    tags: [general]\n    type: reasoning\n' +
        '    context_size: 200000\n',
      '  - name: m\n    credential: c\n    model: up-c\n    tags: [code]\n    context_size: 128000\n' +
        '    json_response: true\n',
      '  - name: plain\n    credential: a\n    model: up-plain\n',
    ].join(''),
    extra: 'routing:\n  strategy: round_robin\n' + extra,
  }));
}

// The credentials that served n requests of `model` with the extension fields `extra`.
async function served(router, model, extra, n = 6) {
  const seen = new Set();
  for (let i = 0; i < n; i++) {
    const r = await chat(router, model, `q${i}`, { extra });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body._router.attempts, 1);
    seen.add(r.body._router.credential);
  }
  return [...seen].sort();
}

test('tags: all must be among the deployment\'s tags; unmatched 503 names the filter', async () => {
  const k = keyMaker();
  const router = await capsRouter(k);
  assert.deepEqual(await served(router, 'm', {}), ['a', 'b', 'c']);
  assert.deepEqual(await served(router, 'm', { tags: ['code'] }), ['a', 'c']);
  assert.deepEqual(await served(router, 'm', { tags: ['code', 'general'] }), ['a']);
  assert.deepEqual(await served(router, 'm', { tags: [] }), ['a', 'b', 'c']);
  // the extensions never reach the upstream
  for (const r of await seenWith(mock, k('a'))) {
    for (const f of ['tags', 'type', 'min_context_size', 'json_response', 'prefer_fast', 'min_success_rate'])
      assert.equal(f in r.body, false, `${f} was forwarded`);
  }
  const none = await chat(router, 'm', 'x', { extra: { tags: ['vision'] } });
  assert.equal(none.status, 503);
  assert.equal(none.body.error.type, 'service_unavailable_error');
  assert.equal(none.body.error.code, 'no_available_deployment');
  assert.match(none.body.error.message, /model 'm'.*filters \(tags\)/);
  // an unknown model stays 404 whatever the filters
  const unknown = await chat(router, 'nope', 'x', { extra: { tags: ['code'] } });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 'model_not_found');
  await router.stop();
});

test('type, min_context_size and json_response keep only matching deployments', async () => {
  const router = await capsRouter(keyMaker());
  assert.deepEqual(await served(router, 'm', { type: 'fast' }), ['a']);
  assert.deepEqual(await served(router, 'm', { type: 'reasoning' }), ['b']);
  assert.deepEqual(await served(router, 'm', { min_context_size: 100000 }), ['b', 'c']);
  assert.deepEqual(await served(router, 'm', { min_context_size: 128001 }), ['b']);
  assert.deepEqual(await served(router, 'm', { json_response: true }), ['a', 'c']);
  assert.deepEqual(await served(router, 'm', { json_response: false }), ['a', 'b', 'c']);
  // combined: code + json + 100k context -> only c
  assert.deepEqual(await served(router, 'm', { tags: ['code'], json_response: true, min_context_size: 100000 }), ['c']);
  // `plain` declares no type and no context size: both filters empty it
  const r = await chat(router, 'plain', 'x', { extra: { type: 'fast', min_context_size: 1 } });
  assert.equal(r.status, 503);
  assert.match(r.body.error.message, /filters \(type, min_context_size\)/);
  await router.stop();
});

test('a filter field of the wrong type is a 400 naming it', async () => {
  const router = await capsRouter(keyMaker());
  const cases = [
    [{ tags: 'code' }, "'tags' must be an array of strings"],
    [{ tags: ['code', 1] }, "'tags' must be an array of strings"],
    [{ type: 'slow' }, "'type' must be \"fast\" or \"reasoning\""],
    [{ type: 1 }, "'type' must be \"fast\" or \"reasoning\""],
    [{ min_context_size: -1 }, "'min_context_size' must be an integer >= 0"],
    [{ min_context_size: 1.5 }, "'min_context_size' must be an integer >= 0"],
    [{ min_context_size: '1000' }, "'min_context_size' must be an integer >= 0"],
    [{ json_response: 'yes' }, "'json_response' must be a boolean"],
    [{ prefer_fast: 1 }, "'prefer_fast' must be a boolean"],
    [{ min_success_rate: 1.5 }, "'min_success_rate' must be a number from 0 to 1"],
    [{ min_success_rate: '0.5' }, "'min_success_rate' must be a number from 0 to 1"],
  ];
  for (const [extra, message] of cases) {
    const r = await chat(router, 'm', 'x', { extra });
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.equal(r.body.error.type, 'invalid_request_error');
    assert.equal(r.body.error.message, message);
  }
  // a number too large to read is refused too, never ignored
  const big = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: '{"model":"m","messages":[{"role":"user","content":"x"}],"min_context_size":123456789012345678901234567890}',
  });
  assert.equal(big.status, 400);
  assert.match((await big.json()).error.message, /min_context_size/);
  // null is "not set"
  assert.deepEqual(await served(router, 'm', { tags: null, type: null, json_response: null, min_success_rate: null }),
    ['a', 'b', 'c']);
  await router.stop();
});

test('min_success_rate drops a deployment that has been failing', async () => {
  const k = keyMaker();
  const router = await startRouter(baseConfig({
    credentials: credYaml({ name: 'bad', key: k('bad'), base: mock.url, headers: { 'x-mock-status': '500' } }) +
      credYaml({ name: 'good', key: k('good'), base: mock.url }),
    models: '  - name: m\n    credential: bad\n  - name: m\n    credential: good\n',
    extra: 'routing:\n  strategy: round_robin\n  max_retries: 0\n' + NOBAN,
  }));
  // bad fails twice (its success rate is 0); good has no samples yet and passes
  for (let i = 0; i < 2; i++)
    assert.equal((await chat(router, 'bad/m', 'x')).status, 500);
  for (let i = 0; i < 6; i++) {
    const r = await chat(router, 'm', 'x', { extra: { min_success_rate: 0.5 } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body._router.credential, 'good');
    assert.equal(r.body._router.attempts, 1);
  }
  // without the filter round_robin still gives bad its turn (max_retries 0: its 500 is final)
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await chat(router, 'm', 'x')).status);
  assert.ok(statuses.includes(500) && statuses.includes(200), statuses.join());
  const r = await chat(router, 'bad/m', 'x', { extra: { min_success_rate: 0.1 } });
  assert.equal(r.status, 503);
  assert.match(r.body.error.message, /filters \(min_success_rate\)/);
  await router.stop();
});

test('prefer_fast: the deployment with the lowest measured latency is tried first', async () => {
  const k = keyMaker();
  const router = await startRouter(baseConfig({
    credentials: credYaml({ name: 'slow', key: k('slow'), base: mock.url, headers: { 'x-mock-latency': '150ms' } }) +
      credYaml({ name: 'fast', key: k('fast'), base: mock.url }),
    models: '  - name: m\n    credential: slow\n  - name: m\n    credential: fast\n',
    extra: 'routing:\n  strategy: round_robin\n',
  }));
  // measure both
  for (const c of ['slow', 'fast', 'slow', 'fast'])
    assert.equal((await chat(router, `${c}/m`, 'x')).body._router.credential, c);
  assert.deepEqual(await served(router, 'm', { prefer_fast: true }), ['fast']);
  // without it round_robin alternates
  assert.deepEqual(await served(router, 'm', {}, 4), ['fast', 'slow']);
  await router.stop();
});

test('"auto" and an absent model: smart selection over every deployment, with filters', async () => {
  const k = keyMaker();
  // round_robin is configured: only smart (weight x success x latency) never picks weight 0 first
  const router = await startRouter(baseConfig({
    credentials: credYaml({ name: 'a', key: k('a'), base: mock.url }) + credYaml({ name: 'b', key: k('b'), base: mock.url }),
    models: '  - name: x\n    credential: a\n    weight: 0\n    tags: [onlyx]\n' +
      '  - name: y\n    credential: b\n    model: up-y\n',
    extra: 'routing:\n  strategy: round_robin\n',
  }));
  for (let i = 0; i < 6; i++) {
    const r = await chat(router, 'auto', 'x');
    assert.equal(r.body._router.credential, 'b');
    assert.equal(r.body._router.model_name, 'y');
    assert.equal(r.body._router.upstream_model, 'up-y');
    assert.equal(r.headers.get('x-airouter-model'), 'y');
    const absent = await chat(router, undefined, 'x');
    assert.equal(absent.status, 200, absent.text);
    assert.equal(absent.body._router.credential, 'b');
  }
  // filters apply to auto: only x carries the tag
  const r = await chat(router, 'auto', 'x', { extra: { tags: ['onlyx'] } });
  assert.equal(r.body._router.credential, 'a');
  assert.equal(r.body._router.model_name, 'x');
  assert.equal(r.body._router.upstream_model, 'x');
  const none = await chat(router, undefined, 'x', { extra: { tags: ['nothing'] } });
  assert.equal(none.status, 503);
  assert.match(none.body.error.message, /model 'auto'.*\(tags\)/);
  await router.stop();
});

test('a priority list with credential and type pins and a trailing "auto"', async () => {
  const k = keyMaker();
  const router = await startRouter(baseConfig({
    credentials: credYaml({ name: 'a', key: k('a'), base: mock.url }) +
      credYaml({ name: 'b', key: k('b'), base: mock.url, headers: { 'x-mock-status': '500' } }) +
      credYaml({ name: 'c', key: k('c'), base: mock.url }),
    models: '  - name: m\n    credential: a\n    model: up-m-a\n    tags: [t]\n' +
      '  - name: m\n    credential: b\n' +
      '  - name: n\n    credential: c\n    model: up-n\n    tags: [t]\n',
    extra: 'routing:\n  strategy: round_robin\n  retry_delay: 10ms\n' + NOBAN,
  }));
  // the pinned b fails, then the type-pinned n serves
  for (let i = 0; i < 3; i++) {
    const r = await chat(router, ['b/m', 'openai/n'], 'x');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body._router.attempts, 2);
    assert.equal(r.body._router.errors[0].credential, 'b');
    assert.equal(r.body._router.credential, 'c');
    assert.equal(r.body._router.model_name, 'n');
    assert.equal(r.body._router.upstream_model, 'up-n');
  }
  // a type pin that matches nothing is skipped; the trailing auto finds a or c
  for (let i = 0; i < 3; i++) {
    const r = await chat(router, ['b/m', 'anthropic/m', 'auto'], 'x');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body._router.errors[0].credential, 'b');
    assert.ok(['a', 'c'].includes(r.body._router.credential));
    assert.equal(r.body._router.attempts, 2);
  }
  // filters apply along the list: b is dropped by the tag filter before it is tried
  const r = await chat(router, ['b/m', 'a/m'], 'x', { extra: { tags: ['t'] } });
  assert.equal(r.body._router.credential, 'a');
  assert.equal(r.body._router.model_name, 'm');
  assert.equal(r.body._router.upstream_model, 'up-m-a');
  assert.equal(r.body._router.attempts, 1);
  await router.stop();
});

test('routing.fallback after the list is exhausted: fallback_used and its model name', async () => {
  const k = keyMaker();
  const router = await startRouter(baseConfig({
    credentials: credYaml({ name: 'a', key: k('a'), base: mock.url, headers: { 'x-mock-status': '500' } }) +
      credYaml({ name: 'last', key: k('last'), base: mock.url }),
    models: '  - name: m\n    credential: a\n    tags: [t]\n',
    extra: 'routing:\n  fallback:\n    enabled: true\n    credential: last\n    model: last-model\n' + NOBAN,
  }));
  const r = await chat(router, ['m', 'auto'], 'x', { extra: { tags: ['t'] } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body._router.fallback_used, true);
  assert.equal(r.body._router.credential, 'last');
  assert.equal(r.body._router.model_name, 'last-model');
  assert.equal(r.headers.get('x-airouter-model'), 'last-model');
  await router.stop();
});
