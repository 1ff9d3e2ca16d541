// Real coding-agent clients, from npm (tests/clients, pinned; scripts/deps.sh installs them):
// Claude Code (`claude -p`) and Codex CLI (`codex exec`), each run once, non-interactively,
// against the mock upstream through airouter (and Codex also straight at the mock, which
// proves the mock's Responses API satisfies it). Each run has a temp HOME/config dir, an
// environment without the host's, no update checks or telemetry, and a deadline after which
// its whole process group is killed. The answer must be the mock's echo.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMock, startRouter, baseConfig, repo, slow, MASTER_KEY } from './lib/harness.mjs';

const bin = path.join(repo, 'tests/clients/node_modules/.bin');
const CLAUDE = path.join(bin, 'claude');
const CODEX = path.join(bin, 'codex');
const missing = !fs.existsSync(CLAUDE) || !fs.existsSync(CODEX)
  ? 'tests/clients not installed (scripts/deps.sh test)' : false;
const RUN_MS = 60000 * slow;

const KEY_ANT = 'sk-ant-upstream-clients-0123456789';
const KEY_OAI = 'sk-oai-upstream-clients-0123456789';
// Claude Code knows these ids (an unknown id makes it assume the newest API features, e.g.
// role "system" messages); airouter routes them to the mock.
const SONNET = 'claude-sonnet-4-5';
const HAIKU = 'claude-haiku-4-5';

let mock;
let viaAnthropic; // airouter whose claude-* models use an `anthropic` credential
let viaOpenai;    // the same names on an `openai` credential (translation)

// Everything a run leaves (HOME, config dirs, its working directory) lives under here,
// outside any git checkout, so the clients see a bare directory.
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'airouter-clients-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

function routerConfig(credential) {
  return baseConfig({
    credentials: `
  - name: ant
    type: anthropic
    api_key: ${KEY_ANT}
    base_url: ${mock.url}
  - name: oai
    type: openai
    api_key: ${KEY_OAI}
    base_url: ${mock.url}
`,
    models: `
  - name: ${SONNET}
    credential: ${credential}
    model: ${credential === 'ant' ? SONNET : 'mock-gpt-4o'}
  - name: ${HAIKU}
    credential: ${credential}
    model: ${credential === 'ant' ? HAIKU : 'mock-gpt-4o-mini'}
  - name: codex-oai
    credential: oai
    model: mock-gpt-4o
  - name: codex-ant
    credential: ant
    model: ${SONNET}
`,
    extra: `fail2ban:
  max_attempts: -1
circuit_breaker:
  failure_threshold: -1
`,
  });
}

before(async () => {
  if (missing) return;
  mock = await startMock(['--require-key', KEY_ANT, '--require-key', KEY_OAI,
    '--require-key', 'sk-codex-direct']);
  viaAnthropic = await startRouter(routerConfig('ant'));
  viaOpenai = await startRouter(routerConfig('oai'));
});

