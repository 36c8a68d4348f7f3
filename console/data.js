// data.js - the Connections screen (warehouse connections, a table browser, a read-only query
// box, secrets by name) and the Webhooks screen (URL, sources, events, payloads, replay).
import { api, h, clear, guard, table, field, when, enc, qs, copyButton, errorBox } from './api.js';
import { can, go, publicBase } from './app.js';

function rowsTable(r) {
  if (!r.rows || r.rows.length === 0) return h('p', { class: 'empty' }, 'No rows.');
  return [h('div', { class: 'table-wrap' }, h('table', { class: 'rows' },
    h('thead', {}, h('tr', {}, r.columns.map((c) => h('th', { scope: 'col' }, typeof c === 'string' ? c : c.name)))),
    h('tbody', {}, r.rows.map((row) => h('tr', {}, row.map((v) => h('td', {}, v === null ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v)))))))),
  h('p', { class: 'muted' }, `${r.count} rows${r.truncated ? ' (more not shown)' : ''}`)];
}

async function browser(main, conn, schema, tbl) {
  const base = '/connections/' + enc(conn);
  main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/connections' }, 'Connections'), ' / ',
    schema ? h('a', { href: '#/connections/' + enc(conn) }, conn) : conn,
    schema ? [' / ', tbl ? h('a', { href: `#/connections/${enc(conn)}/${enc(schema)}` }, schema) : schema] : null,
    tbl ? [' / ', tbl] : null), h('h1', {}, tbl ? `${schema}.${tbl}` : schema || conn));
  const slot = h('div', { class: 'slot' });
  main.append(slot);
  if (!schema) {
    const r = await guard(slot, () => api('GET', base + '/schemas'));
    if (r) slot.append(table([{ label: 'Schema', get: (s) => h('a', { href: `#/connections/${enc(conn)}/${enc(s)}` }, s) }],
      r.schemas, 'No schemas: import data (`portico db import`) or write tables from a script.'));
  } else if (!tbl) {
    const r = await guard(slot, () => api('GET', `${base}/schemas/${enc(schema)}/tables`));
    if (r) slot.append(table([
      { label: 'Table', get: (t) => h('a', { href: `#/connections/${enc(conn)}/${enc(schema)}/${enc(t.name)}` }, t.name) },
      { label: 'Kind', get: (t) => (t.view ? 'view' : 'table') }], r.tables, 'No tables in this schema.'));
  } else {
    const r = await guard(slot, () => api('GET', `${base}/schemas/${enc(schema)}/tables/${enc(tbl)}`));
    if (r) slot.append(h('h2', {}, 'Columns'), table([
      { label: 'Column', get: (c) => c.name }, { label: 'Type', get: (c) => c.sql_type || c.type },
      { label: 'Key', get: (c) => (c.pk ? 'primary' : '') }, { label: 'Not null', get: (c) => (c.notnull ? 'yes' : '') }], r.columns, 'No columns.'));
    const rows = h('div', { class: 'slot' });
    main.append(h('h2', {}, 'First 50 rows'), rows);
    const d = await guard(rows, () => api('GET', `${base}/schemas/${enc(schema)}/tables/${enc(tbl)}/rows?limit=50`));
    if (d) rows.append(rowsTable(d));
  }
  const sql = h('textarea', { id: 'query-sql', rows: 3, placeholder: 'SELECT * FROM schema.table LIMIT 10' });
  const out = h('div', { class: 'slot', id: 'query-output' });
  const form = h('form', { class: 'card' }, h('h2', {}, 'Query (read only)'), field('SQL', sql, 'One SELECT or WITH; at most 100 rows, 10 s.'),
    h('button', { type: 'submit' }, 'Run query'), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await guard(out, () => api('POST', base + '/query', { sql: sql.value }));
    if (r) out.append(rowsTable(r));
  });
  main.append(form);
}

