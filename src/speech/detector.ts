/**
 * Speech detection for one call: when the caller starts and stops speaking, robust to the
 * line's echo of our own audio. I/O-free: audio and time come in, transitions go out.
 *
 * The model (docs/speech.md):
 * - The detector hears the voice band: the caller's audio through a 200 Hz high-pass filter.
 * - A **voiced frame** is a 20 ms frame louder than `minLevelDb` and `noiseMarginDb` above the
 *   background (the quietest frame of the last second), that is not our echo (below) and, while
 *   speech has not started, that WebRTC's VAD (`aggressiveness`) takes for speech and that is
 *   not a tone (more predictable than `maxTonalityDb`).
 * - **Not our echo**: a phone line returns part of what we send, some tens of ms later and
 *   attenuated. The frame must be louder than the loudest frame we sent in the last
 *   `maxEchoDelayMs`, minus `echoLossDb`; a quieter frame is taken for echo, whatever the VAD says.
 * - **Speech starts** once voiced frames add up to `minSpeechMs` with no gap longer than one
 *   frame; its instant is the start of the first of them. **It ends** after `hangoverMs`
 *   without a voiced frame; its instant is the end of the last one.
 */
import type { Vad } from './vad.js';

/** Parameters of speech detection; each has one meaning. */
export interface SpeechOptions {
  /**
   * WebRTC VAD aggressiveness, 0 (takes more for speech) to 3 (takes less). Default 2: the
   * detector's own gates reject noise, tones and echo, so the VAD need not, and a less
   * aggressive VAD catches a soft first word (at 3, speech 20 dB down starts words later).
   */
  aggressiveness?: 0 | 1 | 2 | 3;
  /** Voiced audio needed before speech starts, ms: higher ignores coughs and clicks, lower reacts sooner. Default 100. */
  minSpeechMs?: number;
  /** Time without voiced audio before speech ends, ms: lower ends on pauses between words. Default 500. */
  hangoverMs?: number;
  /** Quietest level that can be speech, dBFS. Default -45. */
  minLevelDb?: number;
  /**
   * How far above the background a frame must be to count, dB. The background is the quietest
   * frame of the last second: steady noise and hum never rise above it. Default 6.
   */
  noiseMarginDb?: number;
  /**
   * Frames more predictable than this are tones, not a voice, dB (the prediction gain of an
   * order-8 linear predictor: a few sinusoids, as DTMF, ringback, hum or synthetic music, are
   * predicted almost exactly; a voice is not). Default 30.
   */
  maxTonalityDb?: number;
  /**
   * How far below our own audio the line's echo of it is, at least, dB: caller audio within this
   * of the loudest frame we sent in the last `maxEchoDelayMs` is taken for echo. Higher lets a
   * softer caller interrupt, but an echo less than this far down then interrupts too. Default 6.
   */
  echoLossDb?: number;
  /** The longest the line takes to return our audio, ms (0-600). Default 300. */
  maxEchoDelayMs?: number;
}

/** A transition of the detector, on the call's timeline (ms since the call started). */
export interface SpeechEvent {
  type: 'start' | 'end';
  /** Where the speech starts (or ends): the first (or last) voiced frame's edge. */
  atMs: number;
  /** When it was detected: `atMs` plus the detector's latency. */
  detectedAtMs: number;
}

export const SPEECH_DEFAULTS: Readonly<Required<SpeechOptions>> = Object.freeze({
  aggressiveness: 2,
  minSpeechMs: 100,
  hangoverMs: 500,
  minLevelDb: -45,
  noiseMarginDb: 6,
  maxTonalityDb: 30,
  echoLossDb: 6,
  maxEchoDelayMs: 300,
});

/** Checks and completes speech options; throws RangeError naming the bad one. */
export function resolveSpeechOptions(o: SpeechOptions = {}): Required<SpeechOptions> {
  const r = { ...SPEECH_DEFAULTS, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) } as Required<SpeechOptions>;
  if (![0, 1, 2, 3].includes(r.aggressiveness))
    throw new RangeError(`speech.aggressiveness must be 0, 1, 2 or 3, got ${String(r.aggressiveness)}`);
  if (!(Number.isFinite(r.maxEchoDelayMs) && r.maxEchoDelayMs >= 0 && r.maxEchoDelayMs <= 600)) {
    throw new RangeError(`speech.maxEchoDelayMs must be a number from 0 to 600, got ${String(r.maxEchoDelayMs)}`);
  }
  for (const k of ['minSpeechMs', 'hangoverMs', 'echoLossDb', 'noiseMarginDb', 'maxTonalityDb'] as const) {
    if (!(Number.isFinite(r[k]) && r[k] >= 0 && r[k] <= 60_000))
      throw new RangeError(`speech.${k} must be a number from 0 to 60000, got ${String(r[k])}`);
  }
  if (!(Number.isFinite(r.minLevelDb) && r.minLevelDb <= 0))
    throw new RangeError(`speech.minLevelDb must be a level in dBFS (<= 0), got ${String(r.minLevelDb)}`);
  return r;
}

