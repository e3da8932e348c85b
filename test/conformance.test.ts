/**
 * "Never send what kills a call": random sequences of user operations on a live call (writes of
 * random kinds and lengths, plays of buffers and chunked iterables, flush, mark, write streams,
 * hangup/end at random points), checked by a raw-socket client that parses every byte the server
 * sends. Real TCP on 127.0.0.1, real timers.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import {
  AudioSocketError,
  ErrorCodes,
  isAudioKind,
  sampleRateOfKind,
  type AudioKind,
  type Call,
  type PlayResult,
  systemClock,
  type Clock,
} from '#lib/index.js';
import { rawCall, startServer, within, type RawCall } from './fault-helpers.js';
import { audioSocketCall, until } from './helpers.js';
import { audioKindForRate } from '#lib/index.js';

/** Bytes of one frame of `frameMs` at an audio kind's rate. */
function frameBytesOf(kind: number, frameMs: number): number {
  return Math.round(((sampleRateOfKind(kind) ?? 8000) * frameMs) / 1000) * 2;
}

function durationMs(kind: number, length: number): number {
  return (length / 2 / sampleRateOfKind(kind)!) * 1000;
}

/** Timing slack for in-process delivery and timer lateness: generous, timing targets belong in bench/. */
const SLACK_MS = 10;

/** The pacing model's catch-up rate: never more than 1.25 x real time in any window (plus the lead). */
const CATCH_UP_RATE = 1.25;
/** The pacing model's lead: three frames. */
const LEAD_FRAMES = 3;

/** One message as the server wrote it (its `sent` event), on the server's own clock. */
interface SentLog {
  kind: number;
  length: number;
  zero: boolean;
  at: number;
}

/**
 * The servers' clock, remembering its last reading: a send is stamped with the reading the pacer
 * decided on, not with the time its listener ran (the process can be descheduled in between).
 */
let lastReading = 0;
const pacerClock: Clock = { ...systemClock, now: () => (lastReading = performance.now()) };

/** Records every audio message `call` writes, with the pacer's clock reading for it. */
function logSent(call: Call): SentLog[] {
  const log: SentLog[] = [];
  call.on('sent', ({ payload, format }) =>
    log.push({ kind: audioKindForRate(format.sampleRate)!, length: payload.length, zero: payload.every((b) => b === 0), at: lastReading }),
  );
  return log;
}

/**
 * Checks the output contract. On what the raw client received: only non-empty even audio
 * 0x10-0x18 or hangup, nothing after hangup. On the server's send times (the client shares the
 * server's event loop, so its read times bunch when the loop is busy): the user's audio
 * (everything but keep-alive silence) never more than three frames ahead of the time elapsed
 * since its first message, and in any window all audio, silence included, at most 1.25 x the
 * window plus three frames.
 */
function checkOutput(raw: RawCall, sent: SentLog[], frameMs: number): { audioMs: number } {
  assert.deepEqual(raw.violations, [], 'every message is non-empty even audio 0x10-0x18 or hangup, nothing after hangup');
  const lead = LEAD_FRAMES * frameMs + SLACK_MS;
  const user = sent.filter((m) => !m.zero);
  let userMs = 0;
  for (const m of user) {
    userMs += durationMs(m.kind, m.length);
    const elapsed = m.at - user[0]!.at;
    if (userMs > elapsed + lead) {
      assert.fail(
        `ahead of real time: ${userMs.toFixed(1)} ms of audio sent ${elapsed.toFixed(1)} ms after the first (frame ${frameMs} ms)`,
      );
    }
  }
  for (let i = 0; i < sent.length; i++) {
    let windowMs = 0;
    for (let j = i; j < sent.length && sent[j]!.at - sent[i]!.at < 2000; j++) {
      windowMs += durationMs(sent[j]!.kind, sent[j]!.length);
      const span = sent[j]!.at - sent[i]!.at;
      if (windowMs > CATCH_UP_RATE * span + lead) {
        assert.fail(`burst: ${windowMs.toFixed(1)} ms of audio (silence included) sent within ${span.toFixed(1)} ms (frame ${frameMs} ms)`);
      }
    }
  }
  let totalMs = 0;
  for (const m of raw.messages) if (m.kind !== 0) totalMs += durationMs(m.kind, m.length);
  return { audioMs: totalMs };
}

