// A property on day one (issue 14): setting the property up, the household
// register (一户一档: list, file, edit with its history) and imports from a
// spreadsheet with a preview and a progress bar. Chinese first, English
// beside it.

import {
  api, session, h, clear, fmtTime, fen, flash, field, select, table, errorBox, showError,
  backLink, statusBadge, label, ApiError, withQuery,
} from './util.js';

/** Chinese first, English beside it (smaller). */
export function both(zh, en) {
  return [zh, ' ', h('span.en', en)];
}

/** Who keeps household files (create, edit, import): the relay's KEEPERS. */
export const KEEPERS = ['front_desk', 'supervisor', 'manager'];
/** Who reads them (phones included: the private part): the relay's READERS. */
export const READERS = ['front_desk', 'supervisor', 'manager', 'cashier'];
/** Who reads a household's whole fee ledger. */
export const LEDGER = ['cashier', 'supervisor', 'manager'];

export function role() {
  return session.get()?.role || '';
}

/** Sends raw bytes (a spreadsheet); answers {status, data} without throwing on 4xx. */
export async function postBytes(path, bytes, contentType) {
  const headers = { Accept: 'application/json', 'Content-Type': contentType || 'application/octet-stream' };
  const csrf = session.get()?.csrf;
  if (csrf) headers['X-CSRF-Token'] = csrf;
  let r;
  try {
    r = await fetch(path, { method: 'POST', headers, credentials: 'same-origin', body: bytes });
  } catch (e) {
    throw new ApiError(0, 'network', 'The relay cannot be reached: ' + e.message);
  }
  let data = null;
  try { data = await r.json(); } catch { /* not JSON */ }
  if (r.status === 401) {
    session.clear();
    location.hash = '#/login';
  }
  return { status: r.status, data };
}

/** Hundredths from a decimal with at most two places ("89.5" → 8950), exactly; null when not one. */
export function hundredths(s) {
  const m = String(s ?? '').trim().match(/^(\d{1,12})(?:\.(\d{0,2}))?$/);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0'));
}

/** m² from hundredths: 8950 → "89.50". */
export function area(centi) {
  return `${Math.floor(centi / 100)}.${String(centi % 100).padStart(2, '0')}`;
}

const OCCUPANCY = { owner: '业主 owner', tenant: '租户 tenant' };

// ------------------------------------------------------------ property set-up

/** Units from CSV text `building,unit,area_m2` (a header line is skipped); every bad line is named. */
function parseUnits(text) {
  const units = [];
  const errors = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const cells = line.split(',').map((c) => c.trim());
    if (!line.trim()) return;
    if (i === 0 && hundredths(cells[2]) === null) return; // the header
    const [building, code, a] = cells;
    const centi = hundredths(a);
    if (!building || !code) errors.push(`第 ${i + 1} 行 line ${i + 1}: 需要楼栋和单元 building and unit are required`);
    else if (!centi) errors.push(`第 ${i + 1} 行 line ${i + 1}, area_m2: ${JSON.stringify(a ?? '')} 不是面积 is not an area in m² (at most two decimals)`);
    else units.push({ code, building, area_centi_m2: centi });
  });
  return { units, errors };
}

