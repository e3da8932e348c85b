/**
 * Lines up the two directions of a call for recording. Each side is a stream of slin samples
 * that may have gaps (Asterisk pauses audio while a DTMF digit is sent; keep-alive can be off);
 * a gap longer than `slackMs` is filled with silence from the wall clock, so both sides stay in
 * step. Pure: the caller passes times in ms.
 */
class Side {
  samples = 0;
  pending: Buffer[] = [];
  pendingBytes = 0;
}

export class CallTimeline {
  readonly #rate: number;
  readonly #start: number;
  readonly #slack: number;
  readonly #sides = [new Side(), new Side()] as const;

  constructor(sampleRate: number, startMs: number, slackMs = 60) {
    this.#rate = sampleRate;
    this.#start = startMs;
    this.#slack = (slackMs * sampleRate) / 1000;
  }

  /** Adds slin bytes to side 0 (caller) or 1 (us) that arrived at `nowMs`. */
  push(side: 0 | 1, slin: Buffer, nowMs: number): void {
    const s = this.#sides[side];
    const n = slin.length >> 1;
    const expectedEnd = ((nowMs - this.#start) * this.#rate) / 1000;
    const gap = Math.floor(expectedEnd - n - s.samples);
    if (gap > this.#slack) this.#append(s, Buffer.alloc(gap * 2));
    if (n > 0) this.#append(s, slin.length & 1 ? slin.subarray(0, n * 2) : slin);
  }

  #append(s: Side, bytes: Buffer): void {
    s.pending.push(bytes);
    s.pendingBytes += bytes.length;
    s.samples += bytes.length >> 1;
  }

  /** Takes what is ready of one side (mono output). */
  takeMono(side: 0 | 1): Buffer {
    const s = this.#sides[side];
    const out = Buffer.concat(s.pending, s.pendingBytes);
    s.pending = [];
    s.pendingBytes = 0;
    return out;
  }

  /** Takes interleaved stereo frames for the samples both sides have; `final` pads the shorter side. */
  takeStereo(final = false): Buffer {
    const [l, r] = this.#sides;
    if (final) {
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
