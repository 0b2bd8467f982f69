// The field app's worker: it holds client-core (WebAssembly) and its SQLite
// store in the origin private file system, and moves the bytes: the sync
// WebSocket (token as a subprotocol, never in the URL), the enrolment
// exchange and the resumable photo upload. Every decision (what may be done,
// pending and official views, quarantine, what to send) is client-core's.
// The page talks to it with {id, op, args} messages.

import init, { FieldApp, Retry } from './pkg/propsync_web.js';

const base = self.location.origin;
const PERIOD_MS = 15_000; // background sync while online
const SETTLE_MS = 400; // as the CLI: in sync for this long ends a session
const STALL_MS = 20_000;
const CHUNK = 256 * 1024; // photo upload step: a cut resumes from the last one

let app;
let retry;
let online = self.navigator.onLine;
let syncing = false;
let lastError = null;
let timer = null;

// When the worker started, the WebAssembly module was ready and the store
// open (ms since the worker's start): the start-up cost, for BENCHMARKS.md.
const boot = {};
const ready = (async () => {
  await init();
  boot.wasm = Math.round(performance.now());
  app = await FieldApp.open('device');
  boot.store = Math.round(performance.now());
  retry = new Retry(250, 30_000);
  status();
  schedule(0);
})();

function identity() {
  return JSON.parse(app.identity());
}

function status() {
  let pending = 0;
  let quarantined = 0;
  try {
    pending = JSON.parse(app.pending()).length;
    quarantined = JSON.parse(app.quarantine()).length;
  } catch (_) { /* reported by the screens that read them */ }
  self.postMessage({
    event: 'status',
    boot,
    online, syncing, lastError, pending, quarantined,
    lastSync: app.last_sync() ?? null,
  });
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(() => { syncOnce(); }, ms);
}

async function syncOnce() {
  if (syncing) return;
  const id = identity();
  if (!id || !online) { status(); return; }
  syncing = true;
  status();
  const started = Date.now();
  try {
    const summary = await wsSync(id);
    // The tickets are in; photos follow and never hold them up.
    const up = await uploadPhotos(id);
    summary.photos_uploaded = up.done;
    summary.problems = (summary.problems || []).concat(up.problems);
    app.log_sync(started, JSON.stringify(summary), undefined);
    lastError = null;
    retry.reset();
    schedule(PERIOD_MS);
  } catch (e) {
    lastError = String(e.message || e);
    app.log_sync(started, undefined, lastError);
    schedule(retry.next_ms());
  } finally {
    syncing = false;
    self.postMessage({ event: 'changed' });
    status();
  }
}

function wsSync(id) {
  return new Promise((resolve, reject) => {
    const session = app.session();
    const url = base.replace(/^http/, 'ws') + '/sync';
    let ws;
    try {
      ws = new WebSocket(url, ['propsync.v1', 'propsync.token.' + id.token]);
    } catch (e) {
      session.free();
      reject(e);
      return;
    }
    ws.binaryType = 'arraybuffer';
    let finished = false;
    let wait = null;
    const arm = () => {
      clearTimeout(wait);
      wait = session.is_idle()
        ? setTimeout(() => done(null), SETTLE_MS)
        : setTimeout(() => done(new Error(`the sync stalled: ${session.outstanding()} documents out of sync`)), STALL_MS);
    };
    const send = (frames) => { for (const f of frames) ws.send(f); };
    const done = (err) => {
      if (finished) return;
      finished = true;
      clearTimeout(wait);
      let summary = {};
      try {
        if (err) session.disconnected();
        summary = JSON.parse(session.summary());
      } catch (_) { /* the error below says enough */ }
      session.free();
      ws.onclose = null;
      ws.onerror = null;
      try { ws.close(); } catch (_) { /* already closed */ }
      if (err) reject(err); else resolve(summary);
    };
    ws.onopen = () => {
      try { send(session.connected()); arm(); } catch (e) { done(e); }
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') return;
      try {
        send(session.received(new Uint8Array(ev.data)));
        const closing = session.closing();
        if (closing) { done(new Error('the relay closed the session: ' + closing)); return; }
        arm();
      } catch (e) { done(e); }
    };
    ws.onerror = () => done(new Error('the relay could not be reached'));
    ws.onclose = () => done(new Error('the relay closed the connection'));
  });
}

