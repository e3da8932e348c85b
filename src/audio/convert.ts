/**
 * Streaming byte-to-byte conversion between two {@link AudioFormat}s.
 *
 * Pipeline per chunk: carry any partial sample frame from the previous chunk, decode to 16-bit
 * samples (G.711 tables or little-endian slin), mix stereo down to mono before resampling (half
 * the work), resample only when the rates differ, duplicate mono up to stereo after resampling,
 * encode. One converter per call and direction: it holds streaming state.
 * @module
 */

import { audioSocketError, ErrorCodes } from '../errors.js';
import { bytesPerSample, parseFormat, sameFormat, type AudioFormat, type Encoding, type FormatSpec } from './format.js';
import { decodeAlaw, decodeUlaw, encodeAlaw, encodeUlaw } from './g711.js';
import { monoToStereo, stereoToMono } from './mix.js';
import { readSlin, writeSlin } from './pcm.js';
import { createResampler, type Resampler } from './resample.js';

/** A streaming converter from one format to another. See {@link createConverter}. */
export interface Converter {
  /** Input format. */
  readonly from: AudioFormat;
  /** Output format. */
  readonly to: AudioFormat;
  /** Bytes of an incomplete input sample frame held back for the next {@link Converter.push}. */
  readonly pendingBytes: number;
  /**
   * Convert the next chunk of input bytes (any length, any alignment). Returns the converted
   * bytes available so far; they may be empty (partial frame, or the resampler still filling).
   * For an identity conversion the result shares memory with `chunk` (no copy) unless a partial
   * frame had to be joined; otherwise it is one fresh Buffer.
   */
  push(chunk: Uint8Array): Buffer;
  /**
   * End of stream: return what the resampler still holds so that the total output matches the
   * total input duration (exactly `round(frames * to.sampleRate / from.sampleRate)` frames). A
   * trailing partial input frame cannot be converted and is dropped. The converter can then take a new stream.
   */
  flush(): Buffer;
  /** Release the resampler's WASM memory. Idempotent; `push`/`flush` throw afterwards. */
  dispose(): void;
}

/** Options for {@link createConverter}. */
export interface ConverterOptions {
  /** SpeexDSP quality 0..10 when resampling; default 5 (`DEFAULT_RESAMPLER_QUALITY` of `audiosocket/audio`). */
  readonly quality?: number;
}

const EMPTY = Buffer.alloc(0);

function asBuffer(bytes: Uint8Array, start: number, end: number): Buffer {
  if (Buffer.isBuffer(bytes) && start === 0 && end === bytes.length) return bytes;
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start);
}

function decodeInto(encoding: Encoding, bytes: Uint8Array, dst: Int16Array, dstOffset: number): number {
  switch (encoding) {
    case 'slin':
      return readSlin(bytes, dst, dstOffset, bytes.length >> 1);
    case 'ulaw':
      return decodeUlaw(bytes, dst, dstOffset);
    case 'alaw':
      return decodeAlaw(bytes, dst, dstOffset);
  }
}

function encodeToBuffer(encoding: Encoding, samples: Int16Array): Buffer {
  if (samples.length === 0) return EMPTY;
  switch (encoding) {
    case 'slin': {
      const out = Buffer.allocUnsafe(samples.length * 2);
      writeSlin(samples, out, 0);
      return out;
    }
    case 'ulaw': {
      const out = Buffer.allocUnsafe(samples.length);
      encodeUlaw(samples, out, 0);
      return out;
    }
    case 'alaw': {
      const out = Buffer.allocUnsafe(samples.length);
      encodeAlaw(samples, out, 0);
      return out;
    }
  }
}

class StreamConverter implements Converter {
  readonly from: AudioFormat;
  readonly to: AudioFormat;
  private readonly frameBytes: number;
  private readonly identity: boolean;
  private readonly resampler: Resampler | undefined;
  /** Start of an incomplete input frame (at most frameBytes - 1 bytes). */
  private readonly carry: Uint8Array;
  private carryLength = 0;
  /** Reused decode buffer, interleaved in the input channel layout. */
  private samples = new Int16Array(0);
  /** Reused buffer for mono -> stereo expansion. */
  private stereo = new Int16Array(0);
  private disposed = false;

