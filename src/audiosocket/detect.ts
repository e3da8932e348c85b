/**
 * Infers what really travels under kind 0x10 from the byte rate: the channel driver without
 * `c(slin)` sends the caller's codec (u-law, a-law, ...) labelled 0x10, 160 bytes per 20 ms
 * (`res/res_audiosocket.c` `ast_audiosocket_send_frame` labels every non-slin format 0x10; seen with
 * Asterisk 22.10: docs/protocol.md#codecs). Pure: feed it sizes, times and bytes.
 */

/** What {@link InboundFormatMeter} concluded. */
export interface InboundFormatGuess {
  /** Payload bytes per second while the audio flows (the median over arrivals, see the meter). */
  bytesPerSecond: number;
  /** Most common payload size. */
  typicalFrameBytes: number;
  /** Mean time between messages, ms. */
  meanIntervalMs: number;
  /**
   * - `slin`: 2 bytes per sample at the kind's rate, as the label says.
   * - `g711`: 1 byte per sample: u-law or a-law mislabelled as slin.
   * - `unknown`: neither (another codec, or too irregular to say).
   */
  verdict: 'slin' | 'g711' | 'unknown';
  /** For `g711`, which law the byte values point to. */
  law?: 'ulaw' | 'alaw';
}

/**
 * Messages read within this of each other are one arrival (one TCP read, or Asterisk's frames
 * queued behind a stall): their bytes are divided by the time since the arrival before.
 */
const SAME_ARRIVAL_MS = 2;

/**
 * Measures the first `sampleMs` of audio of one call (default 1000 ms, at least 20 messages).
 * The byte rate is the median over arrivals of each arrival's bytes divided by the time since
 * the previous arrival: a pause (silence suppression, hold) is one slow arrival and a stall one
 * late arrival carrying its backlog, so neither moves the median, as they would move bytes
 * divided by the whole elapsed time.
 */
export class InboundFormatMeter {
  readonly #rate: number;
  readonly #sampleMs: number;
  #first = -1;
  #last = 0;
  #count = 0;
  #sizes = new Map<number, number>();
  /** The arrival being read: when it began, its bytes, and when the one before it began. */
  #arrivalAt = -1;
  #arrivalBytes = 0;
  #previousArrivalAt = -1;
  /** Bytes per ms of each complete arrival. */
  readonly #rates: number[] = [];
  // u-law keeps small magnitudes near 0x7f/0xff, a-law near 0x55/0xd5 (its even bits inverted).
  #ulawLike = 0;
  #alawLike = 0;
  #result: InboundFormatGuess | null = null;

  constructor(sampleRate: number, sampleMs = 1000) {
    this.#rate = sampleRate;
    this.#sampleMs = sampleMs;
  }

  /** The verdict, once enough audio has been seen. */
  get result(): InboundFormatGuess | null {
    return this.#result;
  }

  /** Records one message; returns the verdict the first time it is reached, else null. */
  push(payload: Uint8Array, nowMs: number): InboundFormatGuess | null {
    if (this.#result !== null) return null;
    if (this.#first < 0) this.#first = nowMs;
    this.#last = nowMs;
    this.#count++;
    this.#sizes.set(payload.length, (this.#sizes.get(payload.length) ?? 0) + 1);
    this.#arrive(payload.length, nowMs);
    const step = Math.max(1, payload.length >> 4);
    for (let i = 0; i < payload.length; i += step) {
      const hi = payload[i]! & 0xf0;
      if (hi === 0x70 || hi === 0xf0) this.#ulawLike++;
      else if (hi === 0x50 || hi === 0xd0) this.#alawLike++;
    }
    if (this.#count < 20 || this.#last - this.#first < this.#sampleMs) return null;
    return (this.#result = this.#conclude());
  }

  #arrive(bytes: number, nowMs: number): void {
    if (this.#arrivalAt >= 0 && nowMs - this.#arrivalAt < SAME_ARRIVAL_MS) {
      this.#arrivalBytes += bytes;
      return;
    }
    this.#closeArrival();
    this.#previousArrivalAt = this.#arrivalAt;
    this.#arrivalAt = nowMs;
    this.#arrivalBytes = bytes;
  }

  /** The arrival being read is complete: its rate, unless it is the first (no time before it). */
  #closeArrival(): void {
    if (this.#previousArrivalAt < 0 || this.#arrivalAt < 0) return;
    this.#rates.push(this.#arrivalBytes / (this.#arrivalAt - this.#previousArrivalAt));
  }

  #conclude(): InboundFormatGuess {
    this.#closeArrival();
    this.#arrivalAt = -1;
    const rates = this.#rates.sort((x, y) => x - y);
    const bytesPerSecond = rates.length === 0 ? 0 : rates[rates.length >> 1]! * 1000;
    let typical = 0;
    let best = -1;
    for (const [size, n] of this.#sizes) if (n > best) [typical, best] = [size, n];
    const ratio = bytesPerSecond / this.#rate;
    const verdict = ratio > 1.7 && ratio < 2.3 ? 'slin' : ratio > 0.85 && ratio < 1.15 ? 'g711' : 'unknown';
    const guess: InboundFormatGuess = {
      bytesPerSecond: Math.round(bytesPerSecond),
      typicalFrameBytes: typical,
      meanIntervalMs: (this.#last - this.#first) / (this.#count - 1),
      verdict,
    };
    if (verdict === 'g711') guess.law = this.#alawLike > this.#ulawLike ? 'alaw' : 'ulaw';
    return guess;
  }
}
