/*
 * distsync's status page: reads the daemon's /v1/ API every 5 s and draws
 * the operator's first screen (README "The web status page").
 *
 * Every string from the daemon (server, site and schedule names, paths,
 * errors) reaches the page as a text node or a DOM property: the page
 * never parses HTML from strings, and the Content-Security-
 * Policy allows scripts and styles from this origin only.
 *
 * The token: over TCP the API needs "Authorization: Bearer TOKEN". The
 * page takes it from a #token=... fragment (never sent to the server, and
 * removed from the address bar at once) or asks for it, and keeps it in
 * this tab's sessionStorage. Over the Unix socket (an SSH tunnel to it)
 * no token is needed and none is asked for.
 */
'use strict';

const REFRESH_MS = 5000;
const SERVERS_EVERY = 3; /* /v1/servers plans every server: every 3rd refresh, or when runs change */
const LIST_MAX = 200; /* files listed per category in a report, events per run */
const TOKEN_KEY = 'distsync.token';

const st = {
  token: null,
  servers: null,
  sites: null,
  schedules: null,
  runs: null,
  rollouts: null, /* GET /v1/rollouts; {rollouts: []} when none is configured */
  tick: 0,
  busy: false,
  liveKey: '',
  updated: null,
  openServers: new Set(),
  openRuns: new Set(),
  events: new Map(), /* run id -> {runs: [...]} or {error} */
  wireSeen: new Map(), /* run id -> [bytes_wire, ms]: the wire rate between refreshes */
  wireRate: new Map(), /* (the API's rate counts whole files done) */
  notice: null,
  refreshes: 0,
};

/* ---- DOM, text only ---- */

