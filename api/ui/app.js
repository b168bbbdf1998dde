// taskfleet task page: the fleet's tasks as PDM and PVE show them, live
// through the event stream. Plain JavaScript, no dependencies.
'use strict';

const API = '/api2/json';
const PAGE = 50;
const TOKEN_KEY = 'taskfleet.token'; // sessionStorage: this tab only, never a URL

const state = { start: 0, total: 0, items: [], loads: 0, stream: null, lastEventId: '', reloadTimer: 0 };

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else if (k.startsWith('data-')) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
  return e;
}

// --- API access -----------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

function headers(extra) {
  const h = Object.assign({}, extra);
  if (token()) h['Authorization'] = 'Bearer ' + token();
  return h;
}

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, opts) {
  opts = opts || {};
  const sent = token();
  const resp = await fetch(API + path, { method: opts.method || 'GET', headers: headers(opts.headers), body: opts.body, cache: 'no-store' });
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (resp.status === 401) {
    if (sent === token()) askToken(); // not an answer to a request sent before the token changed
    throw new APIError(401, 'an API token is needed');
  }
  if (!resp.ok) {
    throw new APIError(resp.status, (body && body.message) || resp.statusText);
  }
  return body;
}

function message(text, isError) {
  const m = $('#message');
  m.textContent = text || '';
  m.className = isError ? 'error' : '';
}

// --- formatting (as PVE/PDM show tasks) -------------------------------------

const pad = (n) => String(n).padStart(2, '0');

