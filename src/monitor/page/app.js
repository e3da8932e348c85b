/* The audiosocket monitor page: plain browser JavaScript, no framework, no build step.
   Everything that comes from a call (UUIDs, channel variables, URLs, DTMF, messages) is put on the
   page with textContent, never as HTML. */
/* global document, location, EventSource, fetch, URLSearchParams, AudioContext, atob */
'use strict';

const token = new URLSearchParams(location.search).get('token');
const withToken = (path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path);

const STRIP = 240; // level points kept per call for the detail strip
const ENDED = 100;
const WARNINGS = 100;
const HISTORY = 600;

const calls = new Map(); // id -> { info, row, tr, cells, strip: [[in, out]...] }
const ended = [];
let warnings = [];
let totals = [];
let sortKey = 'durationMs';
let sortAsc = false;
let detailId = null;
let listenAllowed = false;
let listening = null; // { es, ctx, next }

/* Listen-in (--monitor-listen): the call's audio as slin 8 kHz, caller left, us right. */
function stopListening() {
  if (!listening) return;
  listening.es.close();
  listening.ctx.close();
  listening = null;
  $('d-listen').textContent = 'listen';
}
function pcm(b64) {
  const bin = atob(b64);
  const out = new Float32Array(bin.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
    out[i] = (v >= 0x8000 ? v - 0x10000 : v) / 32768;
  }
  return out;
}
function listen(id) {
  stopListening();
  const ctx = new AudioContext({ sampleRate: 8000 });
  const es = new EventSource(withToken(`listen/${id}`));
  listening = { es, ctx, next: 0 };
  $('d-listen').textContent = 'stop listening';
  es.addEventListener('audio', (m) => {
    const a = JSON.parse(m.data);
    const left = pcm(a.in);
    const right = pcm(a.out);
    const n = Math.max(left.length, right.length);
    if (n === 0 || !listening) return;
    const buf = ctx.createBuffer(2, n, 8000);
    buf.copyToChannel(left, 0);
    buf.copyToChannel(right, 1);
    const src = ctx.createBufferSource();
    src.buffer = buf;
    src.connect(ctx.destination);
    // A little behind real time, so the next chunk arrives before this one ends.
    const at = Math.max(listening.next, ctx.currentTime + 0.2);
    src.start(at);
    listening.next = at + buf.duration;
  });
  es.addEventListener('end', stopListening);
  es.onerror = stopListening;
}

const $ = (id) => document.getElementById(id);
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = String(text);
  return e;
}
const dur = (ms) => {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};
const time = (at) => new Date(at).toLocaleTimeString();
/** Peak (0..1) to a meter fraction on a -60..0 dBFS scale; silence is 0. */
const meterFraction = (peak) => (peak <= 0.001 ? 0 : Math.max(0, Math.min(1, (20 * Math.log10(peak) + 60) / 60)));

function meter(kind) {
  const m = el('div', `meter ${kind}`);
  const bar = el('div');
  bar.style.transform = 'scaleX(0)';
  m.appendChild(bar);
  m.dataset.level = '0';
  m.addEventListener('mouseenter', meterTitle);
  return m;
}
/**
 * A meter's bar is scaled, not resized: a transform needs no layout, and with hundreds of calls
 * four times a second a table's layout is what the page would spend its time on. Nothing is
 * written when the level is unchanged; the dBFS title is made when the pointer is over it.
 */
function setMeter(m, peak) {
  if (m.dataset.level === String(peak)) return;
  m.dataset.level = String(peak);
  m.firstChild.style.transform = `scaleX(${meterFraction(peak).toFixed(3)})`;
  if (m.title !== '') setMeterTitle(m); // kept current once the pointer has been over it
}
function setMeterTitle(m) {
  const peak = Number(m.dataset.level);
  m.title = peak > 0 ? `${(20 * Math.log10(peak)).toFixed(1)} dBFS peak` : 'silence';
}
function meterTitle(e) {
  setMeterTitle(e.currentTarget);
}
/** Sets a cell's text only when it changes: an unchanged write still costs the table a layout. */
function setText(td, text) {
  if (td.textContent !== text) td.textContent = text;
}

