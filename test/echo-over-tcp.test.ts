/**
 * Echo over real TCP on 127.0.0.1, adversarial input: several raw-socket "Asterisk" calls at once
 * send a UUID then stamped 20 ms frames on a drift-free schedule, but the bytes go out merged
 * (2-4 frames per write, or one by one), cut at random byte offsets (a header or payload
 * straddles two writes), sometimes split again into separate socket writes, with random jitter
 * and pauses of 60-100 ms followed by catch-up. The server is the library's, with the simplest echo handler
 * (`call.write(f.payload, f.format)`).
 *
 * Each scenario runs once (in `before`); every test then checks one property of what came back.
 * The client parses the server's bytes with its own parser, not the library's. No timing targets
 * (noisy 2-core machines): only generous bounds on what the write path promises.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep, setImmediate as nextTurn } from 'node:timers/promises';
import { audioKindForRate, createServer, systemClock, type AudioSocketServer, type CallEnd, type Clock } from '#lib/index.js';
import { prng } from './audio-helpers.js';
import { within } from './fault-helpers.js';
import { until } from './helpers.js';

const FRAME_MS = 20;
/** Timing slack for in-process delivery and timer lateness (same as the conformance test). */
const SLACK_MS = 10;
/** Echoes before this index may be separated by keep-alive silence (the echo is starting). */
const START_FRAMES = 10;

const RATE: Record<number, number> = {
  0x10: 8000,
  0x11: 12000,
  0x12: 16000,
  0x13: 24000,
  0x14: 32000,
  0x15: 44100,
  0x16: 48000,
  0x17: 96000,
  0x18: 192000,
};

function durationMs(kind: number, length: number): number {
  return (length / 2 / RATE[kind]!) * 1000;
}

function header(kind: number, length: number): Buffer {
  const h = Buffer.alloc(3);
  h[0] = kind;
  h.writeUInt16BE(length, 1);
  return h;
}