type LenSpec = { mode: 'frac' | 'zero' | 'odd' | 'huge'; frac: number };
type Op =
  | { t: 'write'; kind: number; len: LenSpec; typed: boolean; repeat: number }
  | { t: 'play'; frames: number; odd: boolean; how: 'buffer' | 'int16' | 'chunks' | 'async'; cuts: number[] }
  | { t: 'flush' }
  | { t: 'mark' }
  | { t: 'stream'; lens: number[]; end: boolean }
  | { t: 'sleep'; ms: number }
  | { t: 'hangup' };

const arbLen: fc.Arbitrary<LenSpec> = fc.record({
  mode: fc.oneof(
    { weight: 8, arbitrary: fc.constant('frac' as const) },
    { weight: 1, arbitrary: fc.constant('zero' as const) },
    { weight: 2, arbitrary: fc.constant('odd' as const) },
    { weight: 1, arbitrary: fc.constant('huge' as const) },
  ),
  frac: fc.integer({ min: 0, max: 1000 }).map((n) => n / 1000),
});

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      t: fc.constant('write' as const),
      kind: fc.oneof(
        { weight: 5, arbitrary: fc.integer({ min: 0x10, max: 0x18 }) },
        { weight: 2, arbitrary: fc.integer({ min: -1, max: 256 }) },
      ),
      len: arbLen,
      typed: fc.boolean(),
      repeat: fc.integer({ min: 1, max: 5 }), // an echo that fell behind writes several at once
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('play' as const),
      frames: fc.integer({ min: 0, max: 3000 }).map((n) => n / 1000),
      odd: fc.boolean(),
      how: fc.constantFrom('buffer' as const, 'int16' as const, 'chunks' as const, 'async' as const),
      cuts: fc.array(fc.integer({ min: 1, max: 3000 }), { maxLength: 6 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ t: 'flush' as const }) },
  { weight: 2, arbitrary: fc.constant({ t: 'mark' as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('stream' as const),
      lens: fc.array(fc.integer({ min: 1, max: 2500 }), { maxLength: 4 }),
      end: fc.boolean(),
    }),
  },
  { weight: 8, arbitrary: fc.record({ t: fc.constant('sleep' as const), ms: fc.integer({ min: 0, max: 6 }).map((n) => n * 15) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'hangup' as const }) },
);

const arbScenario = fc.record({
  frameMs: fc.constantFrom(10, 20, 30, 60),
  outboundKind: fc.constantFrom(0x10, 0x12, 0x16, 0x18),
  keepAlive: fc.boolean(),
  ops: fc.array(arbOp, { minLength: 1, maxLength: 12 }),
  finale: fc.constantFrom('hangup' as const, 'end' as const, 'remote-close' as const, 'remote-reset' as const),
  /** ms of activity (keep-alive, queued audio) before the finale. */
  tail: fc.integer({ min: 0, max: 10 }).map((n) => n * 20),
});

type Scenario = typeof arbScenario extends fc.Arbitrary<infer S> ? S : never;

function resolveLen(spec: LenSpec, kind: number, frameMs: number): number {
  const samples = frameBytesOf(kind, frameMs) / 2;
  switch (spec.mode) {
    case 'zero':
      return 0;
    case 'huge':
      return 65536;
    case 'odd':
      return 2 * Math.round(spec.frac * samples) + 1;
    default:
      return 2 * Math.max(1, Math.round(spec.frac * samples)); // never more than one frame: an echo's size
  }
}

