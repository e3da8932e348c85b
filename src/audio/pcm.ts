/**
 * Explicitly little-endian access to slin bytes.
 *
 * An `Int16Array` view uses the host byte order and needs a 2-byte aligned `byteOffset`; Buffers
 * sliced from Node's pool or from a network read often are not aligned. These helpers copy bytes
 * with `Uint8Array.set` (a memcpy, any alignment) on little-endian hosts and fall back to a
 * `DataView` on big-endian ones, so callers never have to think about either.
 * @module
 */

import { endianness } from 'node:os';
import { audioSocketError, ErrorCodes } from '../errors.js';

/** True on little-endian hosts (all mainstream Node platforms); checked once. */
export const HOST_LITTLE_ENDIAN: boolean = endianness() === 'LE';

function checkRoom(what: string, have: number, need: number): void {
  if (have < need) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `${what}: destination has room for ${have}, needs ${need}`);
  }
}

/**
 * Portable (DataView) version of {@link readSlin}; used on big-endian hosts.
 * Exported for tests only; not part of the package API (src/audio/index.ts does not re-export it).
 */
export function readSlinPortable(src: Uint8Array, dst: Int16Array, dstOffset: number, count: number): void {
  const view = new DataView(src.buffer, src.byteOffset, count * 2);
  for (let i = 0; i < count; i++) dst[dstOffset + i] = view.getInt16(i * 2, true);
}

/**
 * Portable (DataView) version of {@link writeSlin}; used on big-endian hosts.
 * Exported for tests only; not part of the package API (src/audio/index.ts does not re-export it).
 */
export function writeSlinPortable(src: Int16Array, dst: Uint8Array, dstOffset: number): void {
  const view = new DataView(dst.buffer, dst.byteOffset + dstOffset, src.length * 2);
  for (let i = 0; i < src.length; i++) view.setInt16(i * 2, src[i]!, true);
}

/**
 * Copy `count` little-endian samples (default: all whole samples in `src`) into `dst` at `dstOffset`.
 * @returns the number of samples copied.
 */
export function readSlin(src: Uint8Array, dst: Int16Array, dstOffset = 0, count = src.length >> 1): number {
  if (count * 2 > src.length) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `readSlin: source holds ${src.length >> 1} samples, asked for ${count}`);
  }
  checkRoom('readSlin', dst.length - dstOffset, count);
  if (HOST_LITTLE_ENDIAN) {
    new Uint8Array(dst.buffer, dst.byteOffset + dstOffset * 2, count * 2).set(src.subarray(0, count * 2));
  } else {
    readSlinPortable(src, dst, dstOffset, count);
  }
  return count;
}

/**
 * Write all of `src` as little-endian bytes into `dst` at byte offset `dstOffset`.
 * @returns the number of bytes written.
 */
export function writeSlin(src: Int16Array, dst: Uint8Array, dstOffset = 0): number {
  checkRoom('writeSlin (bytes)', dst.length - dstOffset, src.length * 2);
  if (HOST_LITTLE_ENDIAN) {
    dst.set(new Uint8Array(src.buffer, src.byteOffset, src.length * 2), dstOffset);
  } else {
    writeSlinPortable(src, dst, dstOffset);
  }
  return src.length * 2;
}

/**
 * An `Int16Array` over slin bytes: a zero-copy view when the host is little-endian and the bytes are
 * 2-byte aligned, otherwise a copy. A trailing odd byte is ignored. Do not write through the result
 * if you need the source untouched.
 */
export function slinSamples(bytes: Uint8Array): Int16Array {
  const count = bytes.length >> 1;
  if (HOST_LITTLE_ENDIAN && (bytes.byteOffset & 1) === 0) {
    return new Int16Array(bytes.buffer, bytes.byteOffset, count);
  }
  const out = new Int16Array(count);
  readSlin(bytes, out, 0, count);
  return out;
}

/** A fresh Buffer holding `samples` as slin (little-endian). */
export function slinBytes(samples: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(samples.length * 2);
  writeSlin(samples, out, 0);
  return out;
}
