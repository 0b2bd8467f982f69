// The dashboard's pages: register, record a contact, ticket, households,
// review queue, sync log, devices.

import {
  api, session, h, clear, fmtTime, zonedIso, fen, label, badge, flagBadges, statusBadge, flash,
  field, select, table, errorBox, showError, toCsv, download, withQuery, backLink,
} from './util.js';

let lifecycleCache = null;
export async function lifecycle() {
  if (!lifecycleCache || lifecycleCache.role !== session.get()?.role) lifecycleCache = await api('/api/v1/lifecycle');
  return lifecycleCache;
}

const ORDER_KINDS = ['repair', 'paid_service'];

/** The kinds the caller's role may create: issue (orders) or record (matters) in the lifecycle table. */
function creatableKinds(lc) {
  return lc.kinds.filter((k) => lc.rows.some((r) => (r.action === 'issue' || r.action === 'record') && r.kinds.includes(k) && r.roles.includes(lc.role)));
}
const KIND_NAMES = {
  repair: 'Repair 报修', complaint: 'Complaint 投诉', praise: 'Praise 表扬',
  suggestion: 'Suggestion 建议', need: 'Need 需求', paid_service: 'Paid service 有偿服务',
};

function ticketLink(t) {
  return h('a', { href: '#/ticket/' + t.id }, t.serial || t.id.slice(0, 8));
}

// ------------------------------------------------------------ register

const FILTERS = ['kind', 'status', 'department', 'assignee', 'flag', 'from', 'to'];

function readQuery() {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  return Object.fromEntries(FILTERS.map((k) => [k, q.get(k) || '']));
}

export async function register(main) {
  const lc = await lifecycle();
  const q = readQuery();
  const s = session.get();
  const reviewer = ['supervisor', 'engineering_supervisor', 'manager'].includes(s.role);
  const inputs = {
    kind: select('kind', lc.kinds.map((k) => [k, KIND_NAMES[k] || k]), { value: q.kind, blank: 'any kind' }),
    status: select('status', lc.statuses.filter((x) => x !== 'NEW'), { value: q.status, blank: 'any status' }),
    department: select('department', lc.departments, { value: q.department, blank: 'any department' }),
    assignee: h('input', { name: 'assignee', value: q.assignee, placeholder: 'e.g. eng1', size: 10 }),
    flag: select('flag', lc.flags, { value: q.flag, blank: 'any flag' }),
    from: h('input', { name: 'from', type: 'date', value: q.from }),
    to: h('input', { name: 'to', type: 'date', value: q.to }),
  };
  const status = h('p.live-status.muted', { 'aria-live': 'polite' }, 'Connecting to live updates…');
  const body = h('div#register-body');
  const err = errorBox();
  const form = h('form.filters', {
    'aria-label': 'Filter the register',
    on: {
      submit: (ev) => {
        ev.preventDefault();
        const p = new URLSearchParams();
        for (const k of FILTERS) if (inputs[k].value) p.set(k, inputs[k].value);
        location.hash = '#/register' + (p.toString() ? '?' + p : '');
      },
    },
  },
  Object.entries(inputs).map(([k, el]) => field(label(k), el)),
  h('div.field.actions', h('button.primary', { type: 'submit' }, 'Filter'), ' ', h('a', { href: '#/register' }, 'Clear')));
  clear(main, h('div.page-head', h('h1', 'Register 事项登记'), status), form, err, body);

  let rows = new Map();
  let review = new Set();
  const load = async (changed) => {
    try {
      const query = { ...q };
      // Dates are the property's days: from its midnight to the next one.
      if (query.to) {
        const [y, m, d] = query.to.split('-').map(Number);
        const next = new Date(Date.UTC(y, m - 1, d + 1));
        query.to = zonedIso(next.toISOString().slice(0, 10));
      }
      if (query.from) query.from = zonedIso(query.from);
      const [r, rq] = await Promise.all([
        api('/api/v1/tickets', { query }),
        reviewer ? api('/api/v1/review-queue', { query: { open: true } }).catch(() => ({ items: [] })) : { items: [] },
      ]);
      review = new Set(rq.items.map((i) => i.doc_id));
      showError(err, null);
      render(r.tickets, changed);
    } catch (e) {
      showError(err, e);
    }
  };
  const render = (tickets, changed) => {
    const next = new Map(tickets.map((t) => [t.id, t]));
    const tr = tickets.map((t) => {
      const before = rows.get(t.id);
      const fresh = changed && (t.id === changed || !before || before.status !== t.status);
      return h('tr', { dataset: { id: t.id, status: t.status }, class: fresh ? 'changed' : null },
        h('td.serial', ticketLink(t)),
        h('td', label(t.kind)),
        h('td', statusBadge(t.status)),
        h('td', t.title, t.location ? h('div.muted.small', t.location) : null),
        h('td', t.assignee || ''),
        h('td', t.department ? label(t.department) : ''),
        h('td', fmtTime(t.received_at)),
        h('td.flags', review.has(t.id) ? badge('PENDING REVIEW', 'flag-pending') : null, flagBadges(t.flags)));
    });
    rows = next;
    clear(body,
      h('p.muted.count', `${tickets.length} ticket${tickets.length === 1 ? '' : 's'}`),
      table(['Serial', 'Kind', 'Status', 'Title', 'Assignee', 'Department', 'Received', 'Marks'], tr,
        { empty: 'No ticket matches these filters.', caption: 'Tickets, newest first' }));
  };
  await load();

  // Live: one event per ticket change; reload the list (coalesced).
  let pending = null;
  let timer = null;
  const es = new EventSource('/api/v1/live');
  es.addEventListener('open', () => clear(status, '● Live'));
  es.addEventListener('error', () => clear(status, 'Live updates interrupted; retrying…'));
  const refresh = (id) => {
    pending = id;
    if (timer) return;
    timer = setTimeout(async () => {
      timer = null;
      const id2 = pending;
      pending = null;
      await load(id2);
      clear(status, '● Live — updated ' + fmtTime(new Date().toISOString()));
    }, 150);
  };
  es.addEventListener('ticket', (ev) => {
    try { refresh(JSON.parse(ev.data).doc_id); } catch { refresh(null); }
  });
  es.addEventListener('resync', () => refresh(null));
  return () => {
    es.close();
    if (timer) clearTimeout(timer);
  };
}

