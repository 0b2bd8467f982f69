// The field app's screens (plain JS modules, no build step). Each screen asks
// the worker (client-core in WebAssembly) what to show and what may be done;
// this file only draws it and collects forms. Chinese first; English a tap away.

import { t, lang, setLang, actionName, statusName, flagName, kindName, outcomeName, urgencyName, ruleText } from './i18n.js';

// ---------------------------------------------------------------- worker RPC
const worker = window.propsyncWorker || new Worker('./worker.js', { type: 'module' });
let seq = 0;
const waiting = new Map();
let status = { online: navigator.onLine, syncing: false, lastSync: null, lastError: null, pending: 0, quarantined: 0 };

worker.onmessage = (e) => {
  const m = e.data;
  if (m.event === 'status') { status = m; window.__boot = m.boot; drawBar(); return; }
  if (m.event === 'changed') { if (!busy) route(); return; }
  const w = waiting.get(m.id);
  if (!w) return;
  waiting.delete(m.id);
  if (m.ok) w.resolve(m.value); else w.reject(new Error(m.error));
};
function call(op, ...args) {
  return new Promise((resolve, reject) => {
    const id = ++seq;
    waiting.set(id, { resolve, reject });
    worker.postMessage({ id, op, args });
  });
}
window.addEventListener('online', () => call('setOnline', true));
window.addEventListener('offline', () => call('setOnline', false));

// -------------------------------------------------------------------- DOM
function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}
const main = () => document.getElementById('main');
let busy = false; // a form is open: background refreshes wait