/**
 * RMS level of slin samples, dBFS (-Infinity for digital silence). `stride` > 1 estimates it
 * from every stride-th sample: enough for a gate of a few dB, at a fraction of the cost.
 */
export function levelDb(samples: Int16Array, stride = 1): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < samples.length; i += stride, n++) sum += samples[i]! * samples[i]!;
  return 10 * Math.log10(sum / Math.max(1, n) / (32768 * 32768));
}

/**
 * How predictable a frame is, dB: the prediction gain of an order-8 linear predictor fitted to
 * the frame by least squares (the covariance method). A sum of up to four sinusoids (DTMF,
 * ringback, hum, synthetic music) follows an exact order-8 recursion and is predicted to within
 * its rounding (40 dB and more); a voice, driven by glottal pulses and noise, stays near 10-20 dB.
 */
export function tonalityDb(input: Int16Array, order = 8, stride = 1): number {
  // Taken at 8 kHz whatever the rate: audio from a narrowband leg, carried at 16 kHz, has nothing
  // above 4 kHz and would look predictable for that alone.
  const x = stride === 1 ? input : input.filter((_, i) => i % stride === 0);
  const p = order;
  const n = x.length;
  // phi[i][j] = sum over t = p..n-1 of x[t-i] x[t-j], i, j = 0..p
  // The first row by sums, the rest by phi[i][j] = phi[i-1][j-1] + x[p-i]x[p-j] - x[n-i]x[n-j].
  const phi = new Float64Array((p + 1) * (p + 1));
  for (let j = 0; j <= p; j++) {
    let sum = 0;
    for (let t = p; t < n; t++) sum += x[t]! * x[t - j]!;
    phi[j] = phi[j * (p + 1)] = sum;
  }
  for (let i = 1; i <= p; i++) {
    for (let j = i; j <= p; j++) {
      const v = phi[(i - 1) * (p + 1) + (j - 1)]! + x[p - i]! * x[p - j]! - x[n - i]! * x[n - j]!;
      phi[i * (p + 1) + j] = phi[j * (p + 1) + i] = v;
    }
  }
  const energy = phi[0]!;
  if (energy <= 0) return 0;
  // Solve phi[1..p][1..p] a = phi[1..p][0] by Cholesky (with a hint of white noise for stability).
  const m = p;
  const l = new Float64Array(m * m);
  const at = (i: number, j: number): number => phi[(i + 1) * (p + 1) + (j + 1)]! + (i === j ? energy * 1e-9 : 0);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = at(i, j);
      for (let k = 0; k < j; k++) sum -= l[i * m + k]! * l[j * m + k]!;
      if (i === j) {
        if (sum <= 0) return 100; // singular: the frame is exactly predictable
        l[i * m + i] = Math.sqrt(sum);
      } else l[i * m + j] = sum / l[j * m + j]!;
    }
  }
  const y = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let sum = phi[(i + 1) * (p + 1)]!;
    for (let k = 0; k < i; k++) sum -= l[i * m + k]! * y[k]!;
    y[i] = sum / l[i * m + i]!;
  }
  // Residual energy = energy - |y|^2 (y = L^-1 b, and b' Phi^-1 b = |y|^2).
  let explained = 0;
  for (let i = 0; i < m; i++) explained += y[i]! * y[i]!;
  const residual = Math.max(energy - explained, energy * 1e-10);
  return 10 * Math.log10(energy / residual);
}

/**
 * A second-order high-pass filter at 200 Hz (Butterworth biquad): the detector listens to the
 * voice band only, so rumble, mains hum and handling noise below it neither look like speech
 * nor raise the level that speech must beat.
 */
class HighPass {
  readonly #b0: number;
  readonly #b1: number;
  readonly #b2: number;
  readonly #a1: number;
  readonly #a2: number;
  #x1 = 0;
  #x2 = 0;
  #y1 = 0;
  #y2 = 0;

  constructor(sampleRate: number, cutoffHz = 200) {
    const w = (2 * Math.PI * cutoffHz) / sampleRate;
    const alpha = Math.sin(w) / Math.SQRT2;
    const cos = Math.cos(w);
    const a0 = 1 + alpha;
    this.#b0 = (1 + cos) / 2 / a0;
    this.#b1 = -(1 + cos) / a0;
    this.#b2 = (1 + cos) / 2 / a0;
    this.#a1 = (-2 * cos) / a0;
    this.#a2 = (1 - alpha) / a0;
  }

