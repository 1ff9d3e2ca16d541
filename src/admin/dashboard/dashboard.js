// The airouter dashboard: one page over the admin API (master key). The key is asked for
// once and kept in sessionStorage: this tab only, gone when it closes, never in a URL.
// Everything from the server is written with textContent, never parsed as HTML.
'use strict';

const REFRESH_MS = 2000;
const KEY_SLOT = 'airouter.master_key';
let key = sessionStorage.getItem(KEY_SLOT) || '';
let tab = 'overview';
let timer = null;

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function status(text, bad) {
  const s = $('status');
  s.textContent = text;
  s.className = bad ? 'bad' : '';
}

// A request to airouter with the key; JSON back, or an Error carrying the status.
async function api(path, opts = {}) {
  const headers = Object.assign({ authorization: `Bearer ${key}` }, opts.headers || {});
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, {
    method: opts.method || 'GET',
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    cache: 'no-store',
  });
  if (opts.raw) return r;
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!r.ok) {
    const msg = body && body.error ? body.error.message : `HTTP ${r.status}`;
    const e = new Error(msg);
    e.status = r.status;
    throw e;
  }
  return body;
}

// Resolves to null where the server lacks the endpoint (an older airouter).
async function optional(path) {
  try {
    return await api(path);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

function fmt(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '-';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits });
}

function row(cells) {
  const tr = el('tr');
  for (const c of cells) {
    const td = el('td');
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? '-' : String(c);
    tr.appendChild(td);
  }
  return tr;
}

function bar(used, limit) {
  const b = el('span', null, 'bar');
  const fill = el('span');
  const pct = limit > 0 ? Math.min(100, (100 * used) / limit) : 0;
  fill.style.width = `${pct}%`;
  b.appendChild(fill);
  b.title = limit > 0 ? `${fmt(used)} of ${fmt(limit)}` : 'no limit';
  return b;
}

// A line chart of one or two series on a canvas, scaled to its largest value.
function chart(canvas, series, colors) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  let max = 0;
  for (const s of series) for (const v of s) max = Math.max(max, v || 0);
  if (max <= 0) max = 1;
  ctx.strokeStyle = '#d9dee7';
  ctx.beginPath();
  ctx.moveTo(0, h - 0.5);
  ctx.lineTo(w, h - 0.5);
  ctx.stroke();
  ctx.fillStyle = '#667085';
  ctx.font = '11px sans-serif';
  ctx.fillText(fmt(max, 1), 4, 12);
  series.forEach((s, i) => {
    if (s.length < 2) return;
    ctx.strokeStyle = colors[i];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    s.forEach((v, x) => {
      const px = (x / (s.length - 1)) * (w - 2) + 1;
      const py = h - 2 - ((v || 0) / max) * (h - 18);
      if (x === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    });
    ctx.stroke();
  });
}

// ---- tabs ----

async function overview() {
  const [metrics, state, series] = await Promise.all([
    optional('/admin/metrics'), api('/admin/state'), optional('/admin/timeseries?seconds=300'),
  ]);
  const totals = $('totals');
  totals.replaceChildren();
  const deps = state.deployments || [];
  const sum = (f) => deps.reduce((a, d) => a + (d[f] || 0), 0);
  const cards = metrics ? [
    ['uptime (s)', metrics.uptime], ['requests', metrics.totalRequests],
    ['successful', metrics.successfulRequests], ['failed', metrics.failedRequests],
    ['fallbacks used', metrics.fallbacksUsed], ['avg latency (ms)', metrics.avgLatency],
    ['models available', metrics.modelsAvailable], ['in flight', state.in_flight],
  ] : [
    ['uptime (s)', state.uptime_s], ['requests', sum('requests')], ['errors', sum('errors')],
    ['in flight', state.in_flight], ['deployments', deps.length],
  ];
  for (const [k, v] of cards) {
    const c = el('div', null, 'card');
    c.appendChild(el('div', fmt(v, 1), 'v'));
    c.appendChild(el('div', k, 'k'));
    c.dataset.name = k;
    totals.appendChild(c);
  }
  const pts = series ? series.points || [] : [];
  chart($('chart-requests'), [pts.map((p) => p.requests)], ['#2458d6']);
  chart($('chart-errors'), [pts.map((p) => p.errors)], ['#c62828']);
  chart($('chart-latency'), [pts.map((p) => p.p50_ms), pts.map((p) => p.p99_ms)], ['#2458d6', '#b26b00']);
  chart($('chart-tokens'), [pts.map((p) => p.prompt_tokens), pts.map((p) => p.completion_tokens)], ['#2458d6', '#1a7f37']);
  $('overview-note').textContent = series ? `last ${pts.length} s` : 'this airouter has no time series (/admin/timeseries)';
}