function when(iso) {
  if (!iso) return t('never');
  const d = new Date(iso);
  return d.toLocaleString(lang() === 'en' ? 'en-GB' : 'zh-CN', { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
}
const yuan = (fen) => (fen / 100).toFixed(2);

// ------------------------------------------------------------ status bar
function drawBar() {
  const bar = document.getElementById('bar');
  if (!bar) return;
  bar.replaceChildren(...[
    h('div', { class: 'row' },
      h('span', { id: 'net', class: status.online ? 'ok' : 'off' }, status.online ? t('online') : '⚠ ' + t('offline')),
      h('button', { id: 'sync', class: 'small', disabled: !status.online || status.syncing, onclick: () => call('syncNow') },
        status.syncing ? t('syncing') : t('sync'))),
    h('div', { class: 'row meta' },
      h('span', { id: 'last-sync' }, `${t('last_sync')}: ${when(status.lastSync)}`),
      h('span', {}, t('pending_n', { n: status.pending }) + (status.quarantined ? ` · ${t('quarantine')} ${status.quarantined}` : ''))),
    status.lastError ? h('div', { class: 'row err', id: 'sync-error' }, `${t('sync_failed')}: ${status.lastError}`) : null,
  ].filter(Boolean));
  document.body.classList.toggle('offline', !status.online);
}

function nav(identity) {
  const link = (href, key) => h('a', { href, class: location.hash.startsWith(href) ? 'on' : '' }, t(key));
  return h('nav', { id: 'tabs' },
    link('#/work', 'work'), link('#/report', 'report'), link('#/pending', 'pending'), link('#/log', 'log'));
}

function frame(identity, ...content) {
  document.getElementById('who').textContent = identity ? `${identity.principal.user} · ${identity.principal.device}` : '';
  document.getElementById('lang').textContent = t('lang');
  document.getElementById('title').textContent = t('app');
  main().replaceChildren(...content.filter(Boolean));
  document.getElementById('footer').replaceChildren(identity ? nav(identity) : '');
  drawBar();
}

// --------------------------------------------------------------- screens
async function enrolScreen(code) {
  const msg = h('p', { id: 'enrol-msg', role: 'status' });
  const input = h('input', { id: 'code', name: 'code', autocomplete: 'off', autocapitalize: 'characters', value: code || '', 'aria-label': t('enrol_code') });
  const go = async () => {
    msg.textContent = t('enrolling');
    try {
      await call('enrol', input.value.trim());
      // Ask the browser not to evict the store under storage pressure.
      navigator.storage?.persist?.().catch(() => {});
      history.replaceState(null, '', '#/work');
      route();
    } catch (e) {
      msg.textContent = `${t('enrol_failed')}: ${e.message}`;
      msg.className = 'err';
    }
  };
  const scan = h('input', { type: 'file', accept: 'image/*', capture: 'environment', id: 'scan', class: 'hidden',
    onchange: async (e) => {
      const file = e.target.files[0];
      if (!file || !('BarcodeDetector' in window)) return;
      const codes = await new window.BarcodeDetector({ formats: ['qr_code'] }).detect(await createImageBitmap(file));
      const m = codes[0]?.rawValue?.match(/enrol=([A-Za-z0-9-]+)/);
      if (m) { input.value = m[1]; go(); }
    } });
  frame(null,
    h('section', { class: 'card' },
      h('h2', {}, t('enrol_title')),
      h('p', {}, t('enrol_help')),
      h('label', { for: 'code' }, t('enrol_code')), input,
      h('div', { class: 'buttons' },
        h('button', { id: 'enrol', onclick: go }, t('enrol_go')),
        'BarcodeDetector' in window ? h('label', { class: 'button secondary', for: 'scan' }, t('scan')) : null, scan),
      msg));
  if (code) go();
}

async function workScreen(identity) {
  const list = await call('work');
  const items = list.items.map((w) => h('li', { class: 'ticket', 'data-serial': w.serial || '', 'data-id': w.url },
    h('a', { href: `#/t/${encodeURIComponent(w.url)}` },
      h('div', { class: 'row' },
        h('strong', { class: 'serial' }, w.serial || t('serial_none')),
        h('span', { class: 'status' + (w.status !== w.official_status ? ' pending' : '') }, statusName(w.status))),
      h('div', { class: 'title' }, w.title),
      h('div', { class: 'row meta' },
        h('span', {}, `${kindName(w.kind)} · ${w.location}`),
        w.due ? h('span', {}, `${t('due')} ${when(w.due)}`) : null),
      h('div', { class: 'row' },
        h('span', { class: 'flags' }, ...w.flags.map((f) => h('b', { class: 'flag ' + f }, flagName(f)))),
        w.pending ? h('span', { class: 'badge' }, t('pending_n', { n: w.pending })) : null,
        w.damaged ? h('span', { class: 'err' }, t('damaged')) : null))));
  frame(identity,
    h('h2', {}, t('work')),
    items.length ? h('ul', { class: 'list', id: 'work' }, items) : h('p', { class: 'empty' }, t('no_work')),
    list.unreadable.length ? h('section', { class: 'card err' }, h('h3', {}, t('unreadable')),
      ...list.unreadable.map((u) => h('p', {}, `${u.url}: ${u.problem}`))) : null);
}

function field(name, label, input) {
  input.id = 'f-' + name;
  input.name = name;
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input);
}

async function photoBytes(file) {
  // Scaled (longest side 1280 px) and compressed on the phone.
  const bmp = await createImageBitmap(file);
  const scale = Math.min(1, 1280 / Math.max(bmp.width, bmp.height));
  const canvas = new OffscreenCanvas(Math.round(bmp.width * scale), Math.round(bmp.height * scale));
  canvas.getContext('2d').drawImage(bmp, 0, 0, canvas.width, canvas.height);
  const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.8 });
  return new Uint8Array(await blob.arrayBuffer());
}

function photoPicker(shas) {
  const shown = h('div', { class: 'thumbs' });
  const input = h('input', { type: 'file', accept: 'image/*', capture: 'environment', multiple: true,
    onchange: async (e) => {
      for (const file of e.target.files) {
        const bytes = await photoBytes(file);
        const sha = await call('addPhoto', bytes.buffer, 'image/jpeg');
        shas.push(sha);
        shown.append(h('img', { src: URL.createObjectURL(new Blob([bytes], { type: 'image/jpeg' })), alt: sha.slice(0, 8) }));
      }
    } });
  return field('photos', t('photo'), input).appendChild(shown).parentNode;
}