// ------------------------------------------------------------ record a contact

function householdPicker() {
  const hidden = h('input', { type: 'hidden', name: 'household' });
  const search = h('input', { type: 'search', name: 'household_search', placeholder: 'unit or building, e.g. B1-0101', autocomplete: 'off' });
  const chosen = h('p.chosen.muted', 'No household chosen (public area).');
  const results = h('ul.picker', { role: 'listbox', 'aria-label': 'Households found' });
  let seq = 0;
  const choose = (hh) => {
    hidden.value = hh ? hh.id : '';
    clear(chosen, hh ? [h('strong', hh.unit), ` (building ${hh.building}) `, h('a', { href: '#/household/' + hh.id, target: '_blank' }, 'open file'), ' ',
      h('button.link', { type: 'button', on: { click: () => choose(null) } }, 'clear')] : 'No household chosen (public area).');
    clear(results);
    if (hh) search.value = hh.unit;
  };
  const find = async () => {
    const mine = ++seq;
    const q = search.value.trim();
    if (!q) { clear(results); return; }
    try {
      const r = await api('/api/v1/households', { query: { q } });
      if (mine !== seq) return;
      clear(results, r.households.slice(0, 12).map((hh) =>
        h('li', h('button', { type: 'button', role: 'option', on: { click: () => choose(hh) } }, hh.unit, ' ', h('span.muted', 'building ' + hh.building)))),
      r.households.length ? null : h('li.muted', 'No household matches.'));
    } catch (e) {
      clear(results, h('li.form-error', e.message));
    }
  };
  search.addEventListener('input', find);
  search.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      results.querySelector('button')?.click();
    }
  });
  // The caller's number finds the household on the relay (the front desk may
  // search private files by number; the answer names the household only).
  const lookUp = (q) => { if (!hidden.value && q) { search.value = q; find(); } };
  return { hidden, el: h('div.field', h('label', { for: 'household-search' }, 'Household 住户 (one household, one file)'), Object.assign(search, { id: 'household-search' }), results, chosen, hidden), choose, lookUp };
}

