/**
 * Paced playback with an injected clock: the Outbound queue on a FrameScheduler, no sockets.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { ManualClock, type Clock } from '../src/index.js';
import { FrameScheduler } from '../src/scheduler.js';
import { Outbound, type OutboundOptions } from '../src/outbound.js';

interface Sent {
  at: number;
  kind: number;
  payload: Buffer;
}

function setup(options: Partial<OutboundOptions> = {}, clock: Clock & { advance?: (ms: number) => void } = new ManualClock(1000)) {
  const scheduler = new FrameScheduler(clock);
  const sent: Sent[] = [];
  const marks: Array<[string, boolean, number]> = [];
  const out = new Outbound(
    { kind: 0x10, frameMs: 20, keepAlive: true, maxCatchUpFrames: 2, maxQueuedMs: 1000, prefetchMs: 200, ...options },
    scheduler,
    (m) => sent.push({ at: clock.now(), kind: m[0]!, payload: Buffer.from(m.subarray(3)) }),
    (name, reached) => marks.push([name, reached, clock.now()]),
  );
  return { clock, scheduler, out, sent, marks };
}

/** Advances a ManualClock in 1 ms steps, letting promises (stream pumps) run in between. */
async function run(clock: ManualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t++) {
    clock.advance(1);
    await tick();
  }
}

function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const isSilence = (s: Sent): boolean => s.payload.every((b) => b === 0);

