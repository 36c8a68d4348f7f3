// security.js - Settings > Security: endpoint tokens (JWTs), API keys, trusted issuers, users.
// A new token or key is shown once, in the answer that created it; lists never hold one.
import { api, h, clear, guard, table, field, when, enc, copyButton } from './api.js';
import { can, go } from './app.js';

function shownOnce(slot, id, label, value) {
  clear(slot).append(h('div', { class: 'once', role: 'status' },
    h('p', {}, h('strong', {}, label), ' – copy it now: it is not shown again.'),
    h('div', { class: 'snippet' }, h('code', { id }, value), copyButton(value))));
}

function revokeButton(label, slot, fn) {
  return h('button', { type: 'button', class: 'danger', onclick: async () => {
    if (!confirm(label + '?')) return;
    if (await guard(slot, fn) !== null) go('#/security');
  } }, label);
}

async function tokensSection(sec, endpoints) {
  sec.append(h('h2', { id: 'tokens' }, 'Endpoint tokens (JWT)'),
    h('p', { class: 'muted' }, 'Callers of endpoints with JWT auth send one as "Authorization: Bearer …".'));
  const err = h('div', { class: 'slot' });
  const once = h('div', { class: 'slot' });
  if (can('admin')) {
    const name = h('input', { id: 'token-name', placeholder: 'partner-acme' });
    const expires = h('input', { id: 'token-expires', placeholder: '30d (empty: never)' });
    const scope = h('select', { id: 'token-endpoints', multiple: true, size: Math.min(5, Math.max(2, endpoints.length)) },
      endpoints.map((e) => h('option', { value: e.name }, e.name)));
    const form = h('form', { class: 'inline', id: 'token-form' }, field('Name', name), field('Expires', expires),
      field('Endpoints', scope, 'None selected: every endpoint'),
      h('button', { type: 'submit', class: 'primary', id: 'token-create' }, 'Create token'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = {};
      if (name.value.trim()) body.name = name.value.trim();
      if (expires.value.trim()) body.expires = expires.value.trim();
      const eps = [...scope.selectedOptions].map((o) => o.value);
      if (eps.length) body.endpoints = eps;
      const r = await guard(err, () => api('POST', '/tokens', body));
      if (r) { shownOnce(once, 'new-token-value', `Token ${r.name || r.id}`, r.token); refresh(); }
    });
    sec.append(form);
  }
  sec.append(err, once);
  const list = h('div', { class: 'slot' });
  sec.append(list);
  async function refresh() {
    const r = await guard(list, () => api('GET', '/tokens'));
    if (!r) return;
    list.append(table([
      { label: 'Name', get: (t) => t.name || '' }, { label: 'Id', get: (t) => h('code', {}, t.id) },
      { label: 'Endpoints', get: (t) => (t.endpoints && t.endpoints.length ? t.endpoints.join(', ') : 'all') },
      { label: 'Expires', get: (t) => (t.expires ? when(t.expires) : 'never') },
      { label: 'Last used', get: (t) => when(t.last_used) },
      { label: 'State', get: (t) => (t.revoked ? 'revoked' : 'active') },
      { label: '', get: (t) => (!t.revoked && can('admin') ? revokeButton('Revoke', err, () => api('DELETE', '/tokens/' + enc(t.id))) : '') },
    ], r.tokens, can('admin') ? 'No tokens yet: create one above, then send it to your API\'s callers.' : 'No tokens yet: an admin creates them.'));
  }
  await refresh();
}

async function keysSection(sec) {
  sec.append(h('h2', { id: 'apikeys' }, 'API keys'),
    h('p', { class: 'muted' }, 'Callers of endpoints with API key auth send one as "X-Api-Key: …".'));
  const err = h('div', { class: 'slot' });
  const once = h('div', { class: 'slot' });
  if (can('admin')) {
    const name = h('input', { id: 'apikey-name', required: true, placeholder: 'erp-sync' });
    const form = h('form', { class: 'inline', id: 'apikey-form' }, field('Name', name),
      h('button', { type: 'submit', class: 'primary' }, 'Create API key'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const r = await guard(err, () => api('POST', '/apikeys', { name: name.value.trim() }));
      if (r) { shownOnce(once, 'new-apikey-value', `API key ${r.name}`, r.key); refresh(); }
    });
    sec.append(form);
  }
  sec.append(err, once);
  const list = h('div', { class: 'slot' });
  sec.append(list);
  async function refresh() {
    const r = await guard(list, () => api('GET', '/apikeys'));
    if (!r) return;
    list.append(table([
      { label: 'Name', get: (k) => k.name }, { label: 'Starts with', get: (k) => h('code', {}, k.hint || '') },
      { label: 'Endpoints', get: (k) => (k.endpoints && k.endpoints.length ? k.endpoints.join(', ') : 'all') },
      { label: 'Created', get: (k) => when(k.created) }, { label: 'Last used', get: (k) => when(k.last_used) },
      { label: 'State', get: (k) => (k.revoked ? 'revoked' : 'active') },
      { label: '', get: (k) => (!k.revoked && can('admin') ? revokeButton('Revoke', err, () => api('DELETE', '/apikeys/' + enc(k.name))) : '') },
    ], r.apikeys, can('admin') ? 'No API keys yet: create one above.' : 'No API keys yet: an admin creates them.'));
  }
  await refresh();
}

