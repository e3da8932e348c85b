/**
 * The outbound side of a call under a ManualClock: queue, pacer and keep-alive on a
 * FrameScheduler, no sockets. Every test checks what leaves, when, byte for byte.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { ManualClock, type Clock } from '#lib/index.js';
import { FrameScheduler, TIMER_RESOLUTION_MS } from '#lib/outbound/scheduler.js';
import { formatOfKind, PacedOutbound, type OutboundOptions } from '#lib/outbound/paced.js';
import type { OutboundEvents } from '#lib/outbound/policy.js';
import { SendMeter } from '#lib/outbound/send-meter.js';
import { DEFAULT_PACING, type PacingParameters } from '#lib/outbound/pacer.js';

interface Sent {
  at: number;
  kind: number;
  payload: Buffer;
}

const quietEvents: OutboundEvents = {
  sent: () => {},
  mark: () => {},
  drain: () => {},
  dropped: () => {},
  warning: () => {},
};

/** A wire's `messageMemory` that hands out the same memory while the size stays the same. */
function reusedMemory(): (size: number) => Buffer {
  let memory = Buffer.alloc(0);
  return (size) => (memory.length === size ? memory : (memory = Buffer.alloc(size)));
}

type Setup = Partial<Omit<OutboundOptions, 'pacing'>> & { pacing?: Partial<PacingParameters> };

/** A call's outbound options as the server's defaults make them (20 ms frames). */
const OPTIONS: OutboundOptions = {
  kind: 0x10,
  keepAliveKind: 0x10,
  keepAlive: true,
  prefetchMs: 200,
  highWaterMarkMs: 1000,
  maxQueuedMs: 30000,
  pacing: { frameMs: 20, ...DEFAULT_PACING },
};

function setup(options: Setup = {}, clock: Clock = new ManualClock(1000)) {
  const scheduler = new FrameScheduler(clock);
  const sent: Sent[] = [];
  const marks: Array<[string, boolean, number]> = [];
  const drains: number[] = [];
  const drops: number[] = [];
  const { pacing, ...rest } = options;
  const out = new PacedOutbound(
    { ...OPTIONS, ...rest, pacing: { ...OPTIONS.pacing, ...pacing } },
    scheduler,
    {
      ...quietEvents,
      mark: (name, reached) => marks.push([name, reached, clock.now()]),
      drain: () => drains.push(clock.now()),
      dropped: (ms) => drops.push(ms),
    },
    {
      // Like a socket that takes every message at once: the memory is reused for the next one.
      messageMemory: reusedMemory(),
      write: (m) => sent.push({ at: clock.now(), kind: m[0]!, payload: Buffer.from(m.subarray(3)) }) > 0,
    },
  );
  return { clock, scheduler, out, sent, marks, drains, drops };
}

/** Advances a ManualClock in 1 ms steps, letting promises (source pumps) run in between. */
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
const ms8k = (s: Sent): number => s.payload.length / 16;

/** Checks `list` against: at most `lead` ms ahead of the wall clock since its first message, any window at most 1.25 x + `lead`. */
function assertBounds(list: Sent[], lead: number, what: string, ahead = lead): void {
  if (list.length === 0) return;
  const t0 = list[0]!.at;
  let total = 0;
  for (const s of list) {
    total += ms8k(s);
    assert.ok(
      total <= s.at - t0 + ahead + 1e-6,
      `${what} ahead of the wall clock: ${total} ms sent ${s.at - t0} ms after the first message`,
    );
  }
  for (let i = 0; i < list.length; i++) {
    let sum = 0;
    for (let j = i; j < list.length && list[j]!.at - list[i]!.at <= 1000; j++) {
      sum += ms8k(list[j]!);
      assert.ok(sum <= 1.25 * (list[j]!.at - list[i]!.at) + lead + 1e-6, `${what} burst: ${sum} ms within ${list[j]!.at - list[i]!.at} ms`);
    }
  }
}

/**
 * The model's guarantees on what left: in any window at most 1.25 x the window plus three
 * frames, silence included; the user's audio never more than three frames ahead of the wall
 * clock, all audio at most one frame more (silence yields to a talk spurt). `answersHeldInput`:
 * a talk spurt answering input held up by a stall may take the slots the stall left empty, so
 * it is bounded with all audio only.
 */
function assertPaced(sent: Sent[], from = 0, answersHeldInput = false): void {
  const list = sent.slice(from);
  if (!answersHeldInput) {
    assertBounds(
      list.filter((s) => !isSilence(s)),
      60,
      'audio',
    );
  }
  assertBounds(list, 60, 'all audio', 80);
}

