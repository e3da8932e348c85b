/**
 * Simulated-Asterisk load generator (module + CLI).
 *
 * N concurrent TCP calls, ramped up over `rampS`; each sends a random v4 UUID, then one audio
 * message per frame period (20 ms) on a drift-free schedule: frame k of a call is due at
 * t0(call) + k * 20 ms on `performance.now()`. ONE timer drives every call: calls are placed in
 * `frameMs / tickMs` phase buckets and the timer visits one bucket per tick (catching up on
 * missed ticks), so phases are spread over the 20 ms like real independent channels.
 *
 * Payload layout (little-endian), default 320 B:
 *   0 u32 magic | 4 u32 call id | 8 u32 seq | 12 f64 send time (performance.now(), ms) |
 *   20.. filler = slice of a fixed pseudo-random table at an offset derived from (call, seq)
 * so every echo is verified byte for byte with native compares and no per-frame allocation
 * other than the buffer handed to socket.write().
 *
 * Echo mode: counts verified echoes, lost, corrupted, duplicates, out-of-order, silence
 * (all-zero audio, the server's keep-alive) and unexpected frames, RTT and inter-arrival.
 * Play mode: expects no echo; per call records inter-arrival of non-silence audio and the drift
 * (last arrival - first arrival) - (audio duration received minus the last frame).
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import {
  Decoder,
  HEADER_BYTES,
  KIND_DTMF,
  KIND_HANGUP,
  audioRate,
  encode,
  encodeUuid,
  isAudioKind,
  randomUuidBytes,
  writeHeader,
} from './lib/wire.js';
import { Histogram, type HistSummary } from './lib/hist.js';

export type SendStyle = 'normal' | 'split' | 'coalesce';
export type LoadMode = 'echo' | 'play';
export type LoadEvent = 'steady' | 'stop-sending' | 'closing' | 'done';

export interface LoadOptions {
  host?: string;
  port: number;
  calls?: number;
  /** Seconds of sending after the ramp-up has completed (the steady-state window). */
  durationS?: number;
  /** Seconds over which connects are spread. Default: 2 ms per call, at most 10 s. */
  rampS?: number;
  mode?: LoadMode;
  style?: SendStyle;
  /** Frames per write in coalesce style (default 2: two frames every 40 ms). */
  coalesce?: number;
  /** Audio kind to send (0x10..0x18). Default 0x10. */
  kind?: number;
  frameMs?: number;
  /** Payload bytes per frame; default rate * 2 * frameMs / 1000 (320 for 0x10 / 20 ms). */
  payloadBytes?: number;
  /** Scheduler resolution; must divide frameMs. Default 1 ms. */
  tickMs?: number;
  /** How long to wait for echoes after the last send before counting losses. Default 1000. */
  graceMs?: number;
  connectTimeoutMs?: number;
  closeTimeoutMs?: number;
  /** Also send a DTMF '5' every N ms per call (0 = never). Echo servers must ignore it. */
  dtmfEveryMs?: number;
  /** Play mode: send only the UUID, no audio. */
  mute?: boolean;
  /**
   * Echo mode through a path that transcodes to G.711 u-law and back (the gateway to a Twilio
   * bot): every sample is one of 16 u-law levels carrying 4 bits, so the round trip is exact
   * and frames still verify byte for byte (the marker is a quarter of the payload).
   */
  g711?: boolean;
  /** Each call sends its UUID, then audio only after this many ms (a server that needs time to get ready, e.g. a gateway's bot connection). Default 0. */
  audioDelayMs?: number;
  /** Do not write more to a socket holding more than this many unsent bytes (frame is skipped). */
  maxQueuedBytes?: number;
  onEvent?: (event: LoadEvent, atMs: number) => void;
  /** Aborting ends the sending phase early (then grace and clean close as usual). */
  signal?: AbortSignal;
}

export interface LoadResult {
  ok: boolean;
  problems: string[];
  config: Required<Omit<LoadOptions, 'onEvent' | 'signal'>>;
  startedAt: string;
  calls: {
    requested: number;
    connected: number;
    failedConnect: number;
    closedBy: { client: number; server: number; error: number; forced: number };
    errors: Record<string, number>;
    serverHangups: number;
  };
  window: { steadyAtMs: number; stopAtMs: number; seconds: number };
  frames: {
    sent: number;
    sentInWindow: number;
    verified: number;
    lost: number;
    corrupted: number;
    duplicates: number;
    outOfOrder: number;
    unexpected: number;
    invalidAudio: number;
    silence: number;
    otherKinds: number;
    afterGrace: number;
    skippedBackpressure: number;
    dtmfSent: number;
  };
  rttMs: HistSummary;
  /** Each call's mean round trip, over the calls: a few calls with a standing delay, or all calls late now and then. */
  callRttMeanMs: HistSummary;
  interArrivalMs: HistSummary;
  worstCallMaxGapMs: number;
  sendLagMs: HistSummary;
  play: null | {
    framesReceived: number;
    callsWithAudio: number;
    interArrivalMs: HistSummary;
    driftMs: { min: number; p50: number; max: number; maxAbs: number; mean: number };
    /**
     * Every frame's |drift|: how far from its place it arrived, its place being the call's first
     * frame's arrival plus the audio received before it (a late frame and its followers drift).
     */
    frameDriftAbsMs: HistSummary;
    /** Frames that arrived less than a quarter frame after the previous one (back to back). */
    burstFrames: number;
    burstPercent: number;
  };
  loadgen: { cpuSecInWindow: number; cpuPercentOfCore: number; rssMB: number };
}

