// A property's first day in the dashboard (headless Chromium, playwright-core),
// on a relay started with `serve` on an empty data directory. Run by
// tests/browser/day_one.rs, which passes RELAY_URL, PASSWORDS (JSON
// {user: password}), SHOTS (screenshot folder) and CHROMIUM.
// Every wait is on a condition with a deadline; nothing sleeps for state.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const url = process.env.RELAY_URL;
const passwords = JSON.parse(process.env.PASSWORDS || '{}');
const shots = process.env.SHOTS;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const DEADLINE = 30_000;

if (!url || !shots) throw new Error('RELAY_URL and SHOTS are required');
fs.mkdirSync(shots, { recursive: true });

/** An RFC 3339 UTC time as a datetime-local value in Asia/Shanghai (UTC+8 all year), to the second. */
function localInput(rfc3339) {
  return new Date(new Date(rfc3339).getTime() + 8 * 3600 * 1000).toISOString().slice(0, 19);
}

function step(msg) { console.error(`[day one] ${msg}`); }
function check(cond, msg) { if (!cond) throw new Error('check failed: ' + msg); }

const HEADER = '单元,类型,姓名,电话,入住日期,车牌,车位,备注\n';
const GOOD = [
  'T1-101,业主,王芳;王军,13912345678;13800001111,2025-03-01,沪A12345,P-7,',
  'T1-102,租户,李敏,13700002222,2025-06-15,,,',
  'T2-101,业主,赵磊,13600003333,2024-12-01,,,',
  'T2-102,业主,孙浩,13500004444,2025-01-10,沪B67890,P-12,',
];
// Row 3 (the header is row 1) names a unit the property does not have.
const BAD = [GOOD[0], GOOD[1].replace('T1-102', 'T9-999'), GOOD[2], GOOD[3]];

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'propsync-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const errors = [];
try {
  context.setDefaultTimeout(DEADLINE);
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !/40[0-9]|Failed to load resource/.test(m.text())) errors.push('console: ' + m.text()); });
  const shot = async (name) => {
    await page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
    step('screenshot ' + name);
  };
  const count = (p) => page.evaluate(async (u) => (await (await fetch(u)).json()).households.length, p);

  async function login(user) {
    await page.goto(url + '/#/login');
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(passwords[user]);
    await page.keyboard.press('Enter');
    await page.locator('#who').getByText('Log out').waitFor();
    // The landing page has rendered (a menu click before it would race it).
    await page.waitForFunction(() => !document.getElementById('main').textContent.startsWith('Loading'));
  }
  async function logout() {
    await page.locator('#who').getByText('Log out').click();
    await page.getByLabel('User name').waitFor();
  }

  // ---- the administrator lands on the set-up form of an empty relay.
  step('property set-up');
  await login('admin');
  await page.getByRole('heading', { name: /设置物业/ }).waitFor();
  check(await page.getByLabel('时区 Time zone').inputValue() === 'Asia/Shanghai', 'the time zone defaults to Asia/Shanghai');
  await page.getByLabel('物业名称 Property name').fill('海景花园 Harbour View');
  await page.getByLabel('楼栋 Buildings').fill('T1,1号楼\nT2,2号楼');
  // A bad area is named with its line; nothing is sent.
  await page.getByLabel('单元 Units').fill('building,unit,area_m2\nT1,T1-101,100\nT1,T1-102,ten');
  await page.getByRole('button', { name: /设置物业/ }).click();
  await page.locator('.form-error', { hasText: 'line 3' }).waitFor();
  await page.getByLabel('单元 Units').fill('building,unit,area_m2\nT1,T1-101,100.00\nT1,T1-102,100\nT2,T2-101,100.0\nT2,T2-102,200.00');
  await shot('20-property-setup');
  await page.getByRole('button', { name: /设置物业/ }).click();
  await page.locator('table', { hasText: '1号楼' }).waitFor();
  check((await page.locator('tr', { hasText: 'T2' }).textContent()).includes('300.00'), 'building T2 has 300.00 m²');

  // ---- import: a file with a bad row is refused whole, the row named.
  step('import refused');
  await page.goto(url + '/#/import');
  const fileInput = page.getByLabel('CSV 或 XLSX 文件 CSV or XLSX file');
  await fileInput.setInputFiles({ name: 'households.csv', mimeType: 'text/csv', buffer: Buffer.from(HEADER + BAD.join('\n') + '\n') });
  await page.getByRole('button', { name: /预览/ }).click();
  const refused = page.locator('[data-testid=refused]');
  await refused.waitFor();
  const bad = refused.locator('tr[data-row="3"]');
  check(await refused.locator('tbody tr').count() === 1, 'one bad row named');
  check((await bad.textContent()).includes('单元') && (await bad.textContent()).includes('T9-999'), 'row 3, column 单元, names the unit');
  check(await count('/api/v1/household-files') === 0, 'nothing imported');
  await shot('21-import-refused');

  // ---- fixed: previewed, then committed with the job's progress bar.
  step('import committed');
  await fileInput.setInputFiles({ name: 'households.csv', mimeType: 'text/csv', buffer: Buffer.from(HEADER + GOOD.join('\n') + '\n') });
  await page.getByRole('button', { name: /预览/ }).click();
  await page.locator('#import-result table', { hasText: 'T2-102' }).waitFor();
  check(await count('/api/v1/household-files') === 0, 'a preview writes nothing');
  await page.getByRole('button', { name: /确认导入/ }).click();
  await page.locator('[data-testid=imported]', { hasText: '4' }).waitFor();
  check(await count('/api/v1/household-files') === 4, 'four households imported');
  await shot('22-import-committed');

  // ---- a household file: edited on the version read; the history shows it.
  step('household file');
  await page.goto(url + '/#/files');
  await page.getByLabel('查找 Find').fill('13912345678');
  // T1-101 heads the unfiltered list too: wait for the search's answer.
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1, null, { timeout: 10_000 })
    .catch(() => {});
  check(await page.locator('tbody tr').count() === 1, 'found by the caller\'s number');
  await page.locator('tbody tr').first().getByRole('link', { name: 'T1-101' }).waitFor();
  await page.locator('tbody tr').first().getByRole('link', { name: 'T1-101' }).click();
  await page.getByRole('heading', { name: /修改记录/ }).waitFor();
  check(await page.locator('section', { hasText: '私密档案' }).getByText('13800001111').count() === 1, 'the manager sees the phones');
  // Someone else saves the file while this edit is open: the edit is refused.
  await page.getByRole('button', { name: '编辑 Edit' }).click();
  const fileId = page.url().split('/').pop();
  const other = await page.evaluate(async (id) => {
    const { csrf } = JSON.parse(sessionStorage.getItem('propsync.session'));
    const f = (await (await fetch('/api/v1/household-files/' + id)).json()).household;
    const household = { unit: f.unit, occupancy: f.occupancy, residents: f.residents, move_in: f.move_in, move_out: f.move_out, vehicles: f.vehicles, parking: f.parking, notes: '周末在家' };
    const r = await fetch('/api/v1/household-files/' + id, { method: 'PUT', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: JSON.stringify({ version: f.version, household }) });
    return r.status;
  }, fileId);
  check(other === 200, 'the other edit saved, not ' + other);
  await page.getByLabel('备注 Notes').fill('养狗，敲门前先打电话');
  await page.getByRole('button', { name: '保存 Save' }).click();
  await page.locator('.edit-form .form-error', { hasText: '有人在您编辑期间修改了此档案' }).waitFor();
  await page.reload();
  await page.getByRole('button', { name: '编辑 Edit' }).click();
  check(await page.getByLabel('备注 Notes').inputValue() === '周末在家', 'the reloaded form shows the other edit');
  await page.getByLabel('备注 Notes').fill('养狗，敲门前先打电话');
  await page.getByRole('button', { name: '保存 Save' }).click();
  await page.locator('ul.changes', { hasText: '养狗' }).waitFor();
  check((await page.locator('h1').textContent()).includes('version 3'), 'version 3');
  check(await page.locator('ul.changes', { hasText: '周末在家' }).count() === 2, 'both edits in the history, before and after');
  await shot('23-household-file');
  // Report 17 from the file: the XLSX link (the session cookie is enough)
  // is a workbook; with a cut-off before any edit, the printed extract has
  // the file as imported.
  const xlsxHref = await page.getByRole('link', { name: '导出 XLSX' }).getAttribute('href');
  const xlsx = await page.evaluate(async (u) => { const r = await fetch(u); return [r.status, r.headers.get('content-type')]; }, xlsxHref);
  check(xlsx[0] === 200 && xlsx[1].includes('spreadsheetml'), 'the extract as XLSX: ' + xlsx);
  const firstAt = await page.evaluate(async (id) => (await (await fetch('/api/v1/household-files/' + id)).json()).history[0].at, fileId);
  await page.locator('input[name=extract_as_of]').fill(localInput(firstAt));
  await page.locator('input[name=extract_as_of]').dispatchEvent('change');
  const printHref = await page.getByRole('link', { name: '打印档案 Print the file' }).getAttribute('href');
  check(printHref.includes('as_of='), 'the print link carries the cut-off: ' + printHref);
  const printed = await page.evaluate(async ([id, at]) => (await fetch('/households/' + id + '/print?as_of=' + encodeURIComponent(at))).text(), [fileId, firstAt]);
  check(printed.includes('T1-101') && !printed.includes('养狗') && !printed.includes('周末在家'), 'the printed extract as of the first version');

  // ---- the manager adds the property-fee item: 2.50 yuan per m² per month.
  step('charge item');
  await page.locator('#nav').getByText('收费 Fees').click();
  await page.getByLabel('代码 Code').fill('property_fee');
  await page.getByLabel('中文名称 Chinese name').fill('物业费');
  await page.getByLabel('英文名称 English name').fill('Property fee');
  await page.getByLabel('单价（元）Rate (yuan)').fill('2.50');
  await page.getByRole('button', { name: /保存项目/ }).click();
  await page.locator('table', { hasText: 'property_fee' }).waitFor();
  check((await page.locator('tr', { hasText: 'property_fee' }).textContent()).includes('¥2.50'), 'the rate shown in yuan');
  await shot('24-fee-items');
  await logout();

  // ---- the cashier bills the month (a repeat bills nothing) and collects.
  step('bill run');
  await login('cashier1');
  await page.locator('#nav').getByText('收费 Fees').click();
  await page.getByRole('button', { name: /出账/ }).click();
  const run = page.locator('[data-testid=bill-run]');
  await run.waitFor();
  check(await run.getAttribute('data-billed') === '4', 'four bills made, not ' + await run.getAttribute('data-billed'));
  await page.getByRole('button', { name: /出账/ }).click();
  await page.locator('[data-testid=bill-run][data-billed="0"][data-already="4"]').waitFor();
  await shot('25-bill-run');

  step('payment');
  await page.getByLabel('查找 Find').fill('T1-101');
  await page.locator('tbody tr', { hasText: 'T1-101' }).getByRole('link', { name: /收款/ }).click();
  await page.locator('[data-testid=arrears]', { hasText: '¥250.00' }).waitFor();
  check(await page.getByLabel('金额（元）Amount (yuan)').inputValue() === '250.00', 'the amount owed is offered');
  await page.getByLabel('方式 Method').selectOption('wechat');
  await page.getByRole('button', { name: /收款 Record the payment/ }).click();
  const receipt = page.locator('[data-testid=receipt-number]');
  await receipt.waitFor();
  const number = (await receipt.textContent()).trim();
  check(number.length > 0, 'a receipt number');
  await page.locator('[data-testid=arrears]', { hasText: '¥0.00' }).waitFor();
  check(await page.locator('[data-testid=receipt] tbody tr').count() === 1, 'allocated to the one bill');
  step('receipt ' + number);
  await shot('26-payment');
  await page.getByLabel('渠道 Channel').selectOption('sms');
  await page.getByLabel('结果 Result').fill('已发短信，答应周五前缴清');
  await page.getByRole('button', { name: '记录 Record' }).click();
  await page.locator('section', { hasText: '催缴记录' }).locator('td', { hasText: '已发短信' }).waitFor();
  await logout();

  // ---- the manager reads the collection report: rates, formulas, chart.
  step('collection report');
  await login('admin');
  await page.goto(url + '/#/report/fee-collection');
  await page.locator('#report-body h1', { hasText: '物业费收缴' }).waitFor();
  const stat = (zh) => page.locator('.stat').filter({ has: page.locator('dt', { hasText: new RegExp('^' + zh) }) }).locator('dd');
  check((await stat('户收费率').textContent()).trim() === '25.00%', 'household collection rate 1 of 4');
  check((await stat('收费率').textContent()).trim() === '20.00%', 'collection rate 250.00 of 1,250.00');
  await page.locator('section', { hasText: '计算公式' }).getByText('本期实收 ÷ 本期应收').waitFor();
  check(await page.locator('svg.chart rect.bar').count() >= 2, 'a bar per building');
  await shot('27-fee-collection');

  check(errors.length === 0, 'no page errors: ' + errors.join('\n'));
  step('all checks passed');
} catch (e) {
  // What the page showed when a step failed.
  const [p] = context.pages();
  if (p) await p.screenshot({ path: path.join(shots, 'day-one-failed.png'), fullPage: true }).catch(() => {});
  console.error('[day one] page errors: ' + errors.join('\n'));
  throw e;
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
