// Packaging: `make install` into a DESTDIR gives a tree that runs (`--version` names
// airouter and each library it runs with, with a version number; the installed example
// config passes `config check`), puts the unit, man page and examples where PREFIX says,
// never overwrites an operator's config, and `make uninstall` removes what it installed.
// The example systemd unit and nginx front are checked with systemd-analyze and nginx -t
// where those are installed (skipped otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repo } from './lib/harness.mjs';

const build = process.env.AIROUTER_BUILD || 'build';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'airouter-install-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// make as a user would run it, not as a child of the make that runs this suite (its
// jobserver and command-line variables stay out). -o: install the binary the suite tests,
// never rebuild it.
function make(...args) {
  const env = { ...process.env };
  for (const k of ['MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES']) delete env[k];
  const r = spawnSync('make', ['--no-print-directory', `BUILD=${build}`, '-o', `${build}/airouter`, ...args],
    { cwd: repo, env, encoding: 'utf8' });
  assert.equal(r.status, 0, `make ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

function run(cmd, args, env = {}) {
  return spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8' });
}

const have = (cmd) => run('sh', ['-c', `command -v ${cmd}`]).status === 0;

test('make install DESTDIR: a runnable tree with the default PREFIX', () => {
  const d = path.join(tmp, 'default');
  make('install', `DESTDIR=${d}`);
  const bin = path.join(d, 'usr/local/bin/airouter');
  assert.equal(fs.statSync(bin).mode & 0o777, 0o755);
  for (const f of ['usr/local/share/man/man1/airouter.1', 'usr/local/lib/systemd/system/airouter.service',
    'usr/local/share/airouter/airouter.example.yaml', 'usr/local/share/airouter/nginx-airouter-tls.conf',
    'etc/airouter/airouter.yaml']) {
    assert.ok(fs.existsSync(path.join(d, f)), `${f} is installed`);
  }

  const v = run(bin, ['--version']);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /^airouter \d+\.\d+\S*\n/);
  for (const lib of ['libcurl', 'libuv', 'llhttp', 'OpenSSL', 'SQLite', 'jansson', 'libyaml']) {
    assert.match(v.stdout, new RegExp(`^ +${lib} +\\d+\\.\\d+`, 'm'), `--version names ${lib}`);
  }

  for (const cfg of ['usr/local/share/airouter/airouter.example.yaml', 'etc/airouter/airouter.yaml']) {
    const c = run(bin, ['config', 'check', '-config', path.join(d, cfg)], { MASTER_KEY: 'sk-install-test' });
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /configuration OK/);
  }
  // The example reads its master key from the environment (airouter.env under systemd).
  const c = run(bin, ['config', 'check', '-config', path.join(d, 'etc/airouter/airouter.yaml')],
    { MASTER_KEY: undefined });
  assert.equal(c.status, 1);
  assert.match(c.stderr, /MASTER_KEY is not set/);
});

test('PREFIX reaches the unit; an existing config is kept; uninstall keeps config', () => {
  const d = path.join(tmp, 'opt');
  make('install', `DESTDIR=${d}`, 'PREFIX=/opt/airouter');
  const unit = fs.readFileSync(path.join(d, 'opt/airouter/lib/systemd/system/airouter.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/opt\/airouter\/bin\/airouter serve -config \/etc\/airouter\/airouter\.yaml$/m);
  assert.doesNotMatch(unit, /\/usr\/local\/bin/);
  assert.ok(fs.existsSync(path.join(d, 'opt/airouter/bin/airouter')));

  const cfg = path.join(d, 'etc/airouter/airouter.yaml');
  fs.appendFileSync(cfg, '# edited by the operator\n');
  const out = make('install', `DESTDIR=${d}`, 'PREFIX=/opt/airouter');
  assert.match(out, /kept/);
  assert.match(fs.readFileSync(cfg, 'utf8'), /edited by the operator/);

  make('uninstall', `DESTDIR=${d}`, 'PREFIX=/opt/airouter');
  for (const f of ['opt/airouter/bin/airouter', 'opt/airouter/share/man/man1/airouter.1',
    'opt/airouter/lib/systemd/system/airouter.service', 'opt/airouter/share/airouter']) {
    assert.ok(!fs.existsSync(path.join(d, f)), `${f} is removed`);
  }
  assert.match(fs.readFileSync(cfg, 'utf8'), /edited by the operator/);
});

test('the man page renders without warnings', (t) => {
  if (!have('groff')) { t.skip('groff is not installed'); return; }
  const r = run('groff', ['-ww', '-z', '-man', path.join(repo, 'docs/airouter.1')]);
  assert.equal(r.status, 0);
  assert.equal(r.stderr, '');
});

test('systemd-analyze verify accepts the installed unit', (t) => {
  if (!have('systemd-analyze')) { t.skip('systemd-analyze is not installed'); return; }
  const d = path.join(tmp, 'unit');
  make('install', `DESTDIR=${d}`);
  // Verified where the staged binary and man page are (verify checks both exist).
  const src = fs.readFileSync(path.join(d, 'usr/local/lib/systemd/system/airouter.service'), 'utf8');
  const unit = path.join(tmp, 'airouter.service');
  fs.writeFileSync(unit, src.replaceAll('/usr/local/bin/airouter', path.join(d, 'usr/local/bin/airouter')));
  const r = run('systemd-analyze', ['verify', unit], { MANPATH: path.join(d, 'usr/local/share/man') });
  assert.equal(r.status, 0, r.stderr);
});

test('nginx -t accepts the TLS front (self-signed certificate)', (t) => {
  const nginx = ['/usr/sbin/nginx', 'nginx'].find((n) => n.includes('/') ? fs.existsSync(n) : have(n));
  if (!nginx || !have('openssl')) { t.skip('nginx or openssl is not installed'); return; }
  const d = fs.mkdtempSync(path.join(tmp, 'nginx-'));
  const cert = path.join(d, 'cert.pem');
  const key = path.join(d, 'key.pem');
  const g = run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-subj', '/CN=llm.example.com', '-keyout', key, '-out', cert]);
  assert.equal(g.status, 0, g.stderr);
  const site = fs.readFileSync(path.join(repo, 'examples/nginx/airouter-tls.conf'), 'utf8')
    .replace('/etc/ssl/certs/llm.example.com.pem', cert)
    .replace('/etc/ssl/private/llm.example.com.key', key);
  fs.writeFileSync(path.join(d, 'site.conf'), site);
  fs.writeFileSync(path.join(d, 'nginx.conf'), `pid ${d}/nginx.pid;
error_log ${d}/error.log;
events {}
http {
  access_log off;
  client_body_temp_path ${d}/body; proxy_temp_path ${d}/proxy; fastcgi_temp_path ${d}/fcgi;
  uwsgi_temp_path ${d}/uwsgi; scgi_temp_path ${d}/scgi;
  include ${d}/site.conf;
}
`);
  const r = run(nginx, ['-t', '-q', '-p', d, '-c', path.join(d, 'nginx.conf')]);
  assert.equal(r.status, 0, r.stderr);
});
