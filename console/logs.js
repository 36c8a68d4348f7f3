// logs.js - the Logs screen (filters, a live tail over Server-Sent Events, a request's detail
// with its printed lines and traceback) and the Audit screen.
import { api, h, clear, guard, table, field, when, enc, qs, errorBox, PREFIX } from './api.js';

const COLS = [
  { label: 'Time', get: (q) => when(q.time) },
  { label: 'Request', get: (q) => h('a', { href: '#/logs/' + enc(q.request_id), class: 'rid' }, q.request_id) },
  { label: 'Endpoint', get: (q) => q.endpoint || '–' },
  { label: 'Method', get: (q) => q.method },
  { label: 'Path', get: (q) => q.path },
  { label: 'Status', get: (q) => h('span', { class: q.status >= 500 ? 'st5' : q.status >= 400 ? 'st4' : 'st2' }, String(q.status)) },
  { label: 'Duration', get: (q) => `${Number(q.duration_ms).toFixed(1)} ms` },
  { label: 'Caller', get: (q) => (q.caller ? `${q.caller.type}:${q.caller.name || q.caller.id}` : '') },
];

export async function logsScreen(main, params) {
  main.append(h('h1', {}, 'Logs'));
  const endpoint = h('input', { id: 'log-endpoint', value: params.get('endpoint') || '', placeholder: 'any' });
  const status = h('input', { id: 'log-status', value: params.get('status') || '', placeholder: '5xx, 404', size: 5 });
  const since = h('input', { id: 'log-since', value: params.get('since') || '1h', size: 5 });
  const rid = h('input', { id: 'log-request-id', value: params.get('request_id') || '', placeholder: 'request id' });
  const live = h('input', { type: 'checkbox', id: 'log-live' });
  const filters = h('form', { class: 'inline filters', id: 'log-filters' }, field('Endpoint', endpoint), field('Status', status),
    field('Since', since), field('Request id', rid), h('button', { type: 'submit', class: 'primary' }, 'Filter'),
    h('label', { class: 'check' }, live, 'Live tail'));
  const err = h('div', { class: 'slot' });
  const list = h('div', { class: 'slot', id: 'log-list' });
  const more = h('div', { class: 'slot' });
  main.append(filters, err, list, more);
  let rows = [];
  let tail = null;
  const filt = () => ({ endpoint: endpoint.value.trim(), status: status.value.trim(), request_id: rid.value.trim() });

  function draw() {
    clear(list).append(table(COLS, rows, 'No requests match: call an endpoint (see Endpoints for its URL), or widen the filters.',
      { class: 'logs' }));
  }
  async function load(before) {
    const r = await guard(err, () => api('GET', '/logs' + qs({ ...filt(), since: since.value.trim(), limit: 50, before_id: before })));
    if (!r) return;
    rows = before ? rows.concat(r.requests) : r.requests;
    draw();
    clear(more);
    if (r.next_before_id !== null && r.next_before_id !== undefined) {
      more.append(h('button', { type: 'button', onclick: () => load(r.next_before_id) }, 'Older requests'));
    }
  }
  function stopTail() {
    if (tail) { tail.close(); tail = null; }
    delete document.body.dataset.tail;
  }
  function startTail() {
    stopTail();
    tail = new EventSource(PREFIX + '/logs/stream' + qs(filt()));
    tail.onmessage = (ev) => {
      try { rows.unshift(JSON.parse(ev.data)); } catch (_) { return; }
      if (rows.length > 500) rows.length = 500;
      draw();
    };
    tail.onerror = () => {
      clear(err).append(h('div', { class: 'notice' }, 'Live tail interrupted: reconnecting…'));
    };
    tail.onopen = () => { clear(err); document.body.dataset.tail = 'open'; }; // tests wait for it
  }
  filters.addEventListener('submit', async (e) => { e.preventDefault(); await load(); if (live.checked) startTail(); });
  live.addEventListener('change', () => (live.checked ? startTail() : stopTail()));
  await load();
  return stopTail;
}

export async function logScreen(main, requestId) {
  main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/logs' }, 'Logs'), ' / ', requestId), h('h1', {}, 'Request ', h('code', {}, requestId)));
  let q;
  try { q = await api('GET', '/logs/' + enc(requestId)); } catch (e) {
    main.append(errorBox(e), h('p', { class: 'empty' }, 'Requests are written within about a second; reload in a moment, or check the filters in Logs.'));
    return;
  }
  main.append(h('dl', { class: 'facts' },
    h('dt', {}, 'Time'), h('dd', {}, when(q.time)),
    h('dt', {}, 'Endpoint'), h('dd', {}, q.endpoint ? h('a', { href: '#/endpoints/' + enc(q.endpoint) }, q.endpoint) : '–'),
    h('dt', {}, 'Request'), h('dd', {}, `${q.method} ${q.path}`),
    h('dt', {}, 'Status'), h('dd', {}, String(q.status)),
    h('dt', {}, 'Duration'), h('dd', {}, `${Number(q.duration_ms).toFixed(2)} ms`),
    h('dt', {}, 'Bytes'), h('dd', {}, `${q.bytes_in} in, ${q.bytes_out} out`),
    h('dt', {}, 'Caller'), h('dd', {}, q.caller ? `${q.caller.type} ${q.caller.name || ''} (${q.caller.id || ''})` : 'anonymous'),
    h('dt', {}, 'Worker'), h('dd', {}, String(q.worker))),
  h('h2', {}, 'Printed'),
  q.printed && q.printed.length ? h('pre', { class: 'printed', id: 'log-printed' }, q.printed.join('\n')) : h('p', { class: 'empty' }, 'The handler printed nothing.'),
  h('h2', {}, 'Traceback'),
  q.traceback ? h('pre', { class: 'traceback', id: 'log-traceback' }, q.traceback) : h('p', { class: 'empty' }, 'No exception.'));
}

export async function auditScreen(main) {
  main.append(h('h1', {}, 'Audit'), h('p', { class: 'muted' }, 'Every change, by whom and when: through this console, the admin API or the CLI.'));
  const since = h('input', { id: 'audit-since', value: '7d', size: 5 });
  const actor = h('input', { id: 'audit-actor', placeholder: 'any' });
  const form = h('form', { class: 'inline filters' }, field('Since', since), field('Actor', actor), h('button', { type: 'submit', class: 'primary' }, 'Filter'));
  const list = h('div', { class: 'slot' });
  main.append(form, list);
  async function load() {
    const r = await guard(list, () => api('GET', '/audit' + qs({ since: since.value.trim(), actor: actor.value.trim(), limit: 200 })));
    if (r) list.append(table([
      { label: 'Time', get: (e) => when(e.time) }, { label: 'Actor', get: (e) => e.actor },
      { label: 'Action', get: (e) => h('code', {}, e.action) }, { label: 'Object', get: (e) => e.object || '' },
      { label: 'Detail', get: (e) => h('code', { class: 'detail' }, typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail)) },
    ], r.entries, 'No changes in this period: changes made here or with the CLI appear as they happen.'));
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  await load();
}
