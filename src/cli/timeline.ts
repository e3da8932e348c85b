/**
 * Lines up the two directions of a call for recording: each side is a stream of slin samples
 * placed on the call's wall clock, so both sides stay in step. Pure: the caller passes times in ms.
 *
 * The model has two parameters. A side's *lateness* after a piece is how far the wall clock is
 * past the end of that side's audio (negative: the side is ahead of the clock).
 * - A piece that arrives at most `slackMs` late is placed right after the audio before it.
 * - A piece that arrives later opens a gap, and is held while the gap is judged: audio that was
 *   held up (our process stalled, or the network or the sender held it) arrives faster than
 *   real time and brings the lateness back down; a pause (Asterisk sends nothing while it sends
 *   a DTMF digit; keep-alive off) does not.
 * - The judging ends `slackMs` after the gap opened, or after the last stall within it (a piece
 *   that arrives more than `slackMs` after the side's previous one: the burst that makes up for
 *   the stall is still to come), and at the latest `maxHoldMs` after the gap opened.
 * - Then each gap (the first, and each stall within the judging) gets as much silence as the
 *   least lateness of the audio from it on allows, if that is more than `slackMs`: no audio is
 *   placed before it arrived, and none later than it must be.
 * - `maxHoldMs` bounds the rest. {@link advance} judges a gap that old, and fills a side that
 *   has had no audio for longer with silence, up to `maxHoldMs` behind the clock; and a side is
 *   never more than `maxHoldMs` ahead of the clock: audio beyond that (a sender faster than real
 *   time, or a burst after a stall longer than `maxHoldMs` that was filled with silence) is
 *   dropped and counted ({@link droppedMs}). So memory stays bounded whatever the peer sends,
 *   the recording is written as the call goes, and the two sides are never more than
 *   `maxHoldMs` apart.
 * So a burst puts no silence into the recording however it is split into reads and whatever
 * stalls come between them (up to `maxHoldMs`), and a pause stays a pause.
 */
class Side {
  /** Samples placed. */
  samples = 0;
  pending: Buffer[] = [];
  pendingBytes = 0;
  /** When the side's last piece arrived (ms). */
  lastArrival = -Infinity;
  /** Audio held while a gap is judged: one run per gap (the first, then each stall). */
  held: HeldRun[] | undefined;
  heldSamples = 0;
  /** When the gap opened, and when its judging started last (the gap, or a stall within it), ms. */
  gapAt = 0;
  judgingSince = 0;
  /** Samples dropped for running more than `maxHoldMs` ahead of the clock. */
  dropped = 0;
}

interface HeldRun {
  pieces: Buffer[];
  /** The least lateness (samples) after a piece of this run. */
  least: number;
}

export interface TimelineParameters {
  /** Lateness, ms, that is not a gap (jitter, a busy event loop). */
  slackMs: number;
  /** Longest a gap waits to be judged, a side waits for audio, and a side may run ahead, ms. */
  maxHoldMs: number;
}

export const DEFAULT_TIMELINE: TimelineParameters = { slackMs: 60, maxHoldMs: 1000 };

export class CallTimeline {
  readonly #rate: number;
  readonly #start: number;
  readonly #slackMs: number;
  readonly #maxHoldMs: number;
  /** `slackMs` and `maxHoldMs` in samples. */
  readonly #slack: number;
  readonly #maxHold: number;
  readonly #sides = [new Side(), new Side()] as const;

  constructor(sampleRate: number, startMs: number, parameters: TimelineParameters = DEFAULT_TIMELINE) {
    this.#rate = sampleRate;
    this.#start = startMs;
    this.#slackMs = parameters.slackMs;
    this.#maxHoldMs = parameters.maxHoldMs;
    this.#slack = (parameters.slackMs * sampleRate) / 1000;
    this.#maxHold = (parameters.maxHoldMs * sampleRate) / 1000;
  }

