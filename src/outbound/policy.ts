/**
 * The seam between a call and its transport's outbound side. The call core hands every
 * write, play, mark, flush and drain to an {@link OutboundPolicy}; each transport has one:
 * - {@link PacedOutbound} (AudioSocket): Asterisk plays what arrives when it arrives, so we pace
 *   against our clock and settle completions by it.
 * - {@link BufferedOutbound} (chan_websocket): Asterisk buffers and re-times what we send, so we
 *   keep its buffer fed within a lead and settle completions by its MARK_MEDIA answers.
 * Both queue in one format-neutral {@link OutboundQueue} and admit writes through one
 * {@link WriteGate}.
 */
import type { AudioFormat } from '../audio/format.js';
import type { CallWarningCode } from '../errors.js';
import type { SendMeter } from './send-meter.js';
import type { AudioSource, ByteConverter, PlayResult } from './queue.js';

/** What a policy tells the call that owns it. */
export interface OutboundEvents {
  /**
   * A frame reaches the caller about now: `at` is its place on the call's clock, `latenessMs`
   * how much later than that it is reported.
   */
  sent(payload: Buffer, format: AudioFormat, at: number, latenessMs: number, silence: boolean): void;
  mark(name: string, reached: boolean): void;
  /** Queued audio fell back under the high-water mark after a write returned `false`. */
  drain(): void;
  /** Written audio was dropped: more than `maxQueuedMs` was queued. */
  dropped(droppedMs: number, queuedMs: number): void;
  warning(code: CallWarningCode, message: string): void;
}

/**
 * Counters every policy keeps; their meaning is documented once, on `CallStats`
 * (`src/call/types.ts`), which the call assembles from these. (Not a `Pick` of it: the outbound
 * layer sits below the call and does not import it.)
 */
export interface OutboundCounters {
  framesSent: number;
  droppedWrites: number;
  droppedMs: number;
  delayedWrites: number;
  queuedMs: number;
  flushedMs: number;
  unsentMs: number;
}

export interface OutboundPolicy<S extends OutboundCounters = OutboundCounters> {
  /** slin at the rate the call sends: the format user audio is converted to unless {@link accepts} takes it as it is. */
  readonly format: AudioFormat;
  readonly frameMs: number;
  /** Bytes of one frame of {@link format}. */
  readonly frameBytes: number;
  readonly queuedMs: number;
  readonly stats: S;
  /**
   * Whether to report every frame sent through `events.sent`: set by the call when someone
   * reads them (a `sent` listener, the speech detector, the monitor's tap). Off, a frame costs
   * no bookkeeping; a flag the call sets rather than a question asked per frame.
   */
  reportSent: boolean;
  /**
   * The monitor's meter while one is attached (see {@link SendMeter}): frames sent late are
   * counted into it; a frame on time costs a comparison.
   */
  meter: SendMeter | null;
  /** Set by the observer: the next frame of the call's own audio sent gives {@link meter} its peak, and clears this. */
  samplePeak: boolean;
  /** Whether audio in `format` can be queued as it is (no conversion). */
  accepts(format: AudioFormat): boolean;
  /** Queues audio in an accepted format; `false` means slow down (or some was dropped beyond `maxQueuedMs`). */
  write(bytes: Buffer, format: AudioFormat): boolean;
  /** Queues a source, converted by `convert` to {@link format}. */
  play(source: AudioSource, convert: ByteConverter | undefined, signal?: AbortSignal): Promise<PlayResult>;
  /** Resolves once everything queued before it has played (`false`: flushed); `quiet`: no `mark` event. */
  mark(name: string, quiet?: boolean): Promise<boolean>;
  /** Drops what is queued (and what was sent but has not played, where it can); returns the ms dropped. */
  flush(): number;
  drained(): Promise<void>;
  /** Stops for good; what was queued counts as unsent, plays settle `interrupted` by hangup. */
  close(): void;
}