function signaturePad() {
  const canvas = h('canvas', { width: 320, height: 140, id: 'signature', class: 'signature', 'aria-label': t('signature') });
  const ctx = canvas.getContext('2d');
  ctx.lineWidth = 2.5; ctx.lineCap = 'round'; ctx.strokeStyle = '#111';
  let drawing = false; let marked = false;
  const pos = (e) => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height]; };
  canvas.addEventListener('pointerdown', (e) => { drawing = true; canvas.setPointerCapture(e.pointerId); ctx.beginPath(); ctx.moveTo(...pos(e)); e.preventDefault(); });
  canvas.addEventListener('pointermove', (e) => { if (!drawing) return; ctx.lineTo(...pos(e)); ctx.stroke(); marked = true; e.preventDefault(); });
  canvas.addEventListener('pointerup', () => { drawing = false; });
  const clear = h('button', { type: 'button', class: 'small secondary', onclick: () => { ctx.clearRect(0, 0, canvas.width, canvas.height); marked = false; } }, t('clear'));
  return {
    el: h('div', { class: 'field' }, h('label', {}, t('signature')), canvas, clear),
    async sha() {
      if (!marked) return null;
      const blob = await new Promise((r) => canvas.toBlob(r, 'image/png'));
      return call('addPhoto', await blob.arrayBuffer(), 'image/png');
    },
  };
}

// The form for one offered action: the fields client-core says it needs.
function actionForm(ticketId, offer, view, done) {
  const needs = new Set(offer.needs);
  const photos = [];
  const form = h('form', { class: 'card', id: 'form-' + offer.action });
  const msg = h('p', { class: 'msg', role: 'status' });
  const inputs = {};
  const text = (name, label) => { inputs[name] = h('textarea', { rows: 2 }); return field(name, label, inputs[name]); };
  form.append(h('h3', {}, actionName(offer.action)));
  if (needs.has('reason')) form.append(text('reason', t('reason')));
  if (needs.has('result')) form.append(text('result', t('result')));
  if (needs.has('labour_min')) { inputs.labour_min = h('input', { type: 'number', min: 0, inputmode: 'numeric' }); form.append(field('labour_min', t('labour_min'), inputs.labour_min)); }
  if (needs.has('quote_fen')) { inputs.quote = h('input', { type: 'number', min: 0, step: '0.01', inputmode: 'decimal' }); form.append(field('quote', t('quote'), inputs.quote)); }
  const materials = [];
  if (needs.has('materials')) {
    const rows = h('div', { id: 'materials' });
    const add = () => {
      const m = { name: h('input', { placeholder: t('material_name'), 'aria-label': t('material_name'), class: 'm-name' }),
        qty: h('input', { type: 'number', min: 1, value: 1, 'aria-label': t('qty'), class: 'm-qty' }),
        price: h('input', { type: 'number', min: 0, step: '0.01', placeholder: t('unit_price'), 'aria-label': t('unit_price'), class: 'm-price' }) };
      materials.push(m);
      rows.append(h('div', { class: 'material' }, m.name, m.qty, m.price));
    };
    form.append(h('div', { class: 'field' }, h('label', {}, t('materials')), rows,
      h('button', { type: 'button', class: 'small secondary', id: 'add-material', onclick: add }, t('add_material'))));
  }
  let pad = null;
  let absent = null; let witness = null;
  if (offer.action === 'complete' || offer.action === 'reply') form.append(photoPicker(photos));
  if (offer.action === 'complete') {
    pad = signaturePad();
    absent = h('input', { type: 'checkbox', id: 'f-absent' });
    witness = h('input', { id: 'f-witness', placeholder: t('witness') });
    form.append(pad.el, h('div', { class: 'field inline' }, absent, h('label', { for: 'f-absent' }, t('resident_absent'))), field('witness', t('witness'), witness));
  }
  const submit = h('button', { type: 'submit', id: 'submit' }, t('submit'));
  form.append(h('div', { class: 'buttons' }, submit, h('button', { type: 'button', class: 'secondary', onclick: done }, t('cancel'))), msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    const data = {};
    if (inputs.reason) data.reason = inputs.reason.value;
    if (inputs.result) data.result = inputs.result.value;
    if (inputs.labour_min && inputs.labour_min.value !== '') data.labour_min = Number(inputs.labour_min.value);
    if (inputs.quote && inputs.quote.value) data.quote_fen = Math.round(Number(inputs.quote.value) * 100);
    if (needs.has('materials')) {
      data.materials = materials.filter((m) => m.name.value.trim()).map((m) => ({
        name: m.name.value.trim(), qty: Number(m.qty.value || 1), unit_fen: Math.round(Number(m.price.value || 0) * 100) }));
    }
    if (photos.length) data.photos = photos;
    if (pad) {
      const sig = await pad.sha();
      if (sig) data.signature = sig;
      if (absent.checked) { data.resident_absent = true; data.witness = witness.value; }
    }
    const answer = await call('act', ticketId, offer.action, data);
    if (answer.refused) {
      msg.className = 'msg err refusal';
      msg.replaceChildren(h('strong', {}, `${t('refused')}: ${ruleText(answer.refused.rule)}`), h('br'), h('small', {}, `${answer.refused.rule}: ${answer.refused.reason}`));
      submit.disabled = false;
      return;
    }
    done(t('saved'));
  });
  return form;
}

