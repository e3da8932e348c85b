/**
 * How a voice bot's text-to-speech reaches the caller through `call.write()`, over real TCP on
 * 127.0.0.1: the three write patterns of the outbound-model issue. The raw client (standing in
 * for Asterisk) checks that every byte arrives, in order, as valid messages; pacing is checked
 * on the pacer's own clock readings at each `sent` event, which a busy machine cannot bunch: never
 * more than three frames of the bot's audio ahead of the wall clock, and all of it in real time.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCodes, systemClock, type Call, type Clock } from '#lib/index.js';
import { allZero, rawCall, startServer, within, type Cleanup } from './fault-helpers.js';
import { until } from './helpers.js';

const FRAME = 320; // 20 ms of slin at 8 kHz
const LEAD_MS = 60; // three frames

interface Sent {
  at: number;
  payload: Buffer;
}

/** A pattern the caller can recognise: every frame distinct, never all zero. */
function speech(ms: number, seed: number): Buffer {
  const b = Buffer.alloc((ms / 20) * FRAME);
  let x = seed;
  for (let i = 0; i < b.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = (x >>> 24) | 1;
  }
  return b;
}

async function botCall(t: Cleanup, bot: (call: Call) => Promise<void>) {
  const sent: Sent[] = [];
  let done!: Promise<void>;
  // Each send is stamped with the pacer's last clock reading: the time it decided on, not the
  // time the listener ran (a context switch can come in between).
  let lastReading = 0;
  const clock: Clock = { ...systemClock, now: () => (lastReading = performance.now()) };
  const { server, port } = await startServer(
    (call) => {
      call.on('sent', ({ payload }) => {
        if (!allZero(payload)) sent.push({ at: lastReading, payload: Buffer.from(payload) });
      });
      done = bot(call);
    },
    { clock },
    t,
  );
  const raw = await rawCall(port, {}, t);
  const received: Buffer[] = [];
  const parserInput: Buffer[] = [];
  raw.socket.on('data', (chunk: Buffer) => parserInput.push(chunk));
  await until(() => done !== undefined, 'the call');
  await within(done, 20_000, 'the bot to finish');
  const call = [...server.calls][0]!;
  await within(call.hangup(), 5000, 'hangup');
  await within(raw.closed, 5000, 'the socket to close');
  // What arrived: the non-silent audio payloads, in order.
  const stream = Buffer.concat(parserInput);
  for (let off = 0; off + 3 <= stream.length;) {
    const len = stream.readUInt16BE(off + 1);
    const payload = stream.subarray(off + 3, off + 3 + len);
    if (stream[off] !== 0 && !allZero(payload)) received.push(payload);
    off += 3 + len;
  }
  const end = await call.closed;
  return { raw, received: Buffer.concat(received), sent, end };
}

/** Float rounding only: stamps are the pacer's own readings. The previous outbound code broke the bound by 20 ms and more. */
const STAMP_SLACK_MS = 0.01;

/** Never more than three frames ahead of the wall clock since the first of the bot's frames. */
function assertRealTime(sent: Sent[], totalMs: number): void {
  const t0 = sent[0]!.at;
  let ms = 0;
  for (const s of sent) {
    ms += s.payload.length / 16;
    assert.ok(ms <= s.at - t0 + LEAD_MS + STAMP_SLACK_MS, `${ms} ms of audio sent ${(s.at - t0).toFixed(1)} ms after the first frame`);
  }
  const span = sent.at(-1)!.at - t0;
  assert.ok(span >= totalMs - LEAD_MS - STAMP_SLACK_MS, `${totalMs} ms went out in ${span.toFixed(0)} ms: faster than real time`);
}

describe('write() of text-to-speech over TCP: everything arrives, in real time', { concurrency: true }, () => {
  test('one write() of 2000 ms', async (t) => {
    const audio = speech(2000, 1);
    let accepted: boolean | undefined;
    const { raw, received, sent, end } = await botCall(t, async (call) => {
      await new Promise((r) => setTimeout(r, 100));
      accepted = call.write(audio);
      await call.drained();
    });
    assert.deepEqual(raw.violations, []);
    assert.ok(received.equals(audio), `the caller got ${received.length / 16} of 2000 ms, in order`);
    assert.equal(accepted, false, 'write() said slow down: 2 s is over the 1 s high-water mark');
    assert.equal(end.stats.droppedMs, 0);
    assertRealTime(sent, 2000);
  });

  test('a writer at 2x real time: 100 ms chunks every 50 ms for 6 s', async (t) => {
    const audio = speech(6000, 2);
    const { raw, received, sent, end } = await botCall(t, async (call) => {
      for (let i = 0; i < 60; i++) {
        call.write(audio.subarray(i * 5 * FRAME, (i + 1) * 5 * FRAME));
        await new Promise((r) => setTimeout(r, 50));
      }
      await call.drained();
    });
    assert.deepEqual(raw.violations, []);
    assert.ok(received.equals(audio), `the caller got ${received.length / 16} of 6000 ms, in order`);
    assert.equal(end.stats.droppedMs, 0);
    assertRealTime(sent, 6000);
  });

  test('one 1000 ms write after 4 s of quiet', async (t) => {
    const audio = speech(1000, 3);
    let writtenAt = 0;
    const { raw, received, sent } = await botCall(t, async (call) => {
      await new Promise((r) => setTimeout(r, 4000));
      writtenAt = performance.now();
      call.write(audio);
      await call.drained();
    });
    assert.deepEqual(raw.violations, []);
    assert.ok(received.equals(audio), `the caller got ${received.length / 16} of 1000 ms`);
    assert.ok(sent[0]!.at - writtenAt < 20, 'it starts at once');
    assertRealTime(sent, 1000);
  });
});

test('write() takes any length, as from an HTTP body: a sample split across writes arrives whole and in order', async (t) => {
  const audio = speech(400, 7);
  // Pieces that end inside samples (odd lengths), and a piece of one byte.
  const cuts = [1, 333, 7, 1, 998, 640, 3, 1217];
  let mixed: unknown;
  const { raw, received, sent, end } = await botCall(t, async (call) => {
    let off = 0;
    for (const n of cuts) {
      call.write(audio.subarray(off, off + n));
      off += n;
      if (off === 1 + 333 + 7) {
        // The write ended inside a sample: the next must be the same format.
        try {
          call.write(Buffer.alloc(2), 'slin16');
        } catch (err) {
          mixed = err;
        }
      }
    }
    call.write(audio.subarray(off));
    await call.drained();
  });
  assert.equal((mixed as { code?: string }).code, ErrorCodes.INVALID_ARGUMENT);
  assert.match((mixed as Error).message, /inside a slin sample \(1 of its 2 bytes\): write the rest of it before writing slin16/);
  assert.deepEqual(raw.violations, [], 'every message Asterisk got was whole samples');
  assert.ok(received.equals(audio), `the caller got ${received.length} of ${audio.length} bytes, in order`);
  assert.equal(end.stats.droppedMs, 0);
  assertRealTime(sent, 400);
});
