import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stereoToMono, monoToStereo } from '#lib/audio/mix.js';
import { AudioSocketError, ErrorCodes } from '#lib/errors.js';

const int16 = fc.integer({ min: -32768, max: 32767 });

test('stereoToMono averages with floor and never clips', () => {
  assert.deepEqual([...stereoToMono(Int16Array.of(32767, 32767, -32768, -32768, 1, 2, -1, 0, 100, -100))], [32767, -32768, 1, -1, 0]);
  fc.assert(
    fc.property(fc.array(fc.tuple(int16, int16), { maxLength: 50 }), (pairs) => {
      const src = Int16Array.from(pairs.flat());
      const mono = stereoToMono(src);
      assert.equal(mono.length, pairs.length);
      pairs.forEach(([l, r], i) => assert.equal(mono[i], Math.floor((l + r) / 2)));
    }),
  );
});

test('stereoToMono works in place and into a larger destination', () => {
  const buf = Int16Array.of(10, 20, 30, 40, 50, 60);
  const out = stereoToMono(buf, buf);
  assert.equal(out.buffer, buf.buffer);
  assert.deepEqual([...out], [15, 35, 55]);
  const big = new Int16Array(10).fill(9);
  const r = stereoToMono(Int16Array.of(2, 4), big);
  assert.equal(r.length, 1);
  assert.deepEqual([...big.subarray(0, 2)], [3, 9]);
});

test('monoToStereo duplicates, also in place', () => {
  fc.assert(
    fc.property(fc.array(int16, { maxLength: 50 }), (values) => {
      const src = Int16Array.from(values);
      const st = monoToStereo(src);
      assert.equal(st.length, 2 * values.length);
      values.forEach((v, i) => {
        assert.equal(st[2 * i], v);
        assert.equal(st[2 * i + 1], v);
      });
      assert.deepEqual(stereoToMono(st), src); // round trip is lossless
      const inPlace = new Int16Array(2 * values.length);
      inPlace.set(src);
      assert.deepEqual(monoToStereo(inPlace.subarray(0, values.length), inPlace), st);
    }),
  );
});

test('mix argument errors', () => {
  const bad = (e: unknown) => e instanceof AudioSocketError && e.code === ErrorCodes.INVALID_ARGUMENT;
  assert.throws(() => stereoToMono(new Int16Array(3)), bad);
  assert.throws(() => stereoToMono(new Int16Array(4), new Int16Array(1)), bad);
  assert.throws(() => monoToStereo(new Int16Array(3), new Int16Array(5)), bad);
});
