// SPEC section 4: local limits (credential and deployment RPM/TPM, max_concurrent,
// default_models_rpm), fail2ban bans with their expiry and per-code rules, and the
// circuit breaker's CLOSED -> OPEN -> HALF_OPEN -> CLOSED cycle. Deployments are ordered
// with `weighted` and weight 0 on the second one, so cred_a is always tried first.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startRouter, baseConfig, waitFor, slow } from './lib/harness.mjs';
import { keyMaker, credYaml, modelYaml, client, chat, seenWith, countWith, collectStream } from './lib/routing.mjs';

let mock;

before(async () => { mock = await startMock(); });

const NOBAN = 'fail2ban:\n  max_attempts: -1\n';
const NOBREAKER = 'circuit_breaker:\n  failure_threshold: -1\n';
const ROUTING = 'routing:\n  strategy: weighted\n  retry_delay: 50ms\n';

async function router(creds, models, { extra = NOBAN + NOBREAKER + ROUTING, server = '' } = {}) {
  return startRouter(baseConfig({
    credentials: creds.map((c) => credYaml({ base: mock.url, ...c })).join(''),
    models: models.map(modelYaml).join(''),
    extra,
    server,
  }));
}

async function servedBy(r, model, content = 'x') {
  const res = await chat(r, model, content);
  assert.equal(res.status, 200, `${model}: ${res.text}`);
  return res.body._router.credential;
}

function assertLimited(res, what) {
  assert.equal(res.status, 429, `${what}: ${res.text}`);
  assert.equal(res.body.error.type, 'rate_limit_error', what);
  const ra = res.headers.get('retry-after');
  assert.match(ra || '', /^\d+$/, `${what}: Retry-After ${ra}`);
  assert.ok(Number(ra) >= 1 && Number(ra) <= 60, `${what}: Retry-After ${ra}`);
}

test('credential rpm: 3 served, the 4th moves to another credential or gets 429', async () => {
  const k = keyMaker();
  const r = await router(
    [{ name: 'cred_a', key: k('a'), rpm: 3 }, { name: 'cred_b', key: k('b') }, { name: 'cred_c', key: k('c'), rpm: 3 }],
    [{ name: 'm', credential: 'cred_a', weight: 1 }, { name: 'm', credential: 'cred_b', weight: 0 },
      { name: 'solo', credential: 'cred_c' }],
  );
  await mock.clear();
  for (let i = 0; i < 3; i++) assert.equal(await servedBy(r, 'm'), 'cred_a', `request ${i}`);
  const fourth = await chat(r, 'm', 'x');
  assert.equal(fourth.body._router.credential, 'cred_b');
  assert.equal(fourth.body._router.attempts, 1, 'a limited candidate is skipped, not tried');
  assert.equal(await countWith(mock, k('a')), 3);

  for (let i = 0; i < 3; i++) assert.equal(await servedBy(r, 'solo'), 'cred_c');
  assertLimited(await chat(r, 'solo', 'x'), 'solo, 4th request');
  assert.equal(await countWith(mock, k('c')), 3);
  await r.stop();
});

test('deployment rpm is separate from the credential rpm; default_models_rpm applies without one', async () => {
  const k = keyMaker();
  const r = await router(
    [{ name: 'cred_d', key: k('d') }, { name: 'cred_e', key: k('e'), rpm: 3 }],
    [
      { name: 'dx', credential: 'cred_d', model: 'up-x', rpm: 1 },
      { name: 'dy', credential: 'cred_d', model: 'up-y', rpm: -1 },
      { name: 'dz', credential: 'cred_d', model: 'up-z' },
      { name: 'ex', credential: 'cred_e', model: 'up-ex', rpm: -1 },
      { name: 'ey', credential: 'cred_e', model: 'up-ey', rpm: -1 },
    ],
    { server: '  default_models_rpm: 2\n' },
  );
  // dx: its own limit (1)
  assert.equal(await servedBy(r, 'dx'), 'cred_d');
  assertLimited(await chat(r, 'dx', 'x'), 'dx over its rpm 1');
  // dy on the same credential: unlimited (rpm -1 overrides the default)
  for (let i = 0; i < 4; i++) assert.equal(await servedBy(r, 'dy'), 'cred_d');
  // dz: no rpm of its own -> default_models_rpm 2
  assert.equal(await servedBy(r, 'dz'), 'cred_d');
  assert.equal(await servedBy(r, 'dz'), 'cred_d');
  assertLimited(await chat(r, 'dz', 'x'), 'dz over default_models_rpm 2');
  // the credential limit counts every deployment of the credential
  assert.equal(await servedBy(r, 'ex'), 'cred_e');
  assert.equal(await servedBy(r, 'ex'), 'cred_e');
  assert.equal(await servedBy(r, 'ey'), 'cred_e');
  assertLimited(await chat(r, 'ey', 'x'), 'ey: cred_e over its rpm 3');
  await r.stop();
});

