import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWav, decodeWav, encodeWav, readWavFile, createWavWriter, guessNonWav } from '#lib/audio/wav.js';
import { parseFormat, type FormatSpec } from '#lib/audio/format.js';
import { slinToUlaw } from '#lib/audio/g711.js';
import { slinBytes, slinSamples } from '#lib/audio/pcm.js';
import { createConverter } from '#lib/audio/convert.js';
import { loadResampler } from '#lib/audio/resample.js';
import { AudioSocketError, ErrorCodes } from '#lib/errors.js';
import { prng, tone } from './audio-helpers.js';

// ---- An independent WAV builder, so the parser is not only tested against our own writer. ----

interface FmtSpec {
  tag: number;
  channels: number;
  rate: number;
  bits: number;
  blockAlign?: number;
  /** Write WAVE_FORMAT_EXTENSIBLE with this sub-format tag. */
  extensibleSubTag?: number;
  validBits?: number;
  /** Replace the GUID tail (bytes 2..15). */
  guidTail?: number[];
}

function chunk(id: string, body: Uint8Array, opts: { declaredSize?: number; pad?: boolean } = {}): Buffer {
  const h = Buffer.alloc(8);
  h.write(id, 0, 'latin1');
  h.writeUInt32LE(opts.declaredSize ?? body.length, 4);
  const pad = (opts.pad ?? true) && body.length % 2 === 1 ? Buffer.alloc(1) : Buffer.alloc(0);
  return Buffer.concat([h, body, pad]);
}

function fmtBody(f: FmtSpec): Buffer {
  const align = f.blockAlign ?? (f.channels * f.bits) / 8;
  const ext = f.extensibleSubTag !== undefined;
  const b = Buffer.alloc(ext ? 40 : 16);
  b.writeUInt16LE(ext ? 0xfffe : f.tag, 0);
  b.writeUInt16LE(f.channels, 2);
  b.writeUInt32LE(f.rate, 4);
  b.writeUInt32LE(f.rate * align, 8);
  b.writeUInt16LE(align, 12);
  b.writeUInt16LE(f.bits, 14);
  if (ext) {
    b.writeUInt16LE(22, 16);
    b.writeUInt16LE(f.validBits ?? f.bits, 18);
    b.writeUInt32LE(f.channels === 2 ? 3 : 4, 20);
    b.writeUInt16LE(f.extensibleSubTag!, 24);
    Buffer.from(f.guidTail ?? [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71]).copy(b, 26);
  }
  return b;
}

function riff(chunks: Buffer[], form = 'WAVE', magic = 'RIFF'): Buffer {
  const body = Buffer.concat(chunks);
  const h = Buffer.alloc(12);
  h.write(magic, 0, 'latin1');
  h.writeUInt32LE(4 + body.length, 4);
  h.write(form, 8, 'latin1');
  return Buffer.concat([h, body]);
}

const simpleWav = (f: FmtSpec, data: Uint8Array): Buffer => riff([chunk('fmt ', fmtBody(f)), chunk('data', data)]);