describe('Outbound: the three write patterns of a voice bot', () => {
  test('one write() of 2000 ms: every byte leaves in real time, each frame just in time (no burst at the start); false then drain', async () => {
    const clock = new ManualClock(0);
    const { out, sent, drains, drops } = setup({ keepAlive: false }, clock);
    out.start();
    clock.advance(7);
    const data = pattern(2000 * 16);
    assert.equal(out.write(data, formatOfKind(0x10)), false, 'over the 1 s high-water mark: slow down (but nothing is lost)');
    await run(clock, 2100);
    assert.deepEqual(Buffer.concat(sent.map((s) => s.payload)), data, 'all 2000 ms, byte for byte, in order');
    assert.ok(
      sent.every((s) => s.payload.length === 320),
      'exact 20 ms frames',
    );
    assertPaced(sent);
    // The write came 7 ms into a slot: its first frame leaves at once, every later one at the
    // last pass before its place on the timeline (7 + 20 k), one per pass, never two together.
    for (let k = 1; k < sent.length; k++) {
      const place = 7 + 20 * k;
      assert.ok(sent[k]!.at <= place && sent[k]!.at > place - 20, `frame ${k} sent at ${sent[k]!.at}, its place at ${place}`);
    }
    assert.equal(drops.length, 0);
    assert.equal(out.stats.droppedMs, 0);
    assert.equal(drains.length, 1, 'drain once the queue is back under the high-water mark');
    assert.ok(drains[0]! - sent[0]!.at >= 1000 - 60 && drains[0]! - sent[0]!.at <= 1000, `drain at ${drains[0]! - sent[0]!.at} ms`);
  });

  test('a writer at 2x real time (100 ms every 50 ms for 6 s) is held to real time, all of it delivered', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false }, clock);
    out.start();
    const data = pattern(6000 * 16, 5);
    let falses = 0;
    for (let i = 0; i < 60; i++) {
      if (!out.write(data.subarray(i * 1600, (i + 1) * 1600), formatOfKind(0x10))) falses++;
      await run(clock, 50);
    }
    await run(clock, 3200);
    assert.deepEqual(Buffer.concat(sent.map((s) => s.payload)), data, 'all 6000 ms, in order');
    assertPaced(sent);
    assert.ok(sent.at(-1)!.at - sent[0]!.at >= 6000 - 60, 'at real-time pace');
    assert.ok(falses > 0, 'write() said slow down once a second was queued');
    assert.equal(out.stats.droppedMs, 0);
  });

  test('one 1000 ms write after 4 s of quiet starts on the wall clock: quiet time is no credit', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({}, clock);
    out.start();
    await run(clock, 4003);
    const before = sent.length;
    assert.ok(before >= 199 && sent.every(isSilence), 'keep-alive during the quiet');
    const data = pattern(1000 * 16, 9);
    const at = clock.now();
    out.write(data, formatOfKind(0x10));
    await run(clock, 1200);
    const user = sent.slice(before);
    assert.deepEqual(Buffer.concat(user.filter((s) => !isSilence(s)).map((s) => s.payload)), data);
    let total = 0;
    for (const s of user) {
      total += ms8k(s);
      assert.ok(total <= s.at - at + 60 + 1e-6, `${total} ms sent ${s.at - at} ms after the write`);
    }
    assertPaced(sent);
  });
});

