// The OpenAI-compatible presets of examples/presets/: each passes `airouter config check` with
// placeholder keys in the environment, and each, served with its base_url (and nothing else
// about the upstream) pointed at the C mock, answers a chat request from the openai SDK. The
// base_url keeps the preset's path (/v1, /api/v1, /openai/v1), so the mock also checks the
// path airouter derives from it (a trailing /v1 is never doubled) and the auth it sends.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { repo, startMock, startRouter, runCli, writeConfig, MASTER_KEY } from './lib/harness.mjs';

const dir = path.join(repo, 'examples/presets');

// What each preset must look like on the wire: the env its keys come from, the model asked
// for and the upstream name it maps to, the path the mock must see, the Authorization header
// (null: none at all) and the extra headers.
const presets = {
  deepseek: {
    env: { DEEPSEEK_API_KEY: 'sk-deepseek-placeholder' },
    chat: 'deepseek-flash',
    upstream: 'deepseek-flash',
    path: '/v1/chat/completions',
    auth: 'Bearer sk-deepseek-placeholder',
  },
  openrouter: {
    env: { OPENROUTER_API_KEY: 'sk-or-v1-placeholder' },
    chat: 'gpt-4o',
    upstream: 'openai/gpt-4o',
    path: '/api/v1/chat/completions',
    auth: 'Bearer sk-or-v1-placeholder',
    headers: { 'http-referer': 'https://example.com', 'x-title': 'airouter' },
  },
  bedrock: {
    env: { AWS_BEARER_TOKEN_BEDROCK: 'bedrock-api-key-placeholder' },
    chat: 'gpt-oss-120b',
    upstream: 'openai.gpt-oss-120b-1:0',
    path: '/openai/v1/chat/completions',
    auth: 'Bearer bedrock-api-key-placeholder',
  },
  vllm: {
    env: { VLLM_API_KEY: 'token-abc123' },
    chat: 'llama-3.1-8b',
    upstream: 'meta-llama/Llama-3.1-8B-Instruct',
    path: '/v1/chat/completions',
    auth: 'Bearer token-abc123',
  },
  ollama: {
    env: {},
    chat: 'llama3.2',
    upstream: 'llama3.2',
    path: '/v1/chat/completions',
    auth: null,
  },
};

let mock;

before(async () => { mock = await startMock(); });

test('every preset file is covered here', () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5));
  assert.deepEqual(files.sort(), Object.keys(presets).sort());
});

for (const [name, p] of Object.entries(presets)) {
  const file = path.join(dir, `${name}.yaml`);

  test(`${name}: config check passes with its keys set, names a missing one`, async () => {
    const env = { MASTER_KEY: 'sk-preset-master', ...p.env };
    const r = await runCli(['config', 'check', '-config', file], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out + r.err, /configuration OK/);
    for (const k of Object.keys(env)) {
      // undefined: the variable is left out of the child's environment altogether
      const bad = await runCli(['config', 'check', '-config', file], { ...env, [k]: undefined });
      assert.equal(bad.code, 1, `${k} unset should fail`);
      assert.match(bad.err, new RegExp(`environment variable ${k} is not set`));
    }
  });

  test(`${name}: chat through the preset reaches the mock, right path and auth`, async () => {
    const text = fs.readFileSync(file, 'utf8');
    const bases = [...text.matchAll(/^(\s*base_url:\s*)(https?:\/\/[^/\s]+)(\S*)\s*$/gm)];
    assert.equal(bases.length, 1, 'one base_url per preset');
    // base_url: same path, the mock's scheme://host:port; the listener gets a free port
    const yaml = text
      .replace(bases[0][0], `${bases[0][1]}${mock.url}${bases[0][3]}`)
      .replace(/^(\s*)port: 8080\s*$/m, '$1port: ${PORT}');
    const router = await startRouter(yaml, { env: { MASTER_KEY, ...p.env } });
    try {
      const client = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${router.url}/v1`, maxRetries: 0 });
      await mock.clear();
      const r = await client.chat.completions.create({
        model: p.chat, messages: [{ role: 'user', content: `hello ${name}` }],
      });
      assert.equal(r.choices[0].message.content, `echo: hello ${name}`);
      const [up] = await mock.requests();
      assert.equal(up.path, p.path);
      if (p.auth === null) assert.equal(up.headers.authorization, undefined, 'no auth header');
      else assert.equal(up.headers.authorization, p.auth);
      for (const [h, v] of Object.entries(p.headers || {})) assert.equal(up.headers[h], v, h);
      assert.equal(up.body.model, p.upstream, 'the upstream model name is sent');
      assert.equal(r.model, p.upstream);
      assert.equal(r._router.provider, 'openai');
    } finally {
      await router.stop();
    }
  });
}