/* el('td', {class: 'n', title: t}, child...): children are nodes or text. */
function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || (v === false && !k.startsWith('aria-'))) continue;
    if (k === 'class') e.className = v;
    else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = String(dv);
    else if (k === 'title' || k === 'type' || k === 'disabled' || k === 'colSpan') e[k] = v;
    else e.setAttribute(k, String(v));
  }
  for (const c of kids.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function $(id) {
  return document.getElementById(id);
}

/* ---- formats (as the CLI prints them: IEC sizes) ---- */

function fmtBytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = Number(n) || 0, i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${u[i]}`;
}

function fmtDur(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
}

function parseTime(iso) {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? null : t;
}

/* "2026-03-10 02:00" in the browser's zone; the RFC 3339 text on hover. */
function timeEl(iso, rel) {
  const t = parseTime(iso);
  if (t === null) return el('span', {class: 'dim'}, '—');
  const d = new Date(t), p = (x) => String(x).padStart(2, '0');
  const text = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  const delta = (t - Date.now()) / 1000;
  const r = !rel ? null : delta >= 0 ? `in ${fmtDur(delta)}` : `${fmtDur(-delta)} ago`;
  return el('span', {title: iso}, text, r ? el('span', {class: 'dim'}, ` (${r})`) : null);
}

function badge(text, kind, title) {
  return el('span', {class: `badge ${kind}`, title: title || null}, text);
}

const OUTCOME = {
  ok: 'good', running: 'info', queued: 'info', failed: 'bad', cancelled: 'warn',
  interrupted: 'warn', skipped: 'warn', held: 'warn', busy: 'warn', frozen: 'frozen',
};

function outcomeBadge(word, title) {
  return badge(word || '—', OUTCOME[word] || 'dim', title);
}

/* ---- the API ---- */

class AuthError extends Error {}

async function api(method, path, body) {
  const headers = {Accept: 'application/json'};
  if (st.token) headers.Authorization = `Bearer ${st.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
    redirect: 'error',
  });
  let j = null;
  try {
    j = await r.json();
  } catch (e) {
    j = null;
  }
  if (r.status === 401) throw new AuthError((j && j.error) || 'unauthorized');
  if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status}: ${(j && j.error) || r.statusText}`);
  return j;
}

/* ---- what the page derives (counts come from the reports as served) ---- */

function counts(rep) {
  return (rep && rep.counts) || {};
}

/* {word, kind, title} of a server's report as this console last left it. */
function verdict(s) {
  const r = s.report;
  if (!r) return {word: 'never synced', kind: 'dim', title: 'no run has recorded what this server holds'};
  if (r.status !== 'ok') return {word: 'report failed', kind: 'bad', title: r.error};
  const c = counts(r);
  if (c.drifted > 0) return {word: 'drifted', kind: 'bad', title: 'files changed on the server behind distsync'};
  const work = (c.missing || 0) + (c.outdated || 0) + (c.unrecorded || 0) + (c.unreadable || 0);
  if (work > 0) return {word: 'pending', kind: 'warn', title: `${work} files to ship`};
  return {word: 'in sync', kind: 'good', title: null};
}

function liveRuns() {
  return ((st.runs && st.runs.runs) || []).filter((r) => r.state === 'queued' || r.state === 'running');
}

/* The live run (and its server entry) a server is in, if any. */
function serverLive(name) {
  for (const r of liveRuns()) {
    const s = (r.servers || []).find((x) => x.server === name);
    if (s && !s.result) return {run: r, srv: s};
  }
  return null;
}

function pct(done, total) {
  return total > 0 ? Math.min(100, (100 * done) / total) : 0;
}

function runPct(p) {
  return p.bytes_total > 0 ? pct(p.bytes_done, p.bytes_total) : pct(p.files_done, p.files_total);
}

/* ---- actions ---- */

function notice(text, kind) {
  st.notice = text ? {text, kind} : null;
  const n = $('notice');
  n.hidden = !text;
  n.className = `note ${kind || ''}`;
  n.textContent = text || '';
}

async function runNow(what, name, btn) {
  btn.disabled = true;
  try {
    const j = await api('POST', '/v1/run-now', {[what]: [name]});
    notice(`Run ${j.id} queued for ${what === 'sites' ? 'site ' : ''}${name}.`, 'ok');
  } catch (e) {
    if (e instanceof AuthError) return needToken(e.message);
    notice(`Run now ${name}: ${e.message}`, 'bad');
  }
  refresh(true);
}

async function cancelRun(id, btn) {
  if (!window.confirm(`Cancel run ${id}? Files in flight are aborted safely.`)) return;
  btn.disabled = true;
  try {
    await api('POST', `/v1/runs/${encodeURIComponent(id)}/cancel`, {});
    notice(`Run ${id}: cancel requested.`, 'ok');
  } catch (e) {
    notice(`Cancel ${id}: ${e.message}`, 'bad');
  }
  refresh(true);
}

/* A run's events: the history's runs of its servers that started within it. */
async function loadEvents(r) {
  const names = (r.servers || []).map((s) => s.server);
  const from = parseTime(r.started_at), to = parseTime(r.ended_at);
  if (names.length === 0 || from === null) {
    st.events.set(r.id, {runs: []});
    return;
  }
  try {
    const q = `servers=${encodeURIComponent(names.join(','))}&events=1&limit=${names.length * 4 + 4}`;
    const h = await api('GET', `/v1/history?${q}`);
    const mine = (h || []).filter((x) => {
      const t = x.started_at_unix * 1000;
      return t >= from - 2000 && (to === null || t <= to + 2000);
    });
    st.events.set(r.id, {runs: mine});
  } catch (e) {
    st.events.set(r.id, {error: e.message});
  }
}

function toggle(set, key, after) {
  if (set.has(key)) set.delete(key);
  else set.add(key);
  if (after) after();
  render();
}

/* ---- drawing ---- */

function tiles() {
  const sv = (st.servers && st.servers.servers) || [];
  let insync = 0, pending = 0, drifted = 0, never = 0, frozen = 0, toShip = 0;
  for (const s of sv) {
    const v = verdict(s).word, c = counts(s.report), b = (s.report && s.report.bytes) || {};
    if (v === 'in sync') insync++;
    else if (v === 'drifted') drifted++;
    else if (v === 'never synced') never++;
    else if (v === 'pending') pending++;
    if (s.frozen) frozen++;
    if (c.missing || c.outdated) toShip += (b.missing || 0) + (b.outdated || 0);
  }
  const next = ((st.schedules && st.schedules.schedules) || [])
    .filter((x) => parseTime(x.next_fire) !== null)
    .sort((a, b) => parseTime(a.next_fire) - parseTime(b.next_fire))[0];
  const tile = (k, label, value, sub, kind) =>
    el('div', {class: `tile ${kind || ''}`, data: {tile: k}},
      el('div', {class: 'label'}, label), el('div', {class: 'value'}, value), el('div', {class: 'sub'}, sub || ''));
  return [
    tile('servers', 'Servers', sv.length, `${((st.sites && st.sites.sites) || []).length} sites`),
    tile('insync', 'In sync', insync, null, insync === sv.length && sv.length ? 'good' : ''),
    tile('pending', 'Pending', pending, toShip ? `${fmtBytes(toShip)} to ship` : null, pending ? 'warn' : ''),
    tile('drifted', 'Drifted', drifted, null, drifted ? 'bad' : ''),
    tile('frozen', 'Frozen', frozen, null, frozen ? 'frozen' : ''),
    tile('never', 'Never synced', never),
    tile('live', 'Live runs', liveRuns().length, null, liveRuns().length ? 'info' : ''),
    tile('next', 'Next fire', next ? next.schedule : '—', next ? timeEl(next.next_fire, true) : null),
  ];
}

function bar(p) {
  const fill = el('div', {class: 'fill'});
  fill.style.width = `${p.toFixed(1)}%`; /* CSSOM: allowed by the CSP */
  return el('div', {class: 'bar', role: 'progressbar', 'aria-valuenow': p.toFixed(0), 'aria-valuemin': 0, 'aria-valuemax': 100}, fill);
}

function progressCell(p, state) {
  const v = runPct(p);
  return el('td', {class: 'prog'},
    bar(state === 'queued' ? 0 : v),
    el('div', {class: 'small'},
      state === 'queued' ? 'queued' : `${v.toFixed(0)}% · ${p.files_done}/${p.files_total} files · ${fmtBytes(p.bytes_done)} of ${fmtBytes(p.bytes_total)}`));
}

function runRow(r, live) {
  const p = r.progress || {};
  const open = st.openRuns.has(r.id);
  const idBtn = el('button', {
    class: 'link', type: 'button', 'aria-expanded': open, data: {run: r.id},
    on: {click: () => toggle(st.openRuns, r.id, () => (st.openRuns.has(r.id) ? loadEvents(r).then(render) : null))},
  }, open ? '▾ ' : '▸ ', r.id);
  const ok = (r.servers || []).filter((s) => s.result === 'ok').length;
  const rows = [
    el('tr', {class: `run ${r.state}`, data: {run: r.id, state: r.state}},
      el('td', null, idBtn),
      el('td', null, r.trigger),
      el('td', null, outcomeBadge(r.state, r.reason)),
      live ? progressCell(p, r.state) : el('td', null, timeEl(r.ended_at || r.started_at || r.queued_at, true)),
      el('td', {class: 'num'}, fmtBytes(p.bytes_wire),
        live && st.wireRate.get(r.id) ? el('div', {class: 'small dim', title: 'measured by this page between refreshes'},
          `${fmtBytes(st.wireRate.get(r.id))}/s`) : null),
      live ? el('td', {class: 'num'}, p.rate_bps ? `${fmtBytes(p.rate_bps / 8)}/s` : '—')
        : el('td', {class: 'num'}, `${ok}/${(r.servers || []).length} ok`),
      live ? el('td', {class: 'num'}, p.eta_s === null || p.eta_s === undefined ? '—' : fmtDur(p.eta_s))
        : el('td', null, r.reason ? el('span', {class: 'err'}, r.reason) : ''),
      live ? el('td', null, el('button', {class: 'small-btn', type: 'button', on: {click: (e) => cancelRun(r.id, e.target)}}, 'Cancel')) : null),
  ];
  if (open) rows.push(el('tr', {class: 'detail'}, el('td', {colSpan: live ? 8 : 7}, runDetail(r))));
  return rows;
}

function runDetail(r) {
  const srv = el('table', {class: 'inner'},
    el('thead', null, el('tr', null, ['Server', 'Result', 'Files', 'Bytes', 'On the wire', 'Error'].map((h) => el('th', null, h)))),
    el('tbody', null, (r.servers || []).map((s) => el('tr', null,
      el('td', null, s.server),
      el('td', null, outcomeBadge(s.result || (r.state === 'running' ? 'running' : r.state))),
      el('td', {class: 'num'}, `${s.files_done}/${s.files_total}`),
      el('td', {class: 'num'}, `${fmtBytes(s.bytes_done)} of ${fmtBytes(s.bytes_total)}`),
      el('td', {class: 'num'}, fmtBytes(s.bytes_wire)),
      el('td', {class: 'err'}, (s.report && s.report.error) || '')))));
  const ev = st.events.get(r.id);
  let evs;
  if (!ev) evs = el('p', {class: 'dim'}, 'loading events…');
  else if (ev.error) evs = el('p', {class: 'err'}, ev.error);
  else {
    const list = [];
    for (const h of ev.runs) for (const e of h.events || []) list.push([h.server, e]);
    list.sort((a, b) => a[1].at_unix - b[1].at_unix || a[1].id - b[1].id);
    evs = list.length === 0 ? el('p', {class: 'dim'}, 'no events recorded yet')
      : el('table', {class: 'inner events'},
        el('thead', null, el('tr', null, ['Time', 'Server', 'Level', 'Kind', 'Path', 'Outcome', 'Message'].map((x) => el('th', null, x)))),
        el('tbody', null, list.slice(0, LIST_MAX).map(([server, e]) => el('tr', {class: `lvl-${e.level}`},
          el('td', null, timeEl(e.at)), el('td', null, server), el('td', null, e.level), el('td', null, e.kind),
          el('td', {class: 'path'}, e.path || ''), el('td', null, e.outcome || ''), el('td', null, e.message || '')))),
        list.length > LIST_MAX ? el('tfoot', null, el('tr', null, el('td', {colSpan: 7, class: 'dim'}, `and ${list.length - LIST_MAX} more (distsync history --events)`))) : null);
  }
  return el('div', {class: 'detail-body'}, srv, el('h4', null, 'Events'), evs);
}

function liveSection() {
  const live = liveRuns();
  if (live.length === 0) return el('p', {class: 'dim empty'}, 'No run in progress.');
  return el('table', {class: 'grid'},
    el('thead', null, el('tr', null, ['Run', 'Trigger', 'State', 'Progress', 'On the wire', 'Rate', 'ETA', ''].map((h) => el('th', null, h)))),
    el('tbody', null, live.map((r) => runRow(r, true))));
}

function recentSection() {
  const done = ((st.runs && st.runs.runs) || []).filter((r) => r.state !== 'queued' && r.state !== 'running').slice(0, 10);
  if (done.length === 0) return el('p', {class: 'dim empty'}, 'No run since the daemon started (distsync history has older ones).');
  return el('table', {class: 'grid'},
    el('thead', null, el('tr', null, ['Run', 'Trigger', 'Outcome', 'Ended', 'On the wire', 'Servers', 'Reason'].map((h) => el('th', null, h)))),
    el('tbody', null, done.map((r) => runRow(r, false))));
}

function capText(cap) {
  if (!cap) return '—';
  if (cap.error) return `cap unreadable: ${cap.error}`;
  if (!cap.table) return 'no bandwidth cap';
  return cap.now_bps === null ? 'bandwidth: off now' : `bandwidth now: ${cap.now}`;
}

function capEl(cap) {
  return el('span', {class: 'cap', title: cap && cap.table ? cap.table : null},
    capText(cap),
    cap && cap.next_change ? el('span', {class: 'dim'}, ' · changes ', timeEl(cap.next_change, true)) : null);
}

function countCell(s, key) {
  const c = counts(s.report)[key] || 0, b = ((s.report && s.report.bytes) || {})[key] || 0;
  if (!s.report || s.report.status !== 'ok') return el('td', {class: 'num dim', data: {k: key}}, '—');
  return el('td', {class: `num ${c ? `has-${key}` : 'zero'}`, data: {k: key, n: c}},
    c ? el('span', null, el('b', null, String(c)), ` · ${fmtBytes(b)}`) : '0');
}

function otherCell(s) {
  const c = counts(s.report);
  const parts = ['unrecorded', 'extra', 'unreadable'].filter((k) => c[k] > 0).map((k) => `${c[k]} ${k}`);
  return el('td', {class: 'small dim'}, parts.join(', '));
}

function stateCell(s) {
  const v = verdict(s), live = serverLive(s.server);
  return el('td', {class: 'state', data: {k: 'state'}},
    badge(v.word, v.kind, v.title),
    s.frozen ? badge('frozen', 'frozen',
      `frozen${s.frozen.until ? ` until ${s.frozen.until}` : ' until thawed'}${s.frozen.reason ? `: ${s.frozen.reason}` : ''}`) : null,
    live ? badge(live.run.state === 'queued' ? 'queued' : `syncing ${runPct(live.srv).toFixed(0)}%`, 'info', live.run.id) : null,
    s.frozen ? el('div', {class: 'small frozen-note'},
      s.frozen.until ? ['until ', timeEl(s.frozen.until)] : 'until thawed', s.frozen.reason ? ` — ${s.frozen.reason}` : '') : null);
}

function lastRunCell(s) {
  const l = s.last_run;
  if (!l) return el('td', {class: 'dim'}, 'never');
  return el('td', null, outcomeBadge(l.status, l.error), ' ', timeEl(l.ended_at || l.started_at, true));
}

function serverRows(s) {
  const open = st.openServers.has(s.server);
  const name = el('button', {
    class: 'link', type: 'button', 'aria-expanded': open, title: s.url,
    on: {click: () => toggle(st.openServers, s.server)},
  }, open ? '▾ ' : '▸ ', s.server);
  const rn = el('button', {
    class: 'small-btn', type: 'button', data: {runNow: 'server', name: s.server},
    disabled: !!s.frozen || !!serverLive(s.server),
    title: s.frozen ? 'frozen: thaw it first' : `sync ${s.server} now`,
    on: {click: (e) => runNow('servers', s.server, e.currentTarget)},
  }, 'Run now');
  const c = counts(s.report);
  const rows = [el('tr', {class: `server${s.frozen ? ' is-frozen' : ''}`, data: {server: s.server}},
    el('td', {class: 'name'}, name, el('div', {class: 'small dim url'}, s.url)),
    stateCell(s),
    countCell(s, 'missing'), countCell(s, 'outdated'), countCell(s, 'drifted'),
    otherCell(s),
    el('td', {class: 'num small'}, s.report && s.report.status === 'ok' ? `${c.in_sync || 0}/${c.total || 0}` : ''),
    lastRunCell(s),
    el('td', {class: 'act'}, rn))];
  if (open) rows.push(el('tr', {class: 'detail'}, el('td', {colSpan: 9}, reportDetail(s))));
  return rows;
}

function reportDetail(s) {
  const r = s.report;
  if (!r) return el('p', {class: 'dim'}, `${s.server} was never synced: its files are not known yet.`);
  if (r.status !== 'ok') return el('p', {class: 'err'}, r.error || 'the report failed');
  const cats = ['missing', 'outdated', 'drifted', 'unrecorded', 'extra', 'unreadable'];
  const parts = [el('p', {class: 'small dim'},
    `Classes: ${(s.classes || []).join(', ') || 'all'} · as last left by this console, from ${s.server}'s last-known manifest (distsync status ${s.server} reads the server itself).`)];
  let any = false;
  for (const k of cats) {
    const list = r[k] || [];
    if (list.length === 0) continue;
    any = true;
    parts.push(el('h4', null, `${k} — ${list.length} files, ${fmtBytes((r.bytes || {})[k] || 0)}`));
    parts.push(el('table', {class: 'inner files'},
      el('thead', null, el('tr', null, el('th', null, 'Path'), el('th', null, 'Class'), el('th', {class: 'num'}, 'Size'))),
      el('tbody', null, list.slice(0, LIST_MAX).map((f) => el('tr', null,
        el('td', {class: 'path'}, f.path), el('td', null, f.class), el('td', {class: 'num'}, fmtBytes(f.size))))),
      list.length > LIST_MAX ? el('tfoot', null, el('tr', null, el('td', {colSpan: 3, class: 'dim'}, `and ${list.length - LIST_MAX} more (distsync status ${s.server})`))) : null));
  }
  if (!any) parts.push(el('p', null, `All ${(r.counts || {}).in_sync || 0} files in sync.`));
  return el('div', {class: 'detail-body'}, parts);
}

