// Reports: the list, one report as of a cut-off (tables, charts, CSV).

import { api, h, clear, fmtTime, field, table, errorBox, showError, withQuery, backLink, localInput, label, zonedIso, timeZone } from './util.js';

/** Chinese first, English beside it (smaller). */
function both(zh, en) {
  return zh && zh !== en ? [zh, ' ', h('span.en', en)] : en;
}

export async function list(main) {
  const r = await api('/api/v1/reports');
  clear(main, backLink('#/register', 'Register'), h('h1', '报表 ', h('span.en', 'Reports')),
    h('p.muted', '每份报表按截止时间从事件记录计算，可原样重现；截止后才到达的事件单独列出。',
      h('br'), 'Every report is computed from the event log as of a cut-off, so a report printed earlier can be reproduced exactly; events that arrived after the cut-off are listed separately.'),
    h('p.muted', `时区 Time zone: ${r.time_zone}`),
    h('ul.report-list', r.reports.map((x) => h('li', x.allowed
      ? h('a', { href: '#/report/' + x.name }, both(x.title_zh, x.title))
      : h('span.muted', both(x.title_zh, x.title), ' (not for your role)'),
    h('div.small.muted', x.period.zh, ' · ', x.period.en)))));
}

/** An RFC 3339 time from a datetime-local value in the property's zone, or nothing (the relay's default). */
function iso(v) {
  return v ? zonedIso(v) : null;
}

export async function report(main, name) {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const asOf = h('input', { type: 'datetime-local', step: 1, name: 'as_of', value: q.get('as_of') || '' });
  const from = h('input', { type: 'datetime-local', step: 1, name: 'from', value: q.get('from') || '' });
  const err = errorBox();
  const out = h('div#report-body');
  const query = () => ({ as_of: iso(asOf.value), from: iso(from.value) });
  const csv = h('a.button', { href: '#', download: '' }, 'Export CSV');
  const xlsx = h('a.button', { href: '#', download: '' }, 'Export XLSX');
  const run = async () => {
    showError(err, null);
    try {
      const r = await api('/api/v1/reports/' + encodeURIComponent(name), { query: query() });
      // Pin the figures to the cut-off they were computed at: the CSV is the same report.
      const pinned = { as_of: r.as_of, from: r.from };
      csv.href = withQuery('/api/v1/reports/' + encodeURIComponent(name), { ...pinned, format: 'csv' });
      xlsx.href = withQuery('/api/v1/reports/' + encodeURIComponent(name), { ...pinned, format: 'xlsx' });
      if (!from.value) from.value = localInput(new Date(r.from), true);
      render(out, r);
    } catch (e) { showError(err, e); clear(out); }
  };
  clear(main, backLink('#/reports', 'Reports'),
    h('form.filters.noprint', {
      on: {
        submit: (ev) => {
          ev.preventDefault();
          const p = new URLSearchParams();
          if (asOf.value) p.set('as_of', asOf.value);
          if (from.value) p.set('from', from.value);
          const target = `#/report/${name}${p.toString() ? '?' + p : ''}`;
          if (location.hash === target) run(); else location.hash = target;
        },
      },
    }, field('期间起 Period from', from, `空：当天零点（周报为本周一零点），${timeZone()}。Empty: start of today (of this week, Monday, for weekly reports).`),
    field('截止 As of (cut-off)', asOf, '空：现在。Empty: now.'),
    h('div.field.actions', h('button.primary', { type: 'submit' }, 'Compute'), ' ', csv, ' ', xlsx, ' ', h('button', { type: 'button', on: { click: () => window.print() } }, 'Print'))),
    err, out);
  await run();
}

function cell(v, key) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return v ? '✔' : '✘';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v)) return fmtTime(v);
  if (key === 'id') return h('a', { href: '#/ticket/' + v }, String(v).slice(0, 8));
  return String(v);
}

function section(t) {
  return h('section.card.report-table', h('h2', both(t.title_zh, t.title)),
    table(t.columns.map((c) => both(c.zh, c.label)), t.rows.map((row) => h('tr', row.map((v, i) => h(typeof v === 'number' ? 'td.num' : 'td', cell(v, t.columns[i].key))))),
      { empty: '无 None.' }));
}

