// The dashboard's entry: session, role-aware navigation, hash routing.

import { api, session, h, clear, flash, field, errorBox, showError } from './util.js';
import * as pages from './pages.js';
import * as reports from './reports.js';
import * as property from './property.js';
import * as fees from './fees.js';

const ALL = ['front_desk', 'supervisor', 'dispatcher', 'engineering_supervisor', 'manager', 'cashier', 'engineer', 'department_staff'];
// Who records contacts from the dashboard: the lifecycle's issue/record roles
// among desk users (a manager neither issues nor records; the form offers each
// role only the kinds it may create).
const DESK = ['front_desk', 'supervisor', 'dispatcher', 'engineering_supervisor'];
const REVIEW = ['supervisor', 'engineering_supervisor', 'manager'];
const SUPER = ['supervisor', 'manager'];
const REPORTS = ['front_desk', 'supervisor', 'engineering_supervisor', 'manager', 'cashier'];
const HOUSEHOLDS = ['front_desk', 'supervisor', 'dispatcher', 'engineering_supervisor', 'manager', 'cashier'];
const FEES = ['cashier', 'supervisor', 'manager'];

/** Navigation: path, label, roles that see it. */
const NAV = [
  ['#/register', 'Register', ALL],
  ['#/new', 'Record a contact', DESK],
  ['#/households', 'Households', HOUSEHOLDS],
  ['#/files', '一户一档 Household files', property.READERS],
  ['#/fees', '收费 Fees', FEES],
  ['#/property', '物业 Property', ['manager']],
  ['#/review', 'Review queue', REVIEW],
  ['#/reports', 'Reports', REPORTS],
  ['#/sync-log', 'Sync log', SUPER],
  ['#/devices', 'Devices', SUPER],
];

const ROUTES = [
  [/^#\/register$/, pages.register],
  [/^#\/new$/, pages.newContact],
  [/^#\/ticket\/([^/]+)$/, pages.ticket],
  [/^#\/households$/, pages.households],
  [/^#\/household\/([^/]+)$/, pages.household],
  [/^#\/files$/, property.files],
  [/^#\/files\/new$/, property.newFile],
  [/^#\/file\/([^/]+)$/, property.file],
  [/^#\/import$/, property.importPage],
  [/^#\/property$/, property.property],
  [/^#\/fees$/, fees.desk],
  [/^#\/fees\/household\/([^/]+)$/, fees.household],
  [/^#\/review$/, pages.review],
  [/^#\/reports$/, reports.list],
  [/^#\/report\/([^/]+)$/, reports.report],
  [/^#\/sync-log$/, pages.syncLog],
  [/^#\/devices$/, pages.devices],
];

let cleanup = null;

function renderNav() {
  const s = session.get();
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  if (!s) {
    clear(nav);
    clear(who);
    return;
  }
  const here = location.hash.split('?')[0];
  clear(nav, h('ul', NAV.filter(([, , roles]) => roles.includes(s.role)).map(([href, text]) =>
    h('li', h('a', { href, 'aria-current': here.startsWith(href) ? 'page' : null }, text)))));
  clear(who,
    h('span.user', s.display_name || s.user, ' ', h('span.role', s.role.replaceAll('_', ' '))),
    ' ',
    h('span.tz', { title: '时区 Time zone: every time shown is the property\'s' }, s.time_zone || ''),
    ' ',
    h('button.link', { type: 'button', on: { click: logout } }, 'Log out'));
}

async function logout() {
  // Ends the session on the relay (its cookie and token stop working
  // everywhere, the live feed included), then here.
  try { await api('/api/v1/logout', { method: 'POST' }); } catch { /* signed out either way */ }
  session.clear();
  location.hash = '#/login';
}

/** Where a login lands: the property set-up for a manager of a relay with no property yet. */
async function landing(role) {
  if (role !== 'manager') return '#/register';
  try {
    return (await api('/api/v1/property')).property ? '#/register' : '#/property';
  } catch { return '#/register'; }
}

function loginPage(main) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const err = errorBox();
  const form = h('form.card.login', {
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        showError(err, null);
        try {
          const r = await api('/api/v1/login', { method: 'POST', body: { username: user.value.trim(), password: pass.value } });
          session.set(r);
          location.hash = await landing(r.role);
        } catch (e) {
          showError(err, e.status === 401 ? new Error('Wrong user name or password.') : e);
          pass.select();
        }
      },
    },
  },
  h('h1', 'Sign in'),
  h('p.muted', 'Customer service dashboard 客服中心'),
  err,
  field('User name', user),
  field('Password', pass),
  h('button.primary', { type: 'submit' }, 'Sign in'));
  clear(main, form);
  user.focus();
}

async function route() {
  if (cleanup) {
    try { cleanup(); } catch { /* ignore */ }
    cleanup = null;
  }
  flash(null);
  const main = document.getElementById('main');
  const hash = location.hash || '#/register';
  if (!session.get() || hash === '#/login') {
    renderNav();
    if (session.get() && hash === '#/login') session.clear();
    loginPage(main);
    return;
  }
  if (!session.get().time_zone) {
    // A session from before the relay told its time zone: ask once.
    try {
      const me = await api('/api/v1/me');
      session.set({ ...session.get(), time_zone: me.time_zone });
    } catch { /* the pages fall back to Asia/Shanghai */ }
  }
  renderNav();
  const path = hash.split('?')[0];
  for (const [re, page] of ROUTES) {
    const m = path.match(re);
    if (m) {
      clear(main, h('p.muted', 'Loading…'));
      try {
        cleanup = (await page(main, ...m.slice(1).map(decodeURIComponent))) || null;
      } catch (e) {
        clear(main, h('h1', 'Something went wrong'), h('p.form-error', e.message), h('p', h('a', { href: '#/register' }, '← Back to the register')));
      }
      return;
    }
  }
  clear(main, h('h1', 'Not found'), h('p', 'There is no page ', h('code', hash), '.'), h('p', h('a', { href: '#/register' }, '← Back to the register')));
}

window.addEventListener('hashchange', route);
route();