function timeline(view) {
  const verdicts = view.ticket.server.verdicts || {};
  const pendingIds = new Set(view.pending.map((p) => p.event.id));
  const events = view.ticket.events.map((e) => {
    const v = verdicts[e.id];
    const state = v ? v.outcome : 'pending';
    return h('li', { class: 'event ' + state, 'data-action': e.action, 'data-outcome': state },
      h('div', { class: 'row' }, h('strong', {}, actionName(e.action)),
        h('span', { class: 'verdict' }, v ? outcomeName(v.outcome) : t('verdict_pending'))),
      h('div', { class: 'meta' }, `${e.by} · ${when(e.at)}`),
      e.data.reason ? h('div', {}, `${t('reason')}: ${e.data.reason}`) : null,
      e.data.result ? h('div', {}, `${t('result')}: ${e.data.result}`) : null,
      e.data.labour_min != null ? h('div', {}, `${t('labour_min')}: ${e.data.labour_min}`) : null,
      e.data.materials?.length ? h('div', {}, `${t('materials')}: ` + e.data.materials.map((m) => `${m.name}×${m.qty} ¥${yuan(m.unit_fen)}`).join('，')) : null,
      v && v.outcome !== 'accepted' ? h('div', { class: 'err' }, `${ruleText(v.rule)} (${v.rule}: ${v.reason})`) : null,
      pendingIds.has(e.id) && !v ? h('div', { class: 'badge' }, t('pending')) : null);
  });
  return h('ol', { class: 'timeline', id: 'timeline' }, events);
}

