// bench/idle_conns.mjs: opens N keep-alive connections, sends one request on each (so the
// server has parsed and answered on all of them), then holds them idle. Prints
// {"open": N, "ok": K, "errors": E} once all answers are in, then waits until stdin closes
// or SECONDS pass. The bench reads the server's RSS meanwhile: memory per idle connection.
//
// usage: node bench/idle_conns.mjs URL KEY BODY-FILE N [SECONDS]
import fs from 'node:fs';
import net from 'node:net';

const [url, key, bodyFile, nArg, secsArg] = process.argv.slice(2);
if (!url || !key || !bodyFile || !nArg) {
  console.error('usage: node bench/idle_conns.mjs URL KEY BODY-FILE N [SECONDS]');
  process.exit(2);
}
const n = Number(nArg);
const target = new URL(url);
const body = fs.readFileSync(bodyFile);
const head = `POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\n` +
  `Authorization: Bearer ${key}\r\nContent-Type: application/json\r\n` +
  `Content-Length: ${body.length}\r\n\r\n`;
const sockets = [];
let ok = 0;
let errors = 0;

function one() {
  return new Promise((resolve) => {
    const s = net.connect(Number(target.port), target.hostname);
    let got = '';
    let settled = false;
    const done = (good) => {
      if (settled) return;
      settled = true;
      if (good) ok++;
      else errors++;
      resolve();
    };
    s.on('connect', () => s.write(Buffer.concat([Buffer.from(head), body])));
    s.on('data', (d) => {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /content-length: *(\d+)/i.exec(got.slice(0, end));
      if (m && got.length >= end + 4 + Number(m[1])) done(got.startsWith('HTTP/1.1 200'));
    });
    s.on('error', () => done(false));
    s.on('close', () => done(false));
    sockets.push(s);
  });
}

const batch = 256; // connect in batches: a burst of thousands overflows accept queues
for (let i = 0; i < n; i += batch) {
  await Promise.all(Array.from({ length: Math.min(batch, n - i) }, one));
}
console.log(JSON.stringify({ open: n, ok, errors }));
const hold = Number(secsArg ?? 30) * 1000;
await new Promise((r) => {
  setTimeout(r, hold);
  process.stdin.on('close', r);
  process.stdin.resume();
});
for (const s of sockets) s.destroy();