const MAGIC = 0xa5d10500;
const META_BYTES = 20;
const TABLE_BYTES = 1 << 17;
const ZERO = Buffer.alloc(0x10000);

/** Fixed pseudo-random table the filler is sliced from (same in every process). */
const TABLE: Buffer = (() => {
  const t = Buffer.allocUnsafe(TABLE_BYTES);
  let x = 0x12345678;
  for (let i = 0; i < TABLE_BYTES; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    t.writeInt32LE(x | 0, i);
  }
  return t;
})();

function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul((b + 0x7f4a7c15) | 0, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39);
  h ^= h >>> 15;
  return h >>> 0;
}

function fillerOffset(callId: number, seq: number, fillerLen: number): number {
  return mix(callId, seq) % (TABLE_BYTES - fillerLen + 1);
}

/** Write the marker payload for (call, seq) at `off` of `buf`. */
export function fillPayload(buf: Buffer, off: number, payloadLen: number, callId: number, seq: number, ts: number): void {
  buf.writeUInt32LE(MAGIC, off);
  buf.writeUInt32LE(callId, off + 4);
  buf.writeUInt32LE(seq, off + 8);
  buf.writeDoubleLE(ts, off + 12);
  const fl = payloadLen - META_BYTES;
  const o = fillerOffset(callId, seq, fl);
  TABLE.copy(buf, off + META_BYTES, o, o + fl);
}

/** G.711 u-law decoding (ITU-T G.711), written here: the bench does not import the library. */
function decodeUlawSample(code: number): number {
  const u = ~code & 0xff;
  const magnitude = ((((u & 0x0f) << 3) + 0x84) << ((u >> 4) & 7)) - 0x84;
  return u & 0x80 ? -magnitude : magnitude;
}

/** u-law-exact samples for the 16 nibbles (codes 0x80-0x8F), and back. */
const NIBBLE_SAMPLE = Int16Array.from({ length: 16 }, (_, n) => decodeUlawSample(0x80 | n));
const SAMPLE_NIBBLE = new Map(Array.from(NIBBLE_SAMPLE, (sample, n) => [sample, n]));

/** The marker payload (`payloadLen / 4` bytes of it) as u-law-exact slin, two samples a byte. */
function fillG711Payload(buf: Buffer, off: number, payloadLen: number, callId: number, seq: number, ts: number, scratch: Buffer): void {
  const n = payloadLen >> 2;
  fillPayload(scratch, 0, n, callId, seq, ts);
  for (let i = 0; i < n; i++) {
    const b = scratch[i]!;
    buf.writeInt16LE(NIBBLE_SAMPLE[b >> 4]!, off + 4 * i);
    buf.writeInt16LE(NIBBLE_SAMPLE[b & 15]!, off + 4 * i + 2);
  }
}

/** Reads a payload written by {@link fillG711Payload} back into `out` (a message with its header); false if it is not one. */
function readG711Payload(frame: Buffer, payloadLen: number, out: Buffer): boolean {
  const n = payloadLen >> 2;
  for (let i = 0; i < n; i++) {
    const hi = SAMPLE_NIBBLE.get(frame.readInt16LE(HEADER_BYTES + 4 * i));
    const lo = SAMPLE_NIBBLE.get(frame.readInt16LE(HEADER_BYTES + 4 * i + 2));
    if (hi === undefined || lo === undefined) return false;
    out[HEADER_BYTES + i] = (hi << 4) | lo;
  }
  return true;
}

const enum Seq {
  NotSent = 0,
  Sent = 1,
  Received = 2,
}

const enum State {
  Pending,
  Connecting,
  Open,
  Closed,
}

interface Call {
  id: number;
  socket: net.Socket | null;
  state: State;
  connectStartedAt: number;
  opened: boolean;
  closing: boolean;
  closedBy: 'client' | 'server' | 'error' | 'forced' | null;
  /** First tick index at which this call may send (its phase). */
  j0: number;
  /** Next sequence number. */
  k: number;
  seqs: Uint8Array;
  received: number;
  highest: number;
  lastEchoAt: number;
  maxGap: number;
  /** Sum of the round trips of the call's echoes (for its mean: a standing delay shows per call). */
  rttSum: number;
  pending: Buffer | null;
  // play mode
  firstAudioAt: number;
  lastAudioAt: number;
  audioMs: number;
  lastFrameMs: number;
  audioFrames: number;
}