function siteBlock(site, servers) {
  const head = el('div', {class: 'site-head'},
    el('h3', null, site ? site.site : 'Servers without a site'),
    site ? el('span', {class: 'meta'},
      capEl(site.bandwidth), ` · at most ${site.max_servers} at once`, site.tz ? ` · ${site.tz}` : '') : null,
    site ? el('button', {
      class: 'small-btn', type: 'button', data: {runNow: 'site', name: site.site},
      title: `sync every server of ${site.site} now`,
      on: {click: (e) => runNow('sites', site.site, e.currentTarget)},
    }, 'Run now (site)') : null);
  const body = servers.length === 0 ? el('p', {class: 'dim empty'}, 'No server.')
    : el('table', {class: 'grid servers'},
      el('thead', null, el('tr', null,
        [['Server', 'c-name'], ['State', 'c-state'], ['Missing', 'num c-n'], ['Outdated', 'num c-n'],
          ['Drifted', 'num c-n'], ['Other', 'c-other'], ['In sync', 'num c-sync'], ['Last run', 'c-last'], ['', 'c-act']]
          .map(([h, c]) => el('th', {class: c}, h)))),
      el('tbody', null, servers.map(serverRows)));
  return el('div', {class: 'site', data: {site: site ? site.site : ''}}, head, body);
}