export async function newContact(main) {
  const lc = await lifecycle();
  const kinds = creatableKinds(lc);
  if (!kinds.length) {
    clear(main, backLink('#/register', 'Register'), h('h1', 'Record a contact 来电登记'),
      h('p.muted', 'Your role does not record contacts or issue orders.'));
    return;
  }
  const err = errorBox();
  const result = h('div#created', { 'aria-live': 'polite' });
  const kind = select('kind', kinds.map((k) => [k, KIND_NAMES[k] || k]), { value: kinds.includes('repair') ? 'repair' : kinds[0] });
  const hh = householdPicker();
  const title = h('input', { name: 'title', required: true, maxlength: 200, placeholder: 'What the resident reports' });
  const location_ = h('input', { name: 'location', maxlength: 200, placeholder: 'e.g. B1-0101 kitchen, or B2 lobby' });
  const description = h('textarea', { name: 'description', rows: 4, maxlength: 10000 });
  const channel = select('channel', lc.channels, { value: 'phone' });
  const urgency = select('urgency', lc.urgencies, { value: 'normal' });
  const category = h('input', { name: 'category', placeholder: 'plumbing, electrical, doors…', list: 'categories' });
  const paid = h('input', { type: 'checkbox', name: 'paid' });
  const callerName = h('input#caller-name', { name: 'caller_name', maxlength: 50, autocomplete: 'off' });
  const callerPhone = h('input#caller-phone', { name: 'caller_phone', type: 'tel', maxlength: 30, autocomplete: 'off',
    pattern: '[0-9+\\(\\) \\-]*', placeholder: '13812345678' });
  const readBack = h('input#read-back', { type: 'checkbox', name: 'read_back', required: true });
  callerPhone.addEventListener('change', () => hh.lookUp(callerPhone.value.trim()));
  const callerBox = h('fieldset.caller', h('legend', '来电人 Caller'),
    field('姓名 Name', callerName),
    field('电话 Phone', callerPhone, '按号码查找住户 · finds the household by this number'),
    h('div.field.check', readBack, h('label', { for: 'read-back' }, '已向住户复述确认 / details read back to the caller')));
  const orderOnly = h('fieldset.order-only', h('legend', 'Order details'),
    field('Category 类别', category, 'Required for repair and paid-service orders.'),
    h('div.field.check', paid, h('label', { for: 'paid' }, 'Paid repair (有偿)')));
  paid.id = 'paid';
  const sync = () => {
    const order = ORDER_KINDS.includes(kind.value);
    orderOnly.hidden = !order;
    category.required = order;
    paid.disabled = kind.value !== 'repair';
    // Found on site: nobody called, nothing to read back.
    readBack.required = channel.value !== 'on_site';
  };
  kind.addEventListener('change', sync);
  channel.addEventListener('change', sync);
  sync();
  const submit = h('button.primary', { type: 'submit' }, 'Record');
  const form = h('form.card.contact', {
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        showError(err, null);
        if (!hh.hidden.value && !location_.value.trim()) {
          showError(err, new Error('Choose a household or enter a location.'));
          location_.focus();
          return;
        }
        submit.disabled = true;
        try {
          const order = ORDER_KINDS.includes(kind.value);
          const cName = callerName.value.trim();
          const cPhone = callerPhone.value.trim();
          const caller = cName || cPhone ? { name: cName, phone: cPhone, read_back: readBack.checked } : null;
          const t = await api('/api/v1/tickets', {
            method: 'POST',
            body: {
              kind: kind.value, title: title.value.trim(), location: location_.value.trim(), description: description.value,
              household: hh.hidden.value || null, channel: channel.value, urgency: urgency.value,
              category: order ? category.value.trim() : null, paid: kind.value === 'repair' ? paid.checked : null,
              caller,
            },
          });
          clear(result, h('div.card.created',
            h('h2', 'Recorded'),
            t.serial ? h('p.big-serial', { 'data-testid': 'serial' }, t.serial) : h('p', 'Matter recorded (matters have no serial).'),
            h('p', statusBadge(t.status), ' ', t.title),
            h('p', h('a', { href: '#/ticket/' + t.id }, 'Open the ticket'),
              t.serial ? [' · ', h('a', { href: withQuery('/orders/' + t.id + '/print'), target: '_blank' }, 'Print the order (3 copies)')] : null)));
          form.reset();
          hh.choose(null);
          sync();
          result.querySelector('a')?.focus();
        } catch (e) {
          showError(err, e);
        } finally {
          submit.disabled = false;
        }
      },
    },
  },
  h('h1', 'Record a contact 来电登记'),
  err,
  h('div.grid2',
    h('div', field('Kind 类型', kind), callerBox, hh.el, field('Location 位置', location_), field('Title 摘要', title)),
    h('div', field('Channel 渠道', channel), field('Urgency 紧急程度', urgency), orderOnly, field('Description 内容', description))),
  h('datalist#categories', ['plumbing', 'electrical', 'doors', 'appliance', 'cleaning', 'water delivery'].map((c) => h('option', { value: c }))),
  h('div.actions', submit));
  clear(main, backLink('#/register', 'Register'), form, result);
  kind.focus();
}

// ------------------------------------------------------------ ticket