function resolveOptions(o: LoadOptions): LoadResult['config'] {
  const calls = o.calls ?? 100;
  const kind = o.kind ?? 0x10;
  const rate = audioRate(kind);
  if (rate === undefined) throw new RangeError(`kind 0x${kind.toString(16)} is not an audio kind`);
  const frameMs = o.frameMs ?? 20;
  const tickMs = o.tickMs ?? 1;
  const payloadBytes = o.payloadBytes ?? Math.round((rate * 2 * frameMs) / 1000);
  const cfg = {
    host: o.host ?? '127.0.0.1',
    port: o.port,
    calls,
    durationS: o.durationS ?? 10,
    rampS: o.rampS ?? Math.min(10, calls * 0.002),
    mode: o.mode ?? 'echo',
    style: o.style ?? 'normal',
    coalesce: o.coalesce ?? 2,
    kind,
    frameMs,
    payloadBytes,
    tickMs,
    graceMs: o.graceMs ?? 1000,
    connectTimeoutMs: o.connectTimeoutMs ?? 3000,
    closeTimeoutMs: o.closeTimeoutMs ?? 3000,
    dtmfEveryMs: o.dtmfEveryMs ?? 0,
    mute: o.mute ?? false,
    g711: o.g711 ?? false,
    audioDelayMs: o.audioDelayMs ?? 0,
    maxQueuedBytes: o.maxQueuedBytes ?? 1 << 20,
  } satisfies LoadResult['config'];
  if (!Number.isInteger(calls) || calls < 1 || calls > 20000) throw new RangeError('calls must be 1..20000');
  if (!(cfg.durationS > 0 && cfg.durationS <= 3600)) throw new RangeError('duration must be in (0, 3600] s');
  if (!(cfg.rampS >= 0 && cfg.rampS <= 600)) throw new RangeError('ramp must be in [0, 600] s');
  if (!Number.isInteger(frameMs / tickMs) || frameMs <= 0 || tickMs <= 0) throw new RangeError('tickMs must divide frameMs');
  if (cfg.g711 && payloadBytes >> 2 < META_BYTES) throw new RangeError(`a G.711-exact payload needs at least ${4 * META_BYTES} bytes`);
  if (payloadBytes < META_BYTES || payloadBytes > 0xffff || payloadBytes % 2 !== 0) {
    throw new RangeError(`payload must be even and in ${META_BYTES}..65534 bytes`);
  }
  if (!Number.isInteger(cfg.coalesce) || cfg.coalesce < 1 || cfg.coalesce > 50) throw new RangeError('coalesce must be 1..50');
  if (cfg.dtmfEveryMs !== 0 && cfg.dtmfEveryMs < frameMs) throw new RangeError('dtmfEveryMs must be 0 or >= frameMs');
  return cfg;
}