function sitesSection() {
  const sv = (st.servers && st.servers.servers) || [];
  const sites = (st.sites && st.sites.sites) || [];
  const blocks = sites.map((x) => siteBlock(x, sv.filter((s) => s.site === x.site)));
  const loose = sv.filter((s) => !s.site || !sites.some((x) => x.site === s.site));
  if (loose.length > 0) blocks.push(siteBlock(null, loose));
  return blocks;
}

function capsLine() {
  const c = st.sites && st.sites.console;
  if (!c) return [];
  return [el('span', {class: 'label'}, 'Console'), ' ', capEl(c.bandwidth), ` · at most ${c.max_servers} servers at once`];
}

function schedulesSection() {
  const sc = (st.schedules && st.schedules.schedules) || [];
  if (sc.length === 0) return el('p', {class: 'dim empty'}, 'No [schedule] section in the configuration.');
  const targets = (x) => [
    x.servers.length ? `servers ${x.servers.join(', ')}` : null,
    x.sites.length ? `sites ${x.sites.join(', ')}` : null,
    x.classes.length ? `classes ${x.classes.join(', ')}` : null,
  ].filter(Boolean).join(' · ');
  return el('table', {class: 'grid'},
    el('thead', null, el('tr', null, ['Schedule', 'Rule', 'Targets', 'Next fire', 'Last fire', 'Outcome'].map((h) => el('th', null, h)))),
    el('tbody', null, sc.map((x) => el('tr', {data: {schedule: x.schedule}},
      el('td', {class: 'name'}, x.schedule),
      el('td', null, x.when, el('div', {class: 'small dim'}, [x.tz, x.window ? `window ${x.window}` : null].filter(Boolean).join(' · '))),
      el('td', {class: 'small'}, targets(x)),
      el('td', null, x.next_fire ? timeEl(x.next_fire, true) : el('span', {class: 'dim'}, 'none')),
      el('td', null, x.last_fire ? timeEl(x.last_fire.fire, true) : el('span', {class: 'dim'}, 'never')),
      el('td', null, x.last_fire ? [outcomeBadge(x.last_fire.outcome), x.last_fire.reason ? el('div', {class: 'small dim'}, x.last_fire.reason) : null] : '')))));
}