function assertWavError(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AudioSocketError, `expected AudioSocketError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

const rand = prng(42);
const samples = Int16Array.from({ length: 2000 }, (_, i) => (i < 4 ? [32767, -32768, 0, -1][i]! : Math.round((rand() * 2 - 1) * 32767)));

// ---- Round trips of every supported sample format ----

test('16-bit PCM round trip through encodeWav, mono and stereo, zero-copy decode', () => {
  for (const spec of ['slin', 'slin16', { sampleRate: 44100, channels: 2 }] as FormatSpec[]) {
    const format = parseFormat(spec);
    const data = slinBytes(samples);
    const wav = encodeWav(format, data);
    assert.equal(wav.length, 44 + data.length); // canonical header for PCM
    const parsed = parseWav(wav);
    assert.deepEqual(parsed.format, {
      sampleFormat: 's16',
      formatTag: 1,
      extensible: false,
      sampleRate: format.sampleRate,
      channels: format.channels,
      bitsPerSample: 16,
      blockAlign: 2 * format.channels,
    });
    assert.deepEqual(parsed.data, data);
    assert.equal(parsed.sizeUnknown, false);
    assert.equal(parsed.truncated, false);
    const decoded = decodeWav(wav);
    assert.deepEqual(decoded.format, parseFormat(spec));
    assert.equal(decoded.data.buffer, wav.buffer); // a view, not a copy
    assert.deepEqual(decoded.data, data);
  }
});

test('u-law and a-law round trip and stay G.711; odd length gets a pad byte', () => {
  for (const encoding of ['ulaw', 'alaw'] as const) {
    const data = Buffer.from(Array.from({ length: 1001 }, (_, i) => (i * 37) & 0xff));
    const wav = encodeWav(encoding, data);
    assert.equal(wav.length % 2, 0);
    const parsed = parseWav(wav);
    assert.equal(parsed.format.sampleFormat, encoding);
    assert.equal(parsed.format.formatTag, encoding === 'ulaw' ? 7 : 6);
    assert.deepEqual(parsed.data, data);
    const decoded = decodeWav(wav);
    assert.equal(decoded.format, parseFormat(encoding));
    assert.deepEqual(decoded.data, data);
    // fmt of 18 bytes (cbSize) and a fact chunk with the sample count, as non-PCM WAVs should have.
    assert.equal(wav.readUInt32LE(16), 18);
    assert.equal(wav.toString('latin1', 38, 42), 'fact');
    assert.equal(wav.readUInt32LE(46), 1001);
  }
});

test('8-bit unsigned PCM', () => {
  const u8 = Uint8Array.from({ length: 256 }, (_, i) => i);
  const d = decodeWav(simpleWav({ tag: 1, channels: 1, rate: 8000, bits: 8 }, u8));
  assert.equal(d.source.sampleFormat, 'u8');
  assert.equal(d.format, parseFormat('slin'));
  const s = slinSamples(d.data);
  for (let i = 0; i < 256; i++) assert.equal(s[i], (i - 128) * 256);
});

test('24-bit PCM (plain and extensible with 20 valid bits) rounds to 16 bits', () => {
  const n = samples.length;
  const exact = Buffer.alloc(n * 3);
  for (let i = 0; i < n; i++) exact.writeIntLE(samples[i]! * 256, i * 3, 3);
  const d = decodeWav(simpleWav({ tag: 1, channels: 2, rate: 48000, bits: 24 }, exact));
  assert.equal(d.source.sampleFormat, 's24');
  assert.deepEqual(d.format, parseFormat({ sampleRate: 48000, channels: 2 }));
  assert.deepEqual(slinSamples(d.data), samples);

  // Rounding: low byte 0x7F rounds down, 0x80 rounds up, and the top clamps instead of wrapping.
  const r = Buffer.alloc(12);
  r.writeIntLE(1000 * 256 + 127, 0, 3);
  r.writeIntLE(1000 * 256 + 128, 3, 3);
  r.writeIntLE(0x7fffff, 6, 3);
  r.writeIntLE(-0x800000, 9, 3);
  const rd = decodeWav(simpleWav({ tag: 1, channels: 1, rate: 96000, bits: 24, extensibleSubTag: 1, validBits: 20 }, r));
  assert.equal(rd.source.extensible, true);
  assert.equal(rd.source.formatTag, 1);
  assert.deepEqual([...slinSamples(rd.data)], [1000, 1001, 32767, -32768]);
});

test('32-bit PCM rounds to 16 bits without overflow', () => {
  const b = Buffer.alloc(samples.length * 4 + 16);
  samples.forEach((s, i) => b.writeInt32LE(s * 65536, i * 4));
  const base = samples.length * 4;
  b.writeInt32LE(0x7fffffff, base);
  b.writeInt32LE(-0x80000000, base + 4);
  b.writeInt32LE(5 * 65536 + 32767, base + 8);
  b.writeInt32LE(5 * 65536 + 32768, base + 12);
  const s = slinSamples(decodeWav(simpleWav({ tag: 1, channels: 1, rate: 16000, bits: 32 }, b)).data);
  assert.deepEqual(s.subarray(0, samples.length), samples);
  assert.deepEqual([...s.subarray(samples.length)], [32767, -32768, 5, 6]);
});

test('32- and 64-bit float: exact for x/32768, clamped, NaN -> 0; extensible float too', () => {
  for (const bits of [32, 64] as const) {
    const size = bits / 8;
    const b = Buffer.alloc((samples.length + 5) * size);
    const put = (v: number, i: number) => (bits === 32 ? b.writeFloatLE(v, i * size) : b.writeDoubleLE(v, i * size));
    samples.forEach((s, i) => put(s / 32768, i));
    [1.0, -1.0, 2.5, -7, Number.NaN].forEach((v, k) => put(v, samples.length + k));
    for (const ext of [false, true]) {
      const fmt: FmtSpec = ext
        ? { tag: 0, extensibleSubTag: 3, channels: 1, rate: 24000, bits }
        : { tag: 3, channels: 1, rate: 24000, bits };
      const d = decodeWav(simpleWav(fmt, b));
      assert.equal(d.source.sampleFormat, bits === 32 ? 'f32' : 'f64');
      assert.equal(d.format, parseFormat('slin24'));
      const s = slinSamples(d.data);
      assert.deepEqual(s.subarray(0, samples.length), samples);
      assert.deepEqual([...s.subarray(samples.length)], [32767, -32768, 32767, -32768, 0]);
    }
  }
});

test('extensible u-law is accepted by its GUID', () => {
  const d = decodeWav(simpleWav({ tag: 0, extensibleSubTag: 7, channels: 1, rate: 8000, bits: 8 }, Buffer.from([0xff, 0x00, 0x80])));
  assert.equal(d.format, parseFormat('ulaw'));
  assert.deepEqual([...d.data], [0xff, 0x00, 0x80]);
});

// ---- Structure: real files are not 44-byte headers ----

test('LIST, fact, JUNK and unknown chunks before fmt and between fmt and data are skipped', () => {
  const data = slinBytes(samples.subarray(0, 100));
  const wav = riff([
    chunk('JUNK', Buffer.alloc(28)),
    chunk('LIST', Buffer.from('INFOISFT\x0e\x00\x00\x00Lavf60.16.100\x00', 'latin1')),
    chunk('fmt ', fmtBody({ tag: 1, channels: 1, rate: 16000, bits: 16 })),
    chunk('fact', Buffer.from([100, 0, 0, 0])),
    chunk('abcd', Buffer.alloc(10, 0x41)),
    chunk('data', data),
    chunk('LIST', Buffer.alloc(6)),
  ]);
  const p = parseWav(wav);
  assert.equal(p.format.sampleRate, 16000);
  assert.deepEqual(p.data, data);
  // And data before fmt is legal too.
  const reversed = riff([chunk('data', data), chunk('fmt ', fmtBody({ tag: 1, channels: 1, rate: 8000, bits: 16 }))]);
  assert.deepEqual(parseWav(reversed).data, data);
});

test('odd-sized chunks: the pad byte is honoured (and tolerated when a writer forgot it)', () => {
  const data = slinBytes(samples.subarray(0, 10));
  const fmt = chunk('fmt ', fmtBody({ tag: 1, channels: 1, rate: 8000, bits: 16 }));
  const padded = riff([chunk('odd!', Buffer.from([1, 2, 3])), fmt, chunk('data', data)]);
  assert.deepEqual(parseWav(padded).data, data);
  const unpadded = riff([chunk('odd!', Buffer.from([1, 2, 3]), { pad: false }), fmt, chunk('data', data)]);
  assert.deepEqual(parseWav(unpadded).data, data);
  // An odd-sized u-law data chunk followed by a pad byte and another chunk.
  const ulaw = riff([
    chunk('fmt ', fmtBody({ tag: 7, channels: 1, rate: 8000, bits: 8 })),
    chunk('data', Buffer.from([1, 2, 3])),
    chunk('LIST', Buffer.alloc(4)),
  ]);
  assert.deepEqual([...parseWav(ulaw).data], [1, 2, 3]);
});

test('data size 0 or 0xFFFFFFFF (streaming writers) takes the rest of the file', () => {
  const data = slinBytes(samples.subarray(0, 50));
  for (const declared of [0, 0xffffffff]) {
    const wav = riff([
      chunk('fmt ', fmtBody({ tag: 1, channels: 1, rate: 8000, bits: 16 })),
      chunk('data', data, { declaredSize: declared }),
    ]);
    wav.writeUInt32LE(declared, 4); // RIFF size is often a placeholder as well
    const p = parseWav(wav);
    assert.equal(p.sizeUnknown, true);
    assert.equal(p.truncated, false);
    assert.equal(p.declaredDataBytes, declared);
    assert.deepEqual(p.data, data);
  }
  // A genuinely empty data chunk at the end of the file is just empty.
  const empty = parseWav(riff([chunk('fmt ', fmtBody({ tag: 1, channels: 1, rate: 8000, bits: 16 })), chunk('data', Buffer.alloc(0))]));
  assert.equal(empty.data.length, 0);
  assert.equal(empty.sizeUnknown, false);
});

test('a data chunk claiming more than the file holds is truncated and reported', () => {
  const data = slinBytes(samples.subarray(0, 50));
  const wav = riff([chunk('fmt ', fmtBody({ tag: 1, channels: 1, rate: 8000, bits: 16 })), chunk('data', data, { declaredSize: 10_000 })]);
  const p = parseWav(wav);
  assert.equal(p.truncated, true);
  assert.equal(p.declaredDataBytes, 10_000);
  assert.deepEqual(p.data, data);
  // And a trailing partial frame is trimmed (cut mid-sample).
  const cut = parseWav(wav.subarray(0, wav.length - 1));
  assert.equal(cut.truncated, true);
  assert.equal(cut.data.length, data.length - 2);
  // Stereo 24-bit cut mid-frame: only whole 6-byte frames.
  const st = parseWav(simpleWav({ tag: 1, channels: 2, rate: 8000, bits: 24 }, Buffer.alloc(6 * 10 + 4)));
  assert.equal(st.data.length, 60);
});

test('works on a Uint8Array at an odd offset', () => {
  const wav = encodeWav('slin16', slinBytes(samples.subarray(0, 20)));
  const backing = new Uint8Array(wav.length + 3);
  backing.set(wav, 3);
  const d = decodeWav(backing.subarray(3));
  assert.deepEqual(slinSamples(d.data), samples.subarray(0, 20));
});

// ---- Malformed and unsupported files: right code, message says what is wrong ----

test('malformed files are rejected with WAV_MALFORMED and a precise message', () => {
  const M = ErrorCodes.WAV_MALFORMED;
  const fmt16 = chunk('fmt ', fmtBody({ tag: 1, channels: 1, rate: 8000, bits: 16 }));
  const data = chunk('data', Buffer.alloc(8));
  assertWavError(
    () => parseWav(Buffer.from('OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00', 'latin1')),
    M,
    /not a RIFF file: starts with 'OggS'/,
  );
  assertWavError(
    () => parseWav(Buffer.from([0xff, 0xfb, 0x90, 0x64, 0, 0, 0, 0, 0, 0, 0, 0])),
    M,
    /not a RIFF file: starts with bytes 0xFF 0xFB/,
  );
  assertWavError(() => parseWav(riff([fmt16, data], 'AVI ')), M, /form type is 'AVI ', expected 'WAVE'/);
  assertWavError(() => parseWav(Buffer.from('RIFF')), M, /4 bytes, too short/);
  assertWavError(() => parseWav(riff([data])), M, /no 'fmt ' chunk/);
  assertWavError(() => parseWav(riff([fmt16])), M, /no 'data' chunk/);
  assertWavError(() => parseWav(riff([chunk('LIST', Buffer.alloc(4))])), M, /no 'fmt ' chunk and no 'data' chunk/);
  assertWavError(
    () => parseWav(riff([chunk('fmt ', fmtBody({ tag: 1, channels: 1, rate: 8000, bits: 16 }).subarray(0, 14)), data])),
    M,
    /'fmt ' chunk is 14 bytes, at least 16/,
  );
  assertWavError(() => parseWav(riff([fmt16]).subarray(0, 30)), M, /'fmt ' chunk claims 16 bytes but only 10 remain/);
  assertWavError(
    () => parseWav(riff([chunk('fmt ', fmtBody({ tag: 1, channels: 0, rate: 8000, bits: 16, blockAlign: 2 })), data])),
    M,
    /0 channels/,
  );
  assertWavError(() => parseWav(riff([chunk('fmt ', fmtBody({ tag: 1, channels: 1, rate: 0, bits: 16 })), data])), M, /sample rate of 0/);
  assertWavError(
    () => parseWav(riff([chunk('fmt ', fmtBody({ tag: 1, channels: 2, rate: 8000, bits: 16, blockAlign: 2 })), data])),
    M,
    /blockAlign is 2, but 2 channel\(s\) of 16-bit samples need 4/,
  );
  assertWavError(
    () => parseWav(riff([chunk('LIST', Buffer.alloc(4), { declaredSize: 1000 }), fmt16, data])),
    M,
    /chunk 'LIST' at offset 12 claims 1000 bytes but only 44 remain/,
  );
  const shortExt = fmtBody({ tag: 0, extensibleSubTag: 1, channels: 1, rate: 8000, bits: 16 }).subarray(0, 24);
  assertWavError(() => parseWav(riff([chunk('fmt ', shortExt), data])), M, /EXTENSIBLE 'fmt ' chunk is 24 bytes, 40 are needed/);
});

test('unsupported files are rejected with WAV_UNSUPPORTED naming what was found', () => {
  const U = ErrorCodes.WAV_UNSUPPORTED;
  const data = chunk('data', Buffer.alloc(12));
  const wav = (f: FmtSpec) => riff([chunk('fmt ', fmtBody(f)), data]);
  assertWavError(
    () => parseWav(wav({ tag: 1, channels: 1, rate: 8000, bits: 12, blockAlign: 2 })),
    U,
    /12-bit PCM samples; supported: PCM 8\/16\/24\/32-bit/,
  );
  assertWavError(
    () => parseWav(wav({ tag: 0x55, channels: 1, rate: 8000, bits: 0, blockAlign: 1 })),
    U,
    /format tag 0x0055 \(MPEG Layer 3 \(MP3\)\)/,
  );
  assertWavError(() => parseWav(wav({ tag: 0x11, channels: 1, rate: 8000, bits: 4, blockAlign: 256 })), U, /0x0011 \(IMA ADPCM\)/);
  assertWavError(() => parseWav(wav({ tag: 0x1234, channels: 1, rate: 8000, bits: 16 })), U, /format tag 0x1234/);
  assertWavError(() => parseWav(wav({ tag: 1, channels: 6, rate: 48000, bits: 16 })), U, /6 channels.*mono or stereo/);
  assertWavError(() => parseWav(wav({ tag: 1, channels: 1, rate: 4000, bits: 16 })), U, /sample rate 4000 Hz.*8000\.\.192000/);
  assertWavError(() => parseWav(wav({ tag: 3, channels: 1, rate: 8000, bits: 16 })), U, /16-bit IEEE float/);
  assertWavError(() => parseWav(wav({ tag: 7, channels: 1, rate: 8000, bits: 16 })), U, /16-bit u-law/);
  assertWavError(
    () => parseWav(wav({ tag: 0, extensibleSubTag: 1, channels: 1, rate: 8000, bits: 16, guidTail: Array(14).fill(0) })),
    U,
    /unknown sub-format GUID 0100/,
  );
  assertWavError(
    () => parseWav(wav({ tag: 0, extensibleSubTag: 0x55, channels: 1, rate: 8000, bits: 16 })),
    U,
    /sub-format 0x0055 \(MPEG Layer 3/,
  );
  assertWavError(() => parseWav(riff([], 'WAVE', 'RF64')), U, /'RF64'/);
  assertWavError(() => parseWav(riff([], 'WAVE', 'RIFX')), U, /RIFX/);
});

test('encodeWav rejects partial frames', () => {
  assert.throws(
    () => encodeWav('slin', Buffer.alloc(3)),
    (e: unknown) => e instanceof AudioSocketError && e.code === ErrorCodes.INVALID_ARGUMENT && /2-byte/.test(e.message),
  );
  assert.throws(
    () => encodeWav({ channels: 2 }, Buffer.alloc(6)),
    (e: unknown) => e instanceof AudioSocketError && e.code === ErrorCodes.INVALID_ARGUMENT,
  );
});

// ---- Files ----

test('WavWriter: streaming write, valid while open (sizes unknown), exact after close', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'audiosocket-wav-'));
  try {
    const path = join(dir, 'call.wav');
    const w = await createWavWriter(path, 'slin16');
    const data = slinBytes(samples);
    await w.write(data.subarray(0, 1000));
    // What a killed process would leave behind: placeholders, which the parser accepts.
    const partial = parseWav(await readFile(path));
    assert.equal(partial.sizeUnknown, true);
    assert.deepEqual(partial.data, data.subarray(0, 1000));
    // Unawaited writes stay in order.
    const pending = [w.write(data.subarray(1000, 2001)), w.write(data.subarray(2001, 3000)), w.write(data.subarray(3000))];
    await Promise.all(pending);
    assert.equal(w.bytesWritten, data.length);
    await w.close();
    await w.close(); // idempotent
    await assert.rejects(w.write(Buffer.alloc(2)), (e: unknown) => e instanceof AudioSocketError && /closed/.test(e.message));
    const bytes = await readFile(path);
    assert.deepEqual(bytes, encodeWav('slin16', data)); // identical to the in-memory encoder
    const p = parseWav(bytes);
    assert.equal(p.sizeUnknown, false);
    assert.equal(bytes.readUInt32LE(4), bytes.length - 8);
    const d = await readWavFile(path);
    assert.equal(d.format, parseFormat('slin16'));
    assert.deepEqual(d.data, data);

    // u-law with an odd byte count: pad byte, fact count, exact sizes.
    const upath = join(dir, 'ulaw.wav');
    const uw = await createWavWriter(upath, 'ulaw');
    const ulaw = slinToUlaw(slinBytes(samples.subarray(0, 801)));
    await uw.write(ulaw);
    await uw.close();
    const ub = await readFile(upath);
    assert.deepEqual(ub, encodeWav('ulaw', ulaw));
    assert.equal(ub.length % 2, 0);
    assert.deepEqual(parseWav(ub).data, ulaw);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a 44.1 kHz stereo float WAV decodes and converts to 8 kHz slin for Asterisk', async () => {
  await loadResampler();
  const st = tone(44100, 440, 0.5, 16000, 2, 440);
  const f = Buffer.alloc(st.length * 4);
  st.forEach((s, i) => f.writeFloatLE(s / 32768, i * 4));
  const dir = await mkdtemp(join(tmpdir(), 'audiosocket-wav-'));
  try {
    const path = join(dir, 'tts.wav');
    await writeFile(path, simpleWav({ tag: 3, channels: 2, rate: 44100, bits: 32 }, f));
    const d = await readWavFile(path);
    assert.deepEqual(d.format, parseFormat({ sampleRate: 44100, channels: 2 }));
    const c = createConverter(d.format, 'slin');
    const out = Buffer.concat([c.push(d.data), c.flush()]);
    c.dispose();
    assert.equal(out.length, 2 * Math.round((st.length / 2) * (8000 / 44100)));
    const s = slinSamples(out);
    let peak = 0;
    for (let i = 1000; i < s.length - 1000; i++) peak = Math.max(peak, Math.abs(s[i]!));
    assert.ok(peak > 15500 && peak < 16500, `peak ${peak}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ---- Files that are not WAV: named, with a command that converts them ----

test('guessNonWav names MP3 (ID3 and frame sync), AAC, Ogg, FLAC, AIFF, MP4 and raw files; RIFF is not guessed', () => {
  const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc(16)]);
  const kind = (b: Buffer): string | undefined => guessNonWav(pad(b))?.kind;
  assert.equal(kind(Buffer.from('ID3\x03', 'latin1')), 'MP3');
  for (const second of [0xfb, 0xfa, 0xf3, 0xf2, 0xe3]) assert.equal(kind(Buffer.from([0xff, second])), 'MP3', second.toString(16));
  assert.equal(kind(Buffer.from([0xff, 0xf1])), 'AAC');
  assert.equal(kind(Buffer.from('OggS', 'latin1')), 'Ogg (Vorbis or Opus)');
  assert.equal(kind(Buffer.from('fLaC', 'latin1')), 'FLAC');
  assert.equal(kind(Buffer.from('FORM\x00\x00\x00\x00AIFF', 'latin1')), 'AIFF');
  assert.equal(kind(Buffer.from('\x00\x00\x00\x20ftypM4A ', 'latin1')), 'MP4/M4A');
  assert.equal(kind(Buffer.from([0x10, 0x00, 0x20, 0x00])), 'raw audio or an unknown format');
  assert.equal(kind(Buffer.from('RIFF', 'latin1')), undefined);
  assert.equal(
    guessNonWav(pad(Buffer.from('ID3', 'latin1')))!.convert('my prompt.mp3'),
    "ffmpeg -i 'my prompt.mp3' -ar 8000 -ac 1 -c:a pcm_s16le 'my prompt-8k.wav'",
  );
  assert.match(
    guessNonWav(pad(Buffer.from('OggS', 'latin1')))!.convert('a.ogg'),
    /^ffmpeg -i a\.ogg .* a-8k\.wav \(or sox a\.ogg -r 8000 -c 1 -b 16 a-8k\.wav\)$/,
  );
  assert.match(guessNonWav(pad(Buffer.from([1, 2, 3, 4])))!.convert('p.sln'), /sox -t raw -r 8000 -e signed -b 16 -c 1 p\.sln p-8k\.wav/);
});

