// endpoints.js - the Endpoints screens: the list with the last hour's traffic, the detail with
// ready curl and Python snippets, and the create / edit / remove forms.
import { api, h, clear, guard, table, field, when, enc, copyButton, errorBox } from './api.js';
import { can, go, publicBase } from './app.js';

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

export function fullUrl(ep) { return publicBase() + ep.path; }

// calls / errors / p95 per endpoint over the last hour (GET /stats/endpoints, from the
// request log).
async function lastHour() {
  const r = await api('GET', '/stats/endpoints?since=1h');
  return { by: new Map(r.endpoints.map((e) => [e.endpoint, e])), capped: r.truncated };
}

function authHeader(auth) {
  if (auth === 'jwt') return ['Authorization', 'Bearer $PORTICO_TOKEN', 'a JWT from Security > Endpoint tokens'];
  if (auth === 'apikey') return ['X-Api-Key', '$PORTICO_API_KEY', 'an API key from Security > API keys'];
  return null;
}

export function curlLine(ep) {
  const a = authHeader(ep.auth);
  const m = (ep.methods && ep.methods[0]) || 'GET';
  return `curl${m !== 'GET' ? ' -X ' + m : ''}${a ? ` -H "${a[0]}: ${a[1]}"` : ''} '${fullUrl(ep)}'`;
}

export function pythonSnippet(ep) {
  const a = authHeader(ep.auth);
  const m = ((ep.methods && ep.methods[0]) || 'GET').toLowerCase();
  const lines = ['import os', 'import requests', ''];
  const hdr = a ? (a[0] === 'Authorization'
    ? `headers = {"Authorization": "Bearer " + os.environ["PORTICO_TOKEN"]}`
    : `headers = {"X-Api-Key": os.environ["PORTICO_API_KEY"]}`) : 'headers = {}';
  lines.push(hdr, `r = requests.${m}("${fullUrl(ep)}", headers=headers, timeout=30)`, 'r.raise_for_status()', 'print(r.json())');
  return lines.join('\n');
}

export async function endpointsScreen(main) {
  main.append(h('h1', {}, 'Endpoints'));
  if (can('editor')) main.append(h('p', {}, h('a', { href: '#/endpoints/+new', class: 'button primary', id: 'new-endpoint' }, 'New endpoint')));
  const list = h('div', { class: 'slot' });
  main.append(list);
  const r = await guard(list, () => api('GET', '/endpoints'));
  if (!r) return;
  const statsErr = h('div', { class: 'slot' });
  const stats = (await guard(statsErr, lastHour)) || { by: new Map(), capped: false };
  const st = (ep) => stats.by.get(ep.name) || { calls: 0, errors: 0, p95_ms: null };
  list.append(table([
    { label: 'Name', get: (e) => h('a', { href: '#/endpoints/' + enc(e.name) }, e.name) },
    { label: 'Methods', get: (e) => (e.methods || []).join(', ') },
    { label: 'Auth', get: (e) => e.auth },
    { label: 'Script', get: (e) => h('a', { href: '#/scripts/' + enc(e.script) }, e.script) },
    { label: 'URL', get: (e) => h('span', { class: 'url' }, h('code', {}, fullUrl(e)), copyButton(() => fullUrl(e))) },
    { label: 'Calls (1h)', get: (e) => String(st(e).calls) + (stats.capped ? '+' : '') },
    { label: 'Errors (1h)', get: (e) => String(st(e).errors) },
    { label: 'p95 (1h)', get: (e) => (st(e).p95_ms === null ? '–' : `${st(e).p95_ms.toFixed(1)} ms`) },
  ], r.endpoints, can('editor') ? 'No endpoints yet: create one with "New endpoint", or "Publish as endpoint" on a script.'
    : 'No endpoints yet: an editor publishes them.'), statsErr,
  stats.capped ? h('p', { class: 'muted' }, 'Traffic counts the newest 200000 requests of the last hour.') : '');
}