/* ---- rollouts (the upgrade gate) ---- */

function fmtRate(bps) {
  if (bps === null || bps === undefined) return 'no cap';
  const u = [[1e9, 'Gbit/s'], [1e6, 'Mbit/s'], [1e3, 'kbit/s']].find(([d]) => bps >= d);
  return u ? `${+(bps / u[0]).toFixed(1)} ${u[1]}` : `${bps} bit/s`;
}

const RING_COUNTS = ['members', 'granted', 'waiting', 'succeeded', 'failed', 'expired'];

function ringRow(g) {
  return el('tr', {class: 'ring', data: {ring: g.name}},
    el('td', {class: 'name'}, g.name),
    RING_COUNTS.map((k) => el('td', {class: 'num', data: {k}}, String(g[k]))),
    el('td', {class: 'state', data: {k: 'state'}},
      g.open ? badge('open', 'good') : badge('closed', 'warn', g.why),
      g.open ? null : el('div', {class: 'small dim why'}, g.why)));
}

function rolloutBlock(r) {
  const queue = (r.queues || []).filter((q) => q.waiting > 0).map((q) => `${q.site} ${q.waiting}`).join(', ');
  const unstaged = (r.staging || []).filter((x) => !x.staged).map((x) => x.server);
  const head = el('div', {class: 'site-head'},
    el('h3', null, r.name),
    el('span', {class: 'meta'}, `${r.product} → ${r.version} · `,
      el('span', {class: 'rollout-state', data: {k: 'state'}},
        r.state === 'paused' ? badge('paused', 'bad', r.reason) : badge('active', 'good')),
      ' · queue ', el('b', {data: {k: 'queue'}}, String(r.waiting)), queue ? ` (${queue})` : '',
      ' · staged on ', el('span', {data: {k: 'staged'}}, `${r.staged} of ${r.servers}`), ' servers',
      unstaged.length ? el('span', {data: {k: 'unstaged'}}, ` (not yet: ${unstaged.join(', ')})`) : null));
  const reason = r.state === 'paused'
    ? el('p', {class: 'err rollout-reason', data: {k: 'reason'}}, `Paused: ${r.reason}`) : null;
  const rings = el('table', {class: 'grid rings'},
    el('thead', null, el('tr', null,
      ['Ring', 'Members', 'Granted', 'Waiting', 'Succeeded', 'Failed', 'Expired', 'State'].map((h, i) =>
        el('th', {class: i > 0 && i < 7 ? 'num' : null}, h)))),
    el('tbody', null, (r.rings || []).map(ringRow)));
  return el('div', {class: 'rollout', data: {rollout: r.name}}, head, reason, rings);
}