function uuidMessage(uuid: string): Buffer {
  return Buffer.concat([header(0x01, 16), Buffer.from(uuid.replace(/-/g, ''), 'hex')]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// ---------------------------------------------------------------------------------------------
// The plan of one call: frames, and when which bytes of the stream are written.

interface Write {
  /** ms after the call's t0. */
  at: number;
  start: number;
  end: number;
  /** Byte offsets where the chunk is cut again into separate socket writes. */
  splits: number[];
  /** Held back by a pause. */
  held: boolean;
}

interface CallSpec {
  id: number;
  seed: number;
  kind: 0x10 | 0x12;
  frames: number;
  /** Frames per write: [min, max]. */
  merge: [number, number];
  /** [first frame index, pause ms] */
  pauses: Array<[number, number]>;
  jitterMs: number;
  /** Probability that a write is cut again into 2-3 socket writes. */
  splitP: number;
  /** ms after the scenario start before this call connects. */
  offsetMs: number;
}

interface Plan {
  spec: CallSpec;
  payloads: Buffer[];
  stream: Buffer;
  /** Byte offset where frame k's message ends in the stream. */
  ends: number[];
  writes: Write[];
  /** Frame k's last byte went out in a write a pause held back. */
  pauseHeld: boolean[];
}

function plan(spec: CallSpec): Plan {
  const rng = prng(spec.seed);
  const bytes = (RATE[spec.kind]! * FRAME_MS * 2) / 1000;
  const payloads: Buffer[] = [];
  const messages: Buffer[] = [];
  const ends: number[] = [];
  let offset = 0;
  for (let k = 0; k < spec.frames; k++) {
    const p = Buffer.alloc(bytes);
    for (let i = 0; i < bytes; i++) p[i] = Math.floor(rng() * 256);
    p.writeUInt16LE(spec.id, 0);
    p.writeUInt32LE(k, 2);
    p[6] = 0xa5; // never all zero: never mistaken for keep-alive silence
    payloads.push(p);
    messages.push(header(spec.kind, bytes), p);
    offset += 3 + bytes;
    ends.push(offset);
  }
  const stream = Buffer.concat(messages);
  const writes: Write[] = [];
  let written = 0;
  for (let k = 0; k < spec.frames;) {
    const [lo, hi] = spec.merge;
    const e = Math.min(spec.frames - 1, k + lo + Math.floor(rng() * (hi - lo + 1)) - 1);
    let end = ends[e]!;
    // Cut inside frame e (its header or payload): the rest goes with the next write.
    if (e < spec.frames - 1 && rng() < 0.75) end -= 1 + Math.floor(rng() * (3 + bytes - 1));
    if (end <= written) end = ends[e]!;
    const splits: number[] = [];
    if (rng() < spec.splitP) {
      const n = 1 + Math.floor(rng() * 2);
      for (let i = 0; i < n; i++) splits.push(written + 1 + Math.floor(rng() * (end - written - 1)));
      splits.sort((a, b) => a - b);
    }
    // Mostly small jitter, now and then a late write.
    const jitter = rng() < 0.08 ? spec.jitterMs + rng() * 2 * spec.jitterMs : rng() * spec.jitterMs;
    writes.push({ at: FRAME_MS * e + jitter, start: written, end, splits: [...new Set(splits)], held: false });
    written = end;
    k = e + 1;
  }
  // Pauses: every write due during the pause goes out at its end, together; then on schedule.
  for (const [frame, ms] of spec.pauses) {
    const from = FRAME_MS * frame;
    for (const w of writes) {
      if (w.at >= from && w.at < from + ms) {
        w.at = from + ms;
        w.held = true;
      }
    }
  }
  for (let i = 1; i < writes.length; i++) writes[i]!.at = Math.max(writes[i]!.at, writes[i - 1]!.at);
  const pauseHeld = ends.map((end) => writes.find((w) => w.end >= end)!.held);
  return { spec, payloads, stream, ends, writes, pauseHeld };
}

// ---------------------------------------------------------------------------------------------
// The raw client.

interface Received {
  kind: number;
  payload: Buffer;
  at: number;
}

interface Run {
  plan: Plan;
  uuid: string;
  /** performance.now() when frame k's last byte was written. */
  sentAt: number[];
  received: Received[];
  /** What the server wrote, with its own send times (`sent` events): burst bounds are checked on these. */
  served: Array<{ kind: number; length: number; at: number }>;
  violations: string[];
  end: CallEnd | undefined;
  t0: number;
}

/** Parses the server's byte stream with its own code and records every message and violation. */
function watch(socket: net.Socket, run: Run): void {
  let buf: Buffer = Buffer.alloc(0);
  let hungUp = false;
  socket.on('data', (chunk: Buffer) => {
    const at = performance.now();
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 3) {
      const kind = buf[off]!;
      const len = buf.readUInt16BE(off + 1);
      if (buf.length - off < 3 + len) break;
      const payload = Buffer.from(buf.subarray(off + 3, off + 3 + len));
      off += 3 + len;
      if (hungUp) run.violations.push(`kind 0x${kind.toString(16)} after the hangup message`);
      if (kind === 0x00) {
        if (len !== 0) run.violations.push(`hangup with a ${len}-byte payload`);
        hungUp = true;
        continue;
      }
      if (kind < 0x10 || kind > 0x18) run.violations.push(`forbidden kind 0x${kind.toString(16)}`);
      else if (len === 0 || len % 2 !== 0) run.violations.push(`audio 0x${kind.toString(16)} of ${len} bytes`);
      run.received.push({ kind, payload, at });
    }
    buf = buf.subarray(off);
  });
  socket.on('end', () => {
    if (buf.length > 0) run.violations.push(`output truncated: ${buf.length} bytes of an unfinished message`);
  });
}

async function drive(socket: net.Socket, run: Run, t0: number): Promise<void> {
  const { writes, stream, ends } = run.plan;
  let next = 0; // first frame whose last byte is not yet written
  for (const w of writes) {
    const wait = t0 + w.at - performance.now();
    if (wait > 0) await sleep(wait);
    const cuts = [w.start, ...w.splits, w.end];
    for (let i = 0; i + 1 < cuts.length; i++) {
      if (i > 0) await nextTurn(); // separate segments (no delay on the client socket)
      socket.write(stream.subarray(cuts[i]!, cuts[i + 1]!));
      const now = performance.now();
      while (next < ends.length && ends[next]! <= cuts[i + 1]!) run.sentAt[next++] = now;
    }
  }
}

function isSilence(p: Buffer): boolean {
  for (let i = 0; i < p.length; i++) if (p[i] !== 0) return false;
  return true;
}

/** The echoes (everything but keep-alive silence) in arrival order, with their index in `received`. */
function echoes(run: Run): Array<Received & { index: number }> {
  return run.received.map((r, index) => ({ ...r, index })).filter((r) => !isSilence(r.payload));
}

/** Runs every call of the scenario at once against one echo server; resolves when all have ended. */
async function runScenario(specs: CallSpec[]): Promise<Run[]> {
  const ends = new Map<string, CallEnd>();
  const served = new Map<string, Run['served']>();
  // Sends are stamped with the pacer's own last clock reading, not the time the listener runs:
  // on a loaded machine the process can be descheduled between the pacer's decision and the
  // emit, which would shorten the apparent gap to the next send.
  let lastReading = 0;
  const clock: Clock = { ...systemClock, now: () => (lastReading = performance.now()) };
  const server: AudioSocketServer = createServer(
    (call) => {
      const log: Run['served'] = [];
      served.set(call.uuid, log);
      call.on('sent', ({ payload, format }) =>
        log.push({ kind: audioKindForRate(format.sampleRate)!, length: payload.length, at: lastReading }),
      );
      call.on('audio', (f) => call.write(f.payload, f.format));
    },
    { clock },
  );
  server.on('callEnd', (call, end) => ends.set(call.uuid, end));
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  const sockets: net.Socket[] = [];
  try {
    const runs = await Promise.all(
      specs.map(async (spec) => {
        await sleep(spec.offsetMs); // the input schedule under test, not synchronisation
        const run: Run = {
          plan: plan(spec),
          uuid: randomUUID(),
          sentAt: [],
          received: [],
          served: [],
          violations: [],
          end: undefined,
          t0: 0,
        };
        const socket = net.connect({ host: '127.0.0.1', port });
        sockets.push(socket);
        socket.setNoDelay(true);
        socket.on('error', (err) => run.violations.push(`socket error: ${err.message}`));
        await once(socket, 'connect');
        watch(socket, run);
        socket.write(uuidMessage(run.uuid));
        run.t0 = performance.now() + FRAME_MS;
        await drive(socket, run, run.t0);
        const n = spec.frames;
        await until(() => echoes(run).length >= n, `call ${spec.id}: the last echoes (${echoes(run).length}/${n})`, 3000).catch(() => {});
        // Deliberate negative window: a duplicate echo would arrive within it (the lead is 3 frames).
        await sleep(150);
        const closed = once(socket, 'close');
        socket.end();
        await within(closed, 5000, `call ${spec.id}: the server to close`);
        await until(() => ends.has(run.uuid), `call ${spec.id}: callEnd`, 2000).catch(() => {});
        run.end = ends.get(run.uuid);
        run.served = served.get(run.uuid) ?? [];
        return run;
      }),
    );
    return runs;
  } finally {
    for (const s of sockets) s.destroy();
    await within(server.close(), 10_000, 'server.close()').catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Properties, each returning what is wrong (empty when fine).

function exactOnceInOrder(run: Run): string[] {
  const { payloads, spec } = run.plan;
  const got = echoes(run);
  const out: string[] = [];
  for (let k = 0; k < Math.min(got.length, payloads.length); k++) {
    const g = got[k]!;
    if (g.kind !== spec.kind || !g.payload.equals(payloads[k]!)) {
      const seq = g.payload.length >= 6 ? g.payload.readUInt32LE(2) : -1;
      out.push(`call ${spec.id}: echo #${k} is not frame ${k} (kind 0x${g.kind.toString(16)}, ${g.payload.length} bytes, seq ${seq})`);
      break;
    }
  }
  if (got.length !== payloads.length) out.push(`call ${spec.id}: ${got.length} echoes for ${payloads.length} frames sent`);
  return out;
}

function noDroppedWrites(run: Run): string[] {
  const id = run.plan.spec.id;
  if (run.end === undefined) return [`call ${id}: no callEnd`];
  const out: string[] = [];
  if (run.end.reason !== 'remote-hangup') out.push(`call ${id}: ended ${run.end.reason}, not remote-hangup`);
  if (run.end.stats.droppedWrites !== 0) out.push(`call ${id}: droppedWrites ${run.end.stats.droppedWrites}`);
  if (run.end.stats.droppedOut !== 0) out.push(`call ${id}: droppedOut ${run.end.stats.droppedOut}`);
  return out;
}

function validMessages(run: Run): string[] {
  const out = run.violations.map((v) => `call ${run.plan.spec.id}: ${v}`);
  if (run.received.length === 0) out.push(`call ${run.plan.spec.id}: nothing received`);
  return out;
}

/**
 * In any window, all audio (silence included) <= 1.25 x the window + three frames + slack, on
 * the server's own send times: the client shares the server's event loop, so its read times
 * bunch whenever the loop is busy.
 */
function windowed(run: Run): string[] {
  const r = run.served.map((m) => ({ kind: m.kind, payload: { length: m.length }, at: m.at }));
  let worst = { excess: 0, text: '' };
  for (let i = 0; i < r.length; i++) {
    let ms = 0;
    for (let j = i; j < r.length; j++) {
      ms += durationMs(r[j]!.kind, r[j]!.payload.length);
      const span = r[j]!.at - r[i]!.at;
      const excess = ms - (1.25 * span + 3 * FRAME_MS + SLACK_MS);
      if (excess > worst.excess) {
        worst = {
          excess,
          text: `call ${run.plan.spec.id}: ${ms.toFixed(1)} ms of audio within ${span.toFixed(1)} ms (messages ${i}-${j})`,
        };
      }
    }
  }
  return worst.excess > 0 ? [worst.text] : [];
}

/**
 * No keep-alive silence between two echoes unless the input ran dry: `cover` is where the input
 * audio received so far would end if each frame were played from its arrival on (no buffering);
 * when frame k+1 arrives after it, there was a real gap (a late clump, a pause) and keep-alive may
 * fill it. Otherwise silence there is the server's own doing. Tolerated: the first echoes, and
 * SLACK_MS of timer/read ordering.
 */
function noSilenceInSteadyEcho(run: Run): string[] {
  const got = echoes(run);
  const out: string[] = [];
  let cover = -Infinity;
  for (let k = 0; k + 1 < got.length; k++) {
    cover = Math.max(cover, run.sentAt[k]!) + FRAME_MS;
    const between = got[k + 1]!.index - got[k]!.index - 1;
    if (between === 0 || k + 1 < START_FRAMES || run.sentAt[k + 1]! > cover - SLACK_MS) continue;
    const rel = (x: number): string => (x - run.t0).toFixed(1);
    const sil = run.received.slice(got[k]!.index + 1, got[k + 1]!.index).map((m) => rel(m.at));
    out.push(
      `call ${run.plan.spec.id}: ${between} silence frame(s) at ${sil.join(', ')} ms between echoes ${k} and ${k + 1}, ` +
        `though the input covered until ${rel(cover)} and frame ${k + 1} arrived at ${rel(run.sentAt[k + 1]!)}`,
    );
  }
  return out;
}

/** The echo does not fall behind for good: median delay in the last second vs the first. */
function noAccumulatedDelay(run: Run): string[] {
  const got = echoes(run);
  const n = run.plan.spec.frames;
  const perSecond = 1000 / FRAME_MS;
  if (got.length < n) return [`call ${run.plan.spec.id}: only ${got.length}/${n} echoes`];
  const delay = (k: number): number => got[k]!.at - run.sentAt[k]!;
  const first = median(Array.from({ length: perSecond }, (_, k) => delay(k)));
  const last = median(Array.from({ length: perSecond }, (_, i) => delay(n - perSecond + i)));
  return last - first < 3 * FRAME_MS
    ? []
    : [`call ${run.plan.spec.id}: median echo delay ${first.toFixed(1)} ms in the first second, ${last.toFixed(1)} ms in the last`];
}

function check(runs: () => Run[], property: (run: Run) => string[]): void {
  const problems = runs().flatMap(property);
  assert.deepEqual(problems, []);
}

// ---------------------------------------------------------------------------------------------

const SCENARIOS: Array<{ name: string; specs: CallSpec[] }> = [
  {
    name: 'four slin calls, 2-4 frames per write cut at random offsets, jitter, two pauses each',
    specs: Array.from({ length: 4 }, (_, i) => {
      const r = prng(1000 + i);
      return {
        id: i,
        seed: 77 + i,
        kind: 0x10,
        frames: 200,
        merge: [2, 4],
        pauses: [
          [55 + Math.floor(r() * 10), 60 + Math.floor(r() * 41)],
          [105 + Math.floor(r() * 10), 60 + Math.floor(r() * 41)],
        ],
        jitterMs: 8,
        splitP: 0.3,
        offsetMs: Math.floor(r() * 20),
      } satisfies CallSpec;
    }),
  },
  {
    name: 'six calls, slin and slin16 mixed, heavier fragmentation and jitter, one pause each',
    specs: Array.from({ length: 6 }, (_, i) => {
      const r = prng(2000 + i);
      return {
        id: 10 + i,
        seed: 500 + i,
        kind: i % 2 ? 0x12 : 0x10,
        frames: 180,
        merge: [2, 4],
        pauses: [[60 + Math.floor(r() * 40), 60 + Math.floor(r() * 41)]],
        jitterMs: 12,
        splitP: 0.7,
        offsetMs: Math.floor(r() * 20),
      } satisfies CallSpec;
    }),
  },
  {
    // Closest to a real Asterisk: frames one by one with jitter (a cut still leaves part of a
    // frame for the next write), then a pause and its catch-up.
    name: 'three slin calls, one frame per write with jitter and random cuts, one pause each',
    specs: Array.from({ length: 3 }, (_, i) => {
      const r = prng(3000 + i);
      return {
        id: 20 + i,
        seed: 900 + i,
        kind: 0x10,
        frames: 150,
        merge: [1, 1],
        pauses: [[50 + Math.floor(r() * 30), 60 + Math.floor(r() * 41)]],
        jitterMs: 6,
        splitP: 0.3,
        offsetMs: Math.floor(r() * 20),
      } satisfies CallSpec;
    }),
  },
];

for (const scenario of SCENARIOS) {
  describe(`echo over TCP: ${scenario.name}`, () => {
    let runs: Run[] = [];
    const get = (): Run[] => {
      assert.equal(runs.length, scenario.specs.length, 'the scenario ran');
      return runs;
    };
    before(async () => {
      runs = await runScenario(scenario.specs);
    });
    after(() => {
      runs = [];
    });

    test('every frame is echoed byte-exact, in order, exactly once', () => check(get, exactOnceInOrder));
    test('no write is dropped (droppedWrites 0) and the call ends remote-hangup', () => check(get, noDroppedWrites));
    test('every message from the server is non-empty even audio 0x10-0x18 or hangup, nothing after hangup', () =>
      check(get, validMessages));
    test('in any window, audio including silence <= 1.25 x window + 3 frames (+10 ms slack)', () => check(get, windowed));
    test('no keep-alive silence between echoes once the echo runs (except across a pause of the input)', () =>
      check(get, noSilenceInSteadyEcho));
    test('the echo does not accumulate delay (median delay, last second vs first, under 3 frames)', () => check(get, noAccumulatedDelay));
  });
}
