/**
 * What the monitor knows about a server's calls, bounded: per live call what the call's tap
 * holds (frames sent late, the peak of one frame each way per tick, the plays it queues), and
 * rings of ended calls, warnings and totals. {@link MonitorState.tick} reads the calls and turns
 * them into the feed's messages, once per interval, whatever the frame rate. Per frame, a call
 * with a monitor does a comparison more than one without (see `CallTap`).
 */
import { basename } from 'node:path';
import type { AudioSocketServer } from '../server.js';
import type { CallEnd, CallWarning } from '../call/types.js';
import type { Call } from '../server.js';
import { formatName, type AudioFormat } from '../audio/format.js';
import { CallListen } from './listen.js';
import { kCallFrames, kCallSample, kCallTap, type CallTap, type TapPlay } from '../call/core.js';
import type { PlayResult } from '../outbound/queue.js';
import { SendMeter } from '../outbound/send-meter.js';

/** Level (0..1 of full scale) under which inbound audio counts as silence: about -50 dBFS. */
export const SILENCE_LEVEL = 0.003;

/** Tuning of the monitor's state (what it keeps of calls, totals and warnings); every field has a default. */
export interface MonitorStateOptions {
  /** How often the feed sends the calls' levels and counters, ms. Default 250. */
  intervalMs?: number;
  /** Ended calls kept. Default 100. */
  endedCalls?: number;
  /** Warnings kept (all calls together). Default 100. */
  warnings?: number;
  /** Events (DTMF, marks, plays, warnings) kept per call. Default 100. */
  callEvents?: number;
  /** Seconds of totals kept (one point per second). Default 600. */
  historySeconds?: number;
  /** A call whose inbound audio stayed under -50 dBFS (or stopped) this long is shown as silent, ms. Default 2000. */
  silentAfterMs?: number;
  /** A call that sent a frame later than this is shown as late for 3 s, ms. Default: half a frame. */
  lateMs?: number;
}

/** What the page shows of a call for its whole life (sent once, when it appears). */
export interface MonitorCallInfo {
  id: number;
  uuid: string;
  transport: Call['transport'];
  remote: string;
  format: string;
  frameMs: number;
  startedAt: number;
  /** chan_websocket: the request URL (with its parameters), the channel and its variables. */
  url?: string;
  channel?: string;
  variables?: Record<string, string>;
}

/** A live call's numbers, each second. Levels are peaks of one frame each way at this tick, 0..1. */
export interface MonitorCallRow {
  id: number;
  /** What the call receives now (AudioSocket's inbound format is known from its first frame). */
  format: string;
  in: number;
  out: number;
  durationMs: number;
  queuedMs: number;
  /** p99 of the `sent` events' lateness over the call, ms. */
  lateP99: number;
  warnings: number;
  playing: string | null;
  silent: boolean;
  late: boolean;
  framesIn: number;
  framesOut: number;
}

export interface MonitorEndedCall extends MonitorCallInfo {
  reason: CallEnd['reason'];
  error?: string;
  durationMs: number;
  endedAt: number;
  stats: {
    framesIn: number;
    framesOut: number;
    dtmf: number;
    droppedIn: number;
    droppedOut: number;
    lateSlots: number;
    lateP99: number;
    warnings: number;
    unsentMs: number;
  };
}

export interface MonitorEvent {
  id: number;
  uuid: string;
  /** Wall clock, ms since the epoch. */
  at: number;
  kind: 'dtmf' | 'mark' | 'play' | 'played' | 'warning';
  text: string;
  code?: string;
}

/** Totals over one second. */
export interface MonitorTotals {
  at: number;
  calls: number;
  framesInPerSec: number;
  framesOutPerSec: number;
  lateSlots: number;
  drops: number;
  warnings: number;
}