function endpointForm(ep, scripts, onSubmit, submitLabel) {
  const name = h('input', { id: 'ep-name', value: ep.name || '', required: true, disabled: !!ep.created });
  const path = h('input', { id: 'ep-path', value: ep.path || '/', required: true, placeholder: '/orders/{id}' });
  const script = h('select', { id: 'ep-script' }, scripts.map((s) => h('option', { value: s.name, selected: s.name === ep.script }, s.name)));
  const auth = h('select', { id: 'ep-auth' }, [['jwt', 'JWT (Bearer token)'], ['apikey', 'API key'], ['public', 'Public (no auth)']]
    .map(([v, l]) => h('option', { value: v, selected: v === (ep.auth || 'jwt') }, l)));
  const methods = METHODS.map((m) => h('input', { type: 'checkbox', value: m, id: 'ep-method-' + m, checked: (ep.methods || ['GET']).includes(m) }));
  const err = h('div', { class: 'slot', id: 'ep-error' });
  const form = h('form', { class: 'card', id: 'endpoint-form' },
    field('Name', name), field('Path', path, 'Parameters in braces: /orders/{id}'), field('Script', script), field('Auth', auth),
    h('fieldset', { class: 'methods' }, h('legend', {}, 'Methods'), methods.map((c) => h('label', {}, c, c.value))),
    err, h('button', { type: 'submit', class: 'primary', id: 'ep-submit' }, submitLabel));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { name: name.value.trim(), path: path.value.trim(), script: script.value, auth: auth.value,
      methods: methods.filter((c) => c.checked).map((c) => c.value) };
    await guard(err, () => onSubmit(body));
  });
  return form;
}

export async function endpointScreen(main, name, scriptName) {
  main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/endpoints' }, 'Endpoints'), ' / ', name === '+new' ? 'new' : name));
  const slot = h('div', { class: 'slot' });
  main.append(slot);
  const scripts = await guard(slot, () => api('GET', '/scripts'));
  if (!scripts) return;
  if (name === '+new') {
    main.append(h('h1', {}, 'New endpoint'));
    if (scripts.scripts.length === 0) {
      main.append(h('p', { class: 'empty' }, 'An endpoint runs a script: create one first under ', h('a', { href: '#/scripts' }, 'Scripts'), '.'));
      return;
    }
    const s = scriptName || scripts.scripts[0].name;
    main.append(endpointForm({ name: s, path: '/' + s, script: s, auth: 'jwt', methods: ['GET'] }, scripts.scripts, async (body) => {
      await api('POST', '/endpoints', body);
      go('#/endpoints/' + enc(body.name));
    }, 'Publish'));
    return;
  }
  let ep;
  try { ep = await api('GET', '/endpoints/' + enc(name)); } catch (e) { main.append(errorBox(e)); return; }
  const url = fullUrl(ep);
  main.append(h('h1', {}, 'Endpoint ', h('code', {}, ep.name)),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Full URL'), h('dd', {}, h('code', { id: 'ep-url' }, url), copyButton(url)),
      h('dt', {}, 'Methods'), h('dd', {}, (ep.methods || []).join(', ')),
      h('dt', {}, 'Auth'), h('dd', {}, ep.auth, ep.auth === 'jwt' ? [' – create a token under ', h('a', { href: '#/security' }, 'Security')] : null),
      h('dt', {}, 'Script'), h('dd', {}, h('a', { href: '#/scripts/' + enc(ep.script) }, ep.script)),
      h('dt', {}, 'Created'), h('dd', {}, when(ep.created))),
    h('h2', {}, 'Call it'),
    h('div', { class: 'snippet' }, h('pre', { id: 'ep-curl' }, curlLine(ep)), copyButton(curlLine(ep))),
    h('div', { class: 'snippet' }, h('pre', { id: 'ep-python' }, pythonSnippet(ep)), copyButton(pythonSnippet(ep))),
    h('p', {}, h('a', { href: '#/logs?endpoint=' + enc(ep.name) }, 'Its requests in Logs')));
  if (!can('editor')) return;
  main.append(h('h2', {}, 'Edit'), endpointForm(ep, scripts.scripts, async (body) => {
    delete body.name;
    await api('PATCH', '/endpoints/' + enc(name), body);
    go('#/endpoints/' + enc(name));
  }, 'Save changes'));
  const rmErr = h('div', { class: 'slot' });
  main.append(h('div', { class: 'card danger-zone' }, h('h2', {}, 'Remove'),
    h('p', {}, 'Unpublishes the endpoint at once; its script stays.'),
    h('button', { type: 'button', class: 'danger', id: 'ep-remove', onclick: async () => {
      if (!confirm(`Unpublish ${name}?`)) return;
      if (await guard(rmErr, () => api('DELETE', '/endpoints/' + enc(name))) !== null) go('#/endpoints');
    } }, 'Remove endpoint'), rmErr));
}