/** Inputs per data field the table may require, plus a few optional ones. */
function inputFor(key, lc, t) {
  const openReview = (t.projection?.review || []).filter((r) => !r.resolution);
  switch (key) {
    case 'assignee': return h('input', { name: key, required: true, placeholder: 'user name, e.g. eng1' });
    case 'owner': return h('input', { name: key, required: true, placeholder: 'user name' });
    case 'labour_min': return h('input', { name: key, type: 'number', min: 0, step: 1, required: true });
    case 'amount_fen': return h('input', { name: key, type: 'number', min: 0, step: 1, required: true, value: outstanding(t) });
    case 'contact_result': return select(key, lc.contact_results, { value: 'reached' });
    case 'method': return select(key, lc.payment_methods || [], { value: 'wechat' });
    case 'satisfaction': return select(key, lc.satisfactions, { blank: '—' });
    case 'department': return select(key, lc.departments, { blank: 'choose…' });
    case 'urgency': return select(key, lc.urgencies, { value: 'normal' });
    case 'due_at': return h('input', { name: key, type: 'datetime-local', required: true });
    case 'copy_received': return h('input', { name: key, type: 'checkbox', required: true });
    case 'target': return select(key, openReview.map((r) => [r.event.id, `${r.event.action} by ${r.event.by} (${r.outcome})`]), { blank: 'choose…' });
    case 'materials': return h('textarea', { name: key, rows: 2, placeholder: 'one per line: name, qty, unit price in fen' });
    case 'reason': case 'result': case 'comments': return h('textarea', { name: key, rows: 2, required: key !== 'comments' });
    default: return h('input', { name: key, required: !['appointment', 'quote_fen'].includes(key) });
  }
}

function outstanding(t) {
  const p = t.projection || {};
  const paid = (p.collections || []).reduce((a, c) => a + c.amount, 0);
  const waived = (p.waivers || []).reduce((a, w) => a + w.amount, 0);
  return Math.max(0, (p.charge || 0) - paid - waived);
}

const OPTIONAL = { assign: ['appointment'], return_visit: ['satisfaction', 'comments'], check: ['comments'], complete: ['quote_fen'] };

