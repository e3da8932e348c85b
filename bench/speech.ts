/**
 * Speech detection against the fixtures (test/fixtures/speech/, made by
 * scripts/speech-fixtures.ts): per fixture, when speech was detected against its true onset,
 * missed speech and false starts; then the detector's cost per call.
 *
 * For the echo fixtures, our prompt (`prompt.wav`) "plays" from t = 0 and its frame levels are
 * fed to the detector on the same timeline, as a call does with the audio it sends.
 *
 *   node build/bench/speech.js [--aggressiveness 3] [--min-speech 100] [--echo-loss 6] [--json]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createVad, loadVad } from '#lib/speech/vad.js';
import { levelDb, SPEECH_DEFAULTS, SpeechDetector, type SpeechEvent, type SpeechOptions } from '#lib/speech/detector.js';
import { readWavFile } from '#lib/audio/wav.js';
import type { SpeechFixture } from '../scripts/speech-fixtures.js';

const DIR = fileURLToPath(new URL('../../test/fixtures/speech/', import.meta.url));

/** A fixture as the manifest lists it (scripts/speech-fixtures.ts writes it). */
export type Fixture = SpeechFixture;

export interface FixtureResult {
  file: string;
  kind: Fixture['kind'];
  /** detectedAtMs of the first start minus the true onset (speech kinds), or null if missed. */
  latencyMs: number | null;
  /** Starts before the true onset - 100 ms (speech kinds), or any start (echo, non-speech). */
  falseStarts: number;
  events: SpeechEvent[];
}

export function manifest(): Fixture[] {
  return (JSON.parse(readFileSync(`${DIR}manifest.json`, 'utf8')) as { fixtures: Fixture[] }).fixtures;
}

async function samplesOf(file: string): Promise<Int16Array> {
  const wav = await readWavFile(`${DIR}${file}`);
  return new Int16Array(wav.data.buffer, wav.data.byteOffset, wav.data.length >> 1);
}

/** Runs one fixture through a detector, 20 ms at a time, as the call would. */
export async function runFixture(f: Fixture, options: SpeechOptions): Promise<FixtureResult> {
  await loadVad();
  const inbound = await samplesOf(f.file);
  const prompt = f.echo ? await samplesOf(f.echo.prompt) : undefined;
  const det = new SpeechDetector(createVad(8000, options.aggressiveness ?? SPEECH_DEFAULTS.aggressiveness), options);
  const events: SpeechEvent[] = [];
  const frame = 160;
  for (let i = 0; i + frame <= inbound.length; i += frame) {
    const at = ((i + frame) * 1000) / 8000;
    if (prompt && i + frame <= prompt.length) det.noteOutbound(levelDb(prompt.subarray(i, i + frame)), (i * 1000) / 8000);
    events.push(...det.pushInbound(inbound.subarray(i, i + frame), at));
  }
  det.dispose();
  const starts = events.filter((e) => e.type === 'start');
  if (f.onsetMs === undefined) return { file: f.file, kind: f.kind, latencyMs: null, falseStarts: starts.length, events };
  const early = starts.filter((e) => e.atMs < f.onsetMs! - 100);
  const hit = starts.find((e) => e.atMs >= f.onsetMs! - 100);
  return { file: f.file, kind: f.kind, latencyMs: hit ? hit.detectedAtMs - f.onsetMs : null, falseStarts: early.length, events };
}

/** CPU per call: one detector over 20 ms frames of speech, µs per frame and % of a core for 1000 calls. */
/**
 * CPU of one detector, µs per 20 ms frame, and what 1000 calls cost. `worst`: speech in noise,
 * every frame loud enough to reach the VAD. `call`: a call as it goes (the caller silent under
 * our prompt, then speaking, with line noise at -60 dBFS): the prompt fixture's echo and speech.
 */