function slotsTable(caps) {
  const rows = (caps || []).filter((c) => c.level === 'global' || c.cap !== null || c.used > 0 || c.bw_cap !== null);
  if (rows.length === 0) return null;
  return el('table', {class: 'grid slots'},
    el('thead', null, el('tr', null, ['Upgrade slots', 'In use', 'Cap', 'Bandwidth reserved', 'Bandwidth cap'].map((h) => el('th', null, h)))),
    el('tbody', null, rows.map((c) => el('tr', {class: 'slot', data: {level: c.level, name: c.name}},
      el('td', {class: 'name'}, c.level === 'global' ? 'console' : `${c.level} ${c.name}`),
      el('td', {class: 'num', data: {k: 'used'}}, String(c.used)),
      el('td', {class: 'num', data: {k: 'cap'}}, c.cap === null ? 'no cap' : String(c.cap)),
      el('td', {class: 'num'}, fmtRate(c.bw_used)),
      el('td', {class: 'num'}, fmtRate(c.bw_cap))))));
}

function rolloutsSection() {
  const list = (st.rollouts && st.rollouts.rollouts) || [];
  if (list.length === 0) return [el('p', {class: 'dim empty'}, 'No [rollout] section in the configuration.')];
  return [slotsTable(list[0].caps), ...list.map(rolloutBlock)].filter(Boolean);
}

