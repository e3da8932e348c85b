/**
 * Makes the speech-detection fixtures in test/fixtures/speech/ (committed, so CI needs neither
 * tool): speech from `espeak-ng` (several voices and speeds) resampled by `sox` to 8 kHz, then
 * placed, mixed and measured here. `manifest.json` lists each file with what it holds and, for
 * speech, where the speech truly starts and ends (the first and last 10 ms window of the clean
 * utterance above -35 dB of its peak level).
 *
 *   apt-get install espeak-ng sox && npm run build && node build/scripts/speech-fixtures.js
 *
 * Classes: `speech` (in silence; in white noise at 20 and 10 dB SNR), `speech-over-echo` (the
 * caller talks while our prompt's echo comes back 10 or 20 dB down, 40-120 ms late), `echo`
 * (the prompt's echo alone), `nonspeech` (noise, DTMF, mains hum, music-like tones). Every
 * file is 8 kHz 16-bit mono; the prompt that was "played" for the echo files is `prompt.wav`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeWav } from '#lib/index.js';

const RATE = 8000;
const OUT = fileURLToPath(new URL('../../test/fixtures/speech/', import.meta.url));

/** One fixture as the manifest lists it. */
export interface SpeechFixture {
  file: string;
  kind: 'speech' | 'speech-over-echo' | 'echo' | 'nonspeech';
  description: string;
  /** Where the caller's speech starts and ends, ms from the file's start (speech kinds). */
  onsetMs?: number;
  offsetMs?: number;
  /** For the echo kinds: the prompt's echo, its delay and how far down. */
  echo?: { prompt: string; delayMs: number; lossDb: number };
}

/** A deterministic PRNG (xorshift32), so the fixtures are the same on every run. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}

function rms(x: Float64Array, from = 0, to = x.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / Math.max(1, to - from));
}

/** espeak-ng's voice for `text`, at 8 kHz, as samples in -1..1. */
function speak(tmp: string, voice: string, speed: number, text: string): Float64Array {
  const raw = join(tmp, 'raw.wav');
  const pcm = join(tmp, 'out.raw');
  execFileSync('espeak-ng', ['-v', voice, '-s', String(speed), '-w', raw, text]);
  execFileSync('sox', [raw, '-D', '-r', String(RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', '-t', 'raw', pcm, 'rate', '-v']); // -D: no dither, so the fixtures are the same on every run
  const b = readFileSync(pcm);
  const x = new Float64Array(b.length >> 1);
  for (let i = 0; i < x.length; i++) x[i] = b.readInt16LE(2 * i) / 32768;
  return x;
}

/** First and last sample of speech in a clean utterance: 10 ms windows above -35 dB of the loudest. */
function bounds(x: Float64Array): { start: number; end: number } {
  const w = RATE / 100;
  const levels: number[] = [];
  for (let i = 0; i + w <= x.length; i += w) levels.push(rms(x, i, i + w));
  const peak = Math.max(...levels);
  const on = levels.findIndex((l) => l > peak * 10 ** (-35 / 20));
  let off = levels.length - 1;
  while (off > 0 && levels[off]! <= peak * 10 ** (-35 / 20)) off--;
  return { start: on * w, end: (off + 1) * w };
}

/** Scales `x` to an RMS (over its speech) of `level` dBFS. */
function normalise(x: Float64Array, levelDb: number): Float64Array {
  const { start, end } = bounds(x);
  const k = 10 ** (levelDb / 20) / rms(x, start, end);
  return x.map((v) => v * k);
}

function place(length: number, parts: { at: number; x: Float64Array; gain?: number }[]): Float64Array {
  const out = new Float64Array(length);
  for (const p of parts)
    for (let i = 0; i < p.x.length && p.at + i < length; i++) if (p.at + i >= 0) out[p.at + i]! += p.x[i]! * (p.gain ?? 1);
  return out;
}

function whiteNoise(length: number, levelDb: number, seed: number): Float64Array {
  const rand = prng(seed);
  const k = 10 ** (levelDb / 20);
  return Float64Array.from({ length }, () => gaussian(rand) * k);
}

function tones(length: number, parts: { freq: number; from: number; to: number; amp: number }[]): Float64Array {
  const out = new Float64Array(length);
  for (const p of parts) {
    for (let i = p.from; i < Math.min(p.to, length); i++) {
      // 5 ms ramps, as a real tone generator
      const ramp = Math.min(1, (i - p.from) / 40, (p.to - i) / 40);
      out[i]! += p.amp * ramp * Math.sin((2 * Math.PI * p.freq * i) / RATE);
    }
  }
  return out;
}

function writeWav(file: string, x: Float64Array): void {
  const data = Buffer.alloc(x.length * 2);
  for (let i = 0; i < x.length; i++) data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(x[i]! * 32768))), 2 * i);
  writeFileSync(join(OUT, file), encodeWav('slin', data));
}