export async function cost(
  options: SpeechOptions,
  workload: 'worst' | 'call',
  seconds = 1000,
): Promise<{ usPerFrame: number; coreFor1000Calls: number }> {
  await loadVad();
  const speech =
    workload === 'worst'
      ? await samplesOf('speech-noise-10db-gb.wav')
      : (await samplesOf('speech-over-echo-20db-80ms.wav')).map((v, i) => v + ((i * 7919) % 41) - 20);
  const det = new SpeechDetector(createVad(8000, options.aggressiveness ?? SPEECH_DEFAULTS.aggressiveness), options);
  const frames = (seconds * 1000) / 20;
  const views = Array.from({ length: Math.floor(speech.length / 160) }, (_, k) => speech.subarray(k * 160, k * 160 + 160));
  const run = (from: number, to: number): void => {
    for (let k = from; k < to; k++) {
      det.noteOutbound(-30, k * 20);
      det.pushInbound(views[k % views.length]!, (k + 1) * 20);
    }
  };
  run(0, 5000); // warm-up: the JIT, the VAD's noise model
  const t0 = performance.now();
  run(5000, 5000 + frames);
  const us = ((performance.now() - t0) * 1000) / frames;
  det.dispose();
  return { usPerFrame: us, coreFor1000Calls: (us * 50 * 1000) / 1e6 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      aggressiveness: { type: 'string' },
      'min-speech': { type: 'string' },
      'echo-loss': { type: 'string' },
      hangover: { type: 'string' },
      'min-level': { type: 'string' },
      'noise-margin': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const options: SpeechOptions = {};
  if (values.aggressiveness) options.aggressiveness = Number(values.aggressiveness) as 0 | 1 | 2 | 3;
  if (values['min-speech']) options.minSpeechMs = Number(values['min-speech']);
  if (values['echo-loss']) options.echoLossDb = Number(values['echo-loss']);
  if (values.hangover) options.hangoverMs = Number(values.hangover);
  if (values['min-level']) options.minLevelDb = Number(values['min-level']);
  if (values['noise-margin']) options.noiseMarginDb = Number(values['noise-margin']);
  const results: FixtureResult[] = [];
  for (const f of manifest()) results.push(await runFixture(f, options));
  const c = await cost(options, 'worst');
  const typical = await cost(options, 'call');
  if (values.json) {
    process.stdout.write(JSON.stringify({ options, results, cost: { worst: c, call: typical } }, null, 2) + '\n');
    return;
  }
  process.stdout.write('fixture                              kind               latency ms  false starts  events\n');
  for (const r of results) {
    process.stdout.write(
      `${r.file.padEnd(36)} ${r.kind.padEnd(18)} ${(r.latencyMs === null ? (r.kind.startsWith('speech') ? 'MISSED' : '-') : r.latencyMs.toFixed(0)).padStart(10)}  ${String(r.falseStarts).padStart(12)}  ${r.events.map((e) => `${e.type}@${e.atMs.toFixed(0)}`).join(' ')}\n`,
    );
  }
  const lat = results.flatMap((r) => (r.latencyMs === null ? [] : [r.latencyMs])).sort((a, b) => a - b);
  const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? NaN;
  const missed = results.filter((r) => r.kind.startsWith('speech') && r.latencyMs === null).length;
  const falses = results.filter((r) => !r.kind.startsWith('speech')).reduce((n, r) => n + r.falseStarts, 0);
  process.stdout.write(
    `\nonset latency median ${pct(50).toFixed(0)} ms, p95 ${pct(95).toFixed(0)} ms; missed ${missed}; false starts on echo/non-speech ${falses}\n` +
      `cost, every frame loud (worst case): ${c.usPerFrame.toFixed(2)} µs per 20 ms frame, ${(c.coreFor1000Calls * 100).toFixed(2)} % of a core for 1000 calls\n` +
      `cost, a call (prompt echo, then speech, line noise): ${typical.usPerFrame.toFixed(2)} µs per frame, ${(typical.coreFor1000Calls * 100).toFixed(2)} % of a core for 1000 calls\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
