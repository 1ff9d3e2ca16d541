// store_cli.test.mjs: the store commands (plan, key, vkey, connection, model, assign, stats,
// backup, restore) against a real SQLite file named by the config's storage.database_url:
// what each prints (human and --json), that a key is shown once and only its hash and masked
// form reach the database, that a provider secret reaches no file in plaintext, usage in
// listings and stats, backup -> restore, and the clear errors and exit codes of bad use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCli, writeConfig } from './lib/harness.mjs';

function storeConfig({ secretKey = '' } = {}) {
  const dir = path.dirname(writeConfig('placeholder'));
  const db = path.join(dir, 'store.db');
  const file = writeConfig(`server:
  master_key: sk-test-0123456789abcdef
storage:
  database_url: sqlite://${db}
${secretKey ? `  secret_key: ${secretKey}\n` : ''}credentials:
  - name: local
    type: mock
models:
  - name: m
    credential: local
`);
  return { file, db, dir: path.dirname(file) };
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

const SECRET = 'sk-provider-PLAINTEXT-secret-4242';
const SK_ENV = { AIROUTER_TEST_SK: 'a store secret key from the environment' };
// the configs below name it, and loading a config resolves every env reference
process.env.AIROUTER_TEST_SK = SK_ENV.AIROUTER_TEST_SK;
const clienv = (file, env, ...args) => runCli([...args, '-config', file], env);

// Every file under dir (recursively): none may hold needle.
function assertNowhere(dir, needle) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) assertNowhere(p, needle);
    else assert.ok(!fs.readFileSync(p).includes(needle), `${p} holds the secret`);
  }
}

test('connections: the key stored encrypted (secret_key from the environment), never printed; models, assign, remove', async () => {
  const { file, db, dir } = storeConfig({ secretKey: 'os.environ/AIROUTER_TEST_SK' });
  const key = (await cli(file, 'key', 'create', '--name', 'team')).out.trim();
  const add = await clienv(file, SK_ENV, 'connection', 'add', '--name', 'oa', '--provider', 'openai',
    '--endpoint', 'https://api.openai.com/v1', '--api-key', SECRET);
  assert.equal(add.code, 0, add.err);
  assert.match(add.out, /connection 1 'oa' added \(openai, https:\/\/api\.openai\.com\/v1\)/);
  assert.ok(!add.out.includes(SECRET) && !add.err.includes(SECRET));
  const dup = await clienv(file, SK_ENV, 'connection', 'add', '--name', 'oa', '--provider', 'azure',
    '--endpoint', 'https://x', '--api-key', 'k', '--json');
  assert.equal(dup.code, 1);
  assert.match(dup.err, /'oa' exists already/);
  const j = JSON.parse((await clienv(file, SK_ENV, 'connection', 'add', '--name', 'az', '--provider',
    'azure', '--endpoint', 'https://az.example', '--api-key', 'other-secret', '--json')).out);
  assert.equal(j.id, 2);
  assert.equal(j.secret, 'encrypted');

  const list = await cli(file, 'connection', 'list');
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /1\s+oa\s+openai\s+https:\/\/api\.openai\.com\/v1\s+encrypted/);
  assert.match(list.out, /2 connections/);
  const lj = JSON.parse((await cli(file, 'connection', 'list', '--json')).out);
  assert.deepEqual(lj.connections.map((c) => c.name), ['oa', 'az']);
  assert.ok(!JSON.stringify(lj).includes(SECRET));

  const m = await cli(file, 'model', 'add', '--conn-id', '1', '--name', 'gpt', '--remote', 'gpt-4o');
  assert.equal(m.code, 0, m.err);
  assert.match(m.out, /model 1 'gpt' added: gpt-4o on connection 1/);
  const mj = JSON.parse((await cli(file, 'model', 'add', '--conn-id', '2', '--name', 'gpt',
    '--remote', 'gpt-4o', '--deployment', 'prod', '--json')).out);
  assert.equal(mj.deployment, 'prod');
  const models = JSON.parse((await cli(file, 'model', 'list', '--json')).out).models;
  assert.equal(models.length, 2);
  const a = await cli(file, 'assign', '--vkey-id', '1', '--model-id', '1', '--alias', 'fast', '--tps', '5');
  assert.equal(a.code, 0, a.err);
  assert.match(a.out, /model 1 assigned to key 1 as 'fast'/);
  const aj = JSON.parse((await cli(file, 'assign', '--vkey-id', '1', '--model-id', '2', '--alias',
    'slow', '--json')).out);
  assert.equal(aj.tps, -1);
  const again = await cli(file, 'assign', '--vkey-id', '1', '--model-id', '2', '--alias', 'slow');
  assert.equal(again.code, 1);
  assert.match(again.err, /aliased 'slow' already/);

  const refused = await cli(file, 'connection', 'remove', '--id', '1');
  assert.equal(refused.code, 1);
  assert.match(refused.err, /assigned to keys .*--force/);
  const forced = await cli(file, 'connection', 'remove', '--id', '1', '--force', '--json');
  assert.equal(forced.code, 0, forced.err);
  assert.deepEqual(JSON.parse(forced.out), { id: 1, removed: true });
  const gone = await cli(file, 'connection', 'remove', '--id', '1');
  assert.equal(gone.code, 1);
  assert.match(gone.err, /no connection with id 1/);

  const backup = path.join(dir, 'backup.json');
  assert.equal((await cli(file, 'backup', '--path', backup)).code, 0);
  for (const needle of [SECRET, 'PLAINTEXT', 'other-secret', key]) assertNowhere(dir, needle);
  assert.ok(fs.existsSync(db));
});

