/**
 * The pacer on its own: pure arithmetic, no clock. Its two guarantees are checked on random
 * sequences of sends, and each parameter on the case it exists for.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEFAULT_PACING, Pacer } from '#lib/outbound/pacer.js';

const F = 20;
const pacer = (over: Partial<typeof DEFAULT_PACING> = {}): Pacer => new Pacer({ frameMs: F, ...DEFAULT_PACING, ...over });

/** Sends a message of `d` ms at `now` if admitted; returns whether it went. */
function offer(p: Pacer, d: number, now: number, log: Array<[number, number]>): boolean {
  if (!p.admits(d, now)) return false;
  p.commit(d, now);
  log.push([now, d]);
  return true;
}

describe('Pacer', () => {
  test('property: never more than the lead ahead of the wall clock; any window at most catchUpRate x window + lead (input in bursts too)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            gap: fc.integer({ min: 0, max: 120 }),
            frames: fc.integer({ min: 1, max: 8 }),
            rest: fc.boolean(),
            input: fc.integer({ min: 0, max: 8 }),
          }),
          {
            minLength: 1,
            maxLength: 80,
          },
        ),
        (steps) => {
          const p = pacer();
          const log: Array<[number, number]> = [];
          let now = 0;
          for (const s of steps) {
            now += s.gap;
            // Input read in a burst, each message answered by a frame (an echo), then the rest written.
            for (let i = 0; i < s.input; i++) {
              p.noteInput(F, now);
              offer(p, F, now, log);
            }
            for (let i = 0; i < s.frames; i++) offer(p, F, now, log);
            if (s.rest) p.rest(now);
          }
          const t0 = log[0]?.[0] ?? 0;
          let total = 0;
          for (const [t, d] of log) {
            total += d;
            assert.ok(total <= t - t0 + 3 * F + 1e-6, `ahead: ${total} ms sent by ${t - t0} ms`);
          }
          for (let i = 0; i < log.length; i++) {
            let sum = 0;
            for (let j = i; j < log.length; j++) {
              sum += log[j]![1];
              assert.ok(sum <= 1.25 * (log[j]![0] - log[i]![0]) + 3 * F + 1e-6, `burst: ${sum} ms in ${log[j]![0] - log[i]![0]} ms`);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('property: restsFrom bounds rest() and moves earlier only when noteInput says it moved the timeline back', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            gap: fc.integer({ min: 0, max: 60 }),
            frames: fc.integer({ min: 0, max: 4 }),
            input: fc.integer({ min: 0, max: 6 }),
            restAt: fc.integer({ min: 0, max: 120 }),
          }),
          { minLength: 1, maxLength: 80 },
        ),
        (steps) => {
          const p = pacer();
          const log: Array<[number, number]> = [];
          let now = 0;
          for (const s of steps) {
            now += s.gap;
            for (let i = 0; i < s.input; i++) {
              const before = p.restsFrom;
              if (!p.noteInput(F, now))
                assert.ok(p.restsFrom >= before, `noteInput said nothing moved, yet restsFrom went from ${before} to ${p.restsFrom}`);
              const sent = p.restsFrom;
              offer(p, F, now, log);
              assert.ok(p.restsFrom >= sent, 'sending never makes the timeline run dry sooner');
            }
            for (let i = 0; i < s.frames; i++) offer(p, F, now, log);
            const quiet = now + s.restAt;
            const wasIdle = p.idle;
            const bound = p.restsFrom;
            const idle = p.rest(quiet);
            if (!wasIdle && quiet < bound) assert.equal(idle, false, `turned idle at ${quiet}, before restsFrom ${bound}`);
            if (!wasIdle && quiet >= bound) assert.equal(idle, true, `still busy at ${quiet}, after restsFrom ${bound}`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a talk spurt after a late keep-alive frame: the frame after the lead leaves at the next slot, not one later', () => {
    const p = pacer();
    // The pass for slot 0 runs 6 ms late and sends keep-alive silence.
    assert.ok(p.admits(F, 6, 0, true));
    p.commit(F, 6, 0, true);
    // Audio arrives at 10 ms (between passes: the lead is measured from slot 0) over the silence's tail.
    const sent: number[] = [];
    for (let i = 0; i < 2; i++) {
      if (p.admits(F, 10, 10, false, 0)) {
        p.commit(F, 10, 10, false);
        sent.push(10);
      }
    }
    assert.deepEqual(sent, [10, 10], 'the lead lets two frames go over the tail');
    // The pass for slot 20 runs on time: the third frame is due and must leave now.
    assert.ok(p.admits(F, 20, 20, false, 20), 'the third frame leaves at the next slot (a late silence frame holds nothing back)');
  });

  test('lead: a long backlog offered at once gets leadFrames frames now, then one per frame', () => {
    const p = pacer();
    const log: Array<[number, number]> = [];
    for (let i = 0; i < 10; i++) offer(p, F, 100, log);
    assert.equal(log.length, 3, 'three frames at once (the one due and two ahead)');
    for (let t = 101; t <= 200; t++) offer(p, F, t, log);
    assert.deepEqual(
      log.slice(3).map(([t]) => t),
      [120, 140, 160, 180, 200],
      'then each frame when its predecessor two ahead is due',
    );
  });

  test('quiet time is not credit: after rest() declares the call idle, audio starts on the wall clock', () => {
    const p = pacer();
    const log: Array<[number, number]> = [];
    offer(p, F, 0, log);
    assert.equal(p.idle, false);
    assert.equal(p.rest(30), false, "dry for 10 ms: still the writer's lateness (grace is two frames)");
    assert.equal(p.rest(60), true, 'dry for two frames: idle');
    // 4 s later a writer offers 1 s at once: it may not use the 4 s as credit.
    for (let i = 0; i < 50; i++) offer(p, F, 4000, log);
    assert.equal(log.length, 1 + 3, 'only the lead goes at once');
    assert.equal(p.startAt(4000), 4060);
  });

  test('lateness owed within the grace period is made up at catchUpRate, not forgotten', () => {
    const p = pacer();
    const log: Array<[number, number]> = [];
    offer(p, F, 0, log); // timeline to 20
    // The next input comes 35 ms late (within grace: not rested): four frames arrive at 55.
    assert.equal(p.startAt(55), 20, 'the write starts where the audio ends: the writer owes 35 ms');
    for (let i = 0; i < 4; i++) offer(p, F, 55, log);
    assert.equal(log.length, 4, 'three at once (the burst of the catch-up limiter)');
    assert.equal(p.admits(F, 55 + 16 - 1), false);
    assert.equal(p.admits(F, 55 + 16), true, 'the fourth after 20 ms / 1.25');
  });

  test('maxLatenessMs: lateness beyond it is forgiven and counted, not made up', () => {
    const p = new Pacer({ frameMs: F, ...DEFAULT_PACING, maxLatenessMs: 100 });
    const log: Array<[number, number]> = [];
    offer(p, F, 0, log);
    // A 500 ms stall while busy (rest() is never told the call was quiet).
    assert.equal(p.startAt(520), 420);
    offer(p, F, 520, log);
    assert.ok(Math.abs(p.forgottenMs - 400) < 1e-6, `forgotten ${p.forgottenMs} ms`);
    assert.equal(p.end, 440);
  });

  test('keep-alive silence leaves an idle call idle and takes its slot on the grid', () => {
    const p = pacer();
    p.commit(F, 3, 0, true); // a tick 3 ms late stands for slot 0
    assert.equal(p.idle, true);
    assert.equal(p.end, 20, 'the slot, not the late reading');
    assert.equal(p.dueBy(20), true);
    assert.equal(p.startAt(25), 25);
  });

  test('a timer pass that runs late sends what an on-time pass would: lead measured from its slot, not from the late clock', () => {
    // A play whose timeline sits 7 ms off the timer grid (started between ticks), in steady state.
    const p = pacer();
    let t = 7;
    while (p.admits(F, t)) p.commit(F, t); // the start: the lead
    const passes: number[] = [];
    for (let slot = 20; slot <= 2000; slot += F) {
      const now = slot + (slot % 100 === 0 ? 16 : 0); // every fifth pass runs 16 ms late
      let sent = 0;
      while (p.admits(F, now, now, false, slot)) {
        p.commit(F, now);
        sent++;
      }
      passes.push(sent);
    }
    // the first pass finds the start burst still ahead of it
    assert.ok(
      passes.slice(1).every((n) => n === 1),
      `frames per pass: ${passes.join(',')}`,
    );
    // the same passes measured from the late clock send two frames back to back at late passes
    const q = pacer();
    t = 7;
    while (q.admits(F, t)) q.commit(F, t);
    let pairs = 0;
    for (let slot = 20; slot <= 2000; slot += F) {
      const now = slot + (slot % 100 === 0 ? 16 : 0);
      let sent = 0;
      while (q.admits(F, now)) {
        q.commit(F, now);
        sent++;
      }
      if (sent > 1) pairs++;
    }
    assert.ok(pairs > 0, 'the control (horizon = now) should show the pairs this guards against');
  });
});
