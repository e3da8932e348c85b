/**
 * Fixed-memory log-linear histogram for non-negative values in milliseconds.
 *
 * Values are recorded in microseconds; each power-of-two range is split into 64 sub-buckets,
 * so a reported percentile is within ~1.6 % (or 1 µs) of the true value. min, max and mean
 * are exact. Recording allocates nothing.
 */

const SUB_BITS = 6;
const SUB = 1 << SUB_BITS; // 64
const RANGES = 32; // up to 2^32 µs (~71 min)

export interface HistSummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export class Histogram {
  readonly #counts = new Float64Array(SUB * (RANGES + 1));
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = -Infinity;

  /** Record a value in milliseconds (negative values are clamped to 0). */
  record(ms: number): void {
    const v = ms > 0 ? ms : 0;
    this.#count++;
    this.#sum += v;
    if (v < this.#min) this.#min = v;
    if (v > this.#max) this.#max = v;
    this.#counts[bucketOf(Math.round(v * 1000))]!++;
  }

  get count(): number {
    return this.#count;
  }

  get max(): number {
    return this.#count === 0 ? 0 : this.#max;
  }

  merge(other: Histogram): void {
    const oc = other.#counts;
    for (let i = 0; i < oc.length; i++) this.#counts[i]! += oc[i]!;
    this.#count += other.#count;
    this.#sum += other.#sum;
    if (other.#min < this.#min) this.#min = other.#min;
    if (other.#max > this.#max) this.#max = other.#max;
  }

  /** Value (ms) at quantile q in [0, 1]; 0 when empty. Clamped to the exact min/max. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) {
        const us = bucketUpper(i);
        return Math.min(this.#max, Math.max(this.#min, us / 1000));
      }
    }
    return this.#max;
  }

  summary(): HistSummary {
    const r = (x: number): number => Math.round(x * 1000) / 1000;
    if (this.#count === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
    return {
      count: this.#count,
      min: r(this.#min),
      mean: r(this.#sum / this.#count),
      p50: r(this.quantile(0.5)),
      p90: r(this.quantile(0.9)),
      p99: r(this.quantile(0.99)),
      p999: r(this.quantile(0.999)),
      max: r(this.#max),
    };
  }
}

function bucketOf(us: number): number {
  if (us < SUB) return us;
  if (us >= 0x7fffffff) return SUB * (RANGES + 1) - 1;
  const top = 31 - Math.clz32(us); // floor(log2(us)) >= SUB_BITS
  const range = top - SUB_BITS + 1;
  if (range > RANGES) return SUB * (RANGES + 1) - 1;
  const sub = (us >>> (top - SUB_BITS)) - SUB; // 0..63
  return range * SUB + sub;
}

/** Largest µs value that falls in bucket i (inclusive). */
function bucketUpper(i: number): number {
  const range = Math.floor(i / SUB);
  const sub = i % SUB;
  if (range === 0) return sub;
  const shift = range - 1;
  return (SUB + sub + 1) * 2 ** shift - 1;
}
