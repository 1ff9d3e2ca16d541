// Cost from the price table (SPEC section 6, server.model_prices_link in LiteLLM's
// format): loaded off the loop at start, the last good copy kept next to the database and
// used when the link fails, reloaded on SIGHUP; a model's own config prices win over it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRouter, startMock, waitFor, MASTER_KEY } from './lib/harness.mjs';

function config({ db, link, mock, priced = '' }) {
  return `server:
  host: 127.0.0.1
  port: \${PORT}
  workers: 1
  master_key: "\${MASTER_KEY}"
  model_prices_link: ${link}
storage:
  database_url: sqlite://${db}
credentials:
  - name: up
    type: openai
    api_key: sk-upstream-test-key
    base_url: ${mock.url}/v1
models:
  - name: m
    credential: up
    model: gpt-test-1
  - name: own
    credential: up
    model: gpt-test-1
${priced}`;
}

const table = (input, output) => JSON.stringify({
  sample_spec: { input_cost_per_token: 0 },
  'gpt-test-1': { input_cost_per_token: input, output_cost_per_token: output, litellm_provider: 'openai', mode: 'chat' },
});

async function spend(router, model) {
  const r = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello there' }] }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).usage;
}

async function usage(router) {
  return (await (await fetch(`${router.url}/usage`, {
    headers: { authorization: `Bearer ${MASTER_KEY}` },
  })).json()).total;
}

test('price table: cost from the table, config prices win, a failed link falls back to the last good copy, SIGHUP reloads', async () => {
  const mock = await startMock();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airouter-prices-'));
  const db = path.join(dir, 't.db');
  const link = path.join(dir, 'prices.json');
  fs.writeFileSync(link, table(0.001, 0.002));
  const priced = '    input_cost_per_token: 0.5\n    output_cost_per_token: 0.5\n';
  let router = await startRouter(config({ db, link, mock, priced }));
  await waitFor(() => router.out.includes('price table: 2 models loaded') ||
    router.out.includes('price table: 1 models loaded'), { what: 'price table' });
  const u1 = await spend(router, 'm');
  let t = await usage(router);
  const want1 = u1.prompt_tokens * 0.001 + u1.completion_tokens * 0.002;
  assert.ok(Math.abs(t.cost_usd - want1) < 1e-12, `${t.cost_usd} vs ${want1}`);
  // the model's own prices win over the table
  const u2 = await spend(router, 'own');
  t = await usage(router);
  const want2 = want1 + (u2.prompt_tokens + u2.completion_tokens) * 0.5;
  assert.ok(Math.abs(t.cost_usd - want2) < 1e-9, `${t.cost_usd} vs ${want2}`);
  // the last good copy lives next to the database
  assert.equal(fs.readFileSync(db + '.prices.json', 'utf8'), table(0.001, 0.002));
  // SIGHUP reads the link again
  fs.writeFileSync(link, table(0.01, 0.02));
  router.signal('SIGHUP');
  await waitFor(() => router.out.split('price table:').length - 1 >= 2, { what: 'reload' });
  const u3 = await spend(router, 'm');
  t = await usage(router);
  const want3 = want2 + u3.prompt_tokens * 0.01 + u3.completion_tokens * 0.02;
  assert.ok(Math.abs(t.cost_usd - want3) < 1e-9, `${t.cost_usd} vs ${want3}`);
  await router.stop();
  // the link is gone: the cached copy (the second table) serves, and the log says why
  fs.rmSync(link);
  router = await startRouter(config({ db, link, mock }));
  await waitFor(() => /price table: \d+ models loaded: /.test(router.out), { what: 'fallback' });
  const before = (await usage(router)).cost_usd;
  const u4 = await spend(router, 'm');
  const after = (await usage(router)).cost_usd;
  const want4 = u4.prompt_tokens * 0.01 + u4.completion_tokens * 0.02;
  assert.ok(Math.abs(after - before - want4) < 1e-9, `${after - before} vs ${want4}`);
  await router.stop();
  await mock.stop();
});
