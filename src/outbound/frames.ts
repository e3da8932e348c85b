/**
 * Sizes of outbound audio in any format. Pure.
 */
import type { AudioFormat } from '../audio/format.js';

/** Bytes per sample of one channel: 2 for slin, 1 for G.711. */
export function sampleBytes(format: AudioFormat): number {
  return format.encoding === 'slin' ? 2 : 1;
}

/** Bytes per millisecond of `format`. */
export function bytesPerMs(format: AudioFormat): number {
  return (format.sampleRate * format.channels * sampleBytes(format)) / 1000;
}

/** Duration in ms of `bytes` of `format`. */
export function durationMs(format: AudioFormat, bytes: number): number {
  return bytes / bytesPerMs(format);
}

/** Bytes of one frame of `frameMs` (whole samples: 44.1 kHz is 882 samples per 20 ms). */
export function frameBytes(format: AudioFormat, frameMs: number): number {
  return Math.round((format.sampleRate * frameMs) / 1000) * format.channels * sampleBytes(format);
}