export async function property(main) {
  const r = await api('/api/v1/property');
  const p = r.property;
  if (p) {
    clear(main, backLink('#/register', 'Register'),
      h('h1', both('物业', 'Property'), ' ', p.name),
      h('p', `时区 Time zone: ${p.time_zone}`),
      table([both('楼栋', 'Building'), both('名称', 'Name'), both('单元数', 'Units'), both('面积 m²', 'Floor area m²')],
        p.buildings.map((b) => h('tr', h('td', b.code), h('td', b.name), h('td.num', b.units), h('td.num', area(b.area_centi_m2)))),
        { empty: '没有楼栋 No buildings.' }),
      KEEPERS.includes(role()) ? h('p', h('a.button', { href: '#/import' }, both('导入住户', 'Import households')), ' ',
        h('a.button', { href: '#/files' }, both('一户一档', 'Household files'))) : null);
    return;
  }
  if (role() !== 'manager') {
    clear(main, h('h1', both('物业尚未设置', 'No property yet')),
      h('p.muted', '请物业经理登录并设置物业。 The manager sets the property up.'));
    return;
  }
  const err = errorBox();
  const name = h('input', { name: 'name', required: true, maxlength: 100, placeholder: '例如 海景花园' });
  const tz = h('input', { name: 'time_zone', value: 'Asia/Shanghai', required: true });
  const buildings = h('textarea', { name: 'buildings', rows: 3, placeholder: 'T1,1号楼\nT2,2号楼' });
  const units = h('textarea', { name: 'units', rows: 8, placeholder: 'building,unit,area_m2\nT1,T1-101,89.50' });
  const file = h('input', { type: 'file', name: 'units_file', accept: '.csv,text/csv' });
  file.addEventListener('change', async () => {
    if (file.files[0]) units.value = (await file.files[0].text()).replace(/^\ufeff/, '');
  });
  const submit = h('button.primary', { type: 'submit' }, '设置物业 Set up the property');
  const form = h('form.card', {
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        showError(err, null);
        const parsed = parseUnits(units.value);
        if (parsed.errors.length) { showError(err, new Error(parsed.errors.join('; '))); return; }
        if (!parsed.units.length) { showError(err, new Error('至少需要一个单元 At least one unit is required.')); return; }
        const named = new Map();
        for (const line of buildings.value.split(/\r?\n/)) {
          const [code, n] = line.split(',').map((c) => c.trim());
          if (code) named.set(code, n || code);
        }
        for (const u of parsed.units) if (!named.has(u.building)) named.set(u.building, u.building);
        submit.disabled = true;
        try {
          await api('/api/v1/property', {
            method: 'POST',
            body: {
              name: name.value.trim(), time_zone: tz.value.trim() || null,
              buildings: [...named].map(([code, n]) => ({ code, name: n })), units: parsed.units,
            },
          });
          flash(`物业已设置：${parsed.units.length} 个单元 The property is set up: ${parsed.units.length} units.`, 'ok');
          await property(main);
        } catch (e) {
          showError(err, e);
        } finally {
          submit.disabled = false;
        }
      },
    },
  },
  h('h1', both('设置物业', 'Set up the property')),
  h('p.muted', '本中继还没有物业。填写名称、时区、楼栋和单元（含建筑面积），或上传单元 CSV（building,unit,area_m2）。',
    h('br'), 'This relay holds no property yet: enter its name, time zone, buildings and units with their floor area, or upload a units CSV (building,unit,area_m2).'),
  err,
  h('div.grid2',
    h('div', field('物业名称 Property name', name), field('时区 Time zone', tz, 'IANA 名称 IANA name; 默认 default Asia/Shanghai'),
      field('楼栋 Buildings', buildings, '每行：代码,名称 One per line: code,name (optional: the units name them)')),
    h('div', field('单元 Units', units, '每行：楼栋,单元,面积m² One per line: building,unit,area_m2'),
      field('上传单元 CSV Upload units CSV', file))),
  h('div.actions', submit));
  clear(main, form);
  name.focus();
}

// ------------------------------------------------------------ household files

export async function files(main) {
  const q = h('input', { type: 'search', name: 'q', placeholder: '电话、单元、姓名或车牌 phone, unit, name or plate' });
  const body = h('div');
  let seq = 0;
  const run = async () => {
    const mine = ++seq;
    try {
      const r = await api('/api/v1/household-files', { query: { q: q.value.trim() } });
      if (mine !== seq) return;
      clear(body, h('p.muted', `${r.households.length} 户 households`),
        table([both('单元', 'Unit'), both('楼栋', 'Building'), both('类型', 'Occupancy'), both('住户', 'Residents'), both('入住', 'Moved in'), both('迁出', 'Moved out'), both('版本', 'Version')],
          r.households.slice(0, 500).map((x) => h('tr', { dataset: { id: x.id } },
            h('td', h('a', { href: '#/file/' + x.id }, x.unit)), h('td', x.building), h('td', OCCUPANCY[x.occupancy] || x.occupancy),
            h('td', x.residents.map((p) => p.name).join('、')), h('td', x.move_in), h('td', x.move_out || ''), h('td.num', x.version))),
          { empty: '没有符合的住户。 No household matches.' }));
    } catch (e) { clear(body, h('p.form-error', e.message)); }
  };
  q.addEventListener('input', run);
  const keeper = KEEPERS.includes(role());
  clear(main, backLink('#/register', 'Register'),
    h('div.page-head', h('h1', both('一户一档', 'Household files')),
      keeper ? h('p', h('a.button', { href: '#/files/new' }, both('新建住户', 'New household')), ' ', h('a.button', { href: '#/import' }, both('导入', 'Import'))) : null),
    h('form.filters', { on: { submit: (ev) => { ev.preventDefault(); run(); } } }, field('查找 Find', q)), body);
  q.focus();
  await run();
}