async function issuersSection(sec) {
  sec.append(h('h2', { id: 'issuers' }, 'Trusted issuers'),
    h('p', { class: 'muted' }, 'JWTs signed by an outside identity provider are accepted when its issuer is trusted here.'));
  const err = h('div', { class: 'slot' });
  if (can('admin')) {
    const issuer = h('input', { id: 'issuer-url', required: true, placeholder: 'https://idp.example' });
    const audience = h('input', { id: 'issuer-audience', placeholder: 'optional' });
    const jwks = h('textarea', { id: 'issuer-jwks', rows: 3, required: true, placeholder: '{"keys": [...]}' });
    const form = h('form', { class: 'inline', id: 'issuer-form' }, field('Issuer', issuer), field('Audience', audience),
      field('JWKS (JSON)', jwks), h('button', { type: 'submit', class: 'primary' }, 'Trust issuer'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { issuer: issuer.value.trim(), jwks: jwks.value };
      if (audience.value.trim()) body.audience = audience.value.trim();
      if (await guard(err, () => api('POST', '/issuers', body))) go('#/security');
    });
    sec.append(form);
  }
  sec.append(err);
  const r = await guard(err, () => api('GET', '/issuers'));
  if (!r) return;
  sec.append(table([
    { label: 'Issuer', get: (i) => i.issuer }, { label: 'Audience', get: (i) => i.audience || '' },
    { label: 'Keys', get: (i) => String(Array.isArray(i.keys) ? i.keys.length : i.keys) },
    { label: 'Added', get: (i) => when(i.created) },
    { label: '', get: (i) => (can('admin') ? revokeButton('Remove', err, () => api('DELETE', '/issuers/' + enc(i.issuer))) : '') },
  ], r.issuers, 'No trusted issuers: only Portico\'s own tokens are accepted. Add an identity provider\'s JWKS above to accept its tokens.'));
}

async function usersSection(sec) {
  sec.append(h('h2', { id: 'users' }, 'Users'),
    h('p', { class: 'muted' }, 'Viewers read everything but secrets; editors also change scripts, endpoints, connections and webhook sources; admins do everything.'));
  if (!can('admin')) { sec.append(h('p', { class: 'empty' }, 'Only an admin manages users.')); return; }
  const err = h('div', { class: 'slot' });
  const name = h('input', { id: 'user-name', required: true });
  const role = h('select', { id: 'user-role' }, ['viewer', 'editor', 'admin'].map((x) => h('option', {}, x)));
  const pass = h('input', { id: 'user-password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const form = h('form', { class: 'inline', id: 'user-form' }, field('Name', name), field('Role', role),
    field('Password', pass, 'At least 8 characters'), h('button', { type: 'submit', class: 'primary' }, 'Add user'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (await guard(err, () => api('POST', '/users', { name: name.value.trim(), role: role.value, password: pass.value }))) go('#/security');
  });
  sec.append(form, err);
  const r = await guard(err, () => api('GET', '/users'));
  if (!r) return;
  sec.append(table([
    { label: 'Name', get: (u) => u.name },
    { label: 'Role', get: (u) => {
      const sel = h('select', { 'aria-label': `Role of ${u.name}` }, ['viewer', 'editor', 'admin'].map((x) => h('option', { selected: x === u.role }, x)));
      sel.addEventListener('change', async () => {
        if (await guard(err, () => api('PATCH', '/users/' + enc(u.name), { role: sel.value })) === null) sel.value = u.role;
      });
      return sel;
    } },
    { label: 'Created', get: (u) => when(u.created) },
    { label: '', get: (u) => revokeButton('Remove', err, () => api('DELETE', '/users/' + enc(u.name))) },
  ], r.users, 'No users.'));
}

export async function securityScreen(main) {
  main.append(h('h1', {}, 'Settings › Security'),
    h('p', { class: 'toc' }, [['tokens', 'Endpoint tokens'], ['apikeys', 'API keys'], ['issuers', 'Trusted issuers'], ['users', 'Users']]
      .map(([id, label]) => h('button', { type: 'button', class: 'link', onclick: () => document.getElementById(id).scrollIntoView() }, label))));
  const eps = await guard(null, () => api('GET', '/endpoints'));
  const sections = [h('section', { class: 'card' }), h('section', { class: 'card' }), h('section', { class: 'card' }), h('section', { class: 'card' })];
  main.append(...sections);
  await tokensSection(sections[0], eps ? eps.endpoints : []);
  await keysSection(sections[1]);
  await issuersSection(sections[2]);
  await usersSection(sections[3]);
}