function fmtTime(unix) {
  if (!unix) return '';
  const d = new Date(unix * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtDuration(secs) {
  secs = Math.max(0, Math.round(secs));
  const h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

// Descriptions of Proxmox's task types ([prefix, text]), after
// proxmox-widget-toolkit's Utils.task_desc_table.
const TASK_DESC = {
  qmstart: ['VM', 'Start'], qmstop: ['VM', 'Stop'], qmshutdown: ['VM', 'Shutdown'], qmreboot: ['VM', 'Reboot'],
  qmsuspend: ['VM', 'Hibernate'], qmresume: ['VM', 'Resume'], qmigrate: ['VM', 'Migrate'], qmclone: ['VM', 'Clone'],
  qmcreate: ['VM', 'Create'], qmdestroy: ['VM', 'Destroy'], qmconfig: ['VM', 'Configure'], qmrestore: ['VM', 'Restore'],
  qmsnapshot: ['VM', 'Snapshot'], qmdelsnapshot: ['VM', 'Delete Snapshot'], qmrollback: ['VM', 'Rollback'],
  qmtemplate: ['VM', 'Convert to template'], qmmove: ['VM', 'Move disk'], move_volume: ['CT', 'Move Volume'],
  vzstart: ['CT', 'Start'], vzstop: ['CT', 'Stop'], vzshutdown: ['CT', 'Shutdown'], vzreboot: ['CT', 'Reboot'],
  vzmigrate: ['CT', 'Migrate'], vzcreate: ['CT', 'Create'], vzdestroy: ['CT', 'Destroy'], vzsnapshot: ['CT', 'Snapshot'],
  vzdelsnapshot: ['CT', 'Delete Snapshot'], vzrollback: ['CT', 'Rollback'], vzclone: ['CT', 'Clone'],
  vncproxy: ['VM/CT', 'Console'], termproxy: ['VM/CT', 'Console (xterm.js)'], spiceproxy: ['VM/CT', 'Console (Spice)'],
  vncshell: ['', 'Shell'], aptupdate: ['', 'Update package database'], imgcopy: ['', 'Copy data'],
  download: ['Storage', 'Download'], resize: ['VM/CT', 'Resize'], hastart: ['HA', 'Start'], srvreload: ['SRV', 'Reload'],
  srvstart: ['SRV', 'Start'], srvstop: ['SRV', 'Stop'], srvrestart: ['SRV', 'Restart'],
  vzdump: ['VM/CT', 'Backup'],
  backup: ['Datastore', 'Backup'], reader: ['Datastore', 'Read Objects'], prune: ['Datastore', 'Prune'],
  prunejob: ['Prune Job', 'Prune'], syncjob: ['Sync Job', 'Remote Sync'], verificationjob: ['Verify Job', 'Scheduled Verification'],
  verify: ['Datastore', 'Verification'], verify_snapshot: ['Snapshot', 'Verification'], verify_group: ['Group', 'Verification'],
  garbage_collection: ['Datastore', 'Garbage collect'], logrotate: ['', 'Log Rotation'],
};

function describe(item) {
  const d = TASK_DESC[item.worker_type];
  const id = item.worker_id;
  if (item.worker_type === 'vzdump' && !id) return 'Backup Job';
  if (!d) return id ? `${item.worker_type} ${id}` : item.worker_type;
  const [prefix, text] = d;
  if (!id) return text;
  return prefix ? `${prefix} ${id} - ${text}` : `${id} - ${text}`;
}

function statusClass(status) {
  if (status == null) return 'running';
  if (status === 'OK') return 'ok';
  if (/^WARNINGS: /.test(status)) return 'warning';
  if (status === 'unknown' || status === 'unexpected status' || status === '') return 'unknown';
  return 'error';
}

// remoteOf returns the remote of a remote-qualified UPID "pve:REMOTE!UPID:...".
function remoteOf(upid) {
  const m = /^[a-z]+:([^!]+)!/.exec(upid);
  return m ? m[1] : '';
}

// --- the task list ------------------------------------------------------------

function filterParams() {
  const f = new FormData($('#filters'));
  const q = new URLSearchParams();
  for (const name of ['typefilter', 'userfilter', 'statusfilter', 'remote']) {
    const v = (f.get(name) || '').trim();
    if (v) q.set(name, v);
  }
  for (const name of ['since', 'until']) {
    const v = f.get(name);
    if (v) q.set(name, String(Math.floor(new Date(v).getTime() / 1000)));
  }
  if (f.get('running')) q.set('running', '1');
  if (f.get('errors')) q.set('errors', '1');
  return q;
}

function row(item) {
  const running = item.endtime == null;
  const cls = statusClass(item.status);
  const end = running ? el('td', { class: 'time' }, el('span', { class: 'spinner', title: 'running' })) : el('td', { class: 'time' }, fmtTime(item.endtime));
  const dur = running ? Date.now() / 1000 - item.starttime : item.endtime - item.starttime;
  const tr = el('tr', { 'data-upid': item.upid, 'data-status': cls, class: cls === 'warning' || cls === 'error' ? cls : '' },
    el('td', { class: 'time' }, fmtTime(item.starttime)), end,
    el('td', { class: 'num' }, fmtDuration(dur)),
    el('td', {}, item.user),
    el('td', {}, remoteOf(item.upid)),
    el('td', {}, item.node),
    el('td', { class: 'desc' }, describe(item)),
    el('td', { class: 'status' }, running ? 'running' : item.status));
  tr.addEventListener('click', () => openLog(item));
  return tr;
}

function render() {
  const body = $('#list tbody');
  body.replaceChildren(...state.items.map(row));
  const pages = Math.max(1, Math.ceil(state.total / PAGE));
  const page = Math.floor(state.start / PAGE) + 1;
  $('#pageinfo').textContent = state.total === 0 ? 'no tasks' :
    `page ${page} of ${pages} · tasks ${state.start + 1}–${Math.min(state.start + PAGE, state.total)} of ${state.total}`;
  $('#first').disabled = $('#prev').disabled = state.start === 0;
  $('#next').disabled = $('#last').disabled = state.start + PAGE >= state.total;
}

async function loadList() {
  const q = filterParams();
  q.set('start', String(state.start));
  q.set('limit', String(PAGE));
  const query = q.toString();
  const seq = ++state.loads;
  document.body.dataset.listState = 'loading';
  try {
    const resp = await api('/remotes/tasks/list?' + query);
    if (state.loads !== seq) return; // a newer load is under way
    state.items = resp.data || [];
    state.total = resp.total || 0;
    render();
    message('');
    document.body.dataset.listQuery = query;
    document.body.dataset.listState = 'loaded';
  } catch (e) {
    if (state.loads === seq) {
      message('Tasks: ' + e.message, true);
      document.body.dataset.listState = 'error';
    }
  }
}

// reloadSoon reloads the list shortly, coalescing bursts of events.
function reloadSoon() {
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(loadList, 1000);
}

// applyEvent shows a change at once; the list is reloaded shortly after
// for totals and paging.
function applyEvent(type, data) {
  const item = data.task;
  const i = state.items.findIndex((x) => x.upid === item.upid);
  if (i >= 0) {
    state.items[i] = item;
  } else if (state.start === 0) {
    // Newest first: insert by start time.
    let at = state.items.findIndex((x) => x.starttime < item.starttime || (x.starttime === item.starttime && x.upid > item.upid));
    if (at < 0) at = state.items.length;
    if (at < PAGE) {
      state.items.splice(at, 0, item);
      state.items.length = Math.min(state.items.length, PAGE);
      state.total++;
    }
  }
  const running = $('#filters').elements.running.checked;
  if (running && type === 'finished') state.items = state.items.filter((x) => x.upid !== item.upid);
  render();
  reloadSoon();
}

// --- live: the event stream, read with fetch so that the token goes in a
// header (EventSource cannot send one) --------------------------------------

function setLive(on, text) {
  const l = $('#live');
  l.className = 'live ' + (on ? 'on' : 'off');
  l.textContent = text;
}

function startStream() {
  if (state.stream) state.stream.abort();
  const ctrl = new AbortController();
  state.stream = ctrl;
  const q = filterParams().toString();
  const run = async () => {
    while (!ctrl.signal.aborted) {
      try {
        const h = headers({ Accept: 'text/event-stream' });
        if (state.lastEventId) h['Last-Event-ID'] = state.lastEventId;
        const resp = await fetch(API + '/remotes/tasks/events?' + q, { headers: h, signal: ctrl.signal, cache: 'no-store' });
        if (resp.status === 401) { if (h['Authorization'] === headers()['Authorization']) askToken(); setLive(false, 'login needed'); return; }
        if (!resp.ok) throw new Error('HTTP ' + resp.status);
        await readEvents(resp.body.getReader(), ctrl.signal);
      } catch (e) {
        if (ctrl.signal.aborted) return;
      }
      setLive(false, 'reconnecting');
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  run();
}

async function readEvents(reader, signal) {
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done || signal.aborted) return;
    buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = 'message', data = '', id = null;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') name = val; else if (field === 'data') data += (data ? '\n' : '') + val; else if (field === 'id') id = val;
      }
      if (id !== null) state.lastEventId = id;
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}

function onEvent(name, data) {
  switch (name) {
    case 'hello':
      setLive(true, 'live');
      if (!data.resumed) loadList(); // catch up with what happened while connecting
      break;
    case 'started':
    case 'finished':
      applyEvent(name, data);
      break;
    case 'reload':
      loadList();
      break;
  }
}

// --- remotes panel and summary --------------------------------------------

function ago(unix) {
  if (!unix) return 'never';
  return fmtDuration(Date.now() / 1000 - unix) + ' ago';
}

async function loadRemotes() {
  try {
    const resp = await api('/remotes/status');
    const remotes = resp.data || [];
    $('#remotes tbody').replaceChildren(...remotes.map((r) => el('tr', { title: r.last_error || '' },
      el('td', {}, r.remote), el('td', {}, r.type),
      el('td', { class: 'state-' + r.state }, r.state),
      el('td', {}, ago(r.last_success)),
      el('td', { class: 'num' }, r.consecutive_failures))));
    const sel = $('#filters').elements.remote;
    const current = sel.value;
    sel.replaceChildren(el('option', { value: '' }, 'all'), ...remotes.map((r) => el('option', { value: r.remote }, r.remote)));
    sel.value = current;
  } catch (e) {
    message('Remotes: ' + e.message, true);
  }
}

// summaryRows lists counts failures first, at most max rows (the rest
// summed up in a last row).
function summaryRows(counts, max) {
  const rows = Object.entries(counts || {});
  rows.sort((a, b) => (b[1].error - a[1].error) || (b[1].warning - a[1].warning) || a[0].localeCompare(b[0]));
  const out = rows.slice(0, max).map(([k, c]) => el('tr', { class: c.error > 0 ? 'error' : (c.warning > 0 ? 'warning' : '') },
    el('td', {}, k), el('td', { class: 'num' }, c.ok), el('td', { class: 'num' }, c.warning), el('td', { class: 'num' }, c.error + c.unknown)));
  if (rows.length > max) {
    const rest = rows.slice(max).reduce((s, [, c]) => ({ ok: s.ok + c.ok, warning: s.warning + c.warning, error: s.error + c.error + c.unknown }), { ok: 0, warning: 0, error: 0 });
    out.push(el('tr', { class: 'hint' }, el('td', {}, `${rows.length - max} more`), el('td', { class: 'num' }, rest.ok), el('td', { class: 'num' }, rest.warning), el('td', { class: 'num' }, rest.error)));
  }
  return out;
}

async function loadSummary() {
  const since = Math.floor(Date.now() / 1000) - 48 * 3600;
  try {
    const resp = await api('/remotes/tasks/statistics?since=' + since);
    $('#summary-remote tbody').replaceChildren(...summaryRows(resp.data['by-remote'], 25));
    $('#summary-type tbody').replaceChildren(...summaryRows(resp.data['by-type'], 15));
  } catch (e) {
    message('Statistics: ' + e.message, true);
  }
}

// --- the task log ---------------------------------------------------------------

let logTimer = 0;

async function openLog(item) {
  clearTimeout(logTimer);
  const dlg = $('#logdialog');
  $('#logtitle').textContent = `${describe(item)} · ${remoteOf(item.upid)} / ${item.node}`;
  $('#loginfo').textContent = item.upid;
  $('#logtext').replaceChildren('loading…');
  if (!dlg.open) dlg.showModal();
  const load = async () => {
    try {
      const resp = await api('/remotes/tasks/log?limit=0&upid=' + encodeURIComponent(item.upid));
      const lines = (resp.data || []).map((l) => {
        const cls = /^(ERROR|TASK ERROR)\b|error/i.test(l.t) ? 'err' : (/^(WARN|TASK WARNINGS)/.test(l.t) ? 'warn' : '');
        return el('div', { class: cls, 'data-n': l.n }, l.t);
      });
      $('#logtext').replaceChildren(...lines);
      $('#loginfo').textContent = `${item.upid} · ${resp.total} lines` + (resp.source === 'cache' ? ' · kept by taskfleet' : '') + (resp.active ? ' · running' : '');
      document.body.dataset.logState = 'loaded';
      if (resp.active && dlg.open) logTimer = setTimeout(load, 2000);
    } catch (e) {
      $('#logtext').replaceChildren(el('div', { class: 'err' }, 'Could not read the log: ' + e.message));
      document.body.dataset.logState = 'error';
    }
  };
  document.body.dataset.logState = 'loading';
  load();
}

// --- login ------------------------------------------------------------------------

function askToken() {
  const d = $('#tokendialog');
  if (!d.open) { $('#tokeninput').value = ''; d.showModal(); }
}

// tokenChosen takes the dialog's answer at once (the submit), before a
// late 401 could reopen the dialog and clear its input.
function tokenChosen(e) {
  const button = e.submitter ? e.submitter.value : 'ok';
  const value = $('#tokeninput').value.trim();
  $('#tokeninput').value = '';
  if (button === 'ok' && value) {
    sessionStorage.setItem(TOKEN_KEY, value);
  } else if (button === 'forget') {
    sessionStorage.removeItem(TOKEN_KEY);
  }
  reloadAll();
}

// --- wiring -------------------------------------------------------------------------

function reloadAll() {
  state.start = 0;
  loadList();
  loadRemotes();
  loadSummary();
  startStream();
}

async function refresh() {
  const b = $('#refresh');
  b.disabled = true;
  message('refreshing…');
  try {
    await api('/remotes/tasks/refresh', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"wait":true}' });
    message('');
    loadList(); loadRemotes(); loadSummary();
  } catch (e) {
    message('Refresh: ' + e.message, true);
  } finally {
    b.disabled = false;
  }
}

function filtersChanged() {
  state.start = 0;
  loadList();
  startStream();
}

document.addEventListener('DOMContentLoaded', () => {
  const f = $('#filters');
  f.addEventListener('change', filtersChanged);
  f.addEventListener('input', (e) => { if (e.target.type === 'text') { clearTimeout(f.timer); f.timer = setTimeout(filtersChanged, 300); } });
  f.addEventListener('reset', () => setTimeout(filtersChanged, 0));
  f.addEventListener('submit', (e) => e.preventDefault());
  $('#first').addEventListener('click', () => { state.start = 0; loadList(); });
  $('#prev').addEventListener('click', () => { state.start = Math.max(0, state.start - PAGE); loadList(); });
  $('#next').addEventListener('click', () => { state.start += PAGE; loadList(); });
  $('#last').addEventListener('click', () => { state.start = Math.max(0, Math.floor((state.total - 1) / PAGE) * PAGE); loadList(); });
  $('#refresh').addEventListener('click', refresh);
  $('#login').addEventListener('click', askToken);
  $('#tokenform').addEventListener('submit', tokenChosen);
  $('#logclose').addEventListener('click', () => { clearTimeout(logTimer); $('#logdialog').close(); });
  reloadAll();
  setInterval(() => { loadRemotes(); loadSummary(); }, 30000);
});