describe('Outbound: echo (audio written as it arrives)', () => {
  /** Echoes frames that "arrive" per `arrivals` (ms of each batch of `per` frames); returns write and send times. */
  async function echo(arrivals: number[], per: number, opts: { stallAt?: number; stallMs?: number; setup?: Setup } = {}) {
    const clock = new ManualClock(0);
    const s = setup(opts.setup ?? {}, clock);
    s.out.start();
    const written: Array<{ at: number; seq: number }> = [];
    let seq = 0;
    for (const due of arrivals) {
      if (opts.stallAt !== undefined && clock.now() < opts.stallAt && due >= opts.stallAt) {
        clock.advance(opts.stallAt - clock.now());
        clock.stall(opts.stallMs!);
      }
      if (due > clock.now()) clock.advance(due - clock.now());
      for (let i = 0; i < per; i++) {
        const frame = Buffer.alloc(320, 0);
        frame.writeUInt32LE(++seq, 0); // never silence: a sequence number in every frame
        frame[319] = 1;
        written.push({ at: clock.now(), seq });
        s.out.noteInbound(0x10, 20, clock.now()); // what the call reports for each received frame
        s.out.write(frame, formatOfKind(0x10));
      }
    }
    clock.advance(200);
    const echoed = s.sent.filter((m) => !isSilence(m));
    return { ...s, written, echoed };
  }

  test('in steady state with 0-10 ms of input jitter every frame leaves the moment it is written, no silence between', async () => {
    let j = 3;
    const arrivals = Array.from({ length: 200 }, (_, k) => {
      j = (j * 7 + 5) % 11;
      return 13 + k * 20 + j;
    });
    const { written, echoed, sent } = await echo(arrivals, 1);
    assert.equal(echoed.length, 200);
    for (let k = 0; k < 200; k++) {
      assert.equal(echoed[k]!.payload.readUInt32LE(0), k + 1, 'in order');
      assert.equal(echoed[k]!.at, written[k]!.at, `frame ${k} delayed by ${echoed[k]!.at - written[k]!.at} ms`);
    }
    const first = sent.indexOf(echoed[0]!);
    assert.equal(sent.slice(first, sent.indexOf(echoed.at(-1)!)).filter(isSilence).length, 0, 'no silence inside the echo');
    assertPaced(sent);
  });

  for (const per of [2, 3]) {
    test(`input merged ${per} frames per TCP write goes straight back, no silence inside`, async () => {
      const arrivals = Array.from({ length: 60 }, (_, k) => 11 + k * 20 * per);
      const { written, echoed, sent } = await echo(arrivals, per);
      assert.equal(echoed.length, 60 * per);
      // The first batch follows a keep-alive frame, which the window bound counts: its last
      // frames may wait, but for no later than their place on the timeline. From then on,
      // every frame leaves as it is written.
      for (let k = 0; k < per; k++) assert.ok(echoed[k]!.at - written[k]!.at <= 20 * k, `frame ${k}`);
      for (let k = per; k < echoed.length; k++) assert.equal(echoed[k]!.at, written[k]!.at, `frame ${k}`);
      const a = sent.indexOf(echoed[0]!);
      assert.equal(sent.slice(a, sent.indexOf(echoed.at(-1)!)).filter(isSilence).length, 0);
      assertPaced(sent);
    });
  }

  for (const per of [4, 5]) {
    test(`input merged ${per} frames per TCP write: bounded delay that does not grow, no silence inside`, async () => {
      const arrivals = Array.from({ length: 60 }, (_, k) => 11 + k * 20 * per);
      const { written, echoed, sent } = await echo(arrivals, per);
      assert.equal(echoed.length, 60 * per);
      const delays = echoed.map((m, k) => m.at - written[k]!.at);
      // Frames beyond the lead wait, each for the last pass before its place on the timeline
      // (frame j of a batch plays 20 j ms after the batch came): never late.
      for (let k = 0; k < delays.length; k++) assert.ok(delays[k]! <= 20 * (k % per), `frame ${k} delayed ${delays[k]} ms`);
      assert.deepEqual(delays.slice(-per), delays.slice(per, 2 * per), 'the same in the last batch as in the second');
      assert.ok(
        delays.slice(per).every((d, i) => (i % per < 3 ? d === 0 : true)),
        'the first three of each batch leave at once',
      );
      const a = sent.indexOf(echoed[0]!);
      assert.equal(sent.slice(a, sent.indexOf(echoed.at(-1)!)).filter(isSilence).length, 0);
      assertPaced(sent);
    });
  }

  test('a 300 ms stall of our own loop: no silence put before the late input, the backlog drains, no lasting delay', async () => {
    // Frames arrive every 20 ms; the loop stalls 300 ms at 1000 ms, so 15 frames are read at once after it.
    const arrivals: number[] = [];
    for (let k = 0; k < 150; k++) {
      const due = 5 + k * 20;
      arrivals.push(due >= 1000 && due < 1300 ? 1300 : due);
    }
    const { written, echoed, sent } = await echo(arrivals, 1, { stallAt: 1000, stallMs: 300 });
    assert.equal(echoed.length, 150);
    const a = sent.indexOf(echoed[0]!);
    assert.equal(sent.slice(a, sent.indexOf(echoed.at(-1)!)).filter(isSilence).length, 0, 'no silence inside the echo');
    const delays = echoed.map((m, k) => m.at - written[k]!.at);
    assert.ok(Math.max(...delays) > 0, 'the backlog could not all go at once');
    // 300 ms owed, made up at 0.25 x real time: instant again about 1.2 s after the stall.
    assert.deepEqual(delays.slice(-25), new Array(25).fill(0), 'the echo is instant again');
    assertPaced(sent);
  });

  test('input that pauses 100 ms and then comes in a burst (late, not quiet): no silence inside, no lasting delay', async () => {
    const arrivals: number[] = [];
    for (let k = 0; k < 200; k++) {
      const due = 7 + k * 20;
      // Three pauses: the frames due meanwhile arrive together when each ends.
      const pause = [1000, 2000, 3000].find((p) => due >= p && due < p + 100);
      arrivals.push(pause === undefined ? due : pause + 100);
    }
    const { written, echoed, sent } = await echo(arrivals, 1);
    assert.equal(echoed.length, 200);
    const a = sent.indexOf(echoed[0]!);
    assert.equal(sent.slice(a, sent.indexOf(echoed.at(-1)!)).filter(isSilence).length, 0, 'no keep-alive put into the pauses');
    const delays = echoed.map((m, k) => m.at - written[k]!.at);
    for (const p of [1000, 2000, 3000]) {
      const after = echoed.findIndex((m, k) => written[k]!.at >= p + 600);
      assert.equal(delays[after], 0, `instant again 500 ms after the burst at ${p + 100} ms`);
    }
    assertPaced(sent);
  });

  test('input that starts in a burst (our loop stalled before the first frame was read): the echo catches up, no standing delay', async () => {
    // Keep-alive runs from the start; the caller's audio starts at 500 ms, but our loop stalls
    // from 480 to 600 ms, so the first six frames are read at once; then every 20 ms.
    const arrivals = Array.from({ length: 100 }, (_, k) => Math.max(600, 500 + k * 20));
    const { written, echoed, sent } = await echo(arrivals, 1, { stallAt: 480, stallMs: 120 });
    assert.equal(echoed.length, 100);
    const delays = echoed.map((m, k) => m.at - written[k]!.at);
    assert.ok(Math.max(...delays) > 0, 'the backlog could not all go at once');
    // The input was 100 ms late: owed, and made up at 0.25 x real time (about 400 ms).
    const after = written.findIndex((w) => w.at >= 600 + 4 * 100 + 60);
    assert.deepEqual(delays.slice(after), new Array(delays.length - after).fill(0), 'the echo is instant again');
    // The echo took the slots the stall left empty (480-600), no others: every audio sent,
    // silence included, within the lead of the wall clock since the call's first message.
    assertPaced(sent, 0, true);
  });

  test('input that starts in a burst after the late pass sent the call its first message, one silence frame: nothing before that message', async () => {
    // No keep-alive kind until the grace has passed; our loop stalls from 1 to 100 ms, so the
    // late pass sends the call's first message (silence for slot 100), then the five frames due
    // meanwhile are read at once.
    const arrivals = Array.from({ length: 60 }, (_, k) => Math.max(100, 10 + k * 20));
    const { sent, echoed } = await echo(arrivals, 1, { stallAt: 1, stallMs: 99, setup: { keepAliveKind: undefined } });
    assert.equal(echoed.length, 60);
    assert.ok(isSilence(sent[0]!) && sent[0]!.at === 100, "the first message is the late pass's silence");
    // The spurt may take that silence's slot (silence yields), not slots before it: all audio
    // stays within the lead, and one silence frame's tail, of the wall clock since it.
    assertPaced(sent, 0, true);
  });

  test('input that starts in a burst after keep-alive filled every slot (the network held it, not our loop): nothing early', async () => {
    const arrivals = Array.from({ length: 60 }, (_, k) => Math.max(600, 500 + k * 20));
    const { written, echoed, sent } = await echo(arrivals, 1);
    assert.equal(echoed.length, 60);
    // The burst cannot be made up without sending faster than real time over the silence
    // already sent: it plays at real time, and the user's audio too stays within the lead.
    assertPaced(sent);
    assert.ok(echoed.at(-1)!.at - written.at(-1)!.at > 0);
  });

  test('the first frames of a call are not held back when the call started late', async () => {
    const arrivals = Array.from({ length: 50 }, (_, k) => 300 + k * 20);
    const { written, echoed } = await echo(arrivals, 1);
    for (let k = 0; k < 50; k++) assert.equal(echoed[k]!.at, written[k]!.at);
  });
});