  /** Filters `x` into `out` (same length); returns the level of `out`, dBFS. */
  run(x: Int16Array, out: Int16Array): number {
    let energy = 0;
    const b0 = this.#b0;
    const b1 = this.#b1;
    const b2 = this.#b2;
    const a1 = this.#a1;
    const a2 = this.#a2;
    let x1 = this.#x1;
    let x2 = this.#x2;
    let y1 = this.#y1;
    let y2 = this.#y2;
    for (let i = 0; i < x.length; i++) {
      const x0 = x[i]!;
      const y0 = b0 * x0 + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
      x2 = x1;
      x1 = x0;
      y2 = y1;
      y1 = y0;
      out[i] = y0 > 32767 ? 32767 : y0 < -32768 ? -32768 : y0;
      energy += y0 * y0;
    }
    this.#x1 = x1;
    this.#x2 = x2;
    this.#y1 = y1;
    this.#y2 = y2;
    return 10 * Math.log10(energy / x.length / (32768 * 32768));
  }

  /** Forgets the past (after frames that were not filtered). */
  reset(): void {
    this.#x1 = this.#x2 = this.#y1 = this.#y2 = 0;
  }
}

const NO_EVENTS: readonly SpeechEvent[] = Object.freeze([]);

/** The frame the detector works in. */
export const SPEECH_FRAME_MS = 20;

/** Outbound levels kept for the echo model: (atMs, dB) of the last 64 frames (640 ms at 10 ms), in a ring. */
class LevelHistory {
  readonly #at = new Float64Array(64).fill(-Infinity);
  readonly #db = new Float64Array(64).fill(-Infinity);
  #next = 0;

  add(atMs: number, db: number): void {
    this.#at[this.#next] = atMs;
    this.#db[this.#next] = db;
    this.#next = (this.#next + 1) & 63;
  }

  /** The loudest level of the kept frames that started in (from, to]. */
  maxIn(from: number, to: number): number {
    let max = -Infinity;
    for (let i = 0; i < 64; i++) {
      const at = this.#at[i]!;
      if (at > from && at <= to && this.#db[i]! > max) max = this.#db[i]!;
    }
    return max;
  }
}

/** The detector of one call. Feed it the caller's audio and our own; it reports transitions. */
export class SpeechDetector {
  readonly options: Readonly<Required<SpeechOptions>>;
  readonly #vad: Vad;
  readonly #frame: Int16Array;
  readonly #out = new LevelHistory();
  readonly #highPass: HighPass;
  readonly #filtered: Int16Array;
  #fill = 0;
  /** Timeline instant of the next sample fed in. */
  #clockMs: number | undefined;
  #speaking = false;
  /** Start of the first voiced frame of the current run, and the run's voiced ms. */
  #runStart = 0;
  #runMs = 0;
  #gapFrames = 0;
  #lastVoicedEnd = 0;
  /** Frame levels of the last second, for the background (a ring). */
  readonly #recent = new Float64Array(1000 / SPEECH_FRAME_MS).fill(Infinity);
  #recentAt = 0;
  #recentMin = Infinity;
  #events: readonly SpeechEvent[] = NO_EVENTS;
  /** Voiced frames and frames taken for echo, for stats. */
  voicedFrames = 0;
  echoFrames = 0;

  constructor(vad: Vad, options: SpeechOptions = {}) {
    this.options = resolveSpeechOptions(options);
    this.#vad = vad;
    this.#frame = new Int16Array((vad.sampleRate * SPEECH_FRAME_MS) / 1000);
    this.#filtered = new Int16Array(this.#frame.length);
    this.#highPass = new HighPass(vad.sampleRate);
  }

  get speaking(): boolean {
    return this.#speaking;
  }

  get sampleRate(): number {
    return this.#vad.sampleRate;
  }

  /** Our audio reaching the caller: `samples` (slin, any rate) playing from `atMs`. */
  noteOutbound(db: number, atMs: number): void {
    this.#out.add(atMs, db);
  }

