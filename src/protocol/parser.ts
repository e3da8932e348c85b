/**
 * Incremental AudioSocket message parser: pure, no I/O.
 *
 * Feed it TCP chunks of any size with {@link MessageParser.push}; it calls `onMessage` once per
 * complete message, in order. A message that lies inside one chunk is delivered as a zero-copy
 * `subarray` of that chunk; only a message split across chunks is copied, once, into a buffer of
 * exactly its size. State is updated before each callback, so a callback that throws leaves the
 * parser consistent.
 */
import { audioSocketError, ErrorCodes, type AudioSocketError } from '../errors.js';
import { HEADER_SIZE, kindName, MAX_PAYLOAD } from './kinds.js';

/** Receives each parsed message. `payload` may be a view into the pushed chunk: copy it to keep it past the chunk's life if you mutate chunks. */
export type MessageCallback = (kind: number, payload: Buffer) => void;

/** Options of {@link MessageParser}. */
export interface ParserOptions {
  /** Largest payload accepted, 0..65535. A header announcing more fails the parser. Default 65535. */
  maxPayload?: number;
}

const EMPTY = Buffer.alloc(0);

export class MessageParser {
  // Read per chunk and per message first, together: V8 lays fields out in declaration order
  // (docs/architecture.md, "One outbound frame").
  #onMessage: MessageCallback;
  /** The `this` of `#onMessage` (see {@link deliverTo}). */
  #receiver: unknown = undefined;
  #error: AudioSocketError | null = null;
  #maxPayload: number;
  #bytes = 0;
  #messages = 0;
  // Partial header (when a chunk ends inside one), its bytes so far big-endian in one number:
  // no buffer per parser, since every call keeps one for its whole life.
  #header = 0;
  #headerFill = 0;
  // Partial payload (when a chunk ends inside one).
  #payload: Buffer | null = null;
  #payloadFill = 0;
  #kind = 0;

  constructor(onMessage: MessageCallback, options: ParserOptions = {}) {
    const max = options.maxPayload ?? MAX_PAYLOAD;
    if (!Number.isInteger(max) || max < 0 || max > MAX_PAYLOAD) {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `maxPayload must be an integer 0..${MAX_PAYLOAD}, got ${max}`);
    }
    this.#onMessage = onMessage;
    this.#maxPayload = max;
  }

  /** Receives each message; can be replaced (a connection hands its parser over to the call it became). */
  get onMessage(): MessageCallback {
    return this.#onMessage;
  }

  set onMessage(callback: MessageCallback) {
    this.#onMessage = callback;
    this.#receiver = undefined;
  }

  /**
   * Sends each message to `callback` called with `receiver` as `this`, as `Array.prototype.forEach`
   * does with its `thisArg`. One function shared by many parsers and an object each, instead of a
   * closure each: a message reaches its receiver in one step (a server parses for thousands of calls).
   */
  deliverTo<R>(callback: (this: R, kind: number, payload: Buffer) => void, receiver: R): void {
    this.#onMessage = callback;
    this.#receiver = receiver;
  }

  /** Largest payload accepted; can be changed between pushes (e.g. 16 until a UUID has arrived). */
  get maxPayload(): number {
    return this.#maxPayload;
  }

  set maxPayload(value: number) {
    if (!Number.isInteger(value) || value < 0 || value > MAX_PAYLOAD) {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `maxPayload must be an integer 0..${MAX_PAYLOAD}, got ${value}`);
    }
    this.#maxPayload = value;
  }

  /** Bytes pushed so far, whatever became of them. */
  get bytesPushed(): number {
    return this.#bytes;
  }

  /** Number of complete messages delivered so far. */
  get messageCount(): number {
    return this.#messages;
  }

  /** True while a message has been started but not completed. */
  get midMessage(): boolean {
    return this.#headerFill > 0 || this.#payload !== null;
  }

  /** Bytes held for the message in progress (header and payload). */
  get bufferedBytes(): number {
    return this.#headerFill + (this.#payload === null ? 0 : HEADER_SIZE + this.#payloadFill);
  }

  /** The error that stopped the parser, if any. A failed parser ignores further input. */
  get error(): AudioSocketError | null {
    return this.#error;
  }

  /**
   * Parses one chunk. Throws an {@link AudioSocketError} (`ERR_AUDIOSOCKET_PAYLOAD_TOO_LARGE`) when
   * a header announces a payload above `maxPayload`; messages before it have been delivered.
   */
  push(chunk: Uint8Array): void {
    this.#bytes += chunk.byteLength;
    if (this.#error !== null) return;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const len = buf.length;
    let off = 0;
    while (off < len) {
      const partial = this.#payload;
      if (partial !== null) {
        const n = Math.min(partial.length - this.#payloadFill, len - off);
        buf.copy(partial, this.#payloadFill, off, off + n);
        off += n;
        this.#payloadFill += n;
        if (this.#payloadFill < partial.length) return;
        this.#payload = null;
        this.#payloadFill = 0;
        this.#deliver(this.#kind, partial);
        continue;
      }

      let kind: number;
      let size: number;
      if (this.#headerFill === 0 && len - off >= HEADER_SIZE) {
        kind = buf[off]!;
        size = (buf[off + 1]! << 8) | buf[off + 2]!;
        off += HEADER_SIZE;
      } else {
        while (this.#headerFill < HEADER_SIZE && off < len) {
          this.#header = (this.#header << 8) | buf[off++]!;
          this.#headerFill++;
        }
        if (this.#headerFill < HEADER_SIZE) return;
        const header = this.#header;
        this.#header = 0;
        this.#headerFill = 0;
        kind = header >>> 16;
        size = header & 0xffff;
      }

      if (size > this.#maxPayload) {
        this.#error = audioSocketError(
          ErrorCodes.PAYLOAD_TOO_LARGE,
          `message of kind ${kindName(kind)} announces ${size} payload bytes, above maxPayload ${this.#maxPayload}`,
        );
        throw this.#error;
      }
      if (size === 0) {
        this.#deliver(kind, EMPTY);
      } else if (len - off >= size) {
        const payload = buf.subarray(off, off + size);
        off += size;
        this.#deliver(kind, payload);
      } else {
        const payload = Buffer.allocUnsafe(size);
        const n = len - off;
        buf.copy(payload, 0, off, len);
        this.#kind = kind;
        this.#payload = payload;
        this.#payloadFill = n;
        return;
      }
    }
  }

  /**
   * Declares the end of the stream. Returns `null` if it ended between messages, otherwise an
   * `ERR_AUDIOSOCKET_TRUNCATED` error describing the message that was cut (it is also stored in
   * {@link error}).
   */
  end(): AudioSocketError | null {
    if (this.#error !== null) return this.#error;
    if (!this.midMessage) return null;
    const what =
      this.#payload !== null
        ? `payload of a ${kindName(this.#kind)} message (${this.#payloadFill} of ${this.#payload.length} bytes received)`
        : `message header (${this.#headerFill} of ${HEADER_SIZE} bytes received)`;
    this.#error = audioSocketError(ErrorCodes.TRUNCATED, `stream ended in the middle of a ${what}`);
    this.#payload = null;
    this.#header = 0;
    this.#headerFill = 0;
    return this.#error;
  }

  #deliver(kind: number, payload: Buffer): void {
    this.#messages++;
    this.#onMessage.call(this.#receiver, kind, payload);
  }
}
