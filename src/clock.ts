/**
 * Clocks for the pacer. The pacer needs a monotonic time source and one timer; both come from a
 * {@link Clock} so tests can drive time by hand (node:test's mock timers cannot fake
 * `performance.now()`).
 */

// Imported, not the global: in Node the global `performance` is a getter, run on every read.
import { performance } from 'node:perf_hooks';

/** Opaque handle returned by {@link Clock.setTimer}. */
export type TimerHandle = unknown;

/** A monotonic clock with a one-shot timer. */
export interface Clock {
  /** Monotonic time in milliseconds (fractional). */
  now(): number;
  /** Calls `callback` once after about `delayMs` milliseconds. */
  setTimer(callback: () => void, delayMs: number): TimerHandle;
  /** Cancels a timer returned by {@link setTimer}. */
  clearTimer(handle: TimerHandle): void;
}

/** The real clock: `performance.now()` and `setTimeout`. Timers are unref'd: pacing alone never keeps the process alive. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(callback, delayMs) {
    const t = setTimeout(callback, delayMs);
    t.unref();
    return t;
  },
  clearTimer(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

interface ManualTimer {
  at: number;
  seq: number;
  callback: () => void;
}

/**
 * A clock that only moves when told to. Timers fire synchronously inside {@link advance}, in
 * order of due time. Use it to test pacing without waiting (ours, or your own bot's).
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers = new Set<ManualTimer>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    const timer: ManualTimer = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, callback };
    this.#timers.add(timer);
    return timer;
  }

  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle as ManualTimer);
  }

  /** Number of pending timers. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due (including timers set by
   * those callbacks) at its due time. A callback may itself take time ({@link stall}): time
   * never goes back, and what fell due meanwhile fires next.
   */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const limit = Math.max(end, this.#now);
      let next: ManualTimer | undefined;
      for (const t of this.#timers) {
        if (t.at <= limit && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (next === undefined) break;
      this.#timers.delete(next);
      if (next.at > this.#now) this.#now = next.at;
      next.callback();
    }
    if (end > this.#now) this.#now = end;
  }

  /**
   * Jumps time forward by `ms` without firing timers on the way, then fires what is due:
   * what an event-loop stall looks like to the pacer.
   */
  stall(ms: number): void {
    this.#now += ms;
    this.advance(0);
  }
}
