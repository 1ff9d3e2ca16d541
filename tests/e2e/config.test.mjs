// The command line and config errors: `config check`, FILE:LINE messages, exit codes,
// and an invalid config never starting a server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, writeConfig, repo } from './lib/harness.mjs';

const good = `server:
  master_key: sk-test-0123456789abcdef
credentials:
  - name: local
    type: mock
`;

test('config check: a valid file exits 0', async () => {
  const f = writeConfig(good);
  const r = await runCli(['config', 'check', '-config', f]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /configuration OK/);
});

test('config check: problems as FILE:LINE, exit 1', async () => {
  const f = writeConfig(`server:
  master_key: sk-test-0123456789abcdef
  prot: 8080
credentials:
  - name: local
    type: mock
models:
  - name: m
    credential: missing
`);
  const r = await runCli(['config', 'check', '--config', f]);
  assert.equal(r.code, 1);
  assert.ok(r.err.includes(`${f}:3: unknown key 'prot' in server`), r.err);
  assert.match(r.err, /did you mean 'port'/);
  assert.ok(r.err.includes(`${f}:9:`), r.err);
  assert.match(r.err, /no credential named 'missing'/);
});

test('serve with an invalid config exits 2 and prints FILE:LINE', async () => {
  const f = writeConfig(`server:
  master_key: "os.environ/AIROUTER_E2E_UNSET_VAR"
credentials:
  - name: local
    type: mock
`);
  const env = { ...process.env };
  delete env.AIROUTER_E2E_UNSET_VAR;
  const r = await runCli(['-config', f], env);
  assert.equal(r.code, 2);
  assert.ok(r.err.includes(`${f}:2:`), r.err);
  assert.match(r.err, /AIROUTER_E2E_UNSET_VAR/);
});

test('env substitution in both syntaxes', async () => {
  const f = writeConfig(`server:
  master_key: "os.environ/E2E_KEY"
  port: \${E2E_PORT}
credentials:
  - name: local
    type: mock
`);
  const r = await runCli(['config', 'check', '-config', f], { E2E_KEY: 'sk-abcdef0123456789', E2E_PORT: '9123' });
  assert.equal(r.code, 0, r.err);
});

test('the quickstart config is valid', async () => {
  const r = await runCli(['config', 'check', '-config', `${repo}/examples/config.yaml`], { MASTER_KEY: 'sk-quickstart-000000' });
  assert.equal(r.code, 0, r.err);
});

test('--version, --help, bad usage', async () => {
  assert.match((await runCli(['--version'])).out, /^airouter \d+\.\d+/);
  assert.match((await runCli(['--help'])).out, /config check/);
  const bad = await runCli(['--bogus']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /unknown argument/);
  const missing = await runCli(['-config', '/nonexistent/x.yaml']);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /nonexistent\/x\.yaml/);
});
