/**
 * One shared timer for the outbound pacing of every call of a server.
 *
 * Ticks fall on a fixed grid, origin + k * period, computed from the clock each time (never by
 * accumulating delays), so timer lateness never turns into drift. The period is the greatest
 * common divisor of the frame durations of the registered members; with everyone at 20 ms that
 * is one wake-up per 20 ms for the whole server instead of one timer per call.
 *
 * A tick never serves its slot early. Node's timers count whole milliseconds, so a timer fires up
 * to about 1.5 ms before the fractional instant it was armed for; a pass served that early
 * measured its members against the clock, found their frame not yet due, sent nothing, and the
 * frame left with the next pass's, back to back after a hole. So a pass stands for its slot
 * (members measure from `gridTime`), and a timer that fires more than
 * {@link TIMER_RESOLUTION_MS} early waits again for its slot.
 *
 * A pass serves only the members that need it. Each member says, as its pass ends, the earliest
 * clock reading at which the next pass could find work for it (an echo's call, whose audio left
 * as it was written, has nothing to do until its timeline could run dry), and wakes itself with
 * {@link FrameScheduler.wake} when something happens in between that needs the next pass. Those
 * instants are kept in one dense array, so a pass skips a member without reading the member:
 * a call's own memory is read by a pass only when the pass has work for it.
 */
import type { Clock } from '../clock.js';

/** Something paced by the scheduler (a call's outbound side). */
export interface Paced {
  /** Frame duration of this member in ms; must stay constant while registered. */
  readonly frameMs: number;
  /**
   * Called at every tick. `gridTime` is the grid instant this tick stands for; `now` is the
   * clock's reading as this member is served (later than `gridTime` by the timer's lateness and
   * by the pass's work before it); `observedUntil` is how far
   * the event loop has been awake to read input: `now`, or one period after the previous tick
   * when the loop was stalled in between (the input that arrived meanwhile is not read yet, so
   * that time must not count as quiet).
   */
  onTick(gridTime: number, now: number, observedUntil: number): number;
}

/**
 * What {@link Paced.onTick} returns: the earliest clock reading at which a pass could find work
 * for the member. A pass that starts before it skips the member. {@link EVERY_PASS}: the next
 * pass; `Infinity`: none until the member wakes itself ({@link FrameScheduler.wake}).
 */
export const EVERY_PASS = -Infinity;

/**
 * How early (ms) a timer may fire and still serve its slot. Node's timers keep whole ms: fired
 * 50 times after a 13.7 ms delay, a timer came 1.37 ms early at worst, 0.29 ms at the median.
 */
export const TIMER_RESOLUTION_MS = 2;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

export class FrameScheduler {
  readonly #clock: Clock;
  /** Members by slot (a slot's index stays the member's while it is registered); `undefined`: a free slot. */
  #members: Array<Paced | undefined> = [];
  /** When each slot next needs a pass (see {@link Paced.onTick}): `Infinity` for a free slot. */
  #wakeAt = new Float64Array(16).fill(Infinity);
  readonly #slots = new Map<Paced, number>();
  readonly #freeSlots: number[] = [];
  readonly #durations = new Map<number, number>();
  readonly #origin: number;
  #period = 0;
  #timer: unknown = null;
  #nextIndex = 0;
  #lastTickAt = -Infinity;
  #ticks = 0;
  #lateSum = 0;
  #lateMax = 0;
  /** Called when a member's onTick throws; the scheduler carries on with the others. */
  onError: (error: unknown, member: Paced) => void = () => {};

  constructor(clock: Clock) {
    this.#clock = clock;
    this.#origin = clock.now();
  }

  get clock(): Clock {
    return this.#clock;
  }

  /** Current tick period in ms (0 when nothing is registered). */
  get period(): number {
    return this.#period;
  }

  get size(): number {
    return this.#slots.size;
  }

