/**
 * chan_websocket's outbound policy under a ManualClock, against a scripted Asterisk (a fake
 * MediaSink): the lead, XOFF/XON, `sent` at the playout estimate, the MARK_MEDIA fallback and
 * flush accounting with and without the STATUS answer. No sockets: every instant is exact.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { ManualClock } from '#lib/index.js';
import { parseFormat } from '#lib/audio/format.js';
import { BufferedOutbound, type BufferedOutboundOptions, type MediaSink } from '#lib/outbound/buffered.js';
import type { OutboundEvents } from '#lib/outbound/policy.js';
import type { MediaStatus } from '#lib/protocol/websocket.js';

const SLIN8K = parseFormat('slin');
const FRAME = 320; // 20 ms of slin at 8 kHz

/** What Asterisk would see, and lets a test answer GET_STATUS when it chooses. */
class ScriptedAsterisk implements MediaSink {
  frames: Buffer[] = [];
  marks: Array<{ id: string; frames: number }> = [];
  commands: string[] = [];
  xoff = false;
  writable = true;
  readonly pendingBytes = 0;
  readonly stats = { framesOut: 0 };
  #status: Array<(s: MediaStatus) => void> = [];

  sendAudio(audio: Uint8Array): boolean {
    assert.equal(audio.length % FRAME, 0, 'whole frames only');
    for (let i = 0; i < audio.length; i += FRAME) this.frames.push(Buffer.from(audio.subarray(i, i + FRAME)));
    this.stats.framesOut = this.frames.length;
    return true;
  }
  flushPending(): boolean {
    return true;
  }
  markMedia(correlationId: string): void {
    this.commands.push('MARK_MEDIA');
    this.marks.push({ id: correlationId, frames: this.frames.length });
  }
  reportQueueDrained(): void {
    this.commands.push('REPORT_QUEUE_DRAINED');
  }
  getStatus(): Promise<MediaStatus> {
    this.commands.push('GET_STATUS');
    return new Promise((resolve) => this.#status.push(resolve));
  }
  flushMedia(): void {
    this.commands.push('FLUSH_MEDIA');
  }
  /** Answers the oldest GET_STATUS with Asterisk's queue length. */
  answerStatus(queueLength: number): void {
    const answer = this.#status.shift();
    assert.ok(answer, 'a GET_STATUS to answer');
    answer({ channelId: 'c', queueLength, xonLevel: 800, xoffLevel: 900, queueFull: false, bulkMedia: false, mediaPaused: false });
  }
}

interface Sent {
  payload: Buffer;
  at: number;
  latenessMs: number;
}

function setup(options: BufferedOutboundOptions & { maxQueuedMs?: number } = {}) {
  const clock = new ManualClock(1000);
  const sink = new ScriptedAsterisk();
  const sent: Sent[] = [];
  const warnings: string[] = [];
  const drains: number[] = [];
  const events: OutboundEvents = {
    sent: (payload, _format, at, latenessMs) => sent.push({ payload, at, latenessMs }),
    mark: () => {},
    drain: () => drains.push(clock.now()),
    dropped: () => {},
    warning: (code) => warnings.push(code),
  };
  const out = new BufferedOutbound(
    { wire: SLIN8K, ptime: 20, prefetchMs: 200, highWaterMarkMs: 1000, maxQueuedMs: 60_000, ...options },
    sink,
    clock,
    events,
  );
  out.reportSent = true;
  return { clock, sink, out, sent, warnings, drains };
}

/** Advances the clock in 1 ms steps, letting promise callbacks run in between. */
async function run(clock: ManualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t++) {
    clock.advance(1);
    await tick();
  }
}