function addCall(info) {
  if (calls.has(info.id)) return;
  const tr = el('tr');
  tr.dataset.id = String(info.id);
  const cells = {};
  for (const key of ['uuid', 'transport', 'remote', 'format', 'durationMs', 'in', 'out', 'queuedMs', 'lateP99', 'warnings', 'playing']) {
    const td = el('td', key === 'uuid' ? 'uuid' : ['durationMs', 'queuedMs', 'lateP99', 'warnings'].includes(key) ? 'num' : key);
    td.dataset.key = key;
    tr.appendChild(td);
    cells[key] = td;
  }
  cells.uuid.textContent = info.uuid;
  cells.transport.textContent = info.transport === 'websocket' ? 'chan_websocket' : 'AudioSocket';
  cells.remote.textContent = info.remote;
  cells.format.textContent = info.format;
  const mIn = meter('in');
  const mOut = meter('out');
  cells.in.appendChild(mIn);
  cells.out.appendChild(mOut);
  tr.addEventListener('click', () => openDetail(info.id));
  const c = {
    info,
    row: { durationMs: Date.now() - info.startedAt, in: 0, out: 0, queuedMs: 0, lateP99: 0, warnings: 0 },
    tr,
    cells,
    mIn,
    mOut,
    strip: [],
  };
  calls.set(info.id, c);
}

/** Each second: the call's numbers (its levels come every tick, see updateLevels). */
function updateRow(c, row) {
  c.row = { ...row, in: c.row.in, out: c.row.out };
  if (row.format !== c.info.format) c.info.format = c.cells.format.textContent = row.format;
  setText(c.cells.durationMs, dur(row.durationMs));
  setText(c.cells.queuedMs, String(row.queuedMs));
  setText(c.cells.lateP99, String(row.lateP99));
  setText(c.cells.warnings, String(row.warnings));
  setText(c.cells.playing, row.playing ?? '');
  const flags = `${row.silent}/${row.late}`;
  if (c.flags === flags) return;
  c.flags = flags;
  c.tr.classList.toggle('silent', row.silent);
  c.tr.classList.toggle('late', row.late);
  c.tr.dataset.silent = String(row.silent);
  c.tr.dataset.late = String(row.late);
  c.cells.uuid.textContent = c.info.uuid;
  if (row.silent) c.cells.uuid.appendChild(el('span', 'flag', 'silent'));
  if (row.late) c.cells.uuid.appendChild(el('span', 'flag', 'late'));
}

/** Every tick: the call's levels, into its meters and its strip. */
function updateLevels(c, lin, lout) {
  c.row.in = lin;
  c.row.out = lout;
  setMeter(c.mIn, lin);
  setMeter(c.mOut, lout);
  c.strip.push([lin, lout]);
  if (c.strip.length > STRIP) c.strip.shift();
}

function sortValue(c, key) {
  if (key in c.row) return c.row[key] ?? '';
  return c.info[key] ?? '';
}
function renderCalls() {
  const tbody = $('calls').tBodies[0];
  const list = [...calls.values()].sort((a, b) => {
    const x = sortValue(a, sortKey);
    const y = sortValue(b, sortKey);
    const r = x < y ? -1 : x > y ? 1 : a.info.id - b.info.id;
    return sortAsc ? r : -r;
  });
  list.forEach((c, i) => {
    if (tbody.children[i] !== c.tr) tbody.insertBefore(c.tr, tbody.children[i] ?? null);
  });
  while (tbody.children.length > list.length) tbody.lastChild.remove();
  $('active-count').textContent = String(calls.size);
  $('no-calls').hidden = calls.size > 0;
}