async function ticketScreen(identity, id) {
  let screen;
  try { screen = await call('ticket', id); } catch (e) { frame(identity, h('p', { class: 'err' }, e.message)); return; }
  const { view, offers, household, photos, flags } = screen;
  const head = view.ticket.header;
  const formSlot = h('div', { id: 'form-slot' });
  const flash = h('p', { id: 'flash', role: 'status', class: 'ok' });
  const open = offers.filter((o) => !o.refused);
  const closed = offers.filter((o) => o.refused);
  const finish = (message) => { busy = false; formSlot.replaceChildren(); if (typeof message === 'string') { sessionStorage.setItem('flash', message); } route(); };
  const actionButtons = open.map((o) => h('button', { class: 'action', 'data-action': o.action,
    onclick: () => { busy = true; formSlot.replaceChildren(actionForm(id, o, view, finish)); formSlot.scrollIntoView(); } }, actionName(o.action)));
  const noteBox = h('textarea', { id: 'note', rows: 2, placeholder: t('note_placeholder'), 'aria-label': t('add_note') });
  const noteMsg = h('p', { class: 'msg' });
  const photoList = view.ticket.attachments.map((a) => {
    const p = photos[a.sha256] || {};
    const img = h('img', { alt: a.caption, 'data-sha': a.sha256 });
    if (p.local) call('photo', a.sha256).then((b) => { if (b) img.src = URL.createObjectURL(new Blob([b], { type: a.mime })); });
    return h('figure', {}, img, h('figcaption', {}, `${a.caption} · ${p.local ? (p.uploaded ? t('uploaded') : t('not_uploaded')) : t('relay_photo')}`));
  });
  const message = sessionStorage.getItem('flash');
  if (message) { flash.textContent = message; sessionStorage.removeItem('flash'); }
  frame(identity,
    h('a', { href: '#/work', class: 'back' }, '‹ ' + t('back')),
    flash,
    h('section', { class: 'card', id: 'ticket' },
      h('div', { class: 'row' }, h('h2', { id: 'serial' }, view.serial || t('serial_none')),
        h('span', { class: 'status', id: 'status' }, statusName(view.with_pending.status))),
      h('div', { class: 'title' }, head.title),
      h('div', { class: 'meta' }, `${kindName(head.kind)} · ${head.location}`),
      h('div', { class: 'meta', id: 'official' }, `${t('official')}: ${statusName(view.official.status)}` + (view.pending.length ? ` · ${t('pending_n', { n: view.pending.length })}` : '')),
      view.with_pending.current_due || view.official.completion_due ? h('div', { class: 'meta' }, `${t('due')}: ${when(view.official.completion_due || view.official.response_due)}`) : null,
      h('div', { class: 'flags' }, ...flags.map((f) => h('b', { class: 'flag ' + f }, flagName(f)))),
      head.description ? h('p', {}, head.description) : null,
      view.load.problems.length ? h('p', { class: 'err' }, t('damaged')) : null),
    h('section', { class: 'card', id: 'actions' }, h('h3', {}, t('actions')),
      actionButtons.length ? h('div', { class: 'buttons' }, actionButtons) : h('p', {}, t('nothing')),
      formSlot,
      closed.length ? h('details', { id: 'refused' }, h('summary', {}, t('unavailable')),
        h('ul', {}, closed.map((o) => h('li', { 'data-action': o.action, 'data-rule': o.refused.rule },
          h('strong', {}, actionName(o.action)), '：', ruleText(o.refused.rule), h('br'), h('small', {}, o.refused.reason))))) : null),
    household ? h('section', { class: 'card', id: 'household' }, h('h3', {}, t('household')),
      h('div', {}, `${household.building} ${household.unit}`),
      household.residents.length ? h('div', {}, `${t('residents')}: ` + household.residents.map((r) => `${r.name}（${r.relation}）`).join('，')) : null,
      household.access_notes ? h('div', {}, `${t('access')}: ${household.access_notes}`) : null,
      household.equipment.length ? h('div', {}, `${t('equipment')}: ` + household.equipment.map((q) => q.name).join('，')) : null) : null,
    h('section', { class: 'card' }, h('h3', {}, t('timeline')), timeline(view)),
    photoList.length ? h('section', { class: 'card', id: 'photos' }, h('h3', {}, t('photos')), h('div', { class: 'thumbs' }, photoList)) : null,
    h('section', { class: 'card', id: 'notes' }, h('h3', {}, t('notes')),
      h('ul', {}, view.ticket.notes.map((n) => h('li', {}, h('div', { class: 'meta' }, `${n.by} · ${when(n.at)}`), n.text))),
      noteBox,
      h('button', { id: 'save-note', class: 'small', onclick: async () => {
        const r = await call('note', id, noteBox.value);
        if (r.refused) { noteMsg.className = 'msg err'; noteMsg.textContent = `${ruleText(r.refused.rule)} (${r.refused.reason})`; return; }
        sessionStorage.setItem('flash', t('saved'));
        route();
      } }, t('add_note')), noteMsg));
}

async function reportScreen(identity) {
  const photos = [];
  const kind = h('select', {}, ...['repair', 'complaint', 'need', 'suggestion', 'praise', 'paid_service'].map((k) => h('option', { value: k }, kindName(k))));
  const urgency = h('select', {}, ...['normal', 'urgent', 'low'].map((u) => h('option', { value: u }, urgencyName(u))));
  const loc = h('input');
  const title = h('input');
  const desc = h('textarea', { rows: 3 });
  const cat = h('input', { value: 'general' });
  const msg = h('p', { class: 'msg', role: 'status' });
  const form = h('form', { class: 'card', id: 'report-form' },
    field('kind', t('kind'), kind), field('location', t('location'), loc), field('title', t('title'), title),
    field('description', t('description'), desc), field('category', t('category'), cat), field('urgency', t('urgency'), urgency),
    photoPicker(photos), h('div', { class: 'buttons' }, h('button', { type: 'submit', id: 'submit' }, t('submit'))), msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const answer = await call('report', { kind: kind.value, location: loc.value, title: title.value, description: desc.value,
      category: cat.value, urgency: urgency.value, photos });
    if (answer.refused) {
      msg.className = 'msg err refusal';
      msg.replaceChildren(h('strong', {}, `${t('refused')}: ${ruleText(answer.refused.rule)}`), h('br'), h('small', {}, answer.refused.reason));
      return;
    }
    sessionStorage.setItem('flash', t('reported'));
    location.hash = `#/t/${encodeURIComponent(answer.ok)}`;
  });
  frame(identity, h('h2', {}, t('report')), form);
}

