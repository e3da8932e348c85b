/**
 * Signal helpers for the audio tests and the quality bench: tone generation, a Goertzel single-bin
 * DFT, and a seeded PRNG. Not a test file itself (no `.test` suffix).
 */

/** A sine of `freq` Hz, `amplitude` in int16 units, rounded to int16. Interleaved when `channels` = 2 (same tone both sides unless `freq2` is given). */
export function tone(rate: number, freq: number, seconds: number, amplitude: number, channels: 1 | 2 = 1, freq2 = freq): Int16Array {
  const frames = Math.round(rate * seconds);
  const out = new Int16Array(frames * channels);
  for (let i = 0; i < frames; i++) {
    out[i * channels] = Math.round(amplitude * Math.sin((2 * Math.PI * freq * i) / rate));
    if (channels === 2) out[i * 2 + 1] = Math.round(amplitude * Math.sin((2 * Math.PI * freq2 * i) / rate));
  }
  return out;
}

/**
 * Amplitude of the component at `freq` in `x[start .. start+n)` (stride `stride` for interleaved data).
 * Exact (no leakage) when `freq * n / rate` is an integer, which the tests arrange by analysing
 * exactly one second (n = rate) at integer frequencies.
 */
export function goertzel(x: ArrayLike<number>, start: number, n: number, rate: number, freq: number, stride = 1): number {
  if (start < 0 || (start + n - 1) * stride >= x.length) {
    throw new RangeError(`goertzel window ${start}+${n} (stride ${stride}) exceeds ${x.length} samples`);
  }
  const w = (2 * Math.PI * freq) / rate;
  const cosw = Math.cos(w);
  const c = 2 * cosw;
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s = x[(start + i) * stride]! + c * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  const re = s1 - s2 * cosw;
  const im = s2 * Math.sin(w);
  return (2 * Math.sqrt(re * re + im * im)) / n;
}

/** 20·log10(ratio), floored at -300 dB so a perfect zero stays a finite number. */
export function db(ratio: number): number {
  return 20 * Math.log10(Math.max(ratio, 1e-15));
}

/** Where a tone at `freq` lands after sampling at `rate` (folding about multiples of rate/2). */
export function foldFrequency(freq: number, rate: number): number {
  const f = freq % rate;
  return f > rate / 2 ? rate - f : f;
}

/** Small deterministic PRNG (mulberry32) so failures reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Concatenate Int16Arrays. */
export function concat16(parts: readonly Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Result of {@link measureResampling}. All levels in dB relative to the input tone's amplitude. */
export interface ResamplingQuality {
  /** Lowest and highest passband gain over the tested tones (up to 3.4 kHz). */
  readonly passbandMinDb: number;
  readonly passbandMaxDb: number;
  /** Strongest alias (downsampling) or image (upsampling) that lands in the telephone band / outside the input band. */
  readonly worstSpurDb: number;
  /** Which input tone produced it, as "input Hz -> spur Hz". */
  readonly worstSpurAt: string;
}

/** Passband tones (Hz): flat-response check up to the 3.4 kHz telephone band edge. */
export const PASSBAND_TONES = [100, 303, 1009, 2003, 3001, 3400];
/** Input tones used to look for images when upsampling (all inside the 3.4 kHz passband). */
export const IMAGE_TONES = [203, 1009, 2003, 2711, 3001, 3391];

const AMPLITUDE = 29000; // about -1 dBFS

/**
 * Measure a resampling path with coherent tone analysis. `run` must resample a whole signal
 * (process + flush) from `inRate` to `outRate`. Downsampling: every input tone above 4.6 kHz whose
 * alias lands at or below 3.4 kHz (the band a caller hears) is tried from `aliasTones`.
 * Upsampling: images of {@link IMAGE_TONES} at k·inRate ± f between 4.6 kHz and the output Nyquist.
 * Tones between 3.4 and 4.6 kHz sit in the transition band that every telephone filter allows.
 */
export function measureResampling(
  run: (input: Int16Array) => Int16Array,
  inRate: number,
  outRate: number,
  aliasTones: readonly number[],
): ResamplingQuality {
  const analyse = (out: Int16Array, f: number): number => goertzel(out, Math.round(outRate / 4), outRate, outRate, f) / AMPLITUDE;
  let passbandMinDb = Infinity;
  let passbandMaxDb = -Infinity;
  for (const f of PASSBAND_TONES) {
    const g = db(analyse(run(tone(inRate, f, 1.5, AMPLITUDE)), f));
    passbandMinDb = Math.min(passbandMinDb, g);
    passbandMaxDb = Math.max(passbandMaxDb, g);
  }
  let worstSpurDb = -Infinity;
  let worstSpurAt = 'none';
  const consider = (level: number, label: string): void => {
    if (level > worstSpurDb) {
      worstSpurDb = level;
      worstSpurAt = label;
    }
  };
  if (outRate < inRate) {
    for (const f of aliasTones) {
      if (f >= inRate / 2) continue;
      const alias = foldFrequency(f, outRate);
      if (alias > 3400) continue;
      consider(db(analyse(run(tone(inRate, f, 1.5, AMPLITUDE)), alias)), `${f} -> ${alias}`);
    }
  } else {
    for (const f of IMAGE_TONES) {
      const out = run(tone(inRate, f, 1.5, AMPLITUDE));
      for (let k = 1; k * inRate - f < outRate / 2; k++) {
        for (const image of [k * inRate - f, k * inRate + f]) {
          if (image < 4600 || image >= outRate / 2) continue;
          consider(db(analyse(out, image)), `${f} -> ${image}`);
        }
      }
    }
  }
  return { passbandMinDb, passbandMaxDb, worstSpurDb, worstSpurAt };
}

/** Tones above 4.6 kHz for alias hunting, spread up to 96 kHz (filtered per input rate). */
export const ALIAS_TONES = [4603, 4801, 5003, 5501, 6007, 6997, 7451, 7919, 9001, 11003, 12007, 15013, 17011, 20011, 22003, 23003];