async function models() {
  const state = await api('/admin/state');
  const bans = new Map((state.credentials || []).map((c) => [c.name, c.ban]));
  const body = $('models-body');
  body.replaceChildren();
  for (const d of state.deployments || []) {
    const name = d.name || d.public_name || d.model;
    const reset = el('button', 'reset');
    reset.dataset.model = name;
    reset.addEventListener('click', async () => {
      try {
        await api(`/admin/state/${encodeURIComponent(name)}/reset`, { method: 'POST' });
        status(`reset ${name}`);
        await models();
      } catch (e) { status(e.message, true); }
    });
    const ban = bans.get(d.credential);
    const lat = d.latency_ms || {};
    body.appendChild(row([
      name, d.credential, d.model, el('span', d.state, `state-${String(d.state).toLowerCase()}`),
      d.success_rate === undefined ? '-' : `${fmt(100 * d.success_rate, 1)} %`,
      fmt(lat.p50, 1), fmt(lat.p99, 1), d.in_flight, d.requests, d.errors,
      d.rpm ? `${fmt(d.rpm.current)} / ${d.rpm.limit === null || d.rpm.limit < 0 ? '∞' : fmt(d.rpm.limit)}` : '-',
      ban && ban.banned ? el('span', 'banned', 'bad') : el('span', 'ok', 'ok'), reset,
    ]));
  }
}

async function limits() {
  const [rl, state] = await Promise.all([optional('/admin/rate-limits'), api('/admin/state')]);
  const creds = (rl && rl.credentials) || state.credentials || [];
  const body = $('limits-creds');
  body.replaceChildren();
  for (const c of creds) {
    const rpm = c.rpm || {};
    const tpm = c.tpm || {};
    body.appendChild(row([
      c.name, `${fmt(rpm.current)} / ${rpm.limit > 0 ? fmt(rpm.limit) : '∞'}`, bar(rpm.current, rpm.limit),
      `${fmt(tpm.current)} / ${tpm.limit > 0 ? fmt(tpm.limit) : '∞'}`, bar(tpm.current, tpm.limit), c.in_flight,
    ]));
  }
  $('limits-buckets').textContent = rl ? JSON.stringify(rl.client, null, 2)
    : 'this airouter has no /admin/rate-limits';
}

async function keys() {
  const [list, spend] = await Promise.all([optional('/admin/keys'), optional('/admin/spend?group_by=day')]);
  const body = $('keys-body');
  body.replaceChildren();
  if (!list) {
    $('keys-note').textContent = 'this airouter has no key administration (/admin/keys)';
    return;
  }
  for (const k of list.keys || []) {
    const revoke = el('button', 'revoke');
    revoke.disabled = !!k.revoked;
    revoke.addEventListener('click', async () => {
      try {
        await api(`/admin/keys/${encodeURIComponent(k.id)}/revoke`, { method: 'POST' });
        status(`revoked key ${k.id}`);
        await keys();
      } catch (e) { status(e.message, true); }
    });
    const usage = k.usage || {};
    const today = usage.day || {};
    const month = usage.month || {};
    const used = (today.prompt_tokens || 0) + (today.completion_tokens || 0);
    let budget = '-';
    if (k.max_budget_usd > 0) {
      budget = el('span');
      budget.appendChild(bar(month.cost_usd || 0, k.max_budget_usd));
      budget.appendChild(el('span', ` $${fmt(month.cost_usd, 4)} this month / $${fmt(k.max_budget_usd, 2)}`));
    }
    body.appendChild(row([
      k.id, k.name, k.masked, k.daily_tokens > 0 ? bar(used, k.daily_tokens) : fmt(used), budget,
      k.revoked ? el('span', 'revoked', 'bad') : el('span', 'active', 'ok'), revoke,
    ]));
  }
  const days = spend ? spend.groups || [] : [];
  chart($('chart-spend'), [days.map((d) => d.cost_usd || 0)], ['#2458d6']);
  $('keys-note').textContent = spend ? `${days.length} day(s) of spend` : '';
}

