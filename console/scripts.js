// scripts.js - the Scripts screens: the list, and a script's editor with syntax check on save,
// version history (view, diff, rollback), the Run panel (a test run of the draft) and the
// Runs panel (the saved script run in the background, its runs and their output as it grows).
import { api, h, clear, guard, table, field, when, enc, errorBox } from './api.js';
import { can, go } from './app.js';

// The "API handler" boilerplate (modelled on what Peliqan's new API handler scripts start with).
export const API_HANDLER = `import json
from urllib.parse import parse_qs


def handler(request):
    # The incoming request
    method = request['method']        # "GET", "POST", ...
    path = request['path']            # "/orders/7"
    headers = request['headers']      # {"content-type": "...", ...}
    query = parse_qs(request['query_string'])   # ?id=7 -> {"id": ["7"]}
    body = json.loads(request['data']) if request['data'] else None

    # Printed lines go to the request log (Logs screen)
    print(f"{method} {path} query={query}")

    # Read rows from a warehouse table, e.g. ?table=salesforce.accounts
    if 'table' in query:
        schema, table = query['table'][0].split('.', 1)
        dbconn = pq.dbconnect('dw')
        return dbconn.fetch('dw', schema, table)

    # Return a dict or list (sent as JSON), or (body, status, headers)
    return {'method': method, 'query': query, 'body': body}
`;

const EMPTY = `def handler(request):
    return {'hello': 'world'}
`;

const fresh = new Map(); // name -> boilerplate of a script created here and not saved yet

export async function scriptsScreen(main) {
  main.append(h('h1', {}, 'Scripts'));
  const err = h('div', { class: 'slot' });
  if (can('editor')) {
    const name = h('input', { id: 'new-script-name', required: true, placeholder: 'orders_api' });
    const kind = h('select', { id: 'new-script-kind' },
      h('option', { value: 'api' }, 'API handler (boilerplate)'), h('option', { value: 'empty' }, 'Minimal handler'));
    const form = h('form', { class: 'inline card', id: 'new-script-form' },
      h('h2', {}, 'New script'), field('Name', name), field('Starts from', kind),
      h('button', { type: 'submit', class: 'primary', id: 'new-script-submit' }, 'Create'), err);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const n = name.value.trim();
      if (!n) return;
      fresh.set(n, kind.value === 'api' ? API_HANDLER : EMPTY);
      go('#/scripts/' + enc(n));
    });
    main.append(form);
  }
  const list = h('div', { class: 'slot' });
  main.append(list);
  const r = await guard(list, () => api('GET', '/scripts'));
  if (!r) return;
  list.append(table([
    { label: 'Name', get: (s) => h('a', { href: '#/scripts/' + enc(s.name) }, s.name) },
    { label: 'Current version', get: (s) => String(s.current) },
    { label: 'Versions', get: (s) => String(s.versions) },
    { label: 'Updated', get: (s) => when(s.updated) },
  ], r.scripts, can('editor') ? 'No scripts yet: create one above, starting from the API handler boilerplate.'
    : 'No scripts yet: an editor or admin creates them.'));
}

function renderDiff(text) {
  return h('pre', { class: 'diff' }, text.split('\n').map((l) => h('span', {
    class: l.startsWith('+') && !l.startsWith('+++') ? 'add' : l.startsWith('-') && !l.startsWith('---') ? 'del' : l.startsWith('@@') ? 'hunk' : '',
  }, l + '\n')));
}