function render(out, r) {
  const late = r.changes_since || [];
  clear(out,
    h('h1', both(r.title_zh, r.title)),
    h('p.period', `期间 Period ${fmtTime(r.from)} – ${fmtTime(r.as_of)} (${r.time_zone}) · 截止 as of ${fmtTime(r.as_of)}`),
    h('p.muted.period-meaning', r.period.zh, h('br'), r.period.en),
    h('dl.stats', r.summary.map((s) => h('div.stat', h('dt', both(s.zh, s.label)), h('dd', cell(s.value))))),
    h('div.charts', r.charts.map(chart)),
    r.tables.map(section),
    late.some((t) => t.rows.length)
      ? h('section.changes-since', h('h2', '截止后到达（不计入以上数字） ', h('span.en', 'Changes since the cut-off (not in the figures above)')), late.map(section))
      : h('p.muted', '截止后没有到达的记录。 Nothing recorded before the cut-off arrived after it.'));
}

// ------------------------------------------------------------ charts (inline SVG)

const NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A bar chart: grouped bars, or stacked when `c.stacked`. */
export function chart(c) {
  const W = 560, H = 260, left = 44, right = 12, top = 16, bottom = 56;
  const n = c.labels.length;
  const totals = c.labels.map((_, i) => (c.stacked
    ? c.series.reduce((a, se) => a + (se.values[i] || 0), 0)
    : Math.max(0, ...c.series.map((se) => se.values[i] || 0))));
  const max = Math.max(1, ...totals);
  const step = niceStep(max);
  const top_ = Math.ceil(max / step) * step;
  const y = (v) => top + (H - top - bottom) * (1 - v / top_);
  const band = (W - left - right) / Math.max(1, n);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${c.title}: ${c.labels.map((l, i) => `${l} ${totals[i]}`).join(', ')}`, class: 'chart' });
  svg.append(s('title', {}, c.title));
  for (let v = 0; v <= top_; v += step) {
    svg.append(s('line', { x1: left, x2: W - right, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(s('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, fmtNum(v)));
  }
  c.labels.forEach((lab, i) => {
    const x0 = left + i * band;
    if (c.stacked) {
      let acc = 0;
      c.series.forEach((se, k) => {
        const v = se.values[i] || 0;
        if (v > 0) {
          svg.append(s('rect', { x: x0 + band * 0.15, width: band * 0.7, y: y(acc + v), height: y(acc) - y(acc + v), class: 'bar s' + (k % 6) },
            s('title', {}, `${lab} · ${label(se.name)}: ${fmtNum(v)} ${c.unit}`)));
        }
        acc += v;
      });
      if (acc > 0) svg.append(s('text', { x: x0 + band / 2, y: y(acc) - 4, 'text-anchor': 'middle', class: 'value' }, fmtNum(acc)));
    } else {
      const w = (band * 0.7) / Math.max(1, c.series.length);
      c.series.forEach((se, k) => {
        const v = se.values[i] || 0;
        const x = x0 + band * 0.15 + k * w;
        svg.append(s('rect', { x, width: w, y: y(v), height: y(0) - y(v), class: 'bar s' + (k % 6) }, s('title', {}, `${lab}: ${fmtNum(v)} ${c.unit}`)));
        svg.append(s('text', { x: x + w / 2, y: y(v) - 4, 'text-anchor': 'middle', class: 'value' }, fmtNum(v)));
      });
    }
    svg.append(s('text', { x: x0 + band / 2, y: H - bottom + 18, 'text-anchor': 'middle', class: 'axis' }, label(lab)));
  });
  svg.append(s('line', { x1: left, x2: W - right, y1: y(0), y2: y(0), class: 'baseline' }));
  const legend = c.series.length > 1 || c.stacked
    ? h('ul.legend', c.series.map((se, k) => h('li', h('span.swatch.s' + (k % 6)), label(se.name))))
    : null;
  return h('figure.chart-box', h('figcaption', c.title, h('span.muted', ` (${c.unit})`)), svg, legend);
}

function niceStep(max) {
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 5, 10]) if (raw <= m * p) return Math.max(m * p, max < 5 ? 1 : 0);
  return 10 * p;
}

function fmtNum(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
