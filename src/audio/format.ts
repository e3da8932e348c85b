/**
 * Audio format descriptions: what the bytes of a stream mean.
 *
 * Asterisk speaks signed 16-bit little-endian linear PCM ("slin") at a handful of rates, and
 * G.711 u-law / a-law at 8 kHz. Programs on the other side want other rates, stereo, WAV files.
 * An {@link AudioFormat} names all of that in one small immutable object.
 * @module
 */

import { audioSocketError, ErrorCodes } from '../errors.js';

/** Sample encoding: `slin` = signed 16-bit little-endian PCM; `ulaw` / `alaw` = G.711, one byte per sample. */
export type Encoding = 'slin' | 'ulaw' | 'alaw';

/** A fully specified audio format. Objects returned by {@link parseFormat} are frozen. */
export interface AudioFormat {
  /** How each sample is stored. */
  readonly encoding: Encoding;
  /** Samples per second per channel, integer 8000..192000. */
  readonly sampleRate: number;
  /** 1 = mono, 2 = interleaved stereo (left first). */
  readonly channels: 1 | 2;
}

/** Asterisk's format names (all mono). */
export type FormatName = 'slin' | 'slin12' | 'slin16' | 'slin24' | 'slin32' | 'slin44' | 'slin48' | 'slin96' | 'slin192' | 'ulaw' | 'alaw';

/** Anything {@link parseFormat} accepts: a name, a full format, or a partial one (defaults: slin, 8000 Hz, mono). */
export type FormatSpec =
  FormatName | AudioFormat | { readonly encoding?: Encoding; readonly sampleRate?: number; readonly channels?: 1 | 2 };

/** Lowest sample rate accepted anywhere in the audio layer. */
export const MIN_SAMPLE_RATE = 8000;
/** Highest sample rate accepted anywhere in the audio layer. */
export const MAX_SAMPLE_RATE = 192000;

const ENCODINGS: readonly Encoding[] = ['slin', 'ulaw', 'alaw'];

/** Formats made here: valid and frozen, so {@link parseFormat} hands them back as they are (an echo passes one per frame). */
const MADE = new WeakSet<AudioFormat>();

const NAMED: Readonly<Record<FormatName, AudioFormat>> = {
  slin: fmt('slin', 8000),
  slin12: fmt('slin', 12000),
  slin16: fmt('slin', 16000),
  slin24: fmt('slin', 24000),
  slin32: fmt('slin', 32000),
  slin44: fmt('slin', 44100),
  slin48: fmt('slin', 48000),
  slin96: fmt('slin', 96000),
  slin192: fmt('slin', 192000),
  ulaw: fmt('ulaw', 8000),
  alaw: fmt('alaw', 8000),
};

/** Every Asterisk format name, in rate order. */
export const FORMAT_NAMES: readonly FormatName[] = Object.freeze(Object.keys(NAMED) as FormatName[]);

function fmt(encoding: Encoding, sampleRate: number, channels: 1 | 2 = 1): AudioFormat {
  const format = Object.freeze({ encoding, sampleRate, channels });
  MADE.add(format);
  return format;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  return typeof value;
}

/**
 * Turn a name or (partial) description into a validated, frozen {@link AudioFormat}.
 *
 * @example parseFormat('slin16') // { encoding: 'slin', sampleRate: 16000, channels: 1 }
 * @example parseFormat({ sampleRate: 24000, channels: 2 })
 * @throws AudioSocketError `INVALID_FORMAT` naming the bad value and what is accepted.
 */
