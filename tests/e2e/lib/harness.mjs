// Test harness: starts the real airouter binary and the C mock upstream on 127.0.0.1,
// with configs written to a temp dir, and stops them at the end of a test file. Every
// wait is a wait on a condition (a file appears, a port answers, a process exits), with
// a deadline, never a fixed sleep.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import assert from 'node:assert/strict';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../../..');
const buildDir = path.resolve(repo, process.env.AIROUTER_BUILD || 'build');
export const airouterBin = path.join(buildDir, 'airouter');
export const mockBin = path.join(buildDir, 'mock_upstream');
export const MASTER_KEY = 'sk-e2e-master-key-0123456789abcdefghij';
const sanitized = (process.env.AIROUTER_BUILD || '').includes('asan');
export const slow = sanitized ? 4 : 1; // deadline multiplier under ASan

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'airouter-e2e-'));
const running = new Set();

after(async () => {
  for (const p of [...running]) await p.stop();
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

export async function waitFor(cond, { timeoutMs = 5000 * slow, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

class Proc {
  constructor(name, bin, args, env, cwd = undefined) {
    this.name = name;
    this.out = '';
    this.child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd });
    this.child.stdout.on('data', (d) => { this.out += d; });
    this.child.stderr.on('data', (d) => { this.out += d; });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, sig) => resolve({ code, sig })));
    this.exitInfo = null;
    this.exited.then((e) => { this.exitInfo = e; running.delete(this); });
    running.add(this);
  }
  get alive() { return this.exitInfo === null; }
  signal(sig) { if (this.alive) this.child.kill(sig); }
  async stop({ expectCode = 0 } = {}) {
    if (this.alive) this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 15000 * slow);
    const e = await this.exited;
    clearTimeout(killer);
    if (/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(this.out))
      throw new Error(`${this.name} sanitizer report:\n${this.out.slice(-4000)}`);
    if (expectCode !== null && e.code !== expectCode)
      throw new Error(`${this.name} exited ${e.code} (${e.sig}); output:\n${this.out.slice(-3000)}`);
    return e;
  }
}

export async function startMock(args = []) {
  const portFile = path.join(tmpRoot, `mock-${Math.random().toString(36).slice(2)}.port`);
  const p = new Proc('mock_upstream', mockBin, ['--port', '0', '--port-file', portFile, ...args], {});
  const port = await waitFor(() => {
    if (!p.alive) throw new Error(`mock_upstream died: ${p.out}`);
    try { return Number(fs.readFileSync(portFile, 'utf8').trim()) || false; } catch { return false; }
  }, { what: 'mock port file' });
  p.port = port;
  p.url = `http://127.0.0.1:${port}`;
  p.requests = async () => (await (await fetch(`${p.url}/_mock/requests`)).json());
  p.clear = async () => {
    await fetch(`${p.url}/_mock/requests`, { method: 'DELETE' });
    await fetch(`${p.url}/_mock/queue`, { method: 'DELETE' });
  };
  p.queue = async (directives, key) => {
    const r = await fetch(`${p.url}/_mock/queue`, { method: 'POST', body: JSON.stringify({ key, directives }) });
    assert.equal(r.status, 200);
  };
  return p;
}

export function writeConfig(yaml, name = 'config.yaml') {
  const dir = fs.mkdtempSync(path.join(tmpRoot, 'cfg-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, yaml);
  return file;
}

// Starts airouter with the given YAML (the `server:` section gets host/port/master_key
// unless the YAML sets them: pass `${PORT}` and it is substituted).
export async function startRouter(yaml, { env = {}, args = [], expectReady = true } = {}) {
  const port = await freePort();
  const text = yaml.replaceAll('${PORT}', String(port)).replaceAll('${MASTER_KEY}', MASTER_KEY);
  const file = writeConfig(text);
  // in the config's own directory: the default store (sqlite://./airouter.db) and its
  // journal belong to this test alone
  const p = new Proc('airouter', airouterBin, ['-config', file, ...args], { ...env },
    path.dirname(file));
  p.port = port;
  p.url = `http://127.0.0.1:${port}`;
  p.configFile = file;
  if (expectReady) {
    await waitFor(async () => {
      if (!p.alive) throw new Error(`airouter died: ${p.out}`);
      return portOpen(port);
    }, { what: 'airouter port' });
  }
  return p;
}

export function baseConfig({ credentials, models = '', extra = '', server = '' }) {
  return `server:
  host: 127.0.0.1
  port: \${PORT}
  workers: 2
  master_key: "\${MASTER_KEY}"
  logging_level: info
${server}
credentials:
${credentials}
${models ? 'models:\n' + models : ''}
${extra}
`;
}

export function runCli(args, env = {}) {
  return new Promise((resolve) => {
    const c = spawn(airouterBin, args, { env: { ...process.env, ...env } });
    c.on('error', () => {});
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { err += d; });
    c.on('exit', (code) => resolve({ code, out, err }));
  });
}

export function rawRequest(port, bytes, { timeoutMs = 5000 * slow } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let data = '';
    let closed = false;
    const t = setTimeout(() => { s.destroy(); resolve({ data, closed }); }, timeoutMs);
    s.on('connect', () => s.write(bytes));
    s.on('data', (d) => { data += d.toString('latin1'); });
    s.on('close', () => { closed = true; clearTimeout(t); resolve({ data, closed }); });
    s.on('error', () => {});
  });
}
