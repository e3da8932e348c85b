import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createConverter, type Converter } from '#lib/audio/convert.js';
import { loadResampler, createResampler } from '#lib/audio/resample.js';
import { parseFormat, bytesPerSample, type FormatSpec } from '#lib/audio/format.js';
import { ulawToSlin, slinToUlaw, slinToAlaw, alawToSlin } from '#lib/audio/g711.js';
import { stereoToMono, monoToStereo } from '#lib/audio/mix.js';
import { slinBytes, slinSamples } from '#lib/audio/pcm.js';
import { AudioSocketError, ErrorCodes } from '#lib/errors.js';
import { tone, prng, concat16, goertzel, db } from './audio-helpers.js';

const isCode =
  (code: string, message?: RegExp) =>
  (e: unknown): boolean =>
    e instanceof AudioSocketError && e.code === code && (message === undefined || message.test(e.message));

/** Copy into a fresh Buffer at an odd byteOffset, as network reads and pooled slices often are. */
function unaligned(bytes: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(bytes.length + 1);
  b.set(bytes, 1);
  const out = b.subarray(1);
  assert.equal(out.byteOffset & 1, 1 ^ (b.byteOffset & 1));
  return out;
}

/** Push `input` in chunks of sizes drawn from `sizes` (bytes), unaligned, then flush; concatenate. */
function convertChunked(c: Converter, input: Uint8Array, sizes: () => number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length;) {
    const n = Math.min(sizes(), input.length - i);
    parts.push(c.push(unaligned(input.subarray(i, i + n))));
    i += n;
  }
  parts.push(c.flush());
  return Buffer.concat(parts);
}

function convertAll(from: FormatSpec, to: FormatSpec, input: Uint8Array): Buffer {
  const c = createConverter(from, to);
  const out = Buffer.concat([c.push(input), c.flush()]);
  c.dispose();
  return out;
}

function resampleOneShot(inRate: number, outRate: number, x: Int16Array, channels: 1 | 2 = 1): Int16Array {
  const r = createResampler({ inputRate: inRate, outputRate: outRate, channels });
  const y = concat16([r.process(x), r.flush()]);
  r.dispose();
  return y;
}

test('rate change before loadResampler fails clearly; same-rate conversions need no WASM', async () => {
  assert.throws(() => createConverter('ulaw', 'slin16'), isCode(ErrorCodes.INVALID_ARGUMENT, /loadResampler/));
  const c = createConverter('ulaw', 'slin');
  assert.deepEqual(c.push(Buffer.from([0xff, 0x80])), ulawToSlin(Buffer.from([0xff, 0x80])));
  c.dispose();
  await loadResampler();
});

test('bad formats and inputs are rejected', () => {
  assert.throws(() => createConverter('slin7' as FormatSpec, 'slin'), isCode(ErrorCodes.INVALID_FORMAT, /slin7/));
  const c = createConverter('slin', 'ulaw');
  assert.throws(() => c.push('abc' as unknown as Uint8Array), isCode(ErrorCodes.INVALID_ARGUMENT));
  c.dispose();
  c.dispose();
  assert.throws(() => c.push(Buffer.alloc(2)), isCode(ErrorCodes.INVALID_ARGUMENT, /disposed/));
  assert.throws(() => c.flush(), isCode(ErrorCodes.INVALID_ARGUMENT, /disposed/));
});

test('identity returns the input memory without copying; partial samples are carried', () => {
  const c = createConverter('slin16', { encoding: 'slin', sampleRate: 16000, channels: 1 });
  const buf = Buffer.from([1, 2, 3, 4]);
  assert.equal(c.push(buf), buf); // same object
  const u8 = new Uint8Array([5, 6, 7, 8, 9]);
  const out = c.push(u8);
  assert.equal(out.buffer, u8.buffer);
  assert.equal(out.byteOffset, u8.byteOffset);
  assert.deepEqual([...out], [5, 6, 7, 8]);
  assert.equal(c.pendingBytes, 1);
  assert.deepEqual([...c.push(Buffer.from([10]))], [9, 10]);
  assert.equal(c.pendingBytes, 0);

  // 1-byte chunks through a stereo identity: only whole 4-byte frames come out, bytes unchanged.
  const st = createConverter({ channels: 2 }, { channels: 2 });
  const data = Buffer.from(Array.from({ length: 23 }, (_, i) => i));
  const parts: Buffer[] = [];
  for (const b of data) {
    const o = st.push(Buffer.from([b]));
    assert.equal(o.length % 4, 0);
    parts.push(o);
  }
  assert.equal(st.pendingBytes, 3);
  assert.equal(st.flush().length, 0); // partial frame dropped
  assert.equal(st.pendingBytes, 0);
  assert.deepEqual(Buffer.concat(parts), data.subarray(0, 20));
});

