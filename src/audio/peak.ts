/**
 * Cheap audio levels (the monitor's meters): the peak of a frame, read from every fourth sample, as a
 * fraction of full scale (0..1). A few dozen reads per 20 ms frame, no allocation.
 */
import type { AudioFormat } from './format.js';
import { decodeAlawSample, decodeUlawSample } from './g711.js';

/** Samples skipped between two reads: a 20 ms frame at 8 kHz still gives 40 reads. */
const STRIDE = 4;

function magnitudes(decode: (byte: number) => number): Uint16Array {
  const t = new Uint16Array(256);
  for (let b = 0; b < 256; b++) t[b] = Math.min(32767, Math.abs(decode(b)));
  return t;
}

const ULAW = magnitudes(decodeUlawSample);
const ALAW = magnitudes(decodeAlawSample);

/** The peak of `payload` in `format`, 0..1 (sampled every {@link STRIDE} samples). */
export function peakOf(payload: Uint8Array, format: AudioFormat): number {
  let peak = 0;
  if (format.encoding === 'slin') {
    const end = payload.length - 1;
    for (let i = 0; i < end; i += 2 * STRIDE) {
      const s = ((payload[i]! | (payload[i + 1]! << 8)) << 16) >> 16;
      const m = s < 0 ? -s : s;
      if (m > peak) peak = m;
    }
  } else {
    const table = format.encoding === 'ulaw' ? ULAW : ALAW;
    for (let i = 0; i < payload.length; i += STRIDE) {
      const m = table[payload[i]!]!;
      if (m > peak) peak = m;
    }
  }
  return peak > 32767 ? 1 : peak / 32767;
}