describe('Outbound: keep-alive', () => {
  test('fills every empty slot of an idle call and stops at close; off means no traffic', () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({}, clock);
    out.meter = new SendMeter();
    out.samplePeak = true;
    out.start();
    clock.advance(1000);
    assert.ok(sent.length >= 49 && sent.length <= 51, `${sent.length} frames in 1 s`);
    assert.ok(sent.every((s) => isSilence(s) && s.payload.length === 320 && s.kind === 0x10));
    // The monitor's meter: nothing late, and keep-alive silence is not the call's audio (no peak taken).
    assert.equal(out.meter.lateFrames, 0);
    assert.equal(out.samplePeak, true, 'a peak asked for is still owed after silence only');
    assert.equal(out.meter.peak, 0);
    for (let i = 1; i < sent.length; i++) assert.equal(sent[i]!.at - sent[i - 1]!.at, 20);
    out.close();
    const n = sent.length;
    clock.advance(1000);
    assert.equal(sent.length, n);

    const quiet = setup({ keepAlive: false }, new ManualClock(0));
    quiet.out.start();
    (quiet.clock as ManualClock).advance(1000);
    assert.equal(quiet.sent.length, 0);
  });

  test("uses the kind of the call's audio: the first inbound kind, never 0x10 on a slin16 call", () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAliveKind: undefined }, clock);
    out.start();
    clock.advance(3);
    out.noteInbound(0x12, 20, clock.now());
    clock.advance(500);
    assert.ok(sent.length >= 24);
    assert.ok(
      sent.every((s) => s.kind === 0x12 && s.payload.length === 640),
      'slin16 silence only',
    );
  });

  test('without inbound audio it falls back to the outbound kind after the grace period', () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAliveKind: undefined }, clock);
    out.start();
    clock.advance(30);
    assert.equal(sent.length, 0, 'waits for the first inbound frame');
    clock.advance(30);
    assert.ok(sent.length >= 1 && sent.every((s) => s.kind === 0x10));
  });

  test('after the writer stops, silence resumes once the grace period has passed, and follows its kind', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAliveKind: undefined }, clock);
    out.start();
    // The caller's audio keeps arriving (as it does on a call): the writer's silence is quiet time.
    const caller = (ms: number): void => {
      for (let t = 0; t < ms; t += 20) {
        out.noteInbound(0x10, 20, clock.now());
        clock.advance(20);
      }
    };
    caller(100);
    out.write(Buffer.alloc(640, 7), formatOfKind(0x12));
    caller(500);
    const i = sent.findIndex((s) => s.payload[0] === 7);
    const after = sent.slice(i + 1);
    assert.ok(after.length >= 20 && after.every((s) => isSilence(s) && s.kind === 0x12), 'silence in the kind last sent');
    assert.ok(after[0]!.at - sent[i]!.at <= 20 * 3 + 20, `first silence ${after[0]!.at - sent[i]!.at} ms after the audio`);
  });

  test('input that stops for good excuses the writer for inputWaitMs only: then keep-alive fills the slots', () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({}, clock);
    out.start();
    for (let k = 0; k < 10; k++) {
      out.noteInbound(0x10, 20, clock.now());
      out.write(Buffer.alloc(320, 5), formatOfKind(0x10)); // an echo
      clock.advance(20);
    }
    const lastEcho = sent.findLastIndex((s) => !isSilence(s));
    const inputEnd = clock.now(); // the last input frame ended here; no more comes
    clock.advance(600);
    const silence = sent.slice(lastEcho + 1);
    assert.ok(silence.length > 0 && silence.every(isSilence));
    const first = silence[0]!.at - inputEnd;
    assert.ok(
      first >= 200 && first <= 200 + 40 + 20,
      `keep-alive resumed ${first} ms after the input stopped (inputWaitMs 200 + grace 40)`,
    );
    for (let i = 1; i < silence.length; i++) assert.equal(silence[i]!.at - silence[i - 1]!.at, 20);
  });

  test('a streamed play that stalls longer than the grace period gets silence, then resumes on the wall clock', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({}, clock);
    out.start();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const done = out.play(
      (async function* () {
        yield Buffer.alloc(320 * 5, 1);
        await gate;
        yield Buffer.alloc(320 * 5, 2);
      })(),
      undefined,
    );
    await run(clock, 400);
    const ones = sent.filter((s) => s.payload[0] === 1).length;
    assert.equal(ones, 5);
    const lastOne = sent.findLastIndex((s) => s.payload[0] === 1);
    assert.ok(sent.slice(lastOne + 1).length >= 10 && sent.slice(lastOne + 1).every(isSilence), 'keep-alive during the stall');
    release();
    const at = clock.now();
    await run(clock, 300);
    assert.equal((await done).status, 'done');
    const twos = sent.filter((s) => s.payload[0] === 2);
    assert.equal(twos.length, 5);
    assert.ok(twos[0]!.at - at <= 20, 'resumes at once');
    assertPaced(sent);
  });
});