// 100 words: the mock answers with them, so completion_tokens = 100 per request while
// airouter's estimate (about body bytes / 4) is near 20.
const WORDS = Array.from({ length: 100 }, (_, i) => `w${i}`).join(' ');

test('TPM is charged with the real usage: two answers of 101 tokens fill a 150 TPM window', async () => {
  const k = keyMaker();
  const r = await router(
    [{ name: 'cred_t', key: k('t'), tpm: 150 }, { name: 'cred_s', key: k('s') }],
    [{ name: 'tn', credential: 'cred_t' }, { name: 'ts', credential: 'cred_s', tpm: 150 }],
  );
  // non-streamed, credential-level TPM
  await mock.queue([{ content: WORDS }, { content: WORDS }], k('t'));
  for (let i = 0; i < 2; i++) {
    const res = await chat(r, 'tn', 'hi');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.usage.completion_tokens, 100);
  }
  assertLimited(await chat(r, 'tn', 'hi'), 'third request after 2 x 101 real tokens (estimates were ~20 each)');

  // streamed, deployment-level TPM: the usage chunk counts, but the client did not ask for it
  await mock.clear();
  await mock.queue([{ content: WORDS }, { content: WORDS }], k('s'));
  const c = client(r);
  for (let i = 0; i < 2; i++) {
    const { chunks, content, error } = await collectStream(
      await c.chat.completions.create({ model: 'ts', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    );
    assert.equal(error, null);
    assert.equal(content, WORDS);
    for (const ch of chunks) {
      assert.ok(!ch.usage, `no usage chunk without include_usage: ${JSON.stringify(ch)}`);
      assert.ok(ch.choices.length > 0, `no choices-less chunk: ${JSON.stringify(ch)}`);
    }
  }
  const sent = await seenWith(mock, k('s'));
  assert.equal(sent.length, 2);
  for (const q of sent) assert.equal(q.body.stream_options?.include_usage, true, 'airouter asks upstream for usage');
  assertLimited(await chat(r, 'ts', 'hi', { stream: true }), 'third stream after 2 x 101 real tokens');
  await r.stop();
});

test('a client asking for usage in a stream still gets the usage chunk', async () => {
  const k = keyMaker();
  const r = await router([{ name: 'cred_u', key: k('u') }], [{ name: 'mu', credential: 'cred_u' }]);
  const { chunks, error } = await collectStream(await client(r).chat.completions.create({
    model: 'mu', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'one two' }],
  }));
  assert.equal(error, null);
  const usage = chunks.filter((ch) => ch.usage);
  assert.equal(usage.length, 1);
  assert.equal(usage[0].usage.completion_tokens, 3);
  await r.stop();
});

test('max_concurrent: a deployment at its in-flight limit is skipped while busy', async () => {
  const k = keyMaker();
  const r = await router(
    [{ name: 'cred_a', key: k('a') }, { name: 'cred_b', key: k('b') }],
    [{ name: 'm', credential: 'cred_a', weight: 1, max_concurrent: 1 }, { name: 'm', credential: 'cred_b', weight: 0 }],
  );
  await mock.clear();
  await mock.queue([{ latency: '800ms' }], k('a'));
  const first = chat(r, 'm', 'slow one');
  await waitFor(async () => (await countWith(mock, k('a'))) === 1, { what: 'the slow request reaching cred_a' });
  const second = await chat(r, 'm', 'meanwhile');
  assert.equal(second.body._router.credential, 'cred_b');
  assert.equal(second.body._router.attempts, 1, 'the busy deployment is skipped, not tried');
  const done = await first;
  assert.equal(done.body._router.credential, 'cred_a');
  assert.equal(await servedBy(r, 'm'), 'cred_a', 'free again once the first request ended');
  await r.stop();
});

test('fail2ban: a ban expires after ban_duration', async () => {
  const k = keyMaker();
  const r = await router(
    [{ name: 'cred_a', key: k('a') }, { name: 'cred_b', key: k('b') }],
    [{ name: 'm', credential: 'cred_a', weight: 1 }, { name: 'm', credential: 'cred_b', weight: 0 }],
    { extra: 'fail2ban:\n  max_attempts: 1\n  ban_duration: 1s\n' + NOBREAKER + ROUTING },
  );
  await mock.clear();
  await mock.queue([{ status: 500 }], k('a'));
  const banned = await chat(r, 'm', 'x');
  const bannedAt = Date.now();
  assert.equal(banned.body._router.credential, 'cred_b');
  assert.equal(banned.body._router.errors[0].status, 500);
  const during = await chat(r, 'm', 'x');
  assert.equal(during.body._router.credential, 'cred_b');
  assert.equal(during.body._router.attempts, 1, 'banned: not tried');
  assert.equal(await countWith(mock, k('a')), 1);
  await waitFor(async () => (await servedBy(r, 'm')) === 'cred_a', { timeoutMs: 5000 * slow, what: 'the ban to expire' });
  const waited = Date.now() - bannedAt;
  assert.ok(waited >= 900, `the ban of 1s ended after ${waited} ms`);
  await r.stop();
});

