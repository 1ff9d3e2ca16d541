// store_cli.test.mjs: `airouter plan ...` and `airouter key ...` against a real SQLite file
// named by the config's storage.database_url: what each prints (human and --json), that a
// key is shown once and only its hash and masked form reach the database, revocation, and
// the clear errors and exit codes of bad use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCli, writeConfig } from './lib/harness.mjs';

function storeConfig() {
  const dir = path.dirname(writeConfig('placeholder'));
  const db = path.join(dir, 'store.db');
  const file = writeConfig(`server:
  master_key: sk-test-0123456789abcdef
storage:
  database_url: sqlite://${db}
credentials:
  - name: local
    type: mock
models:
  - name: m
    credential: local
`);
  return { file, db };
}

const cli = (file, ...args) => runCli([...args, '-config', file]);

test('plans: create, list (human and --json), a duplicate name is refused', async () => {
  const { file } = storeConfig();
  const made = await cli(file, 'plan', 'create', '--name', 'basic', '--max-tokens', '1000000',
    '--description', 'small team');
  assert.equal(made.code, 0, made.err);
  assert.match(made.out, /plan 1 'basic' created: 1,000,000 tokens/);
  const dup = await cli(file, 'plan', 'create', '--name', 'basic', '--max-tokens', '5');
  assert.equal(dup.code, 1);
  assert.match(dup.err, /a plan named 'basic' exists already/);
  const list = await cli(file, 'plan', 'list');
  assert.equal(list.code, 0);
  assert.match(list.out, /basic\s+1,000,000\s+small team/);
  const json = JSON.parse((await cli(file, 'plan', 'list', '--json')).out);
  assert.equal(json.plans.length, 1);
  assert.equal(json.plans[0].max_tokens, 1000000);
  const bad = await cli(file, 'plan', 'create', '--name', 'x');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /needs --name NAME and --max-tokens N/);
});

test('keys: shown once, stored as a hash, listed masked, revoked by key or id', async () => {
  const { file, db } = storeConfig();
  assert.equal((await cli(file, 'plan', 'create', '--name', 'pro', '--max-tokens', '5')).code, 0);
  const made = await cli(file, 'key', 'create', '--name', 'team-a', '--daily', '50000',
    '--rpm', '60', '--plan', 'pro', '--budget', '12.5', '--expires', '30d', '--models', 'm');
  assert.equal(made.code, 0, made.err);
  const key = made.out.trim();
  assert.match(key, /^sk-[0-9A-Za-z]{48}$/, 'the key alone on its line');
  assert.match(made.err, /shown once/);
  const json = JSON.parse((await cli(file, 'key', 'create', '--name', 'b', '--json')).out);
  assert.match(json.key, /^sk-[0-9A-Za-z]{48}$/);
  assert.equal(json.masked, `${json.key.slice(0, 6)}...${json.key.slice(-3)}`);

  const list = await cli(file, 'key', 'list');
  assert.equal(list.code, 0);
  assert.ok(!list.out.includes(key), 'a listing never shows a key');
  assert.match(list.out, new RegExp(`team-a\\s+${key.slice(0, 6)}\\.\\.\\.${key.slice(-3)}\\s+-\\s+50,000\\s+-\\s+60\\s+\\S+\\s+active`));
  const keys = JSON.parse((await cli(file, 'key', 'list', '--json')).out).keys;
  assert.equal(keys.length, 2);
  assert.equal(keys[0].rpm, 60);
  assert.equal(keys[0].max_budget_usd, 12.5);
  assert.equal(keys[0].models, 'm');
  assert.ok(keys[0].expires_ms - keys[0].created_ms === 30 * 86400 * 1000);
  assert.ok(keys.every((k) => k.key === undefined));

  for (const f of [db, `${db}-wal`]) {
    if (!fs.existsSync(f)) continue;
    const bytes = fs.readFileSync(f);
    assert.ok(!bytes.includes(key) && !bytes.includes(json.key), `${path.basename(f)} holds a key`);
  }

  const byKey = await cli(file, 'key', 'revoke', '--key', key);
  assert.equal(byKey.code, 0, byKey.err);
  assert.match(byKey.out, /key 1 revoked/);
  assert.equal((await cli(file, 'key', 'revoke', '--key', '2', '--json')).code, 0);
  const after = JSON.parse((await cli(file, 'key', 'list', '--json')).out).keys;
  assert.deepEqual(after.map((k) => k.revoked), [true, true]);
  const missing = await cli(file, 'key', 'revoke', '--key', '99');
  assert.equal(missing.code, 1);
  assert.match(missing.err, /no such key/);
});

test('keys: set-limit changes only the limits given; rotate replaces the secret, not the record', async () => {
  const { file } = storeConfig();
  const key = (await cli(file, 'key', 'create', '--name', 'k', '--rpm', '10', '--daily', '500')).out.trim();
  const set = await cli(file, 'key', 'set-limit', '--key', key, '--rpm', '100', '--daily', 'none',
    '--budget', '5', '--json');
  assert.equal(set.code, 0, set.err);
  const after = JSON.parse(set.out);
  assert.equal(after.rpm, 100);
  assert.equal(after.daily_tokens, -1);
  assert.equal(after.max_budget_usd, 5);
  assert.equal(after.monthly_tokens, -1);
  const none = await cli(file, 'key', 'set-limit', '--key', key);
  assert.equal(none.code, 2);
  assert.match(none.err, /needs one of --limit/);

  const rot = await cli(file, 'key', 'rotate', '--key', key);
  assert.equal(rot.code, 0, rot.err);
  const fresh = rot.out.trim();
  assert.match(fresh, /^sk-[0-9A-Za-z]{48}$/);
  assert.notEqual(fresh, key);
  assert.match(rot.err, /the old key no longer works/);
  const old = await cli(file, 'key', 'set-limit', '--key', key, '--rpm', '1');
  assert.equal(old.code, 1, 'the old key still finds the record');
  const keys = JSON.parse((await cli(file, 'key', 'list', '--json')).out).keys;
  assert.equal(keys.length, 1);
  assert.equal(keys[0].rpm, 100, 'rotation kept the limits');
  assert.equal(keys[0].masked, `${fresh.slice(0, 6)}...${fresh.slice(-3)}`);
});

test('keys: bad use is a clear error with exit code 2, a missing plan exit code 1', async () => {
  const { file } = storeConfig();
  const cases = [
    [['key', 'create', '--name', 'x', '--rpm', 'abc'], 2, /--rpm needs a whole number/],
    [['key', 'create', '--name', 'x', '--budget', '-1'], 2, /--budget needs an amount/],
    [['key', 'create', '--name', 'x', '--expires', 'soon'], 2, /--expires needs a duration/],
    [['key', 'create', '--bogus', '1'], 2, /unknown flag --bogus/],
    [['key', 'create'], 2, /needs --name NAME/],
    [['key', 'frob'], 2, /unknown command 'key frob'/],
    [['key', 'create', '--name', 'x', '--plan', 'nope'], 1, /no plan named 'nope'/],
  ];
  for (const [args, code, re] of cases) {
    const r = await cli(file, ...args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, re);
  }
  const noConfig = await runCli(['key', 'list', '-config', '/nonexistent/c.yaml']);
  assert.equal(noConfig.code, 2);
  assert.match(noConfig.err, /nonexistent\/c\.yaml/);
});