/* GET /v1/rollouts, or none (404: no rollout configured). */
async function loadRollouts() {
  try {
    return await api('GET', '/v1/rollouts');
  } catch (e) {
    if (e instanceof AuthError) throw e;
    if (/HTTP 404/.test(e.message)) return {rollouts: []};
    return {rollouts: [], error: e.message};
  }
}

function render() {
  if (!st.servers || !st.sites || !st.schedules || !st.runs) return;
  $('tiles').replaceChildren(...tiles());
  $('live').replaceChildren(liveSection());
  $('caps').replaceChildren(...capsLine());
  $('sites').replaceChildren(...sitesSection());
  $('rollouts').replaceChildren(...rolloutsSection());
  $('schedules').replaceChildren(schedulesSection());
  $('recent').replaceChildren(recentSection());
  $('foot').textContent = `distsync daemon at ${window.location.host} · refreshes every ${REFRESH_MS / 1000} s · the same data: distsync runs, distsync status, GET /v1/…`;
  $('main').hidden = false;
  $('login').hidden = true;
}

function conn(text, kind) {
  const c = $('conn');
  c.className = `conn ${kind}`;
  c.replaceChildren(el('span', {class: 'dot'}), text,
    st.token ? el('button', {class: 'link small', type: 'button', on: {click: forgetToken}}, 'forget token') : null);
}