test('readWavFile of an MP3 says so and gives the ffmpeg command for that very path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'audiosocket-wav-'));
  try {
    const path = join(dir, 'hello.mp3');
    await writeFile(path, Buffer.concat([Buffer.from([0xff, 0xf3, 0x90, 0x64]), Buffer.alloc(400)]));
    await assert.rejects(readWavFile(path), (err: Error & { code?: string }) => {
      assert.equal(err.code, ErrorCodes.WAV_MALFORMED);
      assert.match(
        err.message,
        /not a RIFF file: starts with bytes 0xFF 0xF3 0x90 0x64, expected 'RIFF'; this is an MP3 file \(an MPEG audio frame sync 0xFF 0xF3\)/,
      );
      assert.ok(
        err.message.endsWith(`convert it: ffmpeg -i ${path} -ar 8000 -ac 1 -c:a pcm_s16le ${join(dir, 'hello-8k.wav')}`),
        err.message,
      );
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('decodeWav reports the declared size of a truncated file', () => {
  const full = encodeWav('slin', Buffer.alloc(8000));
  const d = decodeWav(full.subarray(0, 44 + 800));
  assert.equal(d.truncated, true);
  assert.equal(d.declaredDataBytes, 8000);
  assert.equal(d.data.length, 800);
});

test('WavWriter: a disk that fills mid-recording still leaves a valid file of the audio stored, and close() says why', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wav-full-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'full.wav');
  const w = await createWavWriter(path, 'slin');
  // The file system takes 1001 more bytes of audio, then is full (as ENOSPC after a short write).
  const fh = (w as unknown as { fh: { write: (b: Uint8Array, o: number, n: number, p: number) => Promise<{ bytesWritten: number }> } }).fh;
  const write = fh.write.bind(fh);
  let room = 1001;
  fh.write = async (b, o, n, p) => {
    if (p < 44) return write(b, o, n, p); // the header's sizes overwrite bytes already stored
    if (room === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const take = Math.min(n, room);
    room -= take;
    return write(b, o, take, p);
  };
  const audio = slinBytes(tone(8000, 400, 0.2, 8000));
  const writes = [w.write(audio.subarray(0, 640)), w.write(audio.subarray(640, 1280)), w.write(audio.subarray(1280, 1920))];
  const results = await Promise.allSettled(writes);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'rejected'],
  );
  await assert.rejects(w.close(), /only 361 of 640 bytes written/);
  // 1001 bytes stored: 500 whole samples.
  const wav = await readWavFile(path);
  assert.equal(wav.format.sampleRate, 8000);
  assert.equal(wav.sizeUnknown, false);
  assert.deepEqual(Buffer.from(wav.data), audio.subarray(0, 1000));
});
