/**
 * Channel mixing for interleaved 16-bit samples.
 * @module
 */

import { audioSocketError, ErrorCodes } from '../errors.js';

/**
 * Stereo (interleaved L,R) to mono by averaging: `(l + r) >> 1`, which cannot clip.
 * `dst` may be `src` itself (the write index never overtakes the read index).
 * @returns `dst` (or a new array) trimmed to `src.length / 2` samples.
 * @throws AudioSocketError `INVALID_ARGUMENT` for an odd `src` length or a short `dst`.
 */
export function stereoToMono(src: Int16Array, dst?: Int16Array): Int16Array {
  if ((src.length & 1) !== 0) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `stereoToMono: input must hold whole L,R pairs, got ${src.length} samples`);
  }
  const n = src.length >> 1;
  const out = dst ?? new Int16Array(n);
  if (out.length < n) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `stereoToMono: destination holds ${out.length} samples, needs ${n}`);
  }
  for (let i = 0; i < n; i++) out[i] = (src[2 * i]! + src[2 * i + 1]!) >> 1;
  return out.length === n ? out : out.subarray(0, n);
}

/**
 * Mono to stereo by duplicating each sample into L and R.
 * `dst` may share memory with `src` only if it starts at the same offset (written back to front).
 * @returns `dst` (or a new array) trimmed to `2 * src.length` samples.
 * @throws AudioSocketError `INVALID_ARGUMENT` for a short `dst`.
 */
export function monoToStereo(src: Int16Array, dst?: Int16Array): Int16Array {
  const n = src.length;
  const out = dst ?? new Int16Array(2 * n);
  if (out.length < 2 * n) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `monoToStereo: destination holds ${out.length} samples, needs ${2 * n}`);
  }
  // Back to front so an in-place expansion never overwrites samples not yet read.
  for (let i = n - 1; i >= 0; i--) {
    const s = src[i]!;
    out[2 * i] = s;
    out[2 * i + 1] = s;
  }
  return out.length === 2 * n ? out : out.subarray(0, 2 * n);
}