/** The feed's first message: everything the page needs to draw. */
export interface MonitorHello {
  intervalMs: number;
  /** Listen-in is on (`listen/<id>` serves a call's audio). */
  listen?: boolean;
  calls: MonitorCallInfo[];
  ended: MonitorEndedCall[];
  warnings: MonitorEvent[];
  totals: MonitorTotals[];
}

/**
 * One tick of the feed. Two rates: every tick (`intervalMs`) the calls' levels; each second
 * every call's numbers (`rows`, empty on the other ticks) and the totals.
 */
export interface MonitorTick {
  at: number;
  added: MonitorCallInfo[];
  /**
   * Every live call's levels at this tick, flat: `[id, in, out, id, in, out, ...]`, in
   * thousandths (integers 0..1000; the rows' 0..1 times 1000): the feed's largest part, every
   * tick, so kept to small integers (no decimals to print, nothing allocated per number).
   */
  levels: number[];
  /** Each second: every live call's numbers (the levels as at this tick); empty on the ticks between. */
  rows: MonitorCallRow[];
  ended: MonitorEndedCall[];
  events: MonitorEvent[];
  totals?: MonitorTotals;
}

/** A bounded first-in first-out list. */
class Ring<T> {
  readonly #items: T[] = [];
  constructor(readonly capacity: number) {}
  push(item: T): void {
    this.#items.push(item);
    if (this.#items.length > this.capacity) this.#items.shift();
  }
  toArray(): T[] {
    return this.#items.slice();
  }
}

/** Events a tick carries at most (a warning storm is counted, not flooded to the browser). */
const EVENTS_PER_TICK = 200;

const lateSlotsOf = (stats: object): number => ('lateSlots' in stats ? (stats.lateSlots as number) : 0);

/** A live call as the monitor sees it; also the call's tap (see {@link CallTap}). */
class Track implements CallTap {
  readonly sendMeter = new SendMeter();
  inPeak = 0;
  lastLoudAt: number;
  lastLateAt = -Infinity;
  lastFormat: AudioFormat | undefined;
  warnings = 0;
  readonly plays: string[] = [];
  readonly events: Ring<MonitorEvent>;
  /** The call's audio for listeners, while anyone listens. */
  listen: CallListen | undefined;
  constructor(
    readonly call: Call,
    readonly info: MonitorCallInfo,
    eventsKept: number,
    now: number,
    /** A frame sent later than this shows the call as late, ms. */
    readonly lateMs: number,
    readonly onPlay: (track: Track, what: TapPlay, result: Promise<PlayResult>) => void,
  ) {
    this.lastLoudAt = now;
    this.events = new Ring(eventsKept);
  }
  play(what: TapPlay, result: Promise<PlayResult>): void {
    this.onPlay(this, what, result);
  }
  /** Starts or stops taking every frame each way, for listen-in. */
  setListen(listen: CallListen | undefined): void {
    this.listen = listen;
    this.call[kCallFrames](
      listen === undefined
        ? undefined
        : { audio: (wire, payload) => listen.in.push(payload, wire), sent: (payload, format) => listen.out.push(payload, format) },
    );
  }
}

function remoteOf(call: Call): string {
  return call.remoteAddress.includes(':') ? `[${call.remoteAddress}]:${call.remotePort}` : `${call.remoteAddress}:${call.remotePort}`;
}

/**
 * The monitor's model of one server. Attach it once; {@link close} detaches every listener it
 * added. Cost per frame: a comparison; per tick and call, one peak each way.
 */
export class MonitorState {
  readonly intervalMs: number;
  readonly #server: AudioSocketServer;
  readonly #tracks = new Map<Call, Track>();
  readonly #ended: Ring<MonitorEndedCall>;
  readonly #warnings: Ring<MonitorEvent>;
  readonly #totals: Ring<MonitorTotals>;
  readonly #eventsKept: number;
  readonly #silentAfterMs: number;
  readonly #lateMs: number | undefined;
  #nextId = 1;
  #added: MonitorCallInfo[] = [];
  #endedNow: MonitorEndedCall[] = [];
  #events: MonitorEvent[] = [];
  #eventsLost = 0;
  /** Totals of ended calls, so the per-second rates include calls that ended within the second. */
  #endedSums = { framesIn: 0, framesOut: 0, late: 0, drops: 0, warnings: 0 };
  #lastSums = { framesIn: 0, framesOut: 0, late: 0, drops: 0, warnings: 0, at: Date.now() };
  #lastTotalsAt = 0;
  readonly #onCall = (call: Call): void => this.#attach(call);
  readonly #onEnd = (call: Call, end: CallEnd): void => this.#detach(call, end);
  readonly #detachers = new Map<Call, () => void>();