describe('Outbound: queue, flush, marks, plays', () => {
  test('writes and plays share one queue, in order; marks keep their place and fire once their audio has played', async () => {
    const clock = new ManualClock(0);
    const { out, sent, marks } = setup({ keepAlive: false }, clock);
    out.start();
    out.write(Buffer.alloc(320 * 4, 1), formatOfKind(0x10));
    const m1 = out.mark('after-write');
    const p = out.play(Buffer.alloc(320 * 3, 2), undefined);
    const m2 = out.mark('after-play');
    out.write(Buffer.alloc(320 * 2, 3), formatOfKind(0x10));
    await run(clock, 400);
    assert.deepEqual(
      sent.map((s) => s.payload[0]),
      [1, 1, 1, 1, 2, 2, 2, 3, 3],
    );
    assert.equal(await m1, true);
    assert.equal(await m2, true);
    assert.equal((await p).status, 'done');
    const t0 = sent[0]!.at;
    assert.deepEqual(
      marks.map(([n]) => n),
      ['after-write', 'after-play'],
    );
    assert.ok(marks[0]![2] - t0 >= 80, `after-write fired at ${marks[0]![2] - t0} ms: its 80 ms had played`);
    assert.ok(marks[1]![2] - t0 >= 140 && marks[1]![2] - t0 <= 160, `after-play at ${marks[1]![2] - t0} ms`);
  });

  test('a play resolves when its audio has played, not when its last frame was sent', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false }, clock);
    out.start();
    let doneAt = -1;
    void out.play(Buffer.alloc(320 * 10, 4), undefined).then(() => (doneAt = clock.now()));
    await run(clock, 400);
    const t0 = sent[0]!.at;
    assert.equal(sent.at(-1)!.at - t0, 180, 'last frame sent at 180 ms: queued audio leaves just in time');
    assert.ok(doneAt - t0 >= 200 && doneAt - t0 <= 220, `resolved at ${doneAt - t0} ms: when the 200 ms had played`);
  });

  test('flush() drops queued writes and plays at once; plays settle interrupted, marks not reached; keep-alive follows', async () => {
    const clock = new ManualClock(0);
    const { out, sent, marks } = setup({}, clock);
    out.start();
    await run(clock, 40);
    out.write(Buffer.alloc(320 * 50, 1), formatOfKind(0x10));
    const m = out.mark('after');
    const p = out.play(Buffer.alloc(320 * 10, 2), undefined);
    await run(clock, 100);
    const n = sent.length;
    const dropped = out.flush();
    assert.ok(dropped >= 1000 - 8 * 20 && dropped <= 1200, `dropped ${dropped} ms`);
    await run(clock, 200);
    assert.ok(sent.slice(n).every(isSilence), 'nothing queued leaves after the flush');
    assert.equal((await p).status, 'interrupted');
    assert.equal(await m, false);
    assert.deepEqual(
      marks.map(([name, reached]) => [name, reached]),
      [['after', false]],
    );
    assert.equal(out.stats.queuedMs, 0);
  });

  test('maxQueuedMs is the only reason to drop: the excess is counted and reported, the rest still plays', async () => {
    const clock = new ManualClock(0);
    const { out, sent, drops } = setup({ keepAlive: false, maxQueuedMs: 500 }, clock);
    out.start();
    assert.equal(out.write(Buffer.alloc(16 * 800, 1), formatOfKind(0x10)), false);
    assert.equal(drops.length, 1);
    assert.ok(Math.abs(drops[0]! - (800 - 500)) < 1e-6, `dropped ${drops[0]} ms`);
    assert.equal(out.stats.droppedWrites, 1);
    await run(clock, 700);
    assert.equal(sent.length * 20, 800 - drops[0]!, 'everything not dropped was sent');
  });

  test("a write that drops and returns false gets its 'drain' afterwards, never during the write", async () => {
    const clock = new ManualClock(0);
    const { out, drains } = setup({ keepAlive: false, maxQueuedMs: 30 }, clock);
    out.start();
    // 40 ms against a 30 ms cap: 10 ms dropped, and the pass inside the write sends the first frames.
    assert.equal(out.write(Buffer.alloc(16 * 40, 1), formatOfKind(0x10)), false);
    assert.deepEqual(drains, [], "no 'drain' before the false has reached the writer");
    await run(clock, 100);
    assert.equal(drains.length, 1, "then one 'drain'");
  });

  test('audio still queued when the call ends is counted in unsentMs', async () => {
    const clock = new ManualClock(0);
    const { out } = setup({ keepAlive: false }, clock);
    out.start();
    out.write(Buffer.alloc(16 * 1000), formatOfKind(0x10));
    await run(clock, 200);
    out.close();
    const { unsentMs } = out.stats;
    assert.ok(unsentMs >= 1000 - 260 && unsentMs <= 1000 - 200, `unsent ${unsentMs} ms`);
  });

  test('cuts odd-sized chunks of a streamed play into exact frames, byte for byte; only the very end is short', async () => {
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
    await run(clock, 300);
    assert.equal((await done).status, 'done');
    assert.deepEqual(Buffer.concat(sent.map((s) => s.payload)), data);
    assert.deepEqual(
      sent.map((s) => s.payload.length),
      [320, 320, 320, 320, 320, 100],
    );
    assertPaced(sent);
  });

  test("a play's result counts what it sent: frames inside a chunk and across chunks, a frame two plays share, a flush mid-chunk", async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false }, clock);
    out.start();
    // 10.5 frames in two chunks, then 3.5 frames: the 5th frame spans the first play's chunks,
    // the 11th holds the end of the first play and the start of the second.
    const first = out.play([pattern(320 * 4 + 100, 5), pattern(320 * 6 + 60, 6)], undefined);
    const second = out.play(pattern(320 * 3 + 160, 7), undefined);
    await run(clock, 400);
    const [a, b] = [await first, await second];
    assert.equal(sent.length, 14);
    assert.deepEqual([a.status, a.framesSent, a.sentMs], ['done', 11, 210]);
    assert.deepEqual([b.status, b.framesSent, b.sentMs], ['done', 4, 70]);
    const third = out.play(pattern(320 * 50, 8), undefined);
    await run(clock, 200);
    const n = sent.length - 14;
    assert.ok(n >= 5 && n < 50, `${n} frames of the third play sent`);
    out.flush();
    const c = await third;
    assert.deepEqual([c.status, c.framesSent, c.sentMs], ['interrupted', n, n * 20]);
  });

  test('plays join seamlessly; an odd byte at a chunk border is carried, a dangling final byte dropped', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false }, clock);
    const a = pattern(641, 3);
    const b = pattern(320, 4);
    out.start();
    void out.play([a.subarray(0, 101), a.subarray(101)], undefined);
    void out.play(b, undefined);
    await run(clock, 200);
    const joined = Buffer.concat(sent.map((s) => s.payload));
    assert.deepEqual(joined, Buffer.concat([a.subarray(0, 640), b]));
  });

  test('no drift over 10 simulated minutes even when every timer fires late', async () => {
    const manual = new ManualClock(0);
    let r = 7;
    const late: Clock = {
      now: () => manual.now(),
      setTimer: (cb, ms) => {
        r = (r * 48271) % 2147483647;
        return manual.setTimer(cb, ms + (r % 8));
      },
      clearTimer: (h) => manual.clearTimer(h),
    };
    const { out, sent } = setup({ keepAlive: false }, late);
    const frames = (10 * 60 * 1000) / 20;
    out.start();
    const done = out.play(Buffer.alloc(frames * 320, 1), undefined);
    await tick();
    manual.advance(10 * 60 * 1000 + 200);
    assert.equal((await done).status, 'done');
    assert.equal(sent.length, frames);
    const t0 = sent[0]!.at;
    let maxErr = 0;
    for (let k = 0; k < sent.length; k++) maxErr = Math.max(maxErr, Math.abs(sent[k]!.at - (t0 + 20 * k)));
    assert.ok(maxErr <= 8, `frame times stay on the 20 ms grid (max error ${maxErr} ms)`);
  });

  test('a timer that fires early waits again for its slot: no frame leaves more than the timer resolution before its pass', async () => {
    const manual = new ManualClock(0);
    // Every timer fires early by up to half its delay (at most 6 ms), as Node's whole-ms timers
    // do by up to ~1.4 ms.
    const early: Clock = {
      now: () => manual.now(),
      setTimer: (cb, ms) => manual.setTimer(cb, ms - Math.min(6, ms / 2)),
      clearTimer: (h) => manual.clearTimer(h),
    };
    const { out, sent } = setup({ keepAlive: false }, early);
    out.start();
    const done = out.play(Buffer.alloc(50 * 320, 1), undefined);
    await tick();
    manual.advance(50 * 20 + 100);
    assert.equal((await done).status, 'done');
    assert.equal(sent.length, 50);
    // The play started at 0, on the grid: frame k's pass is at 20 k ms.
    for (let k = 0; k < sent.length; k++) {
      const at = sent[k]!.at;
      assert.ok(at >= 20 * k - TIMER_RESOLUTION_MS && at <= 20 * k, `frame ${k} sent at ${at} ms, its pass at ${20 * k}`);
    }
  });

  test('after a 300 ms stall a play catches up at 1.25 x real time at most, losing nothing', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false }, clock);
    out.start();
    const done = out.play(Buffer.alloc(100 * 320, 1), undefined);
    await run(clock, 200);
    const before = sent.length;
    clock.stall(300);
    assert.ok(sent.length - before <= 3, `${sent.length - before} frames right after the stall`);
    await run(clock, 3000);
    assert.equal((await done).status, 'done');
    assert.equal(sent.length, 100, 'audio is later, never lost');
    assert.ok(out.stats.caughtUpFrames > 0);
    assertPaced(sent.slice(before - 1));
  });

  test('a slow pass: 40 calls, one pass takes 50 ms; the late calls send their overdue frames together, catch up at 1.25 x, lose nothing', async () => {
    const clock = new ManualClock(0);
    const scheduler = new FrameScheduler(clock);
    const N = 40;
    const FRAMES = 100;
    const STALL_AT = 400;
    const STALL_MS = 50;
    const sent: Sent[][] = Array.from({ length: N }, () => []);
    let stalled = false;
    const outs = Array.from({ length: N }, (_, i) => {
      const wire = (m: Buffer): boolean => {
        sent[i]!.push({ at: clock.now(), kind: m[0]!, payload: Buffer.from(m.subarray(3)) });
        // Halfway through the pass at 400 ms, a write takes 50 ms (a slow socket, a GC pause).
        if (!stalled && i === N / 2 && clock.now() >= STALL_AT) {
          stalled = true;
          clock.stall(STALL_MS);
        }
        return true;
      };
      const out = new PacedOutbound({ ...OPTIONS, keepAlive: false }, scheduler, quietEvents, {
        messageMemory: reusedMemory(),
        write: wire,
      });
      out.meter = new SendMeter();
      out.samplePeak = true;
      return out;
    });
    const data = outs.map((_, i) => pattern(FRAMES * 320, i + 1));
    for (const out of outs) out.start();
    const plays = outs.map((out, i) => out.play(data[i]!, undefined));
    await run(clock, FRAMES * 20 + 400);
    assert.ok(stalled);
    for (let i = 0; i < N; i++) {
      const list = sent[i]!;
      assert.equal((await plays[i]!).status, 'done');
      assert.deepEqual(Buffer.concat(list.map((m) => m.payload)), data[i], `call ${i}: every byte, in order`);
      assertPaced(list);
      // Frames sent at one instant: one per pass on time; after the slow pass, the overdue
      // frames together, never more than the lead (three).
      const together = new Map<number, number>();
      for (const m of list) together.set(m.at, (together.get(m.at) ?? 0) + 1);
      assert.ok(Math.max(...together.values()) <= 3, `call ${i}: ${Math.max(...together.values())} frames at once`);
      // Frame k's place is 20 k ms after the first. Before the slow pass and once the lateness
      // is made up (at 0.25 x real time: 4 x 50 ms, plus a pass), every frame leaves just in
      // time: within the frame before its place, not after it.
      const t0 = list[0]!.at;
      const back = STALL_AT + STALL_MS + 4 * STALL_MS + 20;
      let late = 0;
      for (let k = 0; k < list.length; k++) {
        const place = t0 + 20 * k;
        const at = list[k]!.at;
        if (at > place + 1e-6) late++;
        if (at < STALL_AT || at > back) {
          assert.ok(at <= place + 1e-6 && at > place - 20, `call ${i} frame ${k} sent at ${at}, its place at ${place}`);
        }
      }
      // Every call was late: those after the slow write in that pass, and all of them at the
      // next pass, which ran 30 ms after its slot and served the latest slot passed.
      assert.ok(late > 0, `call ${i} was late`);
      // The monitor's meter: the late frames, none of the others; the peak asked for, taken once.
      const meter = outs[i]!.meter!;
      assert.ok(meter.lateFrames > 0 && meter.lateFrames < list.length / 2, `call ${i}: ${meter.lateFrames} frames late`);
      assert.ok(meter.maxLateMs >= 20, `call ${i}: the meter's worst lateness ${meter.maxLateMs} ms`);
      assert.ok(meter.lateP99(list.length) >= 10, `call ${i}: lateness p99 ${meter.lateP99(list.length)} ms`);
      assert.equal(outs[i]!.samplePeak, false);
      assert.ok(meter.peak > 0.5, `call ${i}: peak ${meter.peak}`);
    }
  });

  test('abort via signal drops only that play', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false }, clock);
    out.start();
    const ac = new AbortController();
    const a = out.play(Buffer.alloc(20 * 320, 1), undefined, ac.signal);
    const b = out.play(Buffer.alloc(2 * 320, 2), undefined);
    await run(clock, 60);
    ac.abort();
    await run(clock, 200);
    const ra = await a;
    assert.equal(ra.status, 'interrupted');
    assert.equal(ra.reason, 'abort');
    assert.equal((await b).status, 'done');
    assert.equal(sent.filter((s) => s.payload[0] === 2).length, 2);
    const pre = new AbortController();
    pre.abort();
    assert.equal((await out.play(Buffer.alloc(320), undefined, pre.signal)).status, 'interrupted');
  });

  test('flush frees the queue even when the playing source is stuck waiting (a stalled TTS stream)', async () => {
    const clock = new ManualClock(0);
    const { out, sent } = setup({ keepAlive: false }, clock);
    out.start();
    const stuck = out.play(
      (async function* () {
        yield Buffer.alloc(320, 1);
        await new Promise(() => {});
      })(),
      undefined,
    );
    await run(clock, 40);
    out.flush();
    assert.equal((await stuck).status, 'interrupted');
    const next = out.play(Buffer.alloc(640, 2), undefined);
    await run(clock, 200);
    assert.equal((await next).status, 'done');
    assert.equal(sent.filter((s) => s.payload[0] === 2).length, 2);
  });

  test('the shared scheduler serves many members with one timer, one wake-up per frame', () => {
    const clock = new ManualClock(0);
    const scheduler = new FrameScheduler(clock);
    const members = Array.from(
      { length: 50 },
      () => new PacedOutbound(OPTIONS, scheduler, quietEvents, { messageMemory: reusedMemory(), write: () => true }),
    );
    for (const m of members) m.start();
    assert.equal(clock.pendingTimers, 1);
    clock.advance(1000);
    assert.ok(scheduler.stats.ticks >= 49 && scheduler.stats.ticks <= 51, `${scheduler.stats.ticks} ticks`);
    assert.ok(members.every((m) => m.stats.silenceFrames >= 49));
  });
});