function addEnded(e) {
  ended.unshift(e);
  if (ended.length > ENDED) ended.pop();
  const tbody = $('ended').tBodies[0];
  const tr = el('tr');
  tr.dataset.id = String(e.id);
  tr.dataset.reason = e.reason;
  const s = e.stats;
  const reason = e.error ? `${e.reason}: ${e.error}` : e.reason;
  const values = [
    ['uuid', e.uuid],
    ['transport', e.transport === 'websocket' ? 'chan_websocket' : 'AudioSocket'],
    ['remote', e.remote],
    ['format', e.format],
    ['reason', reason],
    ['num', dur(e.durationMs)],
    ['num', s.framesIn],
    ['num', s.framesOut],
    ['num', s.dtmf],
    ['num', s.droppedIn + s.droppedOut],
    ['num', s.lateSlots],
    ['num', s.lateP99],
    ['num', s.warnings],
  ];
  for (const [cls, v] of values) tr.appendChild(el('td', cls, v));
  tr.title = `ended ${time(e.endedAt)}`;
  tbody.insertBefore(tr, tbody.firstChild);
  while (tbody.children.length > ENDED) tbody.lastChild.remove();
}

function eventItem(ev, withUuid) {
  const li = el('li');
  li.dataset.kind = ev.kind;
  li.appendChild(el('span', 'when', `${time(ev.at)} `));
  if (withUuid && ev.uuid) li.appendChild(el('span', 'mono', `${ev.uuid} `));
  if (ev.code) li.appendChild(el('span', 'code', ev.code));
  else li.appendChild(el('span', 'code', ev.kind));
  li.appendChild(el('span', 'text', ev.text));
  return li;
}
function addWarning(ev) {
  warnings.unshift(ev);
  if (warnings.length > WARNINGS) warnings.pop();
  const ol = $('warnings');
  ol.insertBefore(eventItem(ev, true), ol.firstChild);
  while (ol.children.length > WARNINGS) ol.lastChild.remove();
}

function setTotals(t) {
  $('t-calls').textContent = String(t.calls);
  $('t-fin').textContent = String(t.framesInPerSec);
  $('t-fout').textContent = String(t.framesOutPerSec);
  $('t-late').textContent = String(t.lateSlots);
  $('t-drops').textContent = String(t.drops);
  $('t-warn').textContent = String(t.warnings);
}

function drawChart() {
  const cv = $('chart');
  const g = cv.getContext('2d');
  const w = cv.width;
  const h = cv.height;
  g.clearRect(0, 0, w, h);
  if (totals.length < 2) return;
  const series = [
    ['calls', '#1b1f23', (t) => t.calls],
    ['frames/s in', '#2a7ae2', (t) => t.framesInPerSec],
    ['frames/s out', '#2ea043', (t) => t.framesOutPerSec],
    ['late+drops+warnings', '#cf222e', (t) => t.lateSlots + t.drops + t.warnings],
  ];
  const step = w / (Math.max(60, totals.length) - 1);
  const x0 = w - (totals.length - 1) * step;
  series.forEach(([name, color, pick], k) => {
    let max = 1;
    for (const t of totals) max = Math.max(max, pick(t));
    g.strokeStyle = color;
    g.beginPath();
    totals.forEach((t, i) => {
      const y = h - 4 - (pick(t) / max) * (h - 20);
      if (i === 0) g.moveTo(x0 + i * step, y);
      else g.lineTo(x0 + i * step, y);
    });
    g.stroke();
    g.fillStyle = color;
    g.font = '11px system-ui, sans-serif';
    g.fillText(`${name} (max ${max})`, 6 + k * 180, 12);
  });
}

function drawStrip() {
  const c = detailId === null ? undefined : calls.get(detailId);
  const cv = $('strip');
  const g = cv.getContext('2d');
  const w = cv.width;
  const h = cv.height;
  g.clearRect(0, 0, w, h);
  g.strokeStyle = '#e1e4e8';
  g.beginPath();
  g.moveTo(0, h / 2);
  g.lineTo(w, h / 2);
  g.stroke();
  if (!c) return;
  const bw = w / STRIP;
  const x0 = w - c.strip.length * bw;
  c.strip.forEach(([i, o], k) => {
    const hi = meterFraction(i) * (h / 2 - 2);
    const ho = meterFraction(o) * (h / 2 - 2);
    g.fillStyle = '#2a7ae2';
    g.fillRect(x0 + k * bw, h / 2 - hi, Math.max(1, bw - 1), hi);
    g.fillStyle = '#2ea043';
    g.fillRect(x0 + k * bw, h / 2, Math.max(1, bw - 1), ho);
  });
}

