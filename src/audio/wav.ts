/**
 * WAV (RIFF/WAVE) reading and writing.
 *
 * The parser walks the RIFF chunk list instead of assuming a 44-byte header: it skips LIST, fact,
 * and unknown chunks, honours the pad byte after odd-sized chunks, resolves
 * WAVE_FORMAT_EXTENSIBLE by its sub-format GUID, and copes with files that streaming writers
 * (or killed processes) left with a data size of 0 or 0xFFFFFFFF. {@link decodeWav} turns any
 * supported sample encoding into slin (or keeps G.711 as is) without resampling, ready for
 * {@link createConverter}.
 * @module
 */

import { open, readFile, type FileHandle } from 'node:fs/promises';
import { audioSocketError, ErrorCodes } from '../errors.js';
import { bytesPerSample, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, parseFormat, type AudioFormat, type FormatSpec } from './format.js';
import { writeSlin } from './pcm.js';

/** How samples are stored in a WAV file's data chunk. */
export type WavSampleFormat = 'u8' | 's16' | 's24' | 's32' | 'f32' | 'f64' | 'ulaw' | 'alaw';

/** The format of a WAV file as declared in its `fmt ` chunk. */
export interface WavFormat {
  /** Sample storage, derived from the format tag and bit depth. */
  readonly sampleFormat: WavSampleFormat;
  /** 1 = PCM, 3 = IEEE float, 6 = A-law, 7 = u-law (taken from the sub-format GUID when {@link WavFormat.extensible}). */
  readonly formatTag: number;
  /** True when the file used WAVE_FORMAT_EXTENSIBLE (0xFFFE). */
  readonly extensible: boolean;
  /** Samples per second per channel. */
  readonly sampleRate: number;
  /** 1 or 2 (interleaved). */
  readonly channels: 1 | 2;
  /** Container bits per sample. */
  readonly bitsPerSample: number;
  /** Bytes per sample frame (all channels). */
  readonly blockAlign: number;
}

/** Result of {@link parseWav}. */
export interface ParsedWav {
  /** The declared format. */
  readonly format: WavFormat;
  /** The audio bytes: a view into the input (no copy), trimmed to whole sample frames. */
  readonly data: Buffer;
  /** The data chunk declared its size as 0 or 0xFFFFFFFF (a streaming writer, or a writer killed before closing); the rest of the file was taken. */
  readonly sizeUnknown: boolean;
  /** The data chunk declared more bytes than the file holds; `data` is what there is. */
  readonly truncated: boolean;
  /** The data size written in the header, in bytes. */
  readonly declaredDataBytes: number;
}

