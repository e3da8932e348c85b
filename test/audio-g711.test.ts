import { test } from 'node:test';
import assert from 'node:assert/strict';
import alawmulaw from 'alawmulaw';
import {
  decodeUlaw,
  encodeUlaw,
  decodeAlaw,
  encodeAlaw,
  ulawToSlin,
  alawToSlin,
  slinToUlaw,
  slinToAlaw,
  decodeUlawSample,
  encodeUlawSample,
  decodeAlawSample,
  encodeAlawSample,
  g711Reference,
} from '#lib/audio/g711.js';
import { AudioSocketError, ErrorCodes } from '#lib/errors.js';

const { mulaw, alaw } = alawmulaw;

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);
const ALL_SAMPLES = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);

test('u-law decode: all 256 bytes match alawmulaw', () => {
  const ours = new Int16Array(256);
  assert.equal(decodeUlaw(ALL_BYTES, ours), 256);
  const oracle = mulaw.decode(ALL_BYTES);
  for (let b = 0; b < 256; b++) {
    assert.equal(ours[b], oracle[b], `byte 0x${b.toString(16)}`);
    assert.equal(decodeUlawSample(b), oracle[b]);
    assert.equal(g711Reference.ulawDecodeRef(b) | 0, oracle[b]);
  }
  assert.equal(decodeUlawSample(0xff), 0); // silence
  assert.equal(decodeUlawSample(0x80), 32124); // largest positive
  assert.equal(decodeUlawSample(0x00), -32124);
});

test('a-law decode: all 256 bytes match alawmulaw', () => {
  const ours = new Int16Array(256);
  assert.equal(decodeAlaw(ALL_BYTES, ours), 256);
  const oracle = alaw.decode(ALL_BYTES);
  for (let b = 0; b < 256; b++) {
    assert.equal(ours[b], oracle[b], `byte 0x${b.toString(16)}`);
    assert.equal(decodeAlawSample(b), oracle[b]);
  }
  assert.equal(decodeAlawSample(0xd5), 8); // "silence" is the smallest positive step
  assert.equal(decodeAlawSample(0xaa), 32256);
  assert.equal(decodeAlawSample(0x2a), -32256);
});

test('u-law encode: all 65536 samples match alawmulaw', () => {
  const ours = new Uint8Array(65536);
  assert.equal(encodeUlaw(ALL_SAMPLES, ours), 65536);
  const oracle = mulaw.encode(ALL_SAMPLES);
  let mismatches = 0;
  for (let i = 0; i < 65536; i++) {
    if (ours[i] !== oracle[i]) mismatches++;
  }
  assert.equal(mismatches, 0);
  // Spot checks through the scalar entry points too.
  for (const s of [-32768, -32767, -1, 0, 1, 100, 32767]) {
    assert.equal(encodeUlawSample(s), mulaw.encodeSample(s) & 0xff, `sample ${s}`);
    assert.equal(g711Reference.ulawEncodeRef(s), mulaw.encodeSample(s) & 0xff);
  }
});

test('a-law encode: all 65536 samples match alawmulaw', () => {
  const ours = new Uint8Array(65536);
  assert.equal(encodeAlaw(ALL_SAMPLES, ours), 65536);
  const oracle = alaw.encode(ALL_SAMPLES);
  let mismatches = 0;
  for (let i = 0; i < 65536; i++) {
    if (ours[i] !== oracle[i]) mismatches++;
  }
  assert.equal(mismatches, 0);
  for (const s of [-32768, -32767, -1, 0, 1, 100, 32767]) {
    assert.equal(encodeAlawSample(s), alaw.encodeSample(s) & 0xff, `sample ${s}`);
    assert.equal(g711Reference.alawEncodeRef(s), alaw.encodeSample(s) & 0xff);
  }
});

