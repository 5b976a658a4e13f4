// MisyBot Tenancy operator dashboard: one ES module, no dependencies, no build step.
//
// Two rules hold everywhere below:
//  - Data from the API (tenant names, reasons, errors, audit details: user input) reaches the
//    page only as text: el() and textContent, never parsed as HTML (the test refuses the HTML sinks).
//  - The operator token lives in sessionStorage only (this tab, forgotten when it closes) and
//    travels only in the Authorization header, never in a URL.

const API = '/api/meta-agent/tenants';
const RECONCILE_API = '/api/meta-agent/reconciliation';
const OVERVIEW_API = '/api/meta-agent/overview';
const CELLS_API = '/api/meta-agent/cells';
const CONFIG_API = '/api/meta-agent/dashboard/config';
const TOKEN_KEY = 'misybot.operatorToken';
const POLL_MS = 2000;
const LIST_LIMIT = 25;
const CSV_PAGE = 500;
const CSV_MAX_PAGES = 40;
const ID_RE = /^[a-z][a-z0-9-]{1,38}[a-z0-9]$/;
const TABS = ['overview', 'operation', 'audit'];

// Permissions and the ceiling per tenant type (internal/model/tenant); the server stays the judge.
const PERMISSIONS = ['settings:read', 'settings:write', 'conversations:read', 'conversations:write', 'audit:read'];
const CEILING = {
  owner: PERMISSIONS,
  enterprise: PERMISSIONS,
  standard: ['settings:read', 'settings:write', 'conversations:read', 'conversations:write'],
  trial: ['settings:read', 'conversations:read', 'conversations:write'],
};

const SIGNAL_HELP = {
  approve: 'approve the onboarding',
  retry: 're-run the parked step',
  abort: 'give up: the steps done so far are undone',
  'cancel-offboard': 'cancel the offboarding (during the grace period)',
};

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

// el builds an element. Children that are not nodes become text nodes; attributes are set with
// setAttribute, so nothing is ever parsed as HTML.
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// ---- Token ----

const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || '',
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

// ---- API ----

class ApiError extends Error {
  constructor(problem, status) {
    super(problem.title || 'Error');
    this.problem = problem;
    this.status = status;
  }
}

async function request(method, path, { body, accept = 'application/json' } = {}) {
  const t = token.get();
  if (!t) {
    signOut(null);
    throw new ApiError({ title: 'Not signed in', detail: 'Paste an operator token to continue.' }, 401);
  }
  const init = { method, headers: { Authorization: 'Bearer ' + t, Accept: accept }, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError({ title: 'Network error', detail: 'The API did not answer (' + (e && e.message ? e.message : e) + ').' }, 0);
  }
  if (res.ok) return res;
  let problem = null;
  if ((res.headers.get('Content-Type') || '').includes('json')) {
    try { problem = await res.json(); } catch { problem = null; }
  }
  if (!problem || typeof problem !== 'object') problem = { title: 'HTTP ' + res.status, detail: res.statusText };
  if (res.status === 401) signOut(problem);
  throw new ApiError(problem, res.status);
}

async function getJSON(path) {
  return (await request('GET', path)).json();
}

async function send(method, path, body) {
  const res = await request(method, path, { body });
  return { status: res.status, data: res.status === 204 ? null : await res.json() };
}

const tenantPath = (id, rest = '') => API + '/' + enc(id) + rest;

// ---- Messages ----

// problemBox shows a problem document: its title and detail, what it adds about the conflict,
// and its field errors.
function problemBox(err, { fields = true } = {}) {
  const p = err instanceof ApiError ? err.problem : { title: 'Unexpected error', detail: String(err && err.message ? err.message : err) };
  const box = el('div', { class: 'alert error', role: 'alert' },
    el('strong', null, String(p.title || 'Error')),
    p.detail ? el('span', null, ' ' + String(p.detail)) : null);
  const extra = [];
  if (p.currentStatus) extra.push('Current status: ' + p.currentStatus);
  if (p.workflowId) extra.push('Running: ' + (p.workflow || 'workflow') + ' ' + p.workflowId);
  if (extra.length) box.append(el('div', { class: 'small' }, extra.join(' · ')));
  if (fields && Array.isArray(p.errors) && p.errors.length) {
    box.append(el('ul', null, p.errors.map((e) => el('li', null, el('code', null, String(e.field)), ': ' + String(e.message)))));
  }
  return box;
}

function showError(slot, err) {
  $(slot).replaceChildren(problemBox(err));
}

function note(slot, kind, ...content) {
  $(slot).replaceChildren(el('div', { class: 'alert ' + kind, role: 'status' }, ...content));
}

function clearSlot(slot) {
  $(slot).replaceChildren();
}

// ---- Formatting ----

function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1970) return '—';
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function timeCell(iso) {
  const d = new Date(iso || '');
  return el('time', { datetime: iso || null, title: Number.isNaN(d.getTime()) ? null : d.toLocaleString() }, fmtTime(iso));
}

function badge(value, extraClass = '') {
  const v = String(value || 'unknown');
  return el('span', { class: ('badge s-' + v.replace(/[^a-z_-]/gi, '') + ' ' + extraClass).trim() }, v.replace(/_/g, ' '));
}

function setBadge(node, value) {
  node.replaceWith(Object.assign(badge(value), { id: node.id }));
}

function shellQuote(s) {
  return "'" + String(s).replace(/'/g, "'\\''") + "'";
}

// safeHTTPLink returns a link for http(s) URLs only; anything else stays text.
function safeHTTPLink(url) {
  try {
    const u = new URL(url);
    if (u.protocol === 'http:' || u.protocol === 'https:') {
      return el('a', { href: u.href, target: '_blank', rel: 'noopener noreferrer' }, url);
    }
  } catch { /* not a URL */ }
  return document.createTextNode(url);
}

async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (not a secure context) or refused: copy from the selected input.
    if (!input) return false;
    input.focus();
    input.select();
    try { return document.execCommand('copy'); } catch { return false; }
  }
}

function copyButton(getText, label = 'Copy') {
  const b = el('button', { type: 'button', class: 'ghost small-btn' }, label);
  b.addEventListener('click', async () => {
    const ok = await copyText(getText());
    b.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => { b.textContent = label; }, 1500);
  });
  return b;
}

// ---- State ----

const state = {
  nav: 0,
  list: { seq: 0, cursor: '' },
  tenant: null,
  tab: 'overview',
  poll: { gen: 0, timer: 0, wasRunning: false, last: '' },
  audit: { seq: 0, cursor: '', tenantId: '', query: null },
  busy: false,
  // flash is a message for the next tenant view, shown once it has loaded.
  flash: null,
  config: { temporalUi: { url: 'http://127.0.0.1:8233', namespace: 'default' } },
};

// ---- Views ----

function showOnly(id) {
  for (const v of ['overview-view', 'tenant-view', 'register-view', 'reconcile-view', 'cells-view']) $(v).hidden = v !== id;
}

function showLogin() {
  $('app-view').hidden = true;
  $('session').hidden = true;
  $('login-view').hidden = false;
  $('login-token').focus();
}

function showApp() {
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('session').hidden = false;
}

function signOut(problem) {
  token.clear();
  stopPolling();
  state.tenant = null;
  state.audit.tenantId = '';
  $('tenant-rows').replaceChildren();
  $('load-more').hidden = true;
  if (problem) $('login-error').replaceChildren(problemBox(new ApiError(problem, 401)));
  else clearSlot('login-error');
  showLogin();
}

function parseRoute() {
  let parts;
  try {
    parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    parts = [];
  }
  if (parts[0] === 'new') return { view: 'new' };
  if (parts[0] === 'reconciliation') return { view: 'reconciliation', runId: parts[1] || '' };
  if (parts[0] === 'cells') return { view: 'cells' };
  if (parts[0] === 'tenants' && ID_RE.test(parts[1] || '')) {
    return { view: 'tenant', id: parts[1], tab: TABS.includes(parts[2]) ? parts[2] : 'overview' };
  }
  return { view: 'home' };
}