export async function scriptScreen(main, name) {
  const title = h('h1', {}, 'Script ', h('code', {}, name));
  const status = h('div', { class: 'slot', id: 'script-status', 'aria-live': 'polite' });
  const err = h('div', { class: 'slot', id: 'script-error', 'aria-live': 'assertive' });
  main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/scripts' }, 'Scripts'), ' / ', name), title);
  let script = null;
  try {
    script = await api('GET', '/scripts/' + enc(name));
  } catch (e) {
    if (e.status !== 404 || !fresh.has(name)) { main.append(errorBox(e)); return; }
  }
  const source = script ? script.source : fresh.get(name);
  const editorHost = h('div', { class: 'editor', id: 'editor' });
  const saveBtn = h('button', { type: 'button', class: 'primary', id: 'save-script', disabled: !can('editor') }, 'Save');
  const publishBtn = h('button', { type: 'button', id: 'publish-script', disabled: !script || !can('editor') }, 'Publish as endpoint');
  const removeBtn = h('button', { type: 'button', class: 'danger', id: 'remove-script', disabled: !script || !can('editor') }, 'Remove');
  main.append(h('div', { class: 'toolbar' }, saveBtn, publishBtn, removeBtn,
    h('span', { class: 'hint' }, 'Ctrl-S saves; Esc leaves the editor.')), status, err, editorHost);
  if (!script) status.append(h('div', { class: 'notice' }, 'New script: not saved yet. Save stores version 1.'));
  else status.append(h('div', { class: 'muted' }, `Version ${script.version} is current.`));

  const cm = window.CodeMirror(editorHost, {
    value: source, mode: 'python', lineNumbers: true, indentUnit: 4, tabSize: 4, indentWithTabs: false,
    readOnly: !can('editor'), screenReaderLabel: 'Script source',
    extraKeys: {
      'Ctrl-S': () => save(), 'Cmd-S': () => save(),
      Tab: (c) => c.execCommand('insertSoftTab'),
      Esc: () => saveBtn.focus(),
    },
  });
  let marked = null;
  function unmark() {
    if (marked !== null) { cm.removeLineClass(marked, 'wrap', 'line-error'); marked = null; }
  }
  cm.on('change', unmark);

  async function save() {
    if (!can('editor')) return;
    unmark(); clear(err);
    try {
      const r = await api('POST', '/scripts/' + enc(name) + '/versions', { source: cm.getValue() });
      fresh.delete(name);
      clear(status).append(h('div', { class: 'ok', id: 'saved' }, `Saved: version ${r.version} is current.`));
      script = await api('GET', '/scripts/' + enc(name));
      publishBtn.disabled = false; removeBtn.disabled = false; bgBtn.disabled = false;
      renderHistory();
    } catch (e) {
      if (e.line) {
        marked = e.line - 1;
        cm.addLineClass(marked, 'wrap', 'line-error');
        cm.scrollIntoView({ line: marked, ch: 0 }, 100);
        err.append(h('div', { class: 'error', role: 'alert', id: 'syntax-error' },
          `Not saved: SyntaxError at line ${e.line}: ${e.syntaxError || e.message}`));
      } else {
        err.append(errorBox(e));
      }
    }
  }
  saveBtn.addEventListener('click', save);
  publishBtn.addEventListener('click', () => go('#/endpoints/+new/' + enc(name)));
  removeBtn.addEventListener('click', async () => {
    if (!confirm(`Remove script ${name} and all its versions?`)) return;
    const ok = await guard(err, () => api('DELETE', '/scripts/' + enc(name)));
    if (ok !== null) go('#/scripts');
  });

  // Run panel
  const method = h('select', { id: 'run-method' }, ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => h('option', {}, m)));
  const path = h('input', { id: 'run-path', value: '/' + name });
  const query = h('input', { id: 'run-query', placeholder: 'a=1&b=2' });
  const body = h('textarea', { id: 'run-body', rows: 3, placeholder: '{"key": "value"}' });
  const out = h('div', { class: 'slot', id: 'run-output' });
  const runBtn = h('button', { type: 'submit', id: 'run-script', disabled: !can('editor') }, 'Run draft');
  const run = h('form', { class: 'card run' }, h('h2', {}, 'Run'),
    h('p', { class: 'muted' }, 'Runs the text in the editor through the real runtime, without saving or publishing it.'),
    h('div', { class: 'row' }, field('Method', method), field('Path', path), field('Query', query)),
    field('Body', body), runBtn, out);
  run.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await guard(out, () => api('POST', '/scripts/test', {
      source: cm.getValue(), name: script ? name : undefined, method: method.value,
      path: path.value || '/', query: query.value, body: body.value,
    }));
    if (!r) return;
    out.append(h('div', { class: 'result' },
      h('p', {}, h('strong', {}, `Status ${r.status}`), ` in ${Number(r.duration_ms).toFixed(1)} ms`),
      h('h3', {}, 'Headers'), h('pre', {}, Object.entries(r.headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n')),
      h('h3', {}, 'Body'), h('pre', { id: 'run-body-out' }, r.body_base64 ? '(binary, base64) ' + r.body : r.body),
      r.printed && r.printed.length ? [h('h3', {}, 'Printed'), h('pre', { class: 'printed' }, r.printed.join('\n'))] : null,
      r.traceback ? [h('h3', {}, 'Traceback'), h('pre', { class: 'traceback' }, r.traceback)] : null));
  });

  const history = h('section', { class: 'card', id: 'history' });
  const view = h('div', { class: 'slot' });
  function renderHistory() {
    clear(history).append(h('h2', {}, 'History'));
    if (!script) { history.append(h('p', { class: 'empty' }, 'No versions yet: save to store version 1.')); return; }
    const cur = script.version;
    history.append(table([
      { label: 'Version', get: (v) => String(v.version) + (v.version === cur ? ' (current)' : '') },
      { label: 'Stored', get: (v) => when(v.created) },
      { label: '', get: (v) => h('span', { class: 'actions' },
        h('button', { type: 'button', onclick: () => showVersion(v.version) }, 'View'),
        v.version !== cur ? h('button', { type: 'button', onclick: () => showDiff(v.version, cur) }, 'Diff with current') : null,
        v.version !== cur && can('editor') ? h('button', { type: 'button', onclick: () => rollback(v.version) }, 'Roll back to this') : null) },
    ], [...(script.versions || [])].reverse(), 'No versions yet.'), view);
  }
  async function showVersion(n) {
    const r = await guard(view, () => api('GET', `/scripts/${enc(name)}/versions/${n}`));
    if (r) view.append(h('h3', {}, `Version ${n}`), h('pre', { class: 'source' }, r.source));
  }
  async function showDiff(from, to) {
    const r = await guard(view, () => api('GET', `/scripts/${enc(name)}/diff?from=${from}&to=${to}`, undefined, { raw: true }));
    if (r !== null) view.append(h('h3', {}, `Diff ${from} → ${to}`), r ? renderDiff(r) : h('p', {}, 'No difference.'));
  }
  async function rollback(n) {
    if (!confirm(`Make version ${n} current again?`)) return;
    const r = await guard(view, () => api('POST', `/scripts/${enc(name)}/rollback`, { version: n }));
    if (!r) return;
    script = await api('GET', '/scripts/' + enc(name));
    cm.setValue(script.source);
    clear(status).append(h('div', { class: 'ok' }, `Rolled back: version ${r.current} is current.`));
    renderHistory();
  }
  renderHistory();

  // Runs panel: POST /scripts/{name}/runs, and GET /runs?script= refreshed every second while
  // one of them runs and this screen is shown.
  const runsCard = h('section', { class: 'card', id: 'runs' });
  const runsList = h('div', { class: 'slot', id: 'runs-list' });
  const runView = h('div', { class: 'slot', id: 'run-view' });
  const bgBtn = h('button', { type: 'button', id: 'run-background', disabled: !script || !can('editor') }, 'Run in background');
  let shown = null; // the run whose output is open
  async function refreshRuns() {
    if (!document.body.contains(runsCard)) return;
    const r = await guard(runsList, () => api('GET', `/runs?script=${enc(name)}&limit=10`));
    if (!r) return;
    runsList.append(table([
      { label: 'Run', get: (x) => h('button', { type: 'button', class: 'link', onclick: () => { shown = x.id; showRun(); } }, '#' + x.id) },
      { label: 'Version', get: (x) => String(x.version) },
      { label: 'Trigger', get: (x) => x.trigger },
      { label: 'Status', get: (x) => x.status },
      { label: 'Started', get: (x) => when(x.started) },
      { label: 'Exit', get: (x) => (x.exit_code === null ? '' : String(x.exit_code)) },
    ], r.runs, 'No runs yet.'));
    if (shown !== null) await showRun();
    if (r.runs.some((x) => x.status === 'running')) setTimeout(refreshRuns, 1000);
  }
  async function showRun() {
    const r = await guard(runView, () => api('GET', `/runs/${shown}`));
    if (!r) return;
    runView.append(h('h3', {}, `Run #${r.id}: ${r.status}` + (r.exit_code === null ? '' : `, exit code ${r.exit_code}`)),
      h('pre', { class: 'printed', id: 'run-log' }, r.output || '(no output yet)'),
      r.error ? h('pre', { class: 'traceback' }, r.error) : null);
  }
  bgBtn.addEventListener('click', async () => {
    const r = await guard(runView, () => api('POST', `/scripts/${enc(name)}/runs`, {}));
    if (r) { shown = r.id; refreshRuns(); }
  });
  runsCard.append(h('h2', {}, 'Runs'),
    h('p', { class: 'muted' }, 'Runs the saved current version as a job in a process of its own, as portico run --script does.'),
    bgBtn, runsList, runView);
  main.append(h('div', { class: 'cols' }, run, history), runsCard);
  if (script) refreshRuns();
  cm.focus();
}