/** Result of {@link decodeWav} and {@link readWavFile}. */
export interface DecodedWav {
  /** slin at the file's rate and channel count, or ulaw/alaw when the file held G.711. */
  readonly format: AudioFormat;
  /** Audio bytes in {@link DecodedWav.format}. */
  readonly data: Buffer;
  /** What the file declared. */
  readonly source: WavFormat;
  /** See {@link ParsedWav.sizeUnknown}. */
  readonly sizeUnknown: boolean;
  /** See {@link ParsedWav.truncated}. */
  readonly truncated: boolean;
  /** See {@link ParsedWav.declaredDataBytes}. */
  readonly declaredDataBytes: number;
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_ALAW = 6;
const WAVE_FORMAT_MULAW = 7;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/** Bytes 2..15 of every KSDATAFORMAT_SUBTYPE_* GUID built from a classic format tag. */
const GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

const TAG_NAMES: Readonly<Record<number, string>> = {
  0x0000: 'unknown',
  0x0002: 'Microsoft ADPCM',
  0x0011: 'IMA ADPCM',
  0x0031: 'GSM 6.10',
  0x0040: 'G.721 ADPCM',
  0x0050: 'MPEG',
  0x0055: 'MPEG Layer 3 (MP3)',
  0x0064: 'G.726 ADPCM',
  0x00ff: 'AAC',
  0x1610: 'HE-AAC',
  0x2000: 'AC-3',
  0xf1ac: 'FLAC',
};

const SUPPORTED = 'PCM 8/16/24/32-bit, IEEE float 32/64-bit, A-law, u-law, or WAVE_FORMAT_EXTENSIBLE of those';

function malformed(message: string): Error {
  return audioSocketError(ErrorCodes.WAV_MALFORMED, `malformed WAV: ${message}`);
}

function unsupported(message: string): Error {
  return audioSocketError(
    ErrorCodes.WAV_UNSUPPORTED,
    `unsupported WAV: ${message}; supported: ${SUPPORTED}, mono or stereo, ${MIN_SAMPLE_RATE}..${MAX_SAMPLE_RATE} Hz`,
  );
}

/** What a file that is not a WAV most likely is, and how to turn it into one. */
export interface NonWavGuess {
  /** A short name: `MP3`, `Ogg`, `FLAC`, ... or `raw audio or an unknown format`. */
  readonly kind: string;
  /** What gave it away, e.g. "an ID3 tag" or "MPEG audio frame sync 0xFF 0xF3". */
  readonly evidence: string;
  /** A command that converts `path` to a 16-bit mono 8 kHz WAV. */
  convert(path: string): string;
}

/**
 * `FILE.mp3` -> `FILE-8k.wav`: a name of its own, so the command neither overwrites a WAV already
 * there (sox would, silently) nor its own input when that is named `.wav`.
 */
function wavName(path: string): string {
  return `${path.replace(/\.[A-Za-z0-9]{1,5}$/, '')}-8k.wav`;
}

function quote(path: string): string {
  return /^[\w./@%+=:,-]+$/.test(path) ? path : `'${path.replace(/'/g, "'\\''")}'`;
}

const ffmpeg = (path: string): string => `ffmpeg -i ${quote(path)} -ar 8000 -ac 1 -c:a pcm_s16le ${quote(wavName(path))}`;
const sox = (path: string): string => `sox ${quote(path)} -r 8000 -c 1 -b 16 ${quote(wavName(path))}`;

/** Printable UTF-8/ASCII text (and whitespace) throughout the first 512 bytes: no audio looks like that. */
function looksLikeText(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 512);
  if (n < 4) return false;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return false;
    if (b === 0x7f) return false;
  }
  return true;
}

/**
 * Recognises common audio files that are not WAV from their first bytes: MP3 (an ID3 tag or an
 * MPEG audio frame sync 0xFFEx/0xFFFx), AAC (ADTS), Ogg (Vorbis, Opus), FLAC, AIFF, AU, MP4/M4A,
 * AMR, CAF. Anything else without a RIFF header is taken for raw (headerless) samples.
 * Returns undefined for RIFF/WAVE (and RF64/RIFX) files.
 */
export function guessNonWav(bytes: Uint8Array): NonWavGuess | undefined {
  const at = (pos: number, id: string): boolean => bytes.length >= pos + id.length && idIs4(bytes, pos, id);
  if (at(0, 'RIFF') || at(0, 'RF64') || at(0, 'BW64') || at(0, 'RIFX')) return undefined;
  const both = (p: string): string => `${ffmpeg(p)} (or ${sox(p)})`;
  if (at(0, 'ID3')) return { kind: 'MP3', evidence: 'an ID3 tag', convert: ffmpeg };
  if (bytes.length >= 2 && bytes[0] === 0xff && (bytes[1]! & 0xe0) === 0xe0) {
    const layer = (bytes[1]! >> 1) & 3;
    const sync = `${hex(bytes[0], 2)} ${hex(bytes[1]!, 2)}`;
    if (layer === 0) return { kind: 'AAC', evidence: `an ADTS frame sync ${sync}`, convert: ffmpeg };
    return { kind: 'MP3', evidence: `an MPEG audio frame sync ${sync}`, convert: ffmpeg };
  }
  if (at(0, 'OggS')) return { kind: 'Ogg (Vorbis or Opus)', evidence: "the 'OggS' signature", convert: both };
  if (at(0, 'fLaC')) return { kind: 'FLAC', evidence: "the 'fLaC' signature", convert: both };
  if (at(0, 'FORM') && (at(8, 'AIFF') || at(8, 'AIFC'))) return { kind: 'AIFF', evidence: "a 'FORM' AIFF header", convert: both };
  if (at(0, '.snd')) return { kind: 'Sun/NeXT AU', evidence: "the '.snd' signature", convert: both };
  if (at(4, 'ftyp')) return { kind: 'MP4/M4A', evidence: "an 'ftyp' box", convert: ffmpeg };
  if (at(0, '#!AMR')) return { kind: 'AMR', evidence: "the '#!AMR' signature", convert: ffmpeg };
  if (at(0, 'caff')) return { kind: 'Core Audio (CAF)', evidence: "the 'caff' signature", convert: ffmpeg };
  if (looksLikeText(bytes)) {
    return {
      kind: 'a text file, not audio',
      evidence: 'only printable text in its first bytes',
      convert: () => 'give a WAV file (or an MP3, Ogg, FLAC ... converted with ffmpeg or sox)',
    };
  }
  return {
    kind: 'raw audio or an unknown format',
    evidence: 'no RIFF header',
    // Headerless samples: the format must be stated; Asterisk's .sln/.raw files are 16-bit 8 kHz.
    convert: (p) =>
      `if it is raw 16-bit 8 kHz mono (Asterisk .sln): sox -t raw -r 8000 -e signed -b 16 -c 1 ${quote(p)} ${quote(wavName(p))}` +
      ` (or ffmpeg -f s16le -ar 8000 -ac 1 -i ${quote(p)} ${quote(wavName(p))})`,
  };
}

