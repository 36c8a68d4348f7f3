// app.js - the console's shell: login, navigation, the hash router and the session.
import { api, setCsrf, setUnauthorizedHandler, h, clear, guard, field } from './api.js';
import { scriptsScreen, scriptScreen } from './scripts.js';
import { endpointsScreen, endpointScreen } from './endpoints.js';
import { securityScreen } from './security.js';
import { connectionsScreen, webhooksScreen } from './data.js';
import { logsScreen, logScreen, auditScreen } from './logs.js';

const root = document.getElementById('app');
export const session = { user: null, role: null, publicUrl: '' };
let cleanup = null; // the current screen's teardown (e.g. closing a live tail)

const NAV = [
  ['scripts', 'Scripts'], ['endpoints', 'Endpoints'], ['security', 'Security'],
  ['connections', 'Connections'], ['webhooks', 'Webhooks'], ['logs', 'Logs'], ['audit', 'Audit'],
];

// role order, for hiding actions the user may not take (the API refuses them anyway)
export function can(role) {
  const rank = { viewer: 1, editor: 2, admin: 3 };
  return (rank[session.role] || 0) >= rank[role];
}

// The public base URL of endpoints: env.json gives the listener's; a wildcard host is this
// page's host name.
export function publicBase() {
  let u = session.publicUrl || '';
  u = u.replace('//0.0.0.0', '//' + location.hostname).replace('//[::]', '//' + location.hostname);
  return u.replace(/\/$/, '');
}

function loginScreen(message) {
  if (cleanup) { cleanup(); cleanup = null; }
  const err = h('div', { class: 'slot' });
  if (message) err.append(h('div', { class: 'notice' }, message));
  const user = h('input', { id: 'login-user', name: 'user', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'login card', id: 'login-form' },
    h('h1', {}, 'Portico'),
    h('p', {}, 'Log in with a Portico user (`portico user add NAME --role admin`).'),
    field('User', user), field('Password', pass), err,
    h('button', { type: 'submit', class: 'primary', id: 'login-submit' }, 'Log in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await guard(err, () => api('POST', '/login', { user: user.value, password: pass.value }, { noAuthRedirect: true }));
    if (r) {
      setCsrf(r.csrf_token);
      session.user = r.user; session.role = r.role;
      if (!location.hash || location.hash === '#/login') location.hash = '#/scripts';
      render();
    }
  });
  clear(root).append(h('main', { class: 'login-page' }, form));
  user.focus();
}

async function logout() {
  await guard(null, () => api('POST', '/logout', undefined, { noAuthRedirect: true }));
  session.user = null; setCsrf(null);
  loginScreen('You are logged out.');
}

function shell(active) {
  const nav = h('nav', { class: 'nav', 'aria-label': 'Sections' },
    h('div', { class: 'brand' }, 'Portico'),
    h('ul', {}, NAV.map(([id, label]) => h('li', {},
      h('a', { href: '#/' + id, id: 'nav-' + id, 'aria-current': id === active ? 'page' : null }, label)))),
    h('div', { class: 'who' }, h('span', { id: 'who' }, `${session.user} (${session.role})`),
      h('button', { type: 'button', id: 'logout', onclick: logout }, 'Log out')));
  const main = h('main', { id: 'main', tabindex: '-1' });
  clear(root).append(h('div', { class: 'shell' }, nav, main));
  return main;
}

async function render() {
  if (cleanup) { cleanup(); cleanup = null; }
  const hash = location.hash;
  delete document.body.dataset.ready; // set again once the screen is drawn (tests wait for it)
  if (!session.user) return loginScreen();
  const [route, search] = location.hash.replace(/^#\/?/, '').split('?');
  const params = new URLSearchParams(search || '');
  const parts = (route || 'scripts').split('/').map(decodeURIComponent);
  const [section, ...rest] = parts;
  const main = shell(section);
  const screens = {
    scripts: () => rest[0] !== undefined ? scriptScreen(main, rest[0]) : scriptsScreen(main),
    endpoints: () => rest[0] !== undefined ? endpointScreen(main, rest[0], rest[1]) : endpointsScreen(main),
    security: () => securityScreen(main),
    connections: () => connectionsScreen(main, rest),
    webhooks: () => webhooksScreen(main, rest),
    logs: () => rest[0] !== undefined ? logScreen(main, rest[0]) : logsScreen(main, params),
    audit: () => auditScreen(main),
  };
  const fn = screens[section];
  if (!fn) {
    main.append(h('h1', {}, 'Not found'), h('p', { class: 'empty' }, 'No such screen: pick one in the menu.'));
    return;
  }
  const r = await fn();
  if (typeof r === 'function') cleanup = r;
  if (location.hash === hash) document.body.dataset.ready = hash;
}

export function go(hash) {
  if (location.hash === hash) render(); else location.hash = hash;
}

async function boot() {
  setUnauthorizedHandler(() => { session.user = null; loginScreen('Your session has ended: log in again.'); });
  try {
    const env = await (await fetch('env.json', { cache: 'no-store' })).json();
    session.publicUrl = env.public_url || '';
  } catch (_) { /* the page still works; endpoint URLs show their path only */ }
  try {
    const me = await api('GET', '/me', undefined, { noAuthRedirect: true });
    session.user = me.user; session.role = me.role;
    if (me.csrf_token) setCsrf(me.csrf_token);
  } catch (_) {
    session.user = null;
  }
  window.addEventListener('hashchange', render);
  render();
}

boot();
