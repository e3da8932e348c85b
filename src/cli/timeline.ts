/**
 * Lines up the two directions of a call for recording: each side is a stream of slin samples
 * placed on the call's wall clock, so both sides stay in step. Pure: the caller passes times in ms.
 *
 * The model has one parameter, `slackMs`. A side's *lateness* after a piece is how far the wall
 * clock is past the end of that side's audio.
 * - A piece that arrives at most `slackMs` late is placed right after the audio before it.
 * - A piece that arrives later opens a gap, and the gap is judged over the next `slackMs`: audio
 *   that was held up (our process stalled, or the network or the sender held it) arrives faster
 *   than real time and brings the lateness back down; a pause (Asterisk sends nothing while it
 *   sends a DTMF digit; keep-alive off) does not. A piece that opens a new gap meanwhile (more than
 *   `slackMs` later than the least lateness so far) starts the span again. The gap gets as much
 *   silence as the least lateness seen, if that is more than `slackMs`; the held pieces follow it.
 * So a burst puts no silence into the recording however it is split into reads and whatever
 * stalls come between them, and a real pause stays a pause. Held audio is placed by the first
 * piece after the judging span, or by a final take.
 */
class Side {
  /** Samples placed. */
  samples = 0;
  pending: Buffer[] = [];
  pendingBytes = 0;
  /** Pieces that came after a gap, waiting for the gap to be judged. */
  held: Buffer[] | undefined;
  heldSamples = 0;
  /** When the first held piece arrived (ms). */
  heldSince = 0;
  /** The least lateness (samples) seen since then. */
  leastLateness = 0;
}

export class CallTimeline {
  readonly #rate: number;
  readonly #start: number;
  readonly #slackMs: number;
  /** `slackMs` in samples. */
  readonly #slack: number;
  readonly #sides = [new Side(), new Side()] as const;

  constructor(sampleRate: number, startMs: number, slackMs = 60) {
    this.#rate = sampleRate;
    this.#start = startMs;
    this.#slackMs = slackMs;
    this.#slack = (slackMs * sampleRate) / 1000;
  }

  /** Adds slin bytes to side 0 (caller) or 1 (us) that arrived at `nowMs`. */
  push(side: 0 | 1, slin: Buffer, nowMs: number): void {
    const s = this.#sides[side];
    const n = slin.length >> 1;
    const bytes = slin.length & 1 ? slin.subarray(0, n * 2) : slin;
    if (s.held !== undefined) {
      const lateness = this.#lateness(s.samples + s.heldSamples + n, nowMs);
      // A piece that opens a new gap on top of the held one (our process stalled again while the
      // gap was being judged) starts the judging span again.
      const newGap = lateness > s.leastLateness + this.#slack;
      if (newGap || nowMs - s.heldSince <= this.#slackMs) {
        if (n > 0) s.held.push(bytes);
        s.heldSamples += n;
        s.leastLateness = Math.min(s.leastLateness, lateness);
        if (newGap) s.heldSince = nowMs;
        return;
      }
      this.#release(s);
    }
    const lateness = this.#lateness(s.samples + n, nowMs);
    if (lateness > this.#slack) {
      s.held = n > 0 ? [bytes] : [];
      s.heldSamples = n;
      s.heldSince = nowMs;
      s.leastLateness = lateness;
      return;
    }
    if (n > 0) this.#append(s, bytes);
  }

  /** Samples by which the wall clock at `nowMs` is past `samples` of audio. */
  #lateness(samples: number, nowMs: number): number {
    return Math.floor(((nowMs - this.#start) * this.#rate) / 1000 - samples);
  }

  /** Places the held pieces, after the silence the judged gap gets. */
  #release(s: Side): void {
    const held = s.held;
    if (held === undefined) return;
    s.held = undefined;
    s.heldSamples = 0;
    if (s.leastLateness > this.#slack) this.#append(s, Buffer.alloc(s.leastLateness * 2));
    for (const piece of held) this.#append(s, piece);
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