  /** Adds slin bytes to side 0 (caller) or 1 (us) that arrived at `nowMs`. */
  push(side: 0 | 1, slin: Buffer, nowMs: number): void {
    const s = this.#sides[side];
    if (slin.length < 2) return;
    const afterStall = nowMs - s.lastArrival > this.#slackMs;
    s.lastArrival = nowMs;
    if (s.held !== undefined) {
      const withinHold = nowMs - s.gapAt <= this.#maxHoldMs;
      if (afterStall && withinHold) {
        s.judgingSince = nowMs;
        s.held.push({ pieces: [], least: Infinity });
      }
      if (withinHold && nowMs - s.judgingSince <= this.#slackMs) {
        // Silence placed at release never puts audio further ahead, so the limit applies here.
        const bytes = this.#withinLead(s, slin, s.samples + s.heldSamples, nowMs);
        if (bytes.length === 0) return;
        const run = s.held[s.held.length - 1]!;
        run.pieces.push(bytes);
        s.heldSamples += bytes.length >> 1;
        run.least = Math.min(run.least, this.#lateness(s.samples + s.heldSamples, nowMs));
        return;
      }
      this.#release(s);
    }
    const n = slin.length >> 1;
    const lateness = this.#lateness(s.samples + n, nowMs);
    if (lateness > this.#slack) {
      s.held = [{ pieces: [slin.subarray(0, n * 2)], least: lateness }];
      s.heldSamples = n;
      s.gapAt = s.judgingSince = nowMs;
      return;
    }
    const bytes = this.#withinLead(s, slin, s.samples, nowMs);
    if (bytes.length > 0) this.#append(s, bytes);
  }

  /**
   * The whole samples of `slin` that keep the side at most `maxHoldMs` ahead of the clock when
   * placed after `samples`; what is cut is counted as dropped.
   */
  #withinLead(s: Side, slin: Buffer, samples: number, nowMs: number): Buffer {
    const n = slin.length >> 1;
    const over = Math.min(n, Math.ceil(-this.#lateness(samples + n, nowMs) - this.#maxHold));
    if (over <= 0) return slin.length & 1 ? slin.subarray(0, n * 2) : slin;
    s.dropped += over;
    return slin.subarray(0, (n - over) * 2);
  }

  /**
   * Moves both sides on to `nowMs` without audio: a gap open for `maxHoldMs` is judged, and a
   * side whose audio ends more than `maxHoldMs` before the clock gets silence up to that point.
   * `final` (the call has ended at `nowMs`): every gap is judged and both sides reach `nowMs`,
   * or the end of the side that is ahead of it, so both directions end together.
   */
  advance(nowMs: number, final = false): void {
    if (final) for (const s of this.#sides) this.#release(s);
    const [l, r] = this.#sides;
    const clock = Math.floor(((nowMs - (final ? 0 : this.#maxHoldMs) - this.#start) * this.#rate) / 1000);
    const to = final ? Math.max(clock, l.samples, r.samples) : clock;
    for (const s of this.#sides) {
      if (s.held !== undefined && nowMs - s.gapAt > this.#maxHoldMs) this.#release(s);
      if (s.held === undefined && to > s.samples) this.#append(s, Buffer.alloc((to - s.samples) * 2));
    }
  }

  /** Audio of side 0 (caller) or 1 (us) dropped for running more than `maxHoldMs` ahead, ms. */
  droppedMs(side: 0 | 1): number {
    return (this.#sides[side].dropped * 1000) / this.#rate;
  }

  /** Samples by which the wall clock at `nowMs` is past `samples` of audio. */
  #lateness(samples: number, nowMs: number): number {
    return Math.floor(((nowMs - this.#start) * this.#rate) / 1000 - samples);
  }

  /** Places the held runs, each after the silence its gap gets (see the module comment). */
  #release(s: Side): void {
    const runs = s.held;
    if (runs === undefined) return;
    s.held = undefined;
    s.heldSamples = 0;
    // The silence before run j, counted from the gap, may not exceed the least lateness of any
    // run from j on: the least of those, from the last run back (so it only grows with j).
    const before = new Array<number>(runs.length);
    let least = Infinity;
    for (let j = runs.length - 1; j >= 0; j--) {
      least = Math.min(least, runs[j]!.least);
      before[j] = least > this.#slack ? least : 0;
    }
    let silence = 0;
    for (let j = 0; j < runs.length; j++) {
      if (before[j]! > silence) this.#append(s, Buffer.alloc((before[j]! - silence) * 2));
      silence = before[j]!;
      for (const piece of runs[j]!.pieces) this.#append(s, piece);
    }
  }

  #append(s: Side, bytes: Buffer): void {
    s.pending.push(bytes);
    s.pendingBytes += bytes.length;
    s.samples += bytes.length >> 1;
  }

  /** Takes what is ready of one side (mono output); `final` places held audio too. */
  takeMono(side: 0 | 1, final = false): Buffer {
    const s = this.#sides[side];
    if (final) this.#release(s);
    const out = Buffer.concat(s.pending, s.pendingBytes);
    s.pending = [];
    s.pendingBytes = 0;
    return out;
  }

  /** Takes interleaved stereo frames for the samples both sides have; `final` pads the shorter side. */
  takeStereo(final = false): Buffer {
    const [l, r] = this.#sides;
    if (final) {
      this.#release(l);
      this.#release(r);
      const diff = l.pendingBytes - r.pendingBytes;
      if (diff > 0) {
        r.pending.push(Buffer.alloc(diff));
        r.pendingBytes += diff;
      }
      if (diff < 0) {
        l.pending.push(Buffer.alloc(-diff));
        l.pendingBytes -= diff;
      }
    }
    const bytes = Math.min(l.pendingBytes, r.pendingBytes) & ~1;
    if (bytes === 0) return Buffer.alloc(0);
    const left = take(l, bytes);
    const right = take(r, bytes);
    const out = Buffer.allocUnsafe(bytes * 2);
    for (let i = 0, o = 0; i < bytes; i += 2, o += 4) {
      out[o] = left[i]!;
      out[o + 1] = left[i + 1]!;
      out[o + 2] = right[i]!;
      out[o + 3] = right[i + 1]!;
    }
    return out;
  }
}

function take(s: Side, bytes: number): Buffer {
  const all = Buffer.concat(s.pending, s.pendingBytes);
  const head = all.subarray(0, bytes);
  const rest = all.subarray(bytes);
  s.pending = rest.length > 0 ? [rest] : [];
  s.pendingBytes = rest.length;
  return head;
}
