// The field app on a phone (Debian's chromium, 390×844, touch), driven by
// playwright-core. Run by tests/app.rs, which starts the relay, checks the
// relay between phases and plays the same engineer's CLI device. Passed in:
//   RELAY_URL, PASSWORDS (JSON {user: password}), TICKETS (JSON {a, b} with
//   id and serial), SHOTS, SIGNALS (marker files both sides write), CHROMIUM.
// Every wait is on a condition with a deadline; nothing sleeps for state.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const url = process.env.RELAY_URL;
const passwords = JSON.parse(process.env.PASSWORDS || '{}');
const tickets = JSON.parse(process.env.TICKETS || '{}');
const shots = process.env.SHOTS;
const signals = process.env.SIGNALS;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const DEADLINE = 60_000;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'zh-CN' };
// A 16×12 PNG: what the camera input hands over (the app scales and re-encodes it as JPEG).
const PHOTO = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAABAAAAAMCAIAAADkharWAAABVklEQVR4nBXRIREFIRhFYSIgCIBEbgAEEf4ICAKsRG4ABBFOBAQBkEgCIIiwEd6+67+ZO3OUUmiFVVyKoBBFVNyKR1EVKJpiKJbiKF6FUgZtsIbLEAxiiIbb8BiqAUMzDMMyHMNrPuDQDuu4HMEhjui4HY+jOnA0x3Asx3G87gMe7bGeyxM84ome2/N4qgdP8wzP8hzP6z8gaMEKlxAEEaJwC49QBYQmDGEJR3jlAwmdsIkrERKSiIk78SRqgkRLjMRKnMSbPpDRGZu5MiEjmZi5M0+mZsi0zMiszMm8+QMFXbCFqxAKUoiFu/AUaoFCK4zCKpzCWz4AGixcEP6fiXDDA5X/GgxYcOD9wqiO7tjO1Qkd6cTO3Xk6tUOndUZndU7n7R+Y6ImdXJMwkUmc3JNnUidM2mRM1uRM3vmBjd7YzbUJG9nEzb15NnXDpm3GZm3O5t38AK0CJJARdgJlAAAAAElFTkSuQmCC', 'base64');

if (!url || !shots || !signals) throw new Error('RELAY_URL, SHOTS and SIGNALS are required');
fs.mkdirSync(shots, { recursive: true });

function step(msg) { console.error(`[app] ${msg}`); }
function signal(name, data = {}) { fs.writeFileSync(path.join(signals, name), JSON.stringify(data)); }
async function waitForSignal(name) {
  const file = path.join(signals, name);
  const until = Date.now() + DEADLINE * 3;
  while (!fs.existsSync(file)) {
    if (Date.now() > until) throw new Error(`timed out waiting for the test to signal ${name}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return JSON.parse(fs.readFileSync(file, 'utf8') || '{}');
}
function check(cond, msg) { if (!cond) throw new Error('check failed: ' + msg); }

const errors = [];
function watch(page, who) {
  page.on('pageerror', (e) => errors.push(`${who} page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|403|Failed to load resource|ERR_INTERNET_DISCONNECTED|WebSocket/.test(m.text())) errors.push(`${who} console: ${m.text()}`);
  });
}
const shot = async (page, name) => {
  await page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
  step('screenshot ' + name);
};

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'propsync-phone-'));
const launchPhone = async (offline) => {
  const ctx = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: ARGS, ...PHONE, offline });
  ctx.setDefaultTimeout(DEADLINE);
  const page = ctx.pages()[0] || await ctx.newPage();
  watch(page, 'phone');
  return { ctx, page };
};