test('G.711 paths match the codec functions, with any chunking', () => {
  const rand = prng(1);
  const slin = slinBytes(tone(8000, 1009, 0.2, 25000));
  const ulaw = slinToUlaw(slin);
  const alaw = slinToAlaw(slin);
  const sizes = () => 1 + Math.floor(rand() * 5);
  assert.deepEqual(convertChunked(createConverter('slin', 'ulaw'), slin, sizes), ulaw);
  assert.deepEqual(convertChunked(createConverter('slin', 'alaw'), slin, sizes), alaw);
  assert.deepEqual(convertChunked(createConverter('ulaw', 'slin'), ulaw, sizes), ulawToSlin(ulaw));
  assert.deepEqual(convertChunked(createConverter('alaw', 'slin'), alaw, sizes), alawToSlin(alaw));
  assert.deepEqual(convertChunked(createConverter('ulaw', 'alaw'), ulaw, sizes), slinToAlaw(ulawToSlin(ulaw)));
  assert.deepEqual(convertChunked(createConverter('alaw', 'ulaw'), alaw, sizes), slinToUlaw(alawToSlin(alaw)));
});

test('slin 1-byte chunks through a resampling path equal one big push', () => {
  const input = slinBytes(tone(8000, 440, 0.25, 20000));
  const whole = convertAll('slin', 'slin16', input);
  const c = createConverter('slin', 'slin16');
  const bytewise = convertChunked(c, input, () => 1);
  c.dispose();
  assert.deepEqual(bytewise, whole);
  assert.equal(whole.length, input.length * 2);
});

test('resampling paths equal decode + resample + encode, with exact lengths after flush', () => {
  const rand = prng(2);
  const cases: Array<[FormatSpec, FormatSpec]> = [
    ['ulaw', 'slin16'], // Asterisk -> STT
    ['slin24', 'ulaw'], // TTS -> Asterisk
    ['slin24', 'slin'],
    ['slin', 'slin24'],
    ['slin48', 'alaw'],
    ['slin44', 'slin'],
    ['alaw', 'slin48'],
  ];
  for (const [fromSpec, toSpec] of cases) {
    const from = parseFormat(fromSpec);
    const to = parseFormat(toSpec);
    const pcm = tone(from.sampleRate, 1000, 0.3, 20000);
    for (let i = 0; i < pcm.length; i++) pcm[i] = pcm[i]! + Math.round((rand() - 0.5) * 3000);
    const input =
      from.encoding === 'slin' ? slinBytes(pcm) : from.encoding === 'ulaw' ? slinToUlaw(slinBytes(pcm)) : slinToAlaw(slinBytes(pcm));
    const decoded = from.encoding === 'slin' ? pcm : slinSamples(from.encoding === 'ulaw' ? ulawToSlin(input) : alawToSlin(input));
    const resampled = slinBytes(resampleOneShot(from.sampleRate, to.sampleRate, decoded));
    const expected = to.encoding === 'slin' ? resampled : to.encoding === 'ulaw' ? slinToUlaw(resampled) : slinToAlaw(resampled);

    const c = createConverter(from, to);
    const got = convertChunked(c, input, () => 1 + Math.floor(rand() * 700));
    c.dispose();
    const frames = input.length / bytesPerSample(from);
    assert.equal(
      got.length,
      Math.round((frames * to.sampleRate) / from.sampleRate) * bytesPerSample(to),
      `${String(fromSpec)} -> ${String(toSpec)}`,
    );
    assert.deepEqual(got, expected, `${String(fromSpec)} -> ${String(toSpec)}`);
  }
});

