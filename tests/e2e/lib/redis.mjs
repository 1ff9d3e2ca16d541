// A redis-server of a test file's own on a free port of 127.0.0.1 (no persistence), which
// its tests stop (SIGKILL) and start again, the /health a router reports, and a store of
// virtual keys that several instances can share.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, runCli, waitFor } from './harness.mjs';

export class TestRedis {
  async init() {
    this.port = await freePort();
    this.start();
    await waitFor(() => {
      try {
        return execFileSync('redis-cli', ['-p', String(this.port), 'PING'], { encoding: 'utf8', stdio: 'pipe' }).trim() === 'PONG';
      } catch {
        return false;
      }
    }, { what: 'redis-server up' });
    return this;
  }

  start() {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' });
    this.exited = new Promise((resolve) => this.proc.on('exit', resolve));
  }

  // SIGSTOP / SIGCONT: a server that is there but does not answer
  signal(sig) {
    this.proc.kill(sig);
  }

  async stop() {
    if (!this.proc) return;
    this.proc.kill('SIGKILL');
    await this.exited;
    this.proc = null;
  }
}

export async function health(router) {
  return (await fetch(`${router.url}/health`)).json();
}

// A temporary SQLite store for a test's virtual keys, made with the CLI. Each instance gets
// its own copy (url(i)): one SQLite file cannot serve several instances (each keeps its
// spend journal beside it, locked), and a copy holds the same keys, same ids, as one shared
// PostgreSQL would.
export class KeyStore {
  constructor(tag) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `airouter-${tag}-`));
    this.db = path.join(this.dir, 'keys.db');
    this.cli = path.join(this.dir, 'cli.yaml');
    fs.writeFileSync(this.cli, `server:\n  master_key: x\nstorage:\n  database_url: sqlite://${this.db}\n`);
  }

  // airouter key create --name NAME FLAGS...: {key, id, ...}
  async key(name, ...flags) {
    const made = await runCli(['key', 'create', '--name', name, ...flags, '--json', '-config', this.cli]);
    assert.equal(made.code, 0, made.err);
    return JSON.parse(made.out);
  }

  // The store's URL, or instance i's copy of it.
  url(i) {
    if (i === undefined) return `sqlite://${this.db}`;
    fs.copyFileSync(this.db, `${this.db}.${i}`);
    return `sqlite://${this.db}.${i}`;
  }

  remove() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
