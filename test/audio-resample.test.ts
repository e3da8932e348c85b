import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  loadResampler,
  resamplerReady,
  resamplerBuild,
  createResampler,
  DEFAULT_RESAMPLER_QUALITY,
  type Resampler,
} from '#lib/audio/resample.js';
import { AudioSocketError, ErrorCodes } from '#lib/errors.js';
import { tone, prng, concat16, measureResampling, ALIAS_TONES, goertzel, db } from './audio-helpers.js';

function isCode(code: string, message?: RegExp) {
  return (e: unknown): boolean => e instanceof AudioSocketError && e.code === code && (message === undefined || message.test(e.message));
}

function oneShot(inputRate: number, outputRate: number, input: Int16Array, channels: 1 | 2 = 1): Int16Array {
  const r = createResampler({ inputRate, outputRate, channels });
  try {
    return concat16([r.process(input), r.flush()]);
  } finally {
    r.dispose();
  }
}

function streamed(r: Resampler, input: Int16Array, sizes: () => number): Int16Array {
  const parts: Int16Array[] = [];
  for (let i = 0; i < input.length;) {
    const n = Math.min(sizes() * r.channels, input.length - i);
    parts.push(r.process(input.subarray(i, i + n)));
    i += n;
  }
  parts.push(r.flush());
  return concat16(parts);
}

const expectedLength = (frames: number, inRate: number, outRate: number): number => Math.round((frames * outRate) / inRate);

// Must run first: the module is loaded once per process (node --test runs each file in its own process).
test('createResampler before loadResampler: clear error; same-rate pass-through needs no WASM', async () => {
  assert.equal(resamplerReady(), false);
  assert.equal(resamplerBuild(), undefined);
  assert.throws(() => createResampler({ inputRate: 8000, outputRate: 16000 }), isCode(ErrorCodes.INVALID_ARGUMENT, /loadResampler\(\)/));
  const same = createResampler({ inputRate: 16000, outputRate: 16000 });
  const x = Int16Array.of(1, -2, 3);
  assert.deepEqual(same.process(x), x);
  assert.equal(same.processView(x), x);
  assert.equal(same.flush().length, 0);
  same.dispose();
  same.dispose();
  assert.throws(() => same.process(x), isCode(ErrorCodes.INVALID_ARGUMENT, /disposed/));

  const p1 = loadResampler();
  const p2 = loadResampler();
  assert.equal(p1, p2); // idempotent: one cached promise
  await p1;
  assert.equal(resamplerReady(), true);
  assert.equal(resamplerBuild(), 'simd'); // Node 20 has WASM SIMD
  await loadResampler();
});

test('option validation', () => {
  assert.throws(() => createResampler({ inputRate: 7000, outputRate: 8000 }), isCode(ErrorCodes.INVALID_ARGUMENT, /inputRate.*7000/));
  assert.throws(() => createResampler({ inputRate: 8000, outputRate: 8000.5 }), isCode(ErrorCodes.INVALID_ARGUMENT, /outputRate/));
  assert.throws(() => createResampler({ inputRate: 8000, outputRate: 16000, quality: 11 }), isCode(ErrorCodes.INVALID_ARGUMENT, /quality/));
  assert.throws(
    () => createResampler({ inputRate: 8000, outputRate: 16000, channels: 3 as 1 }),
    isCode(ErrorCodes.INVALID_ARGUMENT, /channels/),
  );
  const r = createResampler({ inputRate: 8000, outputRate: 16000, channels: 2 });
  assert.equal(r.quality, DEFAULT_RESAMPLER_QUALITY);
  assert.throws(() => r.process(new Int16Array(3)), isCode(ErrorCodes.INVALID_ARGUMENT, /even/));
  assert.throws(() => r.process(new Uint8Array(4) as unknown as Int16Array), isCode(ErrorCodes.INVALID_ARGUMENT, /Int16Array/));
  r.dispose();
});

const PAIRS: ReadonlyArray<readonly [number, number]> = [
  [8000, 16000],
  [16000, 8000],
  [8000, 24000],
  [24000, 8000],
  [48000, 8000],
  [44100, 8000],
];