function idIs4(bytes: Uint8Array, pos: number, id: string): boolean {
  for (let i = 0; i < id.length; i++) if (bytes[pos + i] !== id.charCodeAt(i)) return false;
  return true;
}

function hex(n: number, digits = 4): string {
  return `0x${n.toString(16).toUpperCase().padStart(digits, '0')}`;
}

/** A chunk id as text when printable, otherwise as hex bytes. */
function showId(bytes: Uint8Array, pos: number): string {
  const id = bytes.subarray(pos, pos + 4);
  return plausibleId(bytes, pos) ? `'${String.fromCharCode(...id)}'` : `bytes ${[...id].map((b) => hex(b, 2)).join(' ')}`;
}

function plausibleId(bytes: Uint8Array, pos: number): boolean {
  if (pos + 4 > bytes.length) return false;
  for (let i = pos; i < pos + 4; i++) {
    const c = bytes[i]!;
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

function idIs(bytes: Uint8Array, pos: number, id: string): boolean {
  for (let i = 0; i < 4; i++) if (bytes[pos + i] !== id.charCodeAt(i)) return false;
  return true;
}

interface Span {
  readonly offset: number;
  readonly size: number;
}

function parseFmt(view: DataView, bytes: Uint8Array, fmt: Span): WavFormat {
  const o = fmt.offset;
  if (fmt.size < 16) throw malformed(`'fmt ' chunk is ${fmt.size} bytes, at least 16 are needed`);
  let tag = view.getUint16(o, true);
  const channels = view.getUint16(o + 2, true);
  const sampleRate = view.getUint32(o + 4, true);
  const blockAlign = view.getUint16(o + 12, true);
  const bits = view.getUint16(o + 14, true);
  const extensible = tag === WAVE_FORMAT_EXTENSIBLE;
  if (extensible) {
    if (fmt.size < 40) throw malformed(`WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is ${fmt.size} bytes, 40 are needed`);
    const cbSize = view.getUint16(o + 16, true);
    if (cbSize < 22) throw malformed(`WAVE_FORMAT_EXTENSIBLE cbSize is ${cbSize}, 22 are needed`);
    tag = view.getUint16(o + 24, true);
    const tail = bytes.subarray(o + 26, o + 40);
    if (!GUID_TAIL.every((b, i) => tail[i] === b)) {
      const guid = [...bytes.subarray(o + 24, o + 40)].map((b) => b.toString(16).padStart(2, '0')).join('');
      throw unsupported(`WAVE_FORMAT_EXTENSIBLE with unknown sub-format GUID ${guid}`);
    }
  }
  if (channels === 0) throw malformed("'fmt ' declares 0 channels");
  if (sampleRate === 0) throw malformed("'fmt ' declares a sample rate of 0 Hz");
  const label = extensible ? `WAVE_FORMAT_EXTENSIBLE sub-format ${hex(tag)}` : `format tag ${hex(tag)}`;
  if (tag !== WAVE_FORMAT_PCM && tag !== WAVE_FORMAT_IEEE_FLOAT && tag !== WAVE_FORMAT_ALAW && tag !== WAVE_FORMAT_MULAW) {
    // Compressed formats legitimately declare 0 bits per sample, so name the codec first.
    throw unsupported(`${label}${TAG_NAMES[tag] === undefined ? '' : ` (${TAG_NAMES[tag]})`}`);
  }
  if (bits === 0) throw malformed("'fmt ' declares 0 bits per sample");

  let sampleFormat: WavSampleFormat;
  switch (tag) {
    case WAVE_FORMAT_PCM: {
      const byBits: Record<number, WavSampleFormat> = { 8: 'u8', 16: 's16', 24: 's24', 32: 's32' };
      const f = byBits[bits];
      if (f === undefined) throw unsupported(`${bits}-bit PCM samples`);
      sampleFormat = f;
      break;
    }
    case WAVE_FORMAT_IEEE_FLOAT:
      if (bits !== 32 && bits !== 64) throw unsupported(`${bits}-bit IEEE float samples`);
      sampleFormat = bits === 32 ? 'f32' : 'f64';
      break;
    case WAVE_FORMAT_ALAW:
    case WAVE_FORMAT_MULAW:
      if (bits !== 8) throw unsupported(`${bits}-bit ${tag === WAVE_FORMAT_ALAW ? 'A-law' : 'u-law'} samples`);
      sampleFormat = tag === WAVE_FORMAT_ALAW ? 'alaw' : 'ulaw';
      break;
  }
  if (channels > 2) throw unsupported(`${channels} channels`);
  if (sampleRate < MIN_SAMPLE_RATE || sampleRate > MAX_SAMPLE_RATE) throw unsupported(`sample rate ${sampleRate} Hz`);
  const expectedAlign = channels * (bits / 8);
  if (blockAlign !== expectedAlign) {
    throw malformed(`blockAlign is ${blockAlign}, but ${channels} channel(s) of ${bits}-bit samples need ${expectedAlign}`);
  }
  return { sampleFormat, formatTag: tag, extensible, sampleRate, channels: channels as 1 | 2, bitsPerSample: bits, blockAlign };
}

/**
 * Parse a WAV file held in memory. `data` in the result is a view into `bytes`.
 * @throws AudioSocketError `WAV_MALFORMED` for structural problems (not RIFF/WAVE, missing or
 *   truncated `fmt `, no `data`, chunks running past the end, inconsistent header fields) and
 *   `WAV_UNSUPPORTED` for well-formed files in an encoding, channel count or rate we cannot read.
 */
export function parseWav(bytes: Uint8Array): ParsedWav {
  if (!(bytes instanceof Uint8Array)) throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'parseWav expects a Buffer or Uint8Array');
  const len = bytes.length;
  if (len < 12) throw malformed(`file is ${len} bytes, too short for a RIFF/WAVE header (12 bytes)`);
  if (idIs(bytes, 0, 'RF64') || idIs(bytes, 0, 'BW64')) throw unsupported(`${showId(bytes, 0)} (64-bit RIFF) container`);
  if (idIs(bytes, 0, 'RIFX')) throw unsupported("big-endian 'RIFX' container");
  if (!idIs(bytes, 0, 'RIFF')) {
    const guess = guessNonWav(bytes)!;
    if (guess.kind.startsWith('a text file')) {
      throw malformed(`not a RIFF file: this is ${guess.kind} (${guess.evidence}); ${guess.convert('FILE')}`);
    }
    const what = guess.kind.startsWith('raw')
      ? `maybe ${guess.kind}`
      : `this is ${/^([AEIOU]|MP)/.test(guess.kind) ? 'an' : 'a'} ${guess.kind} file (${guess.evidence})`;
    throw malformed(`not a RIFF file: starts with ${showId(bytes, 0)}, expected 'RIFF'; ${what}; convert it: ${guess.convert('FILE')}`);
  }
  if (!idIs(bytes, 8, 'WAVE')) throw malformed(`RIFF form type is ${showId(bytes, 8)}, expected 'WAVE'`);

  const view = new DataView(bytes.buffer, bytes.byteOffset, len);
  let fmt: Span | undefined;
  let data: Span | undefined;
  let declaredDataBytes = 0;
  let sizeUnknown = false;
  let truncated = false;
  // The RIFF size field is ignored: streaming writers leave it wrong. The file length bounds the walk.
  let pos = 12;
  while (pos + 8 <= len) {
    const size = view.getUint32(pos + 4, true);
    const body = pos + 8;
    const remaining = len - body;
    if (idIs(bytes, pos, 'data')) {
      if (data === undefined) {
        declaredDataBytes = size;
        let actual = size;
        if ((size === 0 && remaining > 0) || size === 0xffffffff) {
          sizeUnknown = true;
          actual = remaining;
        } else if (size > remaining) {
          truncated = true;
          actual = remaining;
        }
        data = { offset: body, size: actual };
        if (fmt !== undefined || sizeUnknown || truncated) break; // nothing after the audio matters
      }
    } else if (size > remaining) {
      if (idIs(bytes, pos, 'fmt ')) throw malformed(`'fmt ' chunk claims ${size} bytes but only ${remaining} remain in the file`);
      if (fmt !== undefined && data !== undefined) break; // trailing junk after a complete file
      throw malformed(`chunk ${showId(bytes, pos)} at offset ${pos} claims ${size} bytes but only ${remaining} remain in the file`);
    } else if (idIs(bytes, pos, 'fmt ') && fmt === undefined) {
      fmt = { offset: body, size };
    }
    let next = body + size;
    if ((size & 1) === 1) {
      // RIFF pads odd-sized chunks to an even length; a few writers forget the pad byte.
      next += 1;
      if (!plausibleId(bytes, next) && next - 1 + 8 <= len && plausibleId(bytes, next - 1)) next -= 1;
    }
    pos = next;
  }
  if (fmt === undefined) throw malformed(`no 'fmt ' chunk${data === undefined ? " and no 'data' chunk" : ''}`);
  if (data === undefined) throw malformed("no 'data' chunk");
  const format = parseFmt(view, bytes, fmt);
  const whole = data.size - (data.size % format.blockAlign);
  return {
    format,
    data: Buffer.from(bytes.buffer, bytes.byteOffset + data.offset, whole),
    sizeUnknown,
    truncated,
    declaredDataBytes,
  };
}

function clamp16(v: number): number {
  return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}

/**
 * Parse a WAV file and convert its samples to slin (16-bit little-endian) at the same rate and
 * channel count; u-law and a-law are kept as they are. 16-bit PCM is returned without copying.
 * Wider samples are rounded to 16 bits; floats are scaled by 32768 and clamped (NaN becomes 0).
 * @throws AudioSocketError as {@link parseWav}.
 */
export function decodeWav(bytes: Uint8Array): DecodedWav {
  const parsed = parseWav(bytes);
  const { format: src, data } = parsed;
  const channels = src.channels;
  const meta = { source: src, sizeUnknown: parsed.sizeUnknown, truncated: parsed.truncated, declaredDataBytes: parsed.declaredDataBytes };
  if (src.sampleFormat === 'ulaw' || src.sampleFormat === 'alaw' || src.sampleFormat === 's16') {
    const encoding = src.sampleFormat === 's16' ? 'slin' : src.sampleFormat;
    return { format: parseFormat({ encoding, sampleRate: src.sampleRate, channels }), data, ...meta };
  }
  const n = data.length / (src.bitsPerSample / 8);
  const out = new Int16Array(n);
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  switch (src.sampleFormat) {
    case 'u8':
      for (let i = 0; i < n; i++) out[i] = (data[i]! - 128) << 8;
      break;
    case 's24':
      for (let i = 0; i < n; i++) {
        const p = i * 3;
        const v = ((data[p]! | (data[p + 1]! << 8) | (data[p + 2]! << 16)) << 8) >> 8; // sign-extend 24 bits
        out[i] = clamp16((v + 128) >> 8); // round to nearest
      }
      break;
    case 's32':
      for (let i = 0; i < n; i++) out[i] = clamp16(Math.floor((view.getInt32(i * 4, true) + 32768) / 65536));
      break;
    case 'f32':
      for (let i = 0; i < n; i++) out[i] = clamp16(Math.round(view.getFloat32(i * 4, true) * 32768) || 0);
      break;
    case 'f64':
      for (let i = 0; i < n; i++) out[i] = clamp16(Math.round(view.getFloat64(i * 8, true) * 32768) || 0);
      break;
  }
  const bytesOut = Buffer.allocUnsafe(n * 2);
  writeSlin(out, bytesOut, 0);
  return { format: parseFormat({ encoding: 'slin', sampleRate: src.sampleRate, channels }), data: bytesOut, ...meta };
}

/**
 * Read and decode a WAV file (see {@link decodeWav}). A file that is not a WAV is named (MP3,
 * Ogg, FLAC, raw, ...) in the error, with a command that converts this very path.
 */
export async function readWavFile(path: string): Promise<DecodedWav> {
  const bytes = await readFile(path);
  try {
    return decodeWav(bytes);
  } catch (err) {
    const guess = bytes.length >= 12 ? guessNonWav(bytes) : undefined;
    if (guess && err instanceof Error) err.message = err.message.replace(guess.convert('FILE'), guess.convert(path));
    throw err;
  }
}

interface HeaderLayout {
  readonly header: Buffer;
  readonly riffSizeOffset: number;
  readonly dataSizeOffset: number;
  /** Offset of the `fact` sample count (G.711 only). */
  readonly factOffset: number | undefined;
}

/** Build a canonical header: RIFF, fmt (16 bytes for PCM, 18 + fact chunk for G.711), data. */
function buildHeader(format: AudioFormat, dataBytes: number, frames: number): HeaderLayout {
  const g711 = format.encoding !== 'slin';
  const fmtSize = g711 ? 18 : 16;
  const factSize = g711 ? 12 : 0;
  const headerLength = 12 + 8 + fmtSize + factSize + 8;
  const h = Buffer.alloc(headerLength);
  const block = bytesPerSample(format);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(riffSize(headerLength, dataBytes), 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(fmtSize, 16);
  h.writeUInt16LE(format.encoding === 'slin' ? WAVE_FORMAT_PCM : format.encoding === 'alaw' ? WAVE_FORMAT_ALAW : WAVE_FORMAT_MULAW, 20);
  h.writeUInt16LE(format.channels, 22);
  h.writeUInt32LE(format.sampleRate, 24);
  h.writeUInt32LE(format.sampleRate * block, 28);
  h.writeUInt16LE(block, 32);
  h.writeUInt16LE(g711 ? 8 : 16, 34);
  let p = 36;
  let factOffset: number | undefined;
  if (g711) {
    h.writeUInt16LE(0, 36); // cbSize
    h.write('fact', 38, 'latin1');
    h.writeUInt32LE(4, 42);
    h.writeUInt32LE(frames, 46);
    factOffset = 46;
    p = 50;
  }
  h.write('data', p, 'latin1');
  h.writeUInt32LE(dataBytes, p + 4);
  return { header: h, riffSizeOffset: 4, dataSizeOffset: p + 4, factOffset };
}

function riffSize(headerLength: number, dataBytes: number): number {
  if (dataBytes === PLACEHOLDER) return PLACEHOLDER;
  return headerLength - 8 + dataBytes + (dataBytes & 1);
}

/** Size written while a {@link WavWriter} is open: "unknown", as streaming writers do; {@link parseWav} reads to the end of the file. */
const PLACEHOLDER = 0xffffffff;
/** Largest data chunk that fits a RIFF size field next to our header. */
const MAX_DATA_BYTES = 0xffffffff - 64;

/**
 * A complete WAV file for `data` (raw bytes in `format`, whole sample frames) in memory.
 * @throws AudioSocketError `INVALID_ARGUMENT` when `data` is not a whole number of frames or too large.
 */
export function encodeWav(format: FormatSpec, data: Uint8Array): Buffer {
  const f = parseFormat(format);
  const block = bytesPerSample(f);
  if (data.length % block !== 0) {
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      `encodeWav: ${data.length} bytes is not a whole number of ${block}-byte sample frames`,
    );
  }
  if (data.length > MAX_DATA_BYTES) throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'encodeWav: data exceeds the 4 GiB WAV limit');
  const { header } = buildHeader(f, data.length, data.length / block);
  const pad = data.length & 1;
  const out = Buffer.alloc(header.length + data.length + pad);
  header.copy(out, 0);
  out.set(data, header.length);
  return out;
}

