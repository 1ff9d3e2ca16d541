// bench/sse_load.mjs: N concurrent streaming requests, each on its own connection, held
// open until the stream ends. wrk cannot do this: it counts whole responses and cannot
// tell when a stream's first byte came. Prints one JSON line:
//   {"streams", "ok", "errors", "error_kinds", "ttfb_p50_ms", "ttfb_p99_ms",
//    "duration_p50_ms", "duration_p99_ms", "wall_ms"}
// ok = HTTP 200 whose body ends with "data: [DONE]"; anything else is an error.
//
// usage: node bench/sse_load.mjs URL KEY BODY-FILE STREAMS [RAMP-MS] [TIMEOUT-MS]
// Streams are started evenly over RAMP-MS (default 1000) so that the accept queues see a
// burst, not a single instant. SSE_HEADERS (environment): more request headers, one
// "Name: value" per line (the mock's directives, for targets that pass them on).
import fs from 'node:fs';
import http from 'node:http';

const [url, key, bodyFile, streamsArg, rampArg, timeoutArg] = process.argv.slice(2);
if (!url || !key || !bodyFile || !streamsArg) {
  console.error('usage: node bench/sse_load.mjs URL KEY BODY-FILE STREAMS [RAMP-MS] [TIMEOUT-MS]');
  process.exit(2);
}
const streams = Number(streamsArg);
const rampMs = Number(rampArg ?? 1000);
const timeoutMs = Number(timeoutArg ?? 60000);
const body = fs.readFileSync(bodyFile);
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const target = new URL(url);
const extra = {};
for (const line of (process.env.SSE_HEADERS ?? '').split('\n')) {
  const m = /^\s*([^:\s]+)\s*:\s*(.*?)\s*$/.exec(line);
  if (m) extra[m[1]] = m[2];
}

const ttfb = [];
const durations = [];
const errorKinds = {};
let ok = 0;
let finished = 0;
const t0 = performance.now();

function fail(kind) {
  errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
}

function one() {
  return new Promise((resolve) => {
    const start = performance.now();
    let first = 0;
    let tail = '';
    let settled = false;
    const done = (kind) => {
      if (settled) return;
      settled = true;
      if (kind) fail(kind);
      else {
        ok++;
        ttfb.push(first - start);
        durations.push(performance.now() - start);
      }
      resolve();
    };
    const req = http.request({
      host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent,
      headers: {
        authorization: `Bearer ${key}`, 'content-type': 'application/json',
        'content-length': body.length, ...extra,
      },
      timeout: timeoutMs,
    }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        res.on('end', () => done(`status ${res.statusCode}`));
        return;
      }
      res.on('data', (d) => {
        if (!first) first = performance.now();
        tail = (tail + d.toString('latin1')).slice(-64);
      });
      res.on('end', () => done(tail.includes('data: [DONE]') ? null : 'stream without [DONE]'));
      res.on('error', (e) => done(e.code ?? 'response error'));
    });
    req.on('timeout', () => { req.destroy(); done('timeout'); });
    req.on('error', (e) => done(e.code ?? 'request error'));
    req.end(body);
  });
}

function pct(a, p) {
  if (!a.length) return null;
  const s = [...a].sort((x, y) => x - y);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] * 10) / 10;
}

const all = [];
for (let i = 0; i < streams; i++) {
  const at = streams > 1 ? (rampMs * i) / (streams - 1) : 0;
  all.push(new Promise((r) => setTimeout(() => one().then(() => { finished++; r(); }), at)));
}
await Promise.all(all);
const errors = streams - ok;
console.log(JSON.stringify({
  streams, ok, errors, error_kinds: errorKinds,
  ttfb_p50_ms: pct(ttfb, 50), ttfb_p99_ms: pct(ttfb, 99),
  duration_p50_ms: pct(durations, 50), duration_p99_ms: pct(durations, 99),
  wall_ms: Math.round(performance.now() - t0),
}));
agent.destroy();
