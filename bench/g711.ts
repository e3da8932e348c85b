/**
 * G.711 encoder micro-benchmark: 64 Ki-entry lookup table (what src/audio/g711.ts uses) versus
 * computing the segment per sample. Run: `node build/bench/g711.js`.
 */
import { encodeUlaw, encodeAlaw, decodeUlaw, g711Reference } from '#lib/audio/g711.js';

const N = 160 * 50 * 60; // one minute of 8 kHz audio
const samples = Int16Array.from({ length: N }, (_, i) => Math.round(20000 * Math.sin(i * 0.0371) + 3000 * Math.sin(i * 1.3)));
const bytes = new Uint8Array(N);
const back = new Int16Array(N);

function time(label: string, fn: () => void): void {
  for (let i = 0; i < 3; i++) fn(); // warm up
  const reps = 20;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) fn();
  const ns = Number(process.hrtime.bigint() - t0) / reps / N;
  console.log(`${label.padEnd(28)} ${ns.toFixed(2)} ns/sample  (${((ns * 160) / 1000).toFixed(2)} us per 20 ms frame)`);
}

time('u-law encode, table', () => encodeUlaw(samples, bytes));
time('u-law encode, computed', () => {
  for (let i = 0; i < N; i++) bytes[i] = g711Reference.ulawEncodeRef(samples[i]!);
});
time('a-law encode, table', () => encodeAlaw(samples, bytes));
time('a-law encode, computed', () => {
  for (let i = 0; i < N; i++) bytes[i] = g711Reference.alawEncodeRef(samples[i]!);
});
time('u-law decode, table', () => decodeUlaw(bytes, back));
time('u-law decode, computed', () => {
  for (let i = 0; i < N; i++) back[i] = g711Reference.ulawDecodeRef(bytes[i]!);
});
