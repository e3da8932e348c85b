/**
 * Resampler quality per SpeexDSP quality level, with the same coherent tone analysis as the tests
 * but a denser sweep. Run after `npm run build`:
 *
 *   node build/bench/resample-quality.js [quality ...]    (default: 3 4 5 6)
 *
 * Columns: passband gain range over 100 Hz..3.4 kHz; the strongest alias (downsampling: input tones
 * 4.6 kHz..Nyquist whose alias lands at or below 3.4 kHz) or image (upsampling: images of tones
 * up to 3.4 kHz between 4.6 kHz and the output Nyquist), in dB relative to a -1 dBFS input tone.
 * Levels below about -98 dB are under half an LSB of the int16 output; -300 means exactly zero.
 */
import { loadResampler, createResampler } from '#lib/audio/resample.js';
import { measureResampling, concat16 } from '../test/audio-helpers.js';

await loadResampler();
const qualities = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [3, 4, 5, 6];
const pairs = [
  [8000, 16000],
  [16000, 8000],
  [8000, 24000],
  [24000, 8000],
  [48000, 8000],
  [44100, 8000],
] as const;

console.log('quality  pair          passband dB        worst spur dB  (input Hz -> spur Hz)');
for (const quality of qualities) {
  for (const [a, b] of pairs) {
    const step = a > 24000 ? 211 : 53;
    const aliasTones: number[] = [];
    for (let f = 4601; f < a / 2; f += step) aliasTones.push(f);
    const q = measureResampling(
      (x) => {
        const r = createResampler({ inputRate: a, outputRate: b, quality });
        const y = concat16([r.process(x), r.flush()]);
        r.dispose();
        return y;
      },
      a,
      b,
      aliasTones,
    );
    const pair = `${a / 1000}k -> ${b / 1000}k`;
    console.log(
      `${String(quality).padStart(7)}  ${pair.padEnd(12)} ${q.passbandMinDb.toFixed(3).padStart(7)} .. ${q.passbandMaxDb.toFixed(3).padStart(6)}   ${q.worstSpurDb.toFixed(1).padStart(8)}  (${q.worstSpurAt})`,
    );
  }
}
