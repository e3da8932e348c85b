/**
 * Sizes and shared messages of outbound frames. Pure.
 */
import { HEADER_SIZE, sampleRateOfKind, type AudioKind } from '../protocol/kinds.js';
import { writeHeader } from '../protocol/encoder.js';

/** Bytes of slin per frame for an audio kind (44.1 kHz: 882 samples per 20 ms). */
export function frameBytes(kind: AudioKind, frameMs: number): number {
  return Math.round((sampleRateOfKind(kind)! * frameMs) / 1000) * 2;
}

/** Bytes of slin per millisecond for an audio kind. */
export function bytesPerMs(kind: AudioKind): number {
  return (sampleRateOfKind(kind)! * 2) / 1000;
}

/** Duration in ms of `bytes` of slin of `kind`. */
export function durationMs(kind: AudioKind, bytes: number): number {
  return bytes / bytesPerMs(kind);
}

const silenceCache = new Map<number, Buffer>();

/** A shared, never-mutated silence message of `frameMs` at `kind`'s rate. */
export function silenceMessage(kind: AudioKind, frameMs: number): Buffer {
  const key = kind * 1000 + frameMs;
  let msg = silenceCache.get(key);
  if (msg === undefined) {
    const size = frameBytes(kind, frameMs);
    msg = Buffer.alloc(HEADER_SIZE + size);
    writeHeader(msg, 0, kind, size);
    silenceCache.set(key, msg);
  }
  return msg;
}

/**
 * The message for `payload` of `kind`: header and payload in one buffer. When the three bytes
 * before `payload` in its memory already are that header (audio received from Asterisk and
 * written straight back), they are reused with no copy.
 */
export function messageFor(kind: AudioKind, payload: Buffer): Buffer {
  const n = payload.length;
  const off = payload.byteOffset;
  if (off >= HEADER_SIZE) {
    const mem = new Uint8Array(payload.buffer, off - HEADER_SIZE, HEADER_SIZE);
    if (mem[0] === kind && mem[1] === n >>> 8 && mem[2] === (n & 0xff)) {
      return Buffer.from(payload.buffer, off - HEADER_SIZE, n + HEADER_SIZE);
    }
  }
  const message = Buffer.allocUnsafe(HEADER_SIZE + n);
  writeHeader(message, 0, kind, n);
  payload.copy(message, HEADER_SIZE);
  return message;
}