  constructor(from: AudioFormat, to: AudioFormat, options: ConverterOptions) {
    this.from = from;
    this.to = to;
    this.frameBytes = bytesPerSample(from);
    this.carry = new Uint8Array(this.frameBytes);
    this.identity = sameFormat(from, to);
    this.resampler =
      from.sampleRate === to.sampleRate
        ? undefined
        : createResampler({
            inputRate: from.sampleRate,
            outputRate: to.sampleRate,
            // Resample in stereo only when both ends are stereo; otherwise mix down first / up after.
            channels: from.channels === 2 && to.channels === 2 ? 2 : 1,
            ...(options.quality === undefined ? {} : { quality: options.quality }),
          });
  }

  get pendingBytes(): number {
    return this.carryLength;
  }

  push(chunk: Uint8Array): Buffer {
    if (this.disposed) throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'converter has been disposed');
    if (!(chunk instanceof Uint8Array)) {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'converter input must be a Buffer or Uint8Array');
    }
    const fb = this.frameBytes;
    const held = this.carryLength;
    const frames = Math.floor((held + chunk.length) / fb);
    if (frames === 0) {
      this.carry.set(chunk, held);
      this.carryLength = held + chunk.length;
      return EMPTY;
    }
    // Bytes of `chunk` that belong to whole frames; the rest becomes the new carry.
    const used = frames * fb - held;

    if (this.identity) {
      let out: Buffer;
      if (held === 0) {
        out = asBuffer(chunk, 0, used);
      } else {
        out = Buffer.allocUnsafe(frames * fb);
        out.set(this.carry.subarray(0, held), 0);
        out.set(chunk.subarray(0, used), held);
      }
      this.keepTail(chunk, used);
      return out;
    }

    const channels = this.from.channels;
    const count = frames * channels;
    if (this.samples.length < count) this.samples = new Int16Array(Math.max(count, 2 * this.samples.length));
    const samples = this.samples.subarray(0, count);
    let offset = 0;
    let pos = 0;
    if (held > 0) {
      // Complete the frame that straddles the chunk border, decode it on its own.
      pos = fb - held;
      this.carry.set(chunk.subarray(0, pos), held);
      offset = decodeInto(this.from.encoding, this.carry, samples, 0);
    }
    decodeInto(this.from.encoding, chunk.subarray(pos, used), samples, offset);
    this.keepTail(chunk, used);
    return this.finish(samples, false);
  }

  flush(): Buffer {
    if (this.disposed) throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'converter has been disposed');
    this.carryLength = 0;
    if (this.resampler === undefined) return EMPTY;
    return this.finish(this.resampler.flush(), true);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.resampler?.dispose();
  }

  private keepTail(chunk: Uint8Array, used: number): void {
    this.carry.set(chunk.subarray(used), 0);
    this.carryLength = chunk.length - used;
  }

  /** Mix, resample, expand, encode. `resampled` = the samples already came out of the resampler. */
  private finish(input: Int16Array, resampled: boolean): Buffer {
    let x = input;
    if (!resampled) {
      if (this.from.channels === 2 && this.to.channels === 1) x = stereoToMono(x, x); // in place, our scratch
      // processView: no copy; the view is consumed below before any other WASM call.
      if (this.resampler !== undefined) x = this.resampler.processView(x);
    }
    if (this.from.channels === 1 && this.to.channels === 2) {
      if (this.stereo.length < 2 * x.length) this.stereo = new Int16Array(Math.max(2 * x.length, 2 * this.stereo.length));
      x = monoToStereo(x, this.stereo.subarray(0, 2 * x.length));
    }
    return encodeToBuffer(this.to.encoding, x);
  }
}

/**
 * Create a streaming converter from `from` to `to` (names like `'ulaw'`, `'slin16'` or format objects).
 *
 * When the sample rates differ, {@link loadResampler} must have completed first.
 * @example
 * await loadResampler();
 * const up = createConverter('ulaw', 'slin16');   // Asterisk -> speech-to-text
 * const down = createConverter({ sampleRate: 24000 }, 'ulaw'); // text-to-speech -> Asterisk
 * @throws AudioSocketError `INVALID_FORMAT` for a bad format, `INVALID_ARGUMENT` when resampling is needed but not loaded.
 */
export function createConverter(from: FormatSpec, to: FormatSpec, options: ConverterOptions = {}): Converter {
  return new StreamConverter(parseFormat(from), parseFormat(to), options);
}