const TABS = { overview, models, tester: null, limits, keys };

async function refresh() {
  const fn = TABS[tab];
  if (!fn) return;
  try {
    await fn();
    status(`updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    if (e.status === 401 || e.status === 403) return signOut('The key was refused.');
    status(e.message, true);
  }
}

function show(name) {
  tab = name;
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.tab === name);
  for (const s of document.querySelectorAll('section.tab')) s.hidden = s.id !== name;
  if (name === 'tester') loadModels();
  refresh();
}

// ---- API tester ----

async function loadModels() {
  const sel = $('t-model');
  if (sel.options.length) return;
  try {
    const list = await api('/v1/models');
    for (const m of list.data || []) sel.appendChild(el('option', m.id));
  } catch (e) { status(e.message, true); }
}

function routing(r, body) {
  const meta = {};
  for (const h of ['x-airouter-credential', 'x-airouter-model', 'x-airouter-attempts', 'x-request-id']) {
    const v = r.headers.get(h);
    if (v !== null) meta[h] = v;
  }
  if (body && body._router) meta._router = body._router;
  $('t-meta').textContent = JSON.stringify(meta, null, 2);
}

async function send(ev) {
  ev.preventDefault();
  const out = $('t-answer');
  out.textContent = '';
  $('t-meta').textContent = '';
  const stream = $('t-stream').checked;
  const req = {
    model: $('t-model').value,
    messages: [{ role: 'user', content: $('t-prompt').value }],
    temperature: Number($('t-temp').value),
    max_tokens: Number($('t-max').value),
    stream,
  };
  $('t-send').disabled = true;
  try {
    const r = await api('/v1/chat/completions', { method: 'POST', body: req, raw: true });
    if (!r.ok) {
      const e = await r.json().catch(() => ({}));
      out.textContent = `HTTP ${r.status}: ${e.error ? e.error.message : ''}`;
      routing(r, null);
      return;
    }
    if (!stream) {
      const body = await r.json();
      out.textContent = body.choices && body.choices[0] ? body.choices[0].message.content : JSON.stringify(body);
      routing(r, body);
      return;
    }
    routing(r, null);
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const evt = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        for (const line of evt.split('\n')) {
          if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
          const c = JSON.parse(line.slice(6));
          if (c.error) out.textContent += `\n[error] ${c.error.message}`;
          const d = c.choices && c.choices[0] && c.choices[0].delta;
          if (d && d.content) out.textContent += d.content;
        }
      }
    }
  } catch (e) {
    out.textContent = `failed: ${e.message}`;
  } finally {
    $('t-send').disabled = false;
  }
}

// ---- keys ----

async function createKey(ev) {
  ev.preventDefault();
  const req = { name: $('k-name').value };
  if ($('k-daily').value) req.daily_tokens = Number($('k-daily').value);
  if ($('k-budget').value) req.max_budget_usd = Number($('k-budget').value);
  try {
    const k = await api('/admin/keys', { method: 'POST', body: req });
    $('k-created').textContent = `new key (shown once): ${k.key}`;
    $('key-form').reset();
    await keys();
  } catch (e) { status(e.message, true); }
}

// ---- sign in and out ----

function signOut(why) {
  key = '';
  sessionStorage.removeItem(KEY_SLOT);
  clearInterval(timer);
  timer = null;
  $('tabs').hidden = true;
  $('logout').hidden = true;
  for (const s of document.querySelectorAll('section.tab')) s.hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = why || '';
}

async function signIn(candidate) {
  key = candidate;
  try {
    await api('/admin/state');
  } catch (e) {
    signOut(e.status === 401 || e.status === 403 ? 'That is not the master key.' : e.message);
    return;
  }
  sessionStorage.setItem(KEY_SLOT, key);
  $('login').hidden = true;
  $('tabs').hidden = false;
  $('logout').hidden = false;
  show(tab);
  timer = setInterval(refresh, REFRESH_MS);
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const k = $('key').value.trim();
    $('key').value = '';
    signIn(k);
  });
  $('logout').addEventListener('click', () => signOut());
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => show(b.dataset.tab));
  $('tester-form').addEventListener('submit', send);
  $('key-form').addEventListener('submit', createKey);
  if (key) signIn(key); else signOut();
});