test('stereo paths: mix down before resampling, duplicate after, stereo-to-stereo stays separate', () => {
  const st16 = tone(16000, 500, 0.2, 20000, 2, 1500);
  const mono16 = tone(16000, 700, 0.2, 20000);
  const stereo16 = parseFormat({ sampleRate: 16000, channels: 2 });
  const stereo48 = parseFormat({ sampleRate: 48000, channels: 2 });

  assert.deepEqual(convertAll(stereo16, 'slin16', slinBytes(st16)), slinBytes(stereoToMono(st16)));
  assert.deepEqual(convertAll('slin16', stereo16, slinBytes(mono16)), slinBytes(monoToStereo(mono16)));
  assert.deepEqual(convertAll(stereo16, 'slin', slinBytes(st16)), slinBytes(resampleOneShot(16000, 8000, stereoToMono(st16))));
  assert.deepEqual(
    convertAll('slin', stereo48, slinBytes(tone(8000, 300, 0.2, 9000))),
    slinBytes(monoToStereo(resampleOneShot(8000, 48000, tone(8000, 300, 0.2, 9000)))),
  );
  const out = slinSamples(convertAll(stereo16, stereo48, slinBytes(st16)));
  assert.deepEqual(out, resampleOneShot(16000, 48000, st16, 2));
  assert.equal(out.length, 2 * 3 * (st16.length / 2));
  // Left kept its 500 Hz, right its 1500 Hz.
  assert.ok(db(goertzel(out, 4800, 4800, 48000, 500, 2) / 20000) > -0.2);
  assert.ok(db(goertzel(out, 4800, 4800, 48000, 1500, 2) / 20000) < -90);
  assert.ok(db(goertzel(out.subarray(1), 4800, 4800, 48000, 1500, 2) / 20000) > -0.2);

  // Stereo G.711 in 1-byte chunks (a frame is 2 bytes).
  const stUlaw = parseFormat({ encoding: 'ulaw', sampleRate: 8000, channels: 2 });
  const st8 = tone(8000, 400, 0.1, 20000, 2, 1200);
  const encoded = slinToUlaw(slinBytes(st8));
  const c = createConverter(stUlaw, 'slin');
  assert.deepEqual(
    convertChunked(c, encoded, () => 1),
    slinBytes(stereoToMono(slinSamples(ulawToSlin(encoded)))),
  );
});

test('round trip slin 8k -> 16k -> 8k and ulaw -> slin16 -> ulaw preserve the signal', () => {
  const x = tone(8000, 1009, 1, 20000);
  const y = slinSamples(convertAll('slin16', 'slin', convertAll('slin', 'slin16', slinBytes(x))));
  assert.equal(y.length, x.length);
  let err = 0;
  let sig = 0;
  for (let i = 800; i < 7200; i++) {
    err += (y[i]! - x[i]!) ** 2;
    sig += x[i]! ** 2;
  }
  assert.ok(10 * Math.log10(sig / err) > 60);

  const u = slinToUlaw(slinBytes(x));
  const u2 = convertAll('slin16', 'ulaw', convertAll('ulaw', 'slin16', u));
  assert.equal(u2.length, u.length);
  let same = 0;
  for (let i = 800; i < 7200; i++) if (Math.abs(u2[i]! - u[i]!) <= 1) same++;
  assert.ok(same / 6400 > 0.99, `only ${same} of 6400 u-law codes within one step`);
});

test('converters are independent, and reusable after flush', () => {
  const a = slinBytes(tone(8000, 697, 0.3, 20000));
  const b = slinBytes(tone(8000, 1477, 0.3, 20000));
  const refA = convertAll('slin', 'slin16', a);
  const refB = convertAll('slin', 'slin16', b);
  const ca = createConverter('slin', 'slin16');
  const cb = createConverter('slin', 'slin16');
  const outA: Buffer[] = [];
  const outB: Buffer[] = [];
  for (let i = 0; i < a.length; i += 320) {
    outA.push(ca.push(a.subarray(i, i + 320)));
    outB.push(cb.push(b.subarray(i, i + 320)));
  }
  outA.push(ca.flush());
  outB.push(cb.flush());
  assert.deepEqual(Buffer.concat(outA), refA);
  assert.deepEqual(Buffer.concat(outB), refB);
  // Second stream through the same converter: same result as a fresh one.
  assert.deepEqual(Buffer.concat([ca.push(b), ca.flush()]), refB);
  ca.dispose();
  cb.dispose();
});

test('steady state: 20 ms in gives 20 ms out after the first frame', () => {
  const c = createConverter('ulaw', 'slin16');
  const frame = Buffer.alloc(160, 0xff);
  const first = c.push(frame);
  assert.ok(first.length > 0 && first.length < 640);
  for (let i = 0; i < 10; i++) assert.equal(c.push(frame).length, 640);
  c.dispose();
});
