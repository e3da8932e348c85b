/**
 * Minimal AudioSocket framing for the benchmark harness only.
 *
 * Deliberately independent of the library under test (`src/`): the bench must be able to
 * measure, and catch bugs in, the library's own codec.
 *
 * Message = kind (1 byte) | payload length (uint16 big-endian) | payload.
 */

export const HEADER_BYTES = 3;
export const MAX_PAYLOAD = 0xffff;

export const KIND_HANGUP = 0x00;
export const KIND_UUID = 0x01;
export const KIND_DTMF = 0x03;
export const KIND_AUDIO_8K = 0x10;
export const KIND_AUDIO_16K = 0x12;
export const KIND_ERROR = 0xff;

/** Sample rate (Hz) of audio kinds 0x10..0x18; undefined for other kinds. */
const RATES: Readonly<Record<number, number>> = {
  0x10: 8000,
  0x11: 12000,
  0x12: 16000,
  0x13: 24000,
  0x14: 32000,
  0x15: 44100,
  0x16: 48000,
  0x17: 96000,
  0x18: 192000,
};

export function isAudioKind(kind: number): boolean {
  return kind >= 0x10 && kind <= 0x18;
}

export function audioRate(kind: number): number | undefined {
  return RATES[kind];
}

/** Write a 3-byte header at `offset` of `target`. Returns the offset just after it. */
export function writeHeader(target: Buffer, offset: number, kind: number, payloadLength: number): number {
  if (payloadLength < 0 || payloadLength > MAX_PAYLOAD || !Number.isInteger(payloadLength)) {
    throw new RangeError(`payload length ${payloadLength} out of range 0..${MAX_PAYLOAD}`);
  }
  target[offset] = kind & 0xff;
  target[offset + 1] = payloadLength >>> 8;
  target[offset + 2] = payloadLength & 0xff;
  return offset + HEADER_BYTES;
}

/** Encode one whole message (header + payload) into a new buffer. */
export function encode(kind: number, payload: Uint8Array = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  writeHeader(out, 0, kind, payload.length);
  out.set(payload, HEADER_BYTES);
  return out;
}

const EMPTY = new Uint8Array(0);

/** Hangup message `00 00 00`. */
export function encodeHangup(): Buffer {
  return encode(KIND_HANGUP);
}

/** UUID message from a 16-byte binary UUID. */
export function encodeUuid(uuid16: Uint8Array): Buffer {
  if (uuid16.length !== 16) throw new RangeError('UUID must be 16 bytes');
  return encode(KIND_UUID, uuid16);
}

/**
 * Called once per complete message. `frame` is the WHOLE message including its 3-byte header
 * (payload = `frame.subarray(3)`), so an echo is simply `socket.write(frame)`.
 *
 * When the message arrived inside one chunk, `frame` is a zero-copy view of that chunk; when it
 * spanned chunks it is a freshly allocated buffer. Either way the bytes are never reused by the
 * decoder, so keeping `frame` is safe (it may pin the chunk it views).
 */
export type FrameHandler = (kind: number, frame: Buffer) => void;

/**
 * Incremental decoder: feed arbitrary TCP chunks, get whole messages.
 * No concatenation per chunk; at most one allocation per message that spans chunks.
 */
export class Decoder {
  readonly #onFrame: FrameHandler;
  /** Header bytes gathered so far when a header is split across chunks. */
  readonly #hdr = Buffer.alloc(HEADER_BYTES);
  #hdrLen = 0;
  /** Message being assembled across chunks (header + payload), or null. */
  #partial: Buffer | null = null;
  #filled = 0;
  #messages = 0;

  constructor(onFrame: FrameHandler) {
    this.#onFrame = onFrame;
  }

  /** Number of complete messages decoded so far. */
  get messages(): number {
    return this.#messages;
  }

  /** Bytes of an incomplete message currently buffered (0 at a message boundary). */
  get pendingBytes(): number {
    return this.#partial !== null ? this.#filled : this.#hdrLen;
  }

  push(chunk: Buffer): void {
    const n = chunk.length;
    let off = 0;
    while (off < n) {
      const partial = this.#partial;
      if (partial !== null) {
        const take = Math.min(partial.length - this.#filled, n - off);
        chunk.copy(partial, this.#filled, off, off + take);
        this.#filled += take;
        off += take;
        if (this.#filled === partial.length) this.#emitPartial();
        continue;
      }
      if (this.#hdrLen === 0 && n - off >= HEADER_BYTES) {
        // Fast path: header available in this chunk.
        const len = (chunk[off + 1]! << 8) | chunk[off + 2]!;
        const end = off + HEADER_BYTES + len;
        if (end <= n) {
          this.#messages++;
          this.#onFrame(chunk[off]!, chunk.subarray(off, end));
          off = end;
          continue;
        }
        const p = Buffer.allocUnsafe(HEADER_BYTES + len);
        chunk.copy(p, 0, off, n);
        this.#partial = p;
        this.#filled = n - off;
        off = n;
        continue;
      }
      // Header split across chunks: gather it byte by byte (at most 3 bytes).
      this.#hdr[this.#hdrLen++] = chunk[off++]!;
      if (this.#hdrLen === HEADER_BYTES) {
        this.#hdrLen = 0;
        const len = (this.#hdr[1]! << 8) | this.#hdr[2]!;
        const p = Buffer.allocUnsafe(HEADER_BYTES + len);
        this.#hdr.copy(p, 0);
        this.#partial = p;
        this.#filled = HEADER_BYTES;
        if (len === 0) this.#emitPartial();
      }
    }
  }

  #emitPartial(): void {
    const p = this.#partial!;
    this.#partial = null;
    this.#filled = 0;
    this.#messages++;
    this.#onFrame(p[0]!, p);
  }
}

/** 16 random bytes with RFC 4122 version 4 / variant bits set. */
export function randomUuidBytes(rand: (n: number) => Buffer): Buffer {
  const b = rand(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}
