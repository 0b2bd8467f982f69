// The field app's budgets (issue 13), measured in Debian's chromium with the
// CPU throttled 4× (CDP Emulation.setCPUThrottlingRate, on the page and on
// the app's worker): the app shell + WebAssembly size compressed, the first
// open from the service worker, the ticket screen, and with 200 tickets on the
// phone the local storage and a full re-open. Prints a JSON summary.
//
//   client-core/web/build.sh && cargo build --release -p propsync-server
//   (cd tests/app && npm ci && node bench.mjs)
//
// Env: RELAY_BIN (default target/release/propsync-server), CHROMIUM, TICKETS (200), RUNS (5).

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const relayBin = process.env.RELAY_BIN || path.join(root, 'target/release/propsync-server');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const TICKETS = Number(process.env.TICKETS || 200);
const RUNS = Number(process.env.RUNS || 5);
const RATE = 4;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const log = (m) => console.error('[bench] ' + m);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

// ---- the shell's size, compressed (the build's .gz copies, as the relay sends them).
const app = path.join(root, 'target/field-app');
const SHELL = ['index.html', 'boot.js', 'app.js', 'worker.js', 'i18n.js', 'app.css', 'manifest.webmanifest', 'icon.svg', 'sw.js',
  'pkg/propsync_web.js', 'pkg/propsync_web_bg.wasm'];
const size = (f) => fs.statSync(path.join(app, f)).size;
const shellGz = SHELL.reduce((n, f) => n + size(f + '.gz'), 0);
const shellRaw = SHELL.reduce((n, f) => n + size(f), 0);

// ---- a demo relay on a free port.
const data = fs.mkdtempSync(path.join(os.tmpdir(), 'propsync-appbench-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const url = `http://127.0.0.1:${port}`;
const relay = spawn(relayBin, ['demo', '--data', data, '--listen', `127.0.0.1:${port}`, '--app-dir', app], { stdio: ['ignore', 'ignore', 'inherit'] });
async function until(fn, what, ms = 60_000) {
  const end = Date.now() + ms;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (_) { /* not yet */ }
    if (Date.now() > end) throw new Error('timed out: ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}
await until(async () => (await fetch(url + '/api/v1/health')).ok, 'the relay');
const creds = JSON.parse(fs.readFileSync(path.join(data, 'demo-credentials.json'), 'utf8'));
async function login(user) {
  const r = await fetch(url + '/api/v1/login', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: user, password: creds.users[user].password }) });
  return (await r.json()).token;
}
const post = async (token, p, body) => {
  const r = await fetch(url + p, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token }, body: JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(`${p}: ${JSON.stringify(j)}`);
  return j;
};
const desk = await login('frontdesk');
async function orders(n, from) {
  for (let i = 0; i < n; i++) {
    const t = await post(desk, '/api/v1/tickets', { kind: 'repair', title: `水管检修 ${from + i} pipe check`, location: `B${1 + (i % 2)}-${100 + i} 厨房`, category: 'plumbing', urgency: 'normal' });
    await post(desk, `/api/v1/tickets/${t.id}/events`, { action: 'assign', data: { assignee: 'eng1' } });
  }
}
await orders(2, 0);
const enrolment = await post(await login('supervisor'), '/api/v1/enrolments', { username: 'eng1', origin: url });

// ---- the phone.
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'propsync-benchphone-'));
const ctx = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: ARGS,
  viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
ctx.setDefaultTimeout(120_000);
const browserCdp = await ctx.browser()?.newBrowserCDPSession?.().catch(() => null);

/** Throttles the page and every worker of it. */
async function throttle(page) {
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: RATE });
  // Workers are their own targets: attach through the page's session.
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  cdp.on('Target.attachedToTarget', ({ sessionId, targetInfo }) => {
    if (targetInfo.type !== 'worker') return;
    cdp.send('Target.sendMessageToTarget', { sessionId,
      message: JSON.stringify({ id: 1, method: 'Emulation.setCPUThrottlingRate', params: { rate: RATE } }) }).catch(() => {});
  });
  return cdp;
}

let page = ctx.pages()[0] || await ctx.newPage();
await page.goto(enrolment.link);
await page.locator('li.ticket').nth(1).waitFor();
await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
log('enrolled; 2 tickets synced');