describe('Outbound pacing (ManualClock)', () => {
  test('cuts odd-sized chunks into exact 320-byte frames, byte for byte, padding only the end', async () => {
    const clock = new ManualClock(1000);
    const { out, sent } = setup({ keepAlive: false }, clock);
    const data = pattern(5 * 320 + 100);
    const sizes = [1, 3, 319, 5, 700, 1, 2];
    async function* chunks() {
      let off = 0;
      for (let i = 0; off < data.length; i++) {
        const n = sizes[i % sizes.length]!;
        yield data.subarray(off, off + n);
        off += n;
        if (i % 3 === 0) await tick();
      }
    }
    out.start();
    const done = out.play(chunks(), undefined);
    await run(clock, 200);
    const result = await done;
    assert.equal(result.status, 'done');
    assert.equal(sent.length, 6);
    for (const s of sent) assert.equal(s.payload.length, 320);
    const joined = Buffer.concat(sent.map((s) => s.payload));
    assert.deepEqual(joined.subarray(0, data.length), data);
    assert.ok(joined.subarray(data.length).every((b) => b === 0), 'padded with silence');
    // One frame per 20 ms slot.
    for (let i = 1; i < sent.length; i++) assert.equal(sent[i]!.at - sent[i - 1]!.at, 20);
  });

  test('plays queue in order and join seamlessly (no silence between them)', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({}, clock);
    const a = pattern(330, 1);
    const b = pattern(310, 2);
    out.start();
    const pa = out.play(a, undefined);
    const pb = out.play(b, undefined);
    await run(clock, 100);
    assert.equal((await pa).status, 'done');
    assert.equal((await pb).status, 'done');
    const audio = sent.filter((s) => !isSilence(s));
    assert.equal(audio.length, 2);
    assert.deepEqual(Buffer.concat(audio.map((s) => s.payload)), Buffer.concat([a, b]));
  });

  test('an odd byte at a chunk border is carried; a dangling final byte is dropped, not shifted into the next play', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false }, clock);
    const a = pattern(641, 3); // odd: last byte dropped
    const b = pattern(320, 4);
    out.start();
    void out.play([a.subarray(0, 101), a.subarray(101)], undefined);
    void out.play(b, undefined);
    await run(clock, 100);
    const joined = Buffer.concat(sent.map((s) => s.payload));
    assert.deepEqual(joined.subarray(0, 640), a.subarray(0, 640));
    assert.deepEqual(joined.subarray(640, 960), b);
  });

  test('no drift over 10 simulated minutes even when every timer fires late', async () => {
    const manual = new ManualClock(0);
    // A clock whose timers fire 0-7 ms late, like a busy event loop.
    let r = 7;
    const late: Clock & { advance: (ms: number) => void } = {
      now: () => manual.now(),
      setTimer: (cb, ms) => {
        r = (r * 48271) % 2147483647;
        return manual.setTimer(cb, ms + (r % 8));
      },
      clearTimer: (h) => manual.clearTimer(h),
      advance: (ms) => manual.advance(ms),
    };
    const { out, sent } = setup({ keepAlive: false }, late);
    const minutes = 10;
    const frames = (minutes * 60 * 1000) / 20;
    const data = Buffer.alloc(frames * 320, 1);
    out.start();
    const done = out.play(data, undefined);
    manual.advance(minutes * 60 * 1000 + 100);
    assert.equal((await done).status, 'done');
    assert.equal(sent.length, frames);
    const t0 = sent[0]!.at;
    let maxErr = 0;
    for (let k = 0; k < sent.length; k++) maxErr = Math.max(maxErr, Math.abs(sent[k]!.at - (t0 + 20 * k)));
    assert.ok(maxErr <= 8, `frame times stay on the 20 ms grid (max error ${maxErr} ms)`);
    assert.ok(Math.abs(sent.at(-1)!.at - t0 - (frames - 1) * 20) <= 8, 'total duration exact');
  });

  test('after a stall, catch-up is bounded and the schedule moves forward', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false, maxCatchUpFrames: 2 }, clock);
    out.start();
    const done = out.play(Buffer.alloc(100 * 320, 1), undefined);
    await tick();
    clock.advance(200);
    const before = sent.length;
    clock.stall(300); // 15 slots missed
    const burst = sent.length - before;
    assert.equal(burst, 3, 'one frame plus at most two catch-up frames');
    const stats = out.stats;
    assert.equal(stats.caughtUpFrames, 2);
    assert.equal(stats.droppedSlots, 12, 'slots 220..500 are 15, 3 were sent');
    clock.advance(100);
    // Back to one frame per 20 ms.
    const tail = sent.slice(-5).map((s) => s.at);
    for (let i = 1; i < tail.length; i++) assert.equal(tail[i]! - tail[i - 1]!, 20);
    clock.advance(3000);
    assert.equal((await done).status, 'done');
    assert.equal(sent.length, 100, 'audio is delayed, never lost');
  });

  test('flush drops everything within one slot; plays settle as interrupted, marks as not reached', async () => {
    const clock = new ManualClock(0);
    const { out, sent, marks } = setup({}, clock);
    out.start();
    const p1 = out.play(Buffer.alloc(50 * 320, 1), undefined);
    const m = out.mark('after-prompt');
    const p2 = out.play(Buffer.alloc(10 * 320, 2), undefined);
    await tick();
    clock.advance(100);
    const dropped = out.flush();
    assert.equal(dropped, 1200 - 6 * 20, 'everything not yet sent');
    const n = sent.length;
    clock.advance(20);
    assert.equal(sent.length, n + 1);
    assert.ok(isSilence(sent.at(-1)!), 'the very next slot is keep-alive silence');
    const r1 = await p1;
    assert.equal(r1.status, 'interrupted');
    assert.equal(r1.reason, 'flush');
    assert.ok(r1.framesSent >= 5 && r1.framesSent <= 6);
    assert.deepEqual(await p2, { status: 'interrupted', reason: 'flush', framesSent: 0, sentMs: 0 });
    assert.equal(await m, false);
    assert.deepEqual(marks.map(([name, reached]) => [name, reached]), [['after-prompt', false]]);
  });

  test('marks fire in order, right after the audio queued before them is sent', async () => {
    const clock = new ManualClock(0);
    const { out, sent, marks } = setup({ keepAlive: false }, clock);
    out.start();
    const m0 = out.mark('start');
    void out.play(Buffer.alloc(3 * 320, 1), undefined);
    void out.mark('one');
    void out.play(Buffer.alloc(2 * 320, 2), undefined);
    void out.mark('two');
    await tick();
    clock.advance(200);
    assert.equal(await m0, true);
    assert.deepEqual(marks.map((m) => m[0]), ['start', 'one', 'two']);
    assert.equal(marks[1]![2], sent[2]!.at, 'mark one at the third frame');
    assert.equal(marks[2]![2], sent[4]!.at, 'mark two at the fifth frame');
  });

  test('abort via signal drops only that play', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false }, clock);
    out.start();
    const ac = new AbortController();
    const a = out.play(Buffer.alloc(20 * 320, 1), undefined, ac.signal);
    const b = out.play(Buffer.alloc(2 * 320, 2), undefined);
    await tick();
    clock.advance(60);
    ac.abort();
    clock.advance(100);
    const ra = await a;
    assert.equal(ra.status, 'interrupted');
    assert.equal(ra.reason, 'abort');
    assert.equal((await b).status, 'done');
    const twos = sent.filter((s) => s.payload[0] === 2);
    assert.equal(twos.length, 2);
    const pre = new AbortController();
    pre.abort();
    assert.equal((await out.play(Buffer.alloc(320), undefined, pre.signal)).status, 'interrupted');
  });

  test('keep-alive fills every empty slot and stops at close; off means no traffic', () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({}, clock);
    out.start();
    clock.advance(1000);
    assert.ok(sent.length >= 49 && sent.length <= 51, `${sent.length} frames in 1 s`);
    assert.ok(sent.every(isSilence));
    assert.ok(sent.every((s) => s.payload.length === 320 && s.kind === 0x10));
    out.close();
    const n = sent.length;
    clock.advance(1000);
    assert.equal(sent.length, n);

    const quiet = setup({ keepAlive: false }, new ManualClock(0));
    quiet.out.start();
    (quiet.clock as ManualClock).advance(1000);
    assert.equal(quiet.sent.length, 0);
  });

  test('one frame per slot: while a play is queued it owns the slots, writes are dropped and counted', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({}, clock);
    out.start();
    const played = out.play(Buffer.alloc(100 * 320, 1), undefined);
    await tick();
    let refused = 0;
    // An echo writing a frame every 20 ms at an odd phase while the play runs.
    for (let t = 0; t < 2500; t++) {
      clock.advance(1);
      if (t % 20 === 7 && !out.write(Buffer.alloc(320, 9), 0x10)) refused++;
    }
    assert.equal((await played).status, 'done');
    const prompt = sent.filter((s) => s.payload[0] === 1);
    assert.equal(prompt.length, 100, 'the play got every slot it needed');
    assert.equal(prompt.at(-1)!.at - prompt[0]!.at, 99 * 20, 'in real time');
    assert.ok(refused >= 95 && refused <= 101, `${refused} writes refused during the play`);
    assert.equal(out.stats.droppedWrites, refused);
    assert.ok(sent.some((s) => s.payload[0] === 9), 'writes flow again after the play');
    const audioMs = sent.length * 20;
    assert.ok(audioMs <= 2500 + 40, `sent ${audioMs} ms of audio in 2500 ms`);
  });

  test('flush frees the queue even when the playing source is stuck waiting (a stalled TTS stream)', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false }, clock);
    out.start();
    const stuck = out.play(
      (async function* () {
        yield Buffer.alloc(320, 1);
        await new Promise(() => {}); // never yields again
      })(),
      undefined,
    );
    await tick();
    clock.advance(40);
    out.flush();
    assert.equal((await stuck).status, 'interrupted');
    const next = out.play(Buffer.alloc(640, 2), undefined);
    await tick();
    await tick();
    clock.advance(100);
    assert.equal((await next).status, 'done');
    assert.equal(sent.filter((s) => s.payload[0] === 2).length, 2);
  });

  test('an echo adds at most one frame of delay and, in steady state, no silence', () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({}, clock);
    out.start();
    clock.advance(13);
    const writeTimes: number[] = [];
    let jitter = 3;
    for (let k = 0; k < 200; k++) {
      jitter = (jitter * 7 + 5) % 11; // 0..10 ms of arrival jitter
      const due = 13 + k * 20 + jitter;
      clock.advance(due - clock.now());
      writeTimes.push(clock.now());
      const payload = Buffer.alloc(320);
      payload.writeUInt32LE(k + 1, 0);
      out.write(payload, 0x10);
    }
    clock.advance(100);
    const echoes = sent.filter((s) => !isSilence(s));
    assert.equal(echoes.length, 200);
    let maxDelay = 0;
    echoes.forEach((s, k) => {
      assert.equal(s.payload.readUInt32LE(0), k + 1, 'in order');
      maxDelay = Math.max(maxDelay, s.at - writeTimes[k]!);
    });
    assert.ok(maxDelay <= 20, `an echo waited ${maxDelay} ms`);
    const firstEcho = sent.indexOf(echoes[0]!);
    const lastEcho = sent.indexOf(echoes.at(-1)!);
    const silencesBetween = sent.slice(firstEcho, lastEcho).filter(isSilence).length;
    assert.ok(silencesBetween <= 2, `${silencesBetween} silence frames between echoes`);
  });

  /** Echo input: frame k written at 7 + 20k + lateness(k), payload stamped with k. Returns when each went out. */
  function echo(lateness: (k: number) => number, frames: number, options: Partial<OutboundOptions> = {}) {
    const clock = new ManualClock(0);
    const { out, sent } = setup(options, clock);
    out.start();
    const arrivals = Array.from({ length: frames }, (_, k) => ({ k, at: 7 + 20 * k + lateness(k) })).sort((a, b) => a.at - b.at || a.k - b.k);
    for (const a of arrivals) {
      clock.advance(a.at - clock.now());
      const payload = Buffer.alloc(320, 0x5a);
      payload.writeUInt32LE(a.k, 0);
      out.write(payload, 0x10);
    }
    clock.advance(2000);
    const byK = new Map<number, number>();
    for (const s of sent) if (!isSilence(s)) byK.set(s.payload.readUInt32LE(0), s.at);
    const delay = (k: number): number => byK.get(k)! - (7 + 20 * k + lateness(k));
    return { out, sent, byK, delay };
  }

  /** The most audio (ms, silence included) sent in any window, less 1.25 x the window: the burst. */
  function worstBurst(sent: Sent[]): number {
    let worst = 0;
    for (let i = 0; i < sent.length; i++) {
      let ms = 0;
      for (let j = i; j < sent.length; j++) {
        ms += sent[j]!.payload.length / 16;
        worst = Math.max(worst, ms - 1.25 * (sent[j]!.at - sent[i]!.at));
      }
    }
    return worst;
  }

  test('an echo whose first frame came late is not held back when later frames come on time', () => {
    // Frame 0 is 45 ms late (the call's first frame often is); every later one is on time.
    const { byK, delay } = echo((k) => (k === 0 ? 45 : 0), 100);
    assert.equal(byK.size, 100);
    // Keep-alive silence went out just before frame 0, so frame 1 (5 ms after frame 0) would be a
    // third frame in 7 ms: the first few wait briefly, then every frame goes out at once.
    for (let k = 1; k < 5; k++) assert.ok(delay(k) <= 20, `frame ${k} waited ${delay(k)} ms`);
    for (let k = 5; k < 100; k++) assert.equal(delay(k), 0, `frame ${k} went out at once`);
  });

  test('after late input (a 60 ms stall) the backlog drains at a bounded rate and the delay goes back to zero', () => {
    // Frames 50-52 are held back and arrive together with frame 53 (silence fills the gap).
    const { out, sent, byK, delay } = echo((k) => (k >= 50 && k <= 52 ? (53 - k) * 20 : 0), 200);
    assert.equal(byK.size, 200, 'every frame is echoed');
    assert.equal(out.stats.droppedWrites, 0);
    const ks = [...byK.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => k);
    assert.deepEqual(ks, [...ks].sort((a, b) => a - b), 'in order');
    assert.ok(sent.slice(sent.findIndex((s) => !isSilence(s))).some(isSilence), 'keep-alive filled the gap');
    assert.ok(worstBurst(sent) <= 60 + 1e-9, `at most three frames beyond 1.25 x real time, got ${worstBurst(sent)} ms`);
    const worst = Math.max(...Array.from({ length: 60 }, (_, i) => delay(50 + i)));
    assert.ok(worst > 0 && worst <= 60, `the backlog delayed frames by up to ${worst} ms`);
    for (let k = 120; k < 200; k++) assert.equal(delay(k), 0, `frame ${k}: the backlog has drained`);
  });

  test('after a stall of our own event loop, no keep-alive silence is put before the echo input read late', () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({}, clock);
    out.start();
    let k = 0;
    const writeNext = (): void => {
      const payload = Buffer.alloc(320, 0x5a);
      payload.writeUInt32LE(k++, 0);
      out.write(payload, 0x10);
    };
    // An echo in steady state: a frame every 20 ms at phase 7.
    for (let t = 7; t < 1007; t += 20) {
      clock.advance(t - clock.now());
      writeNext();
    }
    const before = sent.length;
    // The loop stalls 100 ms: the tick runs first, then the five frames that arrived meanwhile are read.
    clock.stall(100);
    const atStallEnd = sent.slice(before);
    for (let i = 0; i < 5; i++) writeNext();
    for (let t = 1107 + 20; t < 2007; t += 20) {
      clock.advance(t - clock.now());
      writeNext();
    }
    clock.advance(100);
    assert.equal(atStallEnd.filter(isSilence).length, 0, 'the tick after the stall sent no silence');
    const firstEcho = sent.findIndex((s) => !isSilence(s));
    const lastEcho = sent.findLastIndex((s) => !isSilence(s));
    assert.equal(sent.slice(firstEcho, lastEcho).filter(isSilence).length, 0, 'no silence between echoes');
    assert.equal(sent.filter((s) => !isSilence(s)).length, k, 'every frame echoed');
  });

  test('a stall while credit is already in use leaves no lasting delay', () => {
    // Frames 0-7 arrive together with frame 7, the first 140 ms late: catching up spends most of
    // the writer's 200 ms of credit. Then frames 100-104 are held back, arriving with frame 105.
    const late = (k: number): number => (k < 7 ? (7 - k) * 20 : 0) + (k >= 100 && k <= 104 ? (105 - k) * 20 : 0);
    const { byK, delay, out } = echo(late, 400);
    assert.equal(byK.size, 400);
    assert.equal(out.stats.droppedWrites, 0);
    for (let k = 250; k < 400; k++) assert.equal(delay(k), 0, `frame ${k}: delay ${delay(k)} ms long after the stall`);
  });

  test('a 300 ms pause of the input (or of our event loop) leaves no lasting delay: lateness is remembered up to maxQueuedMs', () => {
    // Frames 100-114 are held back and arrive together with frame 115.
    const late = (k: number): number => (k >= 100 && k <= 114 ? (115 - k) * 20 : 0);
    const { byK, delay, out } = echo(late, 500);
    assert.equal(byK.size, 500);
    assert.equal(out.stats.droppedWrites, 0);
    for (let k = 400; k < 500; k++) assert.equal(delay(k), 0, `frame ${k}: delay ${delay(k)} ms long after the pause`);
  });

  test('input up to 19 ms late (gaps under two frames) gets no keep-alive silence between echoes', () => {
    // Every other frame 19 ms late: the slot before it is empty for up to 39 ms, under two frames.
    const { byK, sent } = echo((k) => (k % 2 === 1 ? 19 : 0), 300);
    assert.equal(byK.size, 300);
    const first = sent.findIndex((s) => !isSilence(s));
    const last = sent.findLastIndex((s) => !isSilence(s));
    assert.equal(sent.slice(first, last).filter(isSilence).length, 0, 'no silence between echoes');
  });

  test('a writer slightly faster than real time runs ahead by its credit and lead, then is held to real time', () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false, maxQueuedMs: 200 }, clock);
    out.start();
    // 1.05 x real time for 10 s: a 20 ms frame every 19.05 ms.
    for (let k = 0; k < 525; k++) {
      clock.advance(k * (20 / 1.05) - clock.now());
      out.write(Buffer.alloc(320, 1), 0x10);
    }
    clock.advance(10_000 - clock.now());
    let audio = 0;
    let maxAhead = -Infinity;
    for (const s of sent) {
      audio += 20;
      maxAhead = Math.max(maxAhead, audio - (s.at - sent[0]!.at));
    }
    // Exactly the credit (maxQueuedMs: 200 ms), one frame of lead and the frame in flight.
    assert.ok(Math.abs(maxAhead - 240) < 1e-9, `ran ${maxAhead.toFixed(1)} ms ahead of real time`);
    const lastSeconds = sent.filter((s) => s.at >= 6000 && s.at < 10_000).length * 20;
    assert.ok(Math.abs(lastSeconds - 4000) <= 40, `${lastSeconds} ms of audio in the last 4 s`);
    assert.ok(out.stats.droppedWrites > 0, 'the excess beyond maxQueuedMs is dropped and counted');
  });

  test('input arriving two to four frames at a time (coalesced TCP writes) goes out at most three frames back to back', () => {
    for (const group of [2, 3, 4]) {
      // Frame k arrives with the last frame of its group.
      const { byK, sent, out } = echo((k) => (group - 1 - (k % group)) * 20, 600);
      assert.equal(byK.size, 600, `group ${group}: every frame echoed`);
      assert.equal(out.stats.droppedWrites, 0);
      assert.ok(worstBurst(sent) <= 60 + 1e-9, `group ${group}: burst ${worstBurst(sent)} ms`);
      // In the long run exactly real time, and no keep-alive silence inside the echo's own audio.
      const inSecond = (from: number): number => sent.filter((s) => s.at >= from && s.at < from + 1000).length * 20;
      for (const from of [5000, 10000]) {
        assert.ok(Math.abs(inSecond(from) - 1000) <= 40, `group ${group}: ${inSecond(from)} ms of audio in the second from ${from}`);
      }
      const first = sent.findIndex((s) => !isSilence(s));
      const last = sent.findLastIndex((s) => !isSilence(s));
      assert.equal(sent.slice(first, last).filter(isSilence).length, 0, `group ${group}: no silence between echoes`);
    }
  });

  test('a writer faster than real time is held to real time: the excess waits, then is dropped and counted', () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false, maxQueuedMs: 200 }, clock);
    out.start();
    // Two frames every 20 ms for 2 s: twice real time.
    for (let t = 0; t < 2000; t += 20) {
      clock.advance(t - clock.now());
      out.write(Buffer.alloc(320, 1), 0x10);
      out.write(Buffer.alloc(320, 2), 0x10);
    }
    clock.advance(2000 - clock.now());
    const audioMs = sent.length * 20;
    // Ahead by at most the writer's credit (ten frames), one frame of lead and the frame in flight...
    assert.ok(audioMs <= 2000 + 12 * 20, `${audioMs} ms of audio sent in 2000 ms`);
    assert.ok(audioMs >= 2000 - 40, `and real time is used: ${audioMs} ms`);
    // ...and once that is spent, exactly real time.
    const lastSecond = sent.filter((s) => s.at >= 1000 && s.at < 2000).length * 20;
    assert.ok(lastSecond >= 980 && lastSecond <= 1020, `${lastSecond} ms of audio in the last second`);
    assert.equal(out.stats.droppedWrites + sent.length + Math.round(out.stats.queuedMs / 20), 200, 'every write is sent, waiting or counted as dropped');
  });

  test('paced catch-up after a stall obeys the burst guard: no fourth frame on the next tick', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false }, clock);
    out.start();
    const played = out.play(Buffer.alloc(100 * 320, 1), undefined);
    await tick();
    clock.advance(220);
    clock.stall(99); // ends at 319, one ms before the tick of 320
    clock.advance(2500);
    assert.equal((await played).status, 'done');
    assert.ok(worstBurst(sent) <= 60 + 1e-9, `at most three frames beyond 1.25 x real time, got ${worstBurst(sent)} ms`);
  });

  test('a message longer than a frame is never sent back to back with another', () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ frameMs: 10, keepAlive: false }, clock);
    out.start();
    // Twelve 60 ms writes at once on a 10 ms call: each alone is allowed, two together are not.
    for (let i = 0; i < 12; i++) out.write(Buffer.alloc(960, 1), 0x10);
    clock.advance(2000);
    assert.equal(sent.length, 12);
    for (let i = 1; i < sent.length; i++) {
      assert.ok(sent[i]!.at - sent[i - 1]!.at >= 60 / 1.25 - 1e-9, `60 ms messages ${sent[i]!.at - sent[i - 1]!.at} ms apart`);
    }
  });

  test('immediate writes that cannot keep up are capped by maxQueuedMs and counted', () => {
    const clock = new ManualClock(0);
    const { out } = setup({ maxQueuedMs: 100 }, clock);
    out.start();
    for (let i = 0; i < 50; i++) out.write(Buffer.alloc(320), 0x10);
    assert.equal(out.stats.droppedWrites, 50 - 3 - 5, 'three go out at once (the burst allowance), 100 ms wait, the rest are dropped');
    assert.ok(out.queuedMs <= 100);
  });

  test('the shared scheduler serves many members with one timer', () => {
    const clock = new ManualClock(0);
    const scheduler = new FrameScheduler(clock);
    let frames = 0;
    const outs = Array.from({ length: 100 }, () =>
      new Outbound({ kind: 0x10, frameMs: 20, keepAlive: true, maxCatchUpFrames: 2, maxQueuedMs: 1000, prefetchMs: 200 }, scheduler, () => frames++, () => {}),
    );
    for (const o of outs) o.start();
    assert.equal(clock.pendingTimers, 1);
    clock.advance(1000);
    assert.ok(frames >= 100 * 50 && frames <= 100 * 51);
    for (const o of outs) o.close();
    assert.equal(scheduler.size, 0);
    clock.advance(100);
    assert.equal(clock.pendingTimers, 0, 'no timer left when nothing is paced');
  });

  test('a single member gets one wake-up per frame', () => {
    const clock = new ManualClock(0);
    const scheduler = new FrameScheduler(clock);
    const out = new Outbound({ kind: 0x10, frameMs: 20, keepAlive: true, maxCatchUpFrames: 2, maxQueuedMs: 1000, prefetchMs: 200 }, scheduler, () => {}, () => {});
    out.start();
    clock.advance(1000);
    assert.ok(scheduler.stats.ticks >= 50 && scheduler.stats.ticks <= 51, `${scheduler.stats.ticks} ticks in 1 s`);
    out.close();
  });
});