async function pendingScreen(identity) {
  const [pending, quarantine] = await Promise.all([call('pending'), call('quarantine')]);
  const exportQ = () => {
    const blob = new Blob([JSON.stringify({ device: identity.principal.device, user: identity.principal.user, quarantine }, null, 2)], { type: 'application/json' });
    const a = h('a', { href: URL.createObjectURL(blob), download: `quarantine-${identity.principal.device}.json` });
    document.body.append(a); a.click(); a.remove();
  };
  frame(identity,
    h('h2', {}, t('pending')),
    h('ul', { class: 'list', id: 'pending-list' }, pending.length ? pending.map((p) => h('li', { 'data-action': p.action },
      h('a', { href: `#/t/${encodeURIComponent(p.doc)}` }, h('strong', {}, actionName(p.action))), ` · ${when(p.at)}`)) : h('li', {}, t('nothing'))),
    h('h2', {}, t('quarantine')),
    h('p', { class: 'meta' }, t('quarantine_help')),
    h('ul', { class: 'list', id: 'quarantine-list' }, quarantine.length ? quarantine.map((q) => h('li', { class: 'err', 'data-rule': q.rule },
      h('strong', {}, ruleText(q.rule)), h('br'), h('small', {}, `${q.rule}: ${q.reason}`), h('br'), h('small', {}, `${q.summary} · ${when(q.at)}`))) : h('li', {}, t('nothing'))),
    quarantine.length ? h('button', { id: 'export', class: 'secondary', onclick: exportQ }, t('export')) : null);
}

async function logScreen(identity) {
  const log = await call('syncLog');
  frame(identity,
    h('h2', {}, t('device_log')),
    h('ul', { class: 'list', id: 'sync-log' }, log.length ? log.map((r) => h('li', { class: r.ok ? '' : 'err' },
      h('div', { class: 'row' }, h('strong', {}, r.ok ? t('ok') : t('failed')), h('span', { class: 'meta' }, when(r.ended))),
      r.ok ? h('div', { class: 'meta' }, `${t('up')} ${r.summary.changes_up ?? 0} · ${t('down')} ${r.summary.changes_down ?? 0} · ${t('verdicts')} ${r.summary.verdicts ?? 0} · ${t('photos_up')} ${r.summary.photos_uploaded ?? 0}`) : h('div', {}, r.error),
      r.summary?.problems?.length ? h('div', { class: 'meta' }, `${t('problems')}: ${r.summary.problems.join('; ')}`) : null)) : h('li', {}, t('nothing'))));
}

// ---------------------------------------------------------------- router
async function route() {
  const hash = location.hash || '#/work';
  const enrolCode = hash.match(/enrol=([A-Za-z0-9-]+)/);
  let identity;
  try { identity = await call('identity'); } catch (e) { main().replaceChildren(h('p', { class: 'err' }, e.message)); return; }
  if (enrolCode && !identity) { history.replaceState(null, '', '#/enrol'); return enrolScreen(enrolCode[1]); }
  if (!identity) return enrolScreen('');
  const [, screen, arg] = hash.match(/^#\/(\w+)\/?(.*)$/) || [];
  busy = false;
  if (screen === 't' && arg) return ticketScreen(identity, decodeURIComponent(arg));
  if (screen === 'report') return reportScreen(identity);
  if (screen === 'pending') return pendingScreen(identity);
  if (screen === 'log') return logScreen(identity);
  return workScreen(identity);
}

document.getElementById('lang').addEventListener('click', () => { setLang(lang() === 'en' ? 'zh' : 'en'); route(); });
window.addEventListener('hashchange', route);
setLang(lang());
route();

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('./sw.js', { scope: './' }).catch((e) => console.warn('service worker:', e));
}