/** Opens the app in a fresh page (offline: from the service worker) and times it until `selector` shows `count` items. */
async function open(hash, selector, count) {
  await page.close();
  page = await ctx.newPage();
  await throttle(page);
  await page.addInitScript(() => {
    // When the worker (WebAssembly + the store) first answered: the status bar is drawn.
    new MutationObserver(() => {
      if (!window.__ready && document.querySelector('#bar .row')) window.__ready = performance.now();
    }).observe(document, { childList: true, subtree: true });
  });
  const t0 = Date.now();
  await page.goto(`${url}/app/${hash}`);
  await page.waitForFunction(([s, n]) => document.querySelectorAll(s).length >= n, [selector, count], { polling: 'raf', timeout: 120_000 });
  const total = Date.now() - t0;
  const marks = await page.evaluate(() => ({
    fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null,
    ready: window.__ready ?? null,
    boot: window.__boot ?? null,
    shown: performance.now(),
  }));
  breakdown.push({ total, fcp: Math.round(marks.fcp), worker_ready: Math.round(marks.ready), list_shown: Math.round(marks.shown),
    worker_wasm_ready: marks.boot?.wasm, worker_store_open: marks.boot?.store });
  return total;
}
const breakdown = [];

await ctx.setOffline(true);
const firstOpen = [];
for (let i = 0; i < RUNS; i++) firstOpen.push(await open('#/work', 'li.ticket', 2));
log('first open from the service worker: ' + firstOpen.join(', ') + ' ms');

const ticketScreen = [];
const first = await page.locator('li.ticket').first().getAttribute('data-id');
for (let i = 0; i < RUNS; i++) {
  ticketScreen.push(await page.evaluate(async (id) => {
    location.hash = '#/work';
    while (!document.querySelector('li.ticket')) await new Promise((r) => requestAnimationFrame(r));
    const t0 = performance.now();
    location.hash = '#/t/' + encodeURIComponent(id);
    while (!document.querySelector('#serial')) await new Promise((r) => requestAnimationFrame(r));
    return performance.now() - t0;
  }, first));
}
log('ticket screen: ' + ticketScreen.map((x) => x.toFixed(0)).join(', ') + ' ms');

// ---- 200 tickets on the phone.
await ctx.setOffline(false);
await orders(TICKETS - 2, 2);
await page.close();
page = await ctx.newPage();
await page.goto(`${url}/app/#/work`);
await page.locator('#sync').click();
await page.waitForFunction((n) => document.querySelectorAll('li.ticket').length >= n, TICKETS, { timeout: 300_000, polling: 1000 });
log(`${TICKETS} tickets synced`);
const storage = await page.evaluate(async () => (await navigator.storage.estimate()).usage);
const opfs = await page.evaluate(async () => {
  let total = 0;
  async function walk(dir) { for await (const [, h] of dir.entries()) { if (h.kind === 'file') total += (await h.getFile()).size; else await walk(h); } }
  await walk(await navigator.storage.getDirectory());
  return total;
});
await ctx.setOffline(true);
const reopen = [];
for (let i = 0; i < Math.max(3, Math.floor(RUNS / 2)); i++) reopen.push(await open('#/work', 'li.ticket', TICKETS));
log(`full re-open with ${TICKETS} tickets: ` + reopen.join(', ') + ' ms');

const result = {
  cpu_throttling: RATE,
  shell_bytes_gzip: shellGz,
  shell_bytes_raw: shellRaw,
  wasm_bytes_gzip: size('pkg/propsync_web_bg.wasm.gz'),
  first_open_from_sw_ms: { median: median(firstOpen), runs: firstOpen },
  ticket_screen_ms: { median: Math.round(median(ticketScreen)), runs: ticketScreen.map(Math.round) },
  tickets: TICKETS,
  storage_usage_bytes: storage,
  opfs_bytes: opfs,
  reopen_ms: { median: median(reopen), runs: reopen },
  // Per open, ms from navigation start: first contentful paint (the shell,
  // from the service worker), the worker's first answer (WebAssembly
  // compiled, OPFS opened, store migrated), the list drawn.
  breakdown,
};
console.log(JSON.stringify(result, null, 2));
await ctx.close();
relay.kill('SIGTERM');
if (browserCdp) await browserCdp.detach().catch(() => {});
fs.rmSync(data, { recursive: true, force: true });
fs.rmSync(profile, { recursive: true, force: true });