/** Run one load: resolves after every call has been closed (bounded by the configured times). */
export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const cfg = resolveOptions(opts);
  const { calls: nCalls, frameMs, tickMs, payloadBytes: P, kind, style, mode } = cfg;
  const nBuckets = frameMs / tickMs;
  const buckets: Call[][] = Array.from({ length: nBuckets }, () => []);
  const rampMs = cfg.rampS * 1000;
  const maxSeq = Math.ceil(((cfg.rampS + cfg.durationS) * 1000 + cfg.connectTimeoutMs + 2000) / frameMs) + 2 * nBuckets;
  const rate = audioRate(kind)!;
  const dtmfEveryFrames = cfg.dtmfEveryMs > 0 ? Math.round(cfg.dtmfEveryMs / frameMs) : 0;
  const dtmfMsg = encode(KIND_DTMF, Buffer.from('5'));
  const coalesce = style === 'coalesce' ? cfg.coalesce : 1;
  /** Bytes of the marker payload: all of it, or a quarter in G.711-exact form. */
  const markerBytes = cfg.g711 ? P >> 2 : P;
  const g711Scratch = Buffer.alloc(markerBytes);
  const g711Frame = Buffer.alloc(HEADER_BYTES + markerBytes);

  const rtt = new Histogram();
  const gaps = new Histogram();
  const sendLag = new Histogram();
  const playGaps = new Histogram();
  const playDrift = new Histogram();
  let burstFrames = 0;
  const errors: Record<string, number> = {};
  let sent = 0;
  let sentInWindow = 0;
  let verified = 0;
  let corrupted = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let unexpected = 0;
  let silence = 0;
  let otherKinds = 0;
  let afterGrace = 0;
  let skipped = 0;
  let dtmfSent = 0;
  let serverHangups = 0;
  let connected = 0;
  let failedConnect = 0;
  let frozen = false;
  let lostAtFreeze = 0;
  let rxNow = 0;
  let liveSockets = 0;
  let forced = false;
  let invalidAudio = 0;

  const calls: Call[] = [];
  const connecting = new Set<Call>();
  const splitQueue: Call[] = [];
  const startedAt = new Date().toISOString();
  const T0 = performance.now();
  let lastTick = -1;
  let nextToConnect = 0;
  let phase: 'ramp' | 'steady' | 'grace' | 'closing' | 'done' = 'ramp';
  /** When the last connected call starts its audio (its first frame's tick). */
  let audioFromMs = 0;
  let steadyAt = 0;
  let stopAt = Infinity;
  let cpuAtSteady = process.cpuUsage();
  let cpuInWindow = 0;
  let timer: NodeJS.Timeout | null = null;
  let resolveRun!: (r: LoadResult) => void;
  const done = new Promise<LoadResult>((res) => (resolveRun = res));
  const emit = (e: LoadEvent): void => opts.onEvent?.(e, performance.now() - T0);

  for (let i = 0; i < nCalls; i++) {
    calls.push({
      id: i + 1,
      socket: null,
      state: State.Pending,
      connectStartedAt: 0,
      opened: false,
      closing: false,
      closedBy: null,
      j0: 0,
      k: 0,
      seqs: new Uint8Array(maxSeq),
      received: 0,
      highest: -1,
      lastEchoAt: -1,
      maxGap: 0,
      rttSum: 0,
      pending: null,
      firstAudioAt: -1,
      lastAudioAt: -1,
      audioMs: 0,
      lastFrameMs: 0,
      audioFrames: 0,
    });
  }

  const onAbort = (): void => {
    if (phase === 'ramp' || phase === 'steady') stopAt = Math.min(stopAt, performance.now());
    if (phase === 'ramp') startSteady(performance.now());
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  function onFrameFor(c: Call): (k: number, frame: Buffer) => void {
    return (k, frame) => {
      if (!isAudioKind(k)) {
        if (k === KIND_HANGUP) serverHangups++;
        else otherKinds++;
        return;
      }
      const plen = frame.length - HEADER_BYTES;
      if (plen === 0 || (plen & 1) === 1) {
        invalidAudio++; // Asterisk would tear the call down (empty) or misplay it (odd)
        return;
      }
      if (cfg.g711 && plen === P && frame.readInt16LE(HEADER_BYTES) !== 0) {
        // Decode the marker, then verify it as any other (its length is the marker's).
        if (readG711Payload(frame, P, g711Frame)) frame = g711Frame;
      }
      const marked = plen >= META_BYTES && frame.readUInt32LE(HEADER_BYTES) === MAGIC;
      if (!marked) {
        if (ZERO.compare(frame, HEADER_BYTES, frame.length, 0, plen) === 0) {
          silence++;
          return;
        }
        if (mode === 'play') {
          onPlayAudio(c, k, plen);
          return;
        }
        unexpected++;
        return;
      }
      if (frozen) {
        afterGrace++;
        return;
      }
      const cid = frame.readUInt32LE(HEADER_BYTES + 4);
      const seq = frame.readUInt32LE(HEADER_BYTES + 8);
      const ts = frame.readDoubleLE(HEADER_BYTES + 12);
      const fl = markerBytes - META_BYTES;
      if (
        cid !== c.id ||
        plen !== P ||
        k !== kind ||
        seq >= c.k ||
        c.seqs[seq] === Seq.NotSent ||
        !(ts >= T0 && ts <= rxNow) ||
        TABLE.compare(frame, HEADER_BYTES + META_BYTES, frame.length, fillerOffset(cid, seq, fl), fillerOffset(cid, seq, fl) + fl) !== 0
      ) {
        corrupted++;
        return;
      }
      if (c.seqs[seq] === Seq.Received) {
        duplicates++;
        return;
      }
      c.seqs[seq] = Seq.Received;
      c.received++;
      verified++;
      if (seq < c.highest) outOfOrder++;
      else c.highest = seq;
      rtt.record(rxNow - ts);
      c.rttSum += rxNow - ts;
      if (c.lastEchoAt >= 0) {
        const g = rxNow - c.lastEchoAt;
        gaps.record(g);
        if (g > c.maxGap) c.maxGap = g;
      }
      c.lastEchoAt = rxNow;
    };
  }

  function onPlayAudio(c: Call, k: number, plen: number): void {
    if (c.lastAudioAt >= 0) {
      const gap = rxNow - c.lastAudioAt;
      playGaps.record(gap);
      if (gap < frameMs / 4) burstFrames++;
      playDrift.record(Math.abs(rxNow - c.firstAudioAt - c.audioMs));
    } else c.firstAudioAt = rxNow;
    c.lastAudioAt = rxNow;
    const r = audioRate(k) ?? rate;
    c.lastFrameMs = (plen / 2 / r) * 1000;
    c.audioMs += c.lastFrameMs;
    c.audioFrames++;
  }

  function connect(c: Call, now: number): void {
    c.state = State.Connecting;
    c.connectStartedAt = now;
    connecting.add(c);
    const s = net.connect({ host: cfg.host, port: cfg.port, noDelay: true });
    c.socket = s;
    liveSockets++;
    const decoder = new Decoder(onFrameFor(c));
    s.on('connect', () => {
      connecting.delete(c);
      if (c.state !== State.Connecting) return;
      c.state = State.Open;
      c.opened = true;
      connected++;
      s.write(encodeUuid(randomUuidBytes(randomBytes)));
      const t = performance.now();
      c.j0 = Math.max(lastTick + 1, Math.ceil((t + cfg.audioDelayMs - T0) / tickMs));
      audioFromMs = Math.max(audioFromMs, T0 + c.j0 * tickMs);
      buckets[c.j0 % nBuckets]!.push(c);
      if (phase === 'grace' || phase === 'closing') closeCall(c);
    });
    s.on('data', (chunk: Buffer) => {
      rxNow = performance.now();
      decoder.push(chunk);
    });
    s.on('end', () => {
      if (!c.closing && c.closedBy === null) c.closedBy = 'server';
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? err.message;
      errors[code] = (errors[code] ?? 0) + 1;
      if (c.closedBy === null && !c.closing) c.closedBy = 'error';
    });
    s.on('close', () => {
      if (c.state === State.Connecting) {
        connecting.delete(c);
        failedConnect++;
      }
      if (c.closedBy === null) c.closedBy = c.closing ? 'client' : 'server';
      c.state = State.Closed;
      liveSockets--;
      if (phase === 'closing') maybeFinish();
    });
  }

  function closeCall(c: Call): void {
    if (c.closing) return;
    c.closing = true;
    c.socket?.end();
  }

  function flushPending(c: Call): void {
    const p = c.pending!;
    c.pending = null;
    if (c.state === State.Open && !c.closing) c.socket!.write(p);
  }

  function sendFrame(c: Call, j: number, now: number): void {
    const s = c.socket!;
    const seq = c.k;
    if (seq >= maxSeq) return;
    c.k++;
    if (c.pending !== null) flushPending(c);
    if ((seq + 1) % coalesce !== 0) return; // coalesce: wait for the group's last frame
    sendLag.record(now - (T0 + j * tickMs));
    if (s.writableLength > cfg.maxQueuedBytes) {
      skipped += coalesce;
      return;
    }
    const msgLen = HEADER_BYTES + P;
    const buf = Buffer.allocUnsafe(msgLen * coalesce);
    const first = seq + 1 - coalesce;
    for (let i = 0; i < coalesce; i++) {
      const off = i * msgLen;
      writeHeader(buf, off, kind, P);
      if (cfg.g711) fillG711Payload(buf, off + HEADER_BYTES, P, c.id, first + i, now, g711Scratch);
      else fillPayload(buf, off + HEADER_BYTES, P, c.id, first + i, now);
      c.seqs[first + i] = Seq.Sent;
    }
    sent += coalesce;
    if (phase === 'steady') sentInWindow += coalesce;
    if (style !== 'split') {
      s.write(buf);
    } else {
      const h = mix(seq, c.id);
      const cut = 1 + (h % (P - 1)); // payload split point, 1..P-1
      switch (h % 3) {
        case 0: // header alone, then payload, same tick
          s.write(buf.subarray(0, HEADER_BYTES));
          s.write(buf.subarray(HEADER_BYTES));
          break;
        case 1: // header + part of payload now, rest next tick
          s.write(buf.subarray(0, HEADER_BYTES + cut));
          c.pending = buf.subarray(HEADER_BYTES + cut);
          splitQueue.push(c);
          break;
        default: // header itself split, payload split, rest next tick
          s.write(buf.subarray(0, 1));
          s.write(buf.subarray(1, HEADER_BYTES + cut));
          c.pending = buf.subarray(HEADER_BYTES + cut);
          splitQueue.push(c);
      }
    }
    if (dtmfEveryFrames > 0 && seq > 0 && seq % dtmfEveryFrames === 0) {
      if (c.pending !== null) flushPending(c);
      s.write(dtmfMsg);
      dtmfSent++;
    }
  }

  function startSteady(now: number): void {
    phase = 'steady';
    steadyAt = now;
    stopAt = Math.min(stopAt, now + cfg.durationS * 1000);
    cpuAtSteady = process.cpuUsage();
    emit('steady');
  }

  function tick(): void {
    timer = null;
    const now = performance.now();
    // 1. split remainders queued by the previous wake-up ("small delay" of about one tick)
    if (splitQueue.length > 0) {
      for (const c of splitQueue) if (c.pending !== null) flushPending(c);
      splitQueue.length = 0;
    }
    // 2. ramp: connects whose time has come
    while (nextToConnect < nCalls && (nCalls === 1 ? 0 : (nextToConnect * rampMs) / nCalls) <= now - T0 && phase === 'ramp') {
      connect(calls[nextToConnect++]!, now);
    }
    if (connecting.size > 0) {
      for (const c of connecting) {
        if (now - c.connectStartedAt > cfg.connectTimeoutMs) {
          errors['CONNECT_TIMEOUT'] = (errors['CONNECT_TIMEOUT'] ?? 0) + 1;
          c.socket?.destroy();
        }
      }
    }
    // Steady once every call is connected and sending audio (with --audio-delay, the last one's start).
    if (phase === 'ramp' && nextToConnect === nCalls && connecting.size === 0 && now >= audioFromMs) startSteady(now);
    // 3. send every frame due up to now, tick by tick (drift-free; catches up after a stall)
    const target = Math.floor((now - T0) / tickMs);
    const mute = cfg.mute;
    for (let j = lastTick + 1; j <= target; j++) {
      const due = T0 + j * tickMs;
      if (due >= stopAt) break;
      if (mute) continue;
      const b = buckets[j % nBuckets]!;
      for (let i = 0; i < b.length; i++) {
        const c = b[i]!;
        if (j >= c.j0 && c.state === State.Open && !c.closing) sendFrame(c, j, now);
      }
    }
    lastTick = target;
    if ((phase === 'steady' || phase === 'ramp') && now >= stopAt) {
      beginGrace(now);
      return;
    }
    const next = T0 + (target + 1) * tickMs - performance.now();
    timer = setTimeout(tick, next > 0 ? next : 0);
  }

  function beginGrace(now: number): void {
    if (phase === 'ramp') startSteady(now);
    phase = 'grace';
    stopAt = now;
    cpuInWindow = cpuSeconds(process.cpuUsage(cpuAtSteady));
    emit('stop-sending');
    for (const c of splitQueue) if (c.pending !== null) flushPending(c);
    splitQueue.length = 0;
    for (const c of connecting) c.socket?.destroy();
    timer = setTimeout(beginClosing, cfg.graceMs);
  }

  function beginClosing(): void {
    frozen = true;
    for (const c of calls) for (let s = 0; s < c.k && s < maxSeq; s++) if (c.seqs[s] === Seq.Sent) lostAtFreeze++;
    phase = 'closing';
    emit('closing');
    for (const c of calls) {
      if (c.state === State.Open) closeCall(c);
      else if (c.state === State.Pending) c.state = State.Closed;
    }
    timer = setTimeout(forceClose, cfg.closeTimeoutMs);
    maybeFinish();
  }

  function forceClose(): void {
    timer = null;
    forced = true;
    for (const c of calls) {
      if (c.state !== State.Closed) {
        if (c.closedBy === null) c.closedBy = 'forced';
        c.socket?.destroy();
        c.state = State.Closed;
      }
    }
    maybeFinish();
  }

  function maybeFinish(): void {
    if (phase !== 'closing') return;
    if (liveSockets > 0 && !forced) return;
    phase = 'done';
    if (timer !== null) clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    emit('done');
    resolveRun(buildResult());
  }

  function buildResult(): LoadResult {
    const closedBy = { client: 0, server: 0, error: 0, forced: 0 };
    let worstGap = 0;
    let callsWithAudio = 0;
    const drifts: number[] = [];
    const callRtt = new Histogram();
    for (const c of calls) {
      if (c.received > 0) callRtt.record(c.rttSum / c.received);
      if (c.opened && c.closedBy !== null) closedBy[c.closedBy]++;
      if (c.maxGap > worstGap) worstGap = c.maxGap;
      if (c.audioFrames > 0) callsWithAudio++;
      if (c.audioFrames >= 2) drifts.push(c.lastAudioAt - c.firstAudioAt - (c.audioMs - c.lastFrameMs));
    }
    drifts.sort((a, b) => a - b);
    const r3 = (x: number): number => Math.round(x * 1000) / 1000;
    const windowS = (stopAt - steadyAt) / 1000;
    const problems: string[] = [];
    if (connected < nCalls) problems.push(`${nCalls - connected} call(s) failed to connect`);
    if (mode === 'echo') {
      if (lostAtFreeze > 0) problems.push(`${lostAtFreeze} frame(s) lost`);
      if (corrupted > 0) problems.push(`${corrupted} corrupted frame(s)`);
      if (duplicates > 0) problems.push(`${duplicates} duplicate frame(s)`);
      if (unexpected > 0) problems.push(`${unexpected} unexpected non-silence frame(s)`);
      if (outOfOrder > 0) problems.push(`${outOfOrder} out-of-order frame(s)`);
    }
    if (invalidAudio > 0) problems.push(`${invalidAudio} empty or odd-length audio message(s) from the server`);
    if (otherKinds > 0) problems.push(`${otherKinds} non-audio message(s) from the server`);
    if (closedBy.server + closedBy.error + closedBy.forced > 0) {
      problems.push(`closed by server ${closedBy.server}, error ${closedBy.error}, forced ${closedBy.forced}`);
    }
    const p50 = drifts.length > 0 ? drifts[Math.floor((drifts.length - 1) / 2)]! : 0;
    return {
      ok: problems.length === 0,
      problems,
      config: cfg,
      startedAt,
      calls: { requested: nCalls, connected, failedConnect, closedBy, errors, serverHangups },
      window: { steadyAtMs: r3(steadyAt - T0), stopAtMs: r3(stopAt - T0), seconds: r3(windowS) },
      frames: {
        sent,
        sentInWindow,
        verified,
        lost: lostAtFreeze,
        corrupted,
        duplicates,
        outOfOrder,
        unexpected,
        invalidAudio,
        silence,
        otherKinds,
        afterGrace,
        skippedBackpressure: skipped,
        dtmfSent,
      },
      rttMs: rtt.summary(),
      callRttMeanMs: callRtt.summary(),
      interArrivalMs: gaps.summary(),
      worstCallMaxGapMs: r3(worstGap),
      sendLagMs: sendLag.summary(),
      play:
        mode === 'play'
          ? {
              framesReceived: playGaps.count + callsWithAudio,
              callsWithAudio,
              interArrivalMs: playGaps.summary(),
              driftMs: {
                min: r3(drifts[0] ?? 0),
                p50: r3(p50),
                max: r3(drifts[drifts.length - 1] ?? 0),
                maxAbs: r3(drifts.reduce((m, d) => Math.max(m, Math.abs(d)), 0)),
                mean: r3(drifts.length > 0 ? drifts.reduce((a, b) => a + b, 0) / drifts.length : 0),
              },
              frameDriftAbsMs: playDrift.summary(),
              burstFrames,
              burstPercent: playGaps.count > 0 ? Math.round((burstFrames / playGaps.count) * 1e5) / 1e3 : 0,
            }
          : null,
      loadgen: {
        cpuSecInWindow: r3(cpuInWindow),
        cpuPercentOfCore: windowS > 0 ? Math.round((cpuInWindow / windowS) * 1000) / 10 : 0,
        rssMB: Math.round(process.memoryUsage.rss() / 1e5) / 10,
      },
    };
  }

  timer = setTimeout(tick, 0);
  return done;
}