  /** Timer statistics: ticks run, mean and max lateness of the timer in ms. */
  get stats(): { ticks: number; meanLateMs: number; maxLateMs: number } {
    return { ticks: this.#ticks, meanLateMs: this.#ticks ? this.#lateSum / this.#ticks : 0, maxLateMs: this.#lateMax };
  }

  /** The next grid instant at or after `time`. */
  nextGridTime(time: number): number {
    const p = this.#period;
    return this.#origin + Math.ceil((time - this.#origin) / p - 1e-9) * p;
  }

  /**
   * Registers `member`, served from the next pass on. Returns its slot, for {@link wake}; adding a
   * member twice returns the same slot.
   */
  add(member: Paced): number {
    const known = this.#slots.get(member);
    if (known !== undefined) return known;
    let slot = this.#freeSlots.pop();
    if (slot === undefined) {
      slot = this.#members.length;
      this.#members.push(undefined);
      if (slot >= this.#wakeAt.length) {
        const grown = new Float64Array(this.#wakeAt.length * 2).fill(Infinity);
        grown.set(this.#wakeAt);
        this.#wakeAt = grown;
      }
    }
    this.#members[slot] = member;
    this.#wakeAt[slot] = EVERY_PASS;
    this.#slots.set(member, slot);
    this.#durations.set(member.frameMs, (this.#durations.get(member.frameMs) ?? 0) + 1);
    this.#updatePeriod();
    return slot;
  }

  /** The member in `slot` needs the next pass (something happened since its last that it must serve). */
  wake(slot: number): void {
    if (this.#members[slot] !== undefined) this.#wakeAt[slot] = EVERY_PASS;
  }

  delete(member: Paced): void {
    const slot = this.#slots.get(member);
    if (slot === undefined) return;
    this.#slots.delete(member);
    this.#members[slot] = undefined;
    this.#wakeAt[slot] = Infinity;
    this.#freeSlots.push(slot);
    const n = (this.#durations.get(member.frameMs) ?? 1) - 1;
    if (n === 0) this.#durations.delete(member.frameMs);
    else this.#durations.set(member.frameMs, n);
    this.#updatePeriod();
  }

  #updatePeriod(): void {
    let p = 0;
    for (const d of this.#durations.keys()) p = p === 0 ? d : gcd(p, d);
    if (p === this.#period) {
      if (p !== 0 && this.#timer === null) this.#arm();
      return;
    }
    this.#period = p;
    this.#nextIndex = 0;
    if (this.#timer !== null) {
      this.#clock.clearTimer(this.#timer);
      this.#timer = null;
    }
    if (p !== 0) this.#arm();
  }

  #arm(): void {
    const now = this.#clock.now();
    const p = this.#period;
    // Next grid index strictly after the last one served, and not in the past.
    const idx = Math.max(this.#nextIndex, Math.ceil((now - this.#origin) / p - 1e-9));
    this.#nextIndex = idx;
    const at = this.#origin + idx * p;
    this.#timer = this.#clock.setTimer(() => this.#tick(at), Math.max(0, at - now));
  }

  #tick(gridTime: number): void {
    this.#timer = null;
    const now = this.#clock.now();
    if (now < gridTime - TIMER_RESOLUTION_MS) {
      // Fired early (see the module comment): wait again for the slot.
      this.#timer = this.#clock.setTimer(() => this.#tick(gridTime), gridTime - now);
      return;
    }
    const late = now - gridTime;
    this.#ticks++;
    this.#lateSum += late;
    if (late > this.#lateMax) this.#lateMax = late;
    // Serve the latest grid instant that has passed: a stalled loop skips ticks, members catch up.
    const p = this.#period;
    const idx = Math.max(this.#nextIndex, Math.floor((now - this.#origin) / p + 1e-9));
    const served = this.#origin + idx * p;
    this.#nextIndex = idx + 1;
    const observedUntil = this.#lastTickAt === -Infinity ? now : Math.min(now, this.#lastTickAt + p);
    this.#lastTickAt = now;
    const clock = this.#clock;
    const members = this.#members;
    // As a Set's iteration would, the pass also serves members added during it.
    for (let i = 0; i < members.length; i++) {
      // Read again per slot: a member's pass can add members (the array of instants grows).
      if (this.#wakeAt[i]! > now) continue;
      const m = members[i];
      if (m === undefined) continue;
      // Until its pass returns: a `wake` from within it (EVERY_PASS) is kept.
      this.#wakeAt[i] = Infinity;
      let wakeAt: number;
      try {
        // Each member reads the clock as it is served: late in a long pass, its writes are late too.
        wakeAt = m.onTick(served, clock.now(), observedUntil);
      } catch (error) {
        wakeAt = EVERY_PASS;
        this.onError(error, m);
      }
      // Unless the pass deleted it (its slot may even be another member's now).
      if (members[i] === m && this.#wakeAt[i] !== EVERY_PASS) this.#wakeAt[i] = wakeAt;
    }
    if (this.#slots.size > 0 && this.#timer === null) this.#arm();
  }
}