test('connections: without storage.secret_key, or with a bad provider or endpoint, a clear error', async () => {
  const { file } = storeConfig();
  const noKey = await cli(file, 'connection', 'add', '--name', 'oa', '--provider', 'openai',
    '--endpoint', 'https://x', '--api-key', SECRET);
  assert.equal(noKey.code, 1);
  assert.match(noKey.err, /storage\.secret_key is required to store provider secrets/);
  assert.ok(!noKey.err.includes(SECRET));
  const cases = [
    [['connection', 'add', '--name', 'a', '--provider', 'bogus', '--endpoint', 'https://x', '--api-key', 'k'], 2, /--provider 'bogus' is not one of openai/],
    [['connection', 'add', '--name', 'a', '--provider', 'openai', '--endpoint', 'ftp://x', '--api-key', 'k'], 2, /--endpoint needs an http/],
    [['connection', 'add', '--name', 'a'], 2, /connection add needs --name N --provider TYPE/],
    [['connection', 'remove'], 2, /connection remove needs --id ID/],
    [['connection', 'remove', '--id', 'x'], 2, /--id needs an id/],
    [['connection', 'frob'], 2, /unknown command 'connection frob'/],
    [['model', 'add', '--conn-id', '9', '--name', 'a', '--remote', 'b'], 1, /no connection with id 9/],
    [['model', 'add', '--conn-id', '1'], 2, /model add needs --conn-id ID --name ALIAS --remote NAME/],
    [['assign', '--vkey-id', '1', '--model-id', '1'], 2, /assign needs .*--alias NAME/],
    [['assign', '--vkey-id', '5', '--model-id', '1', '--alias', 'x'], 1, /no key with id 5/],
    [['assign', '--vkey-id', '1', '--model-id', '1', '--alias', 'x', '--tps', '-3'], 2, /--tps needs a number > 0/],
    [['backup'], 2, /backup needs --path FILE\.json/],
    [['restore', '--path', '/nonexistent/b.json'], 1, /nonexistent\/b\.json/],
    [['stats', '--bogus', '1'], 2, /stats: unknown flag --bogus/],
  ];
  for (const [args, code, re] of cases) {
    const r = await cli(file, ...args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, re, args.join(' '));
  }
});

test('vkey add: an existing key imported as its hash, not printed back; a malformed one refused', async () => {
  const { file, db } = storeConfig();
  const key = 'sk-Imported0123456789abcdefghijABCDEFGHIJxyz';
  const r = await cli(file, 'vkey', 'add', '--name', 'legacy', '--key', key);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /key 1 'legacy' imported \(sk-Imp\.\.\.xyz\)/);
  assert.ok(!r.out.includes(key));
  const j = await cli(file, 'vkey', 'add', '--name', 'again', '--key', key, '--json');
  assert.equal(j.code, 1, 'the same key twice');
  const keys = JSON.parse((await cli(file, 'key', 'list', '--json')).out).keys;
  assert.equal(keys.length, 1);
  assert.equal(keys[0].masked, 'sk-Imp...xyz');
  // the imported key works with the other key commands
  assert.equal((await cli(file, 'key', 'set-limit', '--key', key, '--rpm', '7')).code, 0);
  for (const f of [db, `${db}-wal`]) {
    if (fs.existsSync(f)) assert.ok(!fs.readFileSync(f).includes(key));
  }
  const bad = await cli(file, 'vkey', 'add', '--name', 'x', '--key', 'sk-short');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /is not a virtual key/);
  const missing = await cli(file, 'vkey', 'add', '--name', 'x');
  assert.equal(missing.code, 2);
  assert.match(missing.err, /vkey add needs --name NAME and --key KEY/);
});

const today = () => new Date().toISOString().slice(0, 10);