/** The magic that starts a stamped write's payload. */
const STAMP = Buffer.from([0xc0, 0xff]);

/** A write's payload: stamped (magic C0 FF + index) when long enough to be recognised in the output. */
function writePayload(len: number, index: number): Buffer {
  const b = Buffer.alloc(len, 0x5a);
  if (len >= 8) {
    b[0] = 0xc0;
    b[1] = 0xff;
    b.writeUInt32LE(index, 2);
  }
  return b;
}

function isCode(err: unknown, code: string): boolean {
  return err instanceof AudioSocketError && err.code === code;
}

async function runScenario(s: Scenario): Promise<void> {
  const calls: Call[] = [];
  let sentLog: SentLog[] = [];
  const { server, port } = await startServer(
    (call) => {
      sentLog = logSent(call);
      calls.push(call);
    },
    {
      clock: pacerClock,
      frameMs: s.frameMs,
      outboundKind: s.outboundKind,
      keepAlive: s.keepAlive,
      hangupTimeout: 1000,
      maxQueuedMs: 200, // a short hard cap, so that some writes are dropped and must be counted
    },
  );
  const raw = await rawCall(port);
  // Keep every sent payload so accepted writes can be traced in the output.
  const payloads: Buffer[] = [];
  raw.socket.on('data', (chunk: Buffer) => payloads.push(chunk));
  try {
    await until(() => calls.length === 1, 'the call');
    const call = audioSocketCall(calls[0]!);
    const plays: Array<Promise<PlayResult | 'rejected'>> = [];
    const marks: Array<Promise<boolean>> = [];
    const streams: Writable[] = [];
    const streamErrors: unknown[] = [];
    const accepted: number[] = []; // indexes of stamped writes that were accepted
    let queueFull = 0;
    call.on('warning', (w) => {
      if (w.code === 'QUEUE_FULL') queueFull++;
    });
    let writeIndex = 0;
    let ended = false;
    let flushed = false;
    /** The kind of the sample the last write ended inside, if it did. */
    let partialKind: number | undefined;

    for (const op of s.ops) {
      switch (op.t) {
        case 'write': {
          const kind: number = op.kind;
          for (let r = 0; r < op.repeat; r++) {
            const len = resolveLen(op.len, kind, s.frameMs);
            const idx = writeIndex++;
            const payload = writePayload(len, idx);
            // Any length is accepted (the queue cuts it into frames; a sample split across writes
            // waits for its other byte), unless the last write ended inside a sample of another
            // kind. Empty sends nothing.
            const valid = isAudioKind(kind) && (partialKind === undefined || partialKind === kind);
            const before = call.stats;
            let error: unknown;
            try {
              call.write(op.typed ? payload : new Uint8Array(payload), kind as AudioKind);
            } catch (err) {
              error = err;
            }
            if (ended) {
              assert.ok(isCode(error, ErrorCodes.CALL_ENDED), `write after hangup throws CALL_ENDED, got ${String(error)}`);
            } else if (!valid) {
              // Not an audio kind: nothing Asterisk could take. Another kind mid-sample: a misuse.
              const code = isAudioKind(kind) ? ErrorCodes.INVALID_ARGUMENT : ErrorCodes.INVALID_MESSAGE;
              assert.ok(isCode(error, code), `write(${len} B, kind ${kind}) throws ${code}, got ${String(error)}`);
              const after = call.stats;
              assert.equal(after.messagesOut, before.messagesOut, 'a refused write sends nothing');
              assert.equal(after.bytesOut, before.bytesOut, 'a refused write sends nothing');
              assert.equal(after.queuedMs, before.queuedMs, 'a refused write queues nothing');
            } else {
              assert.equal(error, undefined, `write(${len} B, kind ${kind}) is accepted`);
              if (len >= 8) accepted.push(idx);
              if (len % 2 === 1) partialKind = partialKind === undefined ? kind : undefined;
            }
          }
          break;
        }
        case 'play': {
          const fb = frameBytesOf(s.outboundKind, s.frameMs);
          let bytes = Math.round(op.frames * fb);
          if (op.odd) bytes |= 1;
          else bytes &= ~1;
          const buf = Buffer.alloc(bytes, 0x33);
          let source: Parameters<Call['play']>[0];
          if (op.how === 'buffer') source = buf;
          else if (op.how === 'int16') source = new Int16Array(buf.buffer, buf.byteOffset, buf.length >> 1);
          else {
            const pieces: Buffer[] = [];
            let off = 0;
            for (const c of op.cuts) {
              if (off >= buf.length) break;
              pieces.push(buf.subarray(off, off + c));
              off += c;
            }
            if (off < buf.length) pieces.push(buf.subarray(off));
            source =
              op.how === 'chunks'
                ? pieces
                : (async function* () {
                    for (const p of pieces) {
                      await sleep(p.length % 7);
                      yield p;
                    }
                  })();
          }
          const p = call.play(source).then(
            (r) => r,
            (err: unknown) => {
              assert.ok(ended && isCode(err, ErrorCodes.CALL_ENDED), `play rejects only after hangup, with CALL_ENDED: ${String(err)}`);
              return 'rejected' as const;
            },
          );
          plays.push(p);
          break;
        }
        case 'flush':
          flushed = true;
          partialKind = undefined;
          assert.equal(typeof call.flush(), 'number');
          break;
        case 'mark':
          marks.push(call.mark(`m${marks.length}`));
          break;
        case 'stream': {
          const ws = call.createWriteStream({ highWaterMarkMs: 100 });
          ws.on('error', (err) => streamErrors.push(err));
          streams.push(ws);
          for (const n of op.lens) ws.write(Buffer.alloc(n, 0x44));
          if (op.end) ws.end();
          break;
        }
        case 'sleep':
          await sleep(op.ms);
          break;
        case 'hangup':
          void call.hangup();
          ended = true;
          break;
      }
    }

    await sleep(s.tail);
    // A user who is done ends its streams.
    for (const ws of streams) if (!ws.writableEnded && !ws.destroyed) ws.end();
    const serverEnds = ended || s.finale === 'hangup' || s.finale === 'end';
    switch (s.finale) {
      case 'hangup':
        await call.hangup();
        break;
      case 'end':
        await within(call.end(), 10_000, 'call.end() to drain and hang up');
        break;
      case 'remote-close':
        raw.socket.end();
        break;
      case 'remote-reset':
        raw.socket.resetAndDestroy();
        break;
    }
    const end = await within(call.closed, 5000, 'the call to close');
    await within(raw.closed, 5000, 'the client socket to close');

    // Whatever was queued settles; nothing stays pending.
    const results = await within(Promise.all(plays), 2000, 'every play to settle');
    for (const r of results) assert.ok(r === 'rejected' || r.status === 'done' || r.status === 'interrupted');
    await within(Promise.all(marks), 2000, 'every mark to settle');
    for (const err of streamErrors) {
      assert.ok(isCode(err, ErrorCodes.CALL_ENDED), `stream error ${String(err)}`); // barge-in and hangup are not stream errors
    }

    checkOutput(raw, sentLog, s.frameMs);
    if (serverEnds && s.finale !== 'remote-reset') {
      assert.ok(end.reason === 'local-hangup', `ended by us: ${end.reason}`);
      assert.equal(raw.hungUp, true, 'the server said hangup');
      assert.equal(raw.messages.at(-1)?.kind, 0x00, 'hangup is the last message');
    }

    // Accepted writes come out in order, at most once each; none vanish without being counted.
    // Queued writes are cut into exact frames, so a stamp may sit anywhere in the audio: search
    // the byte stream of every audio payload, in order.
    const stream = Buffer.concat(payloads);
    const audio: Buffer[] = [];
    for (let off = 0; off + 3 <= stream.length;) {
      const len = stream.readUInt16BE(off + 1);
      if (stream[off] !== 0) audio.push(stream.subarray(off + 3, off + 3 + len));
      off += 3 + len;
    }
    const bytes = Buffer.concat(audio);
    const seen: number[] = [];
    for (let at = bytes.indexOf(STAMP); at >= 0 && at + 6 <= bytes.length; at = bytes.indexOf(STAMP, at + 1)) {
      const i = bytes.readUInt32LE(at + 2);
      if (accepted.includes(i)) seen.push(i);
    }
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
      'writes are sent in order',
    );
    assert.equal(new Set(seen).size, seen.length, 'no write is sent twice');
    if (!flushed && !ended && s.finale === 'end') {
      // Every stamped write that is missing was dropped (the hard cap), counted and reported.
      const lost = accepted.length - seen.length;
      const dropped = end.stats.droppedWrites;
      assert.ok(dropped >= lost, `${lost} stamped writes missing, only ${dropped} counted as dropped`);
      assert.equal(end.stats.droppedMs > 0, dropped > 0, 'droppedMs and droppedWrites agree');
      assert.equal(queueFull, dropped, 'one QUEUE_FULL warning per write that lost audio');
    }
  } finally {
    raw.socket.destroy();
    await within(server.close(), 5000, 'server.close()').catch(() => {});
  }
}