async function secretsSection(main) {
  const sec = h('section', { class: 'card', id: 'secrets' }, h('h2', {}, 'Secrets'),
    h('p', { class: 'muted' }, 'Handlers read them with pq.get_secret(name). Values go in and never come out: not here, not in the API.'));
  main.append(sec);
  if (!can('admin')) { sec.append(h('p', { class: 'empty' }, 'Only an admin sees and manages secrets.')); return; }
  const err = h('div', { class: 'slot' });
  const name = h('input', { id: 'secret-name', required: true, placeholder: 'crm_api_key' });
  const value = h('input', { id: 'secret-value', type: 'password', required: true, autocomplete: 'off' });
  const form = h('form', { class: 'inline', id: 'secret-form' }, field('Name', name), field('Value', value),
    h('button', { type: 'submit', class: 'primary' }, 'Set secret'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const ok = await guard(err, () => api('POST', '/secrets', { name: name.value.trim(), value: value.value }));
    value.value = '';
    if (ok) go('#/connections');
  });
  sec.append(form, err);
  const r = await guard(err, () => api('GET', '/secrets'));
  if (!r) return;
  sec.append(table([
    { label: 'Name', get: (s) => h('code', {}, s.name) }, { label: 'Updated', get: (s) => when(s.updated || s.created) },
    { label: '', get: (s) => {
      const v = h('input', { type: 'password', 'aria-label': `New value of ${s.name}`, autocomplete: 'off', placeholder: 'new value' });
      return h('span', { class: 'actions' }, v,
        h('button', { type: 'button', onclick: async () => {
          if (await guard(err, () => api('PUT', '/secrets/' + enc(s.name), { value: v.value }))) { v.value = ''; go('#/connections'); }
        } }, 'Replace'),
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (confirm(`Remove secret ${s.name}?`) && await guard(err, () => api('DELETE', '/secrets/' + enc(s.name)))) go('#/connections');
        } }, 'Remove'));
    } },
  ], r.secrets, 'No secrets yet: set one above (an API key of a system your handlers call, a password, ...).'));
}

export async function connectionsScreen(main, rest) {
  if (rest[0] !== undefined) return browser(main, rest[0], rest[1], rest[2]);
  main.append(h('h1', {}, 'Connections'));
  const err = h('div', { class: 'slot' });
  if (can('editor')) {
    const name = h('input', { id: 'conn-name', required: true });
    const kind = h('select', { id: 'conn-kind' }, h('option', { value: 'postgres' }, 'PostgreSQL'), h('option', { value: 'sqlite' }, 'SQLite (embedded)'));
    const dsn = h('input', { id: 'conn-dsn', placeholder: 'host=db dbname=erp user=ro password=…' });
    const form = h('form', { class: 'inline card', id: 'conn-form' }, h('h2', {}, 'Add a warehouse connection'),
      field('Name', name), field('Kind', kind), field('DSN (PostgreSQL)', dsn, 'Checked before it is stored'),
      h('button', { type: 'submit', class: 'primary' }, 'Add connection'), err);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { name: name.value.trim(), kind: kind.value };
      if (kind.value === 'postgres') body.dsn = dsn.value;
      if (await guard(err, () => api('POST', '/connections', body))) go('#/connections');
    });
    main.append(form);
  }
  const list = h('div', { class: 'slot' });
  main.append(list);
  const r = await guard(list, () => api('GET', '/connections'));
  if (r) list.append(table([
    { label: 'Name', get: (c) => h('a', { href: '#/connections/' + enc(c.name) }, c.name) },
    { label: 'Kind', get: (c) => c.kind }, { label: 'Location', get: (c) => c.location || '' },
    { label: '', get: (c) => (can('editor') && c.name !== 'dw' ? h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (confirm(`Remove connection ${c.name}? Its data is not touched.`) && await guard(list, () => api('DELETE', '/connections/' + enc(c.name)))) go('#/connections');
    } }, 'Remove') : '') },
  ], r.connections, 'No connections: add a PostgreSQL database above.'));
  await secretsSection(main);
}