test('fail2ban error_code_rules: a 429 rule has its own max_attempts', async () => {
  const k = keyMaker();
  const r = await router(
    [
      { name: 'cred_a', key: k('a'), headers: { 'x-mock-status': '429' } },
      { name: 'cred_b', key: k('b') },
      { name: 'cred_c', key: k('c'), headers: { 'x-mock-status': '500' } },
      { name: 'cred_d', key: k('d') },
    ],
    [
      { name: 'm', credential: 'cred_a', weight: 1 }, { name: 'm', credential: 'cred_b', weight: 0 },
      { name: 'n', credential: 'cred_c', weight: 1 }, { name: 'n', credential: 'cred_d', weight: 0 },
    ],
    {
      extra: 'fail2ban:\n  max_attempts: 1\n  ban_duration: permanent\n  error_codes: [500]\n' +
        '  error_code_rules:\n    - code: 429\n      max_attempts: 3\n' +
        NOBREAKER + 'routing:\n  strategy: weighted\n  rate_limit_retries: 0\n  retry_delay: 50ms\n',
    },
  );
  await mock.clear();
  for (let i = 0; i < 5; i++) {
    const res = await chat(r, 'm', `r${i}`);
    assert.equal(res.body._router.credential, 'cred_b');
    assert.equal(res.body._router.attempts, i < 3 ? 2 : 1, `request ${i}`);
  }
  assert.equal(await countWith(mock, k('a')), 3, 'the 429 rule bans after 3, not after the global 1');
  // a 500 follows the global max_attempts 1
  for (let i = 0; i < 3; i++) assert.equal(await servedBy(r, 'n'), 'cred_d');
  assert.equal(await countWith(mock, k('c')), 1);
  await r.stop();
});

test('circuit breaker: opens after failure_threshold, half-opens after cooldown, closes after success_threshold', async () => {
  const k = keyMaker();
  const r = await router(
    [{ name: 'cred_a', key: k('a') }, { name: 'cred_b', key: k('b') }],
    [{ name: 'm', credential: 'cred_a', weight: 1 }, { name: 'm', credential: 'cred_b', weight: 0 }],
    { extra: NOBAN + 'circuit_breaker:\n  failure_threshold: 2\n  cooldown_period: 1s\n  success_threshold: 2\n' + ROUTING },
  );
  const a = k('a');
  await mock.clear();
  await mock.queue([{ status: 500 }, { status: 500 }], a);
  assert.equal(await servedBy(r, 'm'), 'cred_b');
  assert.equal(await servedBy(r, 'm'), 'cred_b');
  const openedAt = Date.now();
  // OPEN: cred_a/m is skipped without an attempt
  const skipped = await chat(r, 'm', 'x');
  assert.equal(skipped.body._router.credential, 'cred_b');
  assert.equal(skipped.body._router.attempts, 1);
  assert.equal(await countWith(mock, a), 2);

  // after the cooldown a trial request goes to cred_a (HALF_OPEN) and succeeds
  await waitFor(async () => (await servedBy(r, 'm')) === 'cred_a', { what: 'the breaker to half-open' });
  const cooled = Date.now() - openedAt;
  assert.ok(cooled >= 900, `half-open after ${cooled} ms with cooldown_period 1s`);
  // one success of the two needed: a failure now opens it again at once
  await mock.queue([{ status: 500 }], a);
  assert.equal(await servedBy(r, 'm'), 'cred_b');
  const reopenedAt = Date.now();
  const n = await countWith(mock, a);
  const again = await chat(r, 'm', 'x');
  assert.equal(again.body._router.attempts, 1, 'a HALF_OPEN failure opens the breaker again');
  assert.equal(await countWith(mock, a), n);

  // cooldown again, then two successes close it
  await waitFor(async () => (await servedBy(r, 'm')) === 'cred_a', { what: 'the breaker to half-open again' });
  assert.ok(Date.now() - reopenedAt >= 900);
  assert.equal(await servedBy(r, 'm'), 'cred_a');
  // CLOSED: one failure (below failure_threshold 2) no longer opens it
  await mock.queue([{ status: 500 }], a);
  assert.equal(await servedBy(r, 'm'), 'cred_b');
  const closed = await chat(r, 'm', 'x');
  assert.equal(closed.body._router.credential, 'cred_a', 'CLOSED after success_threshold successes');
  await r.stop();
});