/** Scenarios that once failed, replayed on every run before the random ones. */
const PAST_COUNTEREXAMPLES: Array<[Scenario]> = [
  // Short (unstamped) writes dropped behind a queued play were counted but not traceable: a test bookkeeping bug.
  [
    {
      frameMs: 20,
      outboundKind: 0x16,
      keepAlive: true,
      ops: [
        { t: 'play', frames: 0.686, odd: false, how: 'chunks', cuts: [1126] },
        { t: 'write', kind: 0x13, len: { mode: 'zero', frac: 0.924 }, typed: false, repeat: 1 },
        { t: 'write', kind: 0x13, len: { mode: 'frac', frac: 0.005 }, typed: false, repeat: 2 },
      ],
      finale: 'end',
      tail: 80,
    },
  ],
];

describe('conformance: never send what kills a call', () => {
  test(
    'random user operations: only valid messages, nothing after hangup, no bursts, refusals are synchronous',
    { timeout: 60_000 },
    async () => {
      await fc.assert(fc.asyncProperty(arbScenario, runScenario), { numRuns: 50, endOnFailure: true, examples: PAST_COUNTEREXAMPLES });
    },
  );

  test('with several calls at once on one server, every call still gets only valid, paced output', { timeout: 20_000 }, async (t) => {
    const calls: Call[] = [];
    const logs = new Map<Call, SentLog[]>();
    const { server, port } = await startServer(
      (call) => {
        logs.set(call, logSent(call));
        calls.push(call);
      },
      { frameMs: 20, clock: pacerClock },
      t,
    );
    const raws = await Promise.all(Array.from({ length: 8 }, () => rawCall(port, {}, t)));
    await until(() => calls.length === 8, 'eight calls');
    // Every call echoes-like writes and plays at once, for 600 ms.
    const stop = performance.now() + 600;
    let i = 0;
    while (performance.now() < stop) {
      for (const call of calls) {
        call.write(Buffer.alloc(2 * (1 + (i % 160)), 1 + (i % 200)));
        if (i % 7 === 0) void call.play(Buffer.alloc(641, 9));
        if (i % 11 === 0) call.flush();
      }
      i++;
      await sleep(20);
    }
    await Promise.all(calls.map((c, k) => (k % 2 ? c.hangup() : c.end())));
    await Promise.all(raws.map((r) => within(r.closed, 5000, 'socket close')));
    for (const r of raws) {
      const call = calls.find((c) => c.uuid === r.uuid)!;
      checkOutput(r, logs.get(call)!, 20);
      assert.equal(r.messages.at(-1)?.kind, 0);
    }
    await server.close();
  });
});