/** The household form: fills from `x` (a file) and reads back a HouseholdInput. */
function householdForm(x = {}) {
  const v = (k) => x[k] ?? '';
  const unit = h('input', { name: 'unit', required: true, value: v('unit') });
  const occupancy = select('occupancy', [['owner', '业主 owner'], ['tenant', '租户 tenant']], { value: x.occupancy || 'owner' });
  const rows = h('tbody');
  const addResident = (p = {}) => {
    const tr = h('tr',
      h('td', h('input', { name: 'r_name', value: p.name || '', 'aria-label': '姓名 Name', required: true })),
      h('td', h('input', { name: 'r_relation', value: p.relation || '', 'aria-label': '关系 Relation', placeholder: '业主、家属… owner, family…' })),
      h('td', h('input', { name: 'r_phone', value: p.phone || '', 'aria-label': '电话 Phone', inputmode: 'tel' })),
      h('td', h('button.link', { type: 'button', on: { click: () => tr.remove() } }, '删除 remove')));
    rows.append(tr);
  };
  (x.residents?.length ? x.residents : [{}]).forEach(addResident);
  const moveIn = h('input', { type: 'date', name: 'move_in', required: true, value: v('move_in') });
  const moveOut = h('input', { type: 'date', name: 'move_out', value: v('move_out') });
  const vehicles = h('input', { name: 'vehicles', value: (x.vehicles || []).join('; '), placeholder: '沪A12345; 沪B…' });
  const parking = h('input', { name: 'parking', value: (x.parking || []).join('; '), placeholder: 'P-7' });
  const notes = h('textarea', { name: 'notes', rows: 3, maxlength: 2000 }, v('notes'));
  const list = (s) => s.split(/[;；]/).map((t) => t.trim()).filter(Boolean);
  return {
    el: h('div',
      h('div.grid2',
        h('div', field('单元 Unit', unit), field('类型 Occupancy', occupancy), field('入住日期 Moved in', moveIn), field('迁出日期 Moved out', moveOut)),
        h('div', field('车牌 Vehicles', vehicles, '用 ; 分隔 separated by ;'), field('车位 Parking spaces', parking, '用 ; 分隔 separated by ;'), field('备注 Notes', notes))),
      h('h3', both('住户', 'Residents')),
      h('div.table-wrap', h('table', h('thead', h('tr', h('th', '姓名 Name'), h('th', '关系 Relation'), h('th', '电话 Phone（私密 private）'), h('th', ''))), rows)),
      h('p', h('button', { type: 'button', on: { click: () => addResident() } }, '添加住户 Add a resident'))),
    read: () => ({
      unit: unit.value.trim(), occupancy: occupancy.value,
      residents: [...rows.querySelectorAll('tr')].map((tr) => ({
        name: tr.querySelector('[name=r_name]').value.trim(),
        relation: tr.querySelector('[name=r_relation]').value.trim(),
        phone: tr.querySelector('[name=r_phone]').value.trim(),
      })),
      move_in: moveIn.value, move_out: moveOut.value || null,
      vehicles: list(vehicles.value), parking: list(parking.value), notes: notes.value,
    }),
    focus: () => unit.focus(),
  };
}