for (const [inRate, outRate] of PAIRS) {
  test(`quality ${inRate} -> ${outRate}: passband within 0.5 dB to 3.4 kHz, in-band aliases/images <= -90 dB`, (t) => {
    const q = measureResampling((x) => oneShot(inRate, outRate, x), inRate, outRate, ALIAS_TONES);
    t.diagnostic(
      `passband ${q.passbandMinDb.toFixed(3)}..${q.passbandMaxDb.toFixed(3)} dB; worst ${outRate < inRate ? 'alias' : 'image'} ${q.worstSpurDb.toFixed(1)} dB (${q.worstSpurAt})`,
    );
    assert.ok(q.passbandMinDb >= -0.5 && q.passbandMaxDb <= 0.5, `passband ${q.passbandMinDb}..${q.passbandMaxDb} dB`);
    assert.ok(q.worstSpurDb <= -90, `worst spur ${q.worstSpurDb} dB at ${q.worstSpurAt}`);
  });
}

test('the analysis can fail: quality 0 misses the alias target and a trivial decimator aliases loudly', () => {
  const q0 = measureResampling(
    (x) => {
      const r = createResampler({ inputRate: 48000, outputRate: 8000, quality: 0 });
      const out = concat16([r.process(x), r.flush()]);
      r.dispose();
      return out;
    },
    48000,
    8000,
    ALIAS_TONES,
  );
  assert.ok(q0.worstSpurDb > -90, `quality 0 unexpectedly reached ${q0.worstSpurDb} dB`);
  // Dropping 5 of every 6 samples without filtering folds a 5003 Hz tone to 2997 Hz at full level.
  const naive = measureResampling((x) => x.filter((_, i) => i % 6 === 0), 48000, 8000, [5003]);
  assert.ok(naive.worstSpurDb > -1, `naive decimation alias ${naive.worstSpurDb} dB`);
});

for (const [inRate, outRate] of [...PAIRS, [44100, 16000] as const, [16000, 48000] as const]) {
  test(`streaming ${inRate} -> ${outRate} with random chunk sizes equals one-shot, exact length after flush`, () => {
    const rand = prng(inRate * 7 + outRate);
    const input = concat16([tone(inRate, 440, 0.3, 20000), tone(inRate, 3001, 0.2, 12000)]);
    for (let i = 0; i < input.length; i++) input[i] = input[i]! + Math.round((rand() - 0.5) * 2000); // broadband content
    const reference = oneShot(inRate, outRate, input);
    assert.equal(reference.length, expectedLength(input.length, inRate, outRate));
    for (const maxChunk of [1, 7, 160, 3000]) {
      const r = createResampler({ inputRate: inRate, outputRate: outRate });
      const out = streamed(r, input, () => 1 + Math.floor(rand() * maxChunk));
      r.dispose();
      assert.equal(out.length, reference.length, `maxChunk ${maxChunk}`);
      let maxDiff = 0;
      for (let i = 0; i < out.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out[i]! - reference[i]!));
      assert.equal(maxDiff, 0, `chunked (max ${maxChunk}) output differs from one-shot by up to ${maxDiff}`);
    }
  });
}

test('flush gives round(totalIn * out / in) frames for awkward lengths, then the resampler starts afresh', () => {
  for (const [inRate, outRate] of [
    [8000, 16000],
    [44100, 8000],
    [48000, 8000],
    [8000, 24000],
    [16000, 8000],
    [44100, 48000],
  ] as const) {
    const r = createResampler({ inputRate: inRate, outputRate: outRate });
    for (const frames of [0, 1, 2, 3, 5, 159, 160, 441, 882, 1001, 12345]) {
      const input = tone(inRate, 1000, frames / inRate, 10000);
      const out = concat16([r.process(input), r.flush()]);
      assert.equal(out.length, expectedLength(frames, inRate, outRate), `${inRate}->${outRate}, ${frames} frames`);
    }
    // After flush the state is fresh: same input, same output as a new resampler.
    const x = tone(inRate, 700, 0.05, 15000);
    const again = concat16([r.process(x), r.flush()]);
    assert.deepEqual(again, oneShot(inRate, outRate, x));
    r.dispose();
  }
});

test('aligned timing: a 1 kHz tone keeps its phase through 8k -> 16k -> 8k', () => {
  const x = tone(8000, 1009, 1, 20000);
  const y = oneShot(16000, 8000, oneShot(8000, 16000, x));
  assert.equal(y.length, x.length);
  let err = 0;
  let sig = 0;
  for (let i = 1000; i < 7000; i++) {
    err += (y[i]! - x[i]!) ** 2;
    sig += x[i]! ** 2;
  }
  const snr = 10 * Math.log10(sig / err);
  assert.ok(snr > 60, `round-trip SNR ${snr.toFixed(1)} dB`); // a delay of even one sample would give < 10 dB
});