test('encode(decode(b)) == b for every code except u-law negative zero', () => {
  for (let b = 0; b < 256; b++) {
    if (b !== 0x7f) assert.equal(encodeUlawSample(decodeUlawSample(b)), b, `u-law 0x${b.toString(16)}`);
    assert.equal(encodeAlawSample(decodeAlawSample(b)), b, `a-law 0x${b.toString(16)}`);
  }
  assert.equal(encodeUlawSample(decodeUlawSample(0x7f)), 0xff); // -0 and +0 both decode to 0
});

test('quantisation error stays within half a step of the segment', () => {
  for (let s = -32768; s <= 32767; s++) {
    const u = decodeUlawSample(encodeUlawSample(s));
    const a = decodeAlawSample(encodeAlawSample(s));
    // Largest steps: u-law 1024 (error <= 512 within range, more in the clipped top), a-law 1024.
    const limit = Math.abs(s) > 32124 ? 1024 : 512;
    assert.ok(Math.abs(u - s) <= limit, `u-law ${s} -> ${u}`);
    assert.ok(Math.abs(a - s) <= 512, `a-law ${s} -> ${a}`);
  }
});

test('decode/encode write at dstOffset and refuse a short destination', () => {
  const dst = new Int16Array(6).fill(7);
  decodeUlaw(Uint8Array.of(0xff, 0x80), dst, 3);
  assert.deepEqual([...dst], [7, 7, 7, 0, 32124, 7]);
  const bytes = new Uint8Array(4).fill(9);
  encodeAlaw(Int16Array.of(8, -8), bytes, 2);
  assert.deepEqual([...bytes], [9, 9, 0xd5, 0x55]);
  for (const fn of [
    () => decodeUlaw(new Uint8Array(3), new Int16Array(2)),
    () => decodeAlaw(new Uint8Array(2), new Int16Array(2), 1),
    () => encodeUlaw(new Int16Array(3), new Uint8Array(2)),
    () => encodeAlaw(new Int16Array(1), new Uint8Array(2), -1),
  ]) {
    assert.throws(fn, (e: unknown) => e instanceof AudioSocketError && e.code === ErrorCodes.INVALID_ARGUMENT);
  }
});

test('Buffer conversions: little-endian output, unaligned input, odd length rejected', () => {
  const ulawBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const slin = ulawToSlin(ulawBytes);
  assert.equal(slin.length, 512);
  for (let b = 0; b < 256; b++) assert.equal(slin.readInt16LE(b * 2), mulaw.decodeSample(b) | 0); // | 0: the oracle returns -0
  assert.deepEqual(slinToUlaw(slin), Buffer.from(ulawBytes.map((b) => (b === 0x7f ? 0xff : b))));

  const a = alawToSlin(ulawBytes);
  for (let b = 0; b < 256; b++) assert.equal(a.readInt16LE(b * 2), alaw.decodeSample(b) | 0);

  // slin at an odd byte offset inside a larger buffer (as pooled Buffers often are).
  const backing = Buffer.alloc(2 * 1000 + 1);
  const samples = Int16Array.from({ length: 1000 }, (_, i) => Math.round(30000 * Math.sin(i / 7)));
  for (let i = 0; i < samples.length; i++) backing.writeInt16LE(samples[i]!, 1 + i * 2);
  const unaligned = backing.subarray(1);
  assert.equal(unaligned.byteOffset & 1, 1);
  assert.deepEqual(slinToUlaw(unaligned), Buffer.from(mulaw.encode(samples)));
  assert.deepEqual(slinToAlaw(unaligned), Buffer.from(alaw.encode(samples)));
  assert.deepEqual(ulawToSlin(ulawBytes.subarray(1)), slin.subarray(2));

  assert.throws(
    () => slinToUlaw(new Uint8Array(3)),
    (e: unknown) => e instanceof AudioSocketError && e.code === ErrorCodes.INVALID_ARGUMENT && /even/.test(e.message),
  );
  assert.throws(
    () => slinToAlaw(new Uint8Array(5)),
    (e: unknown) => e instanceof AudioSocketError && e.code === ErrorCodes.INVALID_ARGUMENT,
  );
  assert.equal(ulawToSlin(new Uint8Array(0)).length, 0);
});
