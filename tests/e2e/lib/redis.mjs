// A redis-server of a test file's own on a free port of 127.0.0.1 (no persistence), which
// its tests stop (SIGKILL) and start again, and the /health a router reports.
import { spawn } from 'node:child_process';
import { freePort } from './harness.mjs';

export class TestRedis {
  async init() {
    this.port = await freePort();
    this.start();
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
