/**
 * The shared timer's passes under a ManualClock: which members a pass serves. A member says when
 * its next pass could find work ({@link Paced.onTick}'s return), wakes itself in between, and a
 * pass skips it until then without reading it.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '#lib/index.js';
import { EVERY_PASS, FrameScheduler, type Paced } from '#lib/outbound/scheduler.js';
import { PacedOutbound, type OutboundOptions } from '#lib/outbound/paced.js';
import type { OutboundEvents } from '#lib/outbound/policy.js';
import { DEFAULT_PACING } from '#lib/outbound/pacer.js';

/** A member that records the grid instants of its passes and answers each with `next(gridTime)`. */
function member(next: (gridTime: number) => number, onPass?: (gridTime: number) => void): Paced & { passes: number[] } {
  const passes: number[] = [];
  return {
    frameMs: 20,
    passes,
    onTick(gridTime) {
      passes.push(gridTime);
      onPass?.(gridTime);
      return next(gridTime);
    },
  };
}

describe('FrameScheduler passes', () => {
  test('a member is served from the first pass at or after the instant it gave; EVERY_PASS each pass; Infinity until woken', () => {
    const clock = new ManualClock(0);
    const scheduler = new FrameScheduler(clock);
    const every = member(() => EVERY_PASS);
    const later = member((t) => t + 50); // the passes at t+60, t+120, ... (the first at or after t+50)
    const never = member(() => Infinity);
    scheduler.add(every);
    scheduler.add(later);
    const slot = scheduler.add(never);
    assert.equal(scheduler.add(never), slot, 'adding twice keeps the slot');
    clock.advance(200);
    assert.deepEqual(every.passes, [0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200]);
    assert.deepEqual(later.passes, [0, 60, 120, 180]);
    assert.deepEqual(never.passes, [0]);
    scheduler.wake(slot);
    clock.advance(40);
    assert.deepEqual(never.passes, [0, 220], 'woken: served by the next pass only');
  });

  test('a wake from within its own pass is kept; a throwing member is served again by the next pass', () => {
    const clock = new ManualClock(0);
    const scheduler = new FrameScheduler(clock);
    let slot = -1;
    const wakesItself = member(
      (t) => (t === 0 ? EVERY_PASS : Infinity),
      (t) => {
        if (t === 20) scheduler.wake(slot);
      },
    );
    slot = scheduler.add(wakesItself);
    const errors: unknown[] = [];
    scheduler.onError = (error) => errors.push(error);
    const throwing = member(
      () => Infinity,
      (t) => {
        if (t <= 20) throw new Error(`pass ${t}`);
      },
    );
    scheduler.add(throwing);
    clock.advance(100);
    assert.deepEqual(wakesItself.passes, [0, 20, 40]);
    assert.deepEqual(throwing.passes, [0, 20, 40]);
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ['pass 0', 'pass 20'],
    );
  });

  test('members deleted during a pass are not served by it; members added during a pass are; slots are reused', () => {
    const clock = new ManualClock(0);
    const scheduler = new FrameScheduler(clock);
    const victim = member(() => EVERY_PASS);
    const newcomer = member(() => EVERY_PASS);
    const selfDeleting = member(
      () => EVERY_PASS,
      (t) => {
        if (t === 20) scheduler.delete(selfDeleting);
      },
    );
    const killer = member(
      () => EVERY_PASS,
      (t) => {
        if (t === 40) {
          scheduler.delete(victim);
          scheduler.add(newcomer);
        }
      },
    );
    scheduler.add(selfDeleting);
    scheduler.add(killer);
    scheduler.add(victim);
    clock.advance(80);
    assert.deepEqual(selfDeleting.passes, [0, 20]);
    assert.deepEqual(victim.passes, [0, 20]);
    assert.deepEqual(newcomer.passes, [40, 60, 80], 'served by the pass that added it');
    assert.equal(scheduler.size, 2);
    // The slots freed are taken again, and the returned instant of a deleted member is not kept for them.
    const third = member(() => EVERY_PASS);
    scheduler.add(third);
    clock.advance(20);
    assert.deepEqual(third.passes, [100]);
  });

  test('skipping changes nothing that leaves: an echo with pauses and a prompt, served only when needed and at every pass', () => {
    const every = runCall(false);
    const skipping = runCall(true);
    assert.deepEqual(skipping.sent, every.sent);
    // While the echo's audio leaves as it is written, a pass serves the call at most every other frame.
    const echoing = (r: typeof every): number => r.passes.filter((t) => t > 100 && t < 1000).length;
    assert.ok(echoing(skipping) <= echoing(every) / 2, `${echoing(skipping)} passes while echoing, against ${echoing(every)}`);
    // Keep-alive silence came back after each pause, and the prompt played.
    assert.ok(skipping.sent.filter((s) => s.endsWith('s')).length > 20);
    assert.ok(skipping.sent.filter((s) => s.endsWith('p')).length === 25);
    // Without keep-alive an idle call is served by no pass until its audio wakes it.
    const quietEvery = runCall(false, false);
    const quietSkipping = runCall(true, false);
    assert.deepEqual(quietSkipping.sent, quietEvery.sent);
    assert.ok(
      quietSkipping.passes.length <= quietEvery.passes.length / 2,
      `${quietSkipping.passes.length} passes, ${quietEvery.passes.length}`,
    );
  });
});

/**
 * A call's outbound side under a ManualClock: an echo (input every 20 ms at mid-slot, answered at
 * once) for a second, a pause, a prompt of half a second, a pause, more echo. Returns what left
 * (time and what: audio `a`, prompt `p`, silence `s`) and the passes that served the call.
 * `skip: false` serves it at every pass, as a member that always answers EVERY_PASS.
 */
function runCall(skip: boolean, keepAlive = true): { sent: string[]; passes: number[] } {
  const clock = new ManualClock(0);
  const scheduler = new FrameScheduler(clock);
  const options: OutboundOptions = {
    kind: 0x10,
    keepAliveKind: 0x10,
    keepAlive,
    prefetchMs: 200,
    highWaterMarkMs: 1000,
    maxQueuedMs: 30000,
    pacing: { frameMs: 20, ...DEFAULT_PACING },
  };
  const events: OutboundEvents = { sent: () => {}, mark: () => {}, drain: () => {}, dropped: () => {}, warning: () => {} };
  const sent: string[] = [];
  const out = new PacedOutbound(options, scheduler, events, {
    messageMemory: (size) => Buffer.alloc(size),
    write: (m) => sent.push(`${clock.now().toFixed(3)}${'saap'[m[3]!]}`) > 0,
  });
  const passes: number[] = [];
  const onTick = out.onTick.bind(out);
  out.onTick = (gridTime, now, observedUntil) => {
    passes.push(gridTime);
    const next = onTick(gridTime, now, observedUntil);
    return skip ? next : EVERY_PASS;
  };
  out.start();
  const echo = (frames: number): void => {
    for (let i = 0; i < frames; i++) {
      out.noteInbound(0x10, 20, clock.now());
      out.write(Buffer.alloc(320, 1), out.format);
      clock.advance(20);
    }
  };
  clock.advance(10);
  echo(50);
  clock.advance(500);
  out.write(Buffer.alloc(320 * 25, 3), out.format);
  clock.advance(1000);
  echo(20);
  clock.advance(500);
  return { sent, passes };
}
