/**
 * What the outbound side records for an observer inside the library (the monitor) while one is
 * attached, without touching anything per frame beyond the policy itself:
 * - a frame late by a millisecond or more goes into a histogram (rare in steady state: a frame
 *   on time is counted only by the policy's own `framesSent`);
 * - the level: when the observer asks (`policy.samplePeak = true`, once per look), the peak of
 *   the next frame of the call's own audio sent, and the request is cleared.
 * The observer reads the meter at its own rate. No call, event or reference per frame.
 */
import type { AudioFormat } from '../audio/format.js';
import { peakOf } from '../audio/peak.js';

/** Lateness histogram: 1 ms bins, the last one for a second or more. */
export const LATE_BINS = 1001;

export class SendMeter {
  /** Frames late by 1 ms or more, by how late they left in whole ms: `late[ms]`. */
  readonly late = new Uint32Array(LATE_BINS);
  /** Frames late by 1 ms or more (those in {@link late}). */
  lateFrames = 0;
  /** The most a frame was late since the observer last reset it, ms. */
  maxLateMs = 0;
  /** The peak (0..1) of the frame sampled after the last request; the observer resets it. */
  peak = 0;

  /** Counts a frame that left `latenessMs` (>= 1) late. Called by the outbound policies only. */
  noteLate(latenessMs: number): void {
    this.late[latenessMs >= LATE_BINS - 1 ? LATE_BINS - 1 : Math.round(latenessMs)]!++;
    this.lateFrames++;
    if (latenessMs > this.maxLateMs) this.maxLateMs = latenessMs;
  }

  /** Takes the peak of a frame of the call's own audio. Called by the outbound policies only. */
  sample(payload: Uint8Array, format: AudioFormat): void {
    this.peak = peakOf(payload, format);
  }

  /** The 99th percentile of the lateness of `framesSent` frames, in whole ms (the others were on time). */
  lateP99(framesSent: number): number {
    const total = Math.max(framesSent, this.lateFrames);
    if (total === 0) return 0;
    const onTime = total - this.lateFrames;
    const target = Math.ceil(0.99 * total);
    if (onTime >= target) return 0;
    let seen = onTime;
    for (let i = 0; i < LATE_BINS; i++) {
      seen += this.late[i]!;
      if (seen >= target) return i;
    }
    return LATE_BINS - 1;
  }
}
