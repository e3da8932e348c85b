// The recorder's timeline (src/cli/timeline.ts): where each side's audio is placed on the call's
// wall clock, under the injected times the recorder would pass.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CallTimeline } from '#lib/cli/timeline.js';

const RATE = 8000;
/** 20 ms of 8 kHz slin whose samples are all `value` (never 0, so silence is told apart). */
const frame = (value: number): Buffer => Buffer.alloc(320, 0).fill(Buffer.from(Int16Array.of(value).buffer));

/** The side's samples as runs: `['audio', ms]` and `['silence', ms]`. */
function runs(slin: Buffer): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (let i = 0; i + 1 < slin.length; i += 2) {
    const kind = slin.readInt16LE(i) === 0 ? 'silence' : 'audio';
    const last = out.at(-1);
    if (last?.[0] === kind) last[1] += 1000 / RATE;
    else out.push([kind, 1000 / RATE]);
  }
  return out.map(([k, ms]) => [k, Math.round(ms * 1000) / 1000]);
}

/** Channel `ch` (0: left, the caller) of interleaved stereo slin. */
function channelOf(stereo: Buffer, ch: 0 | 1): Buffer {
  const out = Buffer.alloc(stereo.length / 2);
  for (let i = 2 * ch; i < stereo.length; i += 4) stereo.copy(out, (i - 2 * ch) / 2, i, i + 2);
  return out;
}

/** The values of the side's 20 ms frames that are audio, in order. */
function frameValues(slin: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < slin.length; i += 320) {
    const v = slin.readInt16LE(i);
    if (v !== 0) out.push(v);
  }
  return out;
}