function cpuSeconds(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1e6;
}

const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);

/** Short human-readable table of a result. */
export function formatResult(r: LoadResult): string {
  const f = r.frames;
  const lines = [
    `calls ${r.calls.connected}/${r.calls.requested} connected, window ${f1(r.window.seconds)} s, mode ${r.config.mode}/${r.config.style}, ${r.config.payloadBytes} B per ${r.config.frameMs} ms`,
    `frames sent ${f.sent}  verified ${f.verified}  lost ${f.lost}  corrupted ${f.corrupted}  dup ${f.duplicates}  out-of-order ${f.outOfOrder}`,
    `silence ${f.silence}  unexpected ${f.unexpected}  invalid audio ${f.invalidAudio}  other kinds ${f.otherKinds}  after grace ${f.afterGrace}  skipped (backpressure) ${f.skippedBackpressure}`,
    `rtt ms       p50 ${f2(r.rttMs.p50)}  p99 ${f2(r.rttMs.p99)}  max ${f2(r.rttMs.max)}`,
    `gap ms       p50 ${f2(r.interArrivalMs.p50)}  p99 ${f2(r.interArrivalMs.p99)}  max ${f2(r.interArrivalMs.max)}  (worst call max ${f2(r.worstCallMaxGapMs)})`,
    `send lag ms  p50 ${f2(r.sendLagMs.p50)}  p99 ${f2(r.sendLagMs.p99)}  max ${f2(r.sendLagMs.max)}`,
    `closed by    client ${r.calls.closedBy.client}  server ${r.calls.closedBy.server}  error ${r.calls.closedBy.error}  forced ${r.calls.closedBy.forced}  (server hangups ${r.calls.serverHangups})`,
    `loadgen      ${f1(r.loadgen.cpuPercentOfCore)} % of a core, rss ${f1(r.loadgen.rssMB)} MB`,
  ];
  if (r.play !== null) {
    const p = r.play;
    lines.push(
      `play         ${p.framesReceived} frames on ${p.callsWithAudio} calls; gap p50 ${f2(p.interArrivalMs.p50)} p99 ${f2(p.interArrivalMs.p99)} max ${f2(p.interArrivalMs.max)}; drift min ${f2(p.driftMs.min)} p50 ${f2(p.driftMs.p50)} max ${f2(p.driftMs.max)} ms; frame |drift| p99 ${f2(p.frameDriftAbsMs.p99)} ms; bursts ${p.burstPercent} %`,
    );
  }
  lines.push(r.ok ? 'OK' : `PROBLEMS: ${r.problems.join('; ')}`);
  return lines.join('\n');
}

