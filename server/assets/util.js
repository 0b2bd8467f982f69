// Shared helpers: the session, the JSON API, element building, formatting.
//
// The session token lives only in the HttpOnly cookie the relay sets at
// login: page script never sees it and no URL carries it. What is kept here
// is who is signed in and the session's CSRF token, which every
// state-changing request sends back in X-CSRF-Token.

const KEY = 'propsync.session';

export const session = {
  get() {
    try { return JSON.parse(sessionStorage.getItem(KEY)) || null; } catch { return null; }
  },
  set(s) {
    const { token: _token, ...kept } = s; // never stored: the cookie carries it
    sessionStorage.setItem(KEY, JSON.stringify(kept));
  },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the JSON API; throws ApiError with the relay's message. */
export async function api(path, { method = 'GET', body, query } = {}) {
  const s = session.get();
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const qs = q.toString();
    if (qs) url += '?' + qs;
  }
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD' && s?.csrf) headers['X-CSRF-Token'] = s.csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(url, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'network', 'The relay cannot be reached: ' + e.message);
  }
  let data = null;
  try { data = await r.json(); } catch { /* not JSON */ }
  if (!r.ok) {
    const err = data?.error;
    if (r.status === 401 && path !== '/api/v1/login') {
      session.clear();
      location.hash = '#/login';
    }
    throw new ApiError(r.status, err?.code || 'http_' + r.status, err?.message || `HTTP ${r.status}`);
  }
  return data;
}

/** A URL with a query (links, images, EventSource: the session cookie authenticates them). */
export function withQuery(path, query = {}) {
  const qs = new URLSearchParams(query).toString();
  return qs ? path + (path.includes('?') ? '&' : '?') + qs : path;
}

/** h('tag.class#id', {attrs, on: {click}}, ...children) */
export function h(spec, attrs, ...children) {
  const [, tag, rest] = spec.match(/^([a-z0-9]+)(.*)$/i);
  const el = document.createElement(tag);
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function pad(n) { return String(n).padStart(2, '0'); }

/** The property's time zone (IANA name), from the session; every time shown is its wall time. */
export function timeZone() {
  return session.get()?.time_zone || 'Asia/Shanghai';
}

const wallFormats = new Map();

/** The wall time of a Date in the property's zone, as numbers. */
function wall(d) {
  const tz = timeZone();
  let f = wallFormats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    wallFormats.set(tz, f);
  }
  const p = Object.fromEntries(f.formatToParts(d).map((x) => [x.type, x.value]));
  return { y: Number(p.year), mo: Number(p.month), d: Number(p.day), h: Number(p.hour) % 24, mi: Number(p.minute), s: Number(p.second) };
}

/** Date and time in the property's zone, minutes: 2026-03-02 09:05. */
export function fmtTime(s) {
  if (!s) return '';
  const d = new Date(s);
  if (isNaN(d)) return s;
  const w = wall(d);
  return `${w.y}-${pad(w.mo)}-${pad(w.d)} ${pad(w.h)}:${pad(w.mi)}`;
}

/** A value for <input type=datetime-local> from a Date: its wall time in the property's zone. */
export function localInput(d, seconds = false) {
  const w = wall(d);
  const s = `${w.y}-${pad(w.mo)}-${pad(w.d)}T${pad(w.h)}:${pad(w.mi)}`;
  return seconds ? `${s}:${pad(w.s)}` : s;
}

/**
 * An RFC 3339 UTC time from a wall time in the property's zone
 * (a datetime-local value, or a date meaning its midnight); '' stays ''.
 */
export function zonedIso(v) {
  if (!v) return '';
  const m = String(v).match(/^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d)(?::(\d\d))?)?$/);
  if (!m) return new Date(v).toISOString();
  const [y, mo, d, h = 0, mi = 0, s = 0] = m.slice(1).map((x) => Number(x || 0));
  const target = Date.UTC(y, mo - 1, d, h, mi, s);
  // The zone's offset at a guess, then at the corrected time (daylight saving).
  let t = target;
  for (let i = 0; i < 2; i++) {
    const w = wall(new Date(t));
    t = target - (Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s) - t);
  }
  return new Date(t).toISOString();
}

export function fen(n) {
  if (n === null || n === undefined || n === '') return '';
  const v = Number(n);
  const sign = v < 0 ? '-' : '';
  const a = Math.abs(v);
  return `${sign}¥${Math.floor(a / 100)}.${pad(a % 100)}`;
}

export function label(s) {
  return String(s ?? '').replaceAll('_', ' ').toLowerCase();
}

export function badge(text, cls = '') {
  return h('span.badge' + (cls ? '.' + cls : ''), text);
}

export function flagBadges(flags = []) {
  return flags.map((f) => badge(f, 'flag-' + f.toLowerCase().replaceAll('_', '-')));
}

export function statusBadge(s) {
  return badge(s, 'st-' + String(s).toLowerCase().replaceAll('_', '-'));
}

/** Shows a message at the top of the page. */
export function flash(msg, kind = 'error') {
  const el = document.getElementById('flash');
  clear(el, msg ? h('div.msg.' + kind, msg, ' ', h('button.link', { type: 'button', on: { click: () => clear(el) } }, 'dismiss')) : null);
}

/** An inline error box for a form. */
export function errorBox() {
  return h('div.form-error', { role: 'alert', 'aria-live': 'assertive' });
}

export function showError(box, e) {
  clear(box, e ? h('p', e.message || String(e)) : null);
}

export function field(labelText, input, hint) {
  const id = input.id || 'f-' + Math.random().toString(36).slice(2, 9);
  input.id = id;
  return h('div.field', h('label', { for: id }, labelText), input, hint ? h('small.hint', hint) : null);
}

export function select(name, options, { value = '', blank } = {}) {
  const s = h('select', { name });
  if (blank !== undefined) s.append(h('option', { value: '' }, blank));
  for (const o of options) {
    const [v, t] = Array.isArray(o) ? o : [o, label(o)];
    s.append(h('option', { value: v, selected: v === value }, t));
  }
  return s;
}

export function table(columns, rows, { empty = 'Nothing to show.', caption } = {}) {
  if (!rows.length) return h('p.muted.empty', empty);
  return h('div.table-wrap', h('table',
    caption ? h('caption', caption) : null,
    h('thead', h('tr', columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', rows)));
}

/** CSV text from header and rows (RFC 4180, formula-safe). */
export function toCsv(header, rows) {
  const cell = (v) => {
    let s = v === null || v === undefined ? '' : Array.isArray(v) ? v.join('; ') : String(v);
    if (/^[=+\-@]/.test(s) && isNaN(Number(s))) s = "'" + s;
    return /[",\r\n]/.test(s) ? '"' + s.replaceAll('"', '""') + '"' : s;
  };
  return [header, ...rows].map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

export function download(name, text) {
  const url = URL.createObjectURL(new Blob(['\ufeff' + text], { type: 'text/csv;charset=utf-8' }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function backLink(href, text) {
  return h('p.back', h('a', { href }, '← ', text));
}
