// api.js - the admin API client and the DOM helpers every screen uses.
// No request leaves the page: everything goes to this origin's /_portico/admin/v1.

export const PREFIX = '/_portico/admin/v1';
let csrf = null;
let onUnauthorized = () => {};

export function setCsrf(token) { csrf = token; }
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export class ApiError extends Error {
  constructor(status, body, text) {
    const e = (body && body.error) || {};
    super(e.message || (text && text.length < 300 ? text : `HTTP ${status}`));
    this.status = status;
    this.code = e.code || 'http_' + status;
    this.field = e.field || null;
    this.line = e.line || null;
    this.syntaxError = e.syntax_error || null;
  }
}

// api('GET', '/scripts') -> parsed JSON (or text with {raw: true}); throws ApiError.
export async function api(method, path, body, opts = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrf && method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf;
  let r;
  try {
    r = await fetch(PREFIX + path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, null, 'cannot reach the server: ' + err.message);
  }
  const text = await r.text();
  let data = null;
  if ((r.headers.get('content-type') || '').includes('json')) {
    try { data = JSON.parse(text); } catch (_) { data = null; }
  }
  if (!r.ok) {
    const err = new ApiError(r.status, data, text);
    if (r.status === 401 && !opts.noAuthRedirect) onUnauthorized(err);
    throw err;
  }
  return opts.raw ? text : (data === null ? {} : data);
}

// Query string from an object, skipping empty values.
export function qs(obj) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== '' && v !== null && v !== undefined) p.set(k, v);
  const s = p.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;

// h('div', {class: 'x', onclick: fn}, child, ...) -> Element. Children: nodes, strings,
// arrays, null. Text is always set as text, never parsed as HTML.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) add(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

// An error box for where the call was made: message, code, field.
export function errorBox(err) {
  const parts = [err.message || String(err)];
  if (err.field) parts.push(`(field: ${err.field})`);
  return h('div', { class: 'error', role: 'alert' }, parts.join(' '));
}

// Runs fn; on failure shows the error in `slot` (an element). Returns fn's result or null.
export async function guard(slot, fn) {
  if (slot) clear(slot);
  try {
    return await fn();
  } catch (err) {
    if (slot) slot.append(errorBox(err));
    else console.error(err);
    return null;
  }
}

export function copyButton(getText, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'copy', title: 'Copy to the clipboard' }, label);
  b.addEventListener('click', async () => {
    const text = typeof getText === 'function' ? getText() : getText;
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      const ta = h('textarea', { class: 'offscreen' }, text);
      document.body.append(ta); ta.select(); document.execCommand('copy'); ta.remove();
    }
    b.textContent = 'Copied';
    setTimeout(() => { b.textContent = label; }, 1500);
  });
  return b;
}

export function when(ms) {
  if (ms === null || ms === undefined || ms === '') return '';
  const n = typeof ms === 'number' ? (ms > 1e11 ? ms : ms * 1000) : Date.parse(ms);
  if (Number.isNaN(n)) return String(ms);
  return new Date(n).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// A table: cols [{label, get(row) -> node|string}], rows; empty -> the `empty` message.
export function table(cols, rows, empty, opts = {}) {
  if (!rows || rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', { class: opts.class || '' },
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c.label)))),
      h('tbody', {}, rows.map((r) => h('tr', opts.rowAttrs ? opts.rowAttrs(r) : {},
        cols.map((c) => h('td', { 'data-label': c.label }, c.get(r))))))));
}

// A labelled form field.
export function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', {}, hint) : null);
}

export function link(href, text) { return h('a', { href }, text); }