const ms = (samples: number): number => Math.round((samples * 1000) / RATE);

function main(): void {
  const tmp = mkdtempSync(join(tmpdir(), 'speech-fixtures-'));
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const fixtures: SpeechFixture[] = [];
  try {
    const lines = [
      'Hello, I would like to speak to someone about my order.',
      'No, that is not what I said.',
      'Can you repeat the last part please?',
      'Yes.',
      'I need to change my delivery address before Friday.',
    ];
    const voices: [string, number, string][] = [
      ['en-us', 160, 'us'],
      ['en-gb', 140, 'gb'],
      ['en-us+f3', 180, 'us-f'],
      ['en-gb-scotland', 120, 'scot'],
      ['en-us+m4', 200, 'us-fast'],
    ];
    // Speech in silence: 1 s before, 1 s after, at -20 dBFS (a normal telephone level).
    const utterances = voices.map(([voice, speed, tag], i) => ({ tag, x: normalise(speak(tmp, voice, speed, lines[i]!), -20) }));
    for (const { tag, x } of utterances) {
      const b = bounds(x);
      const lead = RATE - b.start;
      const length = lead + b.end + RATE;
      const file = `speech-${tag}.wav`;
      writeWav(file, place(length, [{ at: lead, x }]));
      fixtures.push({ file, kind: 'speech', description: `speech in silence (${tag})`, onsetMs: ms(RATE), offsetMs: ms(lead + b.end) });
    }
    // Speech in white noise at 20 and 10 dB SNR (noise over the whole file).
    for (const [snr, pick] of [
      [20, 0],
      [10, 1],
      [10, 2],
    ] as const) {
      const { tag, x } = utterances[pick]!;
      const b = bounds(x);
      const lead = RATE - b.start;
      const length = lead + b.end + RATE;
      const file = `speech-noise-${snr}db-${tag}.wav`;
      const noise = whiteNoise(length, -20 - snr, 7 + pick);
      writeWav(
        file,
        place(length, [
          { at: 0, x: noise },
          { at: lead, x },
        ]),
      );
      fixtures.push({
        file,
        kind: 'speech',
        description: `speech in white noise, ${snr} dB SNR (${tag})`,
        onsetMs: ms(RATE),
        offsetMs: ms(lead + b.end),
      });
    }
    // Our prompt (another voice), and its echo: alone, and with the caller talking over it.
    const prompt = normalise(
      speak(tmp, 'en-gb-x-rp', 150, 'Thank you for calling. Please tell me in a few words how I can help you today.'),
      -20,
    );
    const pb = bounds(prompt);
    const promptPadded = place(pb.end + RATE, [{ at: 0, x: prompt }]);
    writeWav('prompt.wav', promptPadded);
    for (const [lossDb, delayMs] of [
      [10, 40],
      [10, 120],
      [20, 80],
    ] as const) {
      const delay = (delayMs * RATE) / 1000;
      const echo = { at: delay, x: promptPadded, gain: 10 ** (-lossDb / 20) };
      const length = promptPadded.length + delay;
      const file = `echo-${lossDb}db-${delayMs}ms.wav`;
      writeWav(file, place(length, [echo]));
      fixtures.push({
        file,
        kind: 'echo',
        description: `the prompt's echo alone, ${lossDb} dB down, ${delayMs} ms late`,
        echo: { prompt: 'prompt.wav', delayMs, lossDb },
      });
      // The caller starts talking 1.5 s into the prompt.
      const { tag, x } = utterances[lossDb === 10 ? 3 : 4]!;
      const b = bounds(x);
      const at = Math.round(1.5 * RATE) - b.start;
      const file2 = `speech-over-echo-${lossDb}db-${delayMs}ms.wav`;
      writeWav(file2, place(Math.max(length, at + x.length), [echo, { at, x }]));
      fixtures.push({
        file: file2,
        kind: 'speech-over-echo',
        description: `the caller (${tag}) talks over the prompt's echo, ${lossDb} dB down, ${delayMs} ms late`,
        onsetMs: 1500,
        offsetMs: ms(at + b.end),
        echo: { prompt: 'prompt.wav', delayMs, lossDb },
      });
    }
    // Non-speech.
    const n = 4 * RATE;
    writeWav('noise-white.wav', whiteNoise(n, -30, 3));
    fixtures.push({ file: 'noise-white.wav', kind: 'nonspeech', description: 'white noise at -30 dBFS' });
    const brown = whiteNoise(n, -20, 5);
    for (let i = 1; i < n; i++) brown[i] = 0.98 * brown[i - 1]! + 0.2 * brown[i]!;
    writeWav('noise-brown.wav', brown);
    fixtures.push({ file: 'noise-brown.wav', kind: 'nonspeech', description: 'low-frequency (brown-like) noise' });
    const rows = [697, 770, 852, 941];
    const cols = [1209, 1336, 1477];
    const dtmf = [];
    for (let k = 0; k < 10; k++) {
      const from = Math.round((0.3 + k * 0.35) * RATE);
      dtmf.push(
        { freq: rows[k % 4]!, from, to: from + 0.12 * RATE, amp: 0.1 },
        { freq: cols[k % 3]!, from, to: from + 0.12 * RATE, amp: 0.12 },
      );
    }
    writeWav('dtmf.wav', tones(n, dtmf));
    fixtures.push({ file: 'dtmf.wav', kind: 'nonspeech', description: 'ten DTMF digits, 120 ms each' });
    writeWav(
      'hum.wav',
      tones(
        n,
        [50, 100, 150, 250].map((freq, i) => ({ freq, from: 0, to: n, amp: 0.1 / (i + 1) })),
      ),
    );
    fixtures.push({ file: 'hum.wav', kind: 'nonspeech', description: 'mains hum, 50 Hz and harmonics' });
    const notes = [262, 330, 392, 523, 392, 330, 294, 349, 440, 587, 440, 349];
    const melody = notes.flatMap((f, k) => {
      const from = Math.round(k * 0.3 * RATE);
      const to = from + Math.round(0.28 * RATE);
      return [1, 2, 3].map((h) => ({ freq: f * h, from, to, amp: 0.08 / h }));
    });
    writeWav('music-tones.wav', tones(n, melody));
    fixtures.push({ file: 'music-tones.wav', kind: 'nonspeech', description: 'a melody of harmonic tones (hold music)' });
    writeWav(
      'ringback.wav',
      tones(
        n,
        [0, 1].flatMap((k) => [440, 480].map((freq) => ({ freq, from: k * 2 * RATE, to: k * 2 * RATE + RATE, amp: 0.08 }))),
      ),
    );
    fixtures.push({ file: 'ringback.wav', kind: 'nonspeech', description: 'ringback tone (440 + 480 Hz, 1 s on, 1 s off)' });
    writeFileSync(join(OUT, 'manifest.json'), JSON.stringify({ rate: RATE, fixtures }, null, 2) + '\n');
    process.stdout.write(`wrote ${fixtures.length} fixtures and prompt.wav to ${OUT}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main();