describe('the recording timeline', () => {
  test('audio in real time, a little jittery, is placed back to back', () => {
    const t = new CallTimeline(RATE, 1000);
    for (let k = 0; k < 50; k++) t.push(0, frame(k + 1), 1000 + 20 * (k + 1) + (k % 3) * 5);
    const out = t.takeMono(0, true);
    assert.deepEqual(runs(out), [['audio', 1000]]);
    assert.deepEqual(
      frameValues(out),
      Array.from({ length: 50 }, (_, k) => k + 1),
    );
  });

  test('a pause in the audio (nothing sent for 200 ms) is kept as 200 ms of silence', () => {
    const t = new CallTimeline(RATE, 0);
    let at = 0;
    for (let k = 0; k < 10; k++) t.push(0, frame(1), (at += 20));
    at += 200;
    for (let k = 0; k < 10; k++) t.push(0, frame(2), (at += 20));
    assert.deepEqual(runs(t.takeMono(0, true)), [
      ['audio', 200],
      ['silence', 200],
      ['audio', 200],
    ]);
  });

  test('a stall followed by a burst puts no silence in, however the burst is split into reads', () => {
    for (const [first, gapMs] of [
      [1, 5],
      [1, 55],
      [3, 0.2],
      [15, 0],
    ] as const) {
      const t = new CallTimeline(RATE, 0);
      let k = 0;
      for (; k < 10; k++) t.push(0, frame(k + 1), 20 * (k + 1));
      // 300 ms with nothing read; then 15 frames that were due arrive as `first` and the rest
      // `gapMs` later, and real time goes on.
      const resume = 20 * 10 + 300;
      for (let i = 0; i < first; i++, k++) t.push(0, frame(k + 1), resume);
      for (; k < 25; k++) t.push(0, frame(k + 1), resume + gapMs);
      for (; k < 50; k++) t.push(0, frame(k + 1), Math.max(20 * (k + 1), resume + gapMs));
      const out = t.takeMono(0, true);
      assert.deepEqual(runs(out), [['audio', 1000]], `first read ${first} frames, the rest ${gapMs} ms later`);
      assert.deepEqual(
        frameValues(out),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
    }
  });

  test('a burst that only partly catches up leaves as much silence as it stays late', () => {
    const t = new CallTimeline(RATE, 0);
    let at = 0;
    for (let k = 0; k < 10; k++) t.push(0, frame(1), (at += 20));
    // 300 ms of nothing, then a burst of 100 ms: the other 200 ms were a pause.
    at += 300;
    for (let k = 0; k < 5; k++) t.push(0, frame(2), at);
    for (let k = 0; k < 10; k++) t.push(0, frame(3), (at += 20));
    assert.deepEqual(runs(t.takeMono(0, true)), [
      ['audio', 200],
      ['silence', 200],
      ['audio', 300],
    ]);
  });

  test('a second stall while a gap is judged starts the judging again', () => {
    // 80 ms late, then 280 ms with nothing read, then everything that was due: no silence.
    const t = new CallTimeline(RATE, 0);
    let k = 0;
    for (; k < 8; k++) t.push(0, frame(k + 1), 20 * (k + 1));
    t.push(0, frame(++k), 260);
    for (; k < 25; k++) t.push(0, frame(k + 1), 540);
    for (; k < 50; k++) t.push(0, frame(k + 1), Math.max(20 * (k + 1), 540));
    const out = t.takeMono(0, true);
    assert.deepEqual(runs(out), [['audio', 1000]]);
    assert.deepEqual(
      frameValues(out),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );

    // A 200 ms pause, then a 300 ms stall while it is judged, then a burst: the pause stays.
    const p = new CallTimeline(RATE, 0);
    let at = 0;
    for (let i = 0; i < 10; i++) p.push(0, frame(1), (at += 20));
    p.push(0, frame(2), (at += 220));
    at += 300;
    for (let i = 0; i < 15; i++) p.push(0, frame(2), at);
    for (let i = 0; i < 10; i++) p.push(0, frame(3), (at += 20));
    assert.deepEqual(runs(p.takeMono(0, true)), [
      ['audio', 200],
      ['silence', 200],
      ['audio', 520],
    ]);
  });

  test('pauses close together each stay where they were', () => {
    // 200 ms, a 200 ms pause, one frame, a 300 ms pause, then 600 ms.
    const t = new CallTimeline(RATE, 0);
    let at = 0;
    for (let k = 0; k < 10; k++) t.push(0, frame(1), (at += 20));
    t.push(0, frame(2), (at += 220));
    at += 300;
    for (let k = 0; k < 30; k++) t.push(0, frame(3), (at += 20));
    assert.deepEqual(runs(t.takeMono(0, true)), [
      ['audio', 200],
      ['silence', 200],
      ['audio', 20],
      ['silence', 300],
      ['audio', 600],
    ]);

    // DTMF-like: five times a 100 ms pause then 40 ms of audio.
    const d = new CallTimeline(RATE, 0);
    at = 0;
    for (let k = 0; k < 10; k++) d.push(0, frame(1), (at += 20));
    for (let i = 0; i < 5; i++) {
      at += 100;
      d.push(0, frame(2), (at += 20));
      d.push(0, frame(2), (at += 20));
    }
    for (let k = 0; k < 30; k++) d.push(0, frame(3), (at += 20));
    assert.deepEqual(runs(d.takeMono(0, true)), [
      ['audio', 200],
      ...Array.from({ length: 4 }, () => [
        ['silence', 100],
        ['audio', 40],
      ]).flat(),
      ['silence', 100],
      ['audio', 640],
    ]);
  });

  test('a sender faster than real time: what runs more than maxHoldMs ahead is dropped and counted', () => {
    // The caller sends 40 ms every 20 ms for 5 s; our side is real time; written every 200 ms.
    const t = new CallTimeline(RATE, 0);
    let writtenMs = 0;
    for (let at = 20; at <= 5000; at += 20) {
      t.push(0, frame(1), at);
      t.push(0, frame(1), at);
      t.push(1, frame(5), at);
      if (at % 200 === 0) {
        t.advance(at);
        writtenMs += t.takeStereo().length / 32;
        assert.equal(writtenMs, at, 'both sides written up to the clock');
      }
    }
    assert.equal(t.droppedMs(0), 10_000 - 5000 - 1000, 'the caller side is 1 s ahead at most');
    assert.equal(t.droppedMs(1), 0);
  });

  test('a burst while a gap is judged is held to maxHoldMs ahead too', () => {
    // A late frame opens a gap; 5 s of audio follow within 50 ms.
    const t = new CallTimeline(RATE, 0);
    t.push(0, frame(1), 100);
    for (let k = 0; k < 250; k++) t.push(0, frame(2), 150);
    assert.equal(t.droppedMs(0), 20 + 5000 - 1150, 'all but what reaches 1 s past the clock (150 ms)');
    const out = t.takeMono(0, true);
    assert.equal(out.length / 16, 1150);
  });

  test('a stall longer than maxHoldMs, then a burst: the sides stay within maxHoldMs of each other', () => {
    // Both sides real time, but the caller's audio from 2 to 5 s arrives at 5 s.
    const t = new CallTimeline(RATE, 0);
    let stereo = Buffer.alloc(0);
    for (let at = 20; at <= 8000; at += 20) {
      if (at <= 2000 || at >= 5000) {
        const due = at === 5000 ? 151 : 1;
        for (let i = 0; i < due; i++) t.push(0, frame(1), at);
      }
      t.push(1, frame(5), at);
      if (at % 200 === 0) {
        t.advance(at);
        stereo = Buffer.concat([stereo, t.takeStereo()]);
      }
    }
    stereo = Buffer.concat([stereo, t.takeStereo(true)]);
    // 2 s; silence up to 1 s behind the clock when the burst came (3.8 s at 4.8 s); then the
    // burst up to 1 s ahead of the clock (6 s at 5 s), the 820 ms beyond dropped; then real time.
    assert.deepEqual(runs(channelOf(stereo, 0)), [
      ['audio', 2000],
      ['silence', 1800],
      ['audio', 5200],
    ]);
    assert.equal(t.droppedMs(0), 820);
    // Our side: 8 s of audio, then the 1 s the caller's side is ahead.
    assert.deepEqual(runs(channelOf(stereo, 1)), [
      ['audio', 8000],
      ['silence', 1000],
    ]);
  });

  test('a sender that stalls before every frame is held at most maxHoldMs at a time, and stays in step', () => {
    // One 20 ms frame every 100 ms for 5 s: every frame comes after a stall.
    const t = new CallTimeline(RATE, 0);
    let pushedMs = 0;
    let audioOutMs = 0;
    let lengthMs = 0;
    const take = (final: boolean): void => {
      const out = t.takeMono(0, final);
      lengthMs += out.length / 16;
      audioOutMs += runs(out).reduce((ms, [kind, d]) => (kind === 'audio' ? ms + d : ms), 0);
    };
    for (let at = 20; at <= 5000; at += 100) {
      t.push(0, frame(1), at);
      pushedMs += 20;
      take(false);
      // Held: at most the frames of the last maxHoldMs (1 s), and the one that ends the hold.
      assert.ok(pushedMs - audioOutMs <= 20 * 11, `at ${at} ms, ${pushedMs - audioOutMs} ms of audio held`);
    }
    take(true);
    assert.equal(audioOutMs, pushedMs, 'every frame is placed');
    // Each hold's gap is judged by its least lateness: the side is never ahead of the clock, and
    // ends within a hold of it.
    assert.ok(lengthMs <= 4920 && lengthMs >= 4920 - 1100, `the side is ${lengthMs} ms long after 4920 ms`);
  });

  test('advance: a side without audio is filled up to maxHoldMs behind the clock, so the other is written', () => {
    const t = new CallTimeline(RATE, 0);
    for (let k = 0; k < 150; k++) t.push(1, frame(5), 20 * (k + 1));
    assert.equal(t.takeStereo().length, 0, 'the caller has sent nothing yet');
    t.advance(3000);
    const out = t.takeStereo();
    assert.equal(out.length / 4 / 8, 2000, 'both sides up to 1 s behind the clock');
    assert.deepEqual(runs(channelOf(out, 0)), [['silence', 2000]]);
    // Audio from the caller after that is judged against where its side ends.
    for (let k = 0; k < 10; k++) t.push(0, frame(2), 3000 + 20 * (k + 1));
    t.push(1, frame(5), 3200);
    assert.deepEqual(runs(channelOf(t.takeStereo(true), 0)), [
      ['silence', 1000],
      ['audio', 200],
    ]);
  });

  test('advance at the end: every gap is judged and both sides reach the end of the call', () => {
    const t = new CallTimeline(RATE, 0);
    for (let k = 0; k < 50; k++) t.push(1, frame(5), 20 * (k + 1));
    for (let k = 0; k < 10; k++) t.push(0, frame(1), 20 * (k + 1));
    t.push(0, frame(2), 600);
    t.advance(1500, true);
    assert.deepEqual(runs(t.takeMono(0)), [
      ['audio', 200],
      ['silence', 380],
      ['audio', 20],
      ['silence', 900],
    ]);
    assert.deepEqual(runs(t.takeMono(1)), [
      ['audio', 1000],
      ['silence', 500],
    ]);
  });

  test('held audio waits for the gap to be judged; a final take places it', () => {
    const mono = new CallTimeline(RATE, 0);
    mono.push(0, frame(1), 20);
    mono.push(0, frame(2), 500);
    assert.deepEqual(runs(mono.takeMono(0)), [['audio', 20]], 'the late frame is held');
    assert.deepEqual(runs(mono.takeMono(0, true)), [
      ['silence', 460],
      ['audio', 20],
    ]);

    const stereo = new CallTimeline(RATE, 0);
    stereo.push(0, frame(1), 20);
    stereo.push(1, frame(5), 20);
    stereo.push(0, frame(2), 500);
    stereo.push(1, frame(6), 40);
    assert.equal(stereo.takeStereo().length, 320 * 2, 'only what both sides have: 20 ms');
    assert.deepEqual(runs(channelOf(stereo.takeStereo(true), 0)), [
      ['silence', 460],
      ['audio', 20],
    ]);
  });
});