const desk = await chromium.launch({ executablePath, headless: true, args: ARGS });
let phone;
try {
  // ---- the supervisor makes an enrolment code on the dashboard's Devices page.
  step('the supervisor makes an enrolment code');
  const sup = await (await desk.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  sup.context().setDefaultTimeout(DEADLINE);
  watch(sup, 'dashboard');
  await sup.goto(url + '/#/login');
  await sup.getByLabel('User name').fill('supervisor');
  await sup.getByLabel('Password').fill(passwords.supervisor);
  await sup.keyboard.press('Enter');
  await sup.locator('#who').getByText('Log out').waitFor();
  await sup.goto(url + '/#/devices');
  await sup.locator('#enrol-user').fill('eng1');
  await sup.getByRole('button', { name: /Make an enrolment code/ }).click();
  const code = (await sup.locator('#enrol-code').textContent()).trim();
  const link = await sup.locator('[data-link]').getAttribute('data-link');
  check(/^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{2}$/.test(code), 'a readable code: ' + code);
  check(link === `${url}/app/#enrol=${code}`, 'the QR code holds the app link: ' + link);
  check(await sup.locator('img.qr').count() === 1, 'a QR code is shown');
  await shot(sup, 'app-00-dashboard-enrol');

  // ---- the phone: the app before enrolment, then the QR code's link.
  phone = await launchPhone(false);
  let page = phone.page;
  await page.goto(url + '/app/');
  await page.locator('#code').waitFor();
  check(await page.getByText('登记本机').count() === 1, 'the enrol screen is in Chinese');
  await shot(page, 'app-01-enrol');
  step('enrol from the QR code');
  await page.goto(link);
  await page.locator('#work').waitFor({ timeout: DEADLINE * 2 });
  check(!page.url().includes(code), 'the code leaves the address bar once used');
  const who = (await page.locator('#who').textContent()).trim();
  check(who.startsWith('eng1 · app-eng1-'), 'enrolled as eng1 on a new device: ' + who);
  signal('enrolled', { device: who.split(' · ')[1] });

  // The first sync brings both orders.
  const itemA = page.locator(`li.ticket[data-serial="${tickets.a.serial}"]`);
  const itemB = page.locator(`li.ticket[data-serial="${tickets.b.serial}"]`);
  await itemA.waitFor({ timeout: DEADLINE * 2 });
  await itemB.waitFor();
  await page.locator('#last-sync', { hasText: /\d\d:\d\d/ }).waitFor();
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await shot(page, 'app-02-work');

  // ---- offline: reload, everything still there (from the service worker and the store).
  step('offline reload');
  await phone.ctx.setOffline(true);
  await page.reload();
  await itemA.waitFor();
  await itemB.waitFor();
  await page.locator('#net.off').waitFor();
  await shot(page, 'app-03-offline');

  // ---- the ticket: accept; a refused action shows its reason.
  await itemA.locator('a').click();
  await page.locator('#serial', { hasText: tickets.a.serial }).waitFor();
  await page.locator('#household').waitFor();
  const refusedComplete = page.locator('#refused li[data-action=complete][data-rule=wrong_state]');
  check(await refusedComplete.count() === 1, 'complete is refused before start, with its rule');
  await page.locator('#refused summary').click();
  check((await refusedComplete.textContent()).includes('工单当前状态下不能执行此操作'), 'the refusal is explained in Chinese');
  await shot(page, 'app-04-ticket');
  const act = async (action) => {
    await page.locator(`button.action[data-action=${action}]`).click();
    await page.locator(`#form-${action} #submit`).click();
    await page.locator('#flash', { hasText: '已保存' }).waitFor();
  };
  await act('accept');
  await act('start');
  await page.locator('#status', { hasText: '处理中' }).waitFor();
  step('a refused hold (no reason)');
  await page.locator('button.action[data-action=hold]').click();
  await page.locator('#form-hold #submit').click();
  const refusal = page.locator('#form-hold .refusal');
  await refusal.waitFor();
  check((await refusal.textContent()).includes('缺少必填内容') && (await refusal.textContent()).includes('missing_data'),
    'the refusal names the rule and explains it in Chinese');
  await shot(page, 'app-05-refused');

  // ---- close the browser mid-way through the completion form, reopen offline.
  step('close mid-way');
  await page.locator('#form-hold button.secondary').click();
  await page.locator('button.action[data-action=complete]').click();
  await page.locator('#f-result').fill('half-typed');
  await phone.ctx.close();
  phone = await launchPhone(true);
  page = phone.page;
  await page.goto(`${url}/app/#/t/${encodeURIComponent(tickets.a.url)}`);
  await page.locator('#status', { hasText: '处理中' }).waitFor();
  check((await page.locator('#official').textContent()).includes('2 项待同步'), 'accept and start are still pending');

  // ---- complete with a photo and the resident's signature.
  step('complete');
  await page.locator('button.action[data-action=complete]').click();
  await page.locator('#f-result').fill('更换水龙头阀芯 replaced the tap cartridge');
  await page.locator('#f-labour_min').fill('40');
  await page.locator('#add-material').click();
  await page.locator('.m-name').fill('阀芯 cartridge');
  await page.locator('.m-price').fill('28');
  await page.locator('#form-complete input[type=file]').setInputFiles({ name: 'tap.png', mimeType: 'image/png', buffer: PHOTO });
  await page.locator('#form-complete .thumbs img').waitFor();
  const pad = await page.locator('#signature').boundingBox();
  await page.mouse.move(pad.x + 20, pad.y + 100);
  await page.mouse.down();
  for (const [x, y] of [[60, 40], [100, 110], [150, 30], [200, 100], [260, 50]]) await page.mouse.move(pad.x + x, pad.y + y, { steps: 4 });
  await page.mouse.up();
  await shot(page, 'app-06-complete');
  await page.locator('#form-complete #submit').click();
  await page.locator('#flash', { hasText: '已保存' }).waitFor();
  await page.locator('#status', { hasText: '已完工' }).waitFor();

  // A note far over this relay's change limit: the relay will refuse it.
  await page.locator('#note').fill('水管接口处有锈蚀，建议下次检修时更换。'.repeat(150));
  await page.locator('#save-note').click();
  await page.locator('#flash', { hasText: '已保存' }).waitFor();
  await page.goto(`${url}/app/#/pending`);
  await page.locator('#pending-list li[data-action=complete]').waitFor();
  check(await page.locator('#pending-list li').count() === 4, 'accept, start, complete and the note are pending');
  await shot(page, 'app-07-pending');
  signal('offline-done', {});

  // ---- the front desk's register, live.
  const frontdesk = await (await desk.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  frontdesk.context().setDefaultTimeout(DEADLINE);
  watch(frontdesk, 'register');
  await frontdesk.goto(url + '/#/login');
  await frontdesk.getByLabel('User name').fill('frontdesk');
  await frontdesk.getByLabel('Password').fill(passwords.frontdesk);
  await frontdesk.keyboard.press('Enter');
  await frontdesk.locator('#who').getByText('Log out').waitFor();
  await frontdesk.locator('#nav').getByText('Register').click();
  await frontdesk.locator(`tr[data-id="${tickets.a.id}"]`).waitFor();
  await frontdesk.locator('.live-status', { hasText: 'Live' }).waitFor();
  await frontdesk.evaluate(() => { window.__noReload = 'still here'; });

  // ---- online: the verdicts come back.
  step('online');
  await phone.ctx.setOffline(false);
  await page.goto(`${url}/app/#/t/${encodeURIComponent(tickets.a.url)}`);
  await page.locator('#sync').click().catch(() => {});
  await page.locator('li.event[data-action=complete][data-outcome=accepted]').waitFor({ timeout: DEADLINE * 2 });
  await page.locator('li.event[data-action=start][data-outcome=accepted]').waitFor();
  await page.locator('#status', { hasText: '已完工' }).waitFor();
  await shot(page, 'app-08-synced');
  await frontdesk.waitForFunction((i) => document.querySelector(`tr[data-id="${i}"]`)?.dataset.status === 'COMPLETED', tickets.a.id, { timeout: DEADLINE * 2 });
  check(await frontdesk.evaluate(() => window.__noReload) === 'still here', 'the register updated without a reload');
  await shot(frontdesk, 'app-09-register-completed');

  // ---- the refused note is in the quarantine, explained.
  await page.goto(`${url}/app/#/pending`);
  const q = page.locator('#quarantine-list li[data-rule=oversized_change]');
  await q.waitFor({ timeout: DEADLINE * 2 });
  check((await q.textContent()).includes('更改过大'), 'the quarantine explains the rule in Chinese');
  check(await page.locator('#export').count() === 1, 'the quarantine can be exported');
  await shot(page, 'app-10-quarantine');
  signal('synced', {});

  // ---- the same engineer's CLI device adds a note; the app converges.
  await waitForSignal('cli-noted');
  await page.goto(`${url}/app/#/t/${encodeURIComponent(tickets.a.url)}`);
  await page.locator('#sync').click();
  await page.locator('#notes li', { hasText: 'checked from the CLI' }).waitFor({ timeout: DEADLINE * 2 });

  // ---- report on site, with a photo.
  step('report a find');
  await page.goto(`${url}/app/#/report`);
  await page.locator('#f-location').fill('2号楼地下车库 B2 car park');
  await page.locator('#f-title').fill('消防通道照明损坏 fire-lane light broken');
  await page.locator('#f-category').fill('electrical');
  await page.locator('#report-form input[type=file]').setInputFiles({ name: 'find.png', mimeType: 'image/png', buffer: PHOTO });
  await page.locator('#report-form .thumbs img').waitFor();
  await shot(page, 'app-11-report');
  await page.locator('#report-form #submit').click();
  await page.locator('#flash', { hasText: '已上报' }).waitFor();
  const reported = decodeURIComponent(page.url().split('#/t/')[1]);
  await page.locator('#sync').click();
  await page.locator('#serial', { hasText: /^RO-/ }).waitFor({ timeout: DEADLINE * 2 });

  // ---- the device's own sync log, and the English switch.
  await page.goto(`${url}/app/#/log`);
  await page.locator('#sync-log li').first().waitFor();
  await shot(page, 'app-12-sync-log');
  await page.goto(`${url}/app/#/work`);
  await page.locator('#lang').click();
  await page.locator('#tabs', { hasText: 'My work' }).waitFor();
  await shot(page, 'app-13-english');
  await page.locator('#lang').click();

  check(errors.length === 0, 'no page errors:\n' + errors.join('\n'));
  signal('done', { reported });
  step('done');
} catch (e) {
  console.error('[app] page errors so far:\n' + errors.join('\n'));
  throw e;
} finally {
  if (phone) await phone.ctx.close().catch(() => {});
  await desk.close();
}