export function parseFormat(spec: FormatSpec): AudioFormat {
  if (typeof spec === 'object' && spec !== null && MADE.has(spec as AudioFormat)) return spec as AudioFormat;
  if (typeof spec === 'string') {
    const named = Object.hasOwn(NAMED, spec) ? NAMED[spec] : undefined;
    if (named === undefined) {
      throw audioSocketError(
        ErrorCodes.INVALID_FORMAT,
        `unknown audio format name ${describe(spec)}; accepted: ${FORMAT_NAMES.join(', ')}`,
      );
    }
    return named;
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw audioSocketError(
      ErrorCodes.INVALID_FORMAT,
      `audio format must be a name (${FORMAT_NAMES.join(', ')}) or an object { encoding, sampleRate, channels }, got ${describe(spec)}`,
    );
  }
  const { encoding = 'slin', sampleRate = 8000, channels = 1 } = spec;
  if (!ENCODINGS.includes(encoding)) {
    throw audioSocketError(ErrorCodes.INVALID_FORMAT, `unknown encoding ${describe(encoding)}; accepted: ${ENCODINGS.join(', ')}`);
  }
  if (!Number.isInteger(sampleRate) || sampleRate < MIN_SAMPLE_RATE || sampleRate > MAX_SAMPLE_RATE) {
    throw audioSocketError(
      ErrorCodes.INVALID_FORMAT,
      `invalid sample rate ${describe(sampleRate)}; accepted: an integer from ${MIN_SAMPLE_RATE} to ${MAX_SAMPLE_RATE} Hz`,
    );
  }
  if (channels !== 1 && channels !== 2) {
    throw audioSocketError(ErrorCodes.INVALID_FORMAT, `invalid channel count ${describe(channels)}; accepted: 1 (mono) or 2 (stereo)`);
  }
  // Hand back the shared named object when there is one, so identity comparisons stay cheap.
  for (const name of FORMAT_NAMES) {
    const f = NAMED[name];
    if (channels === 1 && f.encoding === encoding && f.sampleRate === sampleRate) return f;
  }
  return fmt(encoding, sampleRate, channels);
}

/**
 * A short human-readable name: the Asterisk name when there is one (`'slin16'`, `'ulaw'`),
 * otherwise e.g. `'slin 22050 Hz stereo'`.
 */
export function formatName(f: AudioFormat): string {
  if (f.channels === 1) {
    for (const name of FORMAT_NAMES) {
      const n = NAMED[name];
      if (n.encoding === f.encoding && n.sampleRate === f.sampleRate) return name;
    }
  }
  return `${f.encoding} ${f.sampleRate} Hz ${f.channels === 2 ? 'stereo' : 'mono'}`;
}

/** True when both describe the same encoding, rate and channel count. */
export function sameFormat(a: AudioFormat, b: AudioFormat): boolean {
  return a.encoding === b.encoding && a.sampleRate === b.sampleRate && a.channels === b.channels;
}

/** Bytes per sample frame (one sample for every channel): 2 for slin, 1 for G.711, times channels. */
export function bytesPerSample(f: AudioFormat): number {
  return (f.encoding === 'slin' ? 2 : 1) * f.channels;
}

/**
 * Bytes in `frameMs` milliseconds of audio, e.g. slin 8 kHz 20 ms = 320, slin44 20 ms = 1764, ulaw 20 ms = 160.
 * @throws AudioSocketError `INVALID_ARGUMENT` if `frameMs` is not positive or does not hold a whole number of samples
 *   (44.1 kHz × 1 ms = 44.1 samples): a pacer built on a fractional frame would drift.
 */
export function bytesPerFrame(f: AudioFormat, frameMs: number): number {
  if (!(typeof frameMs === 'number' && Number.isFinite(frameMs) && frameMs > 0)) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `frameMs must be a positive number, got ${describe(frameMs)}`);
  }
  const samples = (f.sampleRate * frameMs) / 1000;
  // Tolerate floating-point dust (e.g. 0.1 ms steps) but not genuinely fractional frames.
  const whole = Math.round(samples);
  if (Math.abs(samples - whole) > 1e-9 || whole === 0) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `${frameMs} ms at ${f.sampleRate} Hz is ${samples} samples, not a whole number`);
  }
  return whole * bytesPerSample(f);
}

/** Duration in milliseconds of the whole sample frames in `byteLength` bytes (a trailing partial frame is ignored). */
export function durationMs(f: AudioFormat, byteLength: number): number {
  if (!Number.isInteger(byteLength) || byteLength < 0) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `byteLength must be a non-negative integer, got ${describe(byteLength)}`);
  }
  return (Math.floor(byteLength / bytesPerSample(f)) * 1000) / f.sampleRate;
}

/** The byte value that encodes silence: 0x00 for slin, 0xFF for u-law, 0xD5 for a-law. */
export function silenceByte(encoding: Encoding): number {
  switch (encoding) {
    case 'slin':
      return 0x00;
    case 'ulaw':
      return 0xff;
    case 'alaw':
      return 0xd5;
    default:
      throw audioSocketError(ErrorCodes.INVALID_FORMAT, `unknown encoding ${describe(encoding)}; accepted: ${ENCODINGS.join(', ')}`);
  }
}

/** Fill `buf` with silence in `encoding` and return it. */
export function fillSilence<T extends Uint8Array>(buf: T, encoding: Encoding): T {
  buf.fill(silenceByte(encoding));
  return buf;
}