export async function newFile(main) {
  const f = householdForm();
  const err = errorBox();
  const submit = h('button.primary', { type: 'submit' }, '建档 Create the file');
  clear(main, backLink('#/files', '一户一档 Household files'),
    h('form.card', {
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          showError(err, null);
          submit.disabled = true;
          try {
            const r = await api('/api/v1/household-files', { method: 'POST', body: f.read() });
            location.hash = '#/file/' + r.household.id;
          } catch (e) { showError(err, e); } finally { submit.disabled = false; }
        },
      },
    }, h('h1', both('新建住户档案', 'New household file')), err, f.el, h('div.actions', submit)));
  f.focus();
}

/** What changed between two versions of a file, field by field. */
function changes(before, after) {
  if (!before) return h('span.muted', '建档 created');
  const show = (k, v) => {
    if (v === null || v === undefined || v === '') return '—';
    if (k === 'residents') return v.map((p) => [p.name, p.relation, p.phone].filter(Boolean).join(' ')).join('、');
    return Array.isArray(v) ? v.join('; ') : String(v);
  };
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  const diff = keys.filter((k) => JSON.stringify(before[k] ?? null) !== JSON.stringify(after[k] ?? null));
  if (!diff.length) return h('span.muted', '无变化 no change');
  return h('ul.changes', diff.map((k) => h('li', h('strong', label(k)), ': ', h('del', show(k, before[k])), ' → ', h('ins', show(k, after[k])))));
}