async function uploadPhotos(id) {
  const auth = { authorization: 'Bearer ' + id.token };
  const problems = [];
  let done = 0;
  for (const b of JSON.parse(app.photos_to_upload())) {
    const url = `${base}/api/v1/blobs/${b.sha256}`;
    try {
      const head = await fetch(url, { method: 'HEAD', headers: auth });
      let offset = head.status === 404 ? 0 : Number(head.headers.get('x-blob-received') || 0);
      const bytes = app.photo(b.sha256);
      if (!bytes) continue;
      for (let i = 0; offset < b.size && i < 64; i++) {
        const r = await fetch(url, {
          method: 'PUT',
          headers: { ...auth, 'content-type': b.mime, 'x-blob-size': String(b.size), 'x-blob-offset': String(offset) },
          body: bytes.slice(offset, Math.min(b.size, offset + CHUNK)),
        });
        const body = await r.json().catch(() => ({}));
        if (r.status === 409 && typeof body.received === 'number') { offset = body.received; continue; }
        if (!r.ok) throw new Error(`HTTP ${r.status} ${body?.error?.code || ''}`);
        offset = body.received;
        app.record_upload(b.sha256, body.received, body.complete);
        if (body.complete) break;
      }
      if (offset >= b.size) { app.record_upload(b.sha256, b.size, true); done += 1; }
    } catch (e) {
      problems.push(`photo ${b.sha256.slice(0, 12)}: ${e.message || e}`);
    }
  }
  return { done, problems };
}

async function enrol(code) {
  const r = await fetch(`${base}/api/v1/enrol`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code, label: 'field app' }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body?.error?.message || `HTTP ${r.status}`);
  const me = await fetch(`${base}/api/v1/me`, { headers: { authorization: 'Bearer ' + body.token } });
  const meBody = await me.json();
  if (!me.ok) throw new Error(meBody?.error?.message || `HTTP ${me.status}`);
  const id = JSON.parse(app.enrolled(base, body.token, JSON.stringify(meBody)));
  schedule(0);
  return id;
}

function changed(answer) {
  if (answer.ok) { status(); schedule(1000); }
  return answer;
}

const ops = {
  identity: () => identity(),
  enrol: (code) => enrol(code),
  work: () => JSON.parse(app.work()),
  ticket: (id) => JSON.parse(app.ticket(id)),
  act: (id, action, data) => changed(JSON.parse(app.act(id, action, JSON.stringify(data)))),
  note: (id, text) => changed(JSON.parse(app.note(id, text))),
  report: (form) => changed(JSON.parse(app.report(JSON.stringify(form)))),
  addPhoto: (bytes, mime) => app.add_photo(new Uint8Array(bytes), mime),
  photo: (sha) => app.photo(sha) ?? null,
  pending: () => JSON.parse(app.pending()),
  quarantine: () => JSON.parse(app.quarantine()),
  syncLog: () => JSON.parse(app.sync_log(100)),
  status: () => { status(); return true; },
  syncNow: () => { schedule(0); return true; },
  setOnline: (on) => {
    online = on;
    if (on) { retry.reset(); schedule(0); } else { status(); }
    return true;
  },
};

self.onmessage = async (e) => {
  const { id, op, args } = e.data;
  try {
    await ready;
    const value = await ops[op](...(args || []));
    self.postMessage({ id, ok: true, value });
  } catch (err) {
    self.postMessage({ id, ok: false, error: String(err?.message || err) });
  }
};

self.addEventListener('online', () => ops.setOnline(true));
self.addEventListener('offline', () => ops.setOnline(false));