describe('conformance bugs (regressions)', () => {
  test(
    'write() with a non-integer kind (16.5) throws INVALID_MESSAGE and the call keeps sending keep-alive',
    { timeout: 20_000 },
    async (t) => {
      const calls: Call[] = [];
      const { server, port } = await startServer((call) => void calls.push(call), {}, t);
      const raw = await rawCall(port, {}, t);
      await until(() => calls.length === 1, 'the call');
      const call = audioSocketCall(calls[0]!);
      await until(() => raw.messages.length >= 1, 'keep-alive to start');
      let threw: unknown;
      try {
        call.write(Buffer.alloc(320, 1), 16.5 as AudioKind);
      } catch (err) {
        threw = err;
      }
      const n0 = raw.messages.length;
      // A NaN outbound timeline stops keep-alive for good: eight more messages never come.
      await until(
        () => raw.messages.length - n0 >= 8,
        'eight messages after write(…, 16.5): keep-alive stopped (the outbound timeline became NaN)',
      );
      assert.ok(isCode(threw, ErrorCodes.INVALID_MESSAGE), `write(…, 16.5) should throw INVALID_MESSAGE, got ${String(threw)}`);
      await call.hangup();
      await server.close();
    },
  );

  test('write(Int16Array) sends the samples as bytes (or is refused), not their low bytes', { timeout: 20_000 }, async (t) => {
    const calls: Call[] = [];
    const { server, port } = await startServer((call) => void calls.push(call), { keepAlive: false }, t);
    const raw = await rawCall(port, {}, t);
    const payloads: Buffer[] = [];
    raw.socket.on('data', (chunk: Buffer) => payloads.push(chunk));
    await until(() => calls.length === 1, 'the call');
    const samples = new Int16Array(160).fill(1000); // 20 ms of slin, as play() accepts it
    let threw: unknown;
    try {
      calls[0]!.write(samples as unknown as Uint8Array);
    } catch (err) {
      threw = err;
    }
    if (threw !== undefined) {
      assert.ok(
        isCode(threw, ErrorCodes.INVALID_ARGUMENT) || isCode(threw, ErrorCodes.INVALID_MESSAGE),
        `refused with a typed error, got ${String(threw)}`,
      );
    } else {
      await until(() => raw.messages.length === 1, 'the message');
      const sent = Buffer.concat(payloads);
      assert.equal(sent.readUInt16BE(1), 320, `sent ${sent.readUInt16BE(1)} bytes for 160 samples`);
      assert.ok(sent.subarray(3).equals(Buffer.from(samples.buffer)), 'the samples, little-endian');
    }
    await calls[0]!.hangup();
    await server.close();
  });

  test('write() of a payload much longer than a frame is not sent as one burst (or is refused)', { timeout: 20_000 }, async (t) => {
    const calls: Call[] = [];
    let log: SentLog[] = [];
    const { server, port } = await startServer(
      (call) => {
        log = logSent(call);
        calls.push(call);
      },
      { keepAlive: false, clock: pacerClock },
      t,
    );
    const raw = await rawCall(port, {}, t);
    await until(() => calls.length === 1, 'the call');
    const call = calls[0]!;
    let threw: unknown;
    try {
      call.write(Buffer.alloc(16000, 7)); // 1 s of slin 8 kHz in one call
    } catch (err) {
      threw = err;
    }
    if (threw !== undefined) {
      assert.ok(isCode(threw, ErrorCodes.INVALID_MESSAGE), `refused with INVALID_MESSAGE, got ${String(threw)}`);
    } else {
      await within(call.drained(), 5000, 'the second of audio to play out');
      await call.hangup();
      await within(raw.closed, 5000, 'the client socket to close');
      const { audioMs } = checkOutput(raw, log, 20);
      assert.equal(audioMs, 1000, 'all of it, nothing dropped');
    }
    await server.close();
  });
});