export async function file(main, id) {
  const x = await api('/api/v1/household-files/' + encodeURIComponent(id) + '/extract');
  const f = x.household;
  const keeper = KEEPERS.includes(role());
  const editBox = h('div');
  const led = x.ledger || {};
  const edit = () => {
    const form = householdForm(f);
    const err = errorBox();
    const save = h('button.primary', { type: 'submit' }, '保存 Save');
    clear(editBox, h('form.card.edit-form', {
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          showError(err, null);
          save.disabled = true;
          try {
            const r = await api('/api/v1/household-files/' + encodeURIComponent(id), { method: 'PUT', body: { version: f.version, household: form.read() } });
            flash(`已保存，第 ${r.version} 版 Saved as version ${r.version}.`, 'ok');
            await file(main, id);
          } catch (e) {
            showError(err, e.status === 409 && /version/.test(e.message)
              ? new Error('有人在您编辑期间修改了此档案，请刷新后重新编辑。 Someone else edited this file meanwhile: reload it and edit again.')
              : e);
          } finally { save.disabled = false; }
        },
      },
    }, h('h2', both('编辑档案', 'Edit the file'), ` (第 ${f.version} 版 version ${f.version})`), err, form.el,
    h('div.actions', save, h('button', { type: 'button', on: { click: () => clear(editBox) } }, '取消 Cancel'))));
    form.focus();
  };
  const ledger = LEDGER.includes(role()) && led.bills
    ? h('section.card', h('h2', both('物业费', 'Fees')),
      h('dl.facts', h('dt', '欠费 Arrears'), h('dd', { 'data-testid': 'arrears' }, fen(led.arrears_fen)), h('dt', '预存 Credit'), h('dd', fen(led.credit_fen))),
      table(['账单 Bill', '项目 Item', '月份 Period', '金额 Amount', '未付 Outstanding'], led.bills.map((b) =>
        h('tr', h('td', b.number), h('td', b.item), h('td', b.period), h('td.num', fen(b.amount_fen)), h('td.num', fen(b.outstanding_fen)))), { empty: '没有账单 No bills.' }),
      h('p', h('a.button', { href: '#/fees/household/' + id }, role() === 'cashier' ? both('收款', 'Take a payment') : both('费用明细', 'Fee statement'))))
    : h('section.card', h('h2', both('物业费', 'Fees')), h('p', led.in_arrears ? h('strong.bad', '欠费 In arrears') : '无欠费 Not in arrears'));
  // Report 17: printed, or as CSV/XLSX, now or as recorded by a cut-off.
  const printLink = h('a.button', { target: '_blank', rel: 'noopener' }, '打印档案 Print the file');
  const csvLink = h('a.button', { download: '' }, '导出 CSV');
  const xlsxLink = h('a.button', { download: '' }, '导出 XLSX');
  const asOf = h('input', { type: 'datetime-local', step: 1, name: 'extract_as_of', title: '截止 As of (empty: now)' });
  const links = () => {
    const q = asOf.value ? { as_of: asOf.value } : {};
    const extract = '/api/v1/household-files/' + encodeURIComponent(id) + '/extract';
    printLink.href = withQuery('/households/' + encodeURIComponent(id) + '/print', q);
    csvLink.href = withQuery(extract, { ...q, format: 'csv' });
    xlsxLink.href = withQuery(extract, { ...q, format: 'xlsx' });
  };
  asOf.addEventListener('change', links);
  links();
  clear(main, backLink('#/files', '一户一档 Household files'),
    h('div.page-head', h('h1', both('住户档案', 'Household file'), ' ', f.unit, h('small.muted', ` ${f.building} · ${area(f.area_centi_m2)} m² · 第 ${f.version} 版 version ${f.version}`)),
      h('p', keeper ? h('button', { type: 'button', on: { click: edit } }, '编辑 Edit') : null, ' ',
        h('a.button', { href: '#/new' }, '来电登记 Record a contact')),
      h('p.noprint', both('档案摘录', 'File extract'), ' ', asOf, ' ', printLink, ' ', csvLink, ' ', xlsxLink)),
    editBox,
    h('div.grid2',
      h('section.card', h('h2', both('公开档案', 'Public file')),
        h('dl.facts',
          h('dt', '类型 Occupancy'), h('dd', OCCUPANCY[f.occupancy] || f.occupancy),
          h('dt', '入住 Moved in'), h('dd', f.move_in), h('dt', '迁出 Moved out'), h('dd', f.move_out || '—'),
          h('dt', '车牌 Vehicles'), h('dd', (f.vehicles || []).join('; ') || '—'),
          h('dt', '车位 Parking'), h('dd', (f.parking || []).join('; ') || '—'),
          h('dt', '备注 Notes'), h('dd', f.notes || '—')),
        h('h3', both('住户', 'Residents')),
        table(['姓名 Name', '关系 Relation'], f.residents.map((p) => h('tr', h('td', p.name), h('td', p.relation || ''))))),
      READERS.includes(role())
        ? h('section.card', h('h2', both('私密档案', 'Private file')),
          table(['姓名 Name', '电话 Phone'], f.residents.map((p) => h('tr', h('td', p.name), h('td', p.phone || '—')))))
        : h('section.card', h('p.muted', '您的角色看不到私密档案。 Your role does not see the private file.'))),
    ledger,
    h('section.card', h('h2', both('修改记录', 'History of edits')),
      table(['版本 Version', '时间 When', '修改人 Who', '修改内容 Before → after'], x.history.slice().reverse().map((e) =>
        h('tr', h('td.num', e.version), h('td', fmtTime(e.at)), h('td', e.by), h('td', changes(e.before, e.after)))))),
    h('section.card', h('h2', both('本户工单', 'Tickets of this household')),
      table(['编号 Serial', '类型 Kind', '状态 Status', '摘要 Title', '受理 Received'], x.tickets.map((t) =>
        h('tr', h('td', h('a', { href: '#/ticket/' + t.id }, t.serial || t.id.slice(0, 8))), h('td', label(t.kind)), h('td', statusBadge(t.status)), h('td', t.title), h('td', fmtTime(t.received_at)))),
      { empty: '暂无工单 No tickets yet.' })));
}

// ------------------------------------------------------------ import

function formatOf(name) {
  return /\.xlsx$/i.test(name) ? 'xlsx' : 'csv';
}

function rowErrors(errors) {
  return table(['行 Row', '列 Column', '问题 Problem'], errors.map((e) =>
    h('tr', { dataset: { row: e.row } }, h('td.num', e.row), h('td', e.column), h('td', e.message))), { caption: '每个有问题的行 Every bad row' });
}