function openDetail(id) {
  const c = calls.get(id);
  if (!c) return;
  if (detailId !== id) stopListening();
  detailId = id;
  $('d-listen').hidden = !listenAllowed;
  $('detail').hidden = false;
  $('d-uuid').textContent = c.info.uuid;
  const dl = $('d-info');
  dl.replaceChildren();
  const add = (k, v) => {
    dl.appendChild(el('dt', '', k));
    dl.appendChild(el('dd', '', v));
  };
  add('transport', c.info.transport === 'websocket' ? 'chan_websocket' : 'AudioSocket');
  add('remote', c.info.remote);
  add('format', `${c.info.format}, ${c.info.frameMs} ms frames`);
  add('started', time(c.info.startedAt));
  if (c.info.url !== undefined) add('URL', c.info.url);
  if (c.info.channel !== undefined) add('channel', c.info.channel);
  for (const [k, v] of Object.entries(c.info.variables ?? {})) add(`var ${k}`, v);
  $('d-events').replaceChildren();
  fetch(withToken(`calls/${id}.json`))
    .then((r) => (r.ok ? r.json() : { events: [] }))
    .then((body) => {
      if (detailId !== id) return;
      const ol = $('d-events');
      ol.replaceChildren();
      for (const ev of body.events) ol.appendChild(eventItem(ev, false));
    })
    .catch(() => {});
  drawStrip();
}
$('d-listen').addEventListener('click', () => {
  if (listening) stopListening();
  else if (detailId !== null) listen(detailId);
});
$('d-close').addEventListener('click', () => {
  stopListening();
  detailId = null;
  $('detail').hidden = true;
});

for (const th of $('calls').tHead.rows[0].cells) {
  th.addEventListener('click', () => {
    const key = th.dataset.key;
    if (sortKey === key) sortAsc = !sortAsc;
    else {
      sortKey = key;
      sortAsc = !['durationMs', 'in', 'out', 'queuedMs', 'lateP99', 'warnings'].includes(key);
    }
    for (const o of $('calls').tHead.rows[0].cells) o.classList.remove('sorted', 'asc');
    th.classList.add('sorted');
    th.classList.toggle('asc', sortAsc);
    renderCalls();
  });
}

function onHello(h) {
  listenAllowed = h.listen === true;
  calls.clear();
  $('calls').tBodies[0].replaceChildren();
  $('ended').tBodies[0].replaceChildren();
  $('warnings').replaceChildren();
  ended.length = 0;
  warnings = [];
  for (const info of h.calls) addCall(info);
  for (const e of h.ended) addEnded(e);
  for (const w of h.warnings) addWarning(w);
  totals = h.totals.slice(-HISTORY);
  if (totals.length) setTotals(totals[totals.length - 1]);
  renderCalls();
  drawChart();
}

function onTick(t) {
  for (const info of t.added) addCall(info);
  const levels = t.levels ?? [];
  for (let i = 0; i + 2 < levels.length; i += 3) {
    const c = calls.get(levels[i]);
    if (c) updateLevels(c, levels[i + 1] / 1000, levels[i + 2] / 1000); // thousandths in the feed
  }
  for (const row of t.rows) {
    const c = calls.get(row.id);
    if (c) updateRow(c, row);
  }
  for (const e of t.ended) {
    calls.delete(e.id);
    addEnded(e);
  }
  for (const ev of t.events) {
    if (ev.kind === 'warning') addWarning(ev);
    if (ev.id === detailId) $('d-events').appendChild(eventItem(ev, false));
  }
  if (t.totals) {
    totals.push(t.totals);
    if (totals.length > HISTORY) totals.shift();
    setTotals(t.totals);
    drawChart();
  }
  renderCalls();
  drawStrip();
}

function connect() {
  const status = $('status');
  const es = new EventSource(withToken('events'));
  es.addEventListener('hello', (m) => {
    status.textContent = 'live';
    status.className = 'status live';
    onHello(JSON.parse(m.data));
  });
  es.addEventListener('tick', (m) => onTick(JSON.parse(m.data)));
  es.onerror = () => {
    status.textContent = 'disconnected, retrying…';
    status.className = 'status down';
  };
}
connect();