async function route() {
  if (!token.get()) {
    showLogin();
    return;
  }
  showApp();
  stopPolling();
  const r = parseRoute();
  const nav = ++state.nav;
  if (r.view === 'new') {
    showOnly('register-view');
    $('r-tenantId').focus();
  } else if (r.view === 'tenant') {
    await openTenant(r.id, r.tab, nav);
  } else if (r.view === 'reconciliation') {
    showOnly('reconcile-view');
    await loadReconciliation(r.runId);
  } else if (r.view === 'cells') {
    showOnly('cells-view');
    await loadCells(nav);
  } else {
    showOnly('overview-view');
    await loadOverview(nav);
  }
  markSelected(r.view === 'tenant' ? r.id : '');
}

// ---- Tenant list ----

function tenantRow(t) {
  const href = '#/tenants/' + enc(t.tenantId);
  const tr = el('tr', { 'data-id': t.tenantId },
    el('td', null, el('a', { href, class: 'tenant-link' },
      el('span', { class: 'tname' }, t.tenantName || t.tenantId),
      el('span', { class: 'mono small muted' }, t.tenantId))),
    el('td', null, t.tenantType),
    el('td', null, badge(t.status)));
  tr.addEventListener('click', (e) => {
    if (e.target.closest('a')) return;
    location.hash = href;
  });
  return tr;
}

function findRow(id) {
  return [...$('tenant-rows').children].find((tr) => tr.dataset.id === id) || null;
}

function updateRow(t) {
  const row = findRow(t.tenantId);
  if (row) {
    const fresh = tenantRow(t);
    if (row.classList.contains('selected')) fresh.classList.add('selected');
    row.replaceWith(fresh);
  }
}

function markSelected(id) {
  for (const tr of $('tenant-rows').children) tr.classList.toggle('selected', tr.dataset.id === id);
}

async function loadList(reset) {
  const seq = ++state.list.seq;
  const f = new FormData($('list-filters'));
  const q = new URLSearchParams({ limit: String(LIST_LIMIT) });
  for (const k of ['status', 'tenantType']) if (f.get(k)) q.set(k, f.get(k));
  // The search is an id prefix (the API's idPrefix): typed in any case, ids are lowercase.
  const search = String(f.get('idPrefix') || '').trim().toLowerCase();
  if (search) q.set('idPrefix', search);
  if (!reset && state.list.cursor) q.set('cursor', state.list.cursor);
  $('load-more').disabled = true;
  try {
    const page = await getJSON(API + '?' + q);
    if (seq !== state.list.seq) return;
    clearSlot('list-error');
    if (reset) $('tenant-rows').replaceChildren();
    for (const t of page.items || []) $('tenant-rows').append(tenantRow(t));
    state.list.cursor = page.nextCursor || '';
    $('load-more').hidden = !state.list.cursor;
    $('list-empty').hidden = $('tenant-rows').children.length > 0;
    const r = parseRoute();
    markSelected(r.view === 'tenant' ? r.id : '');
  } catch (err) {
    if (seq === state.list.seq) showError('list-error', err);
  } finally {
    $('load-more').disabled = false;
  }
}

// ---- Tenant detail ----

async function openTenant(id, tab, nav) {
  showOnly('tenant-view');
  if (!state.tenant || state.tenant.tenantId !== id) {
    state.tenant = null;
    clearSlot('t-error');
    $('t-name').textContent = id;
    $('t-id').textContent = 'loading…';
    $('t-actions').replaceChildren();
    $('t-fields').replaceChildren();
    $('t-reason').hidden = true;
    $('op-body').replaceChildren();
    clearSlot('op-error');
    try {
      const t = await getJSON(tenantPath(id));
      if (nav !== state.nav) return;
      state.tenant = t;
      renderTenant(t);
      if (state.flash) note('t-error', state.flash.kind, state.flash.text);
      state.flash = null;
    } catch (err) {
      if (nav !== state.nav) return;
      $('t-id').textContent = '';
      showError('t-error', err);
      return;
    }
  }
  selectTab(tab);
}

async function refreshTenant() {
  if (!state.tenant) return;
  const id = state.tenant.tenantId;
  try {
    const t = await getJSON(tenantPath(id));
    if (!state.tenant || state.tenant.tenantId !== id) return;
    const changed = JSON.stringify(t) !== JSON.stringify(state.tenant);
    state.tenant = t;
    if (changed) {
      renderTenant(t);
      updateRow(t);
    }
  } catch (err) {
    showError('t-error', err);
  }
}

function field(label, ...value) {
  return [el('dt', null, label), el('dd', null, ...value)];
}

function listOrNone(items, mono) {
  if (!items || items.length === 0) return [el('span', { class: 'muted' }, 'none')];
  return [el('ul', { class: 'chips' }, items.map((v) => el('li', { class: mono ? 'mono' : null }, v)))];
}

function renderTenant(t) {
  $('t-name').textContent = t.tenantName || t.tenantId;
  $('t-id').textContent = t.tenantId;
  setBadge($('t-status'), t.status);
  const reason = $('t-reason');
  reason.hidden = !t.statusReason;
  reason.className = 'reason' + (t.status === 'failed' ? ' bad' : t.status === 'suspended' ? ' warn' : '');
  reason.replaceChildren(el('strong', null, 'Reason: '), t.statusReason || '');
  $('t-fields').replaceChildren(
    ...field('Tenant id', el('span', { class: 'mono' }, t.tenantId)),
    ...field('Site id', el('span', { class: 'mono' }, t.siteId || '—')),
    ...field('Name', t.tenantName || '—'),
    ...field('Contact email', t.contactEmail || '—'),
    ...field('Website', t.websiteUrl ? safeHTTPLink(t.websiteUrl) : '—'),
    ...field('Business industry', t.businessIndustry || '—'),
    ...field('Type', t.tenantType),
    ...(t.cellId ? field('Cell', el('a', { href: '#/cells', class: 'mono', id: 't-cell' }, t.cellId)) : []),
    ...field('Status', badge(t.status), t.isActive ? ' (serving requests)' : ' (not serving requests)'),
    ...field('Status reason', t.statusReason || '—'),
    ...field('Allowed origins', ...listOrNone(t.allowedOrigins, true)),
    ...field('Permissions', ...listOrNone(t.permissions, true)),
    ...field('Created', timeCell(t.createdAt)),
    ...field('Updated', timeCell(t.updatedAt)),
  );
  renderActions(t);
  for (const tab of TABS) $('tab-link-' + tab).href = '#/tenants/' + enc(t.tenantId) + '/' + tab;
}

function selectTab(tab) {
  state.tab = tab;
  for (const name of TABS) {
    $('tab-' + name).hidden = name !== tab;
    const link = $('tab-link-' + name);
    link.setAttribute('aria-selected', String(name === tab));
    link.classList.toggle('active', name === tab);
  }
  if (tab === 'operation') loadOperation();
  if (tab === 'audit' && state.tenant && state.audit.tenantId !== state.tenant.tenantId) {
    $('audit-filters').reset();
    clearSlot('audit-verify-result');
    clearSlot('audit-error');
    loadAudit(true);
  }
}

// ---- Actions ----

const ACTIONS = [
  { label: 'Onboard', when: ['pending', 'failed'], run: onboardExisting, primary: true },
  { label: 'Suspend', when: ['active'], run: suspend },
  { label: 'Restore', when: ['suspended'], run: restore, primary: true },
  { label: 'Rotate secret', when: ['pending', 'onboarding', 'active', 'suspended', 'failed'], run: rotateSecret },
  { label: 'Rotate keys', when: ['active', 'suspended'], run: rotateKeys },
  { label: 'Offboard…', when: ['active', 'suspended', 'failed'], run: offboard, danger: true },
];