  constructor(server: AudioSocketServer, options: MonitorStateOptions = {}) {
    this.#server = server;
    this.intervalMs = options.intervalMs ?? 250;
    this.#ended = new Ring(options.endedCalls ?? 100);
    this.#warnings = new Ring(options.warnings ?? 100);
    this.#totals = new Ring(options.historySeconds ?? 600);
    this.#eventsKept = options.callEvents ?? 100;
    this.#silentAfterMs = options.silentAfterMs ?? 2000;
    this.#lateMs = options.lateMs;
    server.on('call', this.#onCall);
    server.on('callEnd', this.#onEnd);
    for (const call of server.calls) this.#attach(call);
  }

  /** Stops listening to the server and its calls. */
  close(): void {
    this.#server.off('call', this.#onCall);
    this.#server.off('callEnd', this.#onEnd);
    for (const off of this.#detachers.values()) off();
    this.#detachers.clear();
    this.#tracks.clear();
  }

  /** The call with monitor id `id`, if it is live. */
  callById(id: number): Call | undefined {
    for (const t of this.#tracks.values()) if (t.info.id === id) return t.call;
    return undefined;
  }

  /**
   * Starts listening to the live call with monitor id `id`: its audio is collected until
   * `stop()`. `undefined` if there is no such call.
   */
  listen(id: number): { take: () => { in: string; out: string }; stop: () => void; readonly ended: boolean } | undefined {
    let track: Track | undefined;
    for (const t of this.#tracks.values()) if (t.info.id === id) track = t;
    if (track === undefined) return undefined;
    if (track.listen === undefined) track.setListen(new CallListen());
    const listen = track.listen!;
    listen.listeners++;
    let stopped = false;
    const tracks = this.#tracks;
    const t = track;
    return {
      take: () => listen.take(),
      get ended() {
        return !tracks.has(t.call);
      },
      stop: () => {
        if (stopped) return;
        stopped = true;
        if (--listen.listeners === 0 && t.listen === listen) {
          t.setListen(undefined);
          listen.dispose();
        }
      },
    };
  }

  /** The events of the live or recently ended call with monitor id `id`. */
  eventsOf(id: number): MonitorEvent[] | undefined {
    for (const t of this.#tracks.values()) if (t.info.id === id) return t.events.toArray();
    return undefined;
  }

  hello(): MonitorHello {
    return {
      intervalMs: this.intervalMs,
      calls: [...this.#tracks.values()].map((t) => t.info),
      ended: this.#ended.toArray(),
      warnings: this.#warnings.toArray(),
      totals: this.#totals.toArray(),
    };
  }

  #attach(call: Call): void {
    if (this.#tracks.has(call)) return;
    const now = Date.now();
    const info: MonitorCallInfo = {
      id: this.#nextId++,
      uuid: call.uuid,
      transport: call.transport,
      remote: remoteOf(call),
      format: call.inboundFormat ? formatName(call.inboundFormat) : formatName(call.outboundFormat),
      frameMs: call.frameMs,
      startedAt: call.startTime.getTime(),
    };
    if (call.transport === 'websocket') {
      info.format = call.mediaStart.format;
      info.url = call.url;
      info.channel = call.mediaStart.channel;
      info.variables = { ...call.mediaStart.channelVariables };
    }
    const track = new Track(call, info, this.#eventsKept, now, this.#lateMs ?? Math.max(1, call.frameMs / 2), this.#onPlay);
    this.#tracks.set(call, track);
    this.#added.push(info);
    const onDtmf = (digit: string): void => void this.#event(track, 'dtmf', digit);
    const onMark = (name: string, reached: boolean): void => void this.#event(track, 'mark', `${name} ${reached ? 'reached' : 'flushed'}`);
    const onWarning = (w: CallWarning): void => {
      track.warnings++;
      this.#endedSums.warnings++;
      const ev = this.#event(track, 'warning', w.message, w.code);
      this.#warnings.push(ev);
      this.#keepProcessWarning(call, w);
    };
    call[kCallTap](track);
    call.on('dtmf', onDtmf);
    call.on('mark', onMark);
    call.on('warning', onWarning);

    this.#detachers.set(call, () => {
      call[kCallTap](undefined);
      call[kCallFrames](undefined);
      call.off('dtmf', onDtmf);
      call.off('mark', onMark);
      call.off('warning', onWarning);
    });
  }

  readonly #onPlay = (track: Track, source: TapPlay, result: Promise<PlayResult>): void => {
    const what = 'file' in source ? basename(source.file) : 'bytes' in source ? `${source.bytes} bytes of audio` : 'a stream';
    track.plays.push(what);
    this.#event(track, 'play', what);
    const done = (text: string): void => {
      const i = track.plays.indexOf(what);
      if (i >= 0) track.plays.splice(i, 1);
      this.#event(track, 'played', `${what}: ${text}`);
    };
    result.then(
      (r) =>
        done(r.status === 'done' ? `done, ${Math.round(r.sentMs)} ms` : `interrupted (${r.reason ?? ''}) after ${Math.round(r.sentMs)} ms`),
      (err: Error) => done(`failed: ${err.message}`),
    );
  };

  #detach(call: Call, end: CallEnd): void {
    const track = this.#tracks.get(call);
    if (track === undefined) return;
    track.listen?.dispose();
    this.#detachers.get(call)?.();
    this.#detachers.delete(call);
    this.#tracks.delete(call);
    const s = end.stats;
    this.#endedSums.framesIn += s.audioIn;
    this.#endedSums.framesOut += s.framesSent;
    this.#endedSums.late += lateSlotsOf(s);
    this.#endedSums.drops += s.droppedIn + s.droppedOut;
    const record: MonitorEndedCall = {
      ...track.info,
      reason: end.reason,
      durationMs: Math.round(end.durationMs),
      endedAt: Date.now(),
      stats: {
        framesIn: s.audioIn,
        framesOut: s.framesSent,
        dtmf: s.dtmfIn,
        droppedIn: s.droppedIn,
        droppedOut: s.droppedOut,
        lateSlots: lateSlotsOf(s),
        lateP99: track.sendMeter.lateP99(s.framesSent),
        warnings: track.warnings,
        unsentMs: Math.round(s.unsentMs),
      },
    };
    if (end.error !== undefined) record.error = end.error.message;
    this.#ended.push(record);
    this.#endedNow.push(record);
  }

  #event(track: Track, kind: MonitorEvent['kind'], text: string, code?: string): MonitorEvent {
    const ev: MonitorEvent = { id: track.info.id, uuid: track.info.uuid, at: Date.now(), kind, text };
    if (code !== undefined) ev.code = code;
    track.events.push(ev);
    if (this.#events.length < EVENTS_PER_TICK) this.#events.push(ev);
    else this.#eventsLost++;
    return ev;
  }

  /**
   * The monitor's `warning` listener must not silence the server's default (a process warning
   * when nobody else listens, once per call and code): it says it in the server's place.
   */
  readonly #processWarned = new WeakMap<Call, Set<string>>();
  #keepProcessWarning(call: Call, w: CallWarning): void {
    if (call.listenerCount('warning') > 1 || this.#server.listenerCount('callWarning') > 0) return;
    let said = this.#processWarned.get(call);
    if (said === undefined) this.#processWarned.set(call, (said = new Set()));
    if (said.has(w.code)) return;
    said.add(w.code);
    process.emitWarning(`call ${call.uuid}: ${w.message} (listen for 'warning' on the call or 'callWarning' on the server to handle it)`, {
      type: 'AudioSocketWarning',
      code: w.code,
    });
  }

  /** The next feed message: levels, calls added and ended, events, and each second the calls' numbers and the totals. */
  tick(now = Date.now()): MonitorTick {
    const second = now - this.#lastTotalsAt >= 1000;
    const levels: number[] = [];
    const rows: MonitorCallRow[] = [];
    let framesIn = this.#endedSums.framesIn;
    let framesOut = this.#endedSums.framesOut;
    let late = this.#endedSums.late;
    let drops = this.#endedSums.drops;
    for (const t of this.#tracks.values()) {
      // Levels: the peak of the first frame each way after the last tick (0 if none came).
      const meter = t.sendMeter;
      if (t.inPeak >= SILENCE_LEVEL) t.lastLoudAt = now;
      const inMilli = Math.round(t.inPeak * 1000);
      const outMilli = Math.round(meter.peak * 1000);
      t.inPeak = 0;
      meter.peak = 0;
      t.call[kCallSample]();
      levels.push(t.info.id, inMilli, outMilli);
      if (meter.maxLateMs > t.lateMs) t.lastLateAt = now;
      meter.maxLateMs = 0;
      if (!second) continue;
      const s = t.call.stats;
      framesIn += s.audioIn;
      framesOut += s.framesSent;
      late += lateSlotsOf(s);
      drops += s.droppedIn + s.droppedOut;
      const inbound = t.call.inboundFormat;
      if (inbound !== t.lastFormat && inbound !== undefined && t.call.transport === 'audiosocket') {
        t.lastFormat = inbound;
        t.info.format = formatName(inbound);
      }
      rows.push({
        id: t.info.id,
        format: t.info.format,
        in: inMilli / 1000,
        out: outMilli / 1000,
        durationMs: now - t.info.startedAt,
        queuedMs: Math.round(s.queuedMs),
        lateP99: meter.lateP99(s.framesSent),
        warnings: t.warnings,
        playing: t.plays[0] ?? null,
        silent: now - t.lastLoudAt >= this.#silentAfterMs,
        late: now - t.lastLateAt < 3000,
        framesIn: s.audioIn,
        framesOut: s.framesSent,
      });
    }
    const tick: MonitorTick = { at: now, added: this.#added, levels, rows, ended: this.#endedNow, events: this.#events };
    this.#added = [];
    this.#endedNow = [];
    this.#events = [];
    if (this.#eventsLost > 0) {
      tick.events.push({ id: 0, uuid: '', at: now, kind: 'warning', text: `${this.#eventsLost} more events not shown`, code: 'MONITOR' });
      this.#eventsLost = 0;
    }
    if (second) {
      const last = this.#lastSums;
      const dt = Math.max(0.001, (now - last.at) / 1000);
      const warnings = this.#endedSums.warnings;
      const totals: MonitorTotals = {
        at: now,
        calls: this.#tracks.size,
        framesInPerSec: Math.round((framesIn - last.framesIn) / dt),
        framesOutPerSec: Math.round((framesOut - last.framesOut) / dt),
        lateSlots: late - last.late,
        drops: drops - last.drops,
        warnings: warnings - last.warnings,
      };
      this.#lastSums = { framesIn, framesOut, late, drops, warnings, at: now };
      this.#lastTotalsAt = now;
      this.#totals.push(totals);
      tick.totals = totals;
    }
    return tick;
  }
}
