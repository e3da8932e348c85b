/**
 * Known audio for the Asterisk suite: tagged tone frames (so every echoed frame can be matched
 * bit-exactly and timed), G.711 u-law helpers for the RTP leg, Goertzel tone detection, statistics.
 */

/** Frame tag: sample 0 = MAGIC, sample 1 = call id, sample 2 = frame index. The rest is a tone. */
export const MAGIC = 0x5a17;

/** `count` frames of `samplesPerFrame` samples: a tone of `hz` at `rate`, each frame tagged. */
export function taggedFrames(callId: number, count: number, hz: number, rate = 8000, samplesPerFrame = rate / 50): Buffer[] {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const b = Buffer.alloc(samplesPerFrame * 2);
    for (let s = 0; s < samplesPerFrame; s++) {
      const n = i * samplesPerFrame + s;
      b.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * hz * n) / rate)), s * 2);
    }
    b.writeInt16LE(MAGIC, 0);
    b.writeInt16LE(callId, 2);
    b.writeInt16LE(i, 4);
    frames.push(b);
  }
  return frames;
}

/** The tag of a received frame, or undefined (silence, or not one of ours). */
export function readTag(b: Buffer): { callId: number; index: number } | undefined {
  if (b.length < 6 || b.readInt16LE(0) !== MAGIC) return undefined;
  return { callId: b.readInt16LE(2), index: b.readInt16LE(4) };
}

export function isSilence(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** A plain tone, `ms` long, slin little-endian. */
export function tone(hz: number, ms: number, rate = 8000, amplitude = 8000): Buffer {
  const n = Math.round((rate * ms) / 1000);
  const b = Buffer.alloc(n * 2);
  for (let s = 0; s < n; s++) b.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * hz * s) / rate)), s * 2);
  return b;
}

/** Fraction of the frame's energy at `hz` (Goertzel; 1 = a pure tone at hz, ~0 = something else). */
export function toneFraction(pcm: Buffer, hz: number, rate = 8000): number {
  const n = pcm.length >> 1;
  if (n === 0) return 0;
  const w = (2 * Math.PI * hz) / rate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const x = pcm.readInt16LE(i * 2);
    total += x * x;
    const s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  if (total === 0) return 0;
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return Math.min(1, (2 * power) / (n * total));
}

/** RMS of a slin frame. */
export function rms(pcm: Buffer): number {
  const n = pcm.length >> 1;
  let t = 0;
  for (let i = 0; i < n; i++) {
    const x = pcm.readInt16LE(i * 2);
    t += x * x;
  }
  return n ? Math.sqrt(t / n) : 0;
}

// G.711 u-law (ITU-T), for the simulated phone's RTP leg.
export function linToUlaw(sample: number): number {
  const BIAS = 0x84;
  let s = Math.max(-32635, Math.min(32635, sample));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

export function ulawToLin(u: number): number {
  const x = ~u & 0xff;
  const sign = x & 0x80;
  const exponent = (x >> 4) & 0x07;
  const mantissa = x & 0x0f;
  const mag = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  return sign ? -mag : mag;
}

export function slinToUlawBuf(pcm: Buffer): Buffer {
  const out = Buffer.alloc(pcm.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = linToUlaw(pcm.readInt16LE(i * 2));
  return out;
}

export function ulawToSlinBuf(u: Buffer): Buffer {
  const out = Buffer.alloc(u.length * 2);
  for (let i = 0; i < u.length; i++) out.writeInt16LE(ulawToLin(u[i]!), i * 2);
  return out;
}

/** Percentile (0-100) of a numeric array (nearest rank); NaN when empty. */
export function pct(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function gaps(times: number[]): number[] {
  const g: number[] = [];
  for (let i = 1; i < times.length; i++) g.push(times[i]! - times[i - 1]!);
  return g;
}

export const ms = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : 'n/a');

/** A random UUID in upper case (Asterisk accepts either case; the library must report lower case). */
export function randomUuidUpper(): string {
  return crypto.randomUUID().toUpperCase();
}

/** The extension form of a UUID for the shared dialplan (no dashes). */
export function hex32(uuid: string): string {
  return uuid.replace(/-/g, '');
}