// Runs a client in its own process group with only the given environment; on the deadline
// the whole group (Codex's node wrapper and its native binary) is killed.
function runClient(file, args, env, cwd) {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      cwd,
      env: { PATH: `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    let err = '';
    let timedOut = false;
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }, RUN_MS);
    child.on('error', (e) => { err += String(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err, timedOut });
    });
  });
}

function runDir(name) {
  const dir = fs.mkdtempSync(path.join(scratch, `${name}-`));
  for (const d of ['home', 'config', 'work']) fs.mkdirSync(path.join(dir, d));
  return dir;
}

function explain(r) {
  return `exit ${r.code} ${r.signal ?? ''}${r.timedOut ? ' (timed out)' : ''}\n` +
    `stdout: ${r.out.slice(-3000)}\nstderr: ${r.err.slice(-3000)}`;
}

// ---- Claude Code ----

async function claude(router, auth) {
  const dir = runDir('claude');
  const r = await runClient(CLAUDE, ['-p', 'say hello', '--output-format', 'json', '--model', SONNET], {
    HOME: path.join(dir, 'home'),
    CLAUDE_CONFIG_DIR: path.join(dir, 'config'),
    ANTHROPIC_BASE_URL: router.url,
    [auth]: MASTER_KEY,
    ANTHROPIC_DEFAULT_SONNET_MODEL: SONNET,
    ANTHROPIC_DEFAULT_HAIKU_MODEL: HAIKU,
    ANTHROPIC_SMALL_FAST_MODEL: HAIKU,
    // no update check, telemetry, error reporting, feedback surveys
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
  }, path.join(dir, 'work'));
  assert.equal(r.code, 0, explain(r));
  const result = JSON.parse(r.out);
  assert.equal(result.is_error, false, explain(r));
  assert.match(result.result, /echo:/);
  assert.match(result.result, /say hello/);
  return result;
}

let claudeSeen = []; // what the anthropic credential's upstream got from Claude Code

test('Claude Code -> airouter /v1/messages -> anthropic credential -> mock', { skip: missing }, async () => {
  await mock.clear();
  await claude(viaAnthropic, 'ANTHROPIC_API_KEY');
  const seen = (await mock.requests()).filter((q) => q.headers['x-api-key'] === KEY_ANT);
  claudeSeen = seen;
  assert.ok(seen.length >= 1);
  assert.ok(seen.every((q) => q.path === '/v1/messages'));
  assert.equal(seen[0].body.model, SONNET);
  assert.equal(seen[0].body.stream, true);
});

// SPEC section 4: "anthropic credentials get the body and anthropic-beta as sent". Claude
// Code 2.1.332 (claude-sonnet-4-5) sends anthropic-beta claude-code-20250219,
// interleaved-thinking-2025-05-14, context-management-2025-06-27,
// thinking-token-count-2026-05-13, advanced-tool-use-2025-11-20, and the body keys thinking
// ({type: enabled, budget_tokens, display: omitted}), context_management and tools with
// defer_loading.
test('Claude Code: an anthropic credential gets the body fields and anthropic-beta as sent', { skip: missing }, async () => {
  assert.ok(claudeSeen.length >= 1);
  const [q] = claudeSeen;
  assert.match(q.headers['anthropic-beta'] ?? '', /claude-code-20250219/);
  assert.match(q.headers['anthropic-beta'] ?? '', /interleaved-thinking-2025-05-14/);
  assert.equal(q.body.thinking?.type, 'enabled');
  assert.ok(q.body.context_management);
  assert.ok(q.body.tools.some((t) => t.defer_loading === true));
});

test('Claude Code -> airouter /v1/messages -> openai credential -> mock (translated)', { skip: missing }, async () => {
  await mock.clear();
  await claude(viaOpenai, 'ANTHROPIC_AUTH_TOKEN');
  const seen = (await mock.requests()).filter((q) => q.headers.authorization === `Bearer ${KEY_OAI}`);
  assert.ok(seen.length >= 1);
  assert.ok(seen.every((q) => q.path === '/v1/chat/completions'));
  assert.equal(seen[0].body.model, 'mock-gpt-4o');
});

// ---- Codex CLI ----

// CODEX_HOME/config.toml: one custom provider speaking the Responses API, no retries (a
// failure shows at once), no update check or analytics. The plugins and apps features fetch
// curated lists from github.com and chatgpt.com at start (seen as DNS lookups): off.
function codexHome(dir, baseUrl, model) {
  const home = path.join(dir, 'config');
  fs.writeFileSync(path.join(home, 'config.toml'), `model = "${model}"
model_provider = "airouter"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false
apps = false

[model_providers.airouter]
name = "airouter"
base_url = "${baseUrl}"
env_key = "AIROUTER_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = ${RUN_MS}
`);
  return home;
}

// codex exec --json prints one JSON event per line; returns them.
async function codex(baseUrl, key, model, prompt, extra = []) {
  const dir = runDir('codex');
  const r = await runClient(CODEX, ['exec', '--skip-git-repo-check', '--ephemeral', '--strict-config',
    '--json', '--sandbox', 'read-only', '-C', path.join(dir, 'work'), ...extra, prompt], {
    HOME: path.join(dir, 'home'),
    CODEX_HOME: codexHome(dir, baseUrl, model),
    AIROUTER_KEY: key,
  }, path.join(dir, 'work'));
  assert.equal(r.code, 0, explain(r));
  const events = r.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  assert.ok(events.some((e) => e.type === 'turn.completed'), explain(r));
  return { events, r };
}

function agentMessages(events) {
  return events.filter((e) => e.type === 'item.completed' && e.item.type === 'agent_message')
    .map((e) => e.item.text);
}

test('Codex -> mock /v1/responses directly (the mock satisfies Codex)', { skip: missing }, async () => {
  await mock.clear();
  const { events } = await codex(`${mock.url}/v1`, 'sk-codex-direct', 'mock-gpt-4o', 'say hello');
  assert.deepEqual(agentMessages(events), ['echo: say hello']);
  const turn = events.find((e) => e.type === 'turn.completed');
  assert.equal(turn.usage.output_tokens, 3);

  const seen = await mock.requests();
  assert.equal(seen.length, 1);
  const [q] = seen;
  assert.equal(q.path, '/v1/responses');
  assert.equal(q.headers.authorization, 'Bearer sk-codex-direct');
  assert.equal(q.body.model, 'mock-gpt-4o');
  assert.equal(q.body.stream, true);
  assert.equal(q.body.store, false);
  assert.deepEqual(q.body.include, ['reasoning.encrypted_content']);
  assert.equal(q.body.parallel_tool_calls, true);
  assert.ok(q.body.tools.some((t) => t.type === 'function' && t.name === 'exec_command'));
  const last = q.body.input.at(-1);
  assert.deepEqual([last.type, last.role, last.content[0].text], ['message', 'user', 'say hello']);
});

test('Codex -> mock directly: a tool call, its output sent back with the reasoning item', { skip: missing }, async () => {
  await mock.clear();
  // the mock calls Codex's first function tool with {"x":1}; Codex answers with the
  // argument error as function_call_output, which the mock then echoes
  const { events } = await codex(`${mock.url}/v1`, 'sk-codex-direct', 'mock-gpt-4o', 'run it [tool]',
    ['-c', 'model_reasoning_effort="low"']);
  const [text] = agentMessages(events);
  assert.match(text, /^echo: .*cmd/);
  const seen = await mock.requests();
  assert.equal(seen.length, 2);
  assert.equal(seen[0].body.reasoning.effort, 'low');
  const types = seen[1].body.input.slice(-3).map((i) => i.type);
  assert.deepEqual(types, ['reasoning', 'function_call', 'function_call_output']);
  assert.equal(seen[1].body.input.at(-3).encrypted_content, 'gAAAAA-mock-reasoning');
  assert.equal(seen[1].body.input.at(-1).call_id, 'call_mock_1');
});

const noResponses = missing;

test('Codex -> airouter /v1/responses -> openai credential -> mock', { skip: noResponses }, async () => {
  await mock.clear();
  const { events } = await codex(`${viaOpenai.url}/v1`, MASTER_KEY, 'codex-oai', 'say hello');
  assert.deepEqual(agentMessages(events), ['echo: say hello']);
  const seen = (await mock.requests()).filter((q) => q.headers.authorization === `Bearer ${KEY_OAI}`);
  assert.ok(seen.length >= 1);
  assert.equal(seen[0].path, '/v1/responses');
  assert.equal(seen[0].body.model, 'mock-gpt-4o');
});

test('Codex -> airouter /v1/responses -> anthropic credential -> mock (translated)', { skip: noResponses }, async () => {
  await mock.clear();
  const { events } = await codex(`${viaAnthropic.url}/v1`, MASTER_KEY, 'codex-ant', 'say hello');
  const texts = agentMessages(events);
  assert.equal(texts.length, 1);
  assert.match(texts[0], /^echo: .*say hello/s);
  const seen = (await mock.requests()).filter((q) => q.headers['x-api-key'] === KEY_ANT);
  assert.ok(seen.length >= 1);
  assert.equal(seen[0].path, '/v1/messages');
  assert.equal(seen[0].body.model, SONNET);
});