  /**
   * The caller's audio, slin at {@link sampleRate}, arriving at `atMs` on the call's timeline
   * (the instant its last sample was received). Returns the transitions it caused, in order.
   */
  pushInbound(samples: Int16Array, atMs: number): readonly SpeechEvent[] {
    const rate = this.#vad.sampleRate;
    // The timeline follows the audio; re-anchored when arrival and audio drift apart (a gap).
    const firstAt = atMs - (samples.length * 1000) / rate;
    if (this.#clockMs === undefined || Math.abs(firstAt - this.#clockMs) > 200) this.#clockMs = firstAt - (this.#fill * 1000) / rate;
    this.#events = NO_EVENTS;
    const frame = this.#frame;
    if (this.#fill === 0 && samples.length === frame.length) {
      // The usual case: Asterisk's 20 ms frames, one detector frame each.
      const start = this.#clockMs;
      this.#clockMs += SPEECH_FRAME_MS;
      this.#frameIn(samples, start, atMs);
      return this.#events;
    }
    let i = 0;
    while (i < samples.length) {
      const n = Math.min(frame.length - this.#fill, samples.length - i);
      for (let k = 0; k < n; k++) frame[this.#fill + k] = samples[i + k]!;
      this.#fill += n;
      i += n;
      if (this.#fill === frame.length) {
        this.#fill = 0;
        const start = this.#clockMs;
        this.#clockMs += SPEECH_FRAME_MS;
        const detectedAt = atMs - ((samples.length - i) * 1000) / rate;
        this.#frameIn(frame, start, detectedAt);
      }
    }
    return this.#events;
  }

  /** A transition of this push: the array is made only when there is one (most frames have none). */
  #event(e: SpeechEvent): void {
    if (this.#events === NO_EVENTS) this.#events = [];
    (this.#events as SpeechEvent[]).push(e);
  }

  #frameIn(raw: Int16Array, start: number, detectedAt: number): void {
    const o = this.options;
    // The cheap tests first: most frames of a call (silence, background, our echo) stop here.
    // The level and the echo are judged on the frame as it came (our own audio's levels are
    // too); the background on the voice band, so rumble and hum stay in it.
    const db = levelDb(raw, 4);
    const frame = this.#filtered;
    let bandDb = -Infinity;
    if (db >= o.minLevelDb) bandDb = this.#highPass.run(raw, frame);
    else this.#highPass.reset();
    const background = this.#background(bandDb);
    let voiced = db >= o.minLevelDb && bandDb >= background + o.noiseMarginDb;
    if (voiced) {
      const echo = this.#out.maxIn(start - o.maxEchoDelayMs, start + SPEECH_FRAME_MS);
      if (db < echo - o.echoLossDb) {
        voiced = false;
        this.echoFrames++;
      }
    }
    // The VAD and the tone test decide where speech starts; once it has, it goes on while
    // frames stand above the background (and are not our echo), and ends after the hangover.
    if (voiced && !this.#speaking) voiced = this.#vad.isSpeech(frame);
    const end = start + SPEECH_FRAME_MS;
    if (voiced) {
      this.voicedFrames++;
      if (this.#runMs === 0) this.#runStart = start;
      this.#runMs += SPEECH_FRAME_MS;
      this.#gapFrames = 0;
      this.#lastVoicedEnd = end;
      if (!this.#speaking && this.#runMs >= o.minSpeechMs) {
        // The frame that would start speech must not be a tone (a voice never is; tones always are).
        if (tonalityDb(frame, 8, this.#vad.sampleRate / 8000) > o.maxTonalityDb) {
          this.#runMs = 0;
          this.#gapFrames = 0;
          return;
        }
        this.#speaking = true;
        this.#event({ type: 'start', atMs: this.#runStart, detectedAtMs: detectedAt });
      }
      return;
    }
    // One unvoiced frame inside a run is tolerated (a plosive, a packet of noise).
    if (!this.#speaking && this.#runMs > 0 && ++this.#gapFrames > 1) {
      this.#runMs = 0;
      this.#gapFrames = 0;
    }
    if (this.#speaking && end - this.#lastVoicedEnd >= o.hangoverMs) {
      this.#speaking = false;
      this.#runMs = 0;
      this.#event({ type: 'end', atMs: this.#lastVoicedEnd, detectedAtMs: detectedAt });
    }
  }

  /** The quietest frame level of the last second, this frame's included. */
  #background(db: number): number {
    const ring = this.#recent;
    const dropped = ring[this.#recentAt]!;
    ring[this.#recentAt] = db;
    this.#recentAt = (this.#recentAt + 1) % ring.length;
    if (db <= this.#recentMin) this.#recentMin = db;
    else if (dropped <= this.#recentMin) {
      // The minimum left the window: find the new one (rarely).
      let min = Infinity;
      for (let i = 0; i < ring.length; i++) if (ring[i]! < min) min = ring[i]!;
      this.#recentMin = min;
    }
    return this.#recentMin;
  }

  /** Frees the VAD. */
  dispose(): void {
    this.#vad.dispose();
  }
}
