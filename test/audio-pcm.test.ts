import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readSlin, writeSlin, readSlinPortable, writeSlinPortable, slinSamples, slinBytes } from '#lib/audio/pcm.js';

test('readSlin / writeSlin: little-endian at any alignment, same as the DataView path', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -32768, max: 32767 }), { maxLength: 64 }), fc.integer({ min: 0, max: 3 }), (values, pad) => {
      const samples = Int16Array.from(values);
      const bytes = Buffer.alloc(pad + samples.length * 2);
      const region = bytes.subarray(pad);
      writeSlin(samples, region);
      for (let i = 0; i < samples.length; i++) assert.equal(region.readInt16LE(i * 2), samples[i]);
      const portable = Buffer.alloc(region.length);
      writeSlinPortable(samples, portable, 0);
      assert.deepEqual(portable, Buffer.from(region));

      const back = new Int16Array(samples.length + 1);
      assert.equal(readSlin(region, back, 1), samples.length);
      assert.deepEqual(back.subarray(1), samples);
      const back2 = new Int16Array(samples.length);
      readSlinPortable(region, back2, 0, samples.length);
      assert.deepEqual(back2, samples);
      assert.deepEqual(slinSamples(region), samples);
      assert.deepEqual(slinBytes(samples), Buffer.from(region));
    }),
  );
});

test('slinSamples is a zero-copy view when aligned and a copy when not', () => {
  const buf = Buffer.alloc(10);
  buf.writeInt16LE(-2, 2);
  const aligned = slinSamples(buf.subarray(2, 6));
  assert.equal(aligned.buffer, buf.buffer);
  assert.deepEqual([...aligned], [-2, 0]);
  const odd = slinSamples(buf.subarray(1, 6)); // odd offset, odd length: trailing byte ignored
  assert.notEqual(odd.buffer, buf.buffer);
  assert.equal(odd.length, 2);
  assert.deepEqual([...odd], [buf.readInt16LE(1), buf.readInt16LE(3)]);
  assert.equal(odd[0], -512); // bytes 00 fe read little-endian
});

test('readSlin / writeSlin refuse short destinations and sources', () => {
  assert.throws(() => writeSlin(new Int16Array(2), new Uint8Array(3)));
  assert.throws(() => readSlin(new Uint8Array(4), new Int16Array(1)));
  assert.throws(() => readSlin(new Uint8Array(4), new Int16Array(4), 0, 3));
});