function renderActions(t) {
  const buttons = ACTIONS.filter((a) => a.when.includes(t.status)).map((a) =>
    el('button', { type: 'button', class: a.danger ? 'danger' : a.primary ? 'primary' : 'ghost', onclick: () => runAction(a) }, a.label));
  buttons.push(el('button', { type: 'button', class: 'ghost', onclick: () => refreshTenant() }, 'Reload'));
  $('t-actions').replaceChildren(...buttons);
}

async function runAction(action) {
  if (state.busy || !state.tenant) return;
  state.busy = true;
  const buttons = [...$('t-actions').querySelectorAll('button')];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await action.run(state.tenant);
  } catch (err) {
    showError('t-error', err);
  } finally {
    state.busy = false;
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// started reports a 202 and moves to the operation tab, which polls the run.
async function started(t, what, data) {
  note('t-error', 'success', el('strong', null, what + (data.existing ? ' was already running.' : ' started.')),
    ' Workflow ', el('code', null, data.workflowId || ''), '.');
  await refreshTenant();
  const target = '#/tenants/' + enc(t.tenantId) + '/operation';
  if (location.hash === target) loadOperation(); else location.hash = target;
}

async function onboardExisting(t) {
  const body = {
    tenantId: t.tenantId, siteId: t.siteId, tenantName: t.tenantName, contactEmail: t.contactEmail,
    websiteUrl: t.websiteUrl, businessIndustry: t.businessIndustry, allowedOrigins: t.allowedOrigins || [],
    permissions: t.permissions || [], tenantType: t.tenantType,
  };
  const { data } = await send('POST', API + '/onboard', body);
  await started(t, 'Onboarding', data);
}

async function suspend(t) {
  const ok = await confirmDialog({
    title: 'Suspend ' + t.tenantId + '?',
    message: 'The tenant\'s requests are refused and its sessions revoked until it is restored.',
    okLabel: 'Suspend', reason: true,
  });
  if (!ok) return;
  const { data } = await send('POST', tenantPath(t.tenantId, '/suspend'), ok.reason ? { reason: ok.reason } : undefined);
  await started(t, 'Suspension', data);
}

async function restore(t) {
  const { data } = await send('POST', tenantPath(t.tenantId, '/restore'));
  await started(t, 'Restore', data);
}

async function offboard(t) {
  const ok = await confirmDialog({
    title: 'Offboard ' + t.tenantId + '?',
    message: 'Offboarding exports the tenant\'s data, then destroys its keys and purges its PostgreSQL rows, MongoDB database and Redis keys. After the grace period this cannot be undone.',
    okLabel: 'Offboard', danger: true, reason: true, typed: t.tenantId,
  });
  if (!ok) return;
  const { data } = await send('POST', tenantPath(t.tenantId, '/offboard'), ok.reason ? { reason: ok.reason } : undefined);
  await started(t, 'Offboarding', data);
}

async function rotateKeys(t) {
  const ok = await confirmDialog({
    title: 'Rotate data keys of ' + t.tenantId + '?',
    message: 'Adds a new data key version and re-encrypts the tenant\'s data under it, in a workflow.',
    okLabel: 'Rotate keys',
  });
  if (!ok) return;
  const { data } = await send('POST', tenantPath(t.tenantId, '/keys/rotate'));
  await started(t, 'Key rotation', data);
}

async function rotateSecret(t) {
  const ok = await confirmDialog({
    title: 'Rotate the secret of ' + t.tenantId + '?',
    message: 'A new secret is issued and shown once. The current one keeps working only for the overlap period.',
    okLabel: 'Rotate secret',
  });
  if (!ok) return;
  const { data } = await send('POST', tenantPath(t.tenantId, '/secret/rotate'));
  await showSecret(data.tenantSecret, 'New secret of ' + t.tenantId + '. The previous secret stops working at ' +
    fmtTime(data.previousSecretValidUntil) + '.');
  note('t-error', 'success', 'Secret rotated; the previous one works until ' + fmtTime(data.previousSecretValidUntil) + '.');
}

// ---- Dialogs ----

let confirmResolve = null;

function confirmDialog({ title, message, okLabel, danger = false, reason = false, typed = '' }) {
  const d = $('confirm-dialog');
  $('confirm-title').textContent = title;
  $('confirm-message').textContent = message;
  $('confirm-reason-label').hidden = !reason;
  $('confirm-reason').value = '';
  $('confirm-typed-label').hidden = !typed;
  $('confirm-typed').value = '';
  $('confirm-typed-prompt').textContent = typed ? 'Type ' + typed + ' to confirm' : '';
  $('confirm-typed').dataset.expect = typed;
  const ok = $('confirm-ok');
  ok.textContent = okLabel;
  ok.className = danger ? 'danger' : 'primary';
  ok.disabled = !!typed;
  d.returnValue = '';
  d.showModal();
  (typed ? $('confirm-typed') : reason ? $('confirm-reason') : ok).focus();
  return new Promise((resolve) => { confirmResolve = resolve; });
}

function initConfirmDialog() {
  const d = $('confirm-dialog');
  $('confirm-typed').addEventListener('input', (e) => {
    $('confirm-ok').disabled = e.target.value !== e.target.dataset.expect;
  });
  $('confirm-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (!$('confirm-ok').disabled) d.close('ok');
  });
  $('confirm-cancel').addEventListener('click', () => d.close(''));
  d.addEventListener('close', () => {
    const resolve = confirmResolve;
    confirmResolve = null;
    if (resolve) resolve(d.returnValue === 'ok' ? { reason: $('confirm-reason').value.trim() } : null);
  });
}

function showSecret(secret, context, warning) {
  const d = $('secret-dialog');
  $('secret-value').value = secret || '';
  $('secret-context').textContent = context;
  $('secret-copied').textContent = '';
  if (warning) note('secret-note', 'warning', warning); else clearSlot('secret-note');
  d.showModal();
  $('secret-value').select();
  return new Promise((resolve) => {
    d.addEventListener('close', () => {
      $('secret-value').value = ''; // forget it
      resolve();
    }, { once: true });
  });
}

function initSecretDialog() {
  const d = $('secret-dialog');
  // Escape must not make the secret disappear unread: closing takes the explicit button.
  d.addEventListener('cancel', (e) => e.preventDefault());
  $('secret-close').addEventListener('click', () => d.close());
  $('secret-copy').addEventListener('click', async () => {
    const ok = await copyText($('secret-value').value, $('secret-value'));
    $('secret-copied').textContent = ok ? 'Copied to the clipboard.' : 'Copy failed: select the text and copy it by hand.';
  });
}

// ---- Current operation ----

function stopPolling() {
  state.poll.gen++;
  clearTimeout(state.poll.timer);
  state.poll.wasRunning = false;
  state.poll.last = '';
  $('op-live').hidden = true;
}

async function loadOperation() {
  if (!state.tenant) return;
  const gen = ++state.poll.gen;
  clearTimeout(state.poll.timer);
  const id = state.tenant.tenantId;
  const again = (ms) => {
    if (gen === state.poll.gen) state.poll.timer = setTimeout(loadOperation, ms);
  };
  try {
    const op = await getJSON(tenantPath(id, '/operations/current'));
    if (gen !== state.poll.gen) return;
    clearSlot('op-error');
    const running = op.status === 'running';
    const snapshot = JSON.stringify(op);
    const changed = snapshot !== state.poll.last;
    if (changed) { // unchanged: keep the DOM (selection, focus) as it is
      state.poll.last = snapshot;
      renderOperation(op);
    }
    $('op-live').hidden = !running;
    // The status moves with the run: refresh it while the run goes, and whenever the run is
    // seen in a new state (a run that finished before the first poll included).
    if (running || state.poll.wasRunning || changed) refreshTenant();
    state.poll.wasRunning = running;
    if (running) again(POLL_MS);
  } catch (err) {
    if (gen !== state.poll.gen) return;
    $('op-live').hidden = true;
    if (err.status === 404 && /no lifecycle operation/i.test(String(err.problem.detail || ''))) {
      state.poll.last = '';
      $('op-body').replaceChildren(el('p', { class: 'muted empty' }, 'No lifecycle operation has run for this tenant yet.'));
      return;
    }
    showError('op-error', err);
    // A transient failure while a run is going on: keep following it, more slowly.
    if (state.poll.wasRunning && err.status !== 401 && err.status !== 403 && err.status !== 404) again(POLL_MS * 2);
  }
}