const USAGE = `usage: node build/bench/loadgen.js --port N [options]
  --host H            server address (default 127.0.0.1)
  --port N            server port (required)
  --calls N           concurrent calls (default 100)
  --duration S        seconds of steady state after ramp-up (default 10)
  --ramp S            spread connects over S seconds (default 2 ms per call, max 10)
  --mode echo|play    echo: verify echoes (default); play: measure received audio pacing
  --split             write each message in 2-3 pieces (header split, payload split, rest ~1 tick later)
  --coalesce          write several frames of a call in one write (see --group)
  --group N           frames per write with --coalesce (default 2: two frames every 40 ms)
  --kind K            audio kind, e.g. 0x10 (default) or 0x12
  --payload B         payload bytes per frame (default from kind, 320 for 0x10)
  --frame-ms M        frame period (default 20)
  --tick-ms T         scheduler tick, must divide frame-ms (default 1; 2 halves the timer cost)
  --grace MS          wait for late echoes before counting losses (default 1000)
  --dtmf-every MS     also send a DTMF digit every MS per call (default off)
  --mute              play mode: send the UUID only, no audio
  --g711              echo through a u-law round trip (the gateway): payloads of u-law-exact samples
  --audio-delay MS    each call starts its audio MS after its UUID (default 0)
  --json              print only the JSON summary on stdout
  --events            print "EVENT <name> <ms>" lines on stderr (used by echo-compare)
  --out FILE          also write the JSON summary to FILE
  --check             exit with status 1 when problems were found`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      calls: { type: 'string', default: '100' },
      duration: { type: 'string', default: '10' },
      ramp: { type: 'string' },
      mode: { type: 'string', default: 'echo' },
      split: { type: 'boolean', default: false },
      coalesce: { type: 'boolean', default: false },
      group: { type: 'string', default: '2' },
      kind: { type: 'string', default: '0x10' },
      payload: { type: 'string' },
      'frame-ms': { type: 'string', default: '20' },
      'tick-ms': { type: 'string', default: '1' },
      grace: { type: 'string', default: '1000' },
      'dtmf-every': { type: 'string', default: '0' },
      mute: { type: 'boolean', default: false },
      g711: { type: 'boolean', default: false },
      'audio-delay': { type: 'string', default: '0' },
      json: { type: 'boolean', default: false },
      events: { type: 'boolean', default: false },
      out: { type: 'string' },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || values.port === undefined) {
    process.stdout.write(USAGE + '\n');
    if (values.port === undefined && !values.help) process.exitCode = 2;
    return;
  }
  if (values.split && values.coalesce) throw new Error('--split and --coalesce are exclusive');
  if (values.mode !== 'echo' && values.mode !== 'play') throw new Error('--mode must be echo or play');
  const num = (s: string, name: string): number => {
    const n = Number(s);
    if (!Number.isFinite(n)) throw new Error(`--${name}: not a number: ${s}`);
    return n;
  };
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  const opts: LoadOptions = {
    host: values.host,
    port: num(values.port, 'port'),
    calls: num(values.calls, 'calls'),
    durationS: num(values.duration, 'duration'),
    mode: values.mode,
    style: values.split ? 'split' : values.coalesce ? 'coalesce' : 'normal',
    coalesce: num(values.group, 'group'),
    kind: num(values.kind, 'kind'),
    frameMs: num(values['frame-ms'], 'frame-ms'),
    tickMs: num(values['tick-ms'], 'tick-ms'),
    graceMs: num(values.grace, 'grace'),
    dtmfEveryMs: num(values['dtmf-every'], 'dtmf-every'),
    mute: values.mute,
    g711: values.g711,
    audioDelayMs: num(values['audio-delay'], 'audio-delay'),
    signal: ac.signal,
  };
  if (values.ramp !== undefined) opts.rampS = num(values.ramp, 'ramp');
  if (values.payload !== undefined) opts.payloadBytes = num(values.payload, 'payload');
  if (values.events) opts.onEvent = (e, t) => process.stderr.write(`EVENT ${e} ${t.toFixed(1)}\n`);
  const result = await runLoad(opts);
  const json = JSON.stringify(result, null, 2);
  if (values.out !== undefined) writeFileSync(values.out, json + '\n');
  if (values.json) process.stdout.write(json + '\n');
  else process.stdout.write(formatResult(result) + '\n');
  if (values.check && !result.ok) process.exitCode = 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`loadgen: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