export async function importPage(main) {
  const input = h('input', { type: 'file', name: 'file', accept: '.csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' });
  const out = h('div#import-result', { 'aria-live': 'polite' });
  const err = errorBox();
  let bytes = null;
  let format = 'csv';
  const previewBtn = h('button.primary', { type: 'submit' }, '预览 Preview');
  const commit = async () => {
    const bar = h('progress', { max: 1, value: 0 });
    const text = h('span.progress-text', '开始 starting…');
    clear(out, h('section.card', h('h2', both('正在导入', 'Importing')), bar, ' ', text));
    const started = await postBytes(`/api/v1/household-files/imports?commit=true&format=${format}`, bytes);
    if (started.status !== 202) {
      showError(err, new Error(started.data?.error?.message || `HTTP ${started.status}`));
      return;
    }
    const stages = { parsing: '读取 Reading', checking: '检查 Checking', writing: '写入 Writing', done: '完成 Done', failed: '未导入 Not imported' };
    for (;;) {
      const job = await api('/api/v1/household-files/imports/' + started.data.id);
      bar.max = Math.max(1, job.total);
      bar.value = job.done;
      clear(text, `${stages[job.state] || job.state} ${job.done}/${job.total}`);
      if (job.state === 'done') {
        clear(out, h('section.card.created', { 'data-testid': 'imported' },
          h('h2', both('导入完成', 'Imported')),
          h('p', `已导入 ${job.result.rows} 户，全部写入。 ${job.result.rows} households imported, all of them.`),
          h('p', h('a.button', { href: '#/files' }, both('查看一户一档', 'Open the household files')))));
        return;
      }
      if (job.state === 'failed') {
        clear(out, h('section.card', h('h2', both('未导入', 'Nothing was imported')), h('p.form-error', job.message), job.errors.length ? rowErrors(job.errors) : null));
        return;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  };
  const form = h('form.card', {
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        showError(err, null);
        const file = input.files[0];
        if (!file) { showError(err, new Error('请选择 CSV 或 XLSX 文件 Choose a CSV or XLSX file.')); return; }
        format = formatOf(file.name);
        bytes = await file.arrayBuffer();
        previewBtn.disabled = true;
        try {
          const r = await postBytes(`/api/v1/household-files/import?format=${format}`, bytes);
          if (r.status === 200) {
            const hs = r.data.households;
            clear(out, h('section.card',
              h('h2', both('预览', 'Preview'), ` · ${r.data.rows} 行 rows`),
              h('p', '全部行都正确。确认后一次全部写入。 Every row is good: committing writes them all at once.'),
              h('p', h('button.primary', { type: 'button', on: { click: commit } }, both('确认导入', 'Commit the import'))),
              table(['单元 Unit', '类型 Occupancy', '住户 Residents', '电话 Phones', '入住 Moved in', '迁出 Moved out', '车牌 Vehicles', '车位 Parking'],
                hs.slice(0, 200).map((x) => h('tr', h('td', x.unit), h('td', OCCUPANCY[x.occupancy] || x.occupancy), h('td', x.residents.map((p) => p.name).join('、')),
                  h('td', x.residents.map((p) => p.phone).filter(Boolean).join('、')), h('td', x.move_in), h('td', x.move_out || ''), h('td', x.vehicles.join('; ')), h('td', x.parking.join('; ')))),
                { caption: hs.length > 200 ? `前 200 行 The first 200 of ${hs.length}` : null })));
          } else if (r.data?.error?.details?.errors) {
            clear(out, h('section.card.refused', { 'data-testid': 'refused' },
              h('h2', both('文件被拒绝，未导入任何内容', 'The file is refused: nothing was imported')),
              h('p.form-error', r.data.error.message),
              h('p', '请修改以下行后重新选择文件。 Fix these rows and choose the file again.'),
              rowErrors(r.data.error.details.errors)));
          } else {
            clear(out);
            showError(err, new Error(r.data?.error?.message || `HTTP ${r.status}`));
          }
        } catch (e) { showError(err, e); } finally { previewBtn.disabled = false; }
      },
    },
  },
  h('h1', both('导入住户', 'Import households')),
  h('p.muted', '第一行为列名（中文或英文）：单元 unit、类型 occupancy（业主/租户）、姓名 name、关系 relation、电话 phone、入住日期 move_in、迁出日期 move_out、车牌 vehicles、车位 parking、备注 notes。一格多个值用 ; 分隔。',
    h('br'), 'Nothing is half-imported: a file with any bad row is refused whole, each bad row named with its column.'),
  err,
  field('CSV 或 XLSX 文件 CSV or XLSX file', input),
  h('div.actions', previewBtn));
  clear(main, backLink('#/files', '一户一档 Household files'), form, out);
}