/**
 * Streaming WAV writer: writes the header first with placeholder sizes (0xFFFFFFFF, "unknown"),
 * appends audio with {@link WavWriter.write}, and patches the RIFF, data (and `fact`) sizes in
 * {@link WavWriter.close}. The file is a valid, exact WAV only after `close()`. If the process dies
 * first, the file keeps the placeholders; {@link parseWav} accepts that (`sizeUnknown: true`) and
 * so do most tools, reading to the end of the file. Create with {@link createWavWriter}.
 */
export class WavWriter {
  /** Path of the file being written. */
  readonly path: string;
  /** Format of the audio bytes passed to {@link WavWriter.write}. */
  readonly format: AudioFormat;
  private readonly fh: FileHandle;
  private readonly layout: HeaderLayout;
  private dataBytes = 0;
  /** Audio bytes on disk: `dataBytes` less what a failed write (disk full) did not store. */
  private storedBytes = 0;
  private queue: Promise<void>;
  private closing: Promise<void> | undefined;

  private constructor(path: string, format: AudioFormat, fh: FileHandle, layout: HeaderLayout) {
    this.path = path;
    this.format = format;
    this.fh = fh;
    this.layout = layout;
    this.queue = Promise.resolve();
  }

  /** @internal use {@link createWavWriter} */
  static async open(path: string, format: FormatSpec): Promise<WavWriter> {
    const f = parseFormat(format);
    const layout = buildHeader(f, PLACEHOLDER, PLACEHOLDER);
    const fh = await open(path, 'w');
    try {
      await fh.write(layout.header, 0, layout.header.length, 0);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    return new WavWriter(path, f, fh, layout);
  }

  /** Audio bytes accepted so far (excluding header and pad). */
  get bytesWritten(): number {
    return this.dataBytes;
  }

  /**
   * Append audio bytes. Writes are queued in call order, so awaiting each one is optional, but
   * `chunk` must not be modified until the returned promise settles. A failed write fails every
   * later write and `close()`.
   */
  write(chunk: Uint8Array): Promise<void> {
    if (this.closing !== undefined)
      return Promise.reject(audioSocketError(ErrorCodes.INVALID_ARGUMENT, `WavWriter for ${this.path} is closed`));
    if (!(chunk instanceof Uint8Array))
      return Promise.reject(audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'WavWriter.write expects a Buffer or Uint8Array'));
    if (this.dataBytes + chunk.length > MAX_DATA_BYTES) {
      return Promise.reject(
        audioSocketError(ErrorCodes.INVALID_ARGUMENT, `WavWriter for ${this.path}: data would exceed the 4 GiB WAV limit`),
      );
    }
    const position = this.layout.header.length + this.dataBytes;
    this.dataBytes += chunk.length;
    const p = this.queue.then(async () => {
      const { bytesWritten } = await this.fh.write(chunk, 0, chunk.length, position);
      this.storedBytes += bytesWritten;
      if (bytesWritten < chunk.length) {
        throw audioSocketError(
          ErrorCodes.INVALID_ARGUMENT,
          `WavWriter for ${this.path}: only ${bytesWritten} of ${chunk.length} bytes written`,
        );
      }
    });
    this.queue = p;
    return p;
  }

