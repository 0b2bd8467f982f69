// The dashboard in real headless Chromium (Debian's `chromium`, driven by
// playwright-core). Run by tests/browser.rs, which starts the relay, plays the
// engineer's phone between the phases, and passes in:
//   RELAY_URL, PASSWORDS (JSON {user: password}), SHOTS (screenshot folder),
//   SIGNALS (a folder both sides write marker files into), CHROMIUM.
// Every wait is on a condition with a deadline; nothing sleeps for state.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const url = process.env.RELAY_URL;
const passwords = JSON.parse(process.env.PASSWORDS || '{}');
const shots = process.env.SHOTS;
const signals = process.env.SIGNALS;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const DEADLINE = 60_000;

if (!url || !shots || !signals) throw new Error('RELAY_URL, SHOTS and SIGNALS are required');
fs.mkdirSync(shots, { recursive: true });

function step(msg) { console.error(`[browser] ${msg}`); }
function signal(name, data = {}) { fs.writeFileSync(path.join(signals, name), JSON.stringify(data)); }
async function waitForSignal(name) {
  const file = path.join(signals, name);
  const until = Date.now() + DEADLINE * 2;
  while (!fs.existsSync(file)) {
    if (Date.now() > until) throw new Error(`timed out waiting for the test to signal ${name}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return JSON.parse(fs.readFileSync(file, 'utf8') || '{}');
}
function check(cond, msg) { if (!cond) throw new Error('check failed: ' + msg); }

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'propsync-chromium-'));
// A fresh profile folder (playwright passes it as --user-data-dir).
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
  page.on('console', (m) => { if (m.type() === 'error' && !/401|403|Failed to load resource/.test(m.text())) errors.push('console: ' + m.text()); });
  // No token ever travels in a URL: the session cookie authenticates pages,
  // images, the live feed, print and CSV links.
  context.on('request', (r) => { if (/[?&]token=/.test(r.url())) errors.push('a token in a URL: ' + r.url()); });
  const shot = async (name, p = page) => {
    await p.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
    step('screenshot ' + name);
  };

  async function login(user) {
    await page.goto(url + '/#/login');
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(passwords[user]);
    await page.keyboard.press('Enter'); // keyboard-usable: Enter submits
    await page.locator('#who').getByText('Log out').waitFor();
  }

  // ---- the front desk: a wrong password first, then in.
  step('login page');
  await page.goto(url + '/');
  await page.getByLabel('User name').waitFor();
  await shot('01-login');
  await page.getByLabel('User name').fill('frontdesk');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Wrong user name or password.').waitFor();
  await login('frontdesk');
  check(await page.locator('#nav').getByText('Review queue').count() === 0, 'the front desk sees no review queue');
  const sessionCookie = (await context.cookies()).find((c) => c.name === 'propsync_session');
  check(sessionCookie && sessionCookie.httpOnly && sessionCookie.sameSite === 'Strict', 'an HttpOnly SameSite=Strict session cookie');
  const visible = await page.evaluate(() => JSON.stringify(sessionStorage) + document.cookie + JSON.stringify(localStorage));
  check(!visible.includes(sessionCookie.value), 'page script cannot read the session token');

  // ---- record a repair for a household; the serial shows at once.
  step('record a repair');
  await page.locator('#nav').getByText('Record a contact').click();
  await page.getByLabel('Kind 类型').selectOption('repair');
  await page.locator('#household-search').fill('B1-101');
  await page.locator('.picker button').first().waitFor();
  await page.locator('#household-search').press('Enter');
  await page.locator('.chosen strong').waitFor();
  await page.getByLabel('Title 摘要').fill('Kitchen tap leaking');
  await page.getByLabel('Category 类别').fill('plumbing');
  await page.getByLabel('Description 内容').fill('Dripping since this morning; resident home after 14:00.');
  // A clear error on bad input: no title.
  await page.getByLabel('Title 摘要').fill('');
  await page.getByRole('button', { name: 'Record' }).click();
  check(await page.locator('[data-testid=serial]').count() === 0, 'nothing recorded without a title');
  await page.getByLabel('Title 摘要').fill('Kitchen tap leaking');
  // The caller, and the clerk's read-back: the form will not go without it.
  await page.getByLabel('姓名 Name').fill('Wang Fang');
  await page.getByLabel('电话 Phone').fill('13912345678');
  await page.getByRole('button', { name: 'Record' }).click();
  check(await page.locator('[data-testid=serial]').count() === 0, 'nothing recorded before the details are read back');
  await page.getByLabel('details read back to the caller').check();
  await page.getByRole('button', { name: 'Record' }).click();
  const serialEl = page.locator('[data-testid=serial]');
  await serialEl.waitFor();
  const serial = (await serialEl.textContent()).trim();
  check(/^RO-\d{4}-\d{6}$/.test(serial), 'a repair serial, not ' + serial);
  const ticketHref = await page.locator('#created a', { hasText: 'Open the ticket' }).getAttribute('href');
  const id = ticketHref.split('/').pop();
  await shot('02-record-a-contact');
  step(`recorded ${serial} (${id})`);

  // A complaint has no serial.
  await page.getByLabel('Kind 类型').selectOption('complaint');
  await page.getByLabel('Location 位置').fill('B2 lobby');
  await page.getByLabel('Title 摘要').fill('Lift noisy at night');
  await page.getByLabel('details read back to the caller').check();
  await page.getByRole('button', { name: 'Record' }).click();
  await page.getByText('Matter recorded (matters have no serial).').waitFor();

  // ---- the register, waiting live for the engineer's phone.
  step('register');
  await page.locator('#nav').getByText('Register').click();
  const row = page.locator(`tr[data-id="${id}"]`);
  await row.waitFor();
  await page.locator('.live-status', { hasText: 'Live' }).waitFor();
  await page.evaluate(() => { window.__noReload = 'still here'; });
  signal('created', { id, serial });
  await page.waitForFunction((i) => document.querySelector(`tr[data-id="${i}"]`)?.dataset.status === 'COMPLETED', id, { timeout: DEADLINE * 2 });
  check(await page.evaluate(() => window.__noReload) === 'still here', 'the register updated without a reload');
  check((await row.textContent()).includes(serial), 'the row shows the serial');
  await shot('03-register');
  fs.copyFileSync(path.join(shots, '03-register.png'), path.join(shots, 'register.png'));
  step('the register showed COMPLETED live');

  // Filters.
  await page.getByLabel('status').selectOption('COMPLETED');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForFunction(() => location.hash.includes('status=COMPLETED'));
  await row.waitFor();

  // ---- the ticket: timeline with verdicts, device and both times.
  step('ticket page');
  await page.goto(url + '/#/ticket/' + id);
  await page.locator('h1 [data-testid=serial]', { hasText: serial }).waitFor();
  const timeline = page.locator('table', { hasText: 'Device time' });
  await timeline.getByText('eng1-phone').first().waitFor();
  for (const a of ['issue', 'assign', 'accept', 'start', 'complete']) {
    check(await timeline.locator('td', { hasText: new RegExp(`^${a}$`) }).count() >= 1, 'timeline has ' + a);
  }
  check(await page.locator('.action-buttons button[data-action=return]').count() === 1, 'the front desk may return the order');
  await shot('04-ticket');
  // Take the engineering copy back through the action form (keyboard: Enter in the form).
  await page.locator('.action-buttons button[data-action=return]').click();
  await page.getByLabel('copy received').check();
  await page.getByRole('button', { name: 'Confirm return' }).click();
  await page.locator('.page-head .badge', { hasText: 'RETURNED' }).or(page.locator('dd .badge', { hasText: 'RETURNED' })).first().waitFor();

  // ---- the printable order: three labelled copies, serial, QR.
  step('print');
  const printUrl = await page.locator('a', { hasText: 'Print order' }).getAttribute('href');
  const print = await context.newPage();
  await print.goto(url + printUrl);
  const copies = print.locator('section.copy');
  check(await copies.count() === 3, 'three copies');
  for (const l of ['住户联', '工程联', '客服联', 'Resident copy', 'Engineering copy', 'Customer service copy']) {
    check(await print.getByText(l, { exact: false }).count() >= 1, 'copy label ' + l);
  }
  check(await print.locator('section.copy .serial', { hasText: serial }).count() === 3, 'the serial on each copy');
  check(await print.locator('section.copy .qr svg').count() === 3, 'a QR code on each copy');
  await shot('05-print', print);
  const pdf = await print.pdf({ format: 'A4', printBackground: true });
  check(pdf.length > 1000, 'a PDF');
  const pages = (pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g) || []).length;
  check(pages === 1, `the order prints on one page, not ${pages}`);

  // A void: recorded, voided with a reason, printed VOID.
  step('void');
  await page.goto(url + '/#/new');
  await page.getByLabel('Location 位置').fill('B1 car park');
  await page.getByLabel('Title 摘要').fill('Duplicate of the gate call');
  await page.getByLabel('Category 类别').fill('doors');
  await page.getByLabel('details read back to the caller').check();
  await page.getByRole('button', { name: 'Record' }).click();
  await page.locator('[data-testid=serial]').waitFor();
  await page.locator('#created a', { hasText: 'Open the ticket' }).click();
  await page.locator('.action-buttons button[data-action=void]').click();
  await page.getByRole('button', { name: 'Confirm void' }).click();
  await page.locator('.form-error', { hasText: /reason|required/i }).or(page.locator('textarea[name=reason]:invalid')).first().waitFor();
  await page.locator('textarea[name=reason]').fill('duplicate entry');
  await page.getByRole('button', { name: 'Confirm void' }).click();
  await page.locator('.void-banner', { hasText: 'duplicate entry' }).waitFor();
  const voidPrint = await page.locator('a', { hasText: 'Print order' }).getAttribute('href');
  await print.goto(url + voidPrint);
  check(await print.locator('.void', { hasText: 'duplicate entry' }).count() === 3, 'VOID with the reason on each copy');
  await shot('06-print-void', print);
  await print.close();

  // Household file.
  step('household');
  await page.goto(url + '/#/households');
  await page.getByLabel('Search').fill('B1-101');
  await page.locator('table a').first().click();
  await page.getByText('Every ticket of this household').waitFor();
  await page.locator('table', { hasText: 'Kitchen tap leaking' }).waitFor();
  check(await page.getByText('Fee arrears').count() === 1, 'the front desk sees the private file');
  await shot('07-household');

  // ---- the supervisor resolves the review-queue item.
  await waitForSignal('synced');
  step('logout ends the session on the relay');
  const oldCookie = (await context.cookies()).find((c) => c.name === 'propsync_session');
  await page.locator('#who').getByText('Log out').click();
  await page.getByLabel('User name').waitFor();
  check(!(await context.cookies()).some((c) => c.name === 'propsync_session'), 'the cookie is cleared');
  await context.addCookies([oldCookie]); // a copy kept by someone else
  const replayed = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
  check(replayed === 401, 'the logged-out session no longer works, not ' + replayed);
  await context.clearCookies();
  step('supervisor: review queue');
  await login('supervisor');
  await page.locator('#nav').getByText('Review queue').click();
  const item = page.locator('tbody tr', { hasText: 'complete' }).first();
  await item.waitFor();
  await shot('08-review-queue');
  const before = await page.locator('tbody tr').count();
  await item.getByRole('button', { name: 'Override' }).click();
  await page.getByLabel('override — reason').fill('the work was done before the transfer');
  await page.getByLabel('override — reason').press('Enter');
  await page.locator('#flash', { hasText: 'override: accepted' }).waitFor();
  await page.waitForFunction((n) => document.querySelectorAll('tbody tr').length < n || !document.querySelector('tbody'), before);
  await shot('09-review-resolved');

  // ---- reports, with charts and CSV.
  for (const [name, title] of [['weekly-unresolved', 'Weekly unresolved summary'], ['engineer-performance', 'Engineer performance'],
    ['serial-register', 'Repair-order serial register'], ['daily-register', 'Front-desk daily register'], ['open-overdue', 'Open and overdue'],
    ['focus-complaints', 'Complaints open 7 days or more'], ['return-visits', 'Return visits and satisfaction'], ['sync-health', 'Device sync health'],
    ['cashier-close', 'Cashier daily close'], ['not-returned', 'Completed but not returned']]) {
    step('report ' + name);
    await page.goto(url + '/#/report/' + name);
    await page.locator('#report-body h1', { hasText: title }).waitFor();
    if (name === 'weekly-unresolved' || name === 'engineer-performance') {
      check(await page.locator('svg.chart rect.bar').count() > 0, name + ' has a chart with bars');
    }
    const csvHref = await page.locator('a', { hasText: 'Export CSV' }).getAttribute('href');
    const csv = await page.evaluate(async (h) => (await fetch(h)).text(), csvHref);
    check(csv.replace(/^\ufeff/, '').startsWith('report,') && csv.includes(title), name + ' CSV export');
    await shot('10-report-' + name);
  }
  await page.goto(url + '/#/reports');
  await page.getByRole('link', { name: 'Weekly unresolved summary' }).waitFor();
  await shot('11-reports');

  step('sync log, devices, openapi');
  await page.goto(url + '/#/sync-log');
  await page.getByText(/^Sessions \(/).waitFor();
  check(await page.locator('td', { hasText: 'eng1-phone' }).count() > 0, 'the sync log shows the phone');
  await shot('12-sync-log');
  await page.goto(url + '/#/devices');
  await page.locator('td', { hasText: 'eng1-phone' }).waitFor();
  await shot('13-devices');
  const spec = await (await page.request.get(url + '/api/v1/openapi.json')).json();
  check(spec.openapi === '3.1.0' && spec.paths['/api/v1/tickets'], 'the OpenAPI document');

  // Tablet.
  step('tablet');
  await page.setViewportSize({ width: 820, height: 1180 });
  await page.goto(url + '/#/register');
  await page.locator(`tr[data-id="${id}"]`).waitFor();
  await shot('14-register-tablet');
  await page.goto(url + '/#/nowhere');
  await page.getByRole('link', { name: /Back to the register/ }).waitFor();

  check(errors.length === 0, 'no page errors: ' + errors.join('\n'));
  step('all checks passed');
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
