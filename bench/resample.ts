/**
 * Resampling speed. Run after `npm run build`:
 *
 *   node build/bench/resample.js [quality]
 *
 * Prints times-real-time per rate pair (20 ms chunks, mono) and the per-call cost of the voice-bot
 * path: caller audio 8 kHz -> 16 kHz for speech-to-text, TTS audio 24 kHz -> 8 kHz back to Asterisk,
 * through `createConverter` (so including byte decoding/encoding), 50 frames per second each way.
 */
import { loadResampler, resamplerBuild, createResampler, DEFAULT_RESAMPLER_QUALITY } from '#lib/audio/resample.js';
import { createConverter } from '#lib/audio/convert.js';
import { parseFormat, bytesPerFrame, type FormatSpec } from '#lib/audio/format.js';

const SECONDS = 60;
const quality = process.argv[2] === undefined ? DEFAULT_RESAMPLER_QUALITY : Number(process.argv[2]);

function signal(rate: number, seconds: number): Int16Array {
  const n = Math.round(rate * seconds);
  const x = new Int16Array(n);
  let seed = 1;
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    x[i] = Math.round(
      8000 * Math.sin((2 * Math.PI * 440 * i) / rate) + 4000 * Math.sin((2 * Math.PI * 2900 * i) / rate) + ((seed >>> 16) % 2000) - 1000,
    );
  }
  return x;
}

function nsNow(): bigint {
  return process.hrtime.bigint();
}

function benchPair(inRate: number, outRate: number): { xRealtime: number; usPerFrame: number } {
  const x = signal(inRate, SECONDS);
  const frame = inRate / 50;
  const run = (): number => {
    const r = createResampler({ inputRate: inRate, outputRate: outRate, quality });
    const t0 = nsNow();
    let sink = 0;
    for (let i = 0; i + frame <= x.length; i += frame) sink += r.processView(x.subarray(i, i + frame)).length;
    sink += r.flush().length;
    const ns = Number(nsNow() - t0);
    r.dispose();
    if (sink === 0) throw new Error('no output');
    return ns;
  };
  run(); // warm up (JIT, WASM tier-up)
  const ns = Math.min(run(), run(), run());
  return { xRealtime: (SECONDS * 1e9) / ns, usPerFrame: ns / 1000 / (SECONDS * 50) };
}

function benchConverter(from: FormatSpec, to: FormatSpec): number {
  const f = parseFormat(from);
  const frameBytes = bytesPerFrame(f, 20);
  const frames = SECONDS * 50;
  const input = Buffer.alloc(frameBytes * frames);
  const pcm = signal(f.sampleRate, SECONDS);
  if (f.encoding === 'slin') for (let i = 0; i < pcm.length && 2 * i + 1 < input.length; i++) input.writeInt16LE(pcm[i]!, 2 * i);
  else input.fill(0x55);
  const run = (): number => {
    const c = createConverter(f, to, { quality });
    const t0 = nsNow();
    let sink = 0;
    for (let i = 0; i < frames; i++) sink += c.push(input.subarray(i * frameBytes, (i + 1) * frameBytes)).length;
    const ns = Number(nsNow() - t0);
    c.dispose();
    if (sink === 0) throw new Error('no output');
    return ns;
  };
  run();
  return Math.min(run(), run(), run()) / 1000 / frames; // us per 20 ms frame
}

await loadResampler();
console.log(
  `speex resampler, ${resamplerBuild()} build, quality ${quality}, ${SECONDS} s of audio per run, 20 ms chunks, Node ${process.version}`,
);
console.log('');
console.log('pair              x real time   us / 20 ms frame');
for (const [a, b] of [
  [8000, 16000],
  [16000, 8000],
  [8000, 24000],
  [24000, 8000],
  [48000, 8000],
  [44100, 8000],
] as const) {
  const { xRealtime, usPerFrame } = benchPair(a, b);
  console.log(`${`${a / 1000}k -> ${b / 1000}k`.padEnd(16)} ${xRealtime.toFixed(0).padStart(11)} ${usPerFrame.toFixed(2).padStart(18)}`);
}

console.log('');
console.log('voice-bot path per call (createConverter, 50 frames/s each direction)');
console.log('path                           us / 20 ms frame');
const paths: Array<[string, FormatSpec, FormatSpec]> = [
  ['in:  slin 8k -> slin16', 'slin', 'slin16'],
  ['out: slin24 -> slin 8k', 'slin24', 'slin'],
  ['in:  ulaw -> slin16', 'ulaw', 'slin16'],
  ['out: slin24 -> ulaw', 'slin24', 'ulaw'],
];
const cost: number[] = [];
for (const [label, from, to] of paths) {
  const us = benchConverter(from, to);
  cost.push(us);
  console.log(`${label.padEnd(30)} ${us.toFixed(2).padStart(17)}`);
}
const slinCall = (cost[0]! + cost[1]!) * 50; // us of CPU per second of call
const ulawCall = (cost[2]! + cost[3]!) * 50;
console.log('');
console.log(
  `per call, both directions, slin: ${slinCall.toFixed(0)} us CPU per second = ${(slinCall / 1e4).toFixed(3)} % of a core (~${Math.floor(1e6 / slinCall)} calls per core)`,
);
console.log(
  `per call, both directions, ulaw: ${ulawCall.toFixed(0)} us CPU per second = ${(ulawCall / 1e4).toFixed(3)} % of a core (~${Math.floor(1e6 / ulawCall)} calls per core)`,
);