  /**
   * Finish the file: wait for queued writes, add the pad byte if the data length is odd, patch
   * the sizes, close the handle. Idempotent (later calls return the same promise). A trailing
   * partial sample frame is kept as written; readers ignore it.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // A failed write (a full disk) still leaves a valid file: the header gets the sizes of
      // the audio stored before it, overwriting bytes already on disk; then the error is thrown.
      let failure: Error | undefined;
      try {
        await this.queue.catch((err: Error) => (failure = err));
        const { header, riffSizeOffset, dataSizeOffset, factOffset } = this.layout;
        // Whole samples only, as a reader expects.
        const data = this.storedBytes - (this.storedBytes % bytesPerSample(this.format));
        const end = header.length + data;
        if ((data & 1) === 1) await this.fh.write(Buffer.alloc(1), 0, 1, end).catch(() => undefined);
        const u32 = Buffer.alloc(4);
        u32.writeUInt32LE(riffSize(header.length, data), 0);
        await this.fh.write(u32, 0, 4, riffSizeOffset);
        u32.writeUInt32LE(data, 0);
        await this.fh.write(u32, 0, 4, dataSizeOffset);
        if (factOffset !== undefined) {
          u32.writeUInt32LE(Math.floor(data / bytesPerSample(this.format)), 0);
          await this.fh.write(u32, 0, 4, factOffset);
        }
      } finally {
        await this.fh.close();
      }
      if (failure !== undefined) throw failure;
    })();
    return this.closing;
  }
}

/**
 * Open `path` for writing a WAV file of `format` (slin, u-law or a-law; mono or stereo; any rate).
 * @example
 * const w = await createWavWriter('call.wav', 'slin16');
 * await w.write(chunk); await w.close();
 */
export function createWavWriter(path: string, format: FormatSpec): Promise<WavWriter> {
  return WavWriter.open(path, format);
}
