// Helpers for the routing tests (outcomes, limits, chain): YAML builders for credentials
// and deployments, an OpenAI client, a raw chat request, and per-key views of what the
// mock upstream saw.
import OpenAI from 'openai';
import { MASTER_KEY, slow } from './harness.mjs';

let seq = 0;

// Upstream keys unique to one test, so queues and records of tests never mix:
// keys('a') -> 'sk-a-t7-000000000000'.
export function keyMaker() {
  const t = ++seq;
  return (name) => `sk-${name}-t${t}-000000000000`;
}

// One `credentials:` item. c: {name, type, key, base, rpm, tpm, weight, is_fallback,
// headers: {name: value}, extra: 'raw yaml lines'}.
export function credYaml(c) {
  let s = `  - name: ${c.name}\n    type: ${c.type || 'openai'}\n`;
  if (c.key) s += `    api_key: "${c.key}"\n`;
  if (c.base) s += `    base_url: ${c.base}\n`;
  for (const k of ['rpm', 'tpm', 'weight', 'is_fallback']) {
    if (c[k] !== undefined) s += `    ${k}: ${c[k]}\n`;
  }
  if (c.headers) {
    s += '    headers:\n';
    for (const [k, v] of Object.entries(c.headers)) s += `      ${k}: "${v}"\n`;
  }
  if (c.extra) s += c.extra;
  return s;
}

// One `models:` item. m: {name, credential, model, rpm, tpm, weight, max_concurrent}.
export function modelYaml(m) {
  let s = `  - name: ${m.name}\n    credential: ${m.credential}\n`;
  for (const k of ['model', 'rpm', 'tpm', 'weight', 'max_concurrent']) {
    if (m[k] !== undefined) s += `    ${k}: ${m[k]}\n`;
  }
  return s;
}

export function client(router, apiKey = MASTER_KEY) {
  return new OpenAI({ apiKey, baseURL: `${router.url}/v1`, maxRetries: 0, timeout: 20000 });
}

// A chat completion with fetch: {status, headers, body (parsed JSON or text)}.
export async function chat(router, model, content, { stream = false, extra = {}, key = MASTER_KEY } = {}) {
  const r = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }], ...(stream ? { stream: true } : {}), ...extra }),
    signal: AbortSignal.timeout(15000 * slow), // a hung answer fails the test, not the file
  });
  const text = await r.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* a stream or garbage: keep the text */ }
  return { status: r.status, headers: r.headers, body, text };
}

// The mock's records of API requests made with upstream key `key`.
export async function seenWith(mock, key) {
  return (await mock.requests()).filter((r) => r.headers.authorization === `Bearer ${key}`);
}

export async function countWith(mock, key) {
  return (await seenWith(mock, key)).length;
}

// Collects a stream with the SDK: {chunks, content, error}.
export async function collectStream(stream) {
  const chunks = [];
  let error = null;
  try {
    for await (const c of stream) chunks.push(c);
  } catch (e) {
    error = e;
  }
  const content = chunks.map((c) => c.choices?.[0]?.delta?.content || '').join('');
  return { chunks, content, error };
}