export async function webhooksScreen(main, rest) {
  main.append(h('h1', {}, 'Webhooks'));
  const urlSlot = h('div', { class: 'slot', id: 'webhook-url' });
  main.append(h('section', { class: 'card' }, h('h2', {}, 'Webhook URL'), urlSlot));
  async function showUrl() {
    const r = await guard(urlSlot, () => api('GET', '/webhooks/url' + qs({ base: publicBase() })));
    if (!r) return;
    const u = r.url || r.path;
    urlSlot.append(h('div', { class: 'snippet' }, h('code', {}, u), copyButton(u)),
      h('p', { class: 'muted' }, 'Give this URL to the sending system; add a source below to verify its signatures and run a script per event.'),
      can('admin') ? h('button', { type: 'button', class: 'danger', onclick: async () => {
        if (confirm('Rotate the webhook URL? The old one stops accepting events at once.') && await guard(urlSlot, () => api('POST', '/webhooks/rotate', {}))) showUrl();
      } }, 'Rotate URL') : '');
  }
  await showUrl();

  const srcSec = h('section', { class: 'card' }, h('h2', {}, 'Sources'));
  main.append(srcSec);
  const err = h('div', { class: 'slot' });
  if (can('editor')) {
    const name = h('input', { id: 'src-name', required: true, placeholder: 'github' });
    const verify = h('select', { id: 'src-verify' }, ['', 'github', 'stripe', 'hmac-sha256'].map((v) => h('option', { value: v }, v || 'none')));
    const secret = h('input', { id: 'src-secret', placeholder: 'name of a stored secret' });
    const header = h('input', { id: 'src-header', placeholder: 'for hmac-sha256' });
    const script = h('input', { id: 'src-script', placeholder: 'script run per event' });
    const form = h('form', { class: 'inline' }, field('Name', name), field('Verify', verify), field('Secret', secret),
      field('Signature header', header), field('Script', script), h('button', { type: 'submit', class: 'primary' }, 'Add source'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { name: name.value.trim() };
      for (const [k, el] of [['verify', verify], ['secret', secret], ['header', header], ['script', script]]) if (el.value.trim()) body[k] = el.value.trim();
      if (await guard(err, () => api('POST', '/webhooks/sources', body))) go('#/webhooks');
    });
    srcSec.append(form);
  }
  srcSec.append(err);
  const src = await guard(err, () => api('GET', '/webhooks/sources'));
  if (src) srcSec.append(table([
    { label: 'Name', get: (s) => s.name }, { label: 'Verify', get: (s) => s.verify || 'none' },
    { label: 'Secret', get: (s) => s.secret || '' }, { label: 'Script', get: (s) => s.script || '' },
    { label: 'Created', get: (s) => when(s.created) },
    { label: '', get: (s) => (can('editor') ? h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (confirm(`Remove source ${s.name}?`) && await guard(err, () => api('DELETE', '/webhooks/sources/' + enc(s.name)))) go('#/webhooks');
    } }, 'Remove') : '') },
  ], src.sources, 'No sources: events are stored as they come; add one to verify signatures and run a script.'));

  const evSec = h('section', { class: 'card' }, h('h2', {}, 'Events'));
  main.append(evSec);
  const fSource = h('input', { id: 'ev-source', placeholder: 'any' });
  const fStatus = h('select', { id: 'ev-status' }, ['', 'received', 'pending', 'processing', 'done', 'failed'].map((v) => h('option', { value: v }, v || 'any')));
  const fSince = h('input', { id: 'ev-since', value: '1d', size: 5 });
  const filters = h('form', { class: 'inline filters' }, field('Source', fSource), field('Status', fStatus), field('Since', fSince),
    h('button', { type: 'submit' }, 'Filter'));
  const evList = h('div', { class: 'slot' });
  const payload = h('div', { class: 'slot', id: 'event-payload' });
  evSec.append(filters, evList, payload);
  async function events() {
    const r = await guard(evList, () => api('GET', '/webhooks/events' + qs({ source: fSource.value.trim(), status: fStatus.value, since: fSince.value.trim(), limit: 100 })));
    if (r) evList.append(table([
      { label: 'Id', get: (e) => h('button', { type: 'button', class: 'link', onclick: () => showEvent(e.id) }, String(e.id)) },
      { label: 'Received', get: (e) => when(e.received_at) },
      { label: 'Source', get: (e) => e.source || '(none)' }, { label: 'Method', get: (e) => e.method || '' },
      { label: 'Bytes', get: (e) => String(e.bytes ?? '') }, { label: 'Status', get: (e) => e.status || '' },
      { label: 'Attempts', get: (e) => String(e.attempts ?? '') }, { label: 'Last error', get: (e) => e.last_error || '' },
    ], r.events, 'No events match: send one to the webhook URL above, or widen the filters.'));
  }
  async function showEvent(id) {
    const e = await guard(payload, () => api('GET', '/webhooks/events/' + enc(id)));
    if (!e) return;
    const body = e.body_base64 ? '(base64) ' + e.body : e.body;
    payload.append(h('h3', {}, `Event ${id}: ${e.method || ''} ${e.path || ''}${e.query_string ? '?' + e.query_string : ''}`),
      h('pre', {}, Object.entries(e.headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n')),
      h('pre', { class: 'payload' }, body || ''),
      can('editor') ? h('button', { type: 'button', onclick: async () => {
        if (await guard(payload, () => api('POST', `/webhooks/events/${enc(id)}/replay`, {}))) { payload.append(h('div', { class: 'ok' }, 'Queued again.')); events(); }
      } }, 'Replay') : '');
  }
  filters.addEventListener('submit', (e) => { e.preventDefault(); events(); });
  await events();
  void rest; void errorBox;
}