/* ---- refresh ---- */

/* Bytes a second on the wire of each running run since the last refresh. */
function wireRates() {
  const now = Date.now(), seen = new Map(), rate = new Map();
  for (const r of liveRuns()) {
    const w = (r.progress && r.progress.bytes_wire) || 0, prev = st.wireSeen.get(r.id);
    seen.set(r.id, [w, now]);
    if (prev && now > prev[1] && w >= prev[0]) rate.set(r.id, ((w - prev[0]) * 1000) / (now - prev[1]));
  }
  st.wireSeen = seen;
  st.wireRate = rate;
}

async function refresh(full) {
  if (st.busy) return;
  st.busy = true;
  try {
    const [sites, schedules, runs, rollouts] = await Promise.all([
      api('GET', '/v1/sites'), api('GET', '/v1/schedules'), api('GET', '/v1/runs'), loadRollouts()]);
    st.rollouts = rollouts;
    st.sites = sites;
    st.schedules = schedules;
    st.runs = runs;
    wireRates();
    const key = liveRuns().map((r) => `${r.id}:${r.state}`).join(',');
    if (full || !st.servers || st.tick % SERVERS_EVERY === 0 || key !== st.liveKey)
      st.servers = await api('GET', '/v1/servers');
    st.liveKey = key;
    for (const id of st.openRuns) {
      const r = runs.runs.find((x) => x.id === id);
      if (r && (r.state === 'running' || !st.events.has(id))) await loadEvents(r);
    }
    st.updated = new Date();
    st.refreshes++;
    render();
    conn(`live · updated ${st.updated.toLocaleTimeString()}`, 'ok');
    document.body.dataset.refreshes = String(st.refreshes);
  } catch (e) {
    if (e instanceof AuthError) needToken(st.token ? 'the daemon refused this token' : null);
    else conn(`daemon unreachable: ${e.message}${st.updated ? ` · data from ${st.updated.toLocaleTimeString()}` : ''}`, 'bad');
  } finally {
    st.busy = false;
  }
}

/* ---- the token ---- */

function needToken(why) {
  st.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $('main').hidden = true;
  $('login').hidden = false;
  $('login-err').textContent = why || '';
  conn('token needed', 'warn');
  $('token').focus();
}

function forgetToken() {
  needToken(null);
}

function takeFragmentToken() {
  const m = /^#token=(.+)$/.exec(window.location.hash);
  if (!m) return;
  try {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  } catch (e) {
    /* a bad escape: asked for instead */
  }
  history.replaceState(null, '', window.location.pathname); /* off the address bar and history */
}

function start() {
  takeFragmentToken();
  st.token = sessionStorage.getItem(TOKEN_KEY);
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('token').value.trim();
    if (!t) return;
    st.token = t;
    sessionStorage.setItem(TOKEN_KEY, t);
    $('token').value = '';
    refresh(true);
  });
  refresh(true);
  setInterval(() => {
    if (document.hidden || !$('login').hidden) return;
    st.tick++;
    refresh(false);
  }, REFRESH_MS);
  window.addEventListener('hashchange', () => { /* a #token= pasted into an open page */
    takeFragmentToken();
    st.token = sessionStorage.getItem(TOKEN_KEY) || st.token;
    refresh(true);
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && $('login').hidden) refresh(true);
  });
}

document.addEventListener('DOMContentLoaded', start);