// temporalLink links a run in the Temporal Web UI (TEMPORAL_UI_URL, from the dashboard's
// configuration): the run itself when its run id is known, else the workflow's latest run.
function temporalLink(workflowId, runId = '', label = 'Open in Temporal Web UI ↗') {
  const ui = state.config.temporalUi;
  const href = ui.url + '/namespaces/' + enc(ui.namespace) + '/workflows/' + enc(workflowId) + (runId ? '/' + enc(runId) : '');
  return el('a', { href, target: '_blank', rel: 'noopener noreferrer', class: 'temporal-link' }, label);
}

// loadConfig reads where to link runs; until it answers (or if it fails), the Web UI's
// default address is used.
async function loadConfig() {
  try {
    const c = await getJSON(CONFIG_API);
    if (c && c.temporalUi && /^https?:\/\//.test(c.temporalUi.url || '')) state.config = c;
  } catch { /* keep the default */ }
}

function renderOperation(op) {
  const p = op.progress || null;
  const summary = el('dl', { class: 'fields compact' },
    ...field('Operation', (p && p.operation) || op.workflow || '—'),
    ...field('Workflow', op.workflow || '—'),
    ...field('Run status', badge(op.status)),
    ...field('Progress', p ? badge(p.state) : '—'),
    ...field('Started', timeCell(op.startedAt)),
    ...field('Closed', op.closedAt ? timeCell(op.closedAt) : '—'),
    ...field('Workflow id', el('span', { class: 'mono' }, op.workflowId)),
    ...field('Run id', el('span', { class: 'mono small' }, op.runId)),
    ...field('History', temporalLink(op.workflowId, op.runId)),
  );
  const parts = [summary];
  if (op.progressError) parts.push(el('div', { class: 'alert warning' }, op.progressError));
  if (p && Array.isArray(p.signals) && p.signals.length) parts.push(signalHint(op, p));
  if (p && Array.isArray(p.steps)) {
    parts.push(el('h4', null, 'Steps'));
    parts.push(el('div', { class: 'table-wrap' }, el('table', { class: 'steps' },
      el('thead', null, el('tr', null, ['Step', 'Status', 'Attempts', 'Started', 'Ended', 'Last error'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', null, p.steps.length ? p.steps.map((s) => el('tr', null,
        el('td', { class: 'mono' }, s.name),
        el('td', null, badge(s.status)),
        el('td', { class: 'num' }, s.attempts ?? '—'),
        el('td', null, timeCell(s.startedAt)),
        el('td', null, timeCell(s.endedAt)),
        el('td', { class: 'error-text' }, s.lastError || ''))) :
        el('tr', null, el('td', { colspan: 6, class: 'muted' }, 'No steps yet.'))))));
  }
  if (Array.isArray(op.pendingActivities) && op.pendingActivities.length) {
    parts.push(el('h4', null, 'Activities in flight (Temporal)'));
    parts.push(el('div', { class: 'table-wrap' }, el('table', null,
      el('thead', null, el('tr', null, ['Activity', 'State', 'Attempt', 'Last started', 'Last failure'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', null, op.pendingActivities.map((a) => el('tr', null,
        el('td', { class: 'mono' }, a.activityType),
        el('td', null, String(a.state || '').replace(/^PENDING_ACTIVITY_STATE_/, '').toLowerCase()),
        el('td', { class: 'num' }, a.attempt),
        el('td', null, timeCell(a.lastStartedAt)),
        el('td', { class: 'error-text' }, a.lastFailure || '')))))));
  }
  $('op-body').replaceChildren(...parts);
}

// signalCommand is the command that sends signal to the run. Not a raw `temporal workflow
// signal`: runs act only on a decision the API or `starter decide` recorded (who, role, when),
// so the command records one. Approvals need a platform-admin through the API.
function signalCommand(workflowId, signal) {
  const tenant = /^tenant-(lifecycle|profile):(.+)$/.exec(workflowId || '');
  if (signal === 'approve' && tenant) {
    return 'curl -X POST -H "Authorization: Bearer $OPERATOR_TOKEN" ' + shellQuote(location.origin + '/api/meta-agent/tenants/' + enc(tenant[2]) + '/approve');
  }
  if (tenant) return 'starter decide ' + shellQuote(signal) + ' ' + shellQuote(tenant[2]);
  return 'starter decide ' + shellQuote(signal) + ' --workflow ' + shellQuote(workflowId);
}

function signalHint(op, p) {
  const rows = p.signals.map((sig) => {
    const code = el('code', { class: 'cmd' }, signalCommand(op.workflowId, sig));
    return { sig, code, row: el('div', { class: 'cmd-row' },
      el('div', { class: 'cmd-label' }, el('strong', null, sig), SIGNAL_HELP[sig] ? ' — ' + SIGNAL_HELP[sig] : ''),
      el('div', { class: 'cmd-line' }, code, copyButton(() => code.textContent))) };
  });
  const waiting = String(p.state || '').replace(/_/g, ' ');
  const refused = p.lastRefusal ? el('div', { class: 'alert warning' }, 'Refused ' + p.refusals + ' signal(s); the latest: ' + p.lastRefusal) : '';
  return el('div', { class: 'alert info signal-hint' },
    el('p', null, el('strong', null, 'The run is ' + waiting + '.'),
      ' It waits for an operator\'s decision. Run one of these (', el('code', null, 'starter decide'),
      ' records the decision as cli:$USER, then signals the run; a raw ', el('code', null, 'temporal workflow signal'),
      ' is refused). See the run in the ', temporalLink(op.workflowId, op.runId, 'Temporal Web UI'), '.'),
    refused,
    rows.map((r) => r.row));
}

// ---- Audit ----

function auditParams() {
  const f = new FormData($('audit-filters'));
  const q = new URLSearchParams();
  for (const k of ['action', 'actorType', 'actorId', 'outcome', 'order', 'limit']) {
    const v = String(f.get(k) || '').trim();
    if (v) q.set(k, v);
  }
  for (const k of ['from', 'to']) {
    const v = String(f.get(k) || '');
    if (!v) continue;
    const d = new Date(v); // datetime-local: the browser's local time
    if (Number.isNaN(d.getTime())) throw new ApiError({ title: 'Invalid filter', detail: k + ' is not a date and time' }, 0);
    q.set(k, d.toISOString());
  }
  return q;
}

function auditRow(e) {
  const actor = e.actor ? [el('span', { class: 'muted' }, e.actor.type || ''), el('br'), e.actor.id || ''] : '';
  const ref = e.requestId ? 'request ' + e.requestId : e.workflowId ? 'run ' + e.workflowId + (e.runId ? ' / ' + e.runId : '') : '';
  const details = Object.entries(e.details || {});
  return el('tr', null,
    el('td', { class: 'num' }, e.seq ?? ''),
    el('td', { class: 'time' }, timeCell(e.at)),
    el('td', { class: 'mono small nowrap' }, actor),
    el('td', null, el('div', { class: 'mono small nowrap' }, e.action), e.resource ? el('div', { class: 'muted small mono wrap' }, e.resource) : null),
    el('td', null, badge(e.outcome)),
    el('td', { class: 'wrap small' },
      e.reason ? el('div', null, e.reason) : null,
      details.length ? el('ul', { class: 'chips' }, details.map(([k, v]) => el('li', { class: 'mono' }, k + '=' + v))) : null,
      ref ? el('div', { class: 'muted mono' }, ref) : null));
}

async function loadAudit(reset) {
  if (!state.tenant) return;
  const id = state.tenant.tenantId;
  const seq = ++state.audit.seq;
  let q;
  try {
    q = reset ? auditParams() : new URLSearchParams(state.audit.query);
  } catch (err) {
    showError('audit-error', err);
    return;
  }
  if (reset) state.audit.query = q.toString();
  else if (state.audit.cursor) q.set('cursor', state.audit.cursor);
  $('audit-more').disabled = true;
  try {
    const page = await getJSON(tenantPath(id, '/audit') + '?' + q);
    if (seq !== state.audit.seq) return;
    state.audit.tenantId = id;
    clearSlot('audit-error');
    if (reset) $('audit-rows').replaceChildren();
    for (const e of page.items || []) $('audit-rows').append(auditRow(e));
    state.audit.cursor = page.nextCursor || '';
    $('audit-more').hidden = !state.audit.cursor;
    $('audit-empty').hidden = $('audit-rows').children.length > 0;
  } catch (err) {
    if (seq === state.audit.seq) showError('audit-error', err);
  } finally {
    $('audit-more').disabled = false;
  }
}

async function verifyAudit() {
  if (!state.tenant) return;
  const btn = $('audit-verify');
  btn.disabled = true;
  try {
    const v = await getJSON(tenantPath(state.tenant.tenantId, '/audit/verify'));
    const range = v.checked ? ' (seq ' + v.from + ' to ' + v.headSeq + ')' : '';
    if (v.ok) {
      note('audit-verify-result', 'success', el('strong', null, 'Chain verified.'),
        ' ' + v.checked + ' event(s) checked' + range + '.',
        v.checkpoint ? ' Starts at the retention checkpoint of seq ' + v.checkpoint.seq + '.' : '');
    } else {
      const b = v.firstBroken || {};
      note('audit-verify-result', 'error', el('strong', null, 'Chain broken at seq ' + (b.seq ?? '?') + '.'),
        ' Problem: ', el('code', null, b.problem || 'unknown'), b.detail ? ' — ' + b.detail : '',
        b.id ? el('div', { class: 'small mono' }, 'event ' + b.id) : null,
        el('div', { class: 'small' }, v.checked + ' event(s) checked before it; head seq ' + v.headSeq + '.'));
    }
  } catch (err) {
    $('audit-verify-result').replaceChildren(problemBox(err));
  } finally {
    btn.disabled = false;
  }
}

// downloadCSV fetches the filtered report as CSV (the bearer header rules out a plain link),
// following X-Next-Cursor, and saves it through a blob URL.
async function downloadCSV() {
  if (!state.tenant) return;
  const id = state.tenant.tenantId;
  const btn = $('audit-csv');
  btn.disabled = true;
  btn.textContent = 'Preparing…';
  try {
    const q = auditParams();
    q.set('format', 'csv');
    q.set('limit', String(CSV_PAGE));
    const parts = [];
    let cursor = '';
    let pages = 0;
    do {
      if (cursor) q.set('cursor', cursor);
      const res = await request('GET', tenantPath(id, '/audit') + '?' + q, { accept: 'text/csv' });
      let text = await res.text();
      if (pages > 0) text = text.slice(text.indexOf('\n') + 1); // one header row
      parts.push(text);
      cursor = res.headers.get('X-Next-Cursor') || '';
      pages++;
    } while (cursor && pages < CSV_MAX_PAGES);
    const url = URL.createObjectURL(new Blob(parts, { type: 'text/csv;charset=utf-8' }));
    const a = el('a', { href: url, download: 'audit-' + id + '.csv', hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30000);
    if (cursor) note('audit-error', 'warning', 'The CSV holds the first ' + CSV_PAGE * CSV_MAX_PAGES + ' events; narrow the filters for the rest.');
    else clearSlot('audit-error');
  } catch (err) {
    showError('audit-error', err);
  } finally {
    btn.disabled = false;
    btn.textContent = 'Download CSV';
  }
}

// ---- Register and onboard ----

function renderPermissionChecks() {
  const type = $('r-tenantType').value;
  const allowed = CEILING[type] || [];
  $('r-permissions').replaceChildren(...PERMISSIONS.map((perm) => {
    const ok = allowed.includes(perm);
    const box = el('input', { type: 'checkbox', name: 'permissions', value: perm });
    box.checked = ok;
    box.defaultChecked = ok;
    box.disabled = !ok;
    return el('label', { class: 'check' + (ok ? '' : ' disabled'), title: ok ? null : 'not allowed for ' + type + ' tenants' },
      box, el('span', { class: 'mono' }, perm));
  }));
}

function clearFieldErrors() {
  for (const f of $('register-form').querySelectorAll('.field')) {
    f.classList.remove('invalid');
    f.querySelector('.field-error').textContent = '';
    for (const input of f.querySelectorAll('input, select, textarea')) input.removeAttribute('aria-invalid');
  }
}

// showFieldErrors puts each error of the problem next to its field; "allowedOrigins[2]" goes
// to allowedOrigins as "line 3". It returns the errors that match no field.
function showFieldErrors(errors, sentPermissions) {
  const rest = [];
  for (const e of errors) {
    const path = String(e.field || '');
    const m = /^([A-Za-z]+)(?:\[(\d+)\])?/.exec(path);
    const box = m && [...$('register-form').querySelectorAll('.field')].find((f) => f.dataset.field === m[1]);
    if (!box) {
      rest.push(e);
      continue;
    }
    let prefix = '';
    if (m[2] !== undefined && m[1] === 'allowedOrigins') prefix = 'line ' + (Number(m[2]) + 1) + ': ';
    if (m[2] !== undefined && m[1] === 'permissions') prefix = (sentPermissions[Number(m[2])] || path) + ': ';
    const slot = box.querySelector('.field-error');
    slot.textContent = (slot.textContent ? slot.textContent + ' ' : '') + prefix + String(e.message);
    box.classList.add('invalid');
    for (const input of box.querySelectorAll('input, select, textarea')) input.setAttribute('aria-invalid', 'true');
  }
  const first = $('register-form').querySelector('.field.invalid input, .field.invalid select, .field.invalid textarea');
  if (first) first.focus();
  return rest;
}

async function submitRegister(e) {
  e.preventDefault();
  clearFieldErrors();
  clearSlot('register-error');
  const form = $('register-form');
  const f = new FormData(form);
  const text = (k) => String(f.get(k) || '').trim();
  const body = {
    tenantId: text('tenantId'),
    tenantName: text('tenantName'),
    contactEmail: text('contactEmail'),
    websiteUrl: text('websiteUrl'),
    businessIndustry: text('businessIndustry'),
    tenantType: text('tenantType'),
    allowedOrigins: String(f.get('allowedOrigins') || '').split(/\r?\n/).map((s) => s.trim()).filter(Boolean),
    permissions: f.getAll('permissions').map(String),
  };
  const submit = $('register-submit');
  submit.disabled = true;
  try {
    const { status, data } = await send('POST', API + '/onboard', body);
    const id = data.tenantId || body.tenantId;
    if (data.tenantSecret) {
      await showSecret(data.tenantSecret, 'Secret of the new tenant ' + id + '.',
        status === 201 && data.onboardingError ? 'Registered, but ' + data.onboardingError : null);
    }
    form.reset();
    renderPermissionChecks();
    state.tenant = null; // reload it
    if (!data.tenantSecret) {
      state.flash = { kind: 'info', text: 'Tenant ' + id + ' was already registered: ' + (data.existing ? 'its onboarding was already running.' : 'its onboarding started.') };
    } else if (data.onboardingError) {
      state.flash = { kind: 'warning', text: 'Registered, but ' + data.onboardingError };
    }
    await loadList(true);
    location.hash = '#/tenants/' + enc(id) + '/operation';
  } catch (err) {
    const p = err instanceof ApiError ? err.problem : null;
    const rest = p && Array.isArray(p.errors) ? showFieldErrors(p.errors, body.permissions) : [];
    const shown = p ? new ApiError({ ...p, errors: rest }, err.status) : err;
    $('register-error').replaceChildren(problemBox(shown));
  } finally {
    submit.disabled = false;
  }
}

// ---- Reconciliation ----

// loadReconciliation shows a run's report (the latest when runId is empty): its summary, and
// each drift with what was expected and found; platform admins approve the safe repairs and
// decide on each deletion from here.
async function loadReconciliation(runId) {
  clearSlot('rc-error');
  let rep;
  try {
    rep = await getJSON(RECONCILE_API + (runId ? '/' + enc(runId) : '') + '?limit=1000');
  } catch (err) {
    if (err.status === 404 && !runId) {
      $('rc-body').replaceChildren(el('p', { class: 'muted empty' }, 'No reconciliation has run yet. "Run now" starts one.'));
      return;
    }
    $('rc-body').replaceChildren();
    showError('rc-error', err);
    return;
  }
  const s = rep.summary || {};
  const open = rep.status !== 'closed';
  const head = el('dl', { class: 'fields compact' },
    ...field('Run', el('span', { class: 'mono' }, rep.runId)),
    ...field('Status', badge(rep.status)),
    ...field('Requested by', rep.requestedBy || '—'),
    ...field('Started', timeCell(rep.startedAt)),
    ...field('Reported', rep.reportedAt ? timeCell(rep.reportedAt) : '—'),
    ...field('Tenants checked', String(rep.tenantsChecked) + (rep.tenantsSkipped ? ' (' + rep.tenantsSkipped + ' skipped: changed while checked)' : '')),
    ...field('Drifts', String(s.total || 0) + ' found · ' + String(s.safeOpen || 0) + ' safe repairs waiting · ' + String(s.decisionsOpen || 0) + ' decisions waiting'),
    ...field('Approved by', rep.approvedBy || '—'),
    ...field('History', temporalLink(rep.runId)),
  );
  const parts = [head];
  if (open && s.safeOpen > 0 && rep.status === 'reported') {
    parts.push(el('button', { type: 'button', class: 'primary', onclick: () => reconcileSignal(rep.runId, 'repair') }, 'Approve safe repairs (' + s.safeOpen + ')'));
  }
  const rows = (rep.drifts || []).map((d) => el('tr', null,
    el('td', { class: 'mono small' }, d.tenantId),
    el('td', null, d.store),
    el('td', null, badge(d.kind)),
    el('td', null, badge(d.severity)),
    el('td', { class: 'small' }, d.expected),
    el('td', { class: 'small' }, d.found),
    el('td', null, d.repair),
    el('td', null, badge(d.state), d.note ? el('div', { class: 'small muted' }, d.note) : null),
    el('td', null, open && rep.status === 'reported' && d.repair === 'decision' && (d.state === 'open' || d.state === 'failed') ?
      el('button', { type: 'button', class: 'danger', onclick: () => reconcileDecide(rep.runId, d) }, 'Repair…') : '')));
  parts.push(el('div', { class: 'table-wrap' }, el('table', { class: 'steps' },
    el('thead', null, el('tr', null, ['Tenant', 'Store', 'Kind', 'Severity', 'Expected', 'Found', 'Repair', 'State', ''].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', null, rows.length ? rows : el('tr', null, el('td', { colspan: 9, class: 'muted' }, 'No drift.'))))));
  if (rep.nextCursor) parts.push(el('p', { class: 'muted small' }, 'More drifts than shown: read them with the API (cursor).'));
  $('rc-body').replaceChildren(...parts);
}

async function startReconciliation() {
  clearSlot('rc-error');
  try {
    const { data } = await send('POST', RECONCILE_API, {});
    location.hash = '#/reconciliation/' + enc(data.runId);
  } catch (err) {
    showError('rc-error', err);
  }
}

async function reconcileSignal(runId, what) {
  try {
    await send('POST', RECONCILE_API + '/' + enc(runId) + '/' + what, undefined);
    note('rc-error', 'info', 'Sent; the report updates as the run repairs.');
    setTimeout(() => loadReconciliation(runId), POLL_MS);
  } catch (err) {
    showError('rc-error', err);
  }
}

async function reconcileDecide(runId, d) {
  const ok = await confirmDialog({
    title: 'Repair ' + d.kind, danger: true, okLabel: 'Repair',
    message: d.tenantId + ' (' + d.store + '): expected ' + d.expected + '; found ' + d.found + '. The run checks it again, then repairs it; this is audited under your name.',
    typed: d.tenantId,
  });
  if (!ok) return;
  try {
    await send('POST', RECONCILE_API + '/' + enc(runId) + '/decisions', { driftId: d.id });
    note('rc-error', 'info', 'Decision sent for ' + d.id + '.');
    setTimeout(() => loadReconciliation(runId), POLL_MS);
  } catch (err) {
    showError('rc-error', err);
  }
}

// ---- Cells ----

// loadCells shows every cell: its tenants against its capacity, state, region, kind and health;
// platform admins (canManage) get the buttons that drain, close and open it.
async function loadCells(nav) {
  clearSlot('cells-error');
  let list;
  try {
    list = await getJSON(CELLS_API);
  } catch (err) {
    if (nav === undefined || nav === state.nav) {
      $('cells-body').replaceChildren();
      showError('cells-error', err);
    }
    return;
  }
  if (nav !== undefined && nav !== state.nav) return;
  $('cells-generated').textContent = 'as of ' + fmtTime(new Date().toISOString());
  const cells = list.items || [];
  const rows = cells.map((c) => el('tr', { 'data-cell': c.cellId },
    el('td', { class: 'mono' }, c.cellId, c.stores ? el('div', { class: 'small muted' }, c.stores.postgres) : el('div', { class: 'small muted' }, 'the deployment\'s own stores')),
    el('td', null, capacityBar(c.tenants, c.capacity)),
    el('td', null, badge(c.state)),
    el('td', { class: 'mono' }, c.region),
    el('td', null, c.kind),
    el('td', { 'data-healthy': String(!!c.healthy) }, badge(c.healthy ? 'healthy' : 'unreachable')),
    el('td', { class: 'actions' }, list.canManage ? cellButtons(c) : null)));
  $('cells-body').replaceChildren(el('div', { class: 'table-wrap' }, el('table', { class: 'steps cells', id: 'cells-table' },
    el('thead', null, el('tr', null, ['Cell', 'Tenants / capacity', 'State', 'Region', 'Kind', 'Health', ''].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', null, rows.length ? rows : el('tr', null, el('td', { colspan: 7, class: 'muted' }, 'No cell.'))))));
}

// capacityBar is a <meter> (no inline style: the CSP allows none) and the count beside it.
function capacityBar(tenants, capacity) {
  const n = Number(tenants) || 0, cap = Math.max(1, Number(capacity) || 1);
  return el('div', { class: 'capacity' },
    el('meter', { min: 0, max: cap, value: Math.min(n, cap), low: Math.ceil(cap * 0.7), high: Math.ceil(cap * 0.9), optimum: 0,
      title: n + ' of ' + cap + ' (' + Math.round((100 * n) / cap) + '%)' }),
    el('span', { class: 'small' }, n + ' / ' + cap));
}

const CELL_ACTIONS = [
  { action: 'drain', label: 'Drain', from: ['open', 'closed'], message: 'The cell takes no new tenant; the ones it has stay and are served.' },
  { action: 'close', label: 'Close', from: ['open', 'draining'], message: 'The cell takes no new tenant and is marked out of service; its tenants are still served.', danger: true },
  { action: 'open', label: 'Open', from: ['draining', 'closed'], message: 'The cell takes new tenants again (the least-loaded open cell gets the next one).' },
];

function cellButtons(c) {
  return CELL_ACTIONS.filter((a) => a.from.includes(c.state)).map((a) =>
    el('button', { type: 'button', class: a.danger ? 'danger' : 'ghost', 'data-action': a.action, onclick: () => cellAction(c, a) }, a.label));
}

async function cellAction(c, a) {
  const ok = await confirmDialog({
    title: a.label + ' cell ' + c.cellId + '?', message: a.message + ' This is audited under your name.',
    okLabel: a.label, danger: !!a.danger,
  });
  if (!ok) return;
  try {
    const { data } = await send('POST', CELLS_API + '/' + enc(c.cellId) + '/' + a.action);
    await loadCells();
    note('cells-error', 'success', 'Cell ' + data.cellId + ' is ' + data.state + '.');
  } catch (err) {
    showError('cells-error', err);
  }
}

// ---- Overview ----

// Outcomes in the order the chart stacks them, with the CSS class of each.
const OUTCOMES = ['completed', 'running', 'failed', 'canceled', 'terminated', 'timed_out', 'continued_as_new'];
const SVG_NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function sumCounts(counts) {
  return Object.values(counts || {}).reduce((a, b) => a + b, 0);
}

// loadOverview shows the first page: tenants by status, the runs waiting for an operator with
// what to do, the last 24 h of operations (a chart by hour and a table by type) and the latest
// runs, each linked to the Temporal Web UI.
async function loadOverview(nav) {
  clearSlot('ov-error');
  let ov;
  try {
    ov = await getJSON(OVERVIEW_API);
  } catch (err) {
    if (nav === undefined || nav === state.nav) showError('ov-error', err);
    return;
  }
  if (nav !== undefined && nav !== state.nav) return;
  if (ov.temporalUi && /^https?:\/\//.test(ov.temporalUi.url || '')) state.config = { temporalUi: ov.temporalUi };
  $('ov-generated').textContent = 'as of ' + fmtTime(ov.generatedAt);
  renderTenantStats(ov.tenants || {});
  renderAuditQuarantine(ov.auditQuarantine);
  const ops = ov.operations;
  if (!ops) {
    note('ov-error', 'warning', ov.operationsError || 'Operations unavailable.');
    for (const id of ['ov-waiting', 'ov-chart', 'ov-types', 'ov-recent']) $(id).replaceChildren();
    return;
  }
  renderWaiting(ops);
  renderChart(ops);
  renderTypes(ops);
  renderRecent(ops.recent || []);
}

function renderTenantStats(t) {
  const by = t.byStatus || {};
  // Lifecycle order (internal/model/tenant.Statuses), then any status this page does not know.
  const order = ['pending', 'onboarding', 'active', 'suspended', 'offboarding', 'offboarded', 'failed'];
  const statuses = [...order.filter((st) => st in by), ...Object.keys(by).filter((st) => !order.includes(st))];
  const stats = statuses.map((status) => el('a', { class: 'stat', href: '#/', 'data-status': status, onclick: (e) => {
    e.preventDefault();
    const sel = $('list-filters').elements.status;
    sel.value = status;
    loadList(true);
  } }, el('span', { class: 'stat-n' }, String(by[status])), badge(status)));
  stats.push(el('div', { class: 'stat', 'data-status': 'total' }, el('span', { class: 'stat-n' }, String(t.total ?? 0)), el('span', { class: 'muted' }, 'in all')));
  $('ov-tenants').replaceChildren(...stats);
}

// renderAuditQuarantine shows the audit events the store refused for good: their chains go on
// without them until an operator re-ships or redacts each (starter audit-quarantine).
function renderAuditQuarantine(q) {
  if (!q) {
    $('ov-audit').replaceChildren(el('p', { class: 'muted' }, 'Audit quarantine unavailable (see the API\'s log).'));
    return;
  }
  if (!q.events) {
    $('ov-audit').replaceChildren(el('p', { class: 'muted', 'data-quarantined': '0' }, 'No audit event quarantined.'));
    return;
  }
  const rows = (q.latest || []).map((e) => el('tr', {},
    el('td', {}, fmtTime(e.quarantinedAt)), el('td', {}, e.chain), el('td', {}, e.eventId),
    el('td', {}, e.action), el('td', {}, e.reason)));
  $('ov-audit').replaceChildren(
    el('div', { class: 'alert warning', 'data-quarantined': String(q.events) },
      q.events + ' audit event' + (q.events === 1 ? '' : 's') + ' refused by the audit store and set aside since ' + fmtTime(q.oldest) +
      '. Their chains go on; repair each with ', el('code', {}, 'starter audit-quarantine reship|redact <eventId>'), '.'),
    el('table', {}, el('thead', {}, el('tr', {}, ...['Quarantined', 'Chain', 'Event', 'Action', 'Refusal'].map((h) => el('th', {}, h)))),
      el('tbody', {}, ...rows)));
}

function renderWaiting(ops) {
  const parts = [];
  if (ops.runningTruncated) parts.push(el('div', { class: 'alert warning' }, 'More operations run than the overview inspects (' + ops.runningChecked + '); some waiting runs may be missing.'));
  if (ops.unanswered) parts.push(el('div', { class: 'alert warning' }, ops.unanswered + ' running operation(s) did not answer the progress query (is a worker running?).'));
  const waiting = ops.waiting || [];
  if (!waiting.length) {
    parts.push(el('p', { class: 'muted empty' }, 'Nothing waits for an operator.'));
    $('ov-waiting').replaceChildren(...parts);
    return;
  }
  for (const w of waiting) parts.push(waitingCard(w));
  $('ov-waiting').replaceChildren(...parts);
}

function waitingCard(w) {
  const head = el('div', { class: 'waiting-head' },
    el('a', { href: '#/tenants/' + enc(w.tenantId) + '/operation', class: 'mono' }, w.tenantId),
    ' ', el('span', null, w.operation), ' ', badge(w.state),
    w.step ? el('span', { class: 'muted small' }, ' step ', el('code', null, w.step)) : null,
    ' ', timeCell(w.startedAt), ' ', temporalLink(w.workflowId, w.runId, 'Web UI ↗'));
  const body = [];
  if (w.lastError) body.push(el('div', { class: 'error-text small' }, w.lastError));
  if (w.state === 'awaiting_approval') {
    body.push(el('div', { class: 'actions' },
      el('span', { class: 'muted small' }, 'Requested by ' + (w.requestedBy || '—') + '; a platform admin other than the requester decides. '),
      el('button', { type: 'button', class: 'primary', 'data-action': 'approve', onclick: () => decideWaiting(w, true) }, 'Approve'),
      el('button', { type: 'button', class: 'danger', 'data-action': 'reject', onclick: () => decideWaiting(w, false) }, 'Reject')));
  } else {
    // A parked step takes the decision from the CLI (starter decide) or the API
    // (POST …/operations/current/retry|abort): both record it before they signal.
    body.push(el('p', { class: 'small' }, 'The step ran out of retries. Fix the cause, then send one of these decisions:'));
    for (const sig of w.signals || []) {
      const cmd = signalCommand(w.workflowId, sig);
      body.push(el('div', { class: 'cmd-row' },
        el('div', { class: 'cmd-label' }, el('strong', null, sig), SIGNAL_HELP[sig] ? ' — ' + SIGNAL_HELP[sig] : ''),
        el('div', { class: 'cmd-line' }, el('code', { class: 'cmd' }, cmd), copyButton(() => cmd))));
    }
  }
  return el('div', { class: 'waiting', 'data-tenant': w.tenantId, 'data-state': w.state }, head, ...body);
}

async function decideWaiting(w, approve) {
  const ok = await confirmDialog({
    title: (approve ? 'Approve ' : 'Reject ') + w.operation + ' of ' + w.tenantId + '?',
    message: approve ? 'The run goes on; this is audited under your name.' : 'The run is aborted and what it did is undone; this is audited under your name.',
    okLabel: approve ? 'Approve' : 'Reject', danger: !approve,
  });
  if (!ok) return;
  try {
    await send('POST', tenantPath(w.tenantId, approve ? '/approve' : '/reject'));
    note('ov-error', 'success', (approve ? 'Approved: ' : 'Rejected: ') + w.tenantId + '.');
    setTimeout(() => { if (parseRoute().view === 'home') loadOverview(); }, POLL_MS);
  } catch (err) {
    showError('ov-error', err);
  }
}

// renderChart draws the operations started in each hour, stacked by outcome, as inline SVG
// (no library, nothing fetched), with a legend of the totals.
function renderChart(ops) {
  const hours = ops.hours || [];
  const W = 720, H = 160, top = 10, bottom = 22, left = 30;
  const max = Math.max(1, ...hours.map((h) => sumCounts(h.counts)));
  const bw = (W - left) / Math.max(1, hours.length);
  const chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', class: 'bars', 'aria-label': 'Operations started per hour, by outcome' });
  const y = (n) => top + (H - top - bottom) * (1 - n / max);
  chart.append(svg('line', { x1: left, x2: W, y1: y(0), y2: y(0), class: 'axis' }));
  chart.append(svg('text', { x: left - 4, y: y(max) + 4, class: 'tick', 'text-anchor': 'end' }, String(max)));
  chart.append(svg('text', { x: left - 4, y: y(0), class: 'tick', 'text-anchor': 'end' }, '0'));
  hours.forEach((h, i) => {
    let acc = 0;
    const x = left + i * bw + 1;
    const start = new Date(h.start);
    const title = start.toISOString().slice(11, 16) + ' UTC: ' + (Object.entries(h.counts || {}).map(([k, n]) => n + ' ' + k).join(', ') || 'none');
    const g = svg('g', { 'data-hour': h.start }, svg('title', null, title));
    for (const outcome of OUTCOMES) {
      const n = (h.counts || {})[outcome] || 0;
      if (!n) continue;
      g.append(svg('rect', { x, width: Math.max(1, bw - 2), y: y(acc + n), height: y(acc) - y(acc + n), class: 'o-' + outcome }));
      acc += n;
    }
    chart.append(g);
    if (i % 6 === 0 || i === hours.length - 1) {
      chart.append(svg('text', { x: x + bw / 2, y: H - 6, class: 'tick', 'text-anchor': 'middle' }, start.toISOString().slice(11, 16)));
    }
  });
  const totals = ops.totals || {};
  const legend = el('ul', { class: 'legend', id: 'ov-totals' }, OUTCOMES.filter((o) => totals[o]).map((o) =>
    el('li', { 'data-outcome': o }, el('span', { class: 'swatch o-' + o, 'aria-hidden': 'true' }), o.replace(/_/g, ' ') + ' ', el('strong', null, String(totals[o])))));
  if (!legend.children.length) legend.append(el('li', { class: 'muted' }, 'No operation in the last 24 hours.'));
  $('ov-chart').replaceChildren(chart, legend);
}

function renderTypes(ops) {
  const rows = (ops.byType || []).filter((t) => sumCounts(t.counts) > 0).map((t) => el('tr', { 'data-workflow': t.workflow },
    el('td', { class: 'mono' }, t.workflow),
    ...OUTCOMES.slice(0, 5).map((o) => el('td', { class: 'num' }, String((t.counts || {})[o] || 0))),
    el('td', { class: 'num' }, String(sumCounts(t.counts)))));
  if (!rows.length) {
    $('ov-types').replaceChildren();
    return;
  }
  $('ov-types').replaceChildren(el('div', { class: 'table-wrap' }, el('table', { class: 'steps' },
    el('thead', null, el('tr', null, ['Operation', ...OUTCOMES.slice(0, 5), 'All'].map((h) => el('th', { scope: 'col' }, h.replace(/_/g, ' '))))),
    el('tbody', null, rows))));
}

function renderRecent(recent) {
  if (!recent.length) {
    $('ov-recent').replaceChildren(el('p', { class: 'muted empty' }, 'No operation in the last 24 hours.'));
    return;
  }
  $('ov-recent').replaceChildren(el('div', { class: 'table-wrap' }, el('table', { class: 'steps', id: 'ov-recent-table' },
    el('thead', null, el('tr', null, ['Tenant', 'Operation', 'Status', 'Started', 'Closed', 'Run'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', null, recent.map((r) => el('tr', { 'data-run': r.runId },
      el('td', null, r.tenantId ? el('a', { href: '#/tenants/' + enc(r.tenantId) + '/operation', class: 'mono' }, r.tenantId) : ''),
      el('td', { class: 'mono' }, r.workflow),
      el('td', null, badge(r.status)),
      el('td', null, timeCell(r.startedAt)),
      el('td', null, r.closedAt ? timeCell(r.closedAt) : '—'),
      el('td', null, temporalLink(r.workflowId, r.runId, 'Web UI ↗'))))))));
}

// ---- Start ----

function init() {
  initConfirmDialog();
  initSecretDialog();
  renderPermissionChecks();

  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = $('login-token').value.trim();
    if (!t) return;
    token.set(t);
    clearSlot('login-error');
    try {
      await getJSON(API + '?limit=1');
    } catch (err) {
      if (err.status !== 401) showError('login-error', err);
      token.clear();
      return;
    }
    $('login-token').value = '';
    await loadConfig();
    await route();
    loadList(true);
  });
  $('logout').addEventListener('click', () => {
    signOut(null);
    history.replaceState(null, '', location.pathname);
  });

  $('list-filters').addEventListener('submit', (e) => { e.preventDefault(); loadList(true); });
  $('list-filters').addEventListener('change', () => loadList(true));
  let searchTimer = 0;
  $('list-search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => loadList(true), 250); // one request per pause in typing
  });
  $('load-more').addEventListener('click', () => loadList(false));

  $('op-refresh').addEventListener('click', () => { state.poll.last = ''; loadOperation(); });
  $('rc-start').addEventListener('click', startReconciliation);
  $('ov-refresh').addEventListener('click', () => loadOverview());
  $('rc-refresh').addEventListener('click', () => loadReconciliation(parseRoute().runId || ''));
  $('cells-refresh').addEventListener('click', () => loadCells());

  $('audit-filters').addEventListener('submit', (e) => { e.preventDefault(); loadAudit(true); });
  $('audit-more').addEventListener('click', () => loadAudit(false));
  $('audit-verify').addEventListener('click', verifyAudit);
  $('audit-csv').addEventListener('click', downloadCSV);

  $('r-tenantType').addEventListener('change', renderPermissionChecks);
  $('register-form').addEventListener('submit', submitRegister);
  $('register-form').addEventListener('reset', () => { clearFieldErrors(); clearSlot('register-error'); });

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.tab === 'operation' && state.poll.wasRunning) loadOperation();
  });
  window.addEventListener('hashchange', async () => {
    await route();
    // One column: the detail sits below the list; bring it into view.
    if (matchMedia('(max-width: 900px)').matches && !$('app-view').hidden) document.querySelector('.detail-pane').scrollIntoView({ block: 'start' });
  });

  if (token.get()) loadConfig().then(route); else route();
  if (token.get()) loadList(true);
}

init();