function pattern(frames: number): Buffer {
  const b = Buffer.alloc(frames * FRAME);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

describe('BufferedOutbound (chan_websocket) under a ManualClock', () => {
  test('keeps at most leadMs in Asterisk, sends the rest as playout frees room, every byte in order', async () => {
    const { clock, sink, out } = setup({ leadMs: 200, completion: 'clock' });
    const data = pattern(50); // 1 s
    out.write(data, SLIN8K);
    assert.equal(sink.frames.length, 10, 'the lead: 200 ms at once');
    await run(clock, 100);
    assert.equal(sink.frames.length, 15, 'then one frame per 20 ms of playout');
    await run(clock, 1000);
    assert.deepEqual(Buffer.concat(sink.frames), data);
  });

  test("a write that drops and returns false gets its 'drain' afterwards, never during the write", async () => {
    const { clock, out, drains } = setup({ maxQueuedMs: 100 });
    // 160 ms against a 100 ms cap: 60 ms dropped; the write itself feeds Asterisk its lead at once.
    assert.equal(out.write(pattern(8), SLIN8K), false);
    assert.deepEqual(drains, [], "no 'drain' before the false has reached the writer");
    await run(clock, 300);
    assert.equal(drains.length, 1, "then one 'drain'");
  });

  test('XOFF stops sending at once, XON (resume) sends on; nothing is lost', async () => {
    const { clock, sink, out } = setup({ leadMs: 1000, completion: 'clock' });
    sink.xoff = true;
    const data = pattern(30);
    out.write(data, SLIN8K);
    assert.equal(sink.frames.length, 0, 'nothing while XOFF');
    await run(clock, 200);
    assert.equal(sink.frames.length, 0, 'still nothing: only XON wakes the policy');
    assert.equal(out.queuedMs, 600);
    sink.xoff = false;
    out.resume();
    assert.equal(sink.frames.length, 30);
    assert.deepEqual(Buffer.concat(sink.frames), data);
  });

  test('sent fires when the playout estimate reaches each frame, at its timeline instant, in order', async () => {
    const { clock, out, sent } = setup({ leadMs: 1000, completion: 'clock' });
    const t0 = clock.now();
    out.write(pattern(10), SLIN8K);
    clock.advance(0);
    assert.equal(sent.length, 1, 'the first frame plays now; the rest are still in Asterisk');
    await run(clock, 95);
    assert.equal(sent.length, 5, 'frames at 0, 20, 40, 60, 80 ms');
    await run(clock, 200);
    assert.deepEqual(
      sent.map((s) => s.at - t0),
      [0, 20, 40, 60, 80, 100, 120, 140, 160, 180],
    );
    assert.ok(sent.every((s) => s.latenessMs === 0));
    assert.deepEqual(Buffer.concat(sent.map((s) => s.payload)), pattern(10));
  });

  test('marks answered: completion turns from probing to marks; a play completes on its MEDIA_MARK_PROCESSED', async () => {
    const { clock, sink, out } = setup({ leadMs: 1000, markEveryFrames: 1000 });
    assert.equal(out.stats.completion, 'probing');
    let done = false;
    const play = out.play(pattern(10), undefined).then((r) => ((done = true), r));
    await run(clock, 1);
    assert.equal(sink.marks.length, 1, 'a mark right after the play');
    await run(clock, 500);
    assert.equal(done, false, 'no answer: the play waits (within markTimeoutMs it is not yet a fallback)');
    out.markProcessed(sink.marks[0]!.id);
    assert.equal(out.stats.completion, 'marks');
    assert.equal((await play).status, 'done');
  });

  test('MARK_MEDIA unanswered (Asterisk before 20.18/22.8/23.2): one MARKS_UNSUPPORTED warning, then plays complete by the clock', async () => {
    const { clock, sink, out, warnings } = setup({ leadMs: 1000, markTimeoutMs: 300, markEveryFrames: 1000 });
    const t0 = clock.now();
    let doneAt = -1;
    const first = out.play(pattern(10), undefined).then((r) => ((doneAt = clock.now()), r)); // 200 ms
    await run(clock, 400);
    assert.equal(doneAt, -1, 'still waiting: the mark is due at 200 ms, the fallback at 200 + 300');
    assert.deepEqual(warnings, []);
    await run(clock, 200);
    assert.deepEqual(warnings, ['MARKS_UNSUPPORTED']);
    assert.equal(out.stats.completion, 'clock');
    assert.equal((await first).status, 'done');
    // The play's first frame leaves a microtask after play() (t0 or t0 + 1 ms): due 200 ms later, fallback 300 ms after that.
    assert.ok(doneAt - t0 >= 500 && doneAt - t0 <= 501, `settled the moment the fallback switched, at ${doneAt - t0} ms`);
    const marksBefore = out.stats.marksSent;

    const t1 = clock.now();
    let secondAt = -1;
    const second = out.play(pattern(10), undefined).then((r) => ((secondAt = clock.now()), r));
    await run(clock, 300);
    assert.equal((await second).status, 'done');
    assert.ok(secondAt - t1 >= 200 && secondAt - t1 <= 201, `the second play completed by the clock after ${secondAt - t1} ms`);
    assert.equal(out.stats.marksSent, marksBefore, 'no more MARK_MEDIA once in clock mode');
    assert.ok(sink.commands.includes('REPORT_QUEUE_DRAINED'), 'QUEUE_DRAINED asked for as the backstop');
    assert.deepEqual(warnings, ['MARKS_UNSUPPORTED'], 'warned once');
  });

  test('QUEUE_DRAINED settles every outstanding completion in clock mode', async () => {
    const { clock, out } = setup({ leadMs: 1000, completion: 'clock' });
    const marked = out.mark('end');
    out.write(pattern(5), SLIN8K);
    const after = out.mark('after');
    await run(clock, 1);
    let reached: boolean | undefined;
    void after.then((r) => (reached = r));
    out.queueDrained(); // Asterisk played faster than our estimate
    await tick();
    assert.equal(await marked, true);
    assert.equal(reached, true);
  });

  test('flush counts what Asterisk still held by the estimate, then corrects flushedMs by the STATUS answer', async () => {
    const { clock, sink, out } = setup({ leadMs: 1000, completion: 'clock' });
    out.write(pattern(100), SLIN8K); // 2 s: 1 s in Asterisk, 1 s with us
    await run(clock, 300); // 15 frames played by the estimate
    const framesOut = sink.frames.length;
    const ours = out.queuedMs;
    const dropped = out.flush();
    assert.deepEqual(
      sink.commands.slice(-2),
      ['GET_STATUS', 'FLUSH_MEDIA'],
      'GET_STATUS goes first: its answer is the queue the flush drops',
    );
    assert.equal(dropped, ours + (framesOut - 15) * 20, 'ours, plus what the estimate says Asterisk held');
    assert.equal(out.stats.flushedMs, dropped);
    sink.answerStatus(40); // Asterisk really held 40 frames (it had played a little less than we thought)
    await tick();
    await tick();
    assert.equal(out.stats.flushedMs, ours + 40 * 20, 'corrected to what Asterisk says it dropped');
    assert.equal(out.queuedMs, 0);
  });

  test('an interrupted play reports what the caller heard: exact with STATUS, by the estimate when it never comes', async () => {
    for (const answered of [true, false]) {
      const { clock, sink, out } = setup({ leadMs: 1000, completion: 'clock', statusTimeoutMs: 500 });
      const play = out.play(pattern(100), undefined); // 2 s
      await run(clock, 410); // 20 frames heard by the estimate (the play starts a microtask late)
      out.flush();
      if (answered)
        sink.answerStatus(sink.frames.length - 23); // Asterisk had played 23
      else await run(clock, 500); // no answer: the estimate stands
      const r = await play;
      assert.equal(r.status, 'interrupted');
      assert.equal(r.sentMs, answered ? 23 * 20 : 20 * 20, answered ? 'by STATUS' : 'by the estimate');
    }
  });
});