function readData(form, keys) {
  const data = {};
  for (const key of keys) {
    const el = form.elements[key];
    if (!el) continue;
    if (el.type === 'checkbox') { if (el.checked) data[key] = true; continue; }
    const v = el.value.trim();
    if (v === '') continue;
    if (['labour_min', 'amount_fen', 'quote_fen'].includes(key)) {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${label(key)} must be a whole number of ${key === 'labour_min' ? 'minutes' : 'fen'}`);
      data[key] = n;
    } else if (key === 'due_at') {
      data[key] = zonedIso(v);
    } else if (key === 'materials') {
      data[key] = v.split('\n').filter((l) => l.trim()).map((line) => {
        const [name, qty, unit] = line.split(',').map((x) => x.trim());
        if (!name || !Number.isInteger(Number(qty)) || !Number.isInteger(Number(unit))) throw new Error(`materials: "${line}" is not "name, qty, unit price in fen"`);
        return { name, qty: Number(qty), unit_fen: Number(unit) };
      });
    } else if (key === 'linked') {
      data[key] = v.startsWith('automerge:') ? v : 'automerge:' + v;
    } else {
      data[key] = v;
    }
  }
  return data;
}

function actionForm(t, row, lc, done) {
  const keys = [...row.requires, ...(OPTIONAL[row.action] || [])];
  const err = errorBox();
  const note = h('textarea', { name: 'note', rows: 2 });
  const form = h('form.action-form.card', {
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        showError(err, null);
        let data;
        try { data = readData(form, keys); } catch (e) { showError(err, e); return; }
        try {
          const r = await api(`/api/v1/tickets/${t.id}/events`, { method: 'POST', body: { action: row.action, data, note: note.value || null, heads: t.heads } });
          const v = r.verdict || {};
          done(v.outcome === 'accepted' ? null : `${row.action}: ${v.outcome || 'no verdict'} — ${v.reason || ''}`, v.outcome === 'accepted' ? `${label(row.action)}: accepted` : null);
        } catch (e) {
          showError(err, e);
        }
      },
    },
  },
  h('h3', label(row.action)),
  err,
  keys.map((k) => field(label(k) + (row.requires.includes(k) ? '' : ' (optional)'), inputFor(k, lc, t))),
  field('Note (optional)', note),
  h('div.actions', h('button.primary', { type: 'submit' }, 'Confirm ' + label(row.action)), ' ',
    h('button', { type: 'button', on: { click: () => done(null, null, true) } }, 'Cancel')));
  return form;
}

const HIDDEN_ACTIONS = new Set(['issue', 'record', 'override', 'dismiss']);

export async function ticket(main, id) {
  const lc = await lifecycle();
  const s = session.get();
  const t = await api('/api/v1/tickets/' + encodeURIComponent(id));
  const p = t.projection || {};
  const mayDo = lc.rows.filter((r) => r.roles.includes(s.role) && r.kinds.includes(t.kind) && r.from.includes(t.status) && !HIDDEN_ACTIONS.has(r.action));
  const seen = new Set();
  const actions = mayDo.filter((r) => (seen.has(r.action) ? false : seen.add(r.action)));
  const formSlot = h('div.form-slot');
  const reload = (error, ok, cancelled) => {
    if (cancelled) { clear(formSlot); return; }
    if (error) flash(error, 'error');
    ticket(main, id).then(() => { if (ok) flash(ok, 'ok'); });
  };
  const household = t.household ? t.household.replace('automerge:', '') : null;
  const events = t.events.map((e) => h('tr', { class: 'v-' + (e.verdict?.outcome || 'pending') },
    h('td', label(e.action)),
    h('td', e.verdict ? badge(e.verdict.outcome, 'v-' + e.verdict.outcome) : badge('pending', 'v-pending'),
      e.verdict && e.verdict.outcome !== 'accepted' ? h('div.small', e.verdict.reason) : null),
    h('td', e.by),
    h('td.mono', e.device),
    h('td', fmtTime(e.at)),
    h('td', e.verdict ? fmtTime(e.verdict.at) : '—'),
    h('td.small', describe(e.data))));
  const photos = (t.attachments || []).filter((a) => a.mime.startsWith('image/'));
  const facts = [
    ['Kind', label(t.kind)], ['Status', statusBadge(t.status)], ['Location', t.location],
    ['Household', household ? h('a', { href: '#/household/' + household }, 'household file') : 'public area'],
    t.caller ? ['来电人 Caller', h('span', { 'data-testid': 'caller' }, [t.caller.name, t.caller.phone].filter(Boolean).join(' · '),
      t.caller.masked ? h('span.muted', ' (号码已隐藏 number hidden)') : null, ' ',
      t.caller.read_back ? badge('已复述确认 read back', 'v-accepted') : badge('未复述 not read back', 'v-rejected'))] : null,
    ['Assignee', p.assignee || '—'], ['Department', p.department ? label(p.department) : '—'],
    ['Category', p.category || '—'], ['Urgency', p.urgency || '—'], ['Paid', p.paid ? 'yes' : 'no'],
    ['Received', fmtTime(t.received_at)], ['Due', fmtTime(p.completion_due)],
    p.charge ? ['Charge', fen(p.charge) + (outstanding(t) ? ` (outstanding ${fen(outstanding(t))})` : '')] : null,
    p.result ? ['Result', p.result] : null,
    p.end_reason ? ['Reason', p.end_reason] : null,
    p.satisfaction ? ['Satisfaction', label(p.satisfaction)] : null,
  ].filter(Boolean);
  clear(main,
    backLink('#/register', 'Register'),
    h('div.page-head',
      h('h1', t.serial ? h('span.serial', { 'data-testid': 'serial' }, t.serial) : null, ' ', t.title),
      h('div', flagBadges(t.flags), ' ',
        ORDER_KINDS.includes(t.kind) ? h('a.button', { href: withQuery('/orders/' + t.id + '/print'), target: '_blank' }, 'Print order') : null)),
    t.status === 'VOIDED' ? h('p.void-banner', 'VOID 作废 — ', p.end_reason || '') : null,
    h('div.grid2',
      h('section.card', h('h2', 'Details'), h('dl.facts', facts.map(([k, v]) => [h('dt', k), h('dd', v)])),
        t.description ? h('p.description', t.description) : null),
      h('section.card', h('h2', 'Actions'),
        actions.length
          ? h('div.action-buttons', actions.map((r) => h('button', { type: 'button', dataset: { action: r.action }, on: { click: () => { clear(formSlot, actionForm(t, r, lc, reload)); formSlot.querySelector('input,select,textarea,button')?.focus(); } } }, label(r.action))))
          : h('p.muted', 'Nothing your role may do in this state.'),
        formSlot,
        h('form.note-form', {
          on: {
            submit: async (ev) => {
              ev.preventDefault();
              const text = ev.target.elements.text.value.trim();
              if (!text) return;
              try {
                await api(`/api/v1/tickets/${t.id}/events`, { method: 'POST', body: { action: 'check', data: { comments: text }, heads: t.heads } });
                reload(null, 'checked');
              } catch (e) { flash(e.message); }
            },
          },
        }, ['supervisor', 'manager'].includes(s.role) ? [field('Daily check mark with remarks', h('textarea', { name: 'text', rows: 2 })), h('button', { type: 'submit' }, 'Check 日检')] : null))),
    h('section.card', h('h2', 'Timeline'),
      table(['Action', 'Verdict', 'Who', 'Device', 'Device time', 'Relay time', 'Data'], events, { caption: 'Every event, in document order' })),
    h('div.grid2',
      h('section.card', h('h2', 'Notes'), (t.notes || []).length
        ? h('ul.notes', t.notes.map((n) => h('li', h('div.small.muted', `${n.by} · ${n.device} · ${fmtTime(n.at)}`), n.text)))
        : h('p.muted', 'No notes.')),
      h('section.card', h('h2', 'Photos'), photos.length
        ? h('div.photos', photos.map((a) => h('figure', h('img', { src: withQuery('/api/v1/blobs/' + a.sha256), alt: a.caption || 'photo', loading: 'lazy' }), h('figcaption', `${a.caption} · ${a.by}`))))
        : h('p.muted', 'No photos.'))),
    (p.review || []).length ? h('section.card', h('h2', 'Review items'), table(['Event', 'Outcome', 'Rule', 'Reason', 'Resolution'],
      p.review.map((r) => h('tr', h('td', `${r.event.action} by ${r.event.by}`), h('td', r.outcome), h('td', r.rule), h('td', r.reason),
        h('td', r.resolution ? `${r.resolution.action} by ${r.resolution.by}: ${r.resolution.reason}` : h('a', { href: '#/review' }, 'open in the review queue')))))) : null);
}

function describe(d = {}) {
  return Object.entries(d)
    .filter(([, v]) => v !== null && v !== undefined && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => `${label(k)}: ${k.endsWith('_fen') ? fen(v) : Array.isArray(v) ? v.map((x) => (typeof x === 'object' ? x.name || JSON.stringify(x) : x)).join(', ') : v}`)
    .join('; ');
}

// ------------------------------------------------------------ households

export async function households(main) {
  const q = h('input', { type: 'search', name: 'q', placeholder: 'unit or building', autofocus: true });
  const body = h('div');
  const run = async () => {
    try {
      const r = await api('/api/v1/households', { query: { q: q.value.trim() } });
      clear(body, table(['Unit', 'Building', ''], r.households.map((hh) =>
        h('tr', h('td', h('a', { href: '#/household/' + hh.id }, hh.unit)), h('td', hh.building), h('td', hh.private ? 'public + private file' : 'public file'))), { empty: 'No household matches.' }));
    } catch (e) { clear(body, h('p.form-error', e.message)); }
  };
  q.addEventListener('input', run);
  clear(main, backLink('#/register', 'Register'), h('h1', 'Households 一户一档'),
    h('form.filters', { on: { submit: (ev) => { ev.preventDefault(); run(); } } }, field('Search', q)), body);
  q.focus();
  await run();
}

export async function household(main, id) {
  const r = await api('/api/v1/households/' + encodeURIComponent(id));
  const mayRecord = creatableKinds(await lifecycle()).length > 0;
  const pub = r.public;
  const priv = r.private;
  clear(main,
    backLink('#/households', 'Households'),
    h('h1', 'Household ', pub.unit, h('small.muted', ' building ' + pub.building)),
    h('div.grid2',
      h('section.card', h('h2', 'Public file'), r.public_visible
        ? [h('h3', 'Residents'), table(['Name', 'Relation'], pub.residents.map((x) => h('tr', h('td', x.name), h('td', x.relation))), { empty: 'None recorded.' }),
          h('h3', 'Access notes'), h('p', pub.access_notes || '—'),
          h('h3', 'Equipment'), table(['Item', 'Notes'], pub.equipment.map((x) => h('tr', h('td', x.name), h('td', x.notes))), { empty: 'None recorded.' })]
        : h('p.muted', 'Your role does not see the public file (residents, access notes, equipment).')),
      h('section.card', h('h2', 'Private file'), r.private_visible
        ? [h('h3', 'Contacts'), table(['Name', 'Phone'], priv.contacts.map((c) => h('tr', h('td', c.name), h('td', c.phone))), { empty: 'None.' }),
          h('h3', 'Fee arrears'), table(['Item', 'Period', 'Amount'], priv.arrears.map((a) => h('tr', h('td', a.item), h('td', a.period), h('td.num', fen(a.amount)))), { empty: 'No arrears.' })]
        : h('p.muted', 'Your role does not see the private file (phones, arrears).'))),
    h('section.card', h('h2', 'Every ticket of this household'),
      table(['Serial', 'Kind', 'Status', 'Title', 'Assignee', 'Received'], r.tickets.map((t) =>
        h('tr', h('td', ticketLink(t)), h('td', label(t.kind)), h('td', statusBadge(t.status)), h('td', t.title), h('td', t.assignee || ''), h('td', fmtTime(t.received_at)))),
      { empty: 'No tickets yet.' })),
    mayRecord ? h('p', h('a.button', { href: '#/new' }, 'Record a contact for a household')) : null);
}

// ------------------------------------------------------------ review queue

export async function review(main) {
  const showAll = new URLSearchParams(location.hash.split('?')[1] || '').get('all') === '1';
  const r = await api('/api/v1/review-queue', { query: { open: showAll ? null : true } });
  const rows = r.items.map((item) => {
    const slot = h('div.resolve');
    const resolve = (action) => {
      const reason = h('input', { name: 'reason', required: true, placeholder: 'why' });
      const err = errorBox();
      clear(slot, h('form.inline', {
        on: {
          submit: async (ev) => {
            ev.preventDefault();
            try {
              const t = await api('/api/v1/tickets/' + item.doc_id);
              const res = await api(`/api/v1/tickets/${item.doc_id}/events`, { method: 'POST', body: { action, data: { target: item.event_id, reason: reason.value.trim() }, heads: t.heads } });
              if (res.verdict?.outcome !== 'accepted') throw new Error(`${action}: ${res.verdict?.outcome}: ${res.verdict?.reason}`);
              flash(`${label(action)}: accepted`, 'ok');
              review(main);
            } catch (e) { showError(err, e); }
          },
        },
      }, err, field(label(action) + ' — reason', reason), h('button.primary', { type: 'submit' }, 'Confirm ' + action), ' ',
      h('button', { type: 'button', on: { click: () => clear(slot) } }, 'Cancel')));
      reason.focus();
    };
    return h('tr', { dataset: { id: item.id } },
      h('td', h('a', { href: '#/ticket/' + item.doc_id }, item.doc_id.slice(0, 8))),
      h('td', badge(item.kind, 'v-' + item.kind)),
      h('td', label(item.action || '')),
      h('td', item.rule, h('div.small', item.reason)),
      h('td', item.username, h('div.small.mono', item.device_id)),
      h('td', fmtTime(item.authored_at)),
      h('td', fmtTime(item.received_at)),
      h('td', item.resolved_at
        ? `${item.resolution || 'resolved'} by ${item.resolved_by || ''} ${fmtTime(item.resolved_at)}`
        : [item.event_id ? [h('button', { type: 'button', on: { click: () => resolve('override') } }, 'Override'), ' '] : null,
          item.event_id ? h('button', { type: 'button', on: { click: () => resolve('dismiss') } }, 'Dismiss') : h('span.muted', 'hard rejection (change not merged)'), slot]));
  });
  clear(main, backLink('#/register', 'Register'),
    h('div.page-head', h('h1', 'Review queue 待审'), h('a', { href: showAll ? '#/review' : '#/review?all=1' }, showAll ? 'Show open items only' : 'Show resolved items too')),
    h('p.muted', 'Conflicts (allowed when made, but the ticket had moved on) and rejections. Override applies the event as if accepted; dismiss closes the item. Nothing recorded is lost.'),
    table(['Ticket', 'Kind', 'Action', 'Rule and reason', 'Who', 'Device time', 'Relay time', 'Decision'], rows, { empty: 'Nothing awaits review.' }));
}

// ------------------------------------------------------------ sync log

const SYNC_FILTERS = ['user', 'device', 'document', 'verdict', 'from', 'to'];

export async function syncLog(main) {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const inputs = Object.fromEntries(SYNC_FILTERS.map((k) => [k,
    k === 'verdict' ? select(k, ['accepted', 'conflict', 'rejected', 'hard_rejected'], { value: q.get(k) || '', blank: 'any' })
      : h('input', { name: k, type: k === 'from' || k === 'to' ? 'date' : 'text', value: q.get(k) || '', size: 12 })]));
  const query = Object.fromEntries(SYNC_FILTERS.map((k) => [k, q.get(k) || '']));
  const r = await api('/api/v1/sync-log', { query });
  const sCols = ['id', 'username', 'device_id', 'peer_id', 'remote_addr', 'started_at', 'ended_at', 'end_reason', 'documents', 'changes_received', 'accepted', 'conflict', 'rejected', 'hard_rejected', 'bytes_in', 'bytes_out'];
  const cCols = ['received_at', 'authored_at', 'doc_id', 'username', 'device_id', 'session_id', 'outcome', 'rule', 'reason', 'bytes', 'hash', 'actor'];
  const stamp = new Date().toISOString().slice(0, 19).replaceAll(':', '');
  clear(main, backLink('#/register', 'Register'), h('h1', 'Sync log 同步日志'),
    h('form.filters', {
      on: {
        submit: (ev) => {
          ev.preventDefault();
          const p = new URLSearchParams();
          for (const k of SYNC_FILTERS) if (inputs[k].value) p.set(k, inputs[k].value);
          location.hash = '#/sync-log' + (p.toString() ? '?' + p : '');
        },
      },
    }, SYNC_FILTERS.map((k) => field(label(k), inputs[k])), h('div.field.actions', h('button.primary', { type: 'submit' }, 'Filter'), ' ', h('a', { href: '#/sync-log' }, 'Clear'))),
    h('section.card', h('div.page-head', h('h2', `Sessions (${r.sessions.length})`),
      h('button', { type: 'button', on: { click: () => download(`sync-sessions-${stamp}.csv`, toCsv(sCols, r.sessions.map((x) => sCols.map((c) => x[c])))) } }, 'Export CSV')),
    table(['Session', 'User', 'Device', 'Started', 'Ended', 'Why', 'Docs', 'Changes', 'Accepted', 'Conflict', 'Rejected', 'Hard-rejected'],
      r.sessions.map((x) => h('tr', h('td', x.id), h('td', x.username), h('td.mono', x.device_id), h('td', fmtTime(x.started_at)), h('td', fmtTime(x.ended_at)), h('td', x.end_reason || ''),
        h('td.num', x.documents), h('td.num', x.changes_received), h('td.num', x.accepted), h('td.num', x.conflict), h('td.num', x.rejected), h('td.num', x.hard_rejected))), { empty: 'No sessions.' })),
    h('section.card', h('div.page-head', h('h2', `Changes (${r.changes.length})`),
      h('button', { type: 'button', on: { click: () => download(`sync-changes-${stamp}.csv`, toCsv(cCols, r.changes.map((x) => cCols.map((c) => x[c])))) } }, 'Export CSV')),
    table(['Relay time', 'Device time', 'Document', 'User', 'Device', 'Session', 'Verdict', 'Rule / reason', 'Bytes'],
      r.changes.map((x) => h('tr', h('td', fmtTime(x.received_at)), h('td', fmtTime(x.authored_at)), h('td', h('a', { href: '#/ticket/' + x.doc_id }, x.doc_id.slice(0, 8))),
        h('td', x.username), h('td.mono', x.device_id), h('td', x.session_id ?? ''), h('td', badge(x.outcome, 'v-' + x.outcome)), h('td.small', [x.rule, x.reason].filter(Boolean).join(': ')), h('td.num', x.bytes))), { empty: 'No changes.' })));
}

// ------------------------------------------------------------ devices

export async function devices(main) {
  const s = session.get();
  const r = await api('/api/v1/devices');
  clear(main, backLink('#/register', 'Register'), h('h1', 'Devices 设备'),
    table(['Device', 'User', 'Label', 'Enrolled', 'Last seen', 'State', ''],
      r.devices.map((d) => h('tr', h('td.mono', d.device_id), h('td', d.username), h('td', d.label), h('td', fmtTime(d.created_at)), h('td', fmtTime(d.last_seen_at)),
        h('td', d.revoked_at ? badge('revoked ' + fmtTime(d.revoked_at), 'v-rejected') : badge('active', 'v-accepted')),
        h('td', s.role === 'manager' && !d.revoked_at ? h('button', {
          type: 'button',
          on: {
            click: async () => {
              if (!confirm(`Revoke ${d.device_id}? It will not sync again.`)) return;
              try { await api(`/api/v1/devices/${encodeURIComponent(d.device_id)}/revoke`, { method: 'POST' }); devices(main); } catch (e) { flash(e.message); }
            },
          },
        }, 'Revoke') : null))), { empty: 'No devices.' }),
    enrolForm());
}

/** Enrol a phone with the field app: a one-time code (10 minutes) as a QR code and as text. */
function enrolForm() {
  const user = h('input#enrol-user', { required: true, placeholder: 'eng1', autocomplete: 'off' });
  const out = h('div#enrolment');
  const form = h('form.card', {
    on: {
      submit: async (e) => {
        e.preventDefault();
        try {
          const r = await api('/api/v1/enrolments', { method: 'POST', body: { username: user.value.trim(), origin: location.origin } });
          const img = h('img.qr', { alt: 'QR code 二维码', src: 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(r.qr_svg) });
          clear(out,
            h('p', `Scan with ${r.username}'s phone camera, or type the code in the field app (${location.origin}/app/). 用手机扫码，或在外勤应用中输入登记码。`),
            img,
            h('p.mono.big', { dataset: { link: r.link } }, h('strong#enrol-code', r.code)),
            h('p.small.muted', `One use, until ${fmtTime(r.expires_at)}. 一次有效，过期作废。`));
        } catch (err) { flash(err.message); }
      },
    },
  }, h('h2', 'Enrol a phone 登记手机'),
  h('label', { for: 'enrol-user' }, 'User 用户'), user,
  h('button', { type: 'submit' }, 'Make an enrolment code 生成登记码'), out);
  return form;
}