test('two resamplers interleaved chunk by chunk do not affect each other', () => {
  const a = tone(8000, 697, 0.5, 20000);
  const b = tone(8000, 1633, 0.5, 15000);
  const refA = oneShot(8000, 16000, a);
  const refB = oneShot(8000, 16000, b);
  const ra = createResampler({ inputRate: 8000, outputRate: 16000 });
  const rb = createResampler({ inputRate: 8000, outputRate: 16000 });
  const outA: Int16Array[] = [];
  const outB: Int16Array[] = [];
  for (let i = 0; i < a.length; i += 160) {
    // Take a view from each and copy it only after the other ran: views must survive that (no allocation in between).
    outA.push(ra.process(a.subarray(i, i + 160)));
    outB.push(rb.process(b.subarray(i, i + 160)));
  }
  outA.push(ra.flush());
  outB.push(rb.flush());
  assert.deepEqual(concat16(outA), refA);
  assert.deepEqual(concat16(outB), refB);
  ra.dispose();
  rb.dispose();
});

test('stereo: each channel resampled exactly as its own mono stream', () => {
  const stereo = tone(48000, 440, 0.5, 20000, 2, 2500);
  const left = stereo.filter((_, i) => i % 2 === 0);
  const right = stereo.filter((_, i) => i % 2 === 1);
  const out = oneShot(48000, 16000, stereo, 2);
  assert.equal(out.length, 2 * expectedLength(left.length, 48000, 16000));
  assert.deepEqual(
    out.filter((_, i) => i % 2 === 0),
    oneShot(48000, 16000, left),
  );
  assert.deepEqual(
    out.filter((_, i) => i % 2 === 1),
    oneShot(48000, 16000, right),
  );
  // And the channels are really separate: the left output has no 2500 Hz component.
  const l = out.filter((_, i) => i % 2 === 0);
  const leak = db(goertzel(l, 2000, 4000, 16000, 2500) / 20000);
  assert.ok(leak < -90, `right channel leaks into left at ${leak} dB`);
  assert.ok(db(goertzel(l, 2000, 4000, 16000, 440) / 20000) > -0.1);
});

test('processView matches process; large chunks grow the WASM buffers', () => {
  const x = tone(48000, 1000, 5, 20000); // 240000 samples in one go
  const r1 = createResampler({ inputRate: 48000, outputRate: 8000 });
  const r2 = createResampler({ inputRate: 48000, outputRate: 8000 });
  const view = r1.processView(x);
  const copy = r2.process(x);
  assert.deepEqual(Int16Array.from(view), copy);
  assert.equal(copy.length, 40000 - Math.round((r2.inputLatency * 8000) / 48000));
  r1.dispose();
  r2.dispose();
});

test('dispose is idempotent and later use throws', () => {
  const r = createResampler({ inputRate: 8000, outputRate: 16000 });
  r.process(new Int16Array(160));
  r.dispose();
  r.dispose();
  assert.equal(r.disposed, true);
  assert.throws(() => r.process(new Int16Array(160)), isCode(ErrorCodes.INVALID_ARGUMENT, /disposed/));
  assert.throws(() => r.flush(), isCode(ErrorCodes.INVALID_ARGUMENT, /disposed/));
  // Many create/dispose cycles do not leak into failure.
  for (let i = 0; i < 2000; i++) createResampler({ inputRate: 44100, outputRate: 8000 }).dispose();
});

test('resamplers dropped without dispose() are freed by the FinalizationRegistry', async () => {
  // Needs --expose-gc, so run in a child process. Each round leaks ~11 MB of WASM buffers unless finalized.
  const moduleUrl = new URL('../../dist/audio/resample.js', import.meta.url).href;
  const script = `
    const { loadResampler, createResampler } = await import(${JSON.stringify(moduleUrl)});
    await loadResampler();
    const heap = () => { const r = createResampler({ inputRate: 8000, outputRate: 16000 }); const n = r.processView(new Int16Array(2)).buffer.byteLength; r.dispose(); return n; };
    const big = new Int16Array(96000);
    const sizes = [];
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 50; i++) createResampler({ inputRate: 48000, outputRate: 8000 }).process(big);
      for (let k = 0; k < 2; k++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
      sizes.push(heap());
    }
    console.log(JSON.stringify(sizes));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--input-type=module', '-e', script]);
  const sizes = JSON.parse(stdout) as number[];
  assert.equal(sizes.length, 6);
  assert.ok(sizes[5]! <= sizes[0]! * 1.5, `WASM heap grew from ${sizes[0]} to ${sizes[5]} bytes`);
});
