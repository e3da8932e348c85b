/**
 * Inter-arrival statistics with bounded memory: a 0.1 ms histogram up to 500 ms.
 */
export class IntervalStats {
  readonly #bins = new Uint32Array(5001);
  #count = 0;
  #sum = 0;
  #max = 0;
  #last = -1;

  /** Records an arrival at `nowMs`. */
  arrival(nowMs: number): void {
    if (this.#last >= 0) this.add(nowMs - this.#last);
    this.#last = nowMs;
  }

  add(intervalMs: number): void {
    this.#count++;
    this.#sum += intervalMs;
    if (intervalMs > this.#max) this.#max = intervalMs;
    this.#bins[Math.min(5000, Math.max(0, Math.round(intervalMs * 10)))]!++;
  }

  get count(): number {
    return this.#count;
  }

  get mean(): number {
    return this.#count ? this.#sum / this.#count : 0;
  }

  get max(): number {
    return this.#max;
  }

  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const target = Math.ceil((p / 100) * this.#count);
    let seen = 0;
    for (let i = 0; i < this.#bins.length; i++) {
      seen += this.#bins[i]!;
      if (seen >= target) return i / 10;
    }
    return this.#max;
  }

  summary(): { count: number; meanMs: number; p50Ms: number; p99Ms: number; maxMs: number } {
    const r = (x: number): number => Math.round(x * 10) / 10;
    return { count: this.#count, meanMs: r(this.mean), p50Ms: r(this.percentile(50)), p99Ms: r(this.percentile(99)), maxMs: r(this.max) };
  }
}

/** Paced frames that left late: AudioSocket's pacer counts them; chan_websocket leaves timing to Asterisk (0). */
export function lateSlotsOf(stats: object): number {
  return 'lateSlots' in stats ? (stats.lateSlots as number) : 0;
}

/** Slots forgiven after event-loop stalls (AudioSocket's pacer; 0 on chan_websocket). */
export function droppedSlotsOf(stats: object): number {
  return 'droppedSlots' in stats ? (stats.droppedSlots as number) : 0;
}
