import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import * as audio from '#lib/audio/index.js';

test('index re-exports the public audio API', () => {
  for (const name of [
    'parseFormat',
    'formatName',
    'sameFormat',
    'bytesPerSample',
    'bytesPerFrame',
    'durationMs',
    'silenceByte',
    'fillSilence',
    'decodeUlaw',
    'encodeUlaw',
    'decodeAlaw',
    'encodeAlaw',
    'ulawToSlin',
    'alawToSlin',
    'slinToUlaw',
    'slinToAlaw',
    'loadResampler',
    'resamplerReady',
    'createResampler',
    'stereoToMono',
    'monoToStereo',
    'createConverter',
    'parseWav',
    'decodeWav',
    'encodeWav',
    'readWavFile',
    'createWavWriter',
    'WavWriter',
  ]) {
    assert.equal(typeof (audio as Record<string, unknown>)[name], 'function', name);
  }
  assert.equal(audio.DEFAULT_RESAMPLER_QUALITY, 5);
});

test('the audio layer imports nothing from the network side', async () => {
  // This test runs from build/test; check the import specifiers of the emitted dist/audio/*.js.
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'audio');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.js'));
  assert.ok(files.length >= 8, `found only ${files.join(', ')}`);
  const allowed = /^(node:(os|fs\/promises)|@echogarden\/speex-resampler-wasm(\/simd)?|\.\.\/errors\.js|\.\/[a-z0-9-]+\.js)$/;
  for (const file of files) {
    const text = await readFile(join(dir, file), 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)['"]([^'"]+)['"]/g)) {
      assert.match(m[1]!, allowed, `${file} imports ${m[1]}`);
    }
  }
});