test('usage: key list --stats and stats after spend rows; backup -> restore into a fresh database', async () => {
  const { file, db, dir } = storeConfig({ secretKey: 'os.environ/AIROUTER_TEST_SK' });
  for (const n of ['a', 'b', 'c']) assert.equal((await cli(file, 'key', 'create', '--name', n)).code, 0);
  assert.equal((await cli(file, 'key', 'revoke', '--key', '3')).code, 0);
  assert.equal((await clienv(file, SK_ENV, 'connection', 'add', '--name', 'oa', '--provider', 'openai',
    '--endpoint', 'https://x', '--api-key', SECRET)).code, 0);
  assert.equal((await cli(file, 'model', 'add', '--conn-id', '1', '--name', 'g', '--remote', 'gpt')).code, 0);
  assert.equal((await cli(file, 'assign', '--vkey-id', '2', '--model-id', '1', '--alias', 'g')).code, 0);

  // usage rows as the ledger writes them: today for keys 1 and 2, last year for key 1
  const rows = [
    [1, today(), 3, 1000, 234, 1.5],
    [2, today(), 1, 10, 5, 4.25],
    [1, '2000-01-01', 100, 50000, 50000, 99],
  ];
  for (const [k, day, req, p, c, cost] of rows) {
    execFileSync('sqlite3', [db, `INSERT INTO usage_daily VALUES (${k}, '${day}', ${req}, ${p}, ${c}, ${cost})`]);
  }

  const ks = await cli(file, 'key', 'list', '--stats');
  assert.equal(ks.code, 0, ks.err);
  assert.match(ks.out, /TOKENS TODAY/);
  assert.match(ks.out, /1\s+a\s+.*active\s+1,234\s+3\s+1,234\s+3\s+1\.5000/);
  const kj = JSON.parse((await cli(file, 'key', 'list', '--stats', '--json')).out).keys;
  assert.deepEqual(kj[0].today, { requests: 3, prompt_tokens: 1000, completion_tokens: 234, total_tokens: 1234, cost_usd: 1.5 });
  assert.equal(kj[1].month.cost_usd, 4.25);
  assert.equal(kj[2].today.requests, 0);
  const plain = JSON.parse((await cli(file, 'key', 'list', '--json')).out).keys;
  assert.equal(plain[0].today, undefined, 'usage only with --stats');

  const st = await cli(file, 'stats');
  assert.equal(st.code, 0, st.err);
  assert.match(st.out, /keys: 2 active, 1 revoked, 0 expired/);
  assert.match(st.out, /today\s+4\s+1,010\s+239\s+1,249\s+5\.7500/);
  assert.match(st.out, /all time\s+104\s+51,010\s+50,239\s+101,249\s+104\.7500/);
  assert.match(st.out, /top keys by cost this month:\n\s+2\s+b\s+/);
  const sj = JSON.parse((await cli(file, 'stats', '--json')).out);
  assert.deepEqual(sj.keys, { active: 2, revoked: 1, expired: 0 });
  assert.equal(sj.today.requests, 4);
  assert.equal(sj.total.total_tokens, 101249);
  assert.deepEqual(sj.top_keys_month.map((k) => [k.id, k.name]), [[2, 'b'], [1, 'a']]);

  const backup = path.join(dir, 'backup.json');
  const b = await cli(file, 'backup', '--path', backup, '--json');
  assert.equal(b.code, 0, b.err);
  assert.deepEqual(JSON.parse(b.out), { path: backup, keys: 3, connections: 1 });
  assert.equal(fs.statSync(backup).mode & 0o777, 0o600);
  const doc = JSON.parse(fs.readFileSync(backup, 'utf8'));
  assert.equal(doc.format, 'airouter-backup');
  assert.equal(doc.usage_daily.length, 3);

  // into the same database: refused; into a fresh one: the same keys, usage and secret
  const same = await cli(file, 'restore', '--path', backup);
  assert.equal(same.code, 1);
  assert.match(same.err, /not empty/);
  const fresh = storeConfig({ secretKey: 'os.environ/AIROUTER_TEST_SK' });
  const r = await cli(fresh.file, 'restore', '--path', backup);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /restored .*backup\.json: 3 keys, 1 connection/);
  assert.deepEqual(JSON.parse((await cli(fresh.file, 'key', 'list', '--json')).out),
    JSON.parse((await cli(file, 'key', 'list', '--json')).out));
  assert.deepEqual(JSON.parse((await cli(fresh.file, 'stats', '--json')).out), sj);
  assert.deepEqual(JSON.parse((await cli(fresh.file, 'connection', 'list', '--json')).out),
    JSON.parse((await cli(file, 'connection', 'list', '--json')).out));
  const again = path.join(fresh.dir, 'again.json');
  assert.equal((await cli(fresh.file, 'backup', '--path', again)).code, 0);
  assert.deepEqual(JSON.parse(fs.readFileSync(again, 'utf8')), doc);
  for (const d of [dir, fresh.dir]) assertNowhere(d, SECRET);

  // a broken file: a clear error, nothing restored
  const broken = storeConfig();
  fs.writeFileSync(path.join(broken.dir, 'bad.json'), '{"format": "airouter-backup", "version": 1, "keys": [{"id": "x"}]}');
  const bad = await cli(broken.file, 'restore', '--path', path.join(broken.dir, 'bad.json'));
  assert.equal(bad.code, 1);
  assert.match(bad.err, /keys\[0\]\.id is missing or not an integer/);
  assert.equal(JSON.parse((await cli(broken.file, 'key', 'list', '--json')).out).keys.length, 0);
});
